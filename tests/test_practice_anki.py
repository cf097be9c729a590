"""The Anki export: a real .apkg (a zip with Anki's SQLite collection) holding one note per question."""

from __future__ import annotations

import io
import sqlite3
import zipfile

from corpus.parse import parse_note
from corpus.types import Note
from practice.anki import apkg_bytes
from practice.generate import questions_for

NOTE = "# Queues\n\n## SQS\n\nManaged message queue service for decoupling the components of a cloud application.\n"


def test_export_is_an_anki_package_with_one_note_per_question(tmp_path):
    questions = questions_for(parse_note(Note("q.md", NOTE)))
    data = apkg_bytes(questions)
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        (tmp_path / "collection.anki2").write_bytes(package.read("collection.anki2"))
    db = sqlite3.connect(tmp_path / "collection.anki2")
    try:
        rows = db.execute("SELECT guid, flds FROM notes").fetchall()
    finally:
        db.close()
    assert sorted(guid for guid, _ in rows) == sorted(q.id for q in questions)
    front, back, source = rows[0][1].split("\x1f")
    assert "SQS" in front or "_____" in front
    assert "decoupling the components" in back
    assert "q.md#sqs" in source
