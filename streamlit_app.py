"""Chat with your markdown notes: answers stream in with `[n]` citations to the exact note sections.

Run: `streamlit run streamlit_app.py` (settings come from NOTES_* variables, see assistant/settings.py).
This and the page modules (`practice_page.py`) are the only modules that import streamlit; everything they
show comes from `assistant.app`, `assistant.chats` (saved chats), `assistant.answering` (questions answered in
the background, one after another) and `assistant.indexing` (the notes indexed in the background).
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote as url_quote

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from assistant.answering import ChatWorker, Stopped, Workers
from assistant.app import App, build
from assistant.chain import EXTRACTIVE
from assistant.chats import ChatStore, Reply, Turn
from assistant.embedder import make_embeddings
from assistant.indexing import Indexer, MeteredEmbeddings
from assistant.llm import LLMConfigError
from assistant.questions import QuestionError, clean_question
from assistant.rendering import (
    answer_markdown,
    cite_links,
    escape_dollars,
    escape_md,
    highlight,
    note_markdown,
    plain,
    section_body,
)
from assistant.settings import Settings, SettingsError
from assistant.types import Answer, Citation
from corpus.reader import NotesError
from corpus.types import Section
from index.embeddings import ModelError
from index.store import IndexError_

ANSWER_AVATAR = ":material/menu_book:"
REFUSAL_AVATAR = ":material/search_off:"
USER_AVATAR = ":material/person:"
PRACTICE_AVATAR = ":material/school:"
NOTE_PARAM = "note"  # `?note=path&at=anchor` shows that note instead of the chat
AT_PARAM = "at"
CHAT_PARAM = "chat"  # `?chat=id`: the saved chat this tab shows, so a reload comes back to it
INPUT_KEY = "ask"
# Errors the user can fix (a wrong folder, a missing model package, a bad NOTES_LLM or NOTES_TOP_K): one line each,
# never a traceback. (An LLM that fails mid-answer is handled by the answerer: it falls back to the extractive answer.)
SETUP_ERRORS = (NotesError, ModelError, IndexError_, LLMConfigError, SettingsError)
# How often the page looks at an answer being written or an index being built (the issue asks for at least 1 s).
LIVE_EVERY = 0.5
INDEX_EVERY = 0.5


def sentence(text: str) -> str:
    """A message as the page shows it: starting with a capital letter. `"the question is empty"` -> `"The ..."`."""
    return text[:1].upper() + text[1:]


# Start-up: one model and one index per server, shared by every browser tab.


@dataclass
class Shared:
    """The app every session uses; the lock that keeps a question and a step of indexing apart; the background
    indexer; the saved chats and the workers that answer them."""

    app: App
    lock: threading.Lock = field(default_factory=threading.Lock)
    notices: list[str] = field(default_factory=list)
    indexer: Indexer | None = None
    store: ChatStore | None = None
    workers: Workers | None = None
    session_chats: dict[str, str] = field(default_factory=dict)  # browser session -> the chat it shows


@st.cache_resource(show_spinner="Loading the embedding model and opening the index…")
def load_shared(settings: Settings) -> Shared:
    notices: list[str] = []
    embeddings = MeteredEmbeddings(make_embeddings(settings))
    app = build(settings, embeddings=embeddings, say=notices.append, sync=False)
    # Loading the model takes seconds; pay it here, once, not on the first question.
    embeddings.embed_query("warm up")
    shared = Shared(app, notices=notices)
    shared.indexer = Indexer(app, shared.lock, embeddings)
    shared.store = ChatStore.beside(settings.resolved_index_dir)
    shared.workers = Workers(shared.store, lambda question, history, worker: respond(shared, question, history, worker))
    if app.needs_index or app.notes_changed:
        # In the background: the chat is usable at once and answers from what is indexed so far.
        shared.indexer.start()
    return shared


def ready_app() -> Shared:
    """The shared app; stops the page with a one-line error when the notes or model are unusable."""
    try:
        return load_shared(Settings.from_env())
    except SETUP_ERRORS as err:
        st.error(sentence(str(err)), icon=":material/error:")
        st.stop()
        raise  # not reached: st.stop ends the run


def history_of(turns: Sequence[Turn]) -> list[dict]:
    """Answered turns as the assistant's history; an answer carries its cited keys so a follow-up knows its topic."""
    out: list[dict] = []
    for turn in turns:
        answer = turn.reply.answer if turn.reply else None
        if answer is None:
            continue  # practice runs and stopped answers are no topic for a follow-up
        out.append({"role": "user", "content": turn.question})
        out.append({"role": "assistant", "content": answer.text, "cited": tuple(c.key for c in answer.citations)})
    return out


