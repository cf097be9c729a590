"""The eval, end to end with the real model: figures on the held-out notes (shipped here) and on the dev set.

The held-out notes are a different person's notes in another style; the method was not tuned question by
question on them. Floors sit a little under the measured figures (README) so a regression fails, not noise.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.app import build
from assistant.evaluation import figures, load_cases, run_cases
from assistant.settings import Settings
from tests.conftest import ROOT, SHARED_EVAL

pytestmark = pytest.mark.model

HELDOUT = ROOT / "tests" / "data" / "heldout"


def measure(minilm, notes: Path, questions: Path, index_dir: Path) -> dict:
    app = build(Settings(notes_dir=notes, index_dir=index_dir), embeddings=minilm, say=lambda _: None)
    return figures(run_cases(app.assistant, load_cases(questions)))


# Floors (>=) and ceilings (<=) per figure.
HELDOUT_FLOORS = {
    "recall@3": 0.9,
    "mrr": 0.85,
    "keyword_recall": 0.75,
    "citation_precision": 0.85,
    "refusal_accuracy": 0.8,
}
# The issues' targets for the dev set.
DEV_FLOORS = {
    "recall@1": 0.90,
    "recall@3": 0.97,
    "mrr": 0.93,
    "keyword_recall": 0.85,
    "citation_precision": 0.90,
    "cited_gold_rate": 0.95,
    "refusal_accuracy": 0.9,
}
CEILINGS = {"false_refusal_rate": 0.05, "forbidden_leaks": 0}


def check(got: dict, floors: dict) -> None:
    below = {k: got[k] for k, floor in floors.items() if got[k] < floor}
    above = {k: got[k] for k, ceiling in CEILINGS.items() if got[k] > ceiling}
    assert not below, got
    assert not above, got


def test_heldout_figures(minilm, tmp_path):
    check(measure(minilm, HELDOUT / "notes", HELDOUT / "questions.jsonl", tmp_path), HELDOUT_FLOORS)


@pytest.mark.skipif(not SHARED_EVAL.exists(), reason="../shared/eval is not beside this checkout")
def test_dev_set_reaches_the_issue_targets(minilm, tmp_path):
    check(measure(minilm, SHARED_EVAL.parent.parent / "notes", SHARED_EVAL, tmp_path), DEV_FLOORS)


# Declining near misses ("the max SQS message size" in notes about SQS that never give it) was calibrated on the
# AWS notes; the system-design notes are where it is checked. Measured: refusal 0.88, false refusals 0.04.
CHECK_FLOORS = {"refusal_accuracy": 0.8, "recall@3": 0.85, "keyword_recall": 0.7}


@pytest.mark.skipif(not SHARED_EVAL.exists(), reason="../shared/eval is not beside this checkout")
def test_near_misses_are_declined_on_notes_they_were_not_calibrated_on(minilm, tmp_path):
    questions = ROOT / "bench" / "calib" / "sdp.jsonl"
    check(measure(minilm, SHARED_EVAL.parent.parent / "notes-sdp", questions, tmp_path), CHECK_FLOORS)
