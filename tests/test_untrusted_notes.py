"""Any notes folder: no file stops the others, nothing outside the folder is read, nothing a note holds is lost.

Property tests draw markdown from fragments that broke real parsers (empty headings, comment openers, fences
left open, rules, tables, HTML) and check what must hold for every note, not just the ones seen so far.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus.parse import blank_front_matter, parse_note, parse_notes
from corpus.reader import decode_note, read_notes, strip_controls
from corpus.types import Note

FRAGMENTS = [
    "# ", "## ", "### ", "#", "# Title", "## Sub", "### Sub", "text", "more words.", "- item", "1. step", "  - nested",
    "<!--", "-->", "<!-- c -->", "<details>", "<summary>S</summary>", "</details>", "<div>", "```", "~~~", "    code",
    "---", "...", "| a | b |", "|---|---|", "| 1 | 2 |", "> quote", "[x](#y)", "![img](p.png)", "key: value", "",
    "\\[x\\](javascript:alert(1))", "<br/>", "***", "=====", "-----", "\t", "é", "#tag",
]


def markdown_texts():
    lines = st.lists(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=3).map(" ".join), max_size=25)
    return st.tuples(lines, st.booleans()).map(lambda pair: "\n".join(pair[0]) + ("\n" if pair[1] else ""))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(markdown_texts(), min_size=1, max_size=3))
def test_any_markdown_parses_with_unique_keys_and_lines_inside_the_file(texts):
    """Whatever the markdown holds: no exception, keys unique across the folder, every line range inside the file
    and inside its section."""
    notes = [Note(f"n{i}.md", text) for i, text in enumerate(texts)]
    sections, warnings = parse_notes(notes)
    assert warnings == []
    keys = [s.key for s in sections]
    assert len(keys) == len(set(keys))
    for section in sections:
        n_lines = len(blank_front_matter(notes[int(section.path[1:-3])].text).split("\n"))
        assert 1 <= section.line_start <= section.line_end <= n_lines, section
        for block in section.blocks:
            assert section.line_start <= block.line_start <= block.line_end <= section.line_end, (section, block)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["#", " ", "\n", "<!--", "-->", "x", "`", "-", "|", "<", ">", "!"]), max_size=300))
def test_symbol_soup_never_raises(pieces):
    """Strings of the characters markdown gives meaning to, in any order, parse."""
    parse_note(Note("soup.md", "".join(pieces)))


def test_empty_heading_does_not_take_the_preamble_key():
    """`### ` has an empty anchor, which is also the key of the text above the first heading: keys stay apart."""
    sections, _ = parse_notes([Note("r.md", "intro text\n\n### \nbody under an empty heading\n")])
    assert [s.key for s in sections] == ["r.md", "r.md#-1"]
    assert sections[1].title == "(untitled heading)"


def test_keys_stay_unique_across_notes_whatever_their_paths():
    sections, _ = parse_notes([Note("a.md", "# X\nx\n"), Note("a.md", "# X\ny\n")])
    assert len({s.key for s in sections}) == 2


def test_hundreds_of_nested_comment_openers_parse_and_keep_text():
    """500 `<!--` in 2.4 KB once recursed once per opener (RecursionError); comments do not nest in HTML."""
    text = "# T\n" + "<!-- a\n" * 500 + "-->\nafter the comment\n"
    [section] = parse_note(Note("c.md", text))
    assert "after the comment" in section.text
    assert [b.text.split() for b in section.blocks if b.hidden] == [["a"] * 500]


def test_a_million_tag_openers_parse_in_linear_time():
    """`<a` without `>` once made the tag pattern scan to the end for each opener."""
    [section] = parse_note(Note("t.md", "# T\n<div>\n" + "<a " * 100_000 + "\n"))
    assert section.blocks


def test_unparsable_note_is_reported_and_the_others_kept():
    """A note whose parsing fails is named in one line; the folder's other notes are still indexed."""
    sections, warnings = parse_notes([Note("bad.md", None), Note("good.md", "# Good\ntext\n")])  # type: ignore[arg-type]
    assert [s.path for s in sections] == ["good.md"]
    [warning] = warnings
    assert warning.startswith("skipped bad.md")
    assert "\n" not in warning


