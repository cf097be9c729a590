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
class Generation:
    """How fast an LLM wrote an answer: seconds until its first token, and tokens (streamed pieces) after it.

    `Generation(first_token=0.5, tokens=41, seconds=1.5)` -> 41 tokens in the 1.0 s after the first: 41.0 tokens/s.
    """

    first_token: float
    tokens: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        writing = self.seconds - self.first_token
        return self.tokens / writing if writing > 0 else 0.0


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
    generation: Generation | None = None  # set when an LLM wrote (or tried to write) the answer

    @property
    def rewritten(self) -> bool:
        return self.standalone != self.question
