"""Practice in the chat: requests recognised (and ordinary questions not), and a run steered by its messages."""

from __future__ import annotations

import json

import pytest

from practice.chat import Request, practice_request, reply, start
from practice.session import Practice
from practice.store import PracticeStore

from .conftest import ROOT, SHARED_EVAL

pytestmark = pytest.mark.model

HELDOUT = ROOT / "tests" / "data" / "heldout" / "questions.jsonl"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Quiz me on VPC", Request("VPC", 5)),
        ("ask me something about databases", Request("Databases", 5)),
        ("mock interview on AWS, 10 questions", Request("AWS", 10)),
        ("test me on Lambda", Request("Lambda", 5)),
        ("Quiz me", Request("", 5)),
    ],
)
def test_practice_requests(aws_app, message, expected):
    assert practice_request(message, aws_app.index.sections, aws_app.embeddings) == expected


def test_ordinary_questions_are_not_practice_requests(aws_app):
    questions = [json.loads(line)["question"] for line in HELDOUT.read_text().splitlines()]
    if SHARED_EVAL.exists():
        questions += [json.loads(line)["question"] for line in SHARED_EVAL.read_text().splitlines()]
    questions += ["Tell me more", "Why?", "How is it different from SNS?", "What is a mock object?"]
    found = [q for q in questions if practice_request(q, aws_app.index.sections, aws_app.embeddings)]
    assert found == []


def test_a_run_in_the_chat(aws_app, tmp_path):
    practice = Practice(aws_app, PracticeStore(tmp_path / "practice.sqlite3"))
    practice.refresh()
    run, said = start(practice, Request("Compute", 3))
    assert "Practice on Compute: 3 question(s)" in said
    assert "Question 1 of 3" in said
    run, said = reply(practice, run, "skip")
    assert said.startswith("Skipped.")
    assert "Question 2 of 3" in said
    run, said = reply(practice, run, "It runs your code as functions in the cloud, with no servers to manage.")
    assert "**Score: " in said
    assert "[aws.md\\#lambda](<?note=aws.md#lambda>), lines" in said  # each missed point cited
    run, said = reply(practice, run, "Show me the answer")
    assert run is None  # the third and last question
    assert "From your notes:" in said
    assert "Practice over: 1 answered" in said
    assert [r.section_key for r in practice.store.history()] == ["aws.md#lambda", "aws.md#elastic-beanstalk"]


def test_stop_ends_the_run(aws_app, tmp_path):
    practice = Practice(aws_app, PracticeStore(tmp_path / "practice.sqlite3"))
    practice.refresh()
    run, _ = start(practice, Request("", 2))
    run, said = reply(practice, run, "stop")
    assert run is None
    assert said == "Practice over."
    _, said = start(practice, Request("Kinesis", 2))
    assert "no questions on “Kinesis”" in said
