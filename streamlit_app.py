"""Chat with your markdown notes: answers stream in with `[n]` citations to the exact note sections.

Run: `streamlit run streamlit_app.py` (settings come from NOTES_* variables, see assistant/settings.py).
This and the page modules (`practice_page.py`) are the only modules that import streamlit; everything they
show comes from `assistant.app` and `practice`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote as url_quote

import streamlit as st
from markdown_it import MarkdownIt
from markdown_it.token import Token
from streamlit.delta_generator import DeltaGenerator

from assistant.app import App, build
from assistant.chain import EXTRACTIVE
from assistant.llm import LLMConfigError
from assistant.questions import QuestionError
from assistant.settings import Settings, SettingsError
from assistant.types import Answer, Citation
from corpus.reader import NotesError
from corpus.types import Section
from index.embeddings import ModelError
from index.store import IndexError_, Progress

ANSWER_AVATAR = ":material/menu_book:"
REFUSAL_AVATAR = ":material/search_off:"
USER_AVATAR = ":material/person:"
PRACTICE_AVATAR = ":material/school:"
NOTE_PARAM = "note"  # `?note=path#anchor` shows that note instead of the chat
# Errors the user can fix (a wrong folder, a missing model package, a bad NOTES_LLM or NOTES_TOP_K): one line each,
# never a traceback. (An LLM that fails mid-answer is handled by the answerer: it falls back to the extractive answer.)
SETUP_ERRORS = (NotesError, ModelError, IndexError_, LLMConfigError, SettingsError)


# Start-up: one model and one index per server, shared by every browser tab.


@dataclass
class Shared:
    """The app every session uses, and the lock that keeps a re-index from running under a question.

    `synced` is False until the notes were first indexed: that run embeds every section, so it happens in
    a session (with a progress bar) rather than inside the cached builder, which must not draw anything.
    """

    app: App
    lock: threading.Lock = field(default_factory=threading.Lock)
    synced: bool = False
    notices: list[str] = field(default_factory=list)


@st.cache_resource(show_spinner="Loading the embedding model and opening the index…")
def load_shared(settings: Settings) -> Shared:
    notices: list[str] = []
    app = build(settings, say=notices.append, sync=False)
    # Loading the model takes seconds; pay it here, once, not on the first question.
    app.embeddings.embed_query("warm up")
    return Shared(app, notices=notices)


def progress_bar(bar: DeltaGenerator) -> Progress:
    """A `progress(done, total)` callable that feeds an `st.progress` element."""

    def progress(done: int, total: int) -> None:
        bar.progress(done / total if total else 1.0, text=f"Embedding note text: {done} of {total}")

    return progress


def sync_notes(shared: Shared, label: str, first: bool = False) -> str | None:
    """Re-read the notes and update the index, showing progress; returns what changed.

    `first` is the start-up sync, skipped (None) when another tab finished it while this one waited.
    """
    with shared.lock:
        if first and shared.synced:
            return None
        with st.status(label, expanded=True) as status:
            # Under the index's lock, like the CLI: a CLI run under way is waited for, with its message as the label.
            bar = progress_bar(st.progress(0.0))
            report = shared.app.reindex(bar, say=lambda message: status.update(label=message))
            shared.synced = True
            status.update(label=f"Notes indexed: {report}", state="complete", expanded=False)
    return str(report)


def ready_app() -> Shared:
    """The shared app, indexed; stops the page with a one-line error when the notes or model are unusable."""
    try:
        shared = load_shared(Settings.from_env())
        if not shared.synced:
            sync_notes(shared, "Indexing your notes (the first time embeds every section)…", first=True)
    except SETUP_ERRORS as err:
        st.error(str(err), icon=":material/error:")
        st.stop()
    return shared


# Rendering note text safely and readably.


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


def answer_markdown(text: str) -> str:
    """An answer redrawn as markdown that keeps its shape (paragraphs, lists, bold, italics, code) while every piece
    of text in it stays text: answers quote notes, and a note's `\\[x\\](javascript:…)` or `\\!\\[pixel\\](https://…)`
    is unescaped once quoted. Links, images and HTML show as they were written; nothing is followed or fetched.

    `"**S3** — ![p](https://x.io/p.png) [1]"` -> `"**S3** — \\!\\[p\\]\\(https\\://x.io/p.png\\) [1]"`
    """
    blocks: list[str] = []
    widths: list[int] = []  # content indent of each open list item, outermost first
    ordered: list[bool] = []  # per open list
    marker = ""  # the marker of a list item whose first block is not written yet
    first_item = False
    for tok in _COMMONMARK.parse(text):
        kind = tok.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            ordered.append(kind == "ordered_list_open")
            first_item = True
        elif kind in ("bullet_list_close", "ordered_list_close"):
            ordered.pop()
        elif kind == "list_item_open":
            marker = f"{int(tok.info or 1)}{tok.markup} " if ordered[-1] else "- "
            widths.append(len(marker))
        elif kind == "list_item_close":
            widths.pop()
            marker = ""  # an empty item writes nothing
        elif kind in ("inline", "fence", "code_block", "html_block"):
            if kind == "inline":
                body = _inline_markdown(tok.children or [])
            elif kind == "html_block":
                body = plain(" ".join(tok.content.split()))
            else:
                body = _fenced(tok)
            indent = " " * sum(widths)
            lines = body.split("\n")
            if marker:
                first = " " * sum(widths[:-1]) + marker + lines[0]
                # A list hangs under its lead-in line; the items of one list stay together (a tight list).
                separator = "\n\n" if first_item and len(widths) == 1 else "\n"
                marker, first_item = "", False
            else:
                first, separator = indent + lines[0], "\n\n"
            block = "\n".join([first, *(indent + line if line else line for line in lines[1:])])
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


# One answer: text, sources, and how it was found.


def lines_label(c: Citation) -> str:
    return f"lines {c.line_start}–{c.line_end}" if c.line_end != c.line_start else f"line {c.line_start}"


def note_link(settings: Settings, c: Citation) -> str:
    """A markdown link `path#anchor` to the section: on the forge when one is set, else in the app's note view.

    (A `file://` link to the note on disk would be refused by the browser from an http page.) Streamlit opens
    markdown links in a new tab, so the chat stays where it was.
    """
    fragment = f"#{url_quote(c.anchor)}" if c.anchor else ""
    if settings.forge_url:
        base = settings.forge_url if settings.forge_url.endswith("/") else settings.forge_url + "/"
        url = f"{base}{url_quote(c.path)}{fragment}"
    else:
        url = f"?{NOTE_PARAM}={url_quote(c.path)}{fragment}"
    return f"[{escape_md(c.key)}](<{url}>)"


def show_section(settings: Settings, c: Citation, label: str) -> None:
    """A source as an expander: where it is, and its text with the sentences the answer used highlighted."""
    title = f"{label} {c.path} — {' › '.join(c.heading_path)} · {lines_label(c)}"
    with st.expander(escape_md(title)):
        st.markdown(f"{note_link(settings, c)} · {escape_md(' > '.join(c.heading_path))} · {lines_label(c)}")
        if c.hidden:
            st.caption(
                ":material/visibility_off: Part of this section is commented out in your notes (inside `<!-- -->`);"
                " it is searchable and may be quoted, but you hid it."
            )
        text, missed = highlight(c.markdown, c.quotes)
        with st.container(border=True):
            st.markdown(escape_dollars(text, small_headings=True))
        if missed:
            st.caption("Sentences the answer used from this section:")
            st.markdown("\n".join(f"- {plain(q)}" for q in missed))


def show_search(answer: Answer) -> None:
    """The query actually searched (a follow-up is rewritten to stand alone) and what came back, with scores."""
    with st.expander("How I searched", icon=":material/manage_search:"):
        if answer.rewritten:
            st.markdown(f"Your follow-up was rewritten to stand alone: **{escape_md(answer.standalone)}**")
        else:
            st.markdown(f"Searched for: **{escape_md(answer.standalone)}**")
        rows = [
            {
                "section": hit.section.key,
                "fused": hit.score,
                "dense": hit.dense,
                "keyword": hit.keyword,
                "lines": f"{hit.section.line_start}–{hit.section.line_end}",
                "heading path": hit.section.breadcrumb,
            }
            for hit in answer.hits
        ]
        if rows:
            # Narrow columns: the chat is narrow, and the scores must show without scrolling sideways.
            score = st.column_config.NumberColumn(format="%.3f", width="small")
            columns = {"section": st.column_config.TextColumn(width="medium"), "fused": score, "dense": score}
            columns |= {"keyword": score, "lines": st.column_config.TextColumn(width="small")}
            st.dataframe(rows, hide_index=True, width="stretch", column_config=columns)
        else:
            st.caption("Nothing in the index matched.")
        st.caption(f"Answered by the {answer.answerer} answerer in {answer.seconds:.2f} s.")


def show_answer(settings: Settings, answer: Answer) -> None:
    """A finished answer, or the "not in your notes" reply: used both live and when the chat is replayed."""
    if answer.refused:
        st.info(answer_markdown(answer.text), icon=REFUSAL_AVATAR)
        if answer.related:
            st.caption("Related sections (they do not answer the question):")
            for c in answer.related:
                show_section(settings, c, "Related:")
    else:
        st.markdown(answer_markdown(answer.text))
        if answer.dropped:
            st.caption(f"{len(answer.dropped)} sentence(s) the notes did not support were left out.")
        st.caption("Sources")
        for c in answer.citations:
            show_section(settings, c, f"[{c.number}]")
    for notice in answer.notices:
        st.caption(f":material/info: {escape_md(notice)}")
    show_search(answer)


# The note view: `?note=path#anchor` shows one note, each heading an anchor a source link can jump to.


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


def show_note(app: App, path: str) -> None:
    """One note from the index, section by section; only a path the index knows is shown, never a file read."""
    sections = [s for s in app.index.sections if s.path == path]
    if not sections:
        st.error("No such note in your notes folder.", icon=":material/error:")
        st.markdown("[:material/arrow_back: Back to chat](./)")
        return
    st.title(escape_md(path))
    st.markdown("[:material/arrow_back: Back to chat](./)")
    for s in sections:
        if s.title:
            title = escape_md(s.title)
            if s.level <= 1:
                st.header(title, anchor=s.anchor or False)
            else:
                st.subheader(title, anchor=s.anchor or False)
        if s.hidden:
            st.caption(":material/visibility_off: Part of this section is commented out in your notes (`<!-- -->`).")
        body = section_body(s)
        if body.strip():
            st.markdown(escape_dollars(body, small_headings=True))


# The chat: history in session state, replayed every run.


def messages() -> list[dict]:
    """This session's chat: `{"role": "user", "content"}` and `{"role": "assistant", "answer": Answer}`."""
    return st.session_state.setdefault("messages", [])


