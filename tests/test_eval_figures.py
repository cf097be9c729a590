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


def test_heldout_figures(minilm, tmp_path):
    got = measure(minilm, HELDOUT / "notes", HELDOUT / "questions.jsonl", tmp_path)
    assert got["recall@3"] >= 0.9, got
    assert got["mrr"] >= 0.85, got
    assert got["keyword_recall"] >= 0.75, got
    assert got["citation_precision"] >= 0.85, got
    assert got["refusal_accuracy"] >= 0.8, got
    assert got["false_refusal_rate"] <= 0.05, got
    assert got["forbidden_leaks"] == 0, got


@pytest.mark.skipif(not SHARED_EVAL.exists(), reason="../shared/eval is not beside this checkout")
def test_dev_set_reaches_the_issue_targets(minilm, tmp_path):
    got = measure(minilm, SHARED_EVAL.parent.parent / "notes", SHARED_EVAL, tmp_path)
    assert got["recall@1"] >= 0.90, got
    assert got["recall@3"] >= 0.97, got
    assert got["mrr"] >= 0.93, got
    assert got["keyword_recall"] >= 0.85, got
    assert got["citation_precision"] >= 0.90, got
    assert got["cited_gold_rate"] >= 0.95, got
    assert got["refusal_accuracy"] >= 0.9, got
    assert got["false_refusal_rate"] <= 0.05, got
    assert got["forbidden_leaks"] == 0, got
