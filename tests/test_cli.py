"""The `notes-assistant` command, called in-process: what each subcommand prints, and one-line errors (exit 2, no
traceback) for bad input.

The global `--index-dir` goes before the subcommand. Commands that answer use the real model (it loads lazily,
so in-process calls share the sentence-transformers import); the questions are written for these tests.
"""

from __future__ import annotations

import io
import json
import re

import pytest

from assistant.cli import main
from tests.conftest import BUNDLED_NOTES

SECTION_LINE = re.compile(r"^(\d+)\. (\S+\.md#\S+)  lines \d+-\d+  score \d+\.\d{3}  \(.+\)$")


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    """One index of the bundled notes shared by the commands that only read it."""
    return str(tmp_path_factory.mktemp("cli-index"))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *expected: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("notes-assistant: "), err
    for text in expected:
        assert text in lines[0], err


# index


@pytest.mark.model
def test_index_prints_counts_and_reindexing_embeds_nothing(capsys, tmp_path):
    code, out, _ = run(capsys, "--index-dir", str(tmp_path), "index")
    assert code == 0
    first = out.splitlines()[0]
    assert re.search(r"indexed .+: 1 files, \d+ sections — \d+ added, 0 updated, 0 removed, 0 unchanged", first), out
    embedded = int(re.search(r"\((\d+) texts embedded", first).group(1))
    assert embedded > 0
    assert f"index: {tmp_path}" in out

    code, out, _ = run(capsys, "--index-dir", str(tmp_path), "index", str(BUNDLED_NOTES))
    assert code == 0
    assert "(0 texts embedded" in out, out
    assert re.search(r"0 added, 0 updated, 0 removed, \d+ unchanged", out), out


# search


@pytest.mark.model
def test_search_prints_ranked_sections(capsys, index_dir):
    code, out, _ = run(capsys, "--index-dir", index_dir, "search", "which database stores graphs", "-k", "3")
    assert code == 0
    lines = out.strip().splitlines()
    matches = [SECTION_LINE.match(line) for line in lines]
    assert all(matches), out
    assert [int(m.group(1)) for m in matches] == [1, 2, 3]
    assert matches[0].group(2) == "aws.md#neptune"
    scores = [float(line.split("score ")[1].split()[0]) for line in lines]
    assert scores == sorted(scores, reverse=True)


# ask


@pytest.mark.model
def test_ask_prints_a_cited_answer_and_its_sources(capsys, index_dir):
    code, out, _ = run(capsys, "--index-dir", index_dir, "ask", "Which AWS service is basically Redis in the cloud?")
    assert code == 0
    answer, _, sources = out.partition("\nSources:\n")
    assert "[1]" in answer
    assert "redis" in answer.lower()
    assert re.match(r"\[1\] aws\.md#elasticache — AWS > Databases > Elasticache, lines \d+-\d+", sources), out


@pytest.mark.model
def test_ask_json_prints_one_json_line(capsys, index_dir):
    code, out, _ = run(capsys, "--index-dir", index_dir, "ask", "what kind of database is Neptune", "--json")
    assert code == 0
    assert len(out.strip().splitlines()) == 1
    data = json.loads(out)
    assert data["question"] == "what kind of database is Neptune"
    assert data["refused"] is False
    assert data["answerer"] == "extractive"
    assert data["notices"] == []
    assert "[1]" in data["text"]
    assert "graph" in data["text"]
    assert data["citations"][0]["n"] == 1
    assert data["citations"][0]["key"] == "aws.md#neptune"
    assert data["citations"][0]["heading_path"] == ["AWS", "Databases", "Neptune"]
    start, end = data["citations"][0]["lines"]
    assert 0 < start <= end


@pytest.mark.model
def test_ask_out_of_scope_declines_without_sources(capsys, index_dir):
    code, out, _ = run(capsys, "--index-dir", index_dir, "ask", "Who won the 2018 World Cup?")
    assert code == 0
    assert out.startswith("Your notes don't cover that")
    assert "Sources:" not in out


# eval


EVAL_CASES = [
    {"id": "redis", "question": "Which AWS service is basically Redis in the cloud?", "gold": ["elasticache"],
     "keywords": ["redis"], "answerable": True},
    {"id": "dns", "question": "Which service turns domain names into IP addresses?", "gold": ["aws.md#amazon-route53"],
     "keywords": ["DNS"], "answerable": True},
    {"id": "bread", "question": "How do I bake sourdough bread?", "gold": [], "keywords": [], "answerable": False},
]  # fmt: skip


@pytest.fixture
def questions_file(tmp_path):
    path = tmp_path / "questions.jsonl"
    path.write_text("\n".join(json.dumps(case) for case in EVAL_CASES) + "\n", encoding="utf-8")
    return path


@pytest.mark.model
def test_eval_prints_a_table_then_the_figures(capsys, index_dir, questions_file):
    code, out, _ = run(capsys, "--index-dir", index_dir, "eval", str(questions_file), "--notes", str(BUNDLED_NOTES))
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 1 + 1 + len(EVAL_CASES)  # header, a line a question, the figures
    assert [line.split()[0] for line in lines[1:-1]] == ["redis", "dns", "bread"]
    figures = json.loads(lines[-1])
    for key in ("recall@1", "keyword_recall", "refusal_accuracy", "p50_ms"):
        assert key in figures
    assert figures["questions"] == 3
    assert figures["answerable"] == 2
    assert figures["answerer"] == "extractive"
    assert figures["recall@1"] == 1.0
    assert figures["keyword_recall"] == 1.0
    assert figures["refusal_accuracy"] == 1.0
    assert figures["false_refusal_rate"] == 0.0
    assert figures["p50_ms"] > 0


