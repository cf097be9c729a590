"""LLM answerers: one factory picks the chat model; answers stream sentence by sentence, each one checked."""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from assistant import prompts
from assistant.citations import check_sentence, renumber, split_sentences_stream, strip_citations
from assistant.cores import free_cores
from assistant.settings import Settings
from assistant.types import Generation
from corpus.chunking import estimate_tokens, section_units
from corpus.types import Block, Section

# Room kept free in the context window for the answer itself, and the most a model may write: a small model
# can loop ("lightweight, lightweight, ..." ran to 3,983 tokens in 3 minutes before this cap).
ANSWER_TOKENS = 512
# llama.cpp's own samplers against runaway repetition in small local models: a repeat penalty over the last 64
# tokens and DRY (it penalizes repeating a sequence already written). With neither, SmolLM2-135M looped on
# one word until the token limit on "What is SQS?".
LOCAL_SAMPLING = {"repeat_penalty": 1.15, "repeat_last_n": 64, "dry_multiplier": 0.8}
# A sentence the model already wrote, written again this many times, means it is looping: stop reading.
MAX_REPEATS = 2
# A local model (llama.cpp) answers in JSON that names each sentence's source (`answer_schema`): asked for plain
# text, SmolLM2-135M left 247 of 281 sentences on the AWS dev set uncited, and the check kept none of them; in JSON
# it wrote 164 sentences, 13 kept, and 11 of 43 answers were its own.
# A local model reads its whole prompt on the CPU before it writes a word: SmolLM2-135M took 10-23 s to read
# eight whole sections (a few thousand tokens) on one busy core. It is given the passages that answer instead
# (what the extractive answerer quotes, or the units closest to the question), this many tokens at most.
PASSAGE_TOKENS = 400


class LLMConfigError(ValueError):
    """`NOTES_LLM` names no known provider, or the provider's package is missing."""


def get_chat_model(settings: Settings) -> BaseChatModel:
    """The chat model `settings.llm` names: `ollama:MODEL`, `openai:MODEL` or `local:PATH.gguf`.

    `local:` runs the GGUF model in this process with llama.cpp (xllamacpp), which serves its OpenAI-compatible
    endpoint on a free loopback port; LangChain's `ChatOpenAI` talks to it, so there is no adapter to maintain.
    """
    provider, _, model = settings.llm.partition(":")
    if not model:
        raise LLMConfigError(f"NOTES_LLM={settings.llm!r}: expected PROVIDER:MODEL, e.g. ollama:qwen2.5:3b")
    if provider == "ollama":
        from langchain_ollama import ChatOllama

        kwargs = {"base_url": settings.llm_base_url} if settings.llm_base_url else {}
        return ChatOllama(
            model=model, temperature=0, num_ctx=settings.llm_context_tokens, num_predict=ANSWER_TOKENS, **kwargs
        )
    if provider == "openai":
        return _openai(model, settings.llm_base_url, settings.llm_api_key, settings.llm_timeout)
    if provider == "local":
        threads = settings.llm_threads or free_cores()
        url, key = local_server(model, settings.llm_context_tokens, threads)
        return _openai(Path(model).name, url, key, settings.llm_timeout, extra_body=LOCAL_SAMPLING)
    raise LLMConfigError(f"NOTES_LLM={settings.llm!r}: unknown provider {provider!r} (ollama, openai, local)")


def make_answerer(settings: Settings, embeddings=None) -> LLMAnswerer:
    """The LLM answerer `settings.llm` names, its settings checked now; a `local:` model loads on the first answer
    (loading takes seconds and memory the extractive answers never need)."""
    provider, _, model = settings.llm.partition(":")
    if provider == "local":
        check_local(model)
        chat: BaseChatModel | Callable[[], BaseChatModel] = functools.cache(functools.partial(get_chat_model, settings))
    else:
        chat = get_chat_model(settings)
    return LLMAnswerer(
        chat,
        answerer_name(settings),
        settings.llm_context_tokens,
        embeddings,
        settings.llm_timeout,
        passage_tokens=PASSAGE_TOKENS if provider == "local" else 0,
        structured=provider == "local",
    )


def check_local(path: str) -> None:
    """Raise `LLMConfigError` when `local:PATH` cannot load: no such file, or no xllamacpp (not imported here)."""
    if not Path(path).is_file():
        raise LLMConfigError(f"NOTES_LLM=local:{path}: no such model file (a .gguf file)")
    if importlib.util.find_spec("xllamacpp") is None:
        raise LLMConfigError("local models need: pip install xllamacpp")


