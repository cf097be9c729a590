"""The plain data the chain hands on: turns, citations and answers."""

from __future__ import annotations

from dataclasses import dataclass, field

from index.retrieve import Hit


@dataclass(frozen=True)
class Turn:
    """One chat turn. An assistant turn remembers the sections it cited, so a follow-up knows its topic."""

    role: str  # "user" | "assistant"
    content: str
    cited: tuple[str, ...] = ()


@dataclass(frozen=True)
class Citation:
    """Source `[number]` of an answer: where it lives and which of its sentences the answer used."""

    number: int
    key: str
    path: str
    anchor: str
    heading_path: tuple[str, ...]
    line_start: int
    line_end: int
    hidden: bool
    quotes: tuple[str, ...]
    markdown: str
    score: float = 0.0


@dataclass(frozen=True)
class Answer:
    """A finished answer: its text with `[n]` markers, the sources they resolve to, and how it was found."""

    question: str
    standalone: str
    text: str
    citations: tuple[Citation, ...]
    refused: bool
    hits: tuple[Hit, ...]
    answerer: str
    related: tuple[Citation, ...] = ()
    notices: tuple[str, ...] = ()
    dropped: tuple[str, ...] = field(default=())
    seconds: float = 0.0

    @property
    def rewritten(self) -> bool:
        return self.standalone != self.question
