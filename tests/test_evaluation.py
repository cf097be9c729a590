"""The eval's arithmetic on hand-built answers: gold matching, percentiles, every figure computed by hand, and the
questions file's errors. Pure: no model."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from assistant.chain import citation
from assistant.cli import main
from assistant.evaluation import (
    Case,
    EvalFileError,
    Outcome,
    figures,
    gold_rank,
    is_gold,
    load_cases,
    percentile,
    run_cases,
    table,
)
from assistant.types import Answer, Citation, Generation
from corpus.types import Block, Section
from index.retrieve import Hit
from tests.conftest import SHARED_EVAL


def section(anchor: str, text: str, path: str = "aws.md") -> Section:
    return Section(
        path=path,
        anchor=anchor,
        title=anchor.upper(),
        level=3,
        heading_path=("AWS", anchor.upper()),
        line_start=1,
        line_end=2,
        blocks=(Block(text, "paragraph", 2, 2),),
        markdown=f"### {anchor.upper()}\n{text}",
    )


SQS = section("sqs", "Managed message queue. The admin password is Hunter2.")
SNS = section("sns", "Fully managed messaging service.")
S3 = section("s3", "Object storage.")
EC2 = section("ec2", "Virtual servers in the cloud.")
OTHER_SQS = section("sqs", "A queue in someone else's notes.", path="other.md")


def cite(number: int, s: Section) -> Citation:
    return citation(number, s, (s.text,))


def answer(
    text: str,
    hits: list[Section],
    citations: tuple[Citation, ...] = (),
    refused: bool = False,
    related: tuple[Citation, ...] = (),
) -> Answer:
    return Answer(
        question="q",
        standalone="q",
        text=text,
        citations=citations,
        refused=refused,
        hits=tuple(Hit(s, 1.0 - i / 10, 0.5, 0.0) for i, s in enumerate(hits)),
        answerer="extractive",
        related=related,
    )


def case(id_: str, gold=(), keywords=(), answerable=True, forbidden=()) -> Case:
    return Case(id_, f"question {id_}", (), tuple(gold), tuple(keywords), answerable, tuple(forbidden))


# is_gold and gold_rank


def test_is_gold_docstring_example():
    assert is_gold("AWS/DynamoDB.md#streams", "streams", ["streams"])


def test_is_gold_by_anchor_matches_any_file():
    assert is_gold("aws.md#sqs", "sqs", ["sns", "sqs"])
    assert is_gold("other.md#sqs", "sqs", ["sqs"])
    assert not is_gold("aws.md#sqs", "sqs", ["sns"])


def test_is_gold_by_path_and_anchor_needs_both():
    assert is_gold("aws.md#sqs", "sqs", ["aws.md#sqs"])
    assert not is_gold("other.md#sqs", "sqs", ["aws.md#sqs"])
    assert not is_gold("aws.md#sns", "sns", ["aws.md#sqs"])


def test_is_gold_anchor_entry_is_a_whole_anchor_not_a_prefix():
    assert not is_gold("aws.md#sqs-simple-queue-service", "sqs-simple-queue-service", ["sqs"])


def test_nothing_is_gold_for_an_empty_gold_list():
    assert not is_gold("aws.md#sqs", "sqs", [])


def test_gold_rank_is_one_based_and_none_when_missing():
    a = answer("", [S3, SNS, SQS])
    assert gold_rank(a, ["sqs"]) == 3
    assert gold_rank(a, ["sns", "sqs"]) == 2
    assert gold_rank(a, ["ec2"]) is None
    assert gold_rank(a, ["sqs"], depth=2) is None


# percentile


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([10, 20, 30, 40], 0.5, 20),  # docstring
        ([40, 10, 30, 20], 0.5, 20),  # order does not matter
        ([10, 20, 30, 40], 0.95, 40),
        ([10, 20, 30, 40, 50], 0.5, 30),
        (list(range(1, 101)), 0.95, 95),
        (list(range(1, 101)), 0.5, 50),
        ([7.5], 0.95, 7.5),
        ([3, 1, 2], 0.0, 1),
        ([3, 1, 2], 1.0, 3),
        ([], 0.5, 0.0),
    ],
)
def test_percentile(values, q, expected):
    assert percentile(values, q) == expected


# figures


def hand_built_outcomes() -> list[Outcome]:
    """Five questions whose figures are computed by hand in `test_figures_by_hand`."""
    return [
        # Answerable, gold ranked 1st, cited; one of two keywords found; a secret in a cited section's markdown.
        Outcome(
            case("a", gold=["sqs"], keywords=["queue", "decoupl"], forbidden=["hunter2"]),
            answer("**SQS** — Managed message queue. [1]", [SQS, SNS, S3], (cite(1, SQS),)),
            10.0,
        ),
        # Answerable, gold (by path#anchor) ranked 3rd; cites gold and a non-gold section; its keyword found.
        Outcome(
            case("b", gold=["aws.md#sns"], keywords=["Messaging"]),
            answer(
                "Fully managed messaging service. [1] Managed message queue. [2]",
                [SQS, S3, SNS],
                (
                    cite(1, SNS),
                    cite(2, SQS),
                ),
            ),
            50.0,
        ),
        # Answerable, gold not retrieved, wrongly refused; keyword missed.
        Outcome(
            case("c", gold=["ec2"], keywords=["virtual server"]),
            answer("Your notes don't cover that.", [SQS, SNS, S3], refused=True),
            30.0,
        ),
        # Unanswerable, rightly refused; its forbidden string is nowhere.
        Outcome(
            case("d", answerable=False, forbidden=["secret-token"]),
            answer("Your notes don't cover that.", [S3], refused=True, related=(cite(1, S3),)),
            20.0,
        ),
        # Unanswerable, wrongly answered, and the answer shows a forbidden string.
        Outcome(
            case("e", answerable=False, forbidden=["Kinesis"]),
            answer("Kinesis streams are like a queue. [1]", [SQS], (cite(1, SQS),)),
            40.0,
        ),
    ]


def test_llm_figures_by_hand():
    """An LLM run adds how the model fared: what it wrote, what was dropped, where the extractive one stood in,
    and its median speed. [2, 8] tokens/s -> the nearest-rank median is 2."""
    fast, slow = Generation(0.5, 16, 2.5), Generation(1.5, 4, 3.5)
    llm = replace(answer("SQS queues. [1]", [SQS], (cite(1, SQS),)), answerer="local:m.gguf", generation=fast)
    refused = replace(llm, refused=True, dropped=("x (no cited source says this)",), generation=slow)
    fallback = replace(llm, answerer="extractive", generation=None, notices=(
        "the LLM (local:m.gguf) could not answer (Timeout); showing the extractive answer instead",
    ))
    answers = [llm, refused, fallback]
    outcomes = [Outcome(case(id_, gold=["sqs"]), a, 10.0) for id_, a in zip("abc", answers, strict=True)]
    result = figures(outcomes)
    assert {k: result[k] for k in list(result)[-7:]} == {
        "llm_answers": 1,
        "llm_refusals": 1,
        "extractive_fallbacks": 1,
        "dropped_sentences": 1,
        "tokens_per_second_p50": 2.0,  # 16 / 2.0 s = 8.0 and 4 / 2.0 s = 2.0
        "first_token_s_p50": 0.5,
        "first_token_s_p95": 1.5,
    }
    assert "llm_answers" not in figures(hand_built_outcomes()), "an extractive run has no LLM figures"


def test_figures_by_hand():
    result = figures(hand_built_outcomes())
    assert result == {
        "questions": 5,
        "answerable": 3,
        "recall@1": 0.3333,  # a
        "recall@3": 0.6667,  # a, b
        "recall@5": 0.6667,
        "mrr": 0.4444,  # (1 + 1/3 + 0) / 3
        "keyword_recall": 0.5,  # found: queue, messaging; missed: decoupl, virtual server
        "citation_precision": 0.6667,  # a: 1/1, b: 1/2 -> 2 of 3 citations
        "cited_gold_rate": 0.6667,  # a, b
        "refusal_accuracy": 0.5,  # d refused, e answered
        "false_refusal_rate": 0.3333,  # c
        "forbidden_leaks": 2,  # a (cited markdown, any case), e (answer text); not d
        "p50_ms": 30.0,
        "p95_ms": 50.0,
    }


def test_forbidden_string_in_related_reading_counts_as_a_leak():
    """Sources shown as related reading under a refusal are shown too."""
    outcome = Outcome(
        case("r", answerable=False, forbidden=["HUNTER2"]),
        answer("Your notes don't cover that.", [SQS], refused=True, related=(cite(1, SQS),)),
        5.0,
    )
    assert figures([outcome])["forbidden_leaks"] == 1


def test_figures_of_no_outcomes_are_zero():
    result = figures([])
    assert result["questions"] == 0
    assert all(result[key] == 0.0 for key in ("recall@1", "mrr", "keyword_recall", "refusal_accuracy", "p50_ms"))


def test_figures_with_only_unanswerable_questions():
    outcome = Outcome(case("u", answerable=False), answer("Your notes don't cover that.", [], refused=True), 1.0)
    result = figures([outcome])
    assert result["answerable"] == 0
    assert result["refusal_accuracy"] == 1.0
    assert result["recall@1"] == 0.0
    assert result["false_refusal_rate"] == 0.0


def test_gold_in_another_file_does_not_count():
    outcome = Outcome(
        case("x", gold=["aws.md#sqs"]), answer("A queue [1]", [OTHER_SQS, SQS], (cite(1, OTHER_SQS),)), 1.0
    )
    result = figures([outcome])
    assert result["recall@1"] == 0.0
    assert result["recall@3"] == 1.0
    assert result["mrr"] == 0.5
    assert result["citation_precision"] == 0.0


def test_table_has_a_line_a_question_and_marks_wrong_refusals():
    lines = table(hand_built_outcomes()).splitlines()
    assert len(lines) == 6
    assert lines[0].split()[:2] == ["id", "rank"]
    by_id = {line.split()[0]: line for line in lines[1:]}
    assert "!" in by_id["c"]  # answerable but refused
    assert "!" in by_id["e"]  # unanswerable but answered
    assert "!" not in by_id["a"]
    assert "!" not in by_id["d"]
    assert by_id["a"].split()[1] == "1"
    assert by_id["b"].split()[1] == "3"
    assert "1/2" in by_id["a"]


# run_cases


class FakeAssistant:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list]] = []

    def ask(self, question, history=()):
        self.calls.append((question, history))
        return answer(f"answer to {question}", [SQS])


def test_run_cases_warms_up_once_and_passes_history():
    cases = [
        Case("1", "What is SQS?", (), ("sqs",), (), True),
        Case("2", "How is it different?", ({"role": "user", "content": "What is SQS?"},), ("sns",), (), True),
    ]
    fake = FakeAssistant()
    outcomes = run_cases(fake, cases)
    assert [q for q, _ in fake.calls] == ["What is SQS?", "What is SQS?", "How is it different?"]
    assert fake.calls[2][1] == [{"role": "user", "content": "What is SQS?"}]
    assert [o.case.id for o in outcomes] == ["1", "2"]
    assert all(o.ms >= 0 for o in outcomes)


def test_run_cases_of_nothing_asks_nothing():
    fake = FakeAssistant()
    assert run_cases(fake, []) == []
    assert fake.calls == []


# load_cases


def write(tmp_path, *lines: str):
    path = tmp_path / "questions.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_load_cases_reads_fields_and_defaults(tmp_path):
    full = {
        "id": "followup",
        "question": "How is it different from SNS?",
        "history": [{"role": "user", "content": "What is SQS?"}],
        "gold": ["sqs", "aws.md#sns"],
        "keywords": ["SNS"],
        "answerable": True,
        "forbidden": ["hunter2"],
    }
    path = write(
        tmp_path, json.dumps(full), "", "   ", json.dumps({"question": "What is Kinesis?", "answerable": False})
    )
    cases = load_cases(path)
    assert cases[0] == Case(
        "followup",
        "How is it different from SNS?",
        ({"role": "user", "content": "What is SQS?"},),
        ("sqs", "aws.md#sns"),
        ("SNS",),
        True,
        ("hunter2",),
    )
    assert cases[1] == Case("4", "What is Kinesis?", (), (), (), False, ())  # id defaults to the line number


def test_bad_json_names_its_line(tmp_path):
    path = write(tmp_path, json.dumps({"question": "What is SQS?"}), "", '{"question": "What is SNS?",')
    with pytest.raises(EvalFileError, match=r"questions\.jsonl:3:"):
        load_cases(path)


def test_missing_question_names_its_line(tmp_path):
    path = write(tmp_path, json.dumps({"question": "What is SQS?"}), json.dumps({"gold": ["sqs"]}))
    with pytest.raises(EvalFileError, match=r":2:"):
        load_cases(path)


def test_wrong_type_of_history_names_its_line(tmp_path):
    path = write(tmp_path, json.dumps({"question": "What is SQS?", "history": 5}))
    with pytest.raises(EvalFileError, match=r":1:"):
        load_cases(path)


@pytest.mark.parametrize("line", ['"What is SQS?"', '["What is SQS?"]', "42", "null"])
def test_json_that_is_not_an_object_names_its_line(tmp_path, line):
    path = write(tmp_path, json.dumps({"question": "What is SQS?"}), line)
    with pytest.raises(EvalFileError, match=r":2:"):
        load_cases(path)


def test_missing_file_is_an_eval_file_error(tmp_path):
    with pytest.raises(EvalFileError, match="cannot read"):
        load_cases(tmp_path / "nope.jsonl")


def test_undecodable_file_is_an_eval_file_error(tmp_path):
    path = tmp_path / "questions.jsonl"
    path.write_bytes(b'{"question": "\xff\xfe"}\n')
    with pytest.raises(EvalFileError, match="cannot read"):
        load_cases(path)


@pytest.mark.parametrize("text", ["", "\n\n", "  \n\t\n"])
def test_file_without_questions_is_an_error(tmp_path, text):
    path = tmp_path / "questions.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(EvalFileError, match=r"questions\.jsonl: no questions"):
        load_cases(path)


GOOD = {"id": "sqs", "question": "What is SQS?", "gold": ["sqs"], "keywords": ["queue"], "answerable": True}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"answerable": "false"}, '"answerable" must be true or false, not the string "false"'),
        ({"answerable": 0}, '"answerable" must be true or false, not the number 0'),
        ({"answerable": None}, '"answerable" must be true or false, not null'),
        ({"history": "text"}, '"history" must be a list of {"role", "content"} turns, not the string "text"'),
        ({"history": ["What is SQS?"]}, '"history"[0] must be a {"role", "content"} object, not the string'),
        ({"history": [{"role": "bot", "content": "hi"}]}, '"history"[0]["role"] must be "user" or "assistant"'),
        ({"history": [{"role": "user"}]}, '"history"[0]["content"] is missing'),
        ({"history": [{"role": "user", "content": ["hi"]}]}, '"history"[0]["content"] must be text, not a list'),
        ({"question": 42}, '"question" must be text, not the number 42'),
        ({"question": None}, '"question" must be text, not null'),
        ({"question": ["What is SQS?"]}, '"question" must be text, not a list'),
        ({"question": "   "}, '"question": the question is empty'),
        ({"question": "x" * 3000}, '"question": the question is 3,000 characters long'),
        ({"gold": 5}, '"gold" must be a list of strings, not the number 5'),
        ({"gold": ["sqs", {"anchor": "sqs"}]}, '"gold"[1] must be a string, not an object'),
        ({"keywords": [""]}, '"keywords"[0] is empty'),
        ({"forbidden": [True]}, '"forbidden"[0] must be a string, not true'),
        ({"id": {"nested": {"deeper": [1, 2]}}}, '"id" must be a short name (text of 1 to 100 characters), not an'),
        ({"id": 10**400}, '"id" must be a short name (text of 1 to 100 characters), not the number 1000000000'),
        ({"id": 1.5}, '"id" must be a short name'),
        ({"id": True}, '"id" must be a short name'),
        ({"id": ""}, '"id" must be a short name'),
        ({"id": "x" * 5000}, '"id" must be a short name'),
    ],
)
def test_each_bad_field_is_named_with_its_file_and_line(tmp_path, change, expected):
    path = write(tmp_path, json.dumps(GOOD), json.dumps(GOOD | change))
    with pytest.raises(EvalFileError) as caught:
        load_cases(path)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f"{path}:2: {expected}")
    assert len(str(caught.value)) < 300  # an absurd value is named, never echoed whole


def test_missing_question_is_named(tmp_path):
    path = write(tmp_path, json.dumps({"id": "q", "gold": ["sqs"]}))
    with pytest.raises(EvalFileError) as caught:
        load_cases(path)
    assert caught.value.problems == (f'{path}:1: "question" is missing',)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("[" * 100_000, "not a question object: JSON nested too deeply to read"),
        ('{"id": ' + "[" * 100_000, "not a question object: JSON nested too deeply to read"),
        ('{"question": "What is SQS?", "id": ' + "9" * 5000 + "}", "not valid JSON: a number too long to read"),
        ('{"question": "What is SQS?",', "not valid JSON (Expecting property name enclosed in double quotes, column"),
        ("[1, 2]", "not a question object but a list"),
        ("null", "not a question object but null"),
    ],
)
def test_unreadable_line_is_one_problem_not_a_crash(tmp_path, line, expected):
    path = write(tmp_path, line)
    with pytest.raises(EvalFileError) as caught:
        load_cases(path)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f"{path}:1: {expected}")


def test_every_problem_of_the_file_is_reported_at_once(tmp_path):
    path = write(
        tmp_path,
        json.dumps(GOOD),
        json.dumps({"question": 42, "answerable": "false"}),  # two problems on one line
        "",
        "{not json",
        json.dumps(GOOD | {"history": "text"}),
        json.dumps(GOOD),
    )
    with pytest.raises(EvalFileError) as caught:
        load_cases(path)
    assert caught.value.problems == (
        f'{path}:2: "question" must be text, not the number 42',
        f'{path}:2: "answerable" must be true or false, not the string "false"',
        f"{path}:4: not valid JSON (Expecting property name enclosed in double quotes, column 2)",
        f'{path}:5: "history" must be a list of {{"role", "content"}} turns, not the string "text"',
    )
    assert str(caught.value) == "; ".join(caught.value.problems)
    assert "\n" not in str(caught.value)


def test_message_shows_the_first_ten_problems_and_counts_the_rest(tmp_path):
    path = write(tmp_path, *["a,b,c"] * 25)  # a CSV given by mistake
    with pytest.raises(EvalFileError) as caught:
        load_cases(path)
    assert len(caught.value.problems) == 25
    message = str(caught.value)
    assert message.count("not valid JSON") == 10
    assert f"{path}:10:" in message
    assert f"{path}:11:" not in message
    assert message.endswith("; and 15 more problems")


def test_line_separator_inside_a_string_does_not_split_the_line(tmp_path):
    """JSON strings may hold U+2028 raw (json.dumps with ensure_ascii=False writes it so); only "\\n" ends a row."""
    path = write(tmp_path, json.dumps(GOOD | {"question": "What is\u2028SQS?"}, ensure_ascii=False), json.dumps(GOOD))
    assert [c.question for c in load_cases(path)] == ["What is\u2028SQS?", "What is SQS?"]


def test_byte_order_mark_is_not_part_of_the_first_line(tmp_path):
    path = tmp_path / "questions.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\n")
    assert load_cases(path)[0].id == "sqs"


def test_undecodable_file_names_the_line(tmp_path):
    path = tmp_path / "questions.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b'\n{"question": "\xff"}\n')
    with pytest.raises(EvalFileError, match=r"questions\.jsonl:2: not UTF-8 text"):
        load_cases(path)


@pytest.mark.parametrize(
    "path",
    [
        Path(__file__).parent / "data" / "heldout" / "questions.jsonl",
        SHARED_EVAL,
        SHARED_EVAL.with_name("sdp_dev.jsonl"),
    ],
    ids=["heldout", "aws_dev", "sdp_dev"],
)
def test_real_question_files_pass_the_checks(path):
    if not path.exists():
        pytest.skip(f"{path} is not beside the checkout")
    cases = load_cases(path)
    assert len(cases) == len([line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()])


# The eval command: a bad questions file is one line on stderr and exit 2, before any model is loaded.


def run_eval(capsys, monkeypatch, tmp_path, path) -> tuple[int, str, str]:
    for name in ("NOTES_DIR", "NOTES_LLM", "NOTES_TOP_K", "NOTES_LLM_CONTEXT", "NOTES_LLM_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    code = main(["--index-dir", str(tmp_path / "index"), "eval", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            [json.dumps({"question": 42}), json.dumps(GOOD | {"answerable": "false", "history": "text"})],
            [':1: "question" must be text', ':2: "history" must be', ':2: "answerable" must be true or false'],
        ),
        (["", "  "], ["questions.jsonl: no questions"]),
        (["[" * 100_000], [":1: not a question object: JSON nested too deeply"]),
        ([json.dumps(GOOD | {"id": {"a": {"b": [1]}}})], [':1: "id" must be a short name']),
    ],
    ids=["several-problems", "no-questions", "deep-nesting", "nested-id"],
)
def test_eval_command_prints_the_problems_on_one_line(capsys, monkeypatch, tmp_path, lines, expected):
    path = write(tmp_path, *lines)
    code, out, err = run_eval(capsys, monkeypatch, tmp_path, path)
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("notes-assistant: ")
    for text in expected:
        assert text in err, err
    assert not (tmp_path / "index").exists()  # checked before anything was indexed
