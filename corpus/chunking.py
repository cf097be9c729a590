"""Sections -> units (sentences and list items) and chunks that fit the embedding model's window."""

from __future__ import annotations

import re

from corpus.types import Block, Chunk, Section, Unit

# all-MiniLM-L6-v2 reads 256 word pieces. `estimate_tokens` counts words and punctuation, and English words
# average ~1.2 word pieces, so 180 estimated tokens stays inside the window with the heading path in front.
CHUNK_TOKENS = 180
_TOKEN = re.compile(r"\w+|[^\w\s]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_LABEL_WORDS = 8
_LONG_ITEM_WORDS = 60


def estimate_tokens(text: str) -> int:
    """Words and punctuation marks, a long word counting one per 8 characters: `"Hello, world!"` -> 4.

    Word pieces split rare long strings (hashes, base64) finely, so those must not count as one token.
    """
    return sum(-(-len(tok) // 8) if tok[0].isalnum() or tok[0] == "_" else 1 for tok in _TOKEN.findall(text))


def split_sentences(text: str) -> list[str]:
    """Sentences of one line: `"It is fast. It scales."` -> `["It is fast.", "It scales."]`.

    A sentence does not end inside brackets it opened: in `"Notes (ch. 9) on decorators."` the full stop after
    an abbreviation is followed by a number, which looks like a new sentence, but the bracket is still open.
    """
    parts, start = [], 0
    for end in _SENTENCE_END.finditer(text):
        head = text[start : end.start()]
        if _still_open(head) and _closes(text[end.end() :], head):
            continue
        parts.append(head)
        start = end.end()
    parts.append(text[start:])
    return [part.strip() for part in parts if part.strip()]


def _still_open(text: str) -> bool:
    return text.count("(") > text.count(")") or text.count("[") > text.count("]")


def _closes(rest: str, head: str) -> bool:
    """Whether what follows closes a bracket `head` left open, within the same line (a stray "(" in `:(` must not
    swallow every later sentence)."""
    closer = ")" if head.count("(") > head.count(")") else "]"
    return closer in rest


def is_label(line: str) -> bool:
    """A short line that introduces the next one: `"Pros"`, `"kube-apiserver:-"`, `"Private Connectivity:"`."""
    return len(line.split()) <= _LABEL_WORDS and not line.rstrip().endswith((".", "!"))


def _labelled(text: str) -> bool:
    """Text whose first line opens with a short label, a colon and what it says: `"Node controller: Responsible
    for ..."` -> True; a label alone on its line (`"cloud-controller-manager:-"`) heads a paragraph -> False."""
    head, colon, rest = text.split("\n", 1)[0].partition(":")
    return bool(colon) and len(rest.strip(" -")) > 1 and bool(head.strip()) and is_label(head)


def _join(label: str, line: str) -> str:
    label = label.rstrip(" :-")
    return f"{label}: {line}"


def _logical_lines(block: Block) -> list[tuple[str, int, int]]:
    """The block's lines with hard-wrapped prose joined back: a line that starts in lower case and follows a line
    with no closing punctuation continues it.

    `"the client may retry it after\na network error."` -> one line; `"Pros\nFast"` -> two.
    A paragraph's text keeps its source line breaks, so line i of the block is `line_start + i`.
    """
    out: list[tuple[str, int, int]] = []
    for n, raw in enumerate(block.text.split("\n")):
        line = raw.strip()
        at = min(block.line_start + n, block.line_end)
        if not line:
            continue
        if out and line[0].islower() and not out[-1][0].endswith((".", "!", "?", ":")):
            text, first, _ = out[-1]
            out[-1] = (f"{text} {line}", first, at)
        else:
            out.append((line, at, at))
    return out


# A short code block ("CREATE INDEX CONCURRENTLY ...") is often the answer itself; a long one is not quotable.
_SHORT_CODE_LINES = 3
_SHORT_CODE_CHARS = 160


def _block_pieces(block: Block) -> list[tuple[str, int, int]]:
    """The quotable pieces of one block with their lines: a list item whole, a short code block as code, a
    paragraph line by line and sentence by sentence."""
    if block.kind == "code":
        lines = [line.strip() for line in block.text.split("\n") if line.strip()]
        if lines and len(lines) <= _SHORT_CODE_LINES and len(block.text) <= _SHORT_CODE_CHARS:
            return [(" ".join(f"`{line}`" for line in lines), block.line_start, block.line_end)]
        return []
    lines = _logical_lines(block)
    if block.kind in ("item", "row") and len(block.text.split()) <= _LONG_ITEM_WORDS:
        texts = [text for text, _, _ in lines]
        text = " ".join(texts)
        if len(texts) > 1 and is_label(texts[0]):
            text = _join(texts[0], " ".join(texts[1:]))
        return [(text, block.line_start, block.line_end)]
    pieces: list[tuple[str, int, int]] = []
    pending, pending_line = "", 0
    for n, (line, start, end) in enumerate(lines):
        first = start
        if pending:
            line, first, pending = _join(pending, line), pending_line, ""
        if is_label(line) and n + 1 < len(lines):
            pending, pending_line = line, first
            continue
        pieces.extend((sentence, first, end) for sentence in split_sentences(line))
    return pieces


def section_units(section: Section) -> list[Unit]:
    """Units of a section in reading order; a heading inside a comment is joined to the text it heads.

    Each unit knows its passage: a paragraph, or a list or table together with the line that leads into it
    ("The application does the following:") and a code block after a line ending in ":". An answer that quotes
    one unit of a passage can quote the passage whole, so a list never loses its lead-in or its last items.
    """
    units: list[Unit] = []
    pending: Block | None = None
    label = ""  # the short line a list hangs under, carried to its items
    passage, prev_kind, lead_in = -1, "", False
    under = ""  # the commented-out heading the text sits under, until the comment ends
    labelled = False  # inside a run of "Name: what it does" paragraphs after a lead-in: a list written as prose
    for block in section.blocks:
        if block.navigation:
            continue  # a link list or a caption is no answer to anything
        if block.kind == "heading":
            pending, prev_kind, lead_in, under = block, "heading", False, block.text
            continue
        if not block.hidden:
            under = ""
        pieces = _block_pieces(block)
        # "Some types of these controllers are:" then one paragraph per "Node controller: ..." is a list whose
        # author left out the bullets: its items travel with their lead-in like any list's.
        labelled = block.kind == "paragraph" and (lead_in or labelled) and bool(pieces) and _labelled(block.text)
        kind = "item" if labelled else block.kind
        listed = kind in ("item", "row")
        if not ((listed and (prev_kind in ("item", "row") or lead_in)) or (block.kind == "code" and lead_in)):
            passage += 1
        if pending is not None and pieces:
            text, _, end = pieces[0]
            pieces[0] = (_join(pending.text, text), pending.line_start, end)
        pending = None
        if block.kind == "code" and pieces and units and units[-1].text.endswith(":"):
            # "On prod:" then a one-line code block: the label and its code are one statement.
            last, (code, _, end) = units[-1], pieces.pop(0)
            units[-1] = Unit(
                section.key, last.ordinal, f"{last.text} {code}", last.line_start, end, last.hidden, last.context,
                last.passage, last.kind, last.heading,
            )
        context = label if kind == "item" else ""
        for text, start, end in pieces:
            unit = Unit(section.key, len(units), text, start, end, block.hidden, context, passage, kind, under)
            units.append(unit)
        prev_kind = kind
        if labelled:
            continue  # the lead-in's label still heads what follows
        if block.kind != "item":
            last = pieces[-1][0] if pieces else ""
            label = last.rstrip(" :-") if last and (is_label(last) or last.endswith(":")) else ""
        if pieces or block.kind != "code":  # a long code block (no pieces) keeps the lead-in open for what follows
            # A paragraph that ends on a label ("Pros", "The steps are:") leads into the list after it; an item
            # ending in ":" leads into the code block after it.
            lead_in = bool(label) if block.kind not in ("item", "code") else pieces[-1][0].rstrip().endswith(":")
    if pending is not None:
        units.append(
            Unit(
                section.key, len(units), pending.text, pending.line_start, pending.line_end, True, "", passage + 1,
                "paragraph", pending.text,
            )
        )
    return units


def _split_long(text: str, budget: int) -> list[str]:
    """Cut text with no sentence breaks into pieces of at most `budget` estimated tokens.

    Words are packed while they fit; a single word over budget (a long URL) is cut into character runs.
    """
    parts: list[str] = []
    for word in text.split():
        if estimate_tokens(word) > budget:
            # Punctuation-dense words cost about one token per 2 characters; cut well inside that.
            step = max(budget, 8)
            parts += [word[i : i + step] for i in range(0, len(word), step)]
        else:
            parts.append(word)
    return _pack(parts, budget, " ")


def _pack(pieces: list[str], budget: int, sep: str) -> list[str]:
    """Greedy packing in order: `(["a b", "c", "d e f"], 3, " ")` -> `["a b c", "d e f"]` (one token a word)."""
    packed: list[str] = []
    current: list[str] = []
    size = 0
    for piece in pieces:
        cost = estimate_tokens(piece)
        if current and size + cost > budget:
            packed.append(sep.join(current))
            current, size = [], 0
        current.append(piece)
        size += cost
    if current:
        packed.append(sep.join(current))
    return packed


def section_chunks(section: Section, budget: int = CHUNK_TOKENS) -> list[Chunk]:
    """Chunks of a section, each within `budget` estimated tokens including the heading path in front of it.

    Blocks are packed whole while they fit; a block too big on its own is cut at sentences, then at words.
    """
    head = section.breadcrumb
    room = max(budget - estimate_tokens(head), 32)
    pieces: list[str] = []
    for block in (b for b in section.blocks if not b.navigation):
        if estimate_tokens(block.text) <= room:
            pieces.append(block.text)
            continue
        for sentence in (s for line in block.text.split("\n") for s in split_sentences(line)):
            if estimate_tokens(sentence) <= room:
                pieces.append(sentence)
            else:
                pieces.extend(_split_long(sentence, room))
    chunks = _pack(pieces, room, "\n") or [""]
    return [Chunk(section.key, n, text, f"{head}\n{text}".strip()) for n, text in enumerate(chunks)]
