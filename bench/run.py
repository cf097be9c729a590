"""Speed benchmarks as ratios against baselines measured in the same run (see bench/README.md)."""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Questions of several shapes: definitions, comparisons, follow-up free paraphrases, one out of scope.
QUESTIONS = [
    "What is Elasticache?",
    "Which service stores Docker images?",
    "How do security groups differ from NACLs?",
    "Why would I deploy across two regions?",
    "What does kube-proxy do?",
    "Can EBS volumes be shared between instances?",
    "What is AWS Step Functions?",
]
REPEATS = 5


def median_ms(fn, repeats: int = REPEATS) -> float:
    times = []
    for question in QUESTIONS:
        for _ in range(repeats):
            started = time.perf_counter()
            fn(question)
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    from assistant.app import build
    from assistant.settings import Settings

    notes = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "corpus" / "notes"
    with tempfile.TemporaryDirectory() as index_dir:
        settings = Settings(notes_dir=notes, index_dir=Path(index_dir))
        app = build(settings, sync=False, say=lambda _: None)
        app.embeddings.embed_query("load the model before timing")
        started = time.perf_counter()
        full = app.reindex()
        full_s = time.perf_counter() - started
        started = time.perf_counter()
        again = app.reindex()
        again_s = time.perf_counter() - started

        search = app.assistant.search
        embed_ms = median_ms(app.embeddings.embed_query)
        retrieve_ms = median_ms(lambda q: search.search(q, 10))
        answer_ms = median_ms(app.assistant.ask)

    results = {
        "notes": str(notes),
        "sections_indexed": full.added,
        "full_index_s": round(full_s, 3),
        "reindex_unchanged_s": round(again_s, 3),
        "reindex_embedded": again.embedded,
        "reindex_over_full": round(again_s / full_s, 4),
        "embed_ms": round(embed_ms, 2),
        "retrieve_ms": round(retrieve_ms, 2),
        "answer_ms": round(answer_ms, 2),
        "retrieve_over_embed": round(retrieve_ms / embed_ms, 2),
        "answer_over_retrieve": round(answer_ms / retrieve_ms, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
