"""Checking what an LLM wrote: citations to sources never given are removed, each sentence is checked
against the sources it cites, and the survivors are renumbered in order of first use."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from corpus.types import Section
from index.keyword import tokenize

_CITE = re.compile(r"\s*\[(\d+)\]")
# A sentence ends at . ! or ? and any citation markers after it, where white space and then a word follow; or
# at a line break with text after it. Group 2 is the break itself.
_END = re.compile(r"(?<=[.!?])((?:\s*\[\d+\])*)(\s+)(?=[^\s\[])|()(\n+)(?=\S)")
# A sentence counts as supported when most of its words are in the cited text; or when it is very close in
# meaning to a cited sentence; or close and sharing a third of its words. Cosine alone cannot see a
# contradiction: "Lambda is free for everyone" scores 0.72 against "you pay only when your functions execute".
MIN_OVERLAP = 0.6
MIN_COSINE = 0.6
STRONG_COSINE = 0.8
# Half, not a third: SmolLM2-135M wrote "A lambda function in AWS refers to a lightweight, high-performance
# application running on the cloud. [1]" over the Lambda note: 0.68 close, sharing 0.40 of its words, and the
# embellishment ("lightweight, high-performance") is in no note.
COSINE_OVERLAP = 0.5


@dataclass(frozen=True)
class Check:
    text: str
    supported: bool
    reason: str = ""


def split_sentences_stream(chunks: Iterable[str]) -> Iterator[str]:
    """Whole sentences out of streamed text pieces, each with its trailing citations.

    `["Lambda is server", "less. [1] It scales", ". [2]"]` -> `["Lambda is serverless. [1]", "It scales. [2]"]`
    """
    buffer = ""
    for chunk in chunks:
        buffer += chunk if isinstance(chunk, str) else str(chunk)
        # A break counts only once the next word has arrived: until then a citation marker may still follow.
        while match := _END.search(buffer):
            cut = match.start(2) if match.group(2) else match.start(4)
            sentence, buffer = buffer[:cut].strip(), buffer[match.end() :]
            if sentence:
                yield sentence
    if buffer.strip():
        yield buffer.strip()


def cited_numbers(text: str) -> list[int]:
    """`"SQS queues. [2][1] [2]"` -> `[2, 1]`"""
    return list(dict.fromkeys(int(n) for n in _CITE.findall(text)))


def strip_citations(text: str) -> str:
    return _CITE.sub("", text).strip()


def _overlap(sentence: str, source: str) -> float:
    terms = set(tokenize(sentence))
    return len(terms & set(tokenize(source))) / len(terms) if terms else 1.0


def check_sentence(
    sentence: str,
    sources: Sequence[Section],
    unit_vectors: Mapping[str, Sequence[tuple[int, Sequence[float]]]] | None = None,
    embeddings=None,
) -> Check:
    """Keep citations to sources that exist; keep the sentence only if a cited source supports it.

    A sentence with no valid citation is checked against every source and cited to the one that supports it.
    """
    numbers = [n for n in cited_numbers(sentence) if 1 <= n <= len(sources)]
    bare = strip_citations(sentence)
    if not re.search(r"\w", bare):
        return Check("", False, "empty")
    candidates = numbers or list(range(1, len(sources) + 1))
    vector = None
    best_n, best = 0, -1.0
    for n in candidates:
        section = sources[n - 1]
        words = _overlap(bare, f"{section.title} {section.text}")
        score = words
        if words < MIN_OVERLAP and embeddings is not None and unit_vectors:
            rows = unit_vectors.get(section.key, ())
            if rows:
                if vector is None:
                    vector = np.asarray(embeddings.embed_query(bare), dtype=np.float32)
                cosine = float(np.max(np.asarray([v for _, v in rows], dtype=np.float32) @ vector))
                if cosine >= STRONG_COSINE or (cosine >= MIN_COSINE and words >= COSINE_OVERLAP):
                    score = max(words, MIN_OVERLAP)
        if score > best:
            best_n, best = n, score
    supported = best >= MIN_OVERLAP
    if not supported:
        return Check(bare, False, "no cited source says this" if numbers else "uncited and not in the sources")
    keep = numbers or [best_n]
    return Check(f"{bare} " + "".join(f"[{n}]" for n in keep), True)


def renumber(text: str, numbers: dict[int, int]) -> str:
    """Rewrite source numbers in order of first use, recording the mapping in `numbers`.

    With `{}`: `"A. [3] B. [1][3]"` -> `"A. [1] B. [2][1]"` and numbers becomes `{3: 1, 1: 2}`.
    """

    def swap(match: re.Match) -> str:
        old = int(match.group(1))
        if old not in numbers:
            numbers[old] = len(numbers) + 1
        return f"[{numbers[old]}]"

    return re.sub(r"\[(\d+)\]", swap, text)
