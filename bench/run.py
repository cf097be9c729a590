"""Speed and memory in one run, against baselines measured in the same run (see bench/README.md).

    .venv/bin/python bench/run.py [--notes DIR] [--json]

With `--json`, one JSON line: sections, texts_embedded, index_s, baseline_index_s (LangChain's markdown recipe on
the same notes: MarkdownHeaderTextSplitter + Chroma + the same MiniLM through sentence-transformers on torch, as
LangChain users run it), reindex_unchanged_s, edit_one_s, embed_p50_ms, search_p50_ms, answer_p50_ms,
answer_first_p50_ms (each question as the first about its sections: their units embedded then), cold_ask_s
(the whole process) and cold_ask_first_word_s (until the answer's first byte) for a question whose sections were
never asked about, cold_ask_again_first_word_s for the same question in another new process (their units kept on
disk), peak_rss_mb, and the ratios the README reports. Our side uses the embedder the settings name
(NOTES_EMBEDDER: the float ONNX export by default).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

QUESTIONS = 12  # questions per timing, drawn from the notes' own headings so any notes folder works
REPEATS = 3


def p50_ms(fn, questions: list[str], repeats: int = REPEATS) -> float:
    times = []
    for question in questions:
        for _ in range(repeats):
            started = time.perf_counter()
            fn(question)
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def questions_for(sections) -> list[str]:
    """ "What is X?" for headings spread over the notes, and one question they cannot answer."""
    content = [s for s in sections if s.indexable]
    step = max(1, len(content) // QUESTIONS)
    picked = [f"What is {s.title}?" for s in content[::step][: QUESTIONS - 1]]
    return [*picked, "What does the Raft leader election timeout do?"]


def edit_one(notes: Path, sections) -> None:
    """Add a sentence to the content section in the middle of the notes, as a person editing one note would."""
    content = [s for s in sections if s.indexable]
    target = content[len(content) // 2]
    path = notes / target.path
    lines = path.read_text(encoding="utf-8").split("\n")
    lines.insert(target.line_end, "One more sentence added while benchmarking a one-section edit.")
    path.write_text("\n".join(lines), encoding="utf-8")


def cold_run(command: list[str]) -> tuple[float, float]:
    """Seconds until `command` exits, and until it prints its first byte (an answer's first word)."""
    started = time.perf_counter()
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as process:
        process.stdout.read(1)
        first = time.perf_counter() - started
        process.stdout.read()
        if process.wait() != 0:
            raise subprocess.CalledProcessError(process.returncode, command)
    return time.perf_counter() - started, first


def main() -> int:
    from assistant.app import build
    from assistant.embedder import make_embeddings
    from assistant.settings import Settings
    from bench.baseline_langchain import index_recipe, recipe_documents
    from index.embeddings import MiniLMEmbeddings

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--notes", default=str(ROOT / "corpus" / "notes"), help="notes folder (default: bundled notes)")
    p.add_argument("--json", action="store_true", help="print one JSON line only")
    args = p.parse_args()

    # Both models loaded before any timing: the recipe's (sentence-transformers) and ours (ONNX by default).
    reference = MiniLMEmbeddings()
    chosen = Settings.from_env()
    if not chosen.embed_threads:
        # Both sides get the same cores: torch uses every core, and the default (cores free by the 1-minute load
        # average) counts the recipe's model load just before as busy, which gave ours 1 thread to torch's 2.
        import torch

        chosen = chosen.with_(embed_threads=torch.get_num_threads())
    embeddings = make_embeddings(chosen)
    for model in (reference, embeddings):
        model.embed_query("load the model before timing")
    with tempfile.TemporaryDirectory() as tmp:
        notes = Path(tmp) / "notes"
        shutil.copytree(args.notes, notes, symlinks=True)

        docs = recipe_documents(notes)
        started, cpu = time.perf_counter(), time.process_time()
        index_recipe(docs, reference, str(Path(tmp) / "recipe"))
        baseline_s, baseline_cpu = time.perf_counter() - started, time.process_time() - cpu

        settings = Settings(notes_dir=notes, index_dir=Path(tmp) / "index")
        app = build(settings, embeddings=embeddings, sync=False, say=lambda _: None)
        started, cpu = time.perf_counter(), time.process_time()
        full = app.reindex()
        index_s, index_cpu = time.perf_counter() - started, time.process_time() - cpu
        started = time.perf_counter()
        app.reindex()
        unchanged_s = time.perf_counter() - started
        edit_one(notes, app.index.sections)
        started = time.perf_counter()
        edited = app.reindex()
        edit_s = time.perf_counter() - started

        questions = questions_for(app.index.sections)
        embed_ms = p50_ms(embeddings.embed_query, questions)
        search_ms = p50_ms(lambda q: app.assistant.search.search(q, 10), questions)
        answer_ms = p50_ms(app.assistant.ask, questions)

        def first_ask(question: str) -> None:
            # As the first question about these sections: their units embedded, none kept from before.
            app.index.unit_cache.clear()
            app.index.unit_cache.keep_only(())
            getattr(embeddings, "forget", lambda: None)()
            app.assistant.ask(question)

        answer_first_ms = p50_ms(first_ask, questions)
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        # A cold `ask` from a shell: a new process, the model loaded from disk, the index opened.
        command = [
            sys.executable,
            "-m",
            "assistant.cli",
            "--index-dir",
            str(settings.index_dir),
            "ask",
            questions[0],
            "--notes",
            str(notes),
        ]
        # First about sections never asked (no unit vectors kept on disk), then the same question again.
        app.index.unit_cache.keep_only(())
        cold_s, first_word_s = cold_run(command)
        again_s, again_first_word_s = cold_run(command)

    results = {
        "notes": args.notes,
        "sections": len([s for s in app.index.sections if s.indexable]),
        "texts_embedded": full.embedded,
        "index_s": round(index_s, 3),
        "baseline_index_s": round(baseline_s, 3),
        "baseline_texts": len(docs),
        "reindex_unchanged_s": round(unchanged_s, 3),
        "edit_one_s": round(edit_s, 3),
        "edit_one_embedded": edited.embedded,
        "embed_p50_ms": round(embed_ms, 2),
        "search_p50_ms": round(search_ms, 2),
        "answer_p50_ms": round(answer_ms, 2),
        "answer_first_p50_ms": round(answer_first_ms, 2),
        "cold_ask_s": round(cold_s, 2),
        "cold_ask_first_word_s": round(first_word_s, 2),
        "cold_ask_again_first_word_s": round(again_first_word_s, 2),
        "embedder": getattr(embeddings, "model_id", type(embeddings).__name__),
        "peak_rss_mb": round(peak_rss, 1),
        "index_over_baseline": round(index_s / baseline_s, 2),
        # CPU seconds (all threads): steadier than wall time when other work shares the cores, since a side
        # running 2 threads then gets twice the CPU share of a side running 1.
        "index_cpu_s": round(index_cpu, 3),
        "baseline_index_cpu_s": round(baseline_cpu, 3),
        "index_over_baseline_cpu": round(index_cpu / baseline_cpu, 2),
        "unchanged_over_index": round(unchanged_s / index_s, 4),
        "answer_over_search": round(answer_ms / search_ms, 2),
        "search_over_embed": round(search_ms / embed_ms, 2),
    }
    if args.json:
        print(json.dumps(results))
        return 0
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
