"""Checking what an LLM wrote: citations to sources never given are removed, each sentence is kept only if the
sources it cites say it (near-extractively), and the survivors are renumbered in order of first use."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from corpus.chunking import section_units
from corpus.types import Section
from index.keyword import root, tokenize

_CITE = re.compile(r"\s*\[(\d+)\]")
# A sentence ends at . ! or ? and any citation markers after it, where white space and then a word follow; or
# at a line break with text after it. Group 2 is the break itself.
_END = re.compile(r"(?<=[.!?])((?:\s*\[\d+\])*)(\s+)(?=[^\s\[])|()(\n+)(?=\S)")
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
# Named things: a capitalised word after the first, an acronym, or a code-like token (snake_case, a.b, a/b).
_NAMED = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][A-Za-z0-9]*\b|\b[A-Z]{2,}[a-z]?s?\b|\b\w+(?:[_./]\w+)+\b")
# Words that turn a claim into its opposite. `tokenize` drops them (they are stopwords to search), so a sentence
# that adds or loses one would otherwise pass with every word "in the source": "Lambda is not serverless".
NEGATIONS = frozenset("not no never none nor cannot without".split())
# The rules below make a kept sentence (near-)extractive: the model may reorder and join what a source says, not
# add to it. Word and meaning overlap alone let SmolLM2-135M's generic or invented sentences through whenever they
# shared words with some source (citation precision 0.35 on the AWS dev set, 0.22 on system design).
#
# Cosine between the sentence and the closest unit it cites (MiniLM, unit vectors). The word rules do the work;
# this catches words pulled from a source into a sentence that means something else. On SmolLM2's AWS dev
# answers, the sentences passing the word rules scored 0.59-0.96 but one: "(AWS) [1]", 0.21.
MIN_COSINE = 0.5


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


def _words(text: str) -> list[str]:
    """Content words, stemmed and cut to their root: `"Decoupling the queues"` -> `["decoupl", "queue"]`.

    Negations are left to their own rule (`_negated`), which compares them with the closest unit.
    """
    return [root(t) for t in tokenize(_uncontract(text)) if t not in NEGATIONS]


def _unknown(text: str, known: set[str]) -> list[str]:
    """The words of `text`, as written, whose content words are not all in `known` (roots, see `_words`).

    `("Lambda stores videos", {"lambda", "video"})` -> `["stores"]`
    """
    out = []
    for word in re.findall(r"[\w'’]+", _uncontract(text)):
        if any(w not in known for w in _words(word)) and word not in out:
            out.append(word)
    return out


def _uncontract(text: str) -> str:
    """`"isn't, can't, won’t"` -> `"is not, cannot, will not"`: a contraction is a negation, not a word "isn"."""
    text = re.sub(r"\b(can|won)['’]t\b", lambda m: "cannot" if m.group(1).lower() == "can" else "will not", text)
    return re.sub(r"n['’]t\b", " not", text)


def _numbers(text: str) -> set[str]:
    """`"Up to 256 KB, 1.5x, 14:00"` -> `{"256", "1.5", "14:00"}` (a trailing dot is a full stop)."""
    return {n.rstrip(".,:") for n in _NUMBER.findall(text)}


def _unnamed(text: str, said: str) -> list[str]:
    """The named things of `text` (see `_NAMED`) that `said` does not name: `("Use AWS Glue", "AWS Lambda")` ->
    `["Glue"]`."""
    lower = said.lower()
    said_words = set(re.findall(r"[\w./]+", lower)) | set(re.findall(r"\w+", lower))
    named = [m.group() for m in _NAMED.finditer(text)]
    return [n for n in named if n.lower() not in said_words and n.lower().rstrip("s") not in said_words]


def _closest_unit(sentence: str, section: Section) -> tuple[str, str]:
    """The unit of `section` that says most of `sentence`: fewest of its numbers, content words and names missing,
    the first on a tie. Returns the unit with the headings and list label it sits under, and the unit alone.

    `("SQS decouples components", SQS section)` -> `("AWS > SQS\n\n\nManaged queue for decoupling components.",
    "Managed queue for decoupling components.")`
    """
    units = [(f"{section.breadcrumb}\n{u.heading}\n{u.context}\n{u.text}", u.text) for u in section_units(section)]
    if not units:
        return f"{section.breadcrumb}\n{section.text}", section.text
    numbers = _numbers(sentence)

    def missing(unit: tuple[str, str]) -> int:
        whole = unit[0]
        return (
            len(numbers - _numbers(whole))
            + len(_unknown(sentence, set(_words(whole))))
            + len(_unnamed(sentence, whole))
        )

    return min(units, key=missing)


def _negated(text: str) -> bool:
    return any(w in NEGATIONS for w in re.findall(r"[a-z]+", _uncontract(text).lower()))


def check_sentence(
    sentence: str,
    sources: Sequence[Section],
    unit_vectors: Mapping[str, Sequence[tuple[int, Sequence[float]]]] | None = None,
    embeddings=None,
    question: str = "",
) -> Check:
    """Keep a sentence only if the sources it cites say it: (near-)extractive from them, and it says more than
    the `question` did.

    Citations to sources never given are removed; a sentence left citing nothing is dropped. Kept when every
    content word (light stemming), number and named thing of the sentence is in one unit (a sentence or list
    item, with the headings and label it sits under) of each cited source, it negates
    exactly when the unit it matches best does, and (with `embeddings` and `unit_vectors`) it is within
    `MIN_COSINE` of a cited unit. `Check.reason` says why a sentence was dropped.
    """
    numbers = [n for n in cited_numbers(sentence) if 1 <= n <= len(sources)]
    bare = strip_citations(sentence)
    if not re.search(r"\w", bare):
        return Check("", False, "empty")
    if not numbers:
        return Check(bare, False, "cites a source it was not given" if cited_numbers(sentence) else "cites no source")
    if bare.endswith("?"):
        # SmolLM2 copies a note's question heading as if it answered ("Why is each Availability Zone isolated from
        # other Availability Zones? [1]"): every word is the note's, and it answers nothing.
        return Check(bare, False, "a question, not an answer")
    if " > " in bare:
        # SmolLM2 copies a source's header line ("The System Design Primer > Load Balancer > Horizontal scaling")
        # as its answer: every word is the source's, and on the system-design dev set it turned an unanswerable
        # question into an answer.
        return Check(bare, False, "copies a source's heading line")
    # Each citation vouches for one unit of its source (a sentence or list item, with the headings it sits
    # under), the one that says most of the sentence: words picked from all over a long section are no claim the
    # note makes. SmolLM2 wrote "Chubby - Lock service for loosely-coupled distributed systems from LinkedIn"
    # over a table whose Chubby row says "from Google" and whose LinkedIn is in another row.
    chosen = [_closest_unit(bare, sources[n - 1]) for n in numbers]
    said = "\n".join(whole for whole, _ in chosen)
    # Numbers, versions and sizes verbatim, and first: a made-up figure is the commonest invention, and "3.11"
    # is the words "3" and "11" to the word rule below.
    if extra := sorted(_numbers(bare) - _numbers(said)):
        return Check(bare, False, f"number not in the cited source: {', '.join(extra)}")
    words = _words(bare)
    if not words:
        # "Yes. [1]" or "It is. [1]": nothing to check it against, so nothing the user can trust.
        return Check(bare, False, "says nothing that can be checked")
    if question and set(words) <= set(_words(question)):
        # "What is CloudFront?" -> "CloudFront [1]": true to its source, and no answer. 3 of SmolLM2's 9 kept
        # sentences on the AWS dev set were such echoes.
        return Check(bare, False, "only repeats the question")
    if missing := _unknown(bare, set(_words(said))):
        return Check(bare, False, f"not in the cited source: {', '.join(missing[:5])}")
    if unknown := _unnamed(bare, said):
        return Check(bare, False, f"not named in the cited source: {', '.join(unknown[:5])}")
    closest = max((text for _, text in chosen), key=lambda u: len(set(words) & set(_words(u))))
    if _negated(bare) != _negated(closest):
        return Check(bare, False, "negates what the cited source says" if _negated(bare) else "drops a negation")
    rows = [v for n in numbers for _, v in (unit_vectors or {}).get(sources[n - 1].key, ())]
    if embeddings is not None and rows:
        vector = np.asarray(embeddings.embed_query(bare), dtype=np.float32)
        cosine = float(np.max(np.asarray(rows, dtype=np.float32) @ vector))
        if cosine < MIN_COSINE:
            return Check(bare, False, f"far in meaning from the cited source (cosine {cosine:.2f})")
    return Check(f"{bare} " + "".join(f"[{n}]" for n in numbers), True)


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
