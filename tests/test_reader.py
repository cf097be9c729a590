"""Reading a notes folder from disk: what is read, what is skipped, and what the user is told."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import corpus.reader as reader
from corpus.reader import MAX_NOTE_BYTES, NotesError, read_notes


def write(root: Path, rel: str, data: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8", newline="")
    return path


def test_nested_folders_give_posix_relative_paths(tmp_path):
    """A note three folders down is named `a/b/c.md`, the path citations and eval gold use."""
    write(tmp_path, "top.md", "# Top\n")
    write(tmp_path, "a/b/c.md", "# Deep\n")
    write(tmp_path, "a/other.markdown", "# Other\n")
    result = read_notes(tmp_path)
    assert [n.path for n in result.notes] == ["a/b/c.md", "a/other.markdown", "top.md"]
    assert result.notes[0].text == "# Deep\n"
    assert result.warnings == ()


@pytest.mark.parametrize("hidden", [".git/HEAD.md", ".obsidian/workspace.md", "a/.trash/old.md", ".draft.md"])
def test_hidden_folders_and_files_are_skipped(tmp_path, hidden):
    """Tool folders (.git, .obsidian, .trash) hold no notes of the user's; reading them would pollute answers."""
    write(tmp_path, "note.md", "# Note\n")
    write(tmp_path, hidden, "# Hidden\n")
    result = read_notes(tmp_path)
    assert [n.path for n in result.notes] == ["note.md"]
    assert result.warnings == ()


def test_notes_folder_inside_a_hidden_folder_is_read(tmp_path):
    """Only hidden parts below the notes folder count: `~/.notes` itself is a fine place for notes."""
    notes = tmp_path / ".notes"
    write(notes, "n.md", "# N\n")
    assert [n.path for n in read_notes(notes).notes] == ["n.md"]


def test_non_markdown_files_are_ignored(tmp_path):
    """Images and text files beside the notes are not notes."""
    write(tmp_path, "n.md", "# N\n")
    write(tmp_path, "pic.png", b"\x89PNG\r\n\x1a\n\x00\x00")
    write(tmp_path, "todo.txt", "buy milk")
    (tmp_path / "folder.md").mkdir()  # a folder named like a note is not a file
    result = read_notes(tmp_path)
    assert [n.path for n in result.notes] == ["n.md"]
    assert result.warnings == ()


def test_missing_folder_raises_one_line_error(tmp_path):
    """A missing folder is a plain one-line message naming it, not a traceback from deep inside."""
    missing = tmp_path / "nope"
    with pytest.raises(NotesError) as info:
        read_notes(missing)
    message = str(info.value)
    assert "\n" not in message
    assert str(missing) in message
    assert "does not exist" in message


def test_file_instead_of_folder_raises(tmp_path):
    """Pointing at a file rather than a folder is an error that says so."""
    note = write(tmp_path, "n.md", "# N\n")
    with pytest.raises(NotesError, match="is not a folder"):
        read_notes(note)


@pytest.mark.parametrize(
    "files",
    [{}, {"readme.txt": "text", "data.json": "{}"}, {".hidden/n.md": "# N\n"}],
    ids=["empty", "no-markdown", "only-hidden"],
)
def test_folder_without_notes_raises(tmp_path, files):
    """A folder with nothing to index is an error, not an empty index that answers nothing."""
    for rel, text in files.items():
        write(tmp_path, rel, text)
    with pytest.raises(NotesError, match=r"no markdown notes"):
        read_notes(tmp_path)


def test_binary_md_is_skipped_with_warning_others_read(tmp_path):
    """A file with NUL bytes is not markdown: skipped, named in a warning, and the rest still read."""
    write(tmp_path, "good.md", "# Good\n")
    write(tmp_path, "blob.md", b"\x00\x01\x02binary\x00" * 100)
    result = read_notes(tmp_path)
    assert [n.path for n in result.notes] == ["good.md"]
    assert len(result.warnings) == 1
    assert "blob.md" in result.warnings[0]
    assert "binary" in result.warnings[0]


def test_only_binary_notes_raise(tmp_path):
    """If every note is unreadable there is nothing to index."""
    write(tmp_path, "blob.md", b"\x00" * 10)
    with pytest.raises(NotesError):
        read_notes(tmp_path)


def test_cp1252_note_is_read_with_warning(tmp_path):
    """Windows-saved notes are read, decoded as Windows-1252, and the user is told."""
    write(tmp_path, "cafe.md", b"# Caf\xe9\nna\xefve \x93quotes\x94\n")
    result = read_notes(tmp_path)
    assert [n.text for n in result.notes] == ["# Caf\u00e9\nna\u00efve \u201cquotes\u201d\n"]
    assert len(result.warnings) == 1
    assert "cafe.md" in result.warnings[0]
    assert "UTF-8" in result.warnings[0]


