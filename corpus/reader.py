"""The one module that reads note files from disk, and says plainly what it could not read.

A notes folder is data from anywhere (a synced repo, a download): no single file may stop the others from being
read, nothing outside the folder is read through a link, and every file or folder left out is named in one line.
"""

from __future__ import annotations

import codecs
import os
import re
import threading
import time
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


def _cp1252_fallback(err: UnicodeDecodeError) -> tuple[str, int]:
    """Decode the one byte UTF-8 rejected as Windows-1252 (U+FFFD for its five unassigned bytes), then go on."""
    byte = err.object[err.start : err.start + 1]
    return byte.decode("cp1252", errors="replace"), err.start + 1


codecs.register_error("notes-cp1252", _cp1252_fallback)


def _utf16_without_bom(raw: bytes) -> str | None:
    """`"utf-16-le"`/`"utf-16-be"` when NULs sit at every other byte, as in mostly-ASCII UTF-16 text."""
    sample = raw[:8192]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    # Mostly-ASCII UTF-16 has a NUL in nearly every high byte and almost none in the low ones; a binary file
    # has NULs scattered over both.
    if odd.count(0) > 0.7 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.7 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


def decode_note(raw: bytes, name: str) -> tuple[str | None, str | None]:
    """Text of a file and a warning, or None and the reason it was skipped.

    Good UTF-8 stays as it is even when some bytes are not: `b"caf\\xc3\\xa9 \\x93q\\x94"` -> `'café “q”'`
    (the stray Windows-1252 quotes are read as such, not the whole file turned to mojibake).
    """
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16", errors="replace"), None
    utf16 = _utf16_without_bom(raw)
    if utf16:
        return raw.decode(utf16, errors="replace"), None
    if b"\x00" in raw[:8192]:
        return None, f"skipped {name}: it looks like a binary file, not markdown"
    raw = raw.removeprefix(codecs.BOM_UTF8)
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        # Notes saved on Windows are often cp1252, and one pasted byte must not garble the rest: each byte UTF-8
        # rejects is read as cp1252, the valid UTF-8 around it as UTF-8. The user is told.
        warning = f"{name} is not all UTF-8; read its odd bytes as Windows-1252"
        return raw.decode("utf-8", errors="notes-cp1252"), warning


# Terminal escape sequences and control characters in a note would act on the terminal that prints an answer
# (clear the screen, hide text, plant OSC-8 links): whole ANSI sequences go first so their parameters do not
# remain as litter, then any other C0/C1 control but tab and newline. Each alternative is linear.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, clear screen
    r"|\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)?"  # OSC: titles, hyperlinks
    r"|\x1b[@-Z\\-_]"  # other two-byte escapes
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_controls(text: str) -> str:
    """Text with terminal escapes and control characters removed, line breaks kept.

    `"\\x1b[2Jhi\\x07\\n"` -> `"hi\\n"`
    """
    return _CONTROL.sub("", _ANSI.sub("", text.replace("\r\n", "\n").replace("\r", "\n")))


def _display_name(rel: str) -> str:
    """A relative path as text that can be shown, stored as JSON and hashed.

    A name that is not valid UTF-8 arrives with surrogate escapes, which cannot be encoded: the odd bytes become
    U+FFFD. Control characters (a newline in a file name) would break one-line messages and keys: dropped.
    """
    text = os.fsencode(rel).decode("utf-8", errors="replace")
    return strip_controls(text).replace("\n", "")