def respond(shared: Shared, question: str, history: Sequence[Turn], worker: ChatWorker) -> Reply:
    """Answer one message in a worker thread: under the lock (Stop is heard while waiting for it), a practice
    reply when it is one, else an answer from the index as it is, saying so while the notes are still indexed."""
    options = worker.options
    if not shared.lock.acquire(blocking=False):  # a step of indexing or another chat's answer holds it
        worker.queued(True)
        while not shared.lock.acquire(timeout=0.1):
            if worker.stopping:
                raise Stopped
        worker.queued(False)
    try:
        # Read with the lock held: no step of indexing runs now, so this is what the index holds.
        progress = shared.indexer.progress if shared.indexer else None
        said = practise(shared, worker, question)
        if said is not None:
            return Reply(practice=said)
        with shared.app.reading() as app:
            # The app is shared across tabs: top-k is this chat's choice, set under the lock for this question only.
            app.assistant.top_k = options.get("top_k", app.settings.top_k)
            stream = app.assistant.stream(question, history_of(history), use_llm=options.get("use_llm", True))
            # A refusal known up front is not streamed: the page draws it once, as the info box it is, instead
            # of as an answer that turns into one when it is finished.
            for piece in stream:
                if not stream.refused:
                    worker.piece(piece)
            answer = stream.answer
    finally:
        shared.lock.release()
    if progress is not None and progress.running and progress.files:
        notice = f"Answered while indexing: {progress.so_far()}; what is not indexed yet may say more."
        answer = dataclasses.replace(answer, notices=(*answer.notices, notice))
    return Reply(answer=answer)


# One answer: text, sources, and how it was found.


def lines_label(c: Citation) -> str:
    return f"lines {c.line_start}–{c.line_end}" if c.line_end != c.line_start else f"line {c.line_start}"


def open_note(path: str, anchor: str = "") -> None:
    """Show a note in this tab (a button's callback): the chat id stays in the URL for the way back."""
    st.query_params[NOTE_PARAM] = path
    if anchor:
        st.query_params[AT_PARAM] = anchor
    else:
        st.query_params.pop(AT_PARAM, None)


def back_to_chat() -> None:
    st.query_params.pop(NOTE_PARAM, None)
    st.query_params.pop(AT_PARAM, None)


def note_link(settings: Settings, c: Citation) -> str | None:
    """A markdown link `path#anchor` to the section on the forge, when one is set (it opens in a new tab); None
    when the note is shown in the app's own note view, which opens in this tab from a button."""
    if not settings.forge_url:
        return None
    fragment = f"#{url_quote(c.anchor)}" if c.anchor else ""
    base = settings.forge_url if settings.forge_url.endswith("/") else settings.forge_url + "/"
    return f"[{escape_md(c.key)}](<{base}{url_quote(c.path)}{fragment}>)"


