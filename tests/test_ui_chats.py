"""Saved chats, questions answered in the background one after another, Stop, and the notes indexed in steps:
the plumbing under the chat page, with fakes you can follow by hand (no Streamlit run, no model)."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest

from assistant.answering import ChatWorker, Stopped, Workers
from assistant.app import build
from assistant.chats import ChatStore, Reply, reply_from_json, reply_to_json, title_of
from assistant.indexing import Indexer, MeteredEmbeddings
from assistant.settings import Settings
from assistant.types import Answer, Citation
from tests.conftest import LetterEmbeddings

# Saved chats


def test_title_is_the_first_question_on_one_line():
    assert title_of("What is\n  Lambda?") == "What is Lambda?"
    long = title_of("word " * 40)
    assert len(long) == 60
    assert long.endswith("…")


def test_chats_are_listed_newest_first_renamed_and_deleted(tmp_path):
    store = ChatStore.beside(tmp_path)
    first = store.create("What is SQS?")
    second = store.create("What is SNS?")
    assert [c.title for c in store.chats()] == ["What is SNS?", "What is SQS?"]
    store.ask(first, "What is SQS?")  # the chat used last comes first
    assert [c.id for c in store.chats()] == [first, second]
    store.rename(second, "  Messaging  ")
    assert store.title(second) == "Messaging"
    store.rename(second, "   ")  # an empty title keeps the old one
    assert store.title(second) == "Messaging"
    store.delete(first)
    assert [c.id for c in store.chats()] == [second]
    assert store.turns(first) == []


def test_chat_file_is_private_from_the_start(tmp_path):
    store = ChatStore.beside(tmp_path / "index")
    store.ask(store.create("q"), "q")
    for path in [store.path, *store.path.parent.glob(store.path.name + "-*")]:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def answer(text: str = "Lambda runs code. [1]", refused: bool = False) -> Answer:
    citation = Citation(
        1,
        "aws.md#lambda",
        "aws.md",
        "lambda",
        ("AWS", "Lambda"),
        3,
        5,
        False,
        ("Lambda runs code.",),
        "## Lambda\nLambda runs code.",
    )
    return Answer("What is Lambda?", "What is Lambda?", text, (citation,), refused, (), "extractive")


def test_a_reply_survives_the_round_trip_through_json():
    for reply in (Reply(answer=answer()), Reply(practice="**Q1**"), Reply(stopped="Lambda ru"), Reply(error="x")):
        assert reply_from_json(reply_to_json(reply)) == reply


def test_questions_keep_their_order_and_replies(tmp_path):
    store = ChatStore.beside(tmp_path)
    chat = store.create("a")
    one, two = store.ask(chat, "a"), store.ask(chat, "b")
    store.answer(two, Reply(practice="second"))
    assert [(t.question, t.reply) for t in store.turns(chat)] == [("a", None), ("b", Reply(practice="second"))]
    store.clear_reply(two)
    store.forget(one)
    assert [(t.question, t.reply) for t in store.turns(chat)] == [("b", None)]


# Answering in the background


def echo(question, history, worker):
    """A responder that writes the question back word by word and says how many answered turns came before."""
    for word in question.split():
        worker.piece(word + " ")
    return Reply(practice=f"{question} after {len(history)}")


def test_questions_sent_back_to_back_are_all_answered_in_order(tmp_path):
    store = ChatStore.beside(tmp_path)
    chat = store.create("one")
    worker = Workers(store, echo).of(chat)
    for question in ("one", "two", "three"):
        store.ask(chat, question)
        worker.kick()
    worker.join(10)
    while worker.busy:
        worker.join(1)
    assert [t.reply.practice for t in store.turns(chat)] == ["one after 0", "two after 1", "three after 2"]


def test_stop_ends_the_answer_being_written_and_keeps_its_text(tmp_path):
    store = ChatStore.beside(tmp_path)
    chat = store.create("q")
    started, release = threading.Event(), threading.Event()

    def slow(question, history, worker):
        worker.piece("Lambda ")
        started.set()
        release.wait(10)
        worker.piece("runs")  # raises Stopped: the user pressed Stop
        return Reply(practice="never")

    worker = ChatWorker(store, chat, slow)
    store.ask(chat, "What is Lambda?")
    worker.kick()
    assert started.wait(10)
    assert worker.live.text == "Lambda "
    worker.stop()
    release.set()
    worker.join(10)
    [turn] = store.turns(chat)
    assert turn.reply == Reply(stopped="Lambda ")
    assert worker.live is None
    assert not worker.busy


def test_a_failing_answer_is_a_reply_and_the_next_question_still_gets_answered(tmp_path):
    store = ChatStore.beside(tmp_path)
    chat = store.create("q")

    def flaky(question, history, worker):
        if question == "bad":
            raise RuntimeError("the model went away")
        return echo(question, history, worker)

    worker = ChatWorker(store, chat, flaky)
    store.ask(chat, "bad")
    store.ask(chat, "good")
    worker.kick()
    worker.join(10)
    replies = [t.reply for t in store.turns(chat)]
    assert replies[0] == Reply(error="could not answer: the model went away")
    assert replies[1].practice == "good after 1"  # answered all the same (the page drops failed turns from history)


def test_a_refusal_written_as_a_last_piece_leaves_the_page_before_it_is_saved(tmp_path):
    """An LLM's "not in the notes" arrives as one piece at its end; the page must not show it as an answer being
    written while the reply is saved (it redraws as an info box once saved)."""
    shown_while_saving = []

    class Watching(ChatStore):
        def answer(self, turn_id, reply):
            shown_while_saving.append(worker.live)
            super().answer(turn_id, reply)

    def refusing(question, history, worker):
        worker.piece("Your notes don't cover that.")
        return Reply(answer=answer("Your notes don't cover that.", refused=True))

    store = Watching(tmp_path / "chats.sqlite3")
    chat = store.create("q")
    worker = ChatWorker(store, chat, refusing)
    store.ask(chat, "What is Glue?")
    worker.kick()
    worker.join(10)
    [live] = shown_while_saving
    assert live.text == ""
    assert store.turns(chat)[0].reply.answer.refused


def test_stopped_is_raised_by_piece_only_after_stop(tmp_path):
    worker = ChatWorker(ChatStore.beside(tmp_path), "c", echo)
    worker.piece("x")
    worker.stop()
    with pytest.raises(Stopped):
        worker.piece("y")


# Indexing in steps


def write_notes(folder: Path, files: int) -> Path:
    folder.mkdir()
    for n in range(files):
        (folder / f"n{n}.md").write_text(
            f"# Note {n}\n\n## Topic {n}\nThe topic number {n} has facts about service {n}.\n", encoding="utf-8"
        )
    return folder


def letters_app(tmp_path, files: int):
    notes = write_notes(tmp_path / "notes", files)
    settings = Settings(notes_dir=notes, index_dir=tmp_path / "index")
    embeddings = MeteredEmbeddings(LetterEmbeddings(), size=2)
    return build(settings, embeddings=embeddings, say=lambda m: None, sync=False), embeddings


def test_metered_embeddings_embed_the_same_and_count_slices():
    counted: list[int] = []
    metered = MeteredEmbeddings(LetterEmbeddings(), size=8)
    texts = [f"text {n}" for n in range(20)]
    assert metered.embed_documents(texts) == LetterEmbeddings().embed_documents(texts)  # unmetered
    metered.meter = counted.append
    assert metered.embed_documents(texts) == LetterEmbeddings().embed_documents(texts)
    assert counted == [8, 8, 4]
    assert metered.model_id == "letters-v1"


def test_a_sync_in_steps_ends_with_exactly_the_notes_and_answers_in_between(tmp_path):
    app, _ = letters_app(tmp_path, files=5)
    plan = app.plan_sync(step_texts=1)
    assert plan.files == 5
    assert len(plan.steps) == 5  # one file a step, as each file has texts to embed
    assert plan.files_at == (1, 2, 3, 4, 5)
    app.sync_step(plan, 0)
    # After the first step the index holds the first note, searchable, while the rest wait.
    assert {s.path for s in app.index.sections} == {"n0.md"}
    for step in range(1, len(plan.steps)):
        app.sync_step(plan, step)
    assert {s.path for s in app.index.sections} == {f"n{n}.md" for n in range(5)}
    assert app.report.embedded == plan.texts_at[-1]
    # The report covers the whole run, not its last step: every content section was added.
    assert (app.report.added, app.report.updated, app.report.unchanged) == (5, 0, 0)
    # Nothing changed: the next plan is one step that embeds nothing.
    again = app.plan_sync(step_texts=1)
    assert len(again.steps) == 1
    assert again.texts_at == (0,)


def test_a_re_index_in_steps_keeps_notes_not_reached_yet_searchable(tmp_path):
    app, _ = letters_app(tmp_path, files=3)
    plan = app.plan_sync(step_texts=1)
    for step in range(len(plan.steps)):
        app.sync_step(plan, step)
    (tmp_path / "notes" / "n0.md").write_text("# Note 0\n\n## Topic 0\nChanged facts about zebras.\n")
    (tmp_path / "notes" / "n2.md").write_text("# Note 2\n\n## Topic 2\nChanged facts about yaks.\n")
    plan = app.plan_sync(step_texts=1)
    assert len(plan.steps) == 2
    app.sync_step(plan, 0)
    # n0 is new already, n2 is still its old self (not dropped), n1 unchanged.
    texts = {s.path: s.markdown for s in app.index.sections}
    assert "zebras" in texts["n0.md"]
    assert "service 2" in texts["n2.md"]
    assert "n1.md" in texts
    app.sync_step(plan, 1)
    assert (app.report.added, app.report.updated, app.report.removed, app.report.unchanged) == (0, 2, 0, 1)


def test_indexer_reports_progress_and_ends_done(tmp_path):
    app, embeddings = letters_app(tmp_path, files=70)  # 70 chunks: more than one step (`STEP_TEXTS`)
    seen = []
    indexer = Indexer(app, threading.Lock(), embeddings)
    original = embeddings.embed_documents

    def watching(texts):
        out = original(texts)
        seen.append(indexer.progress.texts_done)
        return out

    embeddings.embed_documents = watching
    assert indexer.start()
    indexer.join(60)
    progress = indexer.progress
    assert progress.state == "done", progress.error
    assert progress.files_done == progress.files == 70
    assert progress.texts_done == progress.texts > 0
    assert seen == sorted(seen)
    assert len(seen) >= 2
    assert progress.line().startswith("Notes indexed:")


def test_indexer_on_a_missing_folder_fails_with_one_line(tmp_path):
    app, embeddings = letters_app(tmp_path, files=1)
    app.settings = Settings(notes_dir=tmp_path / "gone", index_dir=tmp_path / "index")
    indexer = Indexer(app, threading.Lock(), embeddings)
    indexer.start()
    indexer.join(30)
    progress = indexer.progress
    assert progress.state == "failed"
    assert "gone" in progress.line()
    assert "\n" not in progress.line()


# The page's responder, called directly: what a question is answered from while the notes are indexed


class Gate:
    """The indexer's lock, holding the indexer back before its second step until the test lets it go (the
    indexer takes it once to plan, then once a step). The page's questions take the inner lock directly."""

    def __init__(self, inner: threading.Lock) -> None:
        self.inner = inner
        self.entered = 0
        self.held = threading.Event()
        self.go = threading.Event()

    def __enter__(self) -> None:
        self.entered += 1
        if self.entered == 3:
            self.held.set()
            assert self.go.wait(30)
        self.inner.acquire()

    def __exit__(self, *exc) -> None:
        self.inner.release()


