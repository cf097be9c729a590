"""Markdown text -> sections, with a CommonMark parser so that `#` in code or comments is never a heading."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

from markdown_it import MarkdownIt
from markdown_it.token import Token

from corpus.anchors import AnchorCounter
from corpus.redact import redact
from corpus.types import Block, Note, Section

# Bounded and stopping at the next "<", so a line of ten thousand "<a" costs one short look each, not a scan
# to the end of the text each (quadratic).
_TAG = re.compile(r"</?[A-Za-z][^<>]{0,2000}>")
_IMG = re.compile(r"<img\b", re.IGNORECASE)


def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


def _inline_comments(token: Token) -> list[str]:
    """Texts of HTML comments inside an inline: `see <!-- old idea --> here` -> `["old idea"]`."""
    found = []
    for child in token.children or []:
        if child.type == "html_inline" and child.content.startswith("<!--"):
            text = " ".join(child.content.removeprefix("<!--").removesuffix("-->").split())
            if text:
                found.append(text)
    return found


def heading_text(token: Token) -> str:
    """A heading's text with its spacing as typed, which GitHub's anchors keep: `Foo  Bar` -> `foo--bar`."""
    return "".join(c.content for c in token.children or [] if c.type in ("text", "code_inline")).strip()


def inline_text(token: Token) -> str:
    """Plain text of an inline token: link text kept, markup dropped, line breaks kept.

    `[DynamoDB](./DynamoDB.md) is **fast**` -> `DynamoDB is fast`

    An image's alt text stands for the image only where the image stands alone: beside prose it describes a
    picture, not what the prose says, and quoted it would be an answer line of its own ("tracker.").
    `Hot partitions hurt. ![tracker](https://t.io/p.png)` -> `Hot partitions hurt.`
    """
    children = token.children or []
    prose = any(c.type in ("text", "code_inline") and c.content.strip() for c in children)
    parts: list[str] = []
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "html_inline" and not child.content.startswith("<!--"):
            parts.append(_TAG.sub(" ", child.content))
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type == "image" and not prose:
            parts.append(child.content)
    lines = (" ".join(line.split()) for line in "".join(parts).split("\n"))
    return "\n".join(line for line in lines if line)


def _links(token: Token) -> list[str]:
    return [child.attrs.get("href", "") for child in token.children or [] if child.type == "link_open"]


@dataclass
class _Draft:
    """A section while it is being read; frozen into a `Section` once its end is known."""

    anchor: str
    title: str
    level: int
    heading_path: tuple[str, ...]
    line_start: int
    blocks: list[Block] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    anchor_links: int = 0
    link_lines: int = 0


def _blocks(tokens: list[Token], offset: int, hidden: bool, drafts_links: list[str]) -> list[tuple[Block, int]]:
    """Blocks of a run of tokens, each with the 0-based line it starts on (for ordering)."""
    out: list[tuple[Block, int]] = []
    items: list[list[str]] = []  # open list items, innermost last
    item_lines: list[tuple[int, int]] = []
    item_links: list[bool] = []  # whether each open item is nothing but links so far
    row: list[tuple[str, bool]] | None = None  # cells: text, and whether it is nothing but links
    row_line = (0, 0)
    header: list[str] = []
    in_head = False
    for i, tok in enumerate(tokens):
        start, end = (tok.map or (0, 0))
        start, end = start + offset, end + offset
        if tok.type == "list_item_open":
            items.append([])
            item_lines.append((start, start + 1))
            item_links.append(True)
        elif tok.type == "list_item_close":
            text = "\n".join(items.pop())
            s, e = item_lines.pop()
            kind = "links" if item_links.pop() else "item"
            if text:
                out.append((Block(text, kind, s + 1, e, hidden), s))
        elif tok.type in ("thead_open", "thead_close"):
            in_head = tok.type == "thead_open"
        elif tok.type == "tr_open":
            row, row_line = [], (start, end)
        elif tok.type == "tr_close" and row is not None:
            if in_head:
                header = [cell for cell, _ in row]  # not a block of its own: each row below carries it
            else:
                text, kind = _row_text(header, row)
                if text:
                    out.append((Block(text, kind, row_line[0] + 1, row_line[1], hidden), row_line[0]))
            row = None
        elif tok.type == "inline":
            drafts_links.extend(_links(tok))
            text = inline_text(tok)
            # A comment inside a paragraph is commented-out text too: searchable, shown as hidden.
            for comment in _inline_comments(tok):
                out.append((Block(comment, "paragraph", start + 1, max(end, start + 1), True), start))
            shape = _shape(tok)
            if row is not None:
                row.append((text, shape == "links"))
            elif items:
                # An item ends on its last line of text, not on the blank line a loose list puts after it.
                item_lines[-1] = (item_lines[-1][0], max(item_lines[-1][1], end))
                if text:
                    items[-1].append(text)
                    item_links[-1] = item_links[-1] and shape == "links"
            elif text:
                kind = "heading" if i > 0 and tokens[i - 1].type == "heading_open" else shape or "paragraph"
                out.append((Block(text, kind, start + 1, max(end, start + 1), hidden), start))
        elif tok.type in ("fence", "code_block"):
            text = tok.content.strip("\n")
            if text.strip():
                out.append((Block(text, "code", start + 1, max(end, start + 1), hidden), start))
        elif tok.type == "html_block":
            out.extend(_html_blocks(tok, offset, hidden, drafts_links))
    return out


def _row_text(header: list[str], cells: list[tuple[str, bool]]) -> tuple[str, str]:
    """A table row read with its header, and its kind: `"row"`, or `"links"` when every cell is a link.

    `(["method", "safe"], [("GET", False), ("yes", False)])` -> `("method: GET; safe: yes", "row")`.
    A row quoted alone must still say what its cells mean. A cell that is only a link (a "Reference" column)
    names where to read more, not what the row says: it is left out when other cells have text.
    """
    if any(text and not link for text, link in cells):
        cells = [(text if not link else "", link) for text, link in cells]
        kind = "row"
    else:
        kind = "links"
    texts = [text for text, _ in cells]
    if len(header) != len(texts) or not any(header):
        return " | ".join(cell for cell in texts if cell), kind
    return "; ".join(f"{h}: {c}" if h else c for h, c in zip(header, texts, strict=True) if c), kind


def _comment_split(content: str) -> Iterator[tuple[int, int, bool]]:
    """(start, end, inside a comment) spans of an HTML block's text, in order, found in one pass.

    HTML comments do not nest, so an `<!--` inside one is just text; an unclosed one runs to the end.
    `"a<!--b-->c"` -> `(0, 1, False), (5, 6, True), (9, 10, False)`
    """
    pos = 0
    while pos < len(content):
        opener = content.find("<!--", pos)
        if opener < 0:
            yield pos, len(content), False
            return
        if opener > pos:
            yield pos, opener, False
        closer = content.find("-->", opener + 4)
        end = len(content) if closer < 0 else closer
        yield opener + 4, end, True
        pos = len(content) if closer < 0 else closer + 3


def _strip_tags(text: str) -> str:
    """Tags dropped, the lines they spanned kept: `"<b\nclass=x>hi</b>"` -> `" \n hi "`."""
    return _TAG.sub(lambda m: " " + "\n" * m.group().count("\n"), text)


def _html_blocks(tok: Token, offset: int, hidden: bool, links: list[str]) -> list[tuple[Block, int]]:
    """An HTML block: the text of its tags as a paragraph, its comments parsed as markdown and marked hidden.

    Iterative over the comments, so a block of hundreds of `<!--` costs one pass, not one stack frame each.
    """
    start = (tok.map or (0, 0))[0] + offset
    content = tok.content
    out: list[tuple[Block, int]] = []
    for a, b, is_comment in _comment_split(content):
        first = start + content.count("\n", 0, a)  # 0-based line of the span's first character
        if is_comment:
            # The comment's body starts on the line of "<!--", so its line numbers line up with the file's.
            body = content[a:b].replace("<!--", "")
            out.extend(_blocks(_parser().parse(body), first, True, links))
            continue
        lines = [" ".join(line.split()) for line in _strip_tags(content[a:b]).split("\n")]
        while lines and not lines[-1]:
            lines.pop()
        lead = next((n for n, line in enumerate(lines) if line), None)
        if lead is None:
            continue
        text = "\n".join(lines[lead:])
        line_start = first + lead + 1
        # Text beside an image in HTML (`<p><img ...><br/><i>Source: ...</i></p>`) is its caption.
        kind = "caption" if _IMG.search(content, a, b) else "paragraph"
        out.append((Block(text, kind, line_start, first + len(lines), hidden), line_start - 1))
    return out


UNTITLED = "(untitled heading)"
# A section whose blocks are (nearly) all links and captions is a reading list or a figure, not something that
# answers a question ("Source(s) and further reading" under every topic of the system-design notes).
NAVIGATION_SHARE = 0.8


def _freeze(draft: _Draft, path: str, line_end: int, markdown: str) -> Section:
    blocks = tuple(draft.blocks)
    if not blocks:
        kind = "empty"
    elif draft.anchor_links >= 3 and draft.link_lines >= 0.8 * len(blocks):
        kind = "toc"
    elif sum(block.navigation for block in blocks) >= NAVIGATION_SHARE * len(blocks):
        kind = "links"
    else:
        kind = "content"
    external = ("#", "http", "mailto:")
    notes_links = tuple(dict.fromkeys(link for link in draft.links if link and not link.startswith(external)))
    return Section(
        path=path,
        anchor=draft.anchor,
        title=draft.title,
        level=draft.level,
        heading_path=draft.heading_path,
        line_start=draft.line_start,
        line_end=max(line_end, draft.line_start),
        blocks=blocks,
        markdown=markdown,
        links=notes_links,
        kind=kind,
    )


def _markdown(lines: list[str], start: int, end: int) -> str:
    """The section's source lines, comment markers removed so the hidden text shows as text."""
    text = "\n".join(lines[start - 1 : end])
    return text.replace("<!--", "").replace("-->", "").strip("\n")


