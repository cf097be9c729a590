"""The Practice page, run headlessly with Streamlit's AppTest over the bundled AWS notes and the real model."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.test_ui_apptest import settle

APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("practice-ui-index")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NOTES_INDEX_DIR", str(path))
        mp.setenv("HF_HUB_OFFLINE", "1")
        for name in ("NOTES_DIR", "NOTES_LLM", "NOTES_TOP_K", "NOTES_MODEL_DIR"):
            mp.delenv(name, raising=False)
        yield path


@pytest.fixture(autouse=True)
def _index_here(index_dir, monkeypatch):
    """conftest's autouse fixture clears NOTES_* for each test, after the module's `index_dir` set it; without
    this the tests ran on the user's own index in ~/.cache (its practice history changed what was asked)."""
    monkeypatch.setenv("NOTES_INDEX_DIR", str(index_dir))


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def shown(at: AppTest) -> str:
    return "\n".join(str(e.value) for e in [*at.markdown, *at.caption, *at.subheader])


@pytest.fixture
def practice(index_dir) -> AppTest:
    at = ok(settle(AppTest.from_file(str(APP), default_timeout=120).run()))  # the notes indexed in the background
    assert at.chat_input  # the chat is the default page
    at.switch_page("practice_page.py")
    return ok(at.run())


def test_practice_run_asks_grades_overrides_and_shows_answers(practice):
    at = practice
    assert at.title[0].value == "Practice"
    at.text_input[0].set_value("Compute")
    at.number_input[0].set_value(2)
    at.checkbox[0].check()
    ok(button(at, "Start").click().run())
    assert "Question 1 of 2" in shown(at)
    assert "What is Elastic Compute Cloud (EC2)?" in shown(at)

    at.text_area[0].set_value("Spreadsheets for accountants.")
    ok(button(at, "Check").click().run())
    assert at.metric[0].value == "0/100"
    assert "?note=aws.md#elastic-compute-cloud-ec2" in shown(at)  # the missed point links to its text
    ok(button(at, "I knew that").click().run())
    assert at.metric[0].value == "100/100"  # the override is what the schedule uses

    ok(button(at, "Next").click().run())
    assert "What is Lambda?" in shown(at)
    ok(button(at, "Show the answer").click().run())
    assert "run functions in the cloud" in shown(at)
    ok(button(at, "Next").click().run())
    assert any("Done: 2 question(s)" in s.value for s in at.success)

    assert any(b.label == "Export the questions to Anki (.apkg)" for b in at.get("download_button"))
    progress = next(e for e in at.expander if e.label == "Progress")
    assert "?note=aws.md#lambda" in "\n".join(str(m.value) for m in progress.markdown)  # weakest first, linked


def test_unknown_topic_says_so(practice):
    at = practice
    at.text_input[0].set_value("Kinesis")
    ok(button(at, "Start").click().run())
    assert "no questions on “Kinesis”" in at.info[0].value


def test_skip_stop_and_retire(practice):
    at = practice
    at.text_input[0].set_value("Databases")
    at.checkbox[0].check()
    ok(button(at, "Start").click().run())
    first = shown(at)
    ok(button(at, "Skip").click().run())
    assert "Question 2 of" in shown(at)
    ok(button(at, "Never ask this again").click().run())
    assert "Question 3 of" in shown(at)
    ok(button(at, "Stop").click().run())
    assert "Question" not in "\n".join(s.value for s in at.subheader)
    assert "What is RDS" in first


def test_practice_in_the_chat_with_questions_in_between(index_dir):
    at = ok(settle(AppTest.from_file(str(APP), default_timeout=120).run()))
    settle(at.chat_input[0].set_value("Quiz me on Lambda").run())  # replies come from the chat's worker
    ok(at)
    assert "Question 1 of 1" in at.chat_message[-1].markdown[0].value
    assert "What is Lambda?" in at.chat_message[-1].markdown[0].value
    # An ordinary question in between is answered as usual, with its sources; the run waits.
    settle(at.chat_input[0].set_value("What is SQS?").run())  # answered in the background
    ok(at)
    assert "decoupling" in at.chat_message[-1].markdown[0].value
    settle(at.chat_input[0].set_value("It runs functions in the cloud without servers.").run())
    ok(at)
    graded = at.chat_message[-1].markdown[0].value
    assert "Score: " in graded
    assert "?note=aws.md#lambda" in graded  # missed points quoted with their [n] citation
    assert "Practice over: 1 answered" in graded
    settle(at.chat_input[0].set_value("stop").run())  # no run any more: "stop" goes to the assistant like any message
    ok(at)
    assert "practice" not in at.chat_message[-1].markdown[0].value.lower()
