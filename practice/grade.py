"""Grading an answer against a question's key points: meaning, not wording, measured with the embedding model.

A key point counts as covered when one of the answer's sentences is close enough to it in MiniLM space
(`PARAPHRASE`), or fairly close (`RELATED`) and also states one of its specific terms (words the question
did not give away, rare enough in English to carry meaning). An answer closer to another section's text than
to its own section's gets no credit: it is the right answer to another question. The thresholds were
calibrated on a labelled set of answers (tests/data/practice/labelled_aws.jsonl) and checked on a second set
over other notes (labelled_sdp.jsonl): see `tests/test_practice_grading.py` and the closing note of issue 9.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from langchain_core.embeddings import Embeddings

from corpus.chunking import split_sentences
from corpus.types import Section
from practice.types import Grade, KeyPoint, Missed, Question

_WORD = re.compile(r"[a-z0-9][a-z0-9'’-]*")
_MAX_ANSWER_CHARS = 4000  # a paste of a whole note is not an answer; MiniLM reads ~256 word pieces a piece anyway


@dataclass(frozen=True)
class Thresholds:
    """Cosine similarities (MiniLM, normalised) that decide coverage; see the module docstring."""

    # Calibrated on labelled_aws.jsonl (43 answers): `paraphrase` 0.70-0.85 with `related` 0.35-0.45 and
    # `elsewhere_margin` 0.10-0.30 all put 42 of 43 answers in their band; these are inside that plateau, and
    # put 21 of 21 of labelled_sdp.jsonl in band (0.70 lets a fluent wrong answer about indices score 40).
    # Fluent wrong answers reach 0.64 without a specific term, answers copied from another section 0.71.
    paraphrase: float = 0.80
    related: float = 0.45
    # An answer whose best match elsewhere beats its best match here by this much was written for elsewhere.
    # Right answers in the labelled sets were at most 0.07 closer to a neighbouring section (weak vs eventual
    # consistency); answers copied from another section at least 0.23.
    elsewhere_margin: float = 0.15
    # Zipf frequency (wordfreq) below which a word is specific enough to count as stating a point: "latency" 3.6
    # and "serverless" 1.9 are, "data" 5.6 and "service" 5.4 are not.
    specific_zipf: float = 5.0


THRESHOLDS = Thresholds()


class Neighbours(Protocol):
    """What grading asks of the index (`ChromaIndex`): the sections whose sentences are nearest a vector, and
    the sections themselves (for their heading paths)."""

    sections: Sequence[Section]

    def search_units(self, vector: list[float], k: int) -> list[tuple[str, float]]: ...


def answer_pieces(answer: str) -> list[str]:
    """The sentences and list items of an answer, and the answer whole when it has several.

    `"Runs code. No servers; pay per use"` -> `["Runs code.", "No servers", "pay per use", "Runs code. No …"]`.
    """
    text = answer[:_MAX_ANSWER_CHARS]
    pieces: list[str] = []
    for line in text.split("\n"):
        line = line.strip().lstrip("-*•0123456789.) ").strip()
        for sentence in split_sentences(line):
            pieces += [p.strip() for p in sentence.split(";") if p.strip()]
    if len(pieces) > 1:
        pieces.append(" ".join(text.split()))
    return pieces


def _stem(word: str) -> str:
    """A light stem so "caching" meets "cache" and "databases" meets "database": the first 5 letters."""
    return word[:5]


def specific_terms(point: str, given: str, zipf_below: float) -> set[str]:
    """Words of a key point that the question did not give and that are rare enough to carry meaning, stemmed.

    `("Serverless compute service that runs code", "What is Lambda?", 5.0)` -> `{"serve", "compu"}`.
    """
    from index.spelling import zipf

    known = {_stem(w) for w in _WORD.findall(given.lower())}
    out = set()
    for word in _WORD.findall(point.lower()):
        if len(word) >= 3 and _stem(word) not in known and (zipf(word) < zipf_below or any(c.isdigit() for c in word)):
            out.add(_stem(word))
    return out


def _words(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower())}


def _cloze_covered(question: Question, answer: str) -> bool:
    """A cloze is answered by naming its blank: most of the term's words, or an alternative name of it."""
    from practice.generate import names_of

    said = _words(answer)
    for name in names_of(question.term):
        wanted = _words(name)
        if wanted and len(wanted & said) * 2 >= len(wanted) + (len(wanted) > 1):
            return True
    return False


