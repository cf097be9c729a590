"""Deciding that the notes do not answer a question, instead of answering from a weak match."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from index.keyword import STOPWORDS, root, tokenize
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


# A question about one thing ("What is a metaclass?", "How do generators work?", "How do I set up streaming
# replication?") whose head noun the notes never use is declined unless the match is very strong: the notes
# can be near the topic (Python, Postgres) without covering the thing asked about.
FOCUS_STRONG = 0.8
_FOCUS_FRAMES = (
    re.compile(r"^(?:what|who)(?:'s|\s+(?:is|are|was|were))\s+(?:an?\s+|the\s+)?(?P<x>.+)$", re.I),
    re.compile(r"^how\s+(?:do|does|did)\s+(?:an?\s+|the\s+)?(?P<x>.+?)\s+work\b.*$", re.I),
    re.compile(
        r"^how\s+(?:do|can|should)\s+(?:i|you|we)\s+(?:set\s*up|configure|use|create|enable|install|turn on)\s+"
        r"(?:an?\s+|the\s+)?(?P<x>.+)$",
        re.I,
    ),
    re.compile(r"^(?:explain|describe|define|tell me about)\s+(?:an?\s+|the\s+)?(?P<x>.+)$", re.I),
)
_PHRASE_END = re.compile(
    r"\s+(?:in|on|for|with|to|from|by|at|and|or|used|mean|means|do|does|work|works|when|if|vs|versus)\b|[?,.;:!]"
)
# Nouns that point at another noun: "the difference between A and B", "the downside of X".
_RELATIONAL = frozenset(
    "difference differences downside downsides advantage advantages benefit benefits purpose point role meaning "
    "use cost price size type kind example best way goal".split()
)


def focus_terms(question: str) -> list[str]:
    """Terms of the thing a "what is / how does X work" question asks about, head noun last; [] for others.

    `"How do Python metaclasses work?"` -> `["python", "metaclass"]`;
    `"What is the difference between SQS and SNS?"` -> `["sqs", "sns"]`
    """
    text = question.strip()
    for frame in _FOCUS_FRAMES:
        match = frame.match(text)
        if match is None:
            continue
        rest = match.group("x")
        words = rest.split()
        if words and words[0].lower().strip("?.,") in _RELATIONAL:
            after = re.search(r"\b(?:between|of|for)\s+(.+)$", rest, re.I)
            return tokenize(after.group(1).rstrip("?.! ")) if after else []
        return tokenize(_PHRASE_END.split(rest, maxsplit=1)[0])
    return []


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
    """Names in the question that the notes never mention, with the name words around them.

    With notes that mention AWS and functions: `"What is AWS Step Functions?"` -> `["AWS Step Functions"]`
    """
    names = name_like(question)
    unknown = []
    for phrase in _phrases(question, names):
        if any((terms := tokenize(word)) and terms[0] not in vocabulary for word in phrase.split()):
            unknown.append(phrase)
    return unknown


def _phrases(question: str, names: list[str]) -> list[str]:
    """Runs of adjacent name words: `("What is AWS Step Functions?", [AWS, Step, Functions])` -> one phrase."""
    phrases: list[str] = []
    words = _WORD.findall(question)
    run: list[str] = []
    wanted = list(names)
    for word in words:
        bare = word.strip(".-_/")
        if wanted and bare == wanted[0]:
            run.append(bare)
            wanted.pop(0)
            continue
        if run:
            phrases.append(" ".join(run))
            run = []
    if run:
        phrases.append(" ".join(run))
    return phrases


def _known(term: str, vocabulary: set[str]) -> bool:
    """Whether the notes use the term in some form: "warehouse" is known to notes that say "warehousing"."""
    if term in vocabulary:
        return True
    return root(term) in {root(word) for word in vocabulary if word[:3] == term[:3]}


def judge(question: str, hits: Sequence[Hit], vocabulary: set[str]) -> Verdict:
    """Refuse when nothing is close, or when the question names what the notes never mention and the match is
    not strong."""
    if not hits:
        return Verdict(True, "nothing in the notes matches")
    best = max(hit.dense for hit in hits[:3])
    unknown = tuple(unknown_names(question, vocabulary))
    if unknown and best < STRONG:
        return Verdict(True, f"they never mention {', '.join(unknown)}", unknown)
    focus = focus_terms(question)
    if focus and not _known(focus[-1], vocabulary) and best < FOCUS_STRONG:
        word = next((w for w in _WORD.findall(question) if tokenize(w)[:1] == [focus[-1]]), focus[-1])
        return Verdict(True, f"they never mention “{word}”", (word,))
    if best < FLOOR:
        return Verdict(True, f"the closest section is only a weak match (similarity {best:.2f})")
    return Verdict(False, "")
