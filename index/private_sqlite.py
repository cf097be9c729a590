"""SQLite files kept beside the index that only their owner may read: saved chats and practice history hold what
a person asked and answered, and quotes of their notes."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path


def create(path: Path, schema: str) -> None:
    """Make the file private from its first byte (a file created then chmod-ed is readable in between), in a
    private folder, and apply `schema` (idempotent: `CREATE ... IF NOT EXISTS`)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    with connect(path) as db:
        db.executescript(schema)


@contextlib.contextmanager
def connect(path: Path, foreign_keys: bool = False) -> Iterator[sqlite3.Connection]:
    """One connection for one block, committed when the block ends without an error. Each call opens its own, so
    Streamlit's threads can share a file. SQLite's journal files beside it are made private too."""
    db = sqlite3.connect(path, timeout=30)
    if foreign_keys:
        db.execute("PRAGMA foreign_keys = ON")
    try:
        with db:
            yield db
    finally:
        db.close()
    for extra in (path, *path.parent.glob(path.name + "-*")):  # the journal too
        with contextlib.suppress(FileNotFoundError):
            os.chmod(extra, 0o600)