def _openai(model: str, base_url: str | None, api_key: str | None, timeout: float, **kwargs) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=model,
        base_url=base_url,
        # Local OpenAI-compatible servers (llama.cpp, vLLM, LM Studio) accept any key.
        api_key=api_key or "not-needed",
        temperature=0,
        timeout=timeout,
        max_retries=0,
        max_tokens=ANSWER_TOKENS,
        **kwargs,
    )


def answerer_name(settings: Settings) -> str:
    """What the answers say wrote them: `local:/models/SmolLM2.gguf` -> `local:SmolLM2.gguf`, else `NOTES_LLM`."""
    provider, _, model = settings.llm.partition(":")
    return f"local:{Path(model).name}" if provider == "local" else settings.llm


def local_server(path: str, context_tokens: int, threads: int) -> tuple[str, str]:
    """The base URL (`http://127.0.0.1:PORT/v1`) and API key of llama.cpp serving the GGUF model at `path` in this
    process."""
    check_local(path)
    server, key = _server(str(Path(path).resolve()), context_tokens, threads)
    return server.listening_address + "/v1", key


@functools.cache
def _server(path: str, context_tokens: int, threads: int):
    """One llama.cpp server per model and set-up, kept for the life of the process (loading takes seconds)."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = path
    params.n_ctx = context_tokens
    params.n_parallel = 1  # one answer at a time: the whole context is that answer's
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.verbosity = -1  # llama.cpp's log otherwise writes ~100 lines to stderr per model load
    # Loopback only (xllamacpp's default host), on a port the system picks.
    params.hostnames = ["127.0.0.1"]
    params.port = 0
    # A key only this process knows: no other program or web page on the machine can use the model through it.
    key = secrets.token_urlsafe(24)
    params.api_keys = [key]
    return xllamacpp.Server(params), key


def fit_sources(
    question: str, sections: Sequence[Section], context_tokens: int, system: str = prompts.SYSTEM
) -> tuple[list[Section], list[str]]:
    """The sources that fit the context window beside the `system` prompt, best first, and a notice for each one
    left out.

    A source that does not fit is left out whole (a smaller one after it may still fit); the user is always
    told, nothing is silently cut.
    """
    budget = context_tokens - ANSWER_TOKENS - estimate_tokens(system + prompts.USER + question)
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


Vectors = Mapping[str, Sequence[tuple[int, Sequence[float]]]]


def passages(
    sections: Sequence[Section],
    quoted: Mapping[str, Sequence[str]],
    vectors: Vectors,
    question_vector: Sequence[float] | None,
    budget: int = PASSAGE_TOKENS,
) -> tuple[list[Section], dict[str, list[tuple[int, Sequence[float]]]]]:
    """Each source cut down to the units that answer, within `budget` tokens, and those units' vectors.

    `quoted` (section key -> unit texts, in the extractive answer's order) names the units when the extractive
    answerer found an answer; otherwise the units closest to `question_vector` are taken, best first. A cut
    source keeps its key, markdown and lines (the citation shows the whole section); its text is the units
    given, in reading order, so the check reads exactly what the model read.
    """
    units = {s.key: section_units(s) for s in sections}
    chosen: dict[str, set[int]] = {}
    order = [s.key for s in sections]
    if quoted:
        order = [key for key in quoted if key in units]
        ranked = [(key, u.ordinal) for key in order for u in units[key] if u.text in quoted[key]]
    else:
        query = np.asarray(question_vector if question_vector is not None else (), dtype=np.float32)
        scored = [
            (float(np.asarray(vector, dtype=np.float32) @ query), key, ordinal)
            for key in order
            for ordinal, vector in vectors.get(key, ())
            if query.size and ordinal < len(units[key])
        ]
        ranked = [(key, ordinal) for _, key, ordinal in sorted(scored, key=lambda row: -row[0])]
    used = 0
    for key, ordinal in ranked:
        cost = estimate_tokens(_unit_text(units[key][ordinal]))
        if used + cost > budget and used:
            break
        chosen.setdefault(key, set()).add(ordinal)
        used += cost
    by_key = {s.key: s for s in sections}
    out, out_vectors = [], {}
    for key in (k for k in order if k in chosen):
        picked = [u for u in units[key] if u.ordinal in chosen[key]]
        blocks = tuple(Block(_unit_text(u), "paragraph", u.line_start, u.line_end, u.hidden) for u in picked)
        out.append(replace(by_key[key], blocks=blocks))
        out_vectors[key] = [(o, v) for o, v in vectors.get(key, ()) if o in chosen[key]]
    return out, out_vectors


def _unit_text(unit) -> str:
    """A unit as the model reads it: a list item keeps the label it hangs under ("Cons: higher latency")."""
    return f"{unit.context}: {unit.text}" if unit.context else unit.text


def _source(number: int, section: Section) -> str:
    return prompts.SOURCE.format(number=number, heading_path=section.breadcrumb, key=section.key, text=section.text)


def messages(question: str, sources: Sequence[Section], structured: bool = False) -> list:
    text = "\n\n".join(_source(n, s) for n, s in enumerate(sources, start=1))
    system = prompts.SYSTEM_JSON if structured else prompts.SYSTEM
    return [SystemMessage(system), HumanMessage(prompts.USER.format(sources=text, question=question))]


def answer_schema(sources: int) -> dict:
    """The JSON schema of a structured answer over `sources` sources: each sentence names its source.

    `answer_schema(2)` allows `{"sentences": [{"source": 2, "sentence": "SNS is pub/sub."}]}`; an empty list says
    the sources do not answer.
    """
    item = {
        "type": "object",
        "properties": {
            "source": {"type": "integer", "minimum": 1, "maximum": max(sources, 1)},
            "sentence": {"type": "string", "maxLength": 300},
        },
        "required": ["source", "sentence"],
    }
    return {
        "type": "object",
        "properties": {"sentences": {"type": "array", "items": item, "maxItems": 4}},
        "required": ["sentences"],
    }


_ITEM = re.compile(r'\{\s*"source"\s*:\s*(\d+)\s*,\s*"sentence"\s*:\s*("(?:[^"\\]|\\.)*")\s*\}')


def json_sentences(chunks: Iterator[str]) -> Iterator[str]:
    """Cited sentences out of a streamed structured answer, each as soon as its item is complete; the
    `NOT_IN_NOTES` sentinel for a whole answer with an empty list, and nothing for a reply cut off before its
    first item (that is no judgement on the notes: the caller falls back to the extractive answer).

    `['{"sentences": [{"source": 2, "sen', 'tence": "SNS fans out. It is managed."}]}']`
    -> `["SNS fans out. [2]", "It is managed. [2]"]`
    """
    buffer, at, count = "", 0, 0
    for chunk in chunks:
        buffer += chunk if isinstance(chunk, str) else str(chunk)
        while match := _ITEM.search(buffer, at):
            at = match.end()
            try:
                text = json.loads(match.group(2))
            except json.JSONDecodeError:
                continue
            for sentence in split_sentences_stream([text]):
                count += 1
                yield f"{strip_citations(sentence)} [{match.group(1)}]"
    if not count and _empty_answer(buffer):
        yield prompts.NOT_IN_NOTES


def _empty_answer(text: str) -> bool:
    """`'{"sentences": []}'` -> True; a cut-off or malformed reply -> False."""
    try:
        reply = json.loads(text)
    except json.JSONDecodeError:
        return False
    return isinstance(reply, dict) and reply.get("sentences") == []


class LLMAnswerer:
    """Answers with a chat model; every sentence is checked against the sources it cites before it is shown.

    `model` may be a function that makes the chat model, called on the first answer (a local model loads then).
    `passage_tokens` > 0 gives the model the passages that answer, that many tokens at most, instead of whole
    sections; `structured` asks for JSON that names each sentence's source (llama.cpp's JSON-schema output).
    """

    def __init__(
        self,
        model: BaseChatModel | Callable[[], BaseChatModel],
        name: str,
        context_tokens: int = 4096,
        embeddings=None,
        timeout: float = 0.0,
        passage_tokens: int = 0,
        structured: bool = False,
    ) -> None:
        self._model = model
        self.name = name
        self.context_tokens = context_tokens
        self.embeddings = embeddings
        self.timeout = timeout  # seconds for a whole answer; 0 leaves it to the provider's own timeout
        self.passage_tokens = passage_tokens
        self.structured = structured

    @property
    def model(self) -> BaseChatModel:
        if not isinstance(self._model, BaseChatModel):
            self._model = self._model()
        return self._model

    @property
    def loaded(self) -> bool:
        """Whether the chat model exists yet (a local one is loaded on the first answer)."""
        return isinstance(self._model, BaseChatModel)

    def _bound(self, sources: int):
        """The chat model, asked for the JSON of `answer_schema` when `structured` (llama.cpp's `json_schema`)."""
        model = self.model
        if not self.structured:
            return model
        extra = {**(getattr(model, "extra_body", None) or {}), "json_schema": answer_schema(sources)}
        return model.bind(extra_body=extra)

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

        `fallback()` gives the extractive `Answer` (which may be a refusal) for when the model cannot answer, or
        every sentence it wrote was dropped; `refuse()` the refusal `Answer` for when it says the sources do not
        answer (`NOT_IN_NOTES`).
        """
        from assistant.chain import AnswerStream

        question = found.condensed.standalone
        fallback = functools.cache(fallback)  # the extractive answer may pick the passages and stand in: made once
        vectors = unit_vectors([s.key for s in sources])
        if self.passage_tokens:
            extractive_answer = fallback()
            quoted = {} if extractive_answer.refused else {c.key: c.quotes for c in extractive_answer.citations}
            sources, vectors = passages(
                sources, quoted, vectors, found.retrieval.vector, min(self.passage_tokens, self.context_tokens)
            )
        system = prompts.SYSTEM_JSON if self.structured else prompts.SYSTEM
        sections, notices = fit_sources(question, sources, self.context_tokens, system)
        state: dict = {
            "kept": [], "dropped": [], "numbers": {}, "notices": list(notices), "final": None, "declined": False
        }
        timing: dict = {"tokens": 0}

        def generation() -> Generation | None:
            if "first" not in timing:
                return None
            return Generation(timing["first"], timing["tokens"], timing.get("end", time.perf_counter()) - timing["t0"])

        def extractive(reason: str) -> Iterator[str]:
            answer = fallback()
            note = f"{reason}; showing the extractive answer instead"
            state["final"] = replace(
                answer,
                notices=(*answer.notices, *state["notices"], note),
                dropped=tuple(state["dropped"]),
                generation=generation(),
            )
            yield answer.text

        def pieces() -> Iterator[str]:
            if not sections:
                yield from extractive(f"no source fits the {self.context_tokens}-token context of {self.name}")
                return
            try:
                chunks = self._bound(len(sections)).stream(messages(question, sections, self.structured))
                raw = self._timed(chunks, timing)
                sentences = json_sentences(raw) if self.structured else split_sentences_stream(raw)
                yield from self._checked(sentences, sections, state, vectors, timing, question)
            except Exception as err:  # any provider failure: connection refused, timeout, bad reply, a bad model file
                failure = f"the LLM ({self.name}) could not answer ({type(err).__name__}: {err})"
                if not state["kept"]:
                    yield from extractive(failure)
                    return
                # Sentences already shown stay, with their checked citations; the user is told it is cut short.
                state["notices"].append(f"{failure}; the answer stopped part-way")
            if not state["kept"] and not state["declined"]:
                # The model answered, but the check dropped every sentence (a small model rarely writes one its
                # source says, cited): the extractive answer stands in, and says so. Only the model's own
                # NOT_IN_NOTES is its judgement that the notes do not answer.
                dropped = len(state["dropped"])
                yield from extractive(
                    f"the check dropped every sentence {self.name} wrote ({dropped}: none cited a source that says it)"
                    if dropped
                    else f"{self.name} wrote nothing"
                )
                return
            if not state["kept"]:
                answer = refuse()
                state["final"] = replace(
                    answer,
                    notices=(*answer.notices, *state["notices"]),
                    dropped=tuple(state["dropped"]),
                    generation=generation(),
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
                notices=tuple(state["notices"]), dropped=tuple(state["dropped"]), generation=generation(),
            )

        return AnswerStream(pieces(), done)

    def _timed(self, chunks, timing: dict) -> Iterator[str]:
        """The model's text pieces, timed into `timing`; past `self.timeout` seconds, a TimeoutError."""
        timing["t0"] = started = time.perf_counter()
        try:
            for chunk in chunks:
                now = time.perf_counter()
                if chunk.content:
                    timing.setdefault("first", now - started)
                    timing["tokens"] += 1
                timing["finish"] = (chunk.response_metadata or {}).get("finish_reason") or timing.get("finish")
                yield chunk.content
                if self.timeout and now - started > self.timeout:
                    raise TimeoutError(f"no complete answer within {self.timeout:g} s")
        finally:
            timing["end"] = time.perf_counter()
            if hasattr(chunks, "close"):
                chunks.close()  # stops the model writing: the HTTP stream is closed and llama.cpp cancels

    def _checked(
        self, sentences: Iterator[str], sections, state: dict, vectors, timing: dict, question: str
    ) -> Iterator[str]:
        repeats = 0
        for sentence in sentences:
            if prompts.NOT_IN_NOTES in sentence:
                state["declined"] = not state["kept"]
                return
            if "end" in timing and timing.get("finish") == "length":
                # The stream is over and the model was stopped at the token limit: this last piece is cut off.
                state["dropped"].append(f"{sentence.strip()} (cut off at the token limit)")
                return
            verdict = check_sentence(sentence, sections, vectors, self.embeddings, question)
            if not verdict.supported:
                state["dropped"].append(f"{sentence.strip()} ({verdict.reason})")
                continue
            if any(strip_citations(k) == strip_citations(verdict.text) for k in state["kept"]):
                repeats += 1
                if repeats >= MAX_REPEATS:
                    return  # looping: what follows would be more of the same
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