def history_turns() -> list[dict]:
    """The chat as the assistant's history; an answer carries its cited keys so a follow-up knows its topic."""
    turns = []
    for m in messages():
        if "practice" in m:
            continue  # a practice run is no topic for a follow-up
        if m["role"] == "user":
            turns.append({"role": "user", "content": m["content"]})
        else:
            answer: Answer = m["answer"]
            turns.append({"role": "assistant", "content": answer.text, "cited": tuple(c.key for c in answer.citations)})
    return turns


def replay(settings: Settings) -> None:
    for m in messages():
        if m["role"] == "user":
            with st.chat_message("user", avatar=USER_AVATAR):
                st.markdown(escape_dollars(m["content"]))
        elif "practice" in m:
            with st.chat_message("assistant", avatar=PRACTICE_AVATAR):
                st.markdown(m["practice"])  # built by practice.chat, note text escaped there
        else:
            answer: Answer = m["answer"]
            with st.chat_message("assistant", avatar=REFUSAL_AVATAR if answer.refused else ANSWER_AVATAR):
                show_answer(settings, answer)


def stream_answer(pieces: Iterable[str]) -> None:
    """An answer drawn as its pieces arrive, each redraw as inert as the finished answer (~1 ms a parse)."""
    slot = st.empty()
    text = ""
    for piece in pieces:
        text += piece
        slot.markdown(answer_markdown(text))


