"""Unit vectors (sentences and list items), embedded when a question first needs a section's, and kept.

The index embeds chunks only. Units were embedded at index time too, once: they were 82% of the texts and more
than half the tokens a full index embedded (the bundled notes: 189 of 250 texts; ../shared/notes-sdp: 1,775 of
2,161), which put a full index at 1.2-1.3x the time of LangChain's recipe on the same notes. A question reads the
units of eight sections (`index.retrieve.UNIT_SECTIONS`), so they are embedded then, for those sections
only, and kept by content hash: a section asked about again costs nothing, an edited one gets a new hash.
Beside an index on disk they are also kept in `units.sqlite3` (`UnitFile`), so a new process (a cold `ask`, the
app restarted) finds the units of sections asked about before.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from corpus.chunking import section_units
from corpus.types import Section, Unit
from index import private_sqlite

# Sections whose unit vectors are kept: at about 6 units a section (../shared/notes-sdp averages 6.1), 4,096
# sections are about 25,000 vectors of 384 floats, 38 MB, and hundreds of questions' worth of sections.
KEPT_SECTIONS = 4096

UnitRows = list[tuple[int, np.ndarray]]  # (unit ordinal, unit vector), in reading order


def unit_embed_text(section: Section, unit: Unit) -> str:
    """What is embedded for a unit: the section's title, the label the unit hangs under, then its text.

    The title goes in front: "Fully managed messaging service." alone does not say it is SNS; a list item keeps
    the label it hangs under: "Cons: higher latency between regions"; text under a commented-out heading says
    what it is about by that heading ("Storage Gateway: Your on-premise data can be backed up").
    """
    label = unit.context or (unit.heading if not unit.text.startswith(unit.heading) else "")
    context = f"{label}: " if label else ""
    return f"{section.title}: {context}{unit.text}"


_SCHEMA = "CREATE TABLE IF NOT EXISTS units (hash TEXT PRIMARY KEY, ordinals BLOB NOT NULL, vectors BLOB NOT NULL);"


class UnitFile:
    """Unit vectors by content hash in a private SQLite file beside the index. A content hash names the model
    and every unit's text (`index.store.section_hash`), so a row is never stale: rows of sections no longer in the
    notes are dropped at each write (`keep_only`).

    It is a cache: a file that cannot be read or written (damaged, a read-only folder) is passed over, and the
    vectors are embedded again, never an error for the question that asked."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def get(self, hashes: Sequence[str]) -> dict[str, UnitRows]:
        with contextlib.suppress(sqlite3.Error, OSError, ValueError):
            return self._get(hashes)
        return {}

    def put(self, rows: dict[str, UnitRows]) -> None:
        with contextlib.suppress(sqlite3.Error, OSError):
            self._put(rows)

    def keep_only(self, live: Collection[str]) -> None:
        """Drop the rows of every content hash not in `live`."""
        with contextlib.suppress(sqlite3.Error, OSError):
            self._keep_only(live)

    def _get(self, hashes: Sequence[str]) -> dict[str, UnitRows]:
        if not hashes or not self.path.exists():
            return {}
        out: dict[str, UnitRows] = {}
        with private_sqlite.connect(self.path) as db:
            for start in range(0, len(hashes), 500):  # SQLite's limit on parameters is 999 in older builds
                part = list(hashes[start : start + 500])
                marks = ",".join("?" * len(part))
                for h, ordinals, vectors in db.execute(
                    f"SELECT hash, ordinals, vectors FROM units WHERE hash IN ({marks})", part
                ):
                    ords = np.frombuffer(ordinals, dtype=np.int32)
                    matrix = np.frombuffer(vectors, dtype=np.float32).reshape(len(ords), -1)
                    out[h] = [(int(o), row) for o, row in zip(ords, matrix, strict=True)]
        return out

    def _put(self, rows: dict[str, UnitRows]) -> None:
        if not rows:
            return
        private_sqlite.create(self.path, _SCHEMA)
        with private_sqlite.connect(self.path) as db:
            db.executemany(
                "INSERT OR REPLACE INTO units VALUES (?, ?, ?)",
                [
                    (
                        h,
                        np.array([o for o, _ in its], dtype=np.int32).tobytes(),
                        np.array([v for _, v in its], dtype=np.float32).tobytes(),
                    )
                    for h, its in rows.items()
                ],
            )

    def _keep_only(self, live: Collection[str]) -> None:
        if not self.path.exists():
            return
        with private_sqlite.connect(self.path) as db:
            gone = [h for (h,) in db.execute("SELECT hash FROM units") if h not in live]
            db.executemany("DELETE FROM units WHERE hash = ?", [(h,) for h in gone])


class UnitVectors:
    """Unit vectors by section, embedded on first use and kept (least recently used dropped past `capacity`), in
    memory and, given a `UnitFile`, on disk."""

    def __init__(self, embeddings: Embeddings, capacity: int = KEPT_SECTIONS, file: UnitFile | None = None) -> None:
        self.embeddings = embeddings
        self.capacity = capacity
        self.file = file
        self._kept: OrderedDict[str, UnitRows] = OrderedDict()  # content hash -> its units' rows
        # A question and the app's background index may ask from two threads; one embeds at a time.
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every vector kept in memory (a benchmark's question in a new process)."""
        with self._lock:
            self._kept.clear()

    def keep_only(self, live: Collection[str]) -> None:
        """After a write: the file keeps the units of the live sections only."""
        if self.file is not None:
            self.file.keep_only(live)

    def of(self, sections: Sequence[tuple[Section, str]]) -> dict[str, UnitRows]:
        """`{section key: [(ordinal, vector), ...]}` for `(section, content hash)` pairs; the units of every
        section not kept are embedded in one call, so the model batches them by length."""
        with self._lock:
            kept = self._kept
            todo = [(s, h) for s, h in dict(((h, (s, h)) for s, h in sections)).values() if h not in kept]
            if todo and self.file is not None:
                found = self.file.get([h for _, h in todo])
                kept.update(found)
                todo = [(s, h) for s, h in todo if h not in found]
            if todo:
                units = [(h, u, unit_embed_text(s, u)) for s, h in todo for u in section_units(s)]
                vectors = self.embeddings.embed_documents([text for _, _, text in units]) if units else []
                for _, h in todo:
                    kept[h] = []
                for (h, unit, _), vector in zip(units, vectors, strict=True):
                    kept[h].append((unit.ordinal, np.asarray(vector, dtype=np.float32)))
                if self.file is not None:
                    self.file.put({h: kept[h] for _, h in todo if kept[h]})
            out: dict[str, UnitRows] = {}
            for s, h in sections:
                kept.move_to_end(h)
                if kept[h]:
                    out[s.key] = kept[h]
            while len(kept) > self.capacity:
                kept.popitem(last=False)
            return out