@pytest.mark.model
def test_eval_json_prints_only_the_figures(capsys, index_dir, questions_file):
    code, out, _ = run(
        capsys, "--index-dir", index_dir, "eval", str(questions_file), "--notes", str(BUNDLED_NOTES), "--json"
    )
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    assert {"recall@1", "keyword_recall", "refusal_accuracy", "p50_ms"} <= set(json.loads(lines[0]))


# chat


@pytest.mark.model
def test_chat_answers_a_question_and_its_follow_up(capsys, monkeypatch, index_dir):
    monkeypatch.setattr("sys.stdin", io.StringIO("What is SQS?\nHow is it different from SNS?\n\n"))
    code, out, _ = run(capsys, "--index-dir", index_dir, "chat")
    assert code == 0
    turns = out.split("you> ")
    assert len(turns) == 4  # banner, two answers, the empty line that ends the chat
    first, second = turns[1], turns[2]
    assert "[1]" in first
    assert re.search(r"^\[1\] aws\.md#sqs-simple-queue-service — ", first, re.MULTILINE), first
    assert "[1]" in second
    assert re.search(r"^\[\d\] aws\.md#sns-simple-notification-service — ", second, re.MULTILINE), second


@pytest.mark.model
def test_chat_reports_a_bad_question_and_goes_on(capsys, monkeypatch, index_dir):
    monkeypatch.setattr("sys.stdin", io.StringIO("\x01\x02\x03\x04\nTell me about Elasticache\n"))
    code, out, _ = run(capsys, "--index-dir", index_dir, "chat")
    assert code == 0  # end of input quits cleanly
    assert "! the question does not look like text" in out
    assert re.search(r"^\[1\] aws\.md#elasticache — ", out, re.MULTILINE), out


# Bad input: exit 2, one line on stderr, no traceback.


@pytest.mark.parametrize("question", ["", "   ", "x" * 100_000, bytes(range(256)).decode("latin-1")])
@pytest.mark.parametrize("command", ["ask", "search"])
def test_bad_question_is_a_one_line_error(capsys, tmp_path, command, question):
    code, out, err = run(capsys, "--index-dir", str(tmp_path), command, question)
    assert_one_line_error(code, err, "question")
    assert out == ""


def test_question_too_long_says_so(capsys, tmp_path):
    code, _, err = run(capsys, "--index-dir", str(tmp_path), "ask", "What is SQS? " * 8000)
    assert_one_line_error(code, err, "characters long")


@pytest.mark.parametrize("command", [["ask", "What is SQS?"], ["search", "What is SQS?"], ["chat"]])
def test_missing_notes_folder_is_a_one_line_error(capsys, tmp_path, command):
    missing = tmp_path / "no-such-notes"
    code, _, err = run(capsys, "--index-dir", str(tmp_path / "index"), *command, "--notes", str(missing))
    assert_one_line_error(code, err, "does not exist", str(missing))


def test_index_of_missing_notes_folder_is_a_one_line_error(capsys, tmp_path):
    missing = tmp_path / "no-such-notes"
    code, _, err = run(capsys, "--index-dir", str(tmp_path / "index"), "index", str(missing))
    assert_one_line_error(code, err, "does not exist")


def test_empty_notes_folder_is_a_one_line_error(capsys, tmp_path):
    empty = tmp_path / "notes"
    empty.mkdir()
    (empty / "todo.txt").write_text("not markdown", encoding="utf-8")
    code, _, err = run(capsys, "--index-dir", str(tmp_path / "index"), "ask", "What is SQS?", "--notes", str(empty))
    assert_one_line_error(code, err, "no markdown notes")


def test_notes_path_that_is_a_file_is_a_one_line_error(capsys, tmp_path):
    code, _, err = run(capsys, "--index-dir", str(tmp_path / "index"), "index", str(BUNDLED_NOTES / "aws.md"))
    assert_one_line_error(code, err, "not a folder")


def test_eval_file_with_bad_json_names_the_line(capsys, tmp_path):
    path = tmp_path / "questions.jsonl"
    path.write_text(json.dumps(EVAL_CASES[0]) + "\n{not json\n", encoding="utf-8")
    code, out, err = run(capsys, "--index-dir", str(tmp_path / "index"), "eval", str(path))
    assert_one_line_error(code, err, "questions.jsonl:2:")
    assert out == ""


def test_missing_eval_file_is_a_one_line_error(capsys, tmp_path):
    code, _, err = run(capsys, "--index-dir", str(tmp_path / "index"), "eval", str(tmp_path / "nope.jsonl"))
    assert_one_line_error(code, err, "cannot read")


def test_eval_file_with_a_non_object_line_is_a_one_line_error(capsys, tmp_path):
    path = tmp_path / "questions.jsonl"
    path.write_text('"What is SQS?"\n', encoding="utf-8")
    code, _, err = run(capsys, "--index-dir", str(tmp_path / "index"), "eval", str(path))
    assert_one_line_error(code, err, ":1:")


def test_unknown_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["frobnicate"])
    assert caught.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
