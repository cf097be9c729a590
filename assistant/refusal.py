"""Deciding that the notes do not answer a question, instead of answering from a weak match."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from index.keyword import STOPWORDS, tokenize
from index.retrieve import Hit

# Calibrated on the dev set with the packaged MiniLM (see README, "Saying no"): answerable questions there
# reach a best dense similarity of 0.45 or more, questions about things absent from the notes 0.30-0.55.
# Below FLOOR nothing in the notes is close. A question naming something the notes never mention is declined
# unless the match is as strong as STRONG, since a paraphrase can name things its answer does not.
FLOOR = 0.32
STRONG = 0.62

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-_/]*[A-Za-z0-9]|[A-Za-z0-9]")
_QUESTION_WORDS = frozenset(
    "what which how why when where who whom whose is are can does do should could would".split()
)


@dataclass(frozen=True)
class Verdict:
    refused: bool
    reason: str
    unknown: tuple[str, ...] = ()


def name_like(question: str) -> list[str]:
    """Words that name something: capitalized past the first word, acronyms, or letters mixed with digits.

    `"What is AWS Glue used for?"` -> `["AWS", "Glue"]`; `"cost of an m5.large?"` -> `["m5.large"]`
    """
    words = _WORD.findall(question)
    out = []
    for i, word in enumerate(words):
        bare = word.strip(".-_/")
        lower = bare.lower()
        if lower in STOPWORDS or lower in _QUESTION_WORDS or lower == "i":
            continue
        mixed = any(c.isdigit() for c in bare) and any(c.isalpha() for c in bare)
        capital = any(c.isupper() for c in bare) and (i > 0 or bare.isupper() and len(bare) > 1)
        if mixed or capital:
            out.append(bare)
    return out


def unknown_names(question: str, vocabulary: set[str]) -> list[str]:
    """Named terms of the question that never occur in the notes."""
    unknown = []
    for name in name_like(question):
        terms = tokenize(name)
        if terms and not any(t in vocabulary for t in terms[:1]):
            unknown.append(name)
    return unknown


def judge(question: str, hits: Sequence[Hit], vocabulary: set[str]) -> Verdict:
    """Refuse when nothing is close, or when the question names what the notes never mention and the match is
    not strong."""
    if not hits:
        return Verdict(True, "nothing in the notes matches")
    best = max(hit.dense for hit in hits[:3])
    unknown = tuple(unknown_names(question, vocabulary))
    if unknown and best < STRONG:
        return Verdict(True, f"your notes never mention {', '.join(unknown)}", unknown)
    if best < FLOOR:
        return Verdict(True, f"the closest note is a weak match (similarity {best:.2f})")
    return Verdict(False, "")
