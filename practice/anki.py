"""The practice questions as an Anki deck (`.apkg`), for people who already review in Anki."""

from __future__ import annotations

import hashlib
import html
import tempfile
from collections.abc import Sequence
from pathlib import Path

from practice.types import Question

# Anki tells note types and decks apart by these numbers: fixed, so a re-export updates the same deck in Anki.
MODEL_ID = 1_607_392_319
_CARD_BACK = "{{FrontSide}}<hr id=answer>{{Answer}}<p><small>{{Source}}</small></p>"


def deck_id(name: str) -> int:
    """A stable id for a deck name: `"Notes practice"` -> the same 31-bit number on every export."""
    return int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) >> 1


def apkg_bytes(questions: Sequence[Question], deck_name: str = "Notes practice") -> bytes:
    """One Anki note per question: the question in front, its key points and `path#anchor` on the back.

    Each note's guid derives from the question id, so importing a newer export updates the cards Anki already
    has (keeping their review history) instead of adding copies.
    """
    import genanki

    model = genanki.Model(
        MODEL_ID,
        "notes-assistant question",
        fields=[{"name": "Question"}, {"name": "Answer"}, {"name": "Source"}],
        templates=[{"name": "Recall", "qfmt": "{{Question}}", "afmt": _CARD_BACK}],
    )
    deck = genanki.Deck(deck_id(deck_name), deck_name)
    for q in questions:
        points = "".join(f"<li>{html.escape(p.text)}</li>" for p in q.key_points)
        source = f"{html.escape(' > '.join(q.heading_path))} · {html.escape(q.section_key)}"
        deck.add_note(
            genanki.Note(model=model, fields=[html.escape(q.text), f"<ul>{points}</ul>", source], guid=q.id)
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "deck.apkg"
        genanki.Package(deck).write_to_file(str(path))
        return path.read_bytes()
