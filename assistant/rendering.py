"""Answers and notes as Streamlit markdown that shows their text as written.

Notes are data: whatever a note holds (HTML, a `javascript:` link, a remote image, `$` LaTeX, Streamlit's `:red[...]`
and `:material/...:` directives) is shown as the characters it is, never run, followed or fetched. Pure functions
of text; the page (`streamlit_app.py`) draws what they return.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token

from corpus.types import Section

_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"(?<!\\)(`+)(?:.*?)\1")  # an escaped backtick opens no code span
_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)((?:\\\\)*)\$")  # `$` after an even number of backslashes
_LINE_PREFIX = re.compile(r"^\s*(?:(?:[-*+]|\d+[.)])\s+|>\s*|#{1,6}\s+)*")
_HEADING = re.compile(r"^ {0,3}#{1,6}(?:\s+|$)")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~$:])")


def escape_md(text: str) -> str:
    """Plain text (a path, a heading) made safe to put inside markdown: shown as typed, never as markup."""
    return _MD_SPECIAL.sub(r"\\\1", text)


# The app's `[n]` citation markers, kept; the characters that open markup anywhere in a line, in CommonMark, GFM
# or Streamlit (links, images, HTML, emphasis, code, strikethrough, tables, headings, entities, `$` LaTeX, `:` icons
# and directives, `https:` and `a@b.c` autolinks); and `www.`, GFM's other autolink.
_MARKUP = re.compile(r"(\[\d+\])|([\\`*_~\[\]()!<>#|$:&@])|\b([Ww]{3})\.")
# What opens a block at the start of a line: a list item (`-`, `+`, `1.`) or a setext underline (`=`).
_BLOCK_START = re.compile(r"^([ \t]*(?:\d+(?=\.))?)([-+=.])", re.MULTILINE)


def plain(text: str) -> str:
    """Note text made inert in markdown: every character that could open markup backslash-escaped (CommonMark shows
    an escaped character as itself), so no link, image, HTML, list, LaTeX or Streamlit directive can start. The
    `[n]` citation markers stay: with `(` escaped and no link definitions, they can never become links.

    `"![p](https://x.io/p.png) [1]"` -> `"\\!\\[p\\]\\(https\\://x.io/p.png\\) [1]"`
    """
    text = _MARKUP.sub(lambda m: m.group(1) or (f"\\{m.group(2)}" if m.group(2) else f"{m.group(3)}\\."), text)
    return _BLOCK_START.sub(r"\1\\\2", text)


_COMMONMARK = MarkdownIt("commonmark")  # the parser corpus/ reads notes with; building it costs ~1 ms


class _Lists:
    """The lists open at a point of a parsed note: where the next block goes, and with what marker.

    Both renderers below redraw lists from markdown-it's tokens the same way, so the logic lives once here.
    """

    def __init__(self) -> None:
        self.widths: list[int] = []  # content indent of each open list item, outermost first
        self.ordered: list[bool] = []  # per open list
        self.marker = ""  # the marker of a list item whose first block is not written yet
        self.first_item = False

    def follow(self, tok: Token) -> bool:
        """Take in a list token; False for any other token."""
        kind = tok.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            self.ordered.append(kind == "ordered_list_open")
            self.first_item = True
        elif kind in ("bullet_list_close", "ordered_list_close"):
            self.ordered.pop()
        elif kind == "list_item_open":
            self.marker = f"{int(tok.info or 1)}{tok.markup} " if self.ordered[-1] else "- "
            self.widths.append(len(self.marker))
        elif kind == "list_item_close":
            self.widths.pop()
            self.marker = ""  # an empty item writes nothing
        else:
            return False
        return True

    def place(self, body: str) -> tuple[str, str]:
        """The separator before a block of `body` at this point, and the block indented under its list item."""
        indent = " " * sum(self.widths)
        lines = body.split("\n")
        if self.marker:
            first = " " * sum(self.widths[:-1]) + self.marker + lines[0]
            # A list hangs under its lead-in line; the items of one list stay together (a tight list).
            separator = "\n\n" if self.first_item and len(self.widths) == 1 else "\n"
            self.marker, self.first_item = "", False
        else:
            first, separator = indent + lines[0], "\n\n"
        return separator, "\n".join([first, *(indent + line if line else line for line in lines[1:])])


def answer_markdown(text: str) -> str:
    """An answer redrawn as markdown that keeps its shape (paragraphs, lists, bold, italics, code) while every piece
    of text in it stays text: answers quote notes, and a note's `\\[x\\](javascript:…)` or `\\!\\[pixel\\](https://…)`
    is unescaped once quoted. Links, images and HTML show as they were written; nothing is followed or fetched.

    `"**S3** — ![p](https://x.io/p.png) [1]"` -> `"**S3** — \\!\\[p\\]\\(https\\://x.io/p.png\\) [1]"`
    """
    blocks: list[str] = []
    lists = _Lists()
    for tok in _COMMONMARK.parse(text):
        kind = tok.type
        if lists.follow(tok):
            continue
        if kind in ("inline", "fence", "code_block", "html_block"):
            if kind == "inline":
                body = _inline_markdown(tok.children or [])
            elif kind == "html_block":
                body = plain(" ".join(tok.content.split()))
            else:
                body = _fenced(tok)
            separator, block = lists.place(body)
            blocks.append(separator + block if blocks else block)
    return "".join(blocks)


def _inline_markdown(children: Sequence[Token]) -> str:
    """One paragraph's inline tokens back to markdown: emphasis and code kept, all text through `plain`."""
    parts: list[str] = []
    closers: list[str] = []
    for tok in children:
        kind = tok.type
        if kind in ("strong_open", "strong_close", "em_open", "em_close"):
            parts.append(tok.markup)
        elif kind == "code_inline":
            ticks = "`" * (max(map(len, re.findall(r"`+", tok.content)), default=0) + 1)
            pad = " " if tok.content[:1] in ("`", " ") or tok.content[-1:] in ("`", " ") else ""
            parts.append(f"{ticks}{pad}{tok.content}{pad}{ticks}")
        elif kind in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif kind == "link_open":  # shown as written: `[text](href)`, or `<href>` for an autolink
            autolink = tok.markup == "autolink"
            parts.append(plain("<" if autolink else "["))
            closers.append(plain(">" if autolink else f"]({tok.attrs.get('href', '')})"))
        elif kind == "link_close":
            parts.append(closers.pop() if closers else "")
        elif kind == "image":
            title = f' "{tok.attrs["title"]}"' if tok.attrs.get("title") else ""
            parts.append(plain(f"![{tok.content}]({tok.attrs.get('src', '')}{title})"))
        else:  # text, html_inline and anything else: its text, as text
            parts.append(plain(tok.content))
    return "".join(parts)