def parse_note(note: Note) -> list[Section]:
    """Sections of one note, in file order.

    `# AWS\\n## Databases\\n### Elasticache\\nRedis on cloud` -> sections `aws`, `databases` (empty) and
    `elasticache` with heading path ("AWS", "Databases", "Elasticache").
    """
    # Credentials are masked first, in the text every field below is cut from: titles, anchors, blocks, markdown.
    text = blank_front_matter(redact(note.text))
    tokens = _parser().parse(text)
    lines = text.split("\n")
    anchors = AnchorCounter()
    stem = note.path.rsplit("/", 1)[-1].removesuffix(".md")
    drafts: list[_Draft] = [_Draft("", stem, 0, (stem,), 1)]
    stack: list[tuple[int, str]] = []
    i = 0
    body: list[Token] = []

    def flush() -> None:
        draft = drafts[-1]
        blocks = _blocks(body, 0, False, draft.links)
        draft.blocks.extend(block for block, _ in sorted(blocks, key=lambda pair: pair[1]))
        inlines = [tok for tok in body if tok.type == "inline"]
        draft.anchor_links += sum(1 for tok in inlines for href in _links(tok) if href.startswith("#"))
        draft.link_lines += sum(1 for tok in inlines if _only_anchor_links(tok))
        body.clear()

    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "heading_open" and tok.level == 0:
            flush()
            level = int(tok.tag[1:])
            title = inline_text(tokens[i + 1]).replace("\n", " ")
            anchor = anchors(heading_text(tokens[i + 1]) or title)
            # An empty heading (`### `) still starts a section; it needs a name to be cited by.
            title = title or UNTITLED
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
            line = (tok.map or (0, 0))[0] + 1
            drafts.append(_Draft(anchor, title, level, tuple(t for _, t in stack), line))
            i += 3
            continue
        body.append(tok)
        i += 1
    flush()

    sections: list[Section] = []
    for n, draft in enumerate(drafts):
        end = drafts[n + 1].line_start - 1 if n + 1 < len(drafts) else len(lines)
        if n == 0 and not draft.blocks:
            continue  # nothing before the first heading
        # Blank lines at the end are not the section's, unless a block holds them (an unclosed fence runs on).
        last_block = max((b.line_end for b in draft.blocks), default=draft.line_start)
        while end > max(draft.line_start, last_block) and not lines[end - 1].strip():
            end -= 1
        sections.append(_freeze(draft, note.path, end, _markdown(lines, draft.line_start, end)))
    return sections