def test_visible_html_text_before_a_comment_is_kept():
    text = "# K\n<details><summary>Kinesis</summary>\nstreams data in real time<!-- todo: shards -->\n</details>\n"
    [section] = parse_note(Note("k.md", text))
    shown = [b for b in section.blocks if not b.hidden]
    hidden = [b for b in section.blocks if b.hidden]
    assert any("Kinesis" in b.text and "streams data" in b.text for b in shown)
    assert [b.text for b in hidden] == ["todo: shards"]
    assert shown[0].line_start == 2
    assert shown[0].line_end == 3


@pytest.mark.parametrize(
    ("text", "line_end"),
    [("# T\n<div>one line</div>", 2), ("# T\n```\nunclosed\ncode", 4), ("# T\n<!-- open\nnever closed", 3)],
    ids=["html-no-newline", "unclosed-fence", "unclosed-comment"],
)
def test_line_ranges_at_the_end_of_a_file(text, line_end):
    [section] = parse_note(Note("e.md", text))
    assert section.line_end == line_end
    assert max(b.line_end for b in section.blocks) == line_end
    assert all(b.line_start <= b.line_end for b in section.blocks)


@pytest.mark.parametrize(
    "text",
    ["---\nJust a rule above the intro.\n---\n# Title\nbody\n", "---\n\n# Title\n\nbody\n\n---\nend\n"],
    ids=["prose-between-rules", "heading-between-rules"],
)
def test_a_note_starting_with_a_rule_keeps_its_text(text):
    """Only YAML-looking blocks are front matter; a `---` rule first must not swallow the note."""
    assert blank_front_matter(text) == text
    assert "Title" in [s.title for s in parse_note(Note("r.md", text))]


@pytest.mark.parametrize(
    "text",
    [
        "---\ntags: [aws]\n---\n# T\n",
        "---\ntitle: \"Notes\"\naliases:\n  - n\n- x\n# comment\n...\n# T\n",
        "---\n---\n# T\n",
    ],
    ids=["flow-list", "block-list-and-comment", "empty"],
)
def test_yaml_front_matter_is_blanked(text):
    blanked = blank_front_matter(text)
    assert blanked.count("\n") == text.count("\n")
    assert blanked.strip() == "# T"


# --- reading files -------------------------------------------------------------------------------------------