def citation_of(question: Question, point: KeyPoint) -> str:
    """Where a key point is quoted from: `aws.md#lambda, lines 42-42`."""
    return f"{question.section_key}, lines {point.line_start}-{point.line_end}"


def family(question: Question, neighbours: Neighbours) -> set[str]:
    """The question's section and those above or below it in its file's heading tree: a list section and the
    section it sits under explain the same thing ("Key features of an Availability Zone" under "Availability
    Zone"), so an answer closer to one of them was still written for this question."""
    keys = {question.section_key}
    path = tuple(question.heading_path)
    for s in getattr(neighbours, "sections", ()):
        n = min(len(path), len(s.heading_path))
        if s.path == question.path and s.heading_path[:n] == path[:n]:
            keys.add(s.key)
    return keys


def grade(
    question: Question,
    answer: str,
    embeddings: Embeddings,
    neighbours: Neighbours | None = None,
    thresholds: Thresholds = THRESHOLDS,
) -> Grade:
    """Score an answer 0-100 by the share of the question's key points it states.

    An empty answer scores 0 without embedding anything. Each missed point is quoted with its citation.
    """
    points = question.key_points
    pieces = answer_pieces(answer) if answer and any(ch.isalnum() for ch in answer) else []
    if not pieces or not points:
        return Grade(0, (), tuple(Missed(p.text, citation_of(question, p)) for p in points))
    if question.kind == "cloze":
        ok = _cloze_covered(question, answer)
        covered = tuple(p.text for p in points) if ok else ()
        missed = () if ok else tuple(Missed(p.text, citation_of(question, p)) for p in points)
        return Grade(100 if ok else 0, covered, missed)
    vectors = np.array(embeddings.embed_documents([*pieces, *(p.text for p in points)]), dtype=float)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12
    answer_v, point_v = vectors[: len(pieces)], vectors[len(pieces) :]
    sims = answer_v @ point_v.T  # pieces x points
    best = sims.max(axis=0)
    given = f"{question.text} {' '.join(question.heading_path)}"
    said = _words(answer)
    terms_of = [specific_terms(p.text, given, thresholds.specific_zipf) for p in points]
    # A term two key points share ("functions" in two of Lambda's) cannot tell which of them an answer states.
    shared = {t for n, terms in enumerate(terms_of) for t in terms if any(t in other for other in terms_of[n + 1 :])}
    covered, missed = [], []
    for point, sim, terms in zip(points, best, terms_of, strict=True):
        terms = terms - shared
        states = sim >= thresholds.paraphrase or (sim >= thresholds.related and bool(terms & said))
        if states:
            covered.append(point.text)
        else:
            missed.append(Missed(point.text, citation_of(question, point)))
    elsewhere = ""
    if neighbours is not None and covered:
        whole = vectors[len(pieces) - 1].tolist()  # the whole answer (or its only piece)
        found = neighbours.search_units(whole, 10)
        ours = family(question, neighbours)
        own = max([s for key, s in found if key in ours] or [float(best.max())])
        other = [(s, key) for key, s in found if key not in ours]
        if other and max(other)[0] > own + thresholds.elsewhere_margin:
            elsewhere = max(other)[1]
    if elsewhere:
        missed = [Missed(p.text, citation_of(question, p)) for p in points]
        covered = []
    score = round(100 * len(covered) / len(points))
    return Grade(score, tuple(covered), tuple(missed), elsewhere, tuple(float(s) for s in best))


def pick_question(questions: Sequence[Question], text: str) -> Question | None:
    """The generated question a typed one is, ignoring case and spacing; None when it is none of them."""
    wanted = " ".join(text.lower().split())
    for q in questions:
        if " ".join(q.text.lower().split()) == wanted:
            return q
    return None