def test_a_question_asked_while_indexing_is_answered_from_the_notes_indexed_so_far(tmp_path):
    from streamlit_app import Shared, respond

    app, embeddings = letters_app(tmp_path, files=3)
    app.plan_sync = lambda: type(app).plan_sync(app, step_texts=1)  # one file a step
    shared = Shared(app)
    gate = Gate(shared.lock)
    shared.indexer = Indexer(app, gate, embeddings)
    store = ChatStore.beside(tmp_path / "chats")
    worker = ChatWorker(store, store.create("q"), respond=None)
    shared.indexer.start()
    assert gate.held.wait(30)  # one file of three indexed, the indexer waiting for its next step
    reply = respond(shared, "What facts does topic 0 have?", [], worker)
    p = shared.indexer.progress
    assert 0 < p.texts_done < p.texts
    said = f"indexed 1 of 3 files ({p.texts_done} of {p.texts} texts) so far"
    assert f"Answered while indexing: {said}; what is not indexed yet may say more." in reply.answer.notices
    assert {h.section.path for h in reply.answer.hits} == {"n0.md"}  # what is indexed so far, nothing else
    gate.go.set()
    shared.indexer.join(30)
    assert shared.indexer.progress.state == "done"
    reply = respond(shared, "What facts does topic 0 have?", [], worker)
    assert not any("indexing" in n for n in reply.answer.notices)
    assert {h.section.path for h in reply.answer.hits} == {"n0.md", "n1.md", "n2.md"}


