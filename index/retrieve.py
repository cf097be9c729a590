"""Hybrid retrieval: dense chunk and unit search fused with BM25, deduplicated to sections."""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from langchain_core.embeddings import Embeddings

from corpus.types import Section
from index.fusion import normalize, reciprocal_rank_fusion
from index.keyword import BM25, expand, tokenize

# How many neighbours to pull from each dense list before fusing: enough that a section ranked low by one
# signal and high by another still meets itself in the fusion.
DENSE_CHUNKS = 40
DENSE_UNITS = 80
# The title of a section names its subject; counting its words three times makes "What is ECR?" land on
# "Elastic Container Registry (ECR)" rather than on a long section that mentions ECR once.
TITLE_WEIGHT = 3


@dataclass(frozen=True)
class Hit:
    """One retrieved section and why: fused score, best dense similarity, normalized keyword score."""

    section: Section
    score: float
    dense: float
    keyword: float


@dataclass(frozen=True)
class Retrieval:
    """What one query found, with its vector (the answerer scores units against it)."""

    query: str
    vector: tuple[float, ...]
    hits: tuple[Hit, ...]


def keyword_document(section: Section) -> list[str]:
    """The terms BM25 sees for a section: title words weighted, then parent headings, then the text."""
    title = tokenize(section.title) * TITLE_WEIGHT
    parents = tokenize(" ".join(section.heading_path[:-1]))
    return title + parents + tokenize(section.text)


class KeywordIndex:
    """BM25 over the indexable sections: built when the notes change, from the kept counts of the sections that
    did not, then kept (`to_bytes`) beside the vectors, on disk or in the Chroma server, and loaded at start."""

    def __init__(self, sections: Sequence[Section], bm25: BM25 | None = None, hashes: Sequence[str] = ()) -> None:
        """`bm25`: a kept index of these sections; `hashes`: their content hashes, in order (for `updated`)."""
        self.sections = [s for s in sections if s.indexable]
        self.bm25 = bm25 if bm25 is not None else BM25([keyword_document(s) for s in self.sections])
        self.hashes = list(hashes)

    @classmethod
    def updated(
        cls, previous: KeywordIndex | None, sections: Sequence[Section], hashes: dict[str, str]
    ) -> KeywordIndex:
        """The index of `sections` (content hashes by key): a section `previous` has by its hash keeps its
        counts; only the others are tokenized. On 10,000 sections tokenizing all of them took 7 s."""
        live = [s for s in sections if s.indexable]
        order = [hashes[s.key] for s in live]
        if previous is None or not previous.hashes:
            bm25 = BM25([keyword_document(s) for s in live])
        else:
            old = previous.bm25
            vocab = dict(old.vocab)
            grown = BM25.from_rows(vocab, [])  # encodes new sections over the kept vocabulary
            at = {h: i for i, h in enumerate(previous.hashes)}
            rows = [
                old.row(at[h]) if h in at else grown.encode(keyword_document(s))
                for s, h in zip(live, order, strict=True)
            ]
            bm25 = BM25.from_rows(vocab, rows, old.k1, old.b)
        return cls(live, bm25, order)

    @cached_property
    def term_sections(self) -> Counter[str]:
        """Terms as words (for refusal, spelling and what is shown) and how many sections use each."""
        return Counter(self.bm25.document_frequencies())

    def scores(self, query: str) -> dict[str, float]:
        return {self.sections[i].key: score for i, score in self.bm25.scores(expand(query)).items()}

    def vocabulary(self) -> set[str]:
        return set(self.term_sections)

    def to_bytes(self, fingerprint: str) -> bytes:
        """The index as one `.npz` (plain arrays, no pickles), tagged with what it was built from."""
        out = io.BytesIO()
        hashes = np.array(self.hashes, dtype=np.str_)
        np.savez(out, fingerprint=np.array(fingerprint), hashes=hashes, **self.bm25.arrays())
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, sections: Sequence[Section], fingerprint: str) -> KeywordIndex | None:
        """The kept index when it was built from `fingerprint` (the live sections' content hashes), else None: a
        run that died between writing it and the manifest leaves one that no longer matches."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                if str(arrays["fingerprint"]) != fingerprint:
                    return None
                bm25 = BM25.from_arrays({name: arrays[name] for name in arrays.files})
                hashes = [str(h) for h in arrays["hashes"].tolist()]
        except (OSError, ValueError, KeyError, EOFError):  # unreadable: build it again from the sections
            return None
        return cls(sections, bm25, hashes)


def keyword_fingerprint(sections: Sequence[Section], hashes: dict[str, str]) -> str:
    """Names exactly which section contents, in which order, a keyword index is built from.

    `[a.md#x with content hash 1f2e]` -> sha1 of `a.md#x 1f2e`: editing, adding, removing or reordering changes it.
    """
    digest = hashlib.sha1()
    for s in sections:
        if s.indexable:
            digest.update(f"{s.key} {hashes.get(s.key, '')}\n".encode())
    return digest.hexdigest()[:20]


def fuse_scores(chunks: dict[str, float], units: dict[str, float], keyword: dict[str, float]) -> dict[str, float]:
    """One score per section from the three signals: weighted RRF plus the raw strengths.

    RRF alone throws away how far ahead the leader is; adding the normalized keyword score and the dense
    similarity keeps a clear winner clear.
    """
    rrf = reciprocal_rank_fusion([(chunks, 1.0), (units, 1.0), (keyword, 1.0)], k=10)
    rrf = normalize(rrf)
    kw = normalize(keyword)
    dense = {key: max(chunks.get(key, 0.0), units.get(key, 0.0)) for key in set(chunks) | set(units)}
    keys = set(rrf)
    return {key: rrf[key] + 0.5 * kw.get(key, 0.0) + dense.get(key, 0.0) for key in keys}


class HybridSearch:
    """Embeds a query once and fuses dense and keyword rankings into sections, best first."""

    def __init__(self, index, embeddings: Embeddings) -> None:
        self.index = index
        self.embeddings = embeddings
        # The index's kept keyword index when it has one; a fake index in a unit test gets one built here.
        kept = getattr(index, "keyword", None)
        self.keyword = kept if kept is not None else KeywordIndex(index.sections)
        self.by_key = {s.key: s for s in index.sections}

    def search(self, query: str, k: int = 10, vector: Sequence[float] | None = None) -> Retrieval:
        vec = list(vector) if vector is not None else self.embeddings.embed_query(query)
        chunks: dict[str, float] = {}
        for key, sim in self.index.search_chunks(vec, DENSE_CHUNKS):
            chunks[key] = max(chunks.get(key, -1.0), sim)
        units: dict[str, float] = {}
        for key, sim in self.index.search_units(vec, DENSE_UNITS):
            units[key] = max(units.get(key, -1.0), sim)
        keyword = self.keyword.scores(query)
        fused = fuse_scores(chunks, units, keyword)
        kw = normalize(keyword)
        ordered = sorted(fused, key=lambda key: -fused[key])[:k]
        hits = tuple(
            Hit(self.by_key[key], fused[key], max(chunks.get(key, 0.0), units.get(key, 0.0)), kw.get(key, 0.0))
            for key in ordered
            if key in self.by_key
        )
        return Retrieval(query, tuple(vec), hits)
