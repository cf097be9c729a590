"""Saved chats: one SQLite file beside the index (`chats.sqlite3`, 0600), so a chat survives a reload or a restart.

A chat is its questions in the order they were sent, each with the reply it got once it has one: a question is
saved the moment it is sent (so nothing typed is lost while an earlier one is answered), its reply when it is
finished. Replies are `Answer`s, kept as JSON (never pickle: the file is data, not code).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from assistant.types import Answer, Citation, Generation
from corpus.types import Block, Section
from index import private_sqlite
from index.retrieve import Hit

FILE_NAME = "chats.sqlite3"
TITLE_CHARS = 60  # a sidebar line; longer first questions end in "…"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chats (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chat TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    question TEXT NOT NULL,
    reply TEXT,
    sent REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_of_chat ON turns (chat, id);
"""


@dataclass(frozen=True)
class ChatInfo:
    id: str
    title: str
    updated: float


@dataclass(frozen=True)
class Reply:
    """What a question got: an `Answer`, a practice message (markdown built by `practice.chat`), an answer the
    user stopped (`stopped`, with the text written so far), or why it could not be answered (`error`)."""

    answer: Answer | None = None
    practice: str = ""
    stopped: str | None = None
    error: str = ""


@dataclass(frozen=True)
class Turn:
    """A question of a saved chat and its reply (None while it waits or is being answered)."""

    id: int
    question: str
    reply: Reply | None


def title_of(question: str) -> str:
    """A chat's title from its first question: one line, at most `TITLE_CHARS` characters.

    `"What is\\n Lambda?"` -> `"What is Lambda?"`
    """
    line = " ".join(question.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


# Replies to and from JSON: the dataclasses as dicts, the tuples they hold rebuilt on the way back.


def _section(data: dict) -> Section:
    blocks = tuple(Block(**block) for block in data.get("blocks", ()))
    fields = {**data, "heading_path": tuple(data["heading_path"]), "links": tuple(data.get("links", ()))}
    return Section(**fields | {"blocks": blocks})


def _citation(data: dict) -> Citation:
    return Citation(**{**data, "heading_path": tuple(data["heading_path"]), "quotes": tuple(data["quotes"])})


def answer_from_dict(data: dict) -> Answer:
    hits = tuple(Hit(**{**h, "section": _section(h["section"])}) for h in data["hits"])
    generation = Generation(**data["generation"]) if data.get("generation") else None
    return Answer(
        **{
            **data,
            "citations": tuple(_citation(c) for c in data["citations"]),
            "related": tuple(_citation(c) for c in data.get("related", ())),
            "hits": hits,
            "notices": tuple(data.get("notices", ())),
            "dropped": tuple(data.get("dropped", ())),
            "generation": generation,
        }
    )


def reply_to_json(reply: Reply) -> str:
    data = {"answer": asdict(reply.answer) if reply.answer else None, "practice": reply.practice}
    data["stopped"] = reply.stopped
    data["error"] = reply.error
    return json.dumps(data, ensure_ascii=False)


def reply_from_json(text: str) -> Reply:
    data = json.loads(text)
    answer = answer_from_dict(data["answer"]) if data.get("answer") else None
    return Reply(answer, data.get("practice", ""), data.get("stopped"), data.get("error", ""))


class ChatStore:
    """The chats of one index folder. Each call opens its own connection, so Streamlit's threads can share it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        private_sqlite.create(path, _SCHEMA)

    @classmethod
    def beside(cls, index_dir: Path) -> ChatStore:
        return cls(index_dir / FILE_NAME)

    def _db(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return private_sqlite.connect(self.path, foreign_keys=True)

    def create(self, first_question: str) -> str:
        """A new chat titled by its first question; returns its id."""
        chat_id = uuid.uuid4().hex[:12]
        now = time.time()
        with self._db() as db:
            db.execute("INSERT INTO chats VALUES (?, ?, ?, ?)", (chat_id, title_of(first_question), now, now))
        return chat_id

    def chats(self) -> list[ChatInfo]:
        """Every chat, the most recently used first."""
        with self._db() as db:
            rows = db.execute("SELECT id, title, updated FROM chats ORDER BY updated DESC, rowid DESC").fetchall()
        return [ChatInfo(*row) for row in rows]

    def exists(self, chat_id: str) -> bool:
        with self._db() as db:
            return db.execute("SELECT 1 FROM chats WHERE id = ?", (chat_id,)).fetchone() is not None

    def title(self, chat_id: str) -> str | None:
        with self._db() as db:
            row = db.execute("SELECT title FROM chats WHERE id = ?", (chat_id,)).fetchone()
        return row[0] if row else None

    def rename(self, chat_id: str, title: str) -> None:
        title = " ".join(title.split())
        if title:
            with self._db() as db:
                db.execute("UPDATE chats SET title = ? WHERE id = ?", (title, chat_id))

    def delete(self, chat_id: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM turns WHERE chat = ?", (chat_id,))
            db.execute("DELETE FROM chats WHERE id = ?", (chat_id,))

    def ask(self, chat_id: str, question: str) -> int:
        """Save a question just sent; returns its turn id."""
        now = time.time()
        with self._db() as db:
            cursor = db.execute("INSERT INTO turns (chat, question, sent) VALUES (?, ?, ?)", (chat_id, question, now))
            db.execute("UPDATE chats SET updated = ? WHERE id = ?", (now, chat_id))
        return int(cursor.lastrowid)

    def answer(self, turn_id: int, reply: Reply) -> None:
        with self._db() as db:
            db.execute("UPDATE turns SET reply = ? WHERE id = ?", (reply_to_json(reply), turn_id))

    def forget(self, turn_id: int) -> None:
        """Take a turn out of its chat (a question edited and sent again replaces it)."""
        with self._db() as db:
            db.execute("DELETE FROM turns WHERE id = ?", (turn_id,))

    def clear_reply(self, turn_id: int) -> None:
        """Make a turn wait for a reply again (regenerate)."""
        with self._db() as db:
            db.execute("UPDATE turns SET reply = NULL WHERE id = ?", (turn_id,))

    def turns(self, chat_id: str) -> list[Turn]:
        """The chat's questions in the order sent, each with its reply if it has one."""
        with self._db() as db:
            rows = db.execute("SELECT id, question, reply FROM turns WHERE chat = ? ORDER BY id", (chat_id,)).fetchall()
        return [Turn(row[0], row[1], reply_from_json(row[2]) if row[2] else None) for row in rows]