def test_one_big_note_is_indexed_in_steps_of_sections(tmp_path):
    """A single file is cut too: the bundled notes are one file, and a question asked while it was indexed in one
    step waited for all of it."""
    notes = tmp_path / "notes"
    notes.mkdir()
    topics = "".join(f"## Topic {n}\nFacts about service {n}.\n\n" for n in range(4))
    (notes / "big.md").write_text(f"# Big\n\n{topics}", encoding="utf-8")
    app = build(
        Settings(notes_dir=notes, index_dir=tmp_path / "index"),
        embeddings=LetterEmbeddings(),
        say=lambda m: None,
        sync=False,
    )
    plan = app.plan_sync(step_texts=1)
    assert len(plan.steps) == 4  # one content section a step
    assert plan.files_at == (0, 0, 0, 1)  # the file is whole at the last step only
    app.sync_step(plan, 0)
    assert [s.title for s in app.index.sections if s.indexable] == ["Topic 0"]
    for step in range(1, 4):
        app.sync_step(plan, step)
    assert [s.title for s in app.index.sections if s.indexable] == [f"Topic {n}" for n in range(4)]


def test_a_question_waiting_for_the_index_says_so_and_can_be_stopped(tmp_path):
    from streamlit_app import Shared, respond

    app, _ = letters_app(tmp_path, files=1)
    app.reindex()
    shared = Shared(app)
    store = ChatStore.beside(tmp_path / "chats")
    chat = store.create("q")
    worker = ChatWorker(store, chat, lambda q, h, w: respond(shared, q, h, w))
    for question in ("What facts does topic 0 have?", "And service 0?"):
        store.ask(chat, question)
    with shared.lock:  # a step of indexing holds the index
        worker.kick()
        for _ in range(100):
            if worker.live is not None and worker.live.queued:
                break
            time.sleep(0.1)
        assert worker.live.queued  # the page says it waits for the index, not that it writes
        worker.stop()  # Stop is heard while waiting
        for _ in range(100):
            if store.turns(chat)[0].reply is not None:
                break
            time.sleep(0.1)
    worker.join(30)
    first, second = store.turns(chat)
    assert first.reply == Reply(stopped="")
    assert second.reply.answer is not None  # the next question is answered once the index is free