def _fenced(tok: Token) -> str:
    """A code block as a fence longer than any backtick run inside it: its content is shown verbatim."""
    code = tok.content.rstrip("\n")
    fence = "`" * max(3, max(map(len, re.findall(r"`+", code)), default=0) + 1)
    language = tok.info.split()[0] if tok.info.split() and re.fullmatch(r"[\w+#.-]+", tok.info.split()[0]) else ""
    return f"{fence}{language}\n{code}\n{fence}"


def escape_dollars(markdown: str, small_headings: bool = False) -> str:
    """`$` outside code escaped: Streamlit reads `$...$` as LaTeX, which would mangle "costs $5 to $10".

    With `small_headings`, a note's own headings are shown at one small size, so a quoted section does not
    shout over the chat around it.
    """
    out, in_fence = [], False
    for line in markdown.split("\n"):
        fence = _FENCE.match(line)
        if fence:
            in_fence = not in_fence
        if in_fence or fence:
            out.append(line)
            continue
        if small_headings:
            line = _HEADING.sub("##### ", line)
        parts, last = [], 0
        for code in _CODE_SPAN.finditer(line):
            parts += [_escape_dollar(line[last : code.start()]), code.group(0)]
            last = code.end()
        out.append("".join([*parts, _escape_dollar(line[last:])]))
    return "\n".join(out)


def _escape_dollar(text: str) -> str:
    """`$` escaped unless the note escaped it already: `"\\$5 or $6"` -> `"\\$5 or \\$6"` (escaping `\\$` again
    would make it `\\\\$`, a backslash and then a live `$`)."""
    return _UNESCAPED_DOLLAR.sub(r"\1\\$", text)


def fenced_ranges(markdown: str) -> list[tuple[int, int]]:
    """Character ranges of fenced code blocks: a highlight there would show as literal markup."""
    ranges, start, pos = [], None, 0
    for line in markdown.split("\n"):
        if _FENCE.match(line):
            if start is None:
                start = pos
            else:
                ranges.append((start, pos + len(line)))
                start = None
        pos += len(line) + 1
    if start is not None:
        ranges.append((start, len(markdown)))
    return ranges


def find_quote(markdown: str, quote: str) -> tuple[int, int] | None:
    """Where a quoted sentence sits in the section source, ignoring markup between its words.

    Quotes are plain text ("Lambda — runs functions") while the source has markup ("**Lambda** — runs
    functions"), so the words are matched in order with any non-word characters between them.
    """
    words = re.findall(r"[^\W_]+", quote)
    if not words:
        return None
    # Emphasis around the first or last word is taken in, so a highlight never cuts a `**bold**` in half.
    # A match never starts right after a backslash: that `*` or `_` is the note's escaped character, not emphasis.
    pattern = r"(?<![^\W_])(?<!\\)[*_]*" + r"[\W_]+".join(map(re.escape, words)) + r"(?![^\W_])[*_]*[.!?:;]?"
    match = re.search(pattern, markdown)
    return match.span() if match else None