_FRONT_MATTER_END = re.compile(r"^(---|\.\.\.)\s*$")
# What YAML front matter is made of: `key: value` lines, `- item` and indented continuation lines, comments.
# A note that merely starts with a `---` rule has prose or markdown between its rules instead.
_YAML_KEY = re.compile(r"^[\w\"'][\w .\"'-]{0,100}:(\s|$)")
_YAML_MORE = re.compile(r"^(\s+\S|-(\s|$)|#)")


def blank_front_matter(text: str) -> str:
    """YAML front matter (Obsidian, Jekyll) blanked out, line numbers kept; any other text between rules kept.

    Parsed as markdown, its closing `---` would turn the lines above it into a heading.
    `"---\ntags: [aws]\n---\n# AWS"` -> `"\n\n\n# AWS"`; `"---\nJust a rule\n---"` stays as it is.
    """
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return text
    for n, line in enumerate(lines[1:], start=1):
        if _FRONT_MATTER_END.match(line):
            first = next((line for line in lines[1:n] if line.strip()), None)
            if first is not None and not _YAML_KEY.match(first):
                return text
            return "\n" * (n + 1) + "\n".join(lines[n + 1 :])
        if line.strip() and not (_YAML_KEY.match(line) or _YAML_MORE.match(line)):
            return text  # a line YAML cannot hold: a rule followed by the note itself
    return text


