"""The chain: question + history -> standalone query -> hybrid retrieval -> answer -> resolved citations.

Each step is a LangChain runnable; chat, CLI and eval all call `NotesAssistant`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

from langchain_core.runnables import RunnableLambda

from assistant.extractive import Evidence, Rarity, compose, select_evidence, split_question
from assistant.followup import Condensed, Topic, condense, refers_back
from assistant.questions import clean_history, clean_question
from assistant.refusal import Verdict, judge, weak_match
from assistant.types import Answer, Citation, Generation, Turn
from corpus.types import Section
from index.fusion import reciprocal_rank_fusion
from index.keyword import FACETS, facets
from index.retrieve import Hit, HybridSearch, Retrieval
from index.spelling import Speller

EXTRACTIVE = "extractive"


@dataclass(frozen=True)
class Found:
    """What the retrieval step hands the answer step."""

    condensed: Condensed
    retrieval: Retrieval
    started: float
    typed: str = ""  # the question as the user typed it, before spelling and follow-up rewrites
    shown: str = ""  # what the chat already showed on this topic, for "Tell me more"
    use_llm: bool = True  # False: the extractive answerer, even when an LLM is configured


def citation(number: int, section: Section, quotes: Sequence[str] = (), score: float = 0.0) -> Citation:
    return Citation(
        number=number,
        key=section.key,
        path=section.path,
        anchor=section.anchor,
        heading_path=section.heading_path,
        line_start=section.line_start,
        line_end=section.line_end,
        hidden=section.hidden,
        quotes=tuple(quotes),
        markdown=section.markdown,
        score=score,
    )


class AnswerStream:
    """Text pieces of an answer as they are made; `answer` holds the finished `Answer` once they are consumed.

    `refused` is True when the reply is known up front to be a refusal (or a chat reply), so a page can draw it
    once, as what it is, instead of streaming it as an answer first (issue 10).
    """

    def __init__(self, pieces: Iterator[str], finish: Callable[[], Answer], refused: bool = False) -> None:
        self._pieces = pieces
        self._finish = finish
        self._answer: Answer | None = None
        self.refused = refused

    def __iter__(self) -> Iterator[str]:
        yield from self._pieces
        self._answer = self._finish()

    @property
    def answer(self) -> Answer:
        if self._answer is None:
            for _ in self:
                pass
        assert self._answer is not None
        return self._answer


class NotesAssistant:
    """Answers questions from one index, with the extractive answerer or an LLM answerer."""

    def __init__(self, search: HybridSearch, top_k: int = 8, llm_answerer=None) -> None:
        self.search = search
        self.top_k = top_k
        self.llm = llm_answerer
        self.vocabulary = search.keyword.vocabulary()
        self.rarity = Rarity(
            titles=search.keyword.title_terms,  # kept by the keyword index across syncs
            sections=search.keyword.term_sections,
        )
        self.speller = Speller(self.rarity.sections, titles=self.rarity.titles)
        self.chain = (
            RunnableLambda(self._condense).with_config(run_name="condense")
            | RunnableLambda(self._retrieve).with_config(run_name="retrieve")
            | RunnableLambda(self._answer).with_config(run_name="answer")
        )

    def familiar(self, term: str) -> bool:
        """Whether the notes use a term in some spelling, or another name of the same facet ("downsides" when
        they file them under "Cons")."""
        if self.speller.familiar(term):
            return True
        return any(any(self.speller.known(w) for w in FACETS[name]) for name in facets(term))

    @property
    def answerer(self) -> str:
        return self.llm.name if self.llm else EXTRACTIVE

    def stream(self, question: str, history: Sequence[Turn | dict] = (), use_llm: bool = True) -> AnswerStream:
        """Answer a question in the context of a chat; iterate for text pieces, then read `.answer`.

        `use_llm=False` answers with the extractive answerer even when an LLM is configured.
        """
        return self.chain.invoke({"question": question, "history": history, "use_llm": use_llm})

    def ask(self, question: str, history: Sequence[Turn | dict] = (), use_llm: bool = True) -> Answer:
        return self.stream(question, history, use_llm).answer

    # The steps.

    def _condense(self, inputs: dict) -> dict:
        started = time.perf_counter()
        typed = clean_question(inputs["question"])
        history = clean_history(inputs.get("history") or ())
        # Typos and spacing first ("elastcache", "elastic cache"), so every later step reads the notes' words.
        question = self.speller.correct(typed)
        # Only a question that leans on the previous turn needs its topic (which may cost a search).
        kind = refers_back(question) if history else "none"
        topic = self._topic(history) if kind != "none" else None
        # "Tell me more" and "Why?" must bring what the last answer did not show.
        shown = next((t.content for t in reversed(history) if t.role == "assistant"), "") if kind == "bare" else ""
        return {
            "condensed": condense(question, topic),
            "started": started,
            "typed": typed,
            "shown": shown,
            "use_llm": inputs.get("use_llm", True),
        }

    def _topic(self, history: Sequence[Turn]) -> Topic | None:
        """The previous turn's topic: the section its answer cited first, or the best match for its question."""
        users = [n for n, t in enumerate(history) if t.role == "user"]
        if not users:
            return None
        last_user = history[users[-1]]
        reply = history[users[-1] + 1] if users[-1] + 1 < len(history) else None
        cited = reply.cited if reply is not None and reply.role == "assistant" else ()
        section = self.search.by_key.get(cited[0]) if cited else None
        if section is None:
            hits = self.search.search(last_user.content, 1).hits
            section = hits[0].section if hits else None
        if section is None:
            return Topic(last_user.content)
        category = section.heading_path[-2] if len(section.heading_path) > 2 else ""
        return Topic(last_user.content, section.title.rstrip(" :"), category)

    def _retrieve(self, step: dict) -> Found:
        condensed: Condensed = step["condensed"]
        retrieval = self.search.search(condensed.standalone, max(self.top_k, 10))
        if condensed.kind == "ellipsis":
            # "And the Kubernetes one?" names the new subject itself; the rewrite only adds the category. Both
            # readings are fused so neither the category nor the old subject can take over. A pronoun
            # follow-up, by contrast, says nothing without its rewrite.
            plain = self.search.search(condensed.question, max(self.top_k, 10))
            retrieval = _prefer_sibling(_fuse(retrieval, plain), plain, condensed.category)
        return Found(condensed, retrieval, step["started"], step["typed"], step["shown"], step["use_llm"])

    def _answer(self, found: Found) -> AnswerStream:
        # Retrieval ranks ten or more sections (the eval's MRR looks that deep); the answer reads the top k.
        hits = found.retrieval.hits[: self.top_k]
        verdict = judge(found.condensed.standalone, hits, self.vocabulary, self.familiar)
        if verdict.chat:
            return self._chat(found)
        llm = self.llm if found.use_llm else None
        if llm is None:
            return self._extractive(found, hits, verdict)
        if weak := weak_match(hits):
            return self._refusal(found, weak.reason, llm.name)
        # Past the retrieval signal, whether the sources answer is the model's judgement (it may say
        # NOT_IN_NOTES), checked sentence by sentence; the extractive word rules above do not stop it.
        return llm.stream(
            found,
            sources=[h.section for h in hits],
            fallback=lambda: self._extractive(found, hits, verdict).answer,
            finish=self._finish,
            unit_vectors=self.search.index.unit_vectors,
            citation=citation,
            refuse=lambda: self._refusal(found, "the LLM found no answer in the closest notes", llm.name).answer,
        )

    def _name(self, found: Found) -> str:
        return self.llm.name if self.llm is not None and found.use_llm else EXTRACTIVE

    def _extractive(self, found: Found, hits: Sequence[Hit], verdict: Verdict) -> AnswerStream:
        """The extractive answer, or its refusal (also when it stands in for an LLM that failed)."""
        answerer = EXTRACTIVE
        question = found.condensed.standalone
        if verdict.refused:
            return self._refusal(found, verdict.reason, answerer)
        unit_vectors = self.search.index.unit_vectors([h.section.key for h in hits])
        # A pronoun follow-up names its subject only once rewritten; an ellipsis adds a category, not a name.
        naming = question if found.condensed.kind == "pronoun" else found.condensed.question
        parts = split_question(question)
        part_vectors = self.search.embeddings.embed_documents(parts) if len(parts) > 1 else []
        evidence = select_evidence(
            question,
            found.retrieval.vector,
            hits,
            unit_vectors,
            self.rarity,
            naming=naming,
            parts=list(zip(parts, part_vectors, strict=False)),
            shown=found.shown,
        )
        if not evidence and found.shown:
            return self._all_said(found, answerer)
        if not evidence:
            return self._refusal(found, "no sentence in the closest notes answers it", answerer)
        text, citations = _extractive(evidence)
        return AnswerStream(
            _words(text), lambda: self._finish(found, text, citations, refused=False, answerer=EXTRACTIVE)
        )

    def _refusal(self, found: Found, reason: str, answerer: str) -> AnswerStream:
        related = tuple(citation(n, h.section, score=h.score) for n, h in enumerate(found.retrieval.hits[:3], 1))
        # The related sections travel as `related`, shown as such by the UI and CLI, never as cited sources.
        text = f"Your notes don't cover that: {reason}."
        if related:
            text += " The nearest sections are listed as related reading."
        return AnswerStream(
            _words(text),
            lambda: self._finish(found, text, (), refused=True, answerer=answerer, related=related),
            refused=True,
        )

    def _all_said(self, found: Found, answerer: str) -> AnswerStream:
        """After "Tell me more" on a topic whose every close sentence was already shown: say so plainly."""
        text = "That is all your notes say on this: the answer above quotes every close passage."
        return AnswerStream(
            _words(text), lambda: self._finish(found, text, (), refused=True, answerer=answerer), refused=True
        )

    def _chat(self, found: Found) -> AnswerStream:
        """A reply to a greeting or to noise: what the assistant does, and no unrelated sections."""
        sections = self.search.keyword.sections
        files = len({s.path for s in sections})
        text = (
            f"I answer questions from your notes ({len(sections)} sections in {files} "
            f"{'file' if files == 1 else 'files'}) and cite the section each answer comes from. "
            "Ask me about something in them."
        )
        return AnswerStream(
            _words(text),
            lambda: self._finish(found, text, (), refused=True, answerer=self._name(found)),
            refused=True,
        )

    def _finish(
        self,
        found: Found,
        text: str,
        citations: tuple[Citation, ...],
        refused: bool,
        answerer: str,
        related: tuple[Citation, ...] = (),
        notices: tuple[str, ...] = (),
        dropped: tuple[str, ...] = (),
        generation: Generation | None = None,
    ) -> Answer:
        return Answer(
            question=found.typed or found.condensed.question,
            standalone=found.condensed.standalone,
            text=text,
            citations=citations,
            refused=refused,
            hits=found.retrieval.hits,
            answerer=answerer,
            related=related,
            notices=notices,
            dropped=dropped,
            seconds=time.perf_counter() - found.started,
            generation=generation,
        )