def mark_line(text: str) -> str | None:
    """One line's piece of a quote wrapped in a highlight, or None when its markup would break the wrapper."""
    core = text.strip()
    if not core:
        return text
    unbalanced = core.count("`") % 2 or core.count("**") % 2 or core.replace("**", "").count("*") % 2
    if "[" in core or "]" in core or unbalanced:
        return None
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()) :]
    return f"{lead}:orange-background[{core}]{trail}"


def mark_span(text: str) -> str | None:
    """A matched quote wrapped line by line (a highlight cannot span list items or paragraphs)."""
    lines = text.split("\n")
    marked = []
    for i, line in enumerate(lines):
        prefix = _LINE_PREFIX.match(line).group(0) if i else ""
        body = mark_line(line[len(prefix) :])
        if body is None:
            return None
        marked.append(prefix + body)
    return "\n".join(marked)


def highlight(markdown: str, quotes: Sequence[str]) -> tuple[str, list[str]]:
    """The section source with the quoted sentences highlighted, and the quotes that could not be marked."""
    code = fenced_ranges(markdown)
    found: list[tuple[int, int, str]] = []
    missed: set[str] = set()
    for quote in quotes:
        span = find_quote(markdown, quote)
        if span is None or any(s < span[1] and span[0] < e for s, e, *_ in [*code, *found]):
            missed.add(quote)  # not found, inside code, or overlapping a quote already marked
        else:
            found.append((*span, quote))
    out = markdown
    for start, end, quote in sorted(found, reverse=True):  # from the end, so earlier offsets stay valid
        marked = mark_span(out[start:end])
        if marked is None:
            missed.add(quote)
        else:
            out = out[:start] + marked + out[end:]
    return out, [q for q in quotes if q in missed]


# A note shown in the app (the note view, a source's text): its shape kept, every piece of text inert. Links to
# other notes open them in the app; web links stay links; images are never loaded (a remote image is a tracking
# pixel as often as a figure): they show as a link to where they are.

_NOTE_MD = MarkdownIt("commonmark").enable("table")
_BREAK = re.compile(r"^<br\s*/?>$", re.IGNORECASE)
_WEB = ("http", "https", "mailto")


@dataclass(frozen=True)
class NoteLink:
    """A link from a note to a note: the text it shows and the note (and heading anchor) it points to."""

    text: str
    path: str
    anchor: str = ""


def resolve_note_link(href: str, from_path: str) -> NoteLink | None:
    """Where a relative link in `from_path` points, when it is a markdown note; None for anything else.

    `("../Auth/README.md#tokens", "AWS/DynamoDB.md")` -> `NoteLink("", "Auth/README.md", "tokens")`
    """
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or not parts.path.lower().endswith((".md", ".markdown")):
        return None
    base = posixpath.dirname(from_path)
    path = posixpath.normpath(posixpath.join(base, unquote(parts.path)))
    if path.startswith("../") or path == "..":
        return None
    return NoteLink("", path.lstrip("/"), unquote(parts.fragment))


def note_markdown(text: str, path: str) -> tuple[str, list[NoteLink]]:
    """A note's markdown redrawn so that it reads as the note (headings, lists, tables, code, line breaks) while
    no piece of it is live: no HTML, no image, no Streamlit directive. Returns it and the links to other notes,
    which the page offers as in-app buttons (a markdown link would open a new tab).

    `("a<br/>b :red[x] ![p](https://t.io/p.png) [D](./D.md)", "A.md")` ->
    `("a\\\\\\nb \\\\:red\\\\[x\\\\] [image: p](<https://t.io/p.png>) D", [NoteLink("D", "D.md")])`
    """
    links: list[NoteLink] = []
    blocks: list[str] = []
    lists = _Lists()
    quote = 0
    row: list[str] = []
    table: list[str] = []
    in_table = False
    heading = ""

    def add(block: str) -> None:
        blocks.append("\n\n" + block if blocks else block)

    for tok in _NOTE_MD.parse(text):
        kind = tok.type
        if lists.follow(tok):
            continue
        if kind == "blockquote_open":
            quote += 1
        elif kind == "blockquote_close":
            quote -= 1
        elif kind == "heading_open":
            heading = "##### "  # one small size: a note's headings must not shout over the page around them
        elif kind == "hr":
            add("---")
        elif kind == "table_open":
            in_table, table = True, []
        elif kind == "tr_open":
            row = []
        elif kind == "tr_close":
            table.append("| " + " | ".join(row) + " |")
            if len(table) == 1:
                table.append("|" + " --- |" * len(row))
        elif kind == "table_close":
            in_table = False
            add("\n".join(table))
        elif kind == "inline" and in_table:
            row.append(_note_inline(tok.children or [], path, links).replace("\\\n", " ").replace("\n", " "))
        elif kind in ("inline", "fence", "code_block", "html_block"):
            if kind == "inline":
                body = heading + _note_inline(tok.children or [], path, links)
                heading = ""
            elif kind == "html_block":
                content = tok.content.strip()
                if _BREAK.match(content):
                    continue
                body = plain(" ".join(content.split()))
            else:
                body = _fenced(tok)
            separator, block = lists.place(body)
            if quote:
                block = "\n".join("> " * quote + line for line in block.split("\n"))
            blocks.append(separator + block if blocks else block)
    return "".join(blocks), links