def ask(shared: Shared, question: str, top_k: int) -> None:
    """Answer one question: stream the text, then redraw it with its sources once it is complete."""
    history = history_turns()
    with st.chat_message("user", avatar=USER_AVATAR):
        st.markdown(escape_dollars(question))
    # The app is shared across tabs: top-k is this session's choice, set under the lock for this question only.
    # `reading()` holds the index's own lock too, so a CLI run waits for the answer (and the answer for it), and
    # reopens the index when a CLI run re-indexed it since the last question.
    with shared.lock, shared.app.reading():
        app = shared.app
        app.assistant.top_k = top_k
        try:
            # The sidebar's answerer: the configured LLM unless the user picked the extractive one.
            stream = app.assistant.stream(question, history, use_llm=st.session_state.get("answerer") != EXTRACTIVE)
        except QuestionError as err:
            st.warning(str(err), icon=":material/edit_note:")
            return
        with st.chat_message("assistant", avatar=ANSWER_AVATAR):
            live = st.empty()
            with live.container():
                stream_answer(stream)
            answer = stream.answer
    messages().extend([{"role": "user", "content": question}, {"role": "assistant", "answer": answer}])
    if answer.refused:
        # A refusal looks different from an answer (its own avatar): redraw the turn from history.
        st.rerun()
    with live.container():
        show_answer(app.settings, answer)


