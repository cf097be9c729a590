"""The one module that reads note files from disk, and says plainly what it could not read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from corpus.types import Note

# A note larger than this is almost surely an export or a log, not notes; 2 MB is ~80 times the AWS notes.
MAX_NOTE_BYTES = 2 * 1024 * 1024
SUFFIXES = (".md", ".markdown")


class NotesError(Exception):
    """The notes folder cannot be used at all (missing, not a folder, no notes in it)."""


@dataclass(frozen=True)
class ReadResult:
    notes: tuple[Note, ...]
    warnings: tuple[str, ...]


def _decode(raw: bytes, name: str) -> tuple[str | None, str | None]:
    """Text of a file and a warning, or None and the reason it was skipped."""
    if b"\x00" in raw[:8192]:
        return None, f"skipped {name}: it looks like a binary file, not markdown"
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        # Notes saved on Windows are often cp1252; reading them beats dropping them, and the user is told.
        return raw.decode("cp1252", errors="replace"), f"{name} is not UTF-8; read it as Windows-1252"


def read_notes(notes_dir: Path, max_bytes: int = MAX_NOTE_BYTES) -> ReadResult:
    """Every markdown file under `notes_dir`, nested folders included, hidden folders skipped."""
    if not notes_dir.exists():
        raise NotesError(f"notes folder {notes_dir} does not exist")
    if not notes_dir.is_dir():
        raise NotesError(f"{notes_dir} is not a folder")
    notes: list[Note] = []
    warnings: list[str] = []
    for path in sorted(notes_dir.rglob("*")):
        rel = path.relative_to(notes_dir)
        if path.suffix.lower() not in SUFFIXES or not path.is_file():
            continue
        if any(part.startswith(".") for part in rel.parts):
            continue
        name = rel.as_posix()
        size = path.stat().st_size
        if size > max_bytes:
            limit = f"{max_bytes / 1e6:.0f} MB"
            warnings.append(f"skipped {name}: {size / 1e6:.1f} MB is over the {limit} limit for one note")
            continue
        try:
            raw = path.read_bytes()
        except OSError as err:
            warnings.append(f"skipped {name}: {err.strerror or err}")
            continue
        text, warning = _decode(raw, name)
        if warning:
            warnings.append(warning)
        if text is not None:
            notes.append(Note(name, text.replace("\r\n", "\n").replace("\r", "\n")))
    if not notes:
        raise NotesError(f"no markdown notes (*.md) found in {notes_dir}")
    return ReadResult(tuple(notes), tuple(warnings))
