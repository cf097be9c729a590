"""The practice file: questions, reviews and FSRS cards in SQLite, next to the index, readable by its owner only.

Question ids derive from their section's text (see `practice.generate.question_id`), so re-indexing unchanged
notes finds the same ids and their history; a question whose section changed or went away is marked "gone"
(kept with its history, never asked), and comes back if the text does. "retired" is the user's "never ask this
again".
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from index import private_sqlite
from practice.schedule import ReviewState, replay
from practice.types import KeyPoint, Question

FILE_NAME = "practice.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS questions (
    id TEXT PRIMARY KEY, section_key TEXT NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL,
    key_points TEXT NOT NULL, heading_path TEXT NOT NULL, term TEXT NOT NULL DEFAULT '',
    edited TEXT, phrased TEXT, status TEXT NOT NULL DEFAULT 'active', ordinal INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS reviews (
    n INTEGER PRIMARY KEY AUTOINCREMENT, question_id TEXT NOT NULL, at TEXT NOT NULL,
    answer TEXT NOT NULL DEFAULT '', score INTEGER NOT NULL, override INTEGER
);
CREATE INDEX IF NOT EXISTS reviews_question ON reviews(question_id);
CREATE TABLE IF NOT EXISTS cards (question_id TEXT PRIMARY KEY, card TEXT NOT NULL, due TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class SyncCounts:
    added: int
    gone: int
    kept: int


@dataclass(frozen=True)
class Review:
    question_id: str
    section_key: str
    at: datetime
    score: int


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


class PracticeStore:
    """One practice file. Each call opens and closes its own connection, so threads (Streamlit) can share it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        private_sqlite.create(path, _SCHEMA)

    @classmethod
    def beside(cls, index_dir: Path) -> PracticeStore:
        """The practice file of the index in `index_dir`."""
        return cls(index_dir / FILE_NAME)

    def _db(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return private_sqlite.connect(self.path)

    def sync(self, questions: Sequence[Question]) -> SyncCounts:
        """Make the live questions exactly `questions`: new ones added, those no longer generated marked gone.

        A user's edits and retirements, and every review, are kept.
        """
        with self._db() as db:
            known = dict(db.execute("SELECT id, status FROM questions").fetchall())
            ids = {q.id for q in questions}
            added = 0
            for n, q in enumerate(questions):
                if q.id not in known:
                    added += 1
                    db.execute(
                        "INSERT INTO questions (id, section_key, kind, text, key_points, heading_path, term, ordinal)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            q.id, q.section_key, q.kind, q.text,
                            json.dumps([[p.text, p.line_start, p.line_end] for p in q.key_points]),
                            json.dumps(list(q.heading_path)), q.term, n,
                        ),
                    )
                else:
                    db.execute(
                        "UPDATE questions SET ordinal = ?, status = CASE status WHEN 'gone' THEN 'active' ELSE status"
                        " END WHERE id = ?",
                        (n, q.id),
                    )
            gone = [i for i, status in known.items() if i not in ids and status != "gone"]
            db.executemany("UPDATE questions SET status = 'gone' WHERE id = ?", [(i,) for i in gone])
        return SyncCounts(added, len(gone), len(ids) - added)

    def questions(self, status: str = "active") -> list[Question]:
        """The questions with this status in note order, a user's edited wording in place of the generated one."""
        with self._db() as db:
            rows = db.execute(
                "SELECT id, section_key, kind, COALESCE(edited, phrased, text), key_points, heading_path, term"
                " FROM questions"
                " WHERE status = ? ORDER BY ordinal",
                (status,),
            ).fetchall()
        return [
            Question(i, key, kind, text, tuple(KeyPoint(*p) for p in json.loads(points)), tuple(json.loads(path)), term)
            for i, key, kind, text, points, path, term in rows
        ]

    def question(self, question_id: str) -> Question | None:
        for status in ("active", "retired", "gone"):
            for q in self.questions(status):
                if q.id == question_id:
                    return q
        return None

    def edit(self, question_id: str, text: str) -> None:
        """Reword a question; its key points (and so its id and history) stay."""
        with self._db() as db:
            db.execute("UPDATE questions SET edited = ? WHERE id = ?", (" ".join(text.split()) or None, question_id))

    def needs_phrasing(self, question_id: str) -> bool:
        """Whether a question still has its offline wording (neither a model nor the user reworded it)."""
        with self._db() as db:
            row = db.execute("SELECT edited, phrased FROM questions WHERE id = ?", (question_id,)).fetchone()
        return row is not None and row == (None, None)

    def set_phrasing(self, question_id: str, text: str) -> None:
        """A chat model's wording; the user's own edit still wins over it."""
        with self._db() as db:
            db.execute("UPDATE questions SET phrased = ? WHERE id = ?", (text, question_id))

    def retire(self, question_id: str) -> None:
        """Never ask this again."""
        with self._db() as db:
            db.execute("UPDATE questions SET status = 'retired' WHERE id = ?", (question_id,))

    def record(self, question_id: str, score: int, at: datetime, answer: str = "") -> None:
        """A graded answer: kept in the history and fed to the question's FSRS card."""
        with self._db() as db:
            db.execute(
                "INSERT INTO reviews (question_id, at, answer, score) VALUES (?, ?, ?, ?)",
                (question_id, _iso(at), answer, int(score)),
            )
            self._reschedule(db, question_id)

    def override(self, question_id: str, score: int) -> None:
        """"I knew that": the last grade of this question is replaced by `score`, and the schedule follows it."""
        with self._db() as db:
            db.execute(
                "UPDATE reviews SET override = ? WHERE n = (SELECT MAX(n) FROM reviews WHERE question_id = ?)",
                (int(score), question_id),
            )
            self._reschedule(db, question_id)

    def _reschedule(self, db: sqlite3.Connection, question_id: str) -> None:
        rows = db.execute(
            "SELECT at, COALESCE(override, score) FROM reviews WHERE question_id = ? ORDER BY n", (question_id,)
        ).fetchall()
        done = replay((_parse(at), score) for at, score in rows)
        if done is not None:
            card, due = done
            db.execute("INSERT OR REPLACE INTO cards VALUES (?, ?, ?)", (question_id, card, _iso(due)))

    def states(self) -> dict[str, ReviewState]:
        """Per question asked at least once: when it is due, its last (overridden) score, how often asked."""
        with self._db() as db:
            rows = db.execute(
                "SELECT c.question_id, c.due, (SELECT COALESCE(override, score) FROM reviews r WHERE r.question_id ="
                " c.question_id ORDER BY n DESC LIMIT 1), (SELECT COUNT(*) FROM reviews r WHERE r.question_id ="
                " c.question_id) FROM cards c"
            ).fetchall()
        return {i: ReviewState(_parse(due), last, count) for i, due, last, count in rows}

    def history(self) -> list[Review]:
        """Every graded answer, oldest first, with the score the schedule used."""
        with self._db() as db:
            rows = db.execute(
                "SELECT r.question_id, q.section_key, r.at, COALESCE(r.override, r.score) FROM reviews r"
                " JOIN questions q ON q.id = r.question_id ORDER BY r.n"
            ).fetchall()
        return [Review(i, key, _parse(at), score) for i, key, at, score in rows]

    def interview(self) -> datetime | None:
        with self._db() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'interview'").fetchone()
        return _parse(row[0]) if row else None

    def set_interview(self, when: datetime | None) -> None:
        """The interview date (None clears it): before it, every question comes once more, weakest first."""
        with self._db() as db:
            if when is None:
                db.execute("DELETE FROM meta WHERE key = 'interview'")
            else:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('interview', ?)", (_iso(when),))
