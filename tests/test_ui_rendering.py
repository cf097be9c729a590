"""Notes are data: text quoted from a note is shown as text in the chat, never as a live link, image or HTML.

A note that writes `\\!\\[pixel\\](https://…)` means the characters; the parser unescapes them, the answer quotes
them, and the UI must keep them characters. Checked by parsing what the UI writes with a CommonMark parser that
accepts every URL (markdown-it refuses `javascript:` links itself, which would hide one), then on the real page
with AppTest.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hyp
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from assistant.rendering import answer_markdown, escape_dollars, highlight, plain
from assistant.types import Answer
from streamlit_app import export_markdown

APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"
PIXEL = "![pixel](https://example.com/p.png)"
SCRIPT = "[x](javascript:alert(1))"
LIVE = ("image", "link_open", "html_inline", "html_block")


def permissive() -> MarkdownIt:
    md = MarkdownIt("commonmark")
    md.validateLink = lambda url: True  # see every link, javascript: ones included
    return md


def tokens(markdown: str) -> list:
    """Every block and inline token of a markdown text."""
    out = []
    for tok in permissive().parse(markdown):
        out += [tok, *(tok.children or [])]
    return out


def live(markdown: str) -> list[str]:
    """What a markdown text would render live: images, links (with their targets) and HTML."""
    found = [t for t in tokens(markdown) if t.type in LIVE]
    return [f"{t.type} {t.attrs.get('href') or t.attrs.get('src') or t.content}" for t in found]


def shown(markdown: str) -> str:
    """The text a reader sees: every text and code token joined."""
    return "".join(t.content for t in tokens(markdown) if t.type in ("text", "code_inline"))


# plain


def test_plain_docstring_example():
    assert plain("![p](https://x.io/p.png) [1]") == r"\!\[p\]\(https\://x.io/p.png\) [1]"


@pytest.mark.parametrize(
    "text",
    [
        PIXEL,
        SCRIPT,
        "<img src=x onerror=alert(1)>",
        "<https://example.com>",
        "[ref]: https://example.com",
        "see [ref]",
        ":red[alarm] :material/warning:",
        "costs $5 to $10",
        "# not a heading",
        "1. not a list",
        "- not a list",
        "> not a quote",
        "***",
        "back\\slash\\",
        "`code`",
        "&lt;b&gt; &amp;",
    ],
)
def test_plain_text_shows_exactly_itself(text):
    escaped = plain(text)
    assert live(escaped) == []
    assert [t.type for t in permissive().parse(escaped)] == ["paragraph_open", "inline", "paragraph_close"]
    assert shown(escaped) == text


def test_plain_keeps_citation_markers_and_plain_punctuation():
    assert plain("Queues don't block, do they? [1] [12]") == "Queues don't block, do they? [1] [12]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("www.example.com", r"www\.example.com"),  # GFM links a bare www. address
        ("a@example.com", r"a\@example.com"),  # ...and a bare e-mail address
        ("https://example.com", r"https\://example.com"),  # ...and a bare URL
        ("- item", r"\- item"),
        ("+ item", r"\+ item"),
        ("12. step", r"12\. step"),
        ("title\n===", "title\n\\==="),
        ("a - b 1. c", "a - b 1. c"),  # only at the start of a line
    ],
)
def test_plain_escapes_what_gfm_or_a_line_start_would_read_as_markup(text, expected):
    assert plain(text) == expected


@settings(max_examples=300, deadline=None)
@given(hyp.text(alphabet=hyp.sampled_from(list("[]()!<>:/\\`*_#-+=$&;.@wx1 ")), min_size=1, max_size=60))
def test_plain_of_any_punctuation_soup_is_itself(text):
    text = text.strip()
    assert live(plain(text)) == []
    assert shown(plain(text)) == text


# answer_markdown: the answer's shape is kept, its quoted text is not markup


def test_answer_markdown_docstring_example():
    assert answer_markdown("**S3** — ![p](https://x.io/p.png) [1]") == (r"**S3** — \!\[p\]\(https\://x.io/p.png\) [1]")


def test_quoted_pixel_and_javascript_link_are_shown_as_text():
    answer = f"**Status page** — It embeds {PIXEL} for uptime. [1] Clicking {SCRIPT} runs a script. [1]"
    markdown = answer_markdown(answer)
    assert live(markdown) == []
    assert PIXEL in shown(markdown)
    assert SCRIPT in shown(markdown)
    assert "[1]" in markdown  # the citation markers stay as the app wrote them
    assert [t.type for t in tokens(markdown)].count("strong_open") == 1  # and so does the bold title


def test_a_list_answer_stays_a_tight_list_with_its_items():
    answer = (
        "**Cons** *(from a commented-out part of your notes)*\n"
        f"- Images like {PIXEL} load from afar. [1]\n- <b>Bold</b> claims. [1]\n- Plain. [1]"
    )
    markdown = answer_markdown(answer)
    assert live(markdown) == []
    types = [t.type for t in tokens(markdown)]
    assert types.count("list_item_open") == 3
    assert types.count("em_open") == 1
    assert all(t.hidden for t in tokens(markdown) if t.type == "paragraph_open" and t.level > 0)  # tight
    assert "<b>Bold</b> claims. [1]" in shown(markdown)


@pytest.mark.parametrize(
    "answer",
    [
        "Links: <https://example.com> and <mailto:a@b.c>. [1]",
        "Raw HTML <script>alert(1)</script> inline. [1]",
        "<div onclick=alert(1)>\nblock HTML\n</div>",
        "[1]: https://example.com\n\nA marker that a definition would turn into a link. [1]",
        "A reference [pixel][p] and an image ![p][p].\n\n[p]: https://example.com/p.png",
        "- nested\n  - ![deep](https://example.com/d.png) [2]\n\n3. from three\n4. on [x](https://example.com)",
        "> ![quoted](https://example.com/q.png)",
        "# Heading [x](https://example.com)",
        "Setext [x](https://example.com)\n===",
    ],
)
def test_no_markdown_construct_survives_as_a_link_image_or_html(answer):
    assert live(answer_markdown(answer)) == []


def test_code_is_kept_as_code():
    answer = "Run `kubectl get pods` or ``a ` tick``. [1]\n\n```bash\necho '[x](javascript:alert(1))' $HOME\n```"
    markdown = answer_markdown(answer)
    code = [t.content for t in tokens(markdown) if t.type in ("code_inline", "fence")]
    assert code == ["kubectl get pods", "a ` tick", "echo '[x](javascript:alert(1))' $HOME\n"]


def test_ordered_list_keeps_its_numbers():
    markdown = answer_markdown("3. third [1]\n4. fourth [1]")
    assert markdown == "3. third [1]\n4. fourth [1]"


@settings(max_examples=300, deadline=None)
@given(hyp.lists(hyp.sampled_from([PIXEL, SCRIPT, "**", "*", "`", "\n", "\n\n", "- ", "1. ", "<b>", "[1]", "(", ")",
                                   "[", "]", "!", "<", ">", "https://e.com", " ", "x", "    ", "> ", "#", "```"]),
                 max_size=40))  # fmt: skip
def test_any_answer_renders_nothing_live(pieces):
    """Every prefix too: the answer is redrawn through `answer_markdown` as it streams in."""
    text = "".join(pieces)
    for end in range(0, len(text) + 1, 7):
        assert live(answer_markdown(text[:end])) == [], text[:end]
    assert live(answer_markdown(text)) == []


# The section source: the note's own markdown, whose escapes must survive the highlight and the `$` escaping


def test_escaped_markdown_in_a_section_stays_escaped_when_highlighted():
    source = (
        "## Web\nIt embeds \\!\\[pixel\\](https://example.com/p.png) for uptime.\n"
        "Clicking \\[x\\](javascript:alert(1)) runs.\nThe plan costs \\$5 a month, \\$50 a year."
    )
    quotes = (f"It embeds {PIXEL} for uptime.", f"Clicking {SCRIPT} runs.", "The plan costs $5 a month, $50 a year.")
    text, missed = highlight(source, quotes)
    shown_source = escape_dollars(text, small_headings=True)
    assert live(shown_source) == []
    assert ":orange-background[The plan costs \\$5 a month, \\$50 a year.]" in shown_source
    assert "\\\\$" not in shown_source  # `\$` escaped again would be a backslash and a live `$`
    assert missed == list(quotes[:2])  # not markable without cutting a `\[...\]`: listed below the source instead


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("costs $5 to $10", r"costs \$5 to \$10"),
        (r"costs \$5 to \$10", r"costs \$5 to \$10"),  # already escaped: escaping again would make `\\$`, a live $
        (r"a \\$x$ b", r"a \\\$x\$ b"),  # an escaped backslash, then a real $
        (r"\`$x$\`", r"\`\$x\$\`"),  # escaped backticks open no code span
        ("`$x$` $", r"`$x$` \$"),
    ],
)
def test_escape_dollars_never_unescapes(source, expected):
    assert escape_dollars(source) == expected


def test_export_keeps_quoted_notes_as_text():
    from assistant.settings import Settings
    from assistant.types import Answer

    answer = Answer("q", "q", f"**Web** — It embeds {PIXEL}. [1]", (), False, (), "extractive")
    chat = [{"role": "user", "content": f"what is {SCRIPT}?"}, {"role": "assistant", "answer": answer}]
    exported = export_markdown(Settings(), chat)
    assert live(exported) == []
    assert PIXEL in shown(exported)


def test_export_calls_a_refusals_sections_related_reading_from_the_notes():
    """The sections near a question the notes do not answer are in the notes; they just did not answer it (the
    export once called them "Related sections (not in the notes)")."""
    from assistant.settings import Settings
    from assistant.types import Citation

    near = Citation(1, "aws.md#glue", "aws.md", "glue", ("AWS", "Glue"), 3, 4, False, (), "## Glue\nETL.")
    answer = Answer("q", "q", "Your notes don't cover that.", (), True, (), "extractive", related=(near,))
    exported = export_markdown(Settings(), [{"role": "user", "content": "q"}, {"role": "assistant", "answer": answer}])
    assert "Related reading (not used in the answer):\n- [1] `aws.md#glue` — AWS \\> Glue, lines 3–4" in exported
    assert "not in the notes" not in exported
    assert "Sources:" not in exported


# On the page


@pytest.fixture
def pixel_notes(tmp_path, monkeypatch):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "web.md").write_text(
        "# Web\n\n## Status page\n"
        "The status page embeds a tracking image \\!\\[pixel\\](https://example.com/p.png) to count visits.\n"
        "Its help link \\[x\\](javascript:alert(1)) runs a script when clicked.\n"
        "The plan costs \\$5 a month, \\$50 a year.\n\n"
        "## Caching\nA CDN caches static files near the users.\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("NOTES_DIR", str(notes))
    monkeypatch.setenv("NOTES_INDEX_DIR", str(tmp_path / "index"))
    for name in ("NOTES_LLM", "NOTES_TOP_K", "NOTES_MODEL_DIR", "NOTES_FORGE_URL"):
        monkeypatch.delenv(name, raising=False)
    return notes


@pytest.mark.model
def test_page_shows_a_quoted_pixel_and_javascript_link_as_text(pixel_notes):
    from tests.test_ui_apptest import settle

    app = settle(AppTest.from_file(str(APP), default_timeout=120).run())
    assert not app.exception, [e.value for e in app.exception]
    settle(app.chat_input[0].set_value("What does the status page embed and what does its help link do?").run())
    assert not app.exception, [e.value for e in app.exception]
    reply = app.chat_message[-1]
    answer = reply.markdown[0].value
    assert "[1]" in shown(answer)
    assert PIXEL in shown(answer)
    assert SCRIPT in shown(answer)
    everything = [*app.markdown, *app.caption, *app.info]  # the answer, its sources opened, the sidebar
    found = [(e.value, live(e.value)) for e in everything if live(e.value)]
    # Only the answer's `[n]` links to its sources on the page: no link into a note, no image.
    assert found == [(v, hits) for v, hits in found if all(h.startswith("link_open #t") for h in hits)], found
    assert not any(e.proto.allow_html for e in app.markdown)


@pytest.mark.model
def test_note_view_shows_escaped_markdown_as_text(pixel_notes):
    from tests.test_ui_apptest import settle

    settle(AppTest.from_file(str(APP), default_timeout=120).run())  # the notes indexed
    app = AppTest.from_file(str(APP), default_timeout=120)
    app.query_params["note"] = "web.md"
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    body = [e.value for e in app.markdown if "status page" in e.value]
    assert body
    assert all(live(v) == [] for v in body), body
    assert PIXEL in shown(body[0])
    assert "costs \\$5 a month, \\$50 a year" in body[0]  # escaped once, as the note wrote it: no LaTeX


def test_bad_setting_is_one_error_on_the_page(monkeypatch):
    monkeypatch.setenv("NOTES_TOP_K", "abc")
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not app.exception, [e.value for e in app.exception]
    assert [e.value for e in app.error] == ["NOTES_TOP_K='abc': expected a whole number from 1 to 50"]
    assert not app.chat_input


# A note shown in the app: as written, breaks kept, nothing live, links to notes opened in the app


def test_note_markdown_docstring_example():
    from assistant.rendering import NoteLink, note_markdown

    text, links = note_markdown("a<br/>b :red[x] ![p](https://t.io/p.png) [D](./D.md)", "A.md")
    assert text == "a\\\nb \\:red\\[x\\] [image: p](<https://t.io/p.png>) D"
    assert links == [NoteLink("D", "D.md")]


NOTE = (
    "Intro<br/>second line :red[warn] :material/home: ![px](https://t.io/pixel.png) see [Dynamo](./DynamoDB.md),"
    " [Auth](../Auth/README.md#tokens), [web](https://aws.amazon.com) and [js](javascript:alert(1)).\n\n"
    "| a | b |\n|---|---|\n| 1<br/>2 | x |\n\n- item<br>two\n  - nested\n\n```\ncode <br/> :red[x]\n```\n"
    "<div>html</div>\n"
)


def test_note_markdown_shows_a_note_as_written_with_its_breaks():
    from assistant.rendering import NoteLink, note_markdown

    text, links = note_markdown(NOTE, "AWS/aws.md")
    found = live(text)
    # Only web links are live: the pixel is a link to where it is, never an image, and no HTML.
    assert found == ["link_open https://t.io/pixel.png", "link_open https://aws.amazon.com"], found
    seen = shown(text)
    assert ":red[warn]" in seen
    assert ":material/home:" in seen
    assert "<br" not in seen  # a break, not the tag
    assert [t.type for t in tokens(text)].count("hardbreak") == 2  # the paragraph's and the list item's
    assert "[js](javascript:alert(1))" in seen
    assert "code <br/> :red[x]" in text  # code stays code
    assert "<div>html</div>" in seen
    assert "| 1 2 | x |" in text  # a table stays a table; a break inside a cell is a space
    assert links == [NoteLink("Dynamo", "AWS/DynamoDB.md"), NoteLink("Auth", "Auth/README.md", "tokens")]


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("./DynamoDB.md", ("AWS/DynamoDB.md", "")),
        ("../Auth/README.md#tokens", ("Auth/README.md", "tokens")),
        ("Sub%20dir/x.md", ("AWS/Sub dir/x.md", "")),
        ("../../outside.md", None),
        ("https://x.io/a.md", None),
        ("picture.png", None),
    ],
)
def test_links_between_notes_resolve_from_the_linking_note(href, expected):
    from assistant.rendering import resolve_note_link

    link = resolve_note_link(href, "AWS/aws.md")
    assert (link and (link.path, link.anchor)) == expected


def test_citation_markers_link_to_their_sources_outside_code():
    from assistant.rendering import cite_links

    assert cite_links("Runs. [1] `[1]` [2]", {1: "t7-1"}) == "Runs. [\\[1\\]](#t7-1) `[1]` [2]"
    assert live(cite_links("Runs. [1]", {1: "t7-1"})) == ["link_open #t7-1"]


def test_example_questions_come_from_the_headings_of_the_notes_loaded():
    from corpus.types import Block, Section
    from streamlit_app import example_questions

    def section(title: str, text: str, kind: str = "content") -> Section:
        block = Block(text, "paragraph", 2, 2)
        return Section("n.md", title.lower(), title, 2, ("N", title), 1, 2, (block,), f"## {title}\n{text}", kind=kind)

    sections = [
        section("Intro", "short"),
        section("Lambda", "x" * 900),
        section("S3", "y" * 500),
        section("Links", "z" * 2000, kind="links"),
        section("A heading with far too many words", "w" * 3000),
    ]
    assert example_questions(sections, 2) == ["Tell me about Lambda", "Tell me about S3"]
    assert example_questions([], 3) == []


def test_how_i_searched_is_one_short_block_per_section():
    from corpus.types import Section
    from index.retrieve import Hit
    from streamlit_app import search_rows

    s = Section("aws.md", "lambda", "Lambda", 3, ("AWS", "Compute", "Lambda"), 3, 9, (), "## Lambda")
    answer = Answer("q", "q", "t", (), False, (Hit(s, 0.0321, 0.6142, 0.5),), "extractive")
    assert search_rows(answer) == [
        "**1.** `aws.md#lambda`  \nAWS \\> Compute \\> Lambda · lines 3–9  \nfused 0.032 · dense 0.614 · keyword 0.500"
    ]
