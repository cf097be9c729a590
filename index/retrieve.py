"""Hybrid retrieval: dense chunk and unit search fused with BM25, deduplicated to sections."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

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
    """BM25 over the indexable sections, built in memory from the manifest (milliseconds for notes)."""

    def __init__(self, sections: Sequence[Section]) -> None:
        self.sections = [s for s in sections if s.indexable]
        documents = [keyword_document(s) for s in self.sections]
        # Terms as words (for refusal, spelling and what is shown) and how many sections use each.
        self.term_sections = Counter(term for doc in documents for term in set(doc))
        self.bm25 = BM25(documents)

    def scores(self, query: str) -> dict[str, float]:
        return {self.sections[i].key: score for i, score in self.bm25.scores(expand(query)).items()}

    def vocabulary(self) -> set[str]:
        return set(self.term_sections)


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
        self.keyword = KeywordIndex(index.sections)
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
