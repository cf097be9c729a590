"""The plain data the corpus hands on: notes, blocks, sections and chunks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Note:
    """One markdown file, its path relative to the notes folder (POSIX style) and its text."""

    path: str
    text: str


@dataclass(frozen=True)
class Block:
    """One paragraph, list item, table row or code block of a section.

    `hidden` marks text that sits inside an HTML comment: searchable, but the user commented it out.
    Lines are 1-based and inclusive, as an editor shows them.
    """

    text: str
    kind: str  # "paragraph" | "item" | "code" | "row" | "heading" | "links" | "caption"
    line_start: int
    line_end: int
    hidden: bool = False

    @property
    def navigation(self) -> bool:
        """Links to read elsewhere or an image's caption: shown with the section, never quoted as an answer."""
        return self.kind in ("links", "caption")


@dataclass(frozen=True)
class Section:
    """The text under one heading, up to the next heading of any level.

    `heading_path` runs from the file's top heading down to this one: ("AWS", "Databases", "Elasticache").
    `kind` is "content", "toc" (nothing but links to anchors), "links" (nearly all links and captions: a reading
    list or a figure) or "empty" (no text of its own). Only "content" is indexed.
    """

    path: str
    anchor: str
    title: str
    level: int
    heading_path: tuple[str, ...]
    line_start: int
    line_end: int
    blocks: tuple[Block, ...]
    markdown: str
    links: tuple[str, ...] = ()
    kind: str = "content"

    @property
    def key(self) -> str:
        """`path#anchor`, the id a citation and the eval gold use."""
        return f"{self.path}#{self.anchor}" if self.anchor else self.path

    @property
    def text(self) -> str:
        """What the section says: its blocks but the links and captions."""
        return "\n".join(block.text for block in self.blocks if not block.navigation)

    @property
    def hidden(self) -> bool:
        return any(block.hidden for block in self.blocks)

    @property
    def breadcrumb(self) -> str:
        return " > ".join(self.heading_path)

    @property
    def indexable(self) -> bool:
        return self.kind == "content"


@dataclass(frozen=True)
class Chunk:
    """A piece of one section small enough for the embedding model, with the text that gets embedded."""

    section_key: str
    ordinal: int
    text: str
    embed_text: str


@dataclass(frozen=True)
class Unit:
    """A sentence or list item: the smallest piece an answer quotes and cites.

    `context` is the label a list hangs under ("Cons", "Key features:"): embedded with the item, not quoted.
    `passage` numbers the paragraph, or the list with its lead-in line, that the unit belongs to in its section;
    `kind` is the kind of block it comes from ("paragraph", "item", "row", "code"); `heading` is the
    commented-out heading it sits under ("Glacier" in `<!-- ### Glacier ... -->`), empty for the section's own text.
    """

    section_key: str
    ordinal: int
    text: str
    line_start: int
    line_end: int
    hidden: bool = False
    context: str = ""
    passage: int = 0
    kind: str = "paragraph"
    heading: str = ""