def show_section(settings: Settings, c: Citation, label: str, key: str) -> None:
    """A source as an expander: where it is, and its text with the sentences the answer used highlighted."""
    title = f"{label} {c.path} — {' › '.join(c.heading_path)} · {lines_label(c)}"
    st.html(f'<span id="{key}"></span>')  # where the answer's `[n]` link lands
    with st.expander(escape_md(title)):
        where = f"{escape_md(' > '.join(c.heading_path))} · {lines_label(c)}"
        if link := note_link(settings, c):
            st.markdown(f"{link} · {where}")
        else:
            st.markdown(f"{code_span(c.key)} · {where}")
            st.button(
                "Open in the note view",
                icon=":material/article:",
                key=f"open-{key}",
                on_click=open_note,
                args=(c.path, c.anchor),
            )
        if c.hidden:
            st.caption(
                ":material/visibility_off: Part of this section is commented out in your notes (inside `<!-- -->`);"
                " it is searchable and may be quoted, but you hid it."
            )
        shown_text, _ = note_markdown(c.markdown, c.path)
        text, missed = highlight(shown_text, c.quotes)
        with st.container(border=True):
            st.markdown(escape_dollars(text, small_headings=True))
        if missed:
            st.caption("Sentences the answer used from this section:")
            st.markdown("\n".join(f"- {plain(q)}" for q in missed))