# Export: the chat as a markdown file that keeps its citations.


def export_markdown(settings: Settings, chat: Sequence[dict]) -> str:
    lines = [
        "# Chat with my notes",
        "",
        f"Notes folder: `{settings.notes_dir}` · exported {datetime.now():%Y-%m-%d %H:%M}",
        "",
    ]
    for m in chat:
        if m["role"] == "user":
            lines += [f"## Q: {escape_md(' '.join(m['content'].split()))}", ""]  # one line, so it stays a heading
            continue
        if "practice" in m:
            lines += [m["practice"], ""]
            continue
        answer: Answer = m["answer"]
        if answer.rewritten:
            lines += [f"_Searched as: {escape_md(answer.standalone)}_", ""]
        lines += [answer_markdown(answer.text), ""]  # the file is markdown too: quoted notes stay text in it
        sources = answer.related if answer.refused else answer.citations
        if sources:
            lines.append("Related sections (not in the notes):" if answer.refused else "Sources:")
            lines += [
                f"- [{c.number}] `{c.key}` — {escape_md(' > '.join(c.heading_path))}, {lines_label(c)}" for c in sources
            ]
            lines.append("")
    return "\n".join(lines)


# The sidebar: notes, index, settings, chat actions.


def index_status(app: App) -> str:
    sections = app.index.sections
    files = len({s.path for s in sections})
    searchable = sum(1 for s in sections if s.indexable)
    manifest = app.index.manifest
    when = f"{datetime.fromtimestamp(manifest.indexed_at):%Y-%m-%d %H:%M}" if manifest else "never"
    return f"{files} file(s), {len(sections)} sections ({searchable} searchable) · last indexed {when}"


def new_chat() -> None:
    st.session_state["messages"] = []
    st.session_state.pop("chat_practice", None)


def sidebar(shared: Shared) -> tuple[int, DeltaGenerator]:
    """Draw the notes, index and settings part of the sidebar; returns the chosen top-k and a slot below it.

    The chat actions go in that slot at the end of the run: drawn now, the export would miss the answer
    this run is about to add.
    """
    app = shared.app
    with st.sidebar:
        st.header("Your notes")
        st.caption("Notes folder")
        st.code(str(app.settings.notes_dir), language=None)
        st.markdown(escape_md(index_status(app)))
        if app.report is not None:
            st.caption(f"Last sync: {app.report}")
        for warning in [*shared.notices, *app.warnings]:
            st.warning(warning, icon=":material/warning:")
        if st.button("Re-index notes", icon=":material/refresh:", help="Embed only the sections that changed"):
            try:
                st.session_state["reindexed"] = sync_notes(shared, "Re-indexing your notes…")
            except SETUP_ERRORS as err:
                st.error(str(err), icon=":material/error:")
            else:
                st.rerun()  # redraw the status above with the new numbers
        if done := st.session_state.pop("reindexed", None):
            st.success(f"Re-indexed: {done}", icon=":material/check:")
        st.divider()
        if app.assistant.llm is None:
            st.markdown(f"Answerer: **{EXTRACTIVE}**")
        else:
            st.radio("Answerer", [app.assistant.answerer, EXTRACTIVE], key="answerer")
        # The slider stops at 20 (past that sections add noise), unless NOTES_TOP_K asked for more.
        most = max(20, app.settings.top_k)
        top_k = st.slider("Sections to read (top-k)", 1, most, app.settings.top_k, key="top_k")
        st.divider()
        return top_k, st.container()