def _extractive(evidence: Sequence[Evidence]) -> tuple[str, tuple[Citation, ...]]:
    """The extractive answer's text and its citations, numbered in order."""
    numbers = {ev.section.key: n for n, ev in enumerate(evidence, start=1)}
    citations = tuple(
        citation(numbers[ev.section.key], ev.section, [u.text for u in ev.units], ev.score) for ev in evidence
    )
    return compose(evidence, numbers), citations


# How far down the fused ranking an ellipsis follow-up's sibling may be found and put first.
SIBLING_REACH = 3


def _prefer_sibling(retrieval: Retrieval, plain: Retrieval, category: str) -> Retrieval:
    """An ellipsis ("And the Kubernetes one?" after ECS) asks for another one of the kind the last answer was:
    among the first `SIBLING_REACH` hits, the best that sits under the previous topic's parent heading and holds
    the words the follow-up itself names (a keyword match for it as typed) goes first. A general section on the
    new subject ("What is Kubernetes?") stays next. Nothing moves when no such sibling is there.

    `[What is Kubernetes?, EKS (under Container Services)]` with category "Container Services" ->
    `[EKS, What is Kubernetes?]`
    """
    named = {h.section.key for h in plain.hits if h.keyword > 0}
    hits = list(retrieval.hits)
    for n, hit in enumerate(hits[:SIBLING_REACH]):
        if category and category in hit.section.heading_path[:-1] and hit.section.key in named:
            if n:
                top = hits[0].score
                hits = [replace(hit, score=top), *(replace(h, score=min(h.score, top)) for h in hits if h is not hit)]
            break
    return Retrieval(retrieval.query, retrieval.vector, tuple(hits))


def _fuse(first: Retrieval, second: Retrieval) -> Retrieval:
    """Two retrievals of one turn as one ranking (RRF), keeping the first's query and vector."""
    by_key: dict[str, Hit] = {}
    for hit in (*first.hits, *second.hits):
        if hit.section.key not in by_key or hit.dense > by_key[hit.section.key].dense:
            by_key[hit.section.key] = hit
    fused = reciprocal_rank_fusion(
        [({h.section.key: h.score for h in first.hits}, 1.0), ({h.section.key: h.score for h in second.hits}, 1.0)],
        k=10,
    )
    top = max(fused.values(), default=1.0)
    hits = tuple(
        Hit(by_key[key].section, fused[key] / top * by_key[key].score, by_key[key].dense, by_key[key].keyword)
        for key in sorted(fused, key=lambda key: -fused[key])
    )
    return Retrieval(first.query, first.vector, hits[: len(first.hits)])


def _words(text: str) -> Iterator[str]:
    """Stream a finished text a word at a time, keeping the spaces and line breaks."""
    piece = ""
    for char in text:
        piece += char
        if char in " \n":
            yield piece
            piece = ""
    if piece:
        yield piece