def code_span(text: str) -> str:
    """Text as inline code, shown exactly (no escapes inside code): `"a#b"` -> "`a#b`", "x`y" -> "``x`y``"."""
    text = " ".join(text.split())
    ticks = "`" * (max(map(len, re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text[:1] == "`" or text[-1:] == "`" else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def search_rows(answer: Answer) -> list[str]:
    """What the search found, one short markdown block per section: readable at any width (a 390 px phone too),
    where a six-column table was cut off.

    -> `"**1.** `aws.md#lambda`  \\nAWS \\> Compute \\> Lambda · lines 3–9  \\n"`
       `"fused 0.032 · dense 0.614 · keyword 0.500"`
    """
    rows = []
    for n, hit in enumerate(answer.hits, start=1):
        s = hit.section
        lines = f"lines {s.line_start}–{s.line_end}" if s.line_end != s.line_start else f"line {s.line_start}"
        rows.append(
            f"**{n}.** {code_span(s.key)}  \n{escape_md(s.breadcrumb)} · {lines}  \n"
            f"fused {hit.score:.3f} · dense {hit.dense:.3f} · keyword {hit.keyword:.3f}"
        )
    return rows


def show_search(answer: Answer) -> None:
    """The query actually searched (a follow-up is rewritten to stand alone) and what came back, with scores."""
    with st.expander("How I searched", icon=":material/manage_search:"):
        if answer.rewritten:
            st.markdown(f"Your follow-up was rewritten to stand alone: **{escape_md(answer.standalone)}**")
        else:
            st.markdown(f"Searched for: **{escape_md(answer.standalone)}**")
        rows = search_rows(answer)
        if rows:
            st.markdown("\n\n".join(rows))
        else:
            st.caption("Nothing in the index matched.")
        st.caption(f"Answered by the {answer.answerer} answerer in {answer.seconds:.2f} s.")


def show_answer(settings: Settings, answer: Answer, key: str) -> None:
    """A finished answer, or the "not in your notes" reply: used both live and when the chat is replayed.

    `key` names this answer on the page: its sources' anchors (`[n]` links to them) and buttons.
    """
    if answer.refused:
        st.info(answer_markdown(answer.text), icon=REFUSAL_AVATAR)
        if answer.related:
            st.caption("Related reading (not used in the answer):")
            for c in answer.related:
                show_section(settings, c, "Related:", f"{key}-r{c.number}")
    else:
        anchors = {c.number: f"{key}-{c.number}" for c in answer.citations}
        st.markdown(cite_links(answer_markdown(answer.text), anchors))
        if answer.dropped:
            st.caption(f"{len(answer.dropped)} sentence(s) the notes did not support were left out.")
        st.caption("Sources")
        for c in answer.citations:
            show_section(settings, c, f"[{c.number}]", anchors[c.number])
    for notice in answer.notices:
        st.caption(f":material/info: {escape_md(sentence(notice))}")
    show_search(answer)


# The note view: `?note=path&at=anchor` shows one note, each heading an anchor; links to other notes open them
# here, in the same tab, and "Back to chat" returns to the chat the tab showed.


def scroll_to(anchor: str) -> None:
    """Scroll the page to a heading once it is drawn (a button cannot put `#anchor` in the URL)."""
    target = re.sub(r"[^\w-]", "", anchor)
    if target:
        st.html(
            "<script>(() => { let n = 0; const go = () => { const el = document.getElementById("
            f"'{target}'); if (el) el.scrollIntoView(); else if (n++ < 50) setTimeout(go, 100); }}; go(); }})();"
            "</script>",
            unsafe_allow_javascript=True,
        )


def show_note(app: App, path: str, anchor: str = "") -> None:
    """One note from the index, section by section; only a path the index knows is shown, never a file read."""
    st.button("Back to chat", icon=":material/arrow_back:", on_click=back_to_chat, key="back")
    sections = [s for s in app.index.sections if s.path == path]
    if not sections:
        st.error("No such note in your notes folder.", icon=":material/error:")
        return
    st.title(escape_md(path))
    known = {s.path for s in app.index.sections}
    for i, s in enumerate(sections):
        if s.title:
            title = escape_md(s.title)
            if s.level <= 1:
                st.header(title, anchor=s.anchor or False)
            else:
                st.subheader(title, anchor=s.anchor or False)
        if s.hidden:
            st.caption(":material/visibility_off: Part of this section is commented out in your notes (`<!-- -->`).")
        body, links = note_markdown(section_body(s), s.path)
        if body.strip():
            st.markdown(escape_dollars(body))
        for j, link in enumerate(links):
            where = link.path + (f" › {link.anchor}" if link.anchor else "")
            if link.path in known:
                st.button(
                    f"{link.text} → {where}",
                    icon=":material/link:",
                    key=f"link-{i}-{j}",
                    on_click=open_note,
                    args=(link.path, link.anchor),
                )
            else:
                st.caption(f":material/link_off: {escape_md(link.text)} → {escape_md(where)} (not in your notes)")
    if anchor:
        scroll_to(anchor)


# Saved chats: the current one is `?chat=id`; the store keeps every question and reply.


def session_id() -> str:
    """This browser tab's id, made in its first run (which nothing cuts short: no message can be sent before the
    page is drawn), so it is there in every later one."""
    return st.session_state.setdefault("tab", uuid.uuid4().hex)


def chat_of(shared: Shared) -> str | None:
    """The chat this tab shows, read without writing anything (see `current_chat`)."""
    chat_id = st.query_params.get(CHAT_PARAM) or shared.session_chats.get(session_id())
    return chat_id if chat_id and shared.store.exists(chat_id) else None


def current_chat(shared: Shared) -> str | None:
    """The chat this tab shows: `?chat=id`, or the one this session last sent to when the URL does not say yet.

    The latter is kept server-side (`Shared.session_chats`), not in session state: a message sent 0.2 s after
    another cuts the first one's run short, and Streamlit then dropped what that run had put in session state,
    so the second question went to a chat of its own (seen in the browser test).
    """
    chat_id = st.query_params.get(CHAT_PARAM) or shared.session_chats.get(session_id())
    if chat_id and shared.store.exists(chat_id):
        if st.query_params.get(CHAT_PARAM) != chat_id:
            st.query_params[CHAT_PARAM] = chat_id
        return chat_id
    shared.session_chats.pop(session_id(), None)
    if st.query_params.get(CHAT_PARAM):
        st.query_params.pop(CHAT_PARAM, None)  # deleted (in another tab) or mistyped: a new chat
    return None


def show_chat(chat_id: str | None) -> None:
    """Make `chat_id` this tab's chat: server-side first (see `current_chat`), then in the URL."""
    shared = ready_app()
    if chat_id is None:
        shared.session_chats.pop(session_id(), None)
        st.query_params.pop(CHAT_PARAM, None)
    else:
        shared.session_chats[session_id()] = chat_id
        st.query_params[CHAT_PARAM] = chat_id


def as_messages(turns: Sequence[Turn]) -> list[dict]:
    """Turns as `{"role": "user", "content"}` and `{"role": "assistant", "answer" | "practice"}` messages, for
    the export. A question still waiting has no reply yet; a stopped answer is its text so far."""
    out: list[dict] = []
    for turn in turns:
        reply = turn.reply
        out.append(
            {"role": "user", "content": turn.question, **({"practice": True} if reply and reply.practice else {})}
        )
        if reply is None:
            continue
        if reply.answer is not None:
            out.append({"role": "assistant", "answer": reply.answer})
        elif reply.practice:
            out.append({"role": "assistant", "practice": reply.practice})
        elif reply.error:
            out.append({"role": "assistant", "practice": plain(sentence(reply.error))})
        else:
            out.append({"role": "assistant", "practice": plain(f"(Stopped) {reply.stopped or ''}")})
    return out


def show_reply(settings: Settings, turn: Turn) -> None:
    reply = turn.reply
    if reply.answer is not None:
        answer = reply.answer
        with st.chat_message("assistant", avatar=REFUSAL_AVATAR if answer.refused else ANSWER_AVATAR):
            show_answer(settings, answer, f"t{turn.id}")
    elif reply.practice:
        with st.chat_message("assistant", avatar=PRACTICE_AVATAR):
            st.markdown(reply.practice)  # built by practice.chat, note text escaped there
    elif reply.error:
        with st.chat_message("assistant", avatar=ANSWER_AVATAR):
            st.error(escape_md(sentence(" ".join(reply.error.split()))), icon=":material/error:")
    else:
        with st.chat_message("assistant", avatar=ANSWER_AVATAR):
            if reply.stopped:
                st.markdown(answer_markdown(reply.stopped))
            st.caption(":material/stop_circle: Stopped.")


def show_question(turn: Turn) -> None:
    with st.chat_message("user", avatar=USER_AVATAR):
        st.markdown(escape_dollars(plain(turn.question)))


@st.fragment(run_every=LIVE_EVERY)
def pending(shared: Shared, chat_id: str, waiting: tuple[int, ...]) -> None:
    """The questions still waiting for a reply, the first one's answer as it is written; redrawn every
    `LIVE_EVERY` seconds, and the whole page once they are answered."""
    worker = shared.workers.of(chat_id)
    turns = {t.id: t for t in shared.store.turns(chat_id)}
    if any(turns.get(i) is None or turns[i].reply is not None for i in waiting) or not worker.busy:
        st.rerun(scope="app")
    live = worker.live
    for i in waiting:
        turn = turns[i]
        show_question(turn)
        with st.chat_message("assistant", avatar=ANSWER_AVATAR):
            if live is not None and live.turn == i:
                if live.text:
                    st.markdown(answer_markdown(live.text))
                if live.queued:
                    st.caption(
                        ":material/hourglass_top: Waiting for the index: a step of indexing, or another chat's"
                        " answer, is using it."
                    )
                else:
                    st.caption(":material/edit_note: Writing the answer…")
                st.button("Stop", icon=":material/stop_circle:", key="stop", on_click=worker.stop)
            else:
                st.caption(":material/schedule: Waiting: answered after the question above.")


def answer_options(shared: Shared) -> dict:
    """The sidebar's answerer (the configured LLM unless the user picked the extractive one) and top-k."""
    return {
        "top_k": st.session_state.get("top_k", shared.app.settings.top_k),
        "use_llm": st.session_state.get("answerer") != EXTRACTIVE,
    }


def send(shared: Shared, chat_id: str | None, question: str) -> str:
    """Save a question and have it answered in the background; returns the chat it went to.

    Everything is saved before the first Streamlit call: a message sent right after this one cuts this run short
    at such a call, and the question must not be lost with it.
    """
    store = shared.store
    new = chat_id is None
    if new:
        chat_id = store.create(question)
    store.ask(chat_id, question)
    worker = shared.workers.of(chat_id)
    worker.options = answer_options(shared)
    worker.kick()
    shared.session_chats[session_id()] = chat_id
    if new:
        show_chat(chat_id)
    return chat_id


def submitted(shared: Shared, chat_id: str | None, message: str) -> bool:
    """A message from the box: checked first (a rejected one goes back into the box, with why: False), then a
    practice reply or a question."""
    try:
        clean_question(message)
    except QuestionError as err:
        st.session_state["rejected"] = sentence(str(err))
        st.session_state["refill"] = message
        return False
    editing = st.session_state.pop("editing", None)
    if editing is not None and chat_id is not None:
        shared.store.forget(editing)  # the edited question replaces the last one and its answer
    send(shared, chat_id, message)  # a practice reply or an answer: the chat's worker tells them apart
    return True


def example_questions(sections: Sequence[Section], count: int = 3) -> list[str]:
    """Questions to start with, from the headings of the notes loaded: the content sections with the most to say.

    Sections titled "Lambda" (900 chars), "S3" (500), "Intro" (40) -> `["Tell me about Lambda", "Tell me about S3"]`
    for count 2; a heading that asks a question ("What is kubernetes ?") is asked as it is ("What is kubernetes?");
    one longer than five words, or already asked by a longer section, is skipped.
    """
    seen: set[str] = set()
    ranked = sorted((s for s in sections if s.indexable and s.title), key=lambda s: -len(s.text))
    out = []
    for s in ranked:
        title = " ".join(s.title.strip(" :#").split())
        if not title or len(title.split()) > 5 or title.lower() in seen:
            continue
        seen.add(title.lower())
        out.append(sentence(re.sub(r"\s+\?$", "?", title)) if title.endswith("?") else f"Tell me about {title}")
        if len(out) == count:
            break
    return out


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
            lines.append("Related reading (not used in the answer):" if answer.refused else "Sources:")
            lines += [
                f"- [{c.number}] `{c.key}` — {escape_md(' > '.join(c.heading_path))}, {lines_label(c)}" for c in sources
            ]
            lines.append("")
    return "\n".join(lines)


# The sidebar: notes, index, settings, chats.


def index_status(app: App) -> str:
    sections = app.index.sections
    files = len({s.path for s in sections})
    searchable = sum(1 for s in sections if s.indexable)
    manifest = app.index.manifest
    when = f"{datetime.fromtimestamp(manifest.indexed_at):%Y-%m-%d %H:%M}" if manifest else "never"
    return f"{files} file(s), {len(sections)} sections ({searchable} searchable) · last indexed {when}"


@st.fragment(run_every=INDEX_EVERY)
def indexing_progress(shared: Shared) -> None:
    """The background index's progress, read every `INDEX_EVERY` s; the whole page redraws once it is over."""
    progress = shared.indexer.progress
    if not progress.running:
        st.session_state["index_seen"] = progress.state
        st.rerun(scope="app")
    share = progress.texts_done / progress.texts if progress.texts else 0.0
    # The seconds tick at every redraw: between two counts (a step's write to the index took up to 1.8 s on this
    # loaded 2-core machine) the line still shows the work is going on.
    elapsed = time.monotonic() - progress.started
    st.progress(share, text=escape_md(f"{progress.line()} · {elapsed:.0f} s"))
    st.caption("You can ask already: answers come from the notes indexed so far.")


def index_panel(shared: Shared) -> None:
    app = shared.app
    indexer = shared.indexer
    st.markdown(escape_md(index_status(app)))
    progress = indexer.progress
    if progress.running:
        indexing_progress(shared)
    elif progress.state == "failed":
        st.error(escape_md(sentence(progress.line())), icon=":material/error:")
        st.caption("Answers still come from the index as it was last built (the counts above).")
    elif progress.state == "done" and progress.report:
        st.caption(escape_md(f"Last sync: {progress.report}"))
    if st.button(
        "Re-index notes",
        icon=":material/refresh:",
        help="Embed only the sections that changed",
        disabled=progress.running,
    ):
        indexer.start()
        st.rerun()


def rename_chat(store: ChatStore, chat_id: str) -> None:
    store.rename(chat_id, st.session_state.get(f"title-{chat_id}", ""))


def delete_chat(store: ChatStore, chat_id: str) -> None:
    store.delete(chat_id)
    show_chat(None)


def pick_chat(chat_id: str | None) -> None:
    st.session_state.pop("editing", None)
    show_chat(chat_id)


def chats_panel(shared: Shared, chat_id: str | None) -> None:
    """The saved chats, newest first: pick one, start a new one, rename or delete the one shown."""
    store = shared.store
    st.subheader("Chats")
    st.button("New chat", icon=":material/add_comment:", on_click=pick_chat, args=(None,), disabled=chat_id is None)
    for chat in store.chats():
        current = chat.id == chat_id
        st.button(
            escape_md(chat.title),
            key=f"chat-{chat.id}",
            icon=":material/chat_bubble:" if current else ":material/chat_bubble_outline:",
            type="primary" if current else "tertiary",
            on_click=pick_chat,
            args=(chat.id,),
            width="stretch",
        )
    if chat_id is not None:
        with st.popover("Rename or delete this chat", icon=":material/edit:"):
            st.text_input("Title", value=store.title(chat_id) or "", key=f"title-{chat_id}")
            st.button("Rename", key="rename", on_click=rename_chat, args=(store, chat_id))
            st.button(
                "Delete chat", key="delete", icon=":material/delete:", on_click=delete_chat, args=(store, chat_id)
            )


def sidebar(shared: Shared, chat_id: str | None) -> DeltaGenerator:
    """Draw the notes, index and settings part of the sidebar; returns a slot below it for the chat's actions
    (drawn at the end of the run, so the export holds what this run showed)."""
    app = shared.app
    with st.sidebar:
        st.header("Your notes")
        st.caption("Notes folder")
        st.code(str(app.settings.notes_dir), language=None)
        index_panel(shared)
        for warning in [*shared.notices, *app.warnings]:
            st.warning(escape_md(sentence(warning)), icon=":material/warning:")
        st.divider()
        if app.assistant.llm is None:
            st.markdown(f"Answerer: **{EXTRACTIVE}**")
        else:
            st.radio("Answerer", [app.assistant.answerer, EXTRACTIVE], key="answerer")
        # The slider stops at 20 (past that sections add noise), unless NOTES_TOP_K asked for more.
        most = max(20, app.settings.top_k)
        st.slider("Sections to read (top-k)", 1, most, app.settings.top_k, key="top_k")
        st.divider()
        actions = st.container()
        chats_panel(shared, chat_id)
        return actions


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


def chat_actions(slot: DeltaGenerator, settings: Settings, turns: Sequence[Turn]) -> None:
    """The export, for the chat as it stands at the end of this run."""
    chat = as_messages(turns)
    with slot:
        if speed := last_answer_speed(chat):
            st.caption(speed)
        st.download_button(
            "Export chat (.md)",
            data=export_markdown(settings, chat),
            file_name=f"notes-chat-{time.strftime('%Y%m%d-%H%M')}.md",
            mime="text/markdown",
            icon=":material/download:",
            disabled=not chat,
            on_click="ignore",  # downloading must not rerun the page
        )


def regenerate(shared: Shared, chat_id: str, turn_id: int) -> None:
    shared.store.clear_reply(turn_id)
    worker = shared.workers.of(chat_id)
    worker.options = answer_options(shared)
    worker.kick()


def edit_last(turn: Turn) -> None:
    st.session_state["editing"] = turn.id
    st.session_state["refill"] = turn.question


def last_turn_actions(shared: Shared, chat_id: str, turn: Turn) -> None:
    """Under the last answer: regenerate it, edit the question and send it again, copy the answer."""
    cols = st.columns([1, 1, 1, 2])
    cols[0].button(
        "Regenerate", icon=":material/refresh:", key="regenerate", on_click=regenerate, args=(shared, chat_id, turn.id)
    )
    cols[1].button("Edit question", icon=":material/edit:", key="edit", on_click=edit_last, args=(turn,))
    text = turn.reply.answer.text if turn.reply and turn.reply.answer else (turn.reply.stopped or "")
    if text:
        with cols[2].popover("Copy answer", icon=":material/content_copy:"):
            st.caption("The copy button is at the top right of the box.")
            st.code(text, language=None, wrap_lines=True)


def main() -> None:
    # An emoji icon: a material icon favicon is fetched from fonts.gstatic.com, and this app stays offline.
    st.set_page_config(page_title="Notes assistant", page_icon="📝")
    note = st.query_params.get(NOTE_PARAM)
    if note is not None:
        show_note(ready_app().app, note, st.query_params.get(AT_PARAM, ""))
        return
    # Pages are files (STYLE.md 15): the chat below, practice in practice_page.py, which runs as its own script
    # and finds the shared app here rather than loading the model again.
    st.session_state["shared"] = ready_app()
    pages = [
        st.Page(chat_page, title="Chat", icon=":material/chat:", default=True),
        st.Page("practice_page.py", title="Practice", icon=":material/school:"),
    ]
    st.navigation(pages).run()


def on_message(message: str | None = None) -> None:
    """A message sent (from the box, or an example clicked). A callback, so it runs first thing in the run the
    message starts, and saves it before anything else: the next message sent can cut that run short at its first
    Streamlit call, and must not take this one with it."""
    message = message if message is not None else st.session_state.get(INPUT_KEY)
    if not message:
        return
    st.session_state.pop("rejected", None)
    # No Streamlit call before the message is saved: each is a point where the next message sent can cut this
    # callback short (seen in the browser test: a question lost while the app looked up its cached resources).
    shared = st.session_state.get("shared") or ready_app()
    submitted(shared, chat_of(shared), message)


def chat_page() -> None:
    shared = ready_app()
    store = shared.store
    chat_id = current_chat(shared)
    if (refill := st.session_state.pop("refill", None)) is not None:
        st.session_state[INPUT_KEY] = refill  # a rejected or edited message goes back into the box
    # "disable": after a message is sent the box waits for the run that saves it (a fraction of a second; answers
    # are written in the background, and the box is free while they are). Streamlit keeps one pending message per
    # box: a second one sent before the run carrying the first began would replace it, which a loaded 2-core
    # machine made likely for two questions sent 0.3 s apart.
    st.chat_input("Ask about your notes…", key=INPUT_KEY, on_submit=on_message, submit_mode="disable")
    actions = sidebar(shared, chat_id)
    st.title("Ask your notes")
    turns = store.turns(chat_id) if chat_id else []
    if not turns:
        st.caption("Answers come only from your notes, with `[n]` citations to the exact sections. Try:")
        for n, example in enumerate(example_questions(shared.app.index.sections)):
            st.button(
                escape_md(example), key=f"example-{n}", icon=":material/help:", on_click=on_message, args=(example,)
            )
    waiting = tuple(t.id for t in turns if t.reply is None)
    for turn in turns:
        if turn.id in waiting:
            break  # these are drawn, and redrawn as they are answered, by `pending`
        show_question(turn)
        show_reply(shared.app.settings, turn)
    if waiting:
        pending(shared, chat_id, waiting)
    elif turns:
        last_turn_actions(shared, chat_id, turns[-1])
    if st.session_state.get("editing") is not None:
        st.info("Editing your last question: change it below and send it to replace the question and its answer.")
        if st.button("Cancel editing", key="cancel-edit"):
            st.session_state.pop("editing", None)
            st.session_state["refill"] = ""
            st.rerun()
    if rejected := st.session_state.get("rejected"):
        st.warning(f"Your message was not sent: {escape_md(rejected)}. It is back in the box below to fix.")
    chat_actions(actions, shared.app.settings, turns)


def practise(shared: Shared, worker: ChatWorker, message: str) -> str | None:
    """Practice in the chat (`practice.chat`), in the chat's worker with the lock held: "Quiz me on VPC" starts a
    run (kept with the chat); while it runs, every message but a question (ending in "?", answered as usual) is an
    answer, "skip", "show me the answer" or "stop". The reply, or None when the message is for the assistant."""
    from practice.chat import practice_request, reply, start
    from practice.session import Practice

    run = worker.practice
    practice = Practice.of(shared.app)
    if run is not None and not message.rstrip().endswith("?"):
        run, said = reply(practice, run, message)
    else:
        with shared.app.reading() as app:
            request = practice_request(message, app.index.sections, app.embeddings)
        if request is None:
            return None
        practice.refresh()
        run, said = start(practice, request)
    worker.practice = run
    return said


if __name__ == "__main__":
    main()