def test_utf8_bom_is_dropped(tmp_path):
    """A BOM is not text: left in, it would glue itself to the first heading."""
    write(tmp_path, "bom.md", b"\xef\xbb\xbf# Title\n")
    result = read_notes(tmp_path)
    assert result.notes[0].text == "# Title\n"
    assert result.warnings == ()


def test_file_over_limit_is_skipped_with_warning(tmp_path):
    """A note over `max_bytes` is skipped (it is an export or a log), the others read."""
    write(tmp_path, "small.md", "# Small\n")
    write(tmp_path, "big.md", "# Big\n" + "x" * 2000)
    result = read_notes(tmp_path, max_bytes=1000)
    assert [n.path for n in result.notes] == ["small.md"]
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("skipped big.md")
    assert "limit" in result.warnings[0]


def test_file_at_limit_is_read(tmp_path):
    """The limit is inclusive: a file of exactly `max_bytes` is read."""
    write(tmp_path, "exact.md", "x" * 1000)
    assert [n.path for n in read_notes(tmp_path, max_bytes=1000).notes] == ["exact.md"]


def test_ten_megabyte_note_is_skipped_at_default_limit(tmp_path):
    """A real 10 MB file against the default limit: skipped, and the warning states sizes in MB."""
    assert MAX_NOTE_BYTES < 10 * 1024 * 1024
    write(tmp_path, "notes.md", "# Notes\n")
    with (tmp_path / "export.md").open("wb") as handle:
        line = b"# Log line of an export that someone dropped into the notes folder\n"
        handle.write(line * (10 * 1024 * 1024 // len(line) + 1))
    result = read_notes(tmp_path)
    assert [n.path for n in result.notes] == ["notes.md"]
    [warning] = result.warnings
    assert "export.md" in warning
    assert "10.5 MB" in warning
    assert "2 MB limit" in warning


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"# T\r\nline one\r\nline two\r\n", "# T\nline one\nline two\n"),
        (b"# T\rold mac\r", "# T\nold mac\n"),
        (b"# T\r\nmixed\nends\r", "# T\nmixed\nends\n"),
    ],
    ids=["crlf", "cr", "mixed"],
)
def test_line_endings_are_normalised(tmp_path, raw, expected):
    """Line numbers count `\\n` only, so every line ending becomes `\\n` on reading."""
    write(tmp_path, "n.md", raw)
    assert read_notes(tmp_path).notes[0].text == expected


def _age(path: Path, seconds: float) -> None:
    """Set a file's mtime `seconds` in the past (its ctime stays now: the cache needs both to be old)."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_file_unchanged_since_the_last_read_is_not_read_again(tmp_path, monkeypatch):
    """At 2,500 files a re-index read and decoded all 59 MB again; an unchanged file now comes from the last read.
    A file changed in the last few seconds (its stamp may not show a second change) is not kept: read again."""
    old, fresh = tmp_path / "old.md", tmp_path / "fresh.md"
    old.write_text("# Old\nkept text\n", encoding="utf-8")
    fresh.write_text("# Fresh\njust written\n", encoding="utf-8")
    _age(old, 60)
    decoded: list[str] = []
    real = reader.decode_note
    monkeypatch.setattr(reader, "decode_note", lambda raw, name: decoded.append(name) or real(raw, name))
    monkeypatch.setattr(reader, "RACY_NS", 10**12)  # every file changed "recently": none kept
    first = read_notes(tmp_path)
    assert read_notes(tmp_path) == first
    assert decoded == ["fresh.md", "old.md"] * 2
    monkeypatch.setattr(reader, "RACY_NS", 0)  # ctime is "now" for a test file: count both as settled
    assert read_notes(tmp_path) == first
    decoded.clear()
    assert read_notes(tmp_path) == first
    assert decoded == []


def test_a_file_changed_to_the_same_size_is_read_again(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "RACY_NS", 0)
    note = tmp_path / "n.md"
    note.write_text("# N\nalpha\n", encoding="utf-8")
    _age(note, 60)
    assert read_notes(tmp_path).notes[0].text == "# N\nalpha\n"
    note.write_text("# N\nomega\n", encoding="utf-8")  # same size: the mtime and ctime tell
    _age(note, 30)
    assert read_notes(tmp_path).notes[0].text == "# N\nomega\n"
    (tmp_path / "m.md").write_text("# M\nnew file\n", encoding="utf-8")
    note.unlink()
    assert [n.path for n in read_notes(tmp_path).notes] == ["m.md"]
