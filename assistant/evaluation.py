"""The eval: questions in `../shared/eval` format through the chat pipeline, and the figures it reaches."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from assistant.questions import QuestionError, clean_question
from assistant.types import Answer

# A wrong file (a CSV, a log) has a problem on every line; the first ten say what is wrong, the rest repeat it.
MAX_SHOWN_PROBLEMS = 10
ROLES = ("user", "assistant")
MAX_ID_CHARS = 100  # ids are short names shown in the table's first column


class EvalFileError(ValueError):
    """The questions file cannot be used. `problems` holds every one, each `path:line: what is wrong`; the message
    is one line with the first MAX_SHOWN_PROBLEMS of them."""

    def __init__(self, *problems: str) -> None:
        self.problems = problems
        more = len(problems) - MAX_SHOWN_PROBLEMS
        message = "; ".join(problems[:MAX_SHOWN_PROBLEMS])
        if more > 0:
            message += f"; and {more} more problem{'s' if more > 1 else ''}"
        super().__init__(message)


@dataclass(frozen=True)
class Case:
    id: str
    question: str
    history: tuple[dict, ...]
    gold: tuple[str, ...]
    keywords: tuple[str, ...]
    answerable: bool
    forbidden: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    case: Case
    answer: Answer
    ms: float


def load_cases(path: Path) -> list[Case]:
    """Cases of a JSONL file, one object a line; blank lines skipped.

    Every row is checked before any question is asked, and every problem of the file is reported at once in an
    `EvalFileError`, each as `path:line: what is wrong`. A file with no questions is an error too.
    """
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise EvalFileError(f"cannot read {path}: {err.strerror or err}") from err
    try:
        text = raw.decode("utf-8-sig")  # a BOM from a Windows editor is not part of the first line
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise EvalFileError(f"cannot read {path}:{line}: not UTF-8 text") from err
    cases: list[Case] = []
    problems: list[str] = []
    # Split on "\n" only: str.splitlines() also breaks at U+2028 and friends, which JSON strings may hold raw.
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        case, wrong = parse_case(line, default_id=str(n))
        problems += [f"{path}:{n}: {w}" for w in wrong]
        if case is not None:
            cases.append(case)
    if problems:
        raise EvalFileError(*problems)
    if not cases:
        raise EvalFileError(f"{path}: no questions (every line is blank)")
    return cases


def parse_case(line: str, default_id: str) -> tuple[Case | None, list[str]]:
    """One line of a questions file as a `Case`, or None and what is wrong with it (every field checked).

    `'{"question": 42, "answerable": "false"}'` -> `(None, ['"question" must be text, not the number 42',
    '"answerable" must be true or false, not the string "false"'])`
    """
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        return None, [f"not valid JSON ({err.msg}, column {err.colno})"]
    except RecursionError:
        return None, ["not a question object: JSON nested too deeply to read"]
    except ValueError:  # an integer longer than Python converts (4,300 digits)
        return None, ["not valid JSON: a number too long to read"]
    if not isinstance(row, dict):
        return None, [f"not a question object but {_show(row)}"]
    wrong: list[str] = []

    id_ = row.get("id", default_id)
    if isinstance(id_, bool) or not isinstance(id_, str | int) or not 0 < len(str(id_).strip()) <= MAX_ID_CHARS:
        wrong.append(f'"id" must be a short name (text of 1 to {MAX_ID_CHARS} characters), not {_show(id_)}')

    question = row.get("question")
    if "question" not in row:
        wrong.append('"question" is missing')
    elif not isinstance(question, str):
        wrong.append(f'"question" must be text, not {_show(question)}')
    else:
        try:
            clean_question(question)
        except QuestionError as err:
            wrong.append(f'"question": {err}')

    history = row.get("history") or []
    problem = _history_problem(history)
    if problem:
        wrong.append(problem)

    lists = {}
    for name in ("gold", "keywords", "forbidden"):
        lists[name], problem = _strings(name, row.get(name))
        if problem:
            wrong.append(problem)

    answerable = row.get("answerable", True)
    if not isinstance(answerable, bool):
        wrong.append(f'"answerable" must be true or false, not {_show(answerable)}')

    if wrong:
        return None, wrong
    return Case(str(id_), question, tuple(history), answerable=answerable, **lists), []


def _history_problem(history) -> str | None:
    """What is wrong with a `history` field, or None: a list of `{"role": "user"|"assistant", "content": text}`."""
    if not isinstance(history, list):
        return f'"history" must be a list of {{"role", "content"}} turns, not {_show(history)}'
    for i, turn in enumerate(history):
        if not isinstance(turn, dict):
            return f'"history"[{i}] must be a {{"role", "content"}} object, not {_show(turn)}'
        for key in ("role", "content"):
            if key not in turn:
                return f'"history"[{i}]["{key}"] is missing'
        if turn["role"] not in ROLES:
            return f'"history"[{i}]["role"] must be "user" or "assistant", not {_show(turn["role"])}'
        if not isinstance(turn["content"], str):
            return f'"history"[{i}]["content"] must be text, not {_show(turn["content"])}'
    return None


def _strings(name: str, value) -> tuple[tuple[str, ...], str | None]:
    """A list-of-strings field, and what is wrong with it: one string is a list of one (`"sqs"` -> `("sqs",)`,
    not its letters); missing or null is empty. An empty string would match every answer, so it is wrong."""
    if value is None:
        return (), None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return (), f'"{name}" must be a list of strings, not {_show(value)}'
    for i, item in enumerate(value):
        if not isinstance(item, str):
            return (), f'"{name}"[{i}] must be a string, not {_show(item)}'
        if not item.strip():
            return (), f'"{name}"[{i}] is empty'
    return tuple(value), None


def _show(value) -> str:
    """A JSON value named for a message, short whatever its size: `42` -> `the number 42`, `[[...]]` -> `a list`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int | float):
        return f"the number {_cut(str(value))}"
    if isinstance(value, str):
        return f"the string {json.dumps(_cut(value), ensure_ascii=False)}"
    return "a list" if isinstance(value, list) else "an object"


