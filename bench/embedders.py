"""The ONNX embedders (float and int8) against sentence-transformers, the reference, on every text a notes
folder embeds.

    .venv/bin/python bench/embedders.py [--notes DIR ...] [--json]

Per folder and ONNX embedder: how many texts, the min / 1st percentile / mean cosine between its vector and the
reference's for the same text, the text that differs most, and the CPU seconds each took for all texts (models
loaded before timing; CPU time, since other work on the machine makes wall time swing).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def embedded_texts(notes: Path) -> list[str]:
    """Every text embedded for `notes`: chunks of its indexable sections (at index time) and their units (when a
    question needs them)."""
    from assistant.app import read_sections
    from corpus.chunking import section_chunks, section_units
    from index.units import unit_embed_text

    sections, _ = read_sections(notes)
    texts: list[str] = []
    for s in sections:
        if s.indexable:
            texts += [c.embed_text for c in section_chunks(s)] + [unit_embed_text(s, u) for u in section_units(s)]
    return texts


def main() -> int:
    import numpy as np

    from assistant.embedder import make_embeddings
    from assistant.settings import Settings

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = [str(ROOT / "corpus" / "notes"), str(ROOT.parent / "shared" / "notes-sdp")]
    p.add_argument("--notes", nargs="*", default=default, help="notes folders (default: bundled and SDP notes)")
    p.add_argument("--json", action="store_true", help="print one JSON line only")
    args = p.parse_args()

    settings = Settings.from_env()  # the ONNX export is kept under $XDG_CACHE_HOME, as in the app
    names = ("torch", "onnx", "onnx-int8")
    models = {name: make_embeddings(settings.with_(embedder=name)) for name in names}
    for model in models.values():
        model.embed_query("load the model before timing")
    rows = []
    for folder in args.notes:
        texts = embedded_texts(Path(folder))
        timed = {}
        for name, model in models.items():
            started = time.process_time()
            timed[name] = (np.array(model.embed_documents(texts)), time.process_time() - started)
        for name in names[1:]:
            cosines = (timed[name][0] * timed["torch"][0]).sum(axis=1)
            rows.append(
                {
                    "notes": folder,
                    "embedder": models[name].model_id,
                    "texts": len(texts),
                    "min_cosine": round(float(cosines.min()), 5),
                    "p1_cosine": round(float(np.percentile(cosines, 1)), 5),
                    "mean_cosine": round(float(cosines.mean()), 5),
                    "farthest": texts[int(cosines.argmin())][:80],
                    "cpu_s": round(timed[name][1], 2),
                    "torch_cpu_s": round(timed["torch"][1], 2),
                }
            )
    print(json.dumps(rows) if args.json else json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
