"""`bench/run.py --json`, the interface issue 11 fixes: one JSON line with the named figures, on a small notes
folder. Only the shape and the counts are checked; what the timings are is for the bench to report, not for a
test to assert."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# The keys the issue names ("at least"), each a number.
REQUIRED = (
    "sections",
    "texts_embedded",
    "index_s",
    "baseline_index_s",
    "reindex_unchanged_s",
    "edit_one_s",
    "embed_p50_ms",
    "search_p50_ms",
    "answer_p50_ms",
    "cold_ask_s",
    "peak_rss_mb",
)
NOTES = """# Farm

## Alpha
Alpha keeps apples and apricots in the barn. The barn has a red door.

## Bravo
Bravo bakes bread and butter buns every morning.

- rye bread
- spelt rolls

## Charlie
Charlie cooks curry with cumin and coriander.
"""


@pytest.mark.model
def test_bench_run_prints_one_json_line_with_the_named_figures(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "farm.md").write_text(NOTES, encoding="utf-8")
    # The user's model cache, as the bench uses it: the ONNX export (~20 s) is made there once if it is missing.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NOTES_EMBED_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--notes", str(notes), "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout[-2000:]
    result = json.loads(lines[0])
    missing = [key for key in REQUIRED if not isinstance(result.get(key), int | float)]
    assert not missing, result
    assert result["sections"] == 3  # Farm itself has no text of its own: only Alpha, Bravo and Charlie are indexed
    assert result["texts_embedded"] > result["edit_one_embedded"] > 0  # the edit re-embeds one section only
    assert result["baseline_texts"] == 3  # the recipe embeds one document per section with text, too
    assert list(notes.iterdir()) == [notes / "farm.md"]
    assert (notes / "farm.md").read_text(encoding="utf-8") == NOTES  # the bench edits a copy, never the notes
