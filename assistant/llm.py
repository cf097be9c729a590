"""LLM answerers: one factory picks the chat model; answers stream sentence by sentence, each one checked."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from assistant import prompts
from assistant.citations import check_sentence, renumber, split_sentences_stream
from assistant.settings import Settings
from corpus.chunking import estimate_tokens, section_units
from corpus.types import Section

# Room kept free in the context window for the answer itself.
ANSWER_TOKENS = 512


class LLMConfigError(ValueError):
    """`NOTES_LLM` names no known provider, or the provider's package is missing."""


def get_chat_model(settings: Settings) -> BaseChatModel:
    """The chat model `settings.llm` names: `ollama:MODEL`, `openai:MODEL` or `llamacpp:PATH.gguf`."""
    provider, _, model = settings.llm.partition(":")
    if not model:
        raise LLMConfigError(f"NOTES_LLM={settings.llm!r}: expected PROVIDER:MODEL, e.g. ollama:qwen2.5:3b")
    if provider == "ollama":
        from langchain_ollama import ChatOllama

        kwargs = {"base_url": settings.llm_base_url} if settings.llm_base_url else {}
        return ChatOllama(model=model, temperature=0, num_ctx=settings.llm_context_tokens, **kwargs)
    if provider == "openai":
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            model=model,
            base_url=settings.llm_base_url,
            # Local OpenAI-compatible servers (llama.cpp, vLLM, LM Studio) accept any key.
            api_key=settings.llm_api_key or "not-needed",
            temperature=0,
            timeout=settings.llm_timeout,
            max_retries=0,
        )
    if provider == "llamacpp":
        try:
            from langchain_community.chat_models import ChatLlamaCpp
        except ImportError as err:
            raise LLMConfigError("llamacpp needs: pip install langchain-community llama-cpp-python") from err
        return ChatLlamaCpp(model_path=model, n_ctx=settings.llm_context_tokens, temperature=0)
    raise LLMConfigError(f"NOTES_LLM={settings.llm!r}: unknown provider {provider!r} (ollama, openai, llamacpp)")


def fit_sources(
    question: str, sections: Sequence[Section], context_tokens: int
) -> tuple[list[Section], list[str]]:
    """The sources that fit the context window, best first, and a notice for each one left out.

    A source that does not fit is left out whole (a smaller one after it may still fit); the user is always
    told, nothing is silently cut.
    """
    budget = context_tokens - ANSWER_TOKENS - estimate_tokens(prompts.SYSTEM + prompts.USER + question)
    kept: list[Section] = []
    used = 0
    notices = []
    for section in sections:
        cost = estimate_tokens(_source(len(kept) + 1, section))
        if used + cost <= budget:
            kept.append(section)
            used += cost
        else:
            notices.append(f"left out {section.key}: it did not fit the model's {context_tokens}-token context")
    return kept, notices


def _source(number: int, section: Section) -> str:
    return prompts.SOURCE.format(number=number, heading_path=section.breadcrumb, key=section.key, text=section.text)


def messages(question: str, sources: Sequence[Section]) -> list:
    text = "\n\n".join(_source(n, s) for n, s in enumerate(sources, start=1))
    return [SystemMessage(prompts.SYSTEM), HumanMessage(prompts.USER.format(sources=text, question=question))]


class LLMAnswerer:
    """Answers with a chat model; every sentence is checked against the sources it cites before it is shown."""

    def __init__(self, model: BaseChatModel, name: str, context_tokens: int = 4096, embeddings=None) -> None:
        self.model = model
        self.name = name
        self.context_tokens = context_tokens
        self.embeddings = embeddings

    def stream(
        self,
        found,
        sources: Sequence[Section],
        fallback: Callable,
        finish: Callable,
        unit_vectors: Callable,
        citation: Callable,
        refuse: Callable,
    ):
        """An AnswerStream over the model's checked sentences; what streams is exactly the final answer's text.

        `fallback()` gives the extractive (text, citations) for when the model cannot answer at all; `refuse()`
        the refusal answer for when it says the sources do not answer, or every sentence it wrote was dropped.
        """
        from assistant.chain import AnswerStream

        question = found.condensed.standalone
        sections, notices = fit_sources(question, sources, self.context_tokens)
        state: dict = {"kept": [], "dropped": [], "numbers": {}, "notices": list(notices), "final": None}

        def extractive(reason: str) -> Iterator[str]:
            text, cites = fallback()
            note = f"{reason}; showing the extractive answer instead"
            state["final"] = finish(
                found, text, cites, refused=False, answerer="extractive", notices=(*state["notices"], note)
            )
            yield text

        def pieces() -> Iterator[str]:
            if not sections:
                yield from extractive(f"no source fits the {self.context_tokens}-token context of {self.name}")
                return
            try:
                raw = (chunk.content for chunk in self.model.stream(messages(question, sections)))
                yield from self._checked(raw, sections, state, unit_vectors)
            except Exception as err:  # any provider failure: connection refused, timeout, bad reply
                failure = f"the LLM ({self.name}) could not answer ({type(err).__name__}: {err})"
                if not state["kept"]:
                    yield from extractive(failure)
                    return
                # Sentences already shown stay, with their checked citations; the user is told it is cut short.
                state["notices"].append(f"{failure}; the answer stopped part-way")
            if not state["kept"]:
                answer = refuse()
                state["final"] = replace(
                    answer, notices=(*answer.notices, *state["notices"]), dropped=tuple(state["dropped"])
                )
                yield answer.text

        def done():
            if state["final"] is not None:
                return state["final"]
            text = " ".join(state["kept"]).strip()
            cites = tuple(
                citation(new, sections[old - 1], _quotes(sections[old - 1], text, new))
                for old, new in sorted(state["numbers"].items(), key=lambda pair: pair[1])
            )
            return finish(
                found, text, cites, refused=False, answerer=self.name,
                notices=tuple(state["notices"]), dropped=tuple(state["dropped"]),
            )

        return AnswerStream(pieces(), done)

    def _checked(self, raw: Iterator[str], sections, state: dict, unit_vectors) -> Iterator[str]:
        vectors = unit_vectors([s.key for s in sections])
        for sentence in split_sentences_stream(raw):
            if prompts.NOT_IN_NOTES in sentence:
                return
            verdict = check_sentence(sentence, sections, vectors, self.embeddings)
            if not verdict.supported:
                state["dropped"].append(f"{sentence.strip()} ({verdict.reason})")
                continue
            text = renumber(verdict.text, state["numbers"])
            state["kept"].append(text)
            yield text + " "


def _quotes(section: Section, text: str, number: int) -> tuple[str, ...]:
    """The units of a section that the sentences citing it share most words with."""
    cited = [s for s in re.split(r"(?<=\])\s+", text) if f"[{number}]" in s]
    units = section_units(section)
    out = []
    for sentence in cited:
        words = set(sentence.lower().split())
        best = max(units, key=lambda u: len(words & set(u.text.lower().split())), default=None)
        if best is not None and best.text not in out:
            out.append(best.text)
    return tuple(out)

