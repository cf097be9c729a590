"""The eval: questions in `../shared/eval` format through the chat pipeline, and the figures it reaches."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from assistant.types import Answer


class EvalFileError(ValueError):
    """The questions file cannot be read; the message names the line."""


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
    """Cases of a JSONL file, one object a line; blank lines skipped."""
    cases = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise EvalFileError(f"cannot read {path}: {err}") from err
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise TypeError(f"a JSON {type(row).__name__}, not an object")
            cases.append(
                Case(
                    id=str(row.get("id", n)),
                    question=row["question"],
                    history=tuple(row.get("history") or ()),
                    gold=_strings(row.get("gold")),
                    keywords=_strings(row.get("keywords")),
                    answerable=bool(row.get("answerable", True)),
                    forbidden=_strings(row.get("forbidden")),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise EvalFileError(f"{path}:{n}: not a question object ({err})") from err
    return cases


def _strings(value) -> tuple[str, ...]:
    """A list of strings from a field: one string is a list of one (`"sqs"` -> `("sqs",)`, not its letters)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise TypeError(f"expected a list of strings, got {value!r}")


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