def _is_note(name: str) -> bool:
    return name.lower().endswith(SUFFIXES) and not name.startswith(".")


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _candidates(root: Path, warnings: list[str]) -> list[tuple[str, Path]]:
    """(relative name, path) of every markdown file to read, in name order; what is left out goes to warnings."""
    found: list[tuple[str, Path]] = []

    def unreadable(err: OSError) -> None:
        where = Path(err.filename).relative_to(root).as_posix() if err.filename else "a folder"
        warnings.append(f"skipped {_display_name(where)}/: {err.strerror or err}")

    # followlinks=False: a linked folder could point outside the notes or back up into them (a loop); each is
    # named below instead of being walked.
    for folder, dirs, files in os.walk(root, onerror=unreadable, followlinks=False):
        here = Path(folder)
        for name in sorted(dirs):
            path = here / name
            if name.startswith("."):
                dirs.remove(name)  # tool folders (.git, .obsidian, .trash) hold no notes of the user's
            elif path.is_symlink():
                rel = _display_name(path.relative_to(root).as_posix())
                warnings.append(f"skipped {rel}/: it is a link to a folder, and linked folders are not followed")
        for name in files:
            if not _is_note(name):
                continue
            path = here / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                target = Path(os.path.realpath(path))
                if not target.exists():
                    warnings.append(f"skipped {_display_name(rel)}: it is a link to {target}, which does not exist")
                    continue
                if not _inside(target, root):
                    warnings.append(f"skipped {_display_name(rel)}: it links to {target}, outside the notes folder")
                    continue
            if path.is_file():
                found.append((rel, path))
    return sorted(found)


# What each file read last held, by path, with the stat it was read at: a re-index of 2,500 files where one
# changed read and decoded all 59 MB again (0.6-0.9 s of a 2.2 s one-section edit). A file whose size, mtime,
# ctime or inode differ is read again. Replaced at every call, so it holds the files of the last read only.
Stamp = tuple[int, int, int, int]  # st_size, st_mtime_ns, st_ctime_ns, st_ino
_kept: dict[tuple[Path, str], tuple[Stamp, str | None, str | None]] = {}
_kept_lock = threading.Lock()
# A file changed this recently may change again within its timestamp's resolution (a second or two on some file
# systems) without its stamp changing, as git's "racily clean" entries: it is never kept, always read.
RACY_NS = 3_000_000_000


def _stamp(path: Path) -> Stamp:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def read_notes(notes_dir: Path, max_bytes: int = MAX_NOTE_BYTES) -> ReadResult:
    """Every markdown file under `notes_dir`, nested folders included, hidden folders skipped."""
    global _kept
    if not notes_dir.exists():
        raise NotesError(f"notes folder {notes_dir} does not exist")
    if not notes_dir.is_dir():
        raise NotesError(f"{notes_dir} is not a folder")
    root = Path(os.path.realpath(notes_dir))
    notes: list[Note] = []
    warnings: list[str] = []
    taken: set[str] = set()
    with _kept_lock:
        kept = _kept
    now = time.time_ns()
    keep: dict[tuple[Path, str], tuple[Stamp, str | None, str | None]] = {}
    for rel, path in _candidates(root, warnings):
        name = _display_name(rel)
        if name != rel:
            # Two such names can come out the same; the path is what keys a section, so it must stay unique.
            stem, n = name, 1
            while name in taken:
                name, n = f"{stem}~{n}", n + 1
            warnings.append(f"the file name {name} has bytes that are not UTF-8 text; shown as written here")
        taken.add(name)
        try:
            stamp = _stamp(path)
            if stamp[0] > max_bytes:
                limit = f"{max_bytes / 1e6:.0f} MB"
                warnings.append(f"skipped {name}: {stamp[0] / 1e6:.1f} MB is over the {limit} limit for one note")
                continue
            where = (path, name)
            known = kept.get(where)
            if known is not None and known[0] == stamp:
                _, text, warning = known
            else:
                raw = path.read_bytes()
                text, warning = decode_note(raw, name)
                text = strip_controls(text) if text is not None else None
                if len(raw) != stamp[0] or _stamp(path) != stamp:
                    stamp = None  # written while being read: read again next time
        except OSError as err:
            warnings.append(f"skipped {name}: {err.strerror or err}")
            continue
        if stamp is not None and now - stamp[1] > RACY_NS and now - stamp[2] > RACY_NS:
            keep[where] = (stamp, text, warning)
        if warning:
            warnings.append(warning)
        if text is not None:
            notes.append(Note(name, text))
    with _kept_lock:
        _kept = keep
    if not notes:
        raise NotesError(f"no markdown notes (*.md) found in {notes_dir}")
    return ReadResult(tuple(notes), tuple(warnings))