def write(root: Path, rel: str, data: bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_one_stray_cp1252_byte_leaves_the_utf8_around_it_intact():
    """One pasted Windows byte once turned a whole UTF-8 file into mojibake."""
    text, warning = decode_note("# Café\nnaïve – \x93dash\x94\n".encode().replace(b"\xc2\x93", b"\x93"), "n.md")
    assert text is not None
    assert text.startswith("# Café\nnaïve – ")
    assert "n.md" in warning


def test_bom_plus_a_bad_byte_keeps_the_first_heading(tmp_path):
    write(tmp_path, "b.md", b"\xef\xbb\xbf# First\nbad \xff byte\n")
    [note] = read_notes(tmp_path).notes
    assert [s.title for s in parse_note(note)] == ["First"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_notes_are_read_not_skipped_as_binary(tmp_path, encoding):
    write(tmp_path, "u.md", "# Über\nText in UTF-16\n".encode(encoding))
    result = read_notes(tmp_path)
    assert result.notes[0].text == "# Über\nText in UTF-16\n"
    assert result.warnings == ()


def test_terminal_escapes_are_stripped_from_text_and_headings(tmp_path):
    """Clear screen, colours, hidden text and OSC-8 links in a note would act on the terminal of `ask`."""
    raw = "# Ti\x1b[31mtle\x1b[0m\nclear\x1b[2J\x1b[8mhidden\x1b[28m "
    raw += "\x1b]8;;http://evil\x07link\x1b]8;;\x07\x07 \x9b1m\n"
    write(tmp_path, "e.md", raw.encode())
    [note] = read_notes(tmp_path).notes
    assert note.text == "# Title\nclearhidden link \n"
    assert all(ord(c) >= 32 or c == "\n" for c in note.text)
    assert strip_controls("a\x00b\x7fc\x85d\te") == "abcd\te"


def test_symlink_to_a_file_outside_the_folder_is_refused(tmp_path):
    """A link in the notes to `/etc/passwd` (or any file outside) must not be read and quoted."""
    outside = write(tmp_path, "secret/passwd", b"root:x:0:0:root:/root:/bin/bash\n")
    notes = tmp_path / "notes"
    write(notes, "n.md", b"# N\n")
    (notes / "passwd.md").symlink_to(outside)
    result = read_notes(notes)
    assert [n.path for n in result.notes] == ["n.md"]
    [warning] = result.warnings
    assert "passwd.md" in warning
    assert "outside the notes folder" in warning


def test_symlink_to_a_note_inside_the_folder_is_read(tmp_path):
    write(tmp_path, "real.md", b"# Real\n")
    (tmp_path / "alias.md").symlink_to(tmp_path / "real.md")
    assert [n.path for n in read_notes(tmp_path).notes] == ["alias.md", "real.md"]


def test_dangling_links_linked_folders_and_loops_are_named(tmp_path):
    notes = tmp_path / "notes"
    write(notes, "n.md", b"# N\n")
    write(tmp_path, "elsewhere/e.md", b"# E\n")
    (notes / "gone.md").symlink_to(tmp_path / "nothing.md")
    (notes / "linked").symlink_to(tmp_path / "elsewhere")
    (notes / "loop").symlink_to(notes)
    result = read_notes(notes)
    assert [n.path for n in result.notes] == ["n.md"]
    text = "\n".join(result.warnings)
    assert "gone.md" in text
    assert "does not exist" in text
    assert "linked/" in text
    assert "loop/" in text
    assert all("\n" not in w for w in result.warnings)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads folders whatever their mode")
def test_unreadable_folder_is_named(tmp_path):
    write(tmp_path, "n.md", b"# N\n")
    locked = tmp_path / "locked"
    write(locked, "x.md", b"# X\n")
    locked.chmod(0)
    try:
        result = read_notes(tmp_path)
    finally:
        locked.chmod(0o700)
    assert any("locked" in w for w in result.warnings)


def test_file_name_that_is_not_utf8_is_indexed_under_a_readable_name(tmp_path, letters):
    """Such a name once crashed hashing (UnicodeEncodeError); it is now shown with U+FFFD and indexed."""
    from assistant.app import build
    from assistant.settings import Settings

    notes = tmp_path / "notes"
    notes.mkdir()
    (Path(os.fsdecode(bytes(notes))) / os.fsdecode(b"caf\xe9.md")).write_bytes(b"# Caf\xc3\xa9\ncoffee notes\n")
    write(notes, "ok.md", b"# Ok\nplain\n")
    write(notes, "empty-heading.md", b"intro\n\n### \nunder an empty heading\n")
    app = build(Settings(notes_dir=notes, index_dir=tmp_path / "index"), embeddings=letters, say=lambda _: None)
    paths = {s.path for s in app.index.sections}
    assert "caf\ufffd.md" in paths
    assert "ok.md" in paths
    assert "empty-heading.md" in paths
    assert any("caf\ufffd.md" in w for w in app.warnings)


def test_a_note_that_cannot_be_parsed_does_not_stop_the_index(tmp_path, letters, monkeypatch):
    """Through the app's own path: the failing note is named in one line, the others are indexed."""
    import corpus.parse
    from assistant.app import build
    from assistant.settings import Settings

    write(tmp_path / "notes", "bad.md", b"# Bad\nthis one breaks\n")
    write(tmp_path / "notes", "good.md", b"# Good\nthis one indexes\n")
    real = corpus.parse.parse_note

    def fragile(note):
        if note.path == "bad.md":
            raise RecursionError("maximum recursion depth exceeded")
        return real(note)

    monkeypatch.setattr(corpus.parse, "parse_note", fragile)
    app = build(Settings(notes_dir=tmp_path / "notes", index_dir=tmp_path / "index"), embeddings=letters, say=print)
    assert {s.path for s in app.index.sections} == {"good.md"}
    assert any(w.startswith("skipped bad.md") for w in app.warnings)


def test_a_fence_left_open_keeps_its_blank_last_lines_inside_its_section():
    """Found by the property test above: an unclosed fence runs to the end, blank lines included."""
    [section] = parse_note(Note("f.md", "```\n# \n\t\n"))
    assert section.blocks[-1].line_end <= section.line_end


def test_a_bare_url_on_its_own_line_is_a_link_not_an_answer():
    [section] = parse_note(Note("u.md", "# Video\nhttps://www.youtube.com/watch?v=x\n\nA sentence about it.\n"))
    assert [b.kind for b in section.blocks] == ["links", "paragraph"]