def _note_inline(children: Sequence[Token], path: str, links: list[NoteLink]) -> str:
    """A note's inline tokens as inert markdown; see `note_markdown`."""
    parts: list[str] = []
    closers: list[str] = []
    for n, tok in enumerate(children):
        kind = tok.type
        if kind in ("strong_open", "strong_close", "em_open", "em_close", "s_open", "s_close"):
            parts.append(tok.markup)
        elif kind == "code_inline":
            ticks = "`" * (max(map(len, re.findall(r"`+", tok.content)), default=0) + 1)
            pad = " " if tok.content[:1] in ("`", " ") or tok.content[-1:] in ("`", " ") else ""
            parts.append(f"{ticks}{pad}{tok.content}{pad}{ticks}")
        elif kind == "softbreak":
            parts.append("\n")
        elif kind == "hardbreak" or (kind == "html_inline" and _BREAK.match(tok.content.strip())):
            parts.append("\\\n")
        elif kind == "link_open":
            href = tok.attrs.get("href", "")
            target = resolve_note_link(href, path)
            scheme = urlsplit(href).scheme.lower()
            if target is not None:
                label = "".join(c.content for c in _until_close(children, n))
                links.append(dataclasses.replace(target, text=label or target.path))
                closers.append("")  # the text stays, as text; the note opens from its button
            elif scheme in _WEB:
                parts.append("[")
                closers.append(f"](<{href.replace('>', '%3E').replace(' ', '%20')}>)")
            else:  # `javascript:`, `data:`, a picture or file on disk: shown as written
                parts.append(plain("["))
                closers.append(plain(f"]({href})"))
        elif kind == "link_close":
            parts.append(closers.pop() if closers else "")
        elif kind == "image":
            src = tok.attrs.get("src", "")
            alt = plain(tok.content or "image")
            if urlsplit(src).scheme.lower() in ("http", "https"):
                parts.append(f"[image: {alt}](<{src.replace('>', '%3E').replace(' ', '%20')}>)")
            else:
                parts.append(plain(f"[image: {tok.content or 'image'}] ({src})"))
        else:  # text, other HTML, anything else: its text, as text
            parts.append(plain(tok.content))
    return "".join(parts)


def _until_close(children: Sequence[Token], start: int) -> list[Token]:
    """The text tokens of the link that opens at `start`."""
    out = []
    for tok in children[start + 1 :]:
        if tok.type == "link_close":
            break
        if tok.type in ("text", "code_inline"):
            out.append(tok)
    return out


_CITE = re.compile(r"(?<!\\)\[(\d+)\]")


def cite_links(markdown: str, anchors: dict[int, str]) -> str:
    """`[n]` markers of an answer made links to their sources on the page (`#anchor`: same page, same tab).

    `("Runs code. [1]", {1: "src-7-1"})` -> `"Runs code. [\\\\[1\\\\]](#src-7-1)"`; code is left alone.
    """
    out, last = [], 0
    code = [(s, e) for s, e in fenced_ranges(markdown)]
    code += [m.span() for m in _CODE_SPAN.finditer(markdown)]
    for m in _CITE.finditer(markdown):
        n = int(m.group(1))
        if n not in anchors or any(s <= m.start() < e for s, e in code):
            continue
        out += [markdown[last : m.start()], f"[\\[{n}\\]](#{anchors[n]})"]
        last = m.end()
    return "".join([*out, markdown[last:]])


_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)\s*$")


def section_body(section: Section) -> str:
    """The section's markdown without its own heading line, which the note view draws as an anchored header."""
    lines = section.markdown.split("\n")
    if not section.title:
        return section.markdown
    if lines and _HEADING.match(lines[0]):
        lines = lines[1:]
    elif len(lines) > 1 and _SETEXT_UNDERLINE.match(lines[1]):
        lines = lines[2:]
    return "\n".join(lines).strip("\n")