def _cut(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_gold(key: str, anchor: str, gold: Iterable[str]) -> bool:
    """A section matches a gold entry by `path#anchor`, or by anchor alone when the entry has no path.

    `("AWS/DynamoDB.md#streams", "streams", ["streams"])` -> True
    """
    return any(key == g if "#" in g else anchor == g for g in gold)


def gold_rank(answer: Answer, gold: Sequence[str], depth: int = 10) -> int | None:
    """1-based rank of the first gold section among the retrieved sections, None if not in the top `depth`."""
    for rank, hit in enumerate(answer.hits[:depth], start=1):
        if is_gold(hit.section.key, hit.section.anchor, gold):
            return rank
    return None


def shown_text(answer: Answer) -> str:
    """Everything the user sees for an answer: its text and the sources shown with it."""
    sources = [c.markdown for c in (*answer.citations, *answer.related)]
    return "\n".join([answer.text, *sources]).lower()


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: `([10, 20, 30, 40], 0.5)` -> 20."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def figures(outcomes: Sequence[Outcome]) -> dict:
    """The figures of `../shared/eval/README.md` over a run."""
    answerable = [o for o in outcomes if o.case.answerable]
    unanswerable = [o for o in outcomes if not o.case.answerable]
    ranks = [gold_rank(o.answer, o.case.gold) for o in answerable]
    keywords = [(k, o) for o in answerable for k in o.case.keywords]
    citations = [(c, o) for o in answerable for c in o.answer.citations]

    def share(count: float, total: int) -> float:
        return round(count / total, 4) if total else 0.0

    return {
        "questions": len(outcomes),
        "answerable": len(answerable),
        "recall@1": share(sum(r is not None and r <= 1 for r in ranks), len(answerable)),
        "recall@3": share(sum(r is not None and r <= 3 for r in ranks), len(answerable)),
        "recall@5": share(sum(r is not None and r <= 5 for r in ranks), len(answerable)),
        "mrr": share(sum(1 / r for r in ranks if r), len(answerable)),
        "keyword_recall": share(sum(k.lower() in o.answer.text.lower() for k, o in keywords), len(keywords)),
        "citation_precision": share(sum(is_gold(c.key, c.anchor, o.case.gold) for c, o in citations), len(citations)),
        "cited_gold_rate": share(
            sum(any(is_gold(c.key, c.anchor, o.case.gold) for c in o.answer.citations) for o in answerable),
            len(answerable),
        ),
        "refusal_accuracy": share(sum(o.answer.refused for o in unanswerable), len(unanswerable)),
        "false_refusal_rate": share(sum(o.answer.refused for o in answerable), len(answerable)),
        "forbidden_leaks": sum(
            any(f.lower() in shown_text(o.answer) for f in o.case.forbidden) for o in outcomes
        ),
        "p50_ms": round(percentile([o.ms for o in outcomes], 0.5), 1),
        "p95_ms": round(percentile([o.ms for o in outcomes], 0.95), 1),
        **llm_figures(outcomes),
    }


def llm_figures(outcomes: Sequence[Outcome]) -> dict:
    """How an LLM answerer fared, when one was asked: answers it wrote, sentences of its that were dropped,
    answers the extractive one stood in for, and its median speed. Nothing for an extractive run."""
    timed = [o.answer.generation for o in outcomes if o.answer.generation is not None]
    if not timed:
        return {}
    return {
        "llm_answers": sum(o.answer.answerer != "extractive" and not o.answer.refused for o in outcomes),
        "llm_refusals": sum(o.answer.answerer != "extractive" and o.answer.refused for o in outcomes),
        "extractive_fallbacks": sum(any("extractive answer instead" in n for n in o.answer.notices) for o in outcomes),
        "dropped_sentences": sum(len(o.answer.dropped) for o in outcomes),
        "tokens_per_second_p50": round(percentile([g.tokens_per_second for g in timed], 0.5), 1),
        "first_token_s_p50": round(percentile([g.first_token for g in timed], 0.5), 2),
        "first_token_s_p95": round(percentile([g.first_token for g in timed], 0.95), 2),
    }


def run_cases(assistant, cases: Sequence[Case]) -> list[Outcome]:
    """Every case through the assistant, timed warm (one untimed question first loads the model)."""
    if cases:
        assistant.ask(cases[0].question)
    outcomes = []
    for case in cases:
        started = time.perf_counter()
        answer = assistant.ask(case.question, list(case.history))
        outcomes.append(Outcome(case, answer, (time.perf_counter() - started) * 1000))
    return outcomes


def table(outcomes: Sequence[Outcome]) -> str:
    """One line a question: id, gold rank, refusal, citations, keywords found, time."""
    lines = [f"{'id':<20} {'rank':>4} {'ref':>3} {'kw':>5} {'ms':>6}  cited"]
    for o in outcomes:
        rank = gold_rank(o.answer, o.case.gold) if o.case.answerable else None
        found = sum(k.lower() in o.answer.text.lower() for k in o.case.keywords)
        expected = "no" if not o.case.answerable else ""
        refused = "yes" if o.answer.refused else "no"
        mark = " " if (refused == "yes") == (expected == "no") else "!"
        cited = ", ".join(c.anchor for c in o.answer.citations) or "-"
        lines.append(
            f"{o.case.id[:20]:<20} {rank or '-':>4} {refused:>3}{mark} {found}/{len(o.case.keywords):<3} "
            f"{o.ms:6.1f}  {cited}"
        )
    return "\n".join(lines)
