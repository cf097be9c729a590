"""Scale: a synthetic notes folder of N sections, indexed and asked, measured as one JSON line.

    .venv/bin/python bench/scale.py --sections 10000 [--embeddings minilm|hashed] [--chroma-url URL] [--keep DIR]

The notes are generated from `--seed` (the same seed gives the same bytes): files of ~40 sections with nested
headings (#, ##, ###), paragraphs of 1-6 sentences, lists, code blocks and tables, section sizes drawn to look
like study notes (median ~45 words, a long tail past 400). Reported: `index_s` (full index), `reindex_unchanged_s`,
`edit_one_s` (one section's text changed), `peak_rss_mb` (of the indexing process), and from a new process that
only opens the index and answers, as a chat or `ask` does: `open_s` (manifest and kept keyword index read),
`search_p50_ms`/`p95`, `answer_p50_ms`/`p95`, `serve_rss_mb` (its peak RSS).

`--embeddings hashed` swaps MiniLM for a deterministic 384-dimension hashing of words (no model): it measures
what the index does at a size whose real embedding would take hours here, and it says so in the JSON.
Run it niced on a shared machine: `OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python bench/scale.py ...`.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import hashlib
import itertools
import json
import math
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from langchain_core.embeddings import Embeddings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SECTIONS_PER_FILE = 40
QUESTIONS = 40
COMMON = (
    "the a of to and in is for on with that by as it from this be are or at can when which each its into how "
    "uses use data service request value time system user file server client process default new set run"
).split()
LANGS = ("python", "bash", "yaml", "sql", "json")


def words(rng: random.Random, count: int) -> list[str]:
    """`count` distinct pseudo-words from syllables: [`"kavoril"`, `"tesmu"`, ...], the same for the same seed."""
    syllables = [c + v for c in "bcdfgklmnprstvz" for v in "aeiou"] + ["qua", "shi", "tho", "xen", "ry"]
    out: set[str] = set()
    while len(out) < count:
        out.add("".join(rng.choice(syllables) for _ in range(rng.choice((2, 2, 3, 3, 4)))))
    return sorted(out)


class Notes:
    """Deterministic synthetic notes: `Notes(seed).write(folder, sections)`."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.vocab = words(self.rng, 20_000)
        self.rng.shuffle(self.vocab)  # which words are common must not follow the alphabet
        # Zipf-like: a few words common across the notes, most rare (as names and jargon are).
        self.cumulative = list(itertools.accumulate(1 / (rank + 1) ** 0.9 for rank in range(len(self.vocab))))
        self.titles: set[str] = set()

    def word(self) -> str:
        if self.rng.random() < 0.45:
            return self.rng.choice(COMMON)
        return self.vocab[bisect.bisect(self.cumulative, self.rng.random() * self.cumulative[-1])]

    def sentence(self) -> str:
        return " ".join(self.word() for _ in range(self.rng.randint(6, 20))).capitalize() + "."

    def title(self) -> str:
        while True:
            name = " ".join(self.rng.choice(self.vocab).capitalize() for _ in range(self.rng.randint(2, 3)))
            if self.rng.random() < 0.3:
                name += f" ({''.join(w[0] for w in name.split()).upper()}{self.rng.randint(1, 99)})"
            if name not in self.titles:
                self.titles.add(name)
                return name

    def body(self) -> str:
        """One section's text: its size drawn log-normally (median ~45 words)."""
        target = int(min(900, max(12, self.rng.lognormvariate(math.log(45), 0.8))))
        parts, size = [], 0
        while size < target:
            kind = self.rng.random()
            if kind < 0.55:
                text = " ".join(self.sentence() for _ in range(self.rng.randint(1, 6)))
            elif kind < 0.8:
                lead = self.sentence()[:-1] + ":"
                items = [
                    " ".join(self.word() for _ in range(self.rng.randint(3, 12))) for _ in range(self.rng.randint(2, 7))
                ]
                text = lead + "\n" + "\n".join(f"- {item}" for item in items)
            elif kind < 0.9:
                lang = self.rng.choice(LANGS)
                lines = [
                    f"{self.word()} = {self.word()}({self.word()}, {self.rng.randint(1, 500)})"
                    for _ in range(self.rng.randint(2, 8))
                ]
                text = f"```{lang}\n" + "\n".join(lines) + "\n```"
            else:
                columns = self.rng.randint(2, 4)
                head = [self.word().capitalize() for _ in range(columns)]
                rows = [[self.word() for _ in range(columns)] for _ in range(self.rng.randint(2, 6))]
                text = "\n".join(
                    ["| " + " | ".join(head) + " |", "|" + "---|" * columns]
                    + ["| " + " | ".join(row) + " |" for row in rows]
                )
            parts.append(text)
            size += len(text.split())
        return "\n\n".join(parts)

    def note(self, sections: int) -> str:
        out = [f"# {self.title()}\n\n{self.body()}\n"]
        depth = 1
        for _ in range(sections - 1):
            depth = max(2, min(4, depth + self.rng.choice((-1, 0, 0, 1))))
            out.append(f"{'#' * depth} {self.title()}\n\n{self.body()}\n")
        return "\n".join(out)

    def write(self, folder: Path, sections: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        topics = words(random.Random(self.rng.random()), max(1, sections // SECTIONS_PER_FILE // 20 + 1))
        for n in range(math.ceil(sections / SECTIONS_PER_FILE)):
            count = min(SECTIONS_PER_FILE, sections - n * SECTIONS_PER_FILE)
            sub = folder / topics[n % len(topics)]
            sub.mkdir(exist_ok=True)
            (sub / f"note-{n:05d}.md").write_text(self.note(count), encoding="utf-8")


class HashedEmbeddings(Embeddings):
    """A model-free stand-in: each word adds a fixed pseudo-random unit vector (from its sha1); normalized.

    Texts sharing words get close vectors, so search has structure; costs microseconds, downloads nothing.
    """

    model_id = "hashed-384"
    dimensions = 384

    def _vector(self, text: str) -> list[float]:
        total = [0.0] * self.dimensions
        for word in text.lower().split():
            digest = hashlib.sha1(word.encode()).digest()
            for i in range(0, 16, 2):
                total[(digest[i] * 256 + digest[i + 1]) % self.dimensions] += 1.0 if digest[i] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in total)) or 1.0
        return [v / norm for v in total]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


def percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def timed(fn, questions: list[str]) -> tuple[float, float]:
    times = []
    for question in questions:
        started = time.perf_counter()
        fn(question)
        times.append((time.perf_counter() - started) * 1000)
    return percentiles(times)


_shown = [-1]


def progress(done: int, total: int) -> None:
    """A line on stderr every 5% of a long index, so a run can be followed (and timed) while it goes."""
    bucket = done * 20 // max(1, total)
    if bucket != _shown[0]:
        _shown[0] = bucket
        print(f"{time.strftime('%H:%M:%S')} embedded {done}/{total}", file=sys.stderr, flush=True)


def serve(settings, embeddings, seed: int) -> dict:
    """Open the index as a new app would and ask it questions: open time, search and answer p50/p95, peak RSS."""
    from assistant.app import build

    started = time.perf_counter()
    fresh = build(settings, embeddings=embeddings, sync=False, say=lambda _: None)
    with fresh.reading():
        fresh.assistant.search.search("warm up", 10)
    opened = round(time.perf_counter() - started, 2)
    content = [s for s in fresh.index.sections if s.indexable]
    rng = random.Random(seed)
    picked = rng.sample(content, min(QUESTIONS, len(content)))
    questions = [f"What is {s.title}?" for s in picked[: QUESTIONS // 2]]
    questions += [f"What about {' '.join(s.text.split()[3:9])}?" for s in picked[QUESTIONS // 2 :]]
    fresh.assistant.ask(questions[0])
    search = timed(lambda q: fresh.assistant.search.search(q, 10), questions)
    answer = timed(lambda q: fresh.assistant.ask(q), questions)
    top1 = sum(
        fresh.assistant.search.search(q, 1).hits[0].section.key == s.key
        for q, s in zip(questions[: QUESTIONS // 2], picked, strict=False)
    ) / max(1, QUESTIONS // 2)
    return {
        "open_s": opened,
        "search_p50_ms": round(search[0], 1),
        "search_p95_ms": round(search[1], 1),
        "answer_p50_ms": round(answer[0], 1),
        "answer_p95_ms": round(answer[1], 1),
        "title_question_top1": round(top1, 3),
        "serve_rss_mb": round(own_peak_rss_kb() / 1024, 1),
    }


def own_peak_rss_kb() -> int:
    """This process's peak RSS in kB: Linux's VmHWM, which starts afresh at exec. `ru_maxrss` does not: a child
    started by a process holding 1.8 GB reported 1.8 GB."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> int:
    from assistant.app import build
    from assistant.embedder import make_embeddings
    from assistant.settings import Settings
    from bench.run import edit_one

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sections", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--embeddings", choices=("minilm", "hashed"), default="minilm")
    p.add_argument("--chroma-url", help="index into this Chroma server instead of an embedded index")
    p.add_argument("--keep", help="keep the notes and index in this folder (reused when it has them)")
    p.add_argument("--generate-only", action="store_true", help="write the notes and stop")
    p.add_argument("--serve-only", action="store_true", help=argparse.SUPPRESS)  # the child that opens and asks
    args = p.parse_args()

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="scale-"))
    notes = work / f"notes-{args.sections}-{args.seed}"
    started = time.perf_counter()
    if not notes.exists():
        Notes(args.seed).write(notes, args.sections)
    generate_s = time.perf_counter() - started
    if args.generate_only:
        print(json.dumps({"notes": str(notes), "generate_s": round(generate_s, 2)}))
        return 0
    settings = Settings(
        notes_dir=notes, index_dir=work / f"index-{args.sections}-{args.embeddings}", chroma_url=args.chroma_url
    )
    embeddings = HashedEmbeddings() if args.embeddings == "hashed" else make_embeddings(settings)
    embeddings.embed_query("load the model before timing")
    if args.serve_only:
        print(json.dumps(serve(settings, embeddings, args.seed)))
        return 0
    results: dict = {
        "sections_asked": args.sections,
        "embeddings": args.embeddings,
        "seed": args.seed,
        "mode": "server" if args.chroma_url else "embedded",
        "generate_s": round(generate_s, 2),
    }
    try:
        app = build(settings, embeddings=embeddings, sync=False, say=lambda _: None)
        started = time.perf_counter()
        full = app.reindex(progress=progress)
        results |= {
            "index_s": round(time.perf_counter() - started, 2),
            "texts_embedded": full.embedded,
            "sections": len([s for s in app.index.sections if s.indexable]),
        }
        started = time.perf_counter()
        again = app.reindex()
        results |= {
            "reindex_unchanged_s": round(time.perf_counter() - started, 3),
            "unchanged_embedded": again.embedded,
        }
        edit_one(notes, app.index.sections)
        started = time.perf_counter()
        edited = app.reindex()
        results |= {"edit_one_s": round(time.perf_counter() - started, 3), "edit_one_embedded": edited.embedded}

        app.index.close()  # the child opens it
        # A new process opens the index and answers, as `ask` or the app does: its own time and memory.
        child = [sys.executable, __file__, "--serve-only", "--keep", str(work), "--sections", str(args.sections)]
        child += ["--seed", str(args.seed), "--embeddings", args.embeddings]
        child += ["--chroma-url", args.chroma_url] if args.chroma_url else []
        results |= json.loads(subprocess.run(child, capture_output=True, text=True, check=True).stdout)
    finally:
        results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
