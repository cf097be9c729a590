"""`notes-assistant quiz` and `notes-assistant grade`, called in-process with the real model."""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import pytest

from assistant.cli import main
from practice.store import PracticeStore

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("practice-cli-index"))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_quiz_json_prints_one_question_a_line(capsys, index_dir):
    code, out, _ = run(capsys, "--index-dir", index_dir, "quiz", "--json")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) > 46  # at least one question for each content section of the AWS notes
    for line in lines:
        assert list(line) == ["id", "question", "section", "kind", "key_points"]
        assert line["section"].startswith("aws.md#")
        assert 1 <= len(line["key_points"]) <= 5
    code, out, _ = run(capsys, "--index-dir", index_dir, "quiz", "--json", "--topic", "Databases", "--count", "3")
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 3
    assert lines[0]["section"] == "aws.md#rds-relational-database-service"


def test_quiz_unknown_topic_is_a_one_line_error(capsys, index_dir):
    code, _, err = run(capsys, "--index-dir", index_dir, "quiz", "--topic", "Kinesis")
    assert code == 2
    assert err.strip().startswith("notes-assistant: no questions on “Kinesis”")


def test_grade_json(capsys, index_dir):
    args = ["--index-dir", index_dir, "grade", "--section", "aws.md#elasticache", "--question", "What is Elasticache?"]
    good = "Redis in the cloud: a cache that takes load off your database."
    code, out, _ = run(capsys, *args, "--answer", good, "--json")
    assert code == 0
    result = json.loads(out)
    assert list(result) == ["score", "covered", "missed"]
    assert result["score"] >= 50
    code, out, _ = run(capsys, *args, "--answer", "A service that sends emails in bulk.", "--json")
    result = json.loads(out)
    assert result["score"] == 0
    assert [list(m) for m in result["missed"]] == [["point", "citation"]] * 2
    assert result["missed"][0]["citation"].startswith("aws.md#elasticache, lines ")
    # A question the notes never generated is graded on the section's nearest sentences.
    code, out, _ = run(
        capsys, "--index-dir", index_dir, "grade", "--section", "aws.md#elasticache", "--question",
        "Why would I put a cache in front of my database?", "--answer", "", "--json",
    )
    assert json.loads(out)["score"] == 0
    code, _, err = run(capsys, "--index-dir", index_dir, "grade", "--section", "aws.md#nope", "--question", "x",
                       "--answer", "y")
    assert code == 2
    assert "no section aws.md#nope" in err


def test_quiz_interactive_grades_overrides_and_stops(capsys, index_dir, monkeypatch):
    typed = iter(["Virtual machines that run in the cloud.", "k", "skip", "show", "stop"])
    monkeypatch.setattr(builtins, "input", lambda prompt="": next(typed))
    code, out, _ = run(capsys, "--index-dir", index_dir, "quiz", "--topic", "Compute", "--count", "4", "--cram")
    assert code == 0
    assert "[1/4] What is Elastic Compute Cloud (EC2)?" in out
    assert "score " in out
    assert "[2/4] What is Lambda?" in out  # skipped
    assert "aws.md#elastic-beanstalk, lines" in out  # "show": the key points, quoted with citations
    assert "[4/4]" in out  # then "stop"
    history = PracticeStore.beside(Path(index_dir)).history()
    assert [(r.section_key, r.score) for r in history] == [
        ("aws.md#elastic-compute-cloud-ec2", 100),  # "k": I knew that, whatever the grade was
        ("aws.md#elastic-beanstalk", 0),  # shown, not known
    ]


def test_quiz_anki_writes_a_deck(capsys, index_dir, tmp_path):
    deck = tmp_path / "aws.apkg"
    code, out, _ = run(capsys, "--index-dir", index_dir, "quiz", "--topic", "Databases", "--anki", str(deck))
    assert code == 0
    assert out.startswith("wrote ")
    assert deck.read_bytes()[:2] == b"PK"  # a zip, as Anki expects
