"""LangChain's markdown recipe as a baseline, measured on the same questions as our eval.

MarkdownHeaderTextSplitter + Chroma + the same MiniLM, dense top-k, question as typed (no follow-up handling).
Usage: python bench/baseline_langchain.py QUESTIONS.jsonl NOTES_DIR
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def recipe_documents(notes: Path) -> list:
    """The recipe's documents: every note split at its headings, each keyed `path#anchor` of its deepest heading."""
    from langchain_text_splitters import MarkdownHeaderTextSplitter

    from corpus.anchors import slugify

    headers = [("#" * n, f"h{n}") for n in range(1, 7)]
    splitter = MarkdownHeaderTextSplitter(headers, strip_headers=False)
    docs = []
    for path in sorted(notes.rglob("*.md")):
        for doc in splitter.split_text(path.read_text(encoding="utf-8", errors="replace")):
            deepest = [doc.metadata[f"h{n}"] for n in range(1, 7) if f"h{n}" in doc.metadata]
            doc.metadata = {"key": f"{path.relative_to(notes).as_posix()}#{slugify(deepest[-1]) if deepest else ''}"}
            docs.append(doc)
    return docs


def index_recipe(docs: list, embeddings, folder: str):
    """The recipe's vector store over `docs` in a Chroma at `folder`."""
    import chromadb
    from langchain_chroma import Chroma

    client = chromadb.PersistentClient(folder, settings=chromadb.Settings(anonymized_telemetry=False))
    config = {"hnsw": {"space": "cosine"}}
    return Chroma.from_documents(docs, embeddings, client=client, collection_configuration=config)


def main() -> int:
    from assistant.evaluation import is_gold, load_cases
    from index.embeddings import MiniLMEmbeddings

    questions, notes = Path(sys.argv[1]), Path(sys.argv[2])
    docs = recipe_documents(notes)
    with tempfile.TemporaryDirectory() as tmp:
        store = index_recipe(docs, MiniLMEmbeddings(), tmp)
        cases = [c for c in load_cases(questions) if c.answerable]
        ranks = []
        for case in cases:
            keys = list(dict.fromkeys(d.metadata["key"] for d in store.similarity_search(case.question, k=20)))
            rank = next((i for i, k in enumerate(keys[:10], 1) if is_gold(k, k.split("#", 1)[1], case.gold)), None)
            ranks.append(rank)
    n = len(ranks)
    result = {
        "baseline": "langchain MarkdownHeaderTextSplitter + Chroma + MiniLM, dense",
        "answerable": n,
        "recall@1": round(sum(r == 1 for r in ranks if r) / n, 4),
        "recall@3": round(sum(r <= 3 for r in ranks if r) / n, 4),
        "recall@5": round(sum(r <= 5 for r in ranks if r) / n, 4),
        "mrr": round(sum(1 / r for r in ranks if r) / n, 4),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
