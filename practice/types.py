"""The plain data practice hands on: key points, questions, grades."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class KeyPoint:
    """One thing a good answer states, quoted from its section with the lines it sits on."""

    text: str
    line_start: int
    line_end: int


@dataclass(frozen=True)
class Question:
    """A question tied to one section and to 1-5 key points taken from its text.

    `kind` is "definition", "list", "steps", "comparison" or "cloze"; for a cloze, `term` is the blanked word(s)
    and the one key point is the sentence it was blanked from. `id` derives from the section, kind and key
    points, so the same text gives the same id on every run and an edited section gives new ones.
    """

    id: str
    section_key: str
    kind: str
    text: str
    key_points: tuple[KeyPoint, ...]
    heading_path: tuple[str, ...] = ()
    term: str = ""

    @property
    def path(self) -> str:
        return self.section_key.split("#", 1)[0]

    def as_json(self) -> dict:
        """The `quiz --json` line: `{"id", "question", "section", "kind", "key_points"}`."""
        return {
            "id": self.id,
            "question": self.text,
            "section": self.section_key,
            "kind": self.kind,
            "key_points": [p.text for p in self.key_points],
        }


@dataclass(frozen=True)
class Missed:
    """A key point the answer did not state, with the `[n]` citation (`path#anchor`, lines) to read it in."""

    point: str
    citation: str


@dataclass(frozen=True)
class Grade:
    """A score 0-100 from key-point coverage, what was covered and what was missed.

    `elsewhere` names the section an answer was closer to than its own (no credit), empty otherwise.
    """

    score: int
    covered: tuple[str, ...]
    missed: tuple[Missed, ...]
    elsewhere: str = ""
    similarities: tuple[float, ...] = field(default=(), compare=False)

    def as_json(self) -> dict:
        """The `grade --json` line: `{"score", "covered", "missed": [{"point", "citation"}]}`."""
        return {
            "score": self.score,
            "covered": list(self.covered),
            "missed": [{"point": m.point, "citation": m.citation} for m in self.missed],
        }
