"""Follow-up questions -> standalone queries, without an LLM: the previous turn's topic is known."""

from __future__ import annotations

import re
from dataclasses import dataclass

from index.keyword import facets

_PRONOUN = re.compile(r"\b(it|its|it's|they|them|their|this|that|these|those)\b", re.IGNORECASE)
# "And the Kubernetes one?", "What about SNS?", "How about in Europe?": the user swaps the subject and keeps
# the question.
_ELLIPSIS = re.compile(
    r"^\s*(and|also|what about|how about|same for|and what about|or)\b|\b(the|that|this|which)\s+(\w+\s+)?ones?\b",
    re.IGNORECASE,
)
# A name typed before the pronoun is what the pronoun points at: "What is CloudTrail and what does it log?".
_NAME_BEFORE = re.compile(r"^\W*\w+\b.*?\b([A-Z][A-Za-z0-9]+|[A-Z0-9]{2,})\b")
_LEADING = re.compile(r"^\s*(and what about|what about|how about|same for|and|also|or)\b[\s,]*", re.IGNORECASE)
# Pronouns that point at no earlier noun: "Is it possible ...", "it depends", "this is".
_DUMMY = re.compile(r"\b(is it (possible|true|worth|better|ok|okay|necessary)|it depends)\b", re.IGNORECASE)
# "Why?", "Tell me more", "Any example?": a question with nothing of its own to search for is about the last topic.
_BARE_WORDS = frozenset(
    "why how what when where which who more detail details example examples explain elaborate tell me give "
    "an a the any some please go on further else so really mean meaning".split()
)
_FRAME = re.compile(r"^\s*((what|which|how|why|when|where|who)\b[^?]*?\b(is|are|does|do|can|should)\b)", re.IGNORECASE)


@dataclass(frozen=True)
class Topic:
    """What the previous turn was about: its question, and the title and parent heading of what it cited."""

    question: str
    title: str = ""
    category: str = ""


@dataclass(frozen=True)
class Condensed:
    """A question made standalone. `kind` is "none", "pronoun", "ellipsis" or "bare"; `category` is the heading
    an ellipsis asks within (the previous topic's parent)."""

    question: str
    standalone: str
    kind: str = "none"
    category: str = ""


def refers_back(question: str) -> str:
    """How a question leans on the previous turn: "pronoun", "ellipsis", "bare" or "none".

    `"How is it different from SNS?"` -> `"pronoun"`; `"And the Kubernetes one?"` -> `"ellipsis"`;
    `"Tell me more"` -> `"bare"`
    """
    words = re.findall(r"[a-z]+", question.lower())
    # "Any downsides?" names a facet (Pros / Cons) and no subject: the subject is the last topic's.
    if words and all(word in _BARE_WORDS or facets(word) for word in words):
        return "bare"
    if _ELLIPSIS.search(question):
        return "ellipsis"
    pronoun = _PRONOUN.search(_DUMMY.sub(_blank, question))
    if pronoun and not _NAME_BEFORE.match(question[: pronoun.start()]):
        return "pronoun"
    return "none"


def _blank(match: re.Match) -> str:
    """Blank out a match, keeping offsets: a dummy "it" must not be taken for a pronoun, nor moved."""
    return " " * len(match.group(0))


def condense(question: str, topic: Topic | None) -> Condensed:
    """Rewrite a question that refers back into one that stands alone.

    With topic SQS: `"How is it different from SNS?"` -> `"How is SQS (Simple Queue Service) different from SNS?"`
    With topic ECS in "Container Services": `"And the Kubernetes one?"` ->
    `"What is the Kubernetes one in Container Services?"`
    """
    kind = refers_back(question) if topic else "none"
    if topic is None or kind == "none":
        return Condensed(question, question)
    subject = topic.title or topic.question
    if kind == "bare":
        return Condensed(question, f"{question.strip()} — about {subject}", kind)
    if kind == "pronoun":
        def swap(match: re.Match) -> str:
            word = match.group(1).lower()
            return f"{subject}'s" if word in ("its", "their") else subject

        # The first pronoun that is not part of a dummy phrase ("Is it possible to run it ...").
        pronoun = _PRONOUN.search(_DUMMY.sub(_blank, question))
        assert pronoun is not None  # refers_back found it
        standalone = question[: pronoun.start()] + swap(pronoun) + question[pronoun.end() :]
        return Condensed(question, standalone, kind)
    rest = _LEADING.sub("", question).strip().rstrip("?").strip()
    frame = _FRAME.match(topic.question)
    head = f"{frame.group(1)} {rest}" if frame and not _FRAME.match(rest) else rest
    where = f" in {topic.category}" if topic.category else ""
    return Condensed(question, f"{head[:1].upper()}{head[1:]}{where}?", kind, topic.category)