def last_answer_speed(chat: Sequence[dict]) -> str | None:
    """How fast the LLM wrote the last answer it wrote: `"Last LLM answer: 41 tokens/s, first token in 0.80 s"`."""
    for m in reversed(chat):
        generation = m.get("answer") and m["answer"].generation
        if generation:
            return (
                f"Last LLM answer: {generation.tokens_per_second:.0f} tokens/s, "
                f"first token in {generation.first_token:.2f} s"
            )
    return None


def chat_actions(slot: DeltaGenerator, settings: Settings) -> None:
    """New chat and export, for the chat as it stands at the end of this run."""
    chat = messages()
    with slot:
        if speed := last_answer_speed(chat):
            st.caption(speed)
        st.button("New chat", icon=":material/add_comment:", on_click=new_chat, disabled=not chat)
        st.download_button(
            "Export chat (.md)",
            data=export_markdown(settings, chat),
            file_name=f"notes-chat-{time.strftime('%Y%m%d-%H%M')}.md",
            mime="text/markdown",
            icon=":material/download:",
            disabled=not chat,
            on_click="ignore",  # downloading must not rerun the page
        )


def main() -> None:
    # An emoji icon: a material icon favicon is fetched from fonts.gstatic.com, and this app stays offline.
    st.set_page_config(page_title="Notes assistant", page_icon="📝")
    note = st.query_params.get(NOTE_PARAM)
    if note is not None:
        show_note(ready_app().app, note)
        return
    # Pages are files (STYLE.md 15): the chat below, practice in practice_page.py, which runs as its own script
    # and finds the shared app here rather than loading the model again.
    st.session_state["shared"] = ready_app()
    pages = [
        st.Page(chat_page, title="Chat", icon=":material/chat:", default=True),
        st.Page("practice_page.py", title="Practice", icon=":material/school:"),
    ]
    st.navigation(pages).run()


def chat_page() -> None:
    st.title("Ask your notes")
    shared = ready_app()
    top_k, actions = sidebar(shared)
    if not messages():
        st.caption(
            "Answers come only from your notes, with `[n]` citations to the exact sections. Try “What is Lambda?”."
        )
    replay(shared.app.settings)
    if (question := st.chat_input("Ask about your notes…")) and not practise(shared, question):
        ask(shared, question, top_k)
    chat_actions(actions, shared.app.settings)


def practise(shared: Shared, message: str) -> bool:
    """Practice in the chat (`practice.chat`): "Quiz me on VPC" starts a run; while it runs, every message but a
    question (ending in "?", answered as usual) is an answer, "skip", "show me the answer" or "stop".
    False when the message is for the assistant."""
    from practice.chat import practice_request, reply, start
    from practice.session import Practice

    run = st.session_state.get("chat_practice")
    with shared.lock:
        practice = Practice.of(shared.app)
        if run is not None and not message.rstrip().endswith("?"):
            run, said = reply(practice, run, message)
        else:
            with shared.app.reading() as app:
                request = practice_request(message, app.index.sections, app.embeddings)
            if request is None:
                return False
            practice.refresh()
            run, said = start(practice, request)
    st.session_state["chat_practice"] = run
    messages().extend([{"role": "user", "content": message, "practice": True}, {"role": "assistant", "practice": said}])
    st.rerun()
    return True


if __name__ == "__main__":
    main()