# A caption is a few words beside an image; a paragraph of prose that happens to hold an image is content.
CAPTION_WORDS = 12
_SEPARATORS = " \t\n-*|:,.;·•()[]–—/"
_BARE_URL = re.compile(r"<?[a-z][a-z0-9+.-]{1,20}://[^\s<>]{1,2000}>?", re.IGNORECASE)


def _shape(token: Token) -> str:
    """What an inline is made of: `"links"` (nothing but links, as in a reading list or a table of contents),
    `"caption"` (an image and at most a few words), or `""` (text).

    `[CAP FAQ](https://x) · [Raft](https://y)` -> `"links"`; `![diagram](d.png) Source: a talk` -> `"caption"`
    """
    children = token.children or []
    links = sum(1 for c in children if c.type == "link_open")
    images = sum(1 for c in children if c.type == "image")
    if not links and not images:
        # A bare URL on its own line is a link too, written without markdown.
        text = "".join(c.content for c in children if c.type in ("text", "code_inline")).strip()
        return "links" if _BARE_URL.fullmatch(text) else ""
    depth, outside = 0, []
    for child in children:
        if child.type == "link_open":
            depth += 1
        elif child.type == "link_close":
            depth -= 1
        elif depth == 0 and child.type in ("text", "code_inline"):
            outside.append(child.content)
    words = "".join(outside).strip(_SEPARATORS).split()
    if images:
        return "caption" if len(words) <= CAPTION_WORDS else ""
    return "links" if not words else ""


def _only_anchor_links(token: Token) -> bool:
    """True for an inline that holds nothing but links to anchors (a table-of-contents line)."""
    hrefs = [c.attrs.get("href", "") for c in token.children or [] if c.type == "link_open"]
    return _shape(token) == "links" and all(str(h).startswith("#") for h in hrefs)


def parse_notes(notes: Sequence[Note]) -> tuple[list[Section], list[str]]:
    """Sections of every note, and a one-line warning for each note that could not be parsed.

    One pathological file must not stop the folder: whatever goes wrong inside it is reported and it is skipped.
    Keys (`path#anchor`) are unique per note by construction (`AnchorCounter`); this also holds them unique
    across the folder, whatever paths the notes have, since Chroma rows and citations are keyed by them.
    """
    sections: list[Section] = []
    warnings: list[str] = []
    seen: set[str] = set()
    for note in notes:
        try:
            parsed = parse_note(note)
        except Exception as err:  # whatever one file does, the others still index
            warnings.append(f"skipped {note.path}: it could not be parsed as markdown ({type(err).__name__})")
            continue
        for section in parsed:
            unique, n = section, 1
            while unique.key in seen:
                unique, n = replace(section, anchor=f"{section.anchor}-{n}"), n + 1
            seen.add(unique.key)
            sections.append(unique)
    return sections, warnings
