"""LLM answerers: one factory picks the chat model; answers stream sentence by sentence, each one checked."""

from __future__ import annotations

import functools
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from assistant import prompts
from assistant.citations import check_sentence, renumber, split_sentences_stream, strip_citations
from assistant.settings import Settings
from assistant.types import Generation
from corpus.chunking import estimate_tokens, section_units
from corpus.types import Section

# Room kept free in the context window for the answer itself, and the most a model may write: a small model
# can loop ("lightweight, lightweight, ..." ran to 3,983 tokens in 3 minutes before this cap).
ANSWER_TOKENS = 512
# llama.cpp's own samplers against runaway repetition in small local models: a repeat penalty over the last 64
# tokens and DRY (it penalizes repeating a sequence already written). With neither, SmolLM2-135M looped on
# one word until the token limit on "What is SQS?".
LOCAL_SAMPLING = {"repeat_penalty": 1.15, "repeat_last_n": 64, "dry_multiplier": 0.8}
# A sentence the model already wrote, written again this many times, means it is looping: stop reading.
MAX_REPEATS = 2


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


def threads_for(cores: int, load: float) -> int:
    """llama.cpp threads for `cores` cores with `load` of them busy (the 1-minute load average), at least 1.

    `(2, 1.1)` -> 1; `(2, 0.2)` -> 2; `(8, 3.0)` -> 5. Measured here: 41 tokens/s on 1 thread, 3-5 tokens/s on 2
    threads with the other core busy: a thread that waits for a busy core stalls every other one.
    """
    return max(1, cores - round(load))


def free_cores() -> int:
    """Cores of this process's machine that are free right now (see `threads_for`)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return threads_for(cores, os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0)


def local_server(path: str, context_tokens: int, threads: int) -> tuple[str, str]:
    """The base URL (`http://127.0.0.1:PORT/v1`) and API key of llama.cpp serving the GGUF model at `path` in this
    process."""
    if not Path(path).is_file():
        raise LLMConfigError(f"NOTES_LLM=local:{path}: no such model file (a .gguf file)")
    try:
        import xllamacpp  # noqa: F401
    except ImportError as err:
        raise LLMConfigError("local models need: pip install xllamacpp") from err
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

    def __init__(
        self, model: BaseChatModel, name: str, context_tokens: int = 4096, embeddings=None, timeout: float = 0.0
    ) -> None:
        self.model = model
        self.name = name
        self.context_tokens = context_tokens
        self.embeddings = embeddings
        self.timeout = timeout  # seconds for a whole answer; 0 leaves it to the provider's own timeout

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

        `fallback()` gives the extractive `Answer` (which may be a refusal) for when the model cannot answer at
        all; `refuse()` the refusal `Answer` for when it says the sources do not answer, or every sentence it wrote
        was dropped.
        """
        from assistant.chain import AnswerStream

        question = found.condensed.standalone
        sections, notices = fit_sources(question, sources, self.context_tokens)
        state: dict = {"kept": [], "dropped": [], "numbers": {}, "notices": list(notices), "final": None}
        timing: dict = {"tokens": 0}

        def generation() -> Generation | None:
            if "first" not in timing:
                return None
            return Generation(timing["first"], timing["tokens"], timing.get("end", time.perf_counter()) - timing["t0"])

        def extractive(reason: str) -> Iterator[str]:
            answer = fallback()
            note = f"{reason}; showing the extractive answer instead"
            state["final"] = replace(answer, notices=(*answer.notices, *state["notices"], note))
            yield answer.text

        def pieces() -> Iterator[str]:
            if not sections:
                yield from extractive(f"no source fits the {self.context_tokens}-token context of {self.name}")
                return
            try:
                raw = self._timed(self.model.stream(messages(question, sections)), timing)
                yield from self._checked(raw, sections, state, unit_vectors, timing)
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

    def _checked(self, raw: Iterator[str], sections, state: dict, unit_vectors, timing: dict) -> Iterator[str]:
        vectors = unit_vectors([s.key for s in sections])
        repeats = 0
        for sentence in split_sentences_stream(raw):
            if prompts.NOT_IN_NOTES in sentence:
                return
            if "end" in timing and timing.get("finish") == "length":
                # The stream is over and the model was stopped at the token limit: this last piece is cut off.
                state["dropped"].append(f"{sentence.strip()} (cut off at the token limit)")
                return
            verdict = check_sentence(sentence, sections, vectors, self.embeddings)
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

