"""Hybrid retrieval: dense chunk search fused with BM25, then with the units of the best sections, by section."""

from __future__ import annotations

import hashlib
import io
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from langchain_core.embeddings import Embeddings

from corpus.types import Section
from index.fusion import normalize, ranks, reciprocal_rank_fusion
from index.keyword import BM25, expand, in_title, keyword_terms, tokenize

# How many neighbours to pull from the dense list before fusing: enough that a section ranked low by one signal
# and high by another still meets itself in the fusion.
DENSE_CHUNKS = 40
# Sections whose units (sentences, list items) are scored against the question: the best of chunks and keywords
# fused. Units are embedded when a question first needs them (`index.units`), so this bounds that work. Against
# the index-time units channel it replaced (the 80 nearest units of all sections): 8 and 12 left every figure of
# the dev sets (aws_dev, sdp_dev) as it was, and of heldout, calib_aws, calib_sdp, blind_sdp and blind_repo;
# blind_mine lost one refusal with both, blind_aws gained one with 8. 8 is what an answer reads (`top_k`), so
# its units are embedded once for both: a first question on ../shared/notes-sdp took 118 ms at p50 (12: 271 ms).
UNIT_SECTIONS = 8
# Keyword scoring is BM25F (`index.keyword.BM25`): a section's headings (its title and the headings above it)
# are a field of their own, a word there counting as much as TITLE_WEIGHT words of text, normalized by the
# headings' length (TITLE_B), the text by its own (BODY_B). Against one field with the title repeated three times
# and b=0.75: system-design dev recall@1 .84 -> .89, citation precision .80 -> .85, calib_sdp recall@1 .80 -> .88,
# and every AWS dev and held-out figure kept. Chosen on the dev and calibration sets of the AWS and system-design
# notes and on tests/test_answers.py: the system-design figures held from text b 0.3 to 0.75, title b 0 to 0.75
# and weights 2 to 3.5; the AWS notes set the window. Their long "What is kubernetes ?" section outranks "Elastic
# Kubernetes Service (EKS)" for "Which managed service runs Kubernetes for me?" with a text b of 0.5 (2.24 vs
# 2.22: a near tie either way), and "Can Route 53 distribute traffic between two regions?" cites the Route 53
# definition over "Between two regions" with 0.65 or more (or a title b of 0.75); 0.55-0.6 with weights 3-3.5
# and title b 0.25-0.5 kept all of them. Checked on the held-out notes (no figure moved) and reported on the
# blind sets (none went down).
TITLE_WEIGHT = 3.0
TITLE_B = 0.4
BODY_B = 0.6
K1 = 1.2
# What `keyword_document` counts, named in a kept keyword index's fingerprint (`pairs_fingerprint`): one kept by
# another version is not read (its sections are tokenized again) and is replaced at the next write. 2: headings'
# hyphenated words; 3: headings as a BM25F field.
KEYWORD_TERMS = 3


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


def _bm25(documents: Iterable[Sequence[str]]) -> BM25:
    return BM25(documents, K1, BODY_B, TITLE_B, TITLE_WEIGHT)


def keyword_document(section: Section) -> list[str]:
    """The terms BM25 sees for a section: its headings' words (the title field), then its text's.

    Headings count their hyphenated words whole as well (`compounds`): a heading names a thing, and
    "Write-through" is not "Write-behind". The text does not: there they only lengthened long sections, which
    reordered a near tie on ../shared/notes-sdp (sd-pastebin-url) and fixed nothing headings did not.
    """
    return in_title(keyword_terms(" ".join(section.heading_path))) + tokenize(section.text)


class KeywordIndex:
    """BM25 over the indexable sections: built when the notes change, from the kept counts of the sections that
    did not, then kept (`to_bytes`) beside the vectors, on disk or in the Chroma server, and loaded at start."""

    def __init__(self, sections: Sequence[Section], bm25: BM25 | None = None, hashes: Sequence[str] = ()) -> None:
        """`bm25`: a kept index of these sections; `hashes`: their content hashes, in order (for `updated`)."""
        self.sections = [s for s in sections if s.indexable]
        self.bm25 = bm25 if bm25 is not None else _bm25(keyword_document(s) for s in self.sections)
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
            # One section's terms at a time: all of them at once were 4 million strings on 50,000 sections.
            bm25 = _bm25(keyword_document(s) for s in live)
        else:
            old = previous.bm25
            vocab = dict(old.vocab)
            grown = BM25.from_rows(vocab, [])  # encodes new sections over the kept vocabulary
            bm25 = None
            if len(previous.hashes) == len(order):
                # The same sections in the same places but a few (an edit): those rows replaced in place.
                changed = [i for i, (was, now) in enumerate(zip(previous.hashes, order, strict=True)) if was != now]
                if len(changed) <= max(1, len(order) // 100):
                    rows = {i: grown.encode(keyword_document(live[i])) for i in changed}
                    bm25 = old.replaced(vocab, rows) if rows else old
            if bm25 is None:
                at = {h: i for i, h in enumerate(previous.hashes)}
                rows = [
                    old.row(at[h]) if h in at else grown.encode(keyword_document(s))
                    for s, h in zip(live, order, strict=True)
                ]
                bm25 = BM25.from_rows(vocab, rows, *old.params)
        index = cls(live, bm25, order)
        if previous is not None and previous.hashes and "title_terms" in previous.__dict__:
            # Title counts follow the sections that came and went (tokenizing 10,000 titles took 0.14 s).
            # A content hash names the section's key and title, so a kept hash is a kept title.
            kept, had = set(order), set(previous.hashes)
            titles = previous.title_terms.copy()
            titles.subtract(
                t
                for s, h in zip(previous.sections, previous.hashes, strict=True)
                if h not in kept
                for t in set(tokenize(s.title))
            )
            titles.update(t for s, h in zip(live, order, strict=True) if h not in had for t in set(tokenize(s.title)))
            index.__dict__["title_terms"] = Counter({t: n for t, n in titles.items() if n > 0})
        return index

    def over(self, sections: Sequence[Section]) -> KeywordIndex:
        """This index over `sections` of the same contents (line numbers may differ), its counts carried over."""
        index = KeywordIndex(sections, self.bm25, self.hashes)
        for name in ("title_terms", "term_sections", "keys"):
            if name in self.__dict__:
                index.__dict__[name] = self.__dict__[name]
        return index

    @cached_property
    def title_terms(self) -> Counter[str]:
        """Terms of section titles and how many titles use each (a title counts a term once)."""
        return Counter(t for s in self.sections for t in set(tokenize(s.title)))

    @cached_property
    def term_sections(self) -> Counter[str]:
        """Terms as words (for refusal, spelling and what is shown) and how many sections use each."""
        return Counter(self.bm25.document_frequencies())

    @cached_property
    def keys(self) -> list[str]:
        """The sections' keys, in order: a common word scores 10,000 of 30,000 sections, and asking each its key
        took 6 ms of every query."""
        return [s.key for s in self.sections]

    @cached_property
    def key_order(self) -> np.ndarray:
        """Each section's place among the keys sorted as strings: `ranks` breaks ties by key."""
        order = np.empty(len(self.keys), dtype=np.int64)
        order[sorted(range(len(self.keys)), key=self.keys.__getitem__)] = np.arange(len(self.keys))
        return order

    def scores(self, query: str) -> dict[str, float]:
        keys = self.keys
        return {keys[i]: score for i, score in self.bm25.scores(expand(query)).items()}

    def vocabulary(self) -> set[str]:
        return set(self.term_sections)

    def to_bytes(self, fingerprint: str) -> bytes:
        """The index as one `.npz` (plain arrays, no pickles), tagged with what it was built from."""
        out = io.BytesIO()
        hashes = np.array(self.hashes, dtype=np.str_)
        np.savez(out, fingerprint=np.array(fingerprint), hashes=hashes, **self.bm25.arrays())
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, sections: Sequence[Section], fingerprint: str | None) -> KeywordIndex | None:
        """The kept index when it was built from `fingerprint` (the live sections' content hashes), else None: a
        run that died between writing it and the manifest leaves one that no longer matches. `fingerprint` None
        takes it whatever it was built from, as the kept counts that `updated` starts from."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                if fingerprint is not None and str(arrays["fingerprint"]) != fingerprint:
                    return None
                if not keyword_current(str(arrays["fingerprint"])):
                    return None  # counted other terms: its counts cannot be reused either
                bm25 = BM25.from_arrays({name: arrays[name] for name in arrays.files})
                hashes = [str(h) for h in arrays["hashes"].tolist()]
        except (OSError, ValueError, KeyError, EOFError):  # unreadable: build it again from the sections
            return None
        return cls(sections, bm25, hashes)


def keyword_fingerprint(sections: Sequence[Section], hashes: dict[str, str]) -> str:
    """Names exactly which section contents, in which order, a keyword index is built from.

    `[a.md#x with content hash 1f2e]` -> sha1 of `a.md#x 1f2e`: editing, adding, removing or reordering changes it.
    """
    return pairs_fingerprint((s.key, hashes.get(s.key, "")) for s in sections if s.indexable)


def pairs_fingerprint(pairs: Iterable[tuple[str, str]]) -> str:
    """`keyword_fingerprint` from the indexable sections' (key, content hash) pairs, in order."""
    # Named by the version of the terms counted too (`keyword_current`): a manifest naming a kept index of other
    # terms never matches, and the next write keeps a new one with a manifest written whole.
    listed = "".join(f"{key} {h}\n" for key, h in pairs)
    return f"t{KEYWORD_TERMS}-" + hashlib.sha1(listed.encode()).hexdigest()[:20]


def keyword_current(fingerprint: str) -> bool:
    """Whether a kept keyword index of `fingerprint` counted the terms this version counts."""
    return fingerprint.startswith(f"t{KEYWORD_TERMS}-")


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


class SectionsByKey(Mapping[str, Section]):
    """`{key: section}` over a list of sections and a dict of their places by key, without a dict of its own."""

    def __init__(self, positions: Mapping[str, int], sections: Sequence[Section]) -> None:
        self._positions, self._sections = positions, sections

    def __getitem__(self, key: str) -> Section:
        return self._sections[self._positions[key]]

    def __contains__(self, key: object) -> bool:
        return key in self._positions

    def __iter__(self) -> Iterator[str]:
        return iter(self._positions)

    def __len__(self) -> int:
        return len(self._positions)


class HybridSearch:
    """Embeds a query once and fuses dense and keyword rankings into sections, best first."""

    def __init__(self, index, embeddings: Embeddings) -> None:
        self.index = index
        self.embeddings = embeddings
        # The index's kept keyword index when it has one; a fake index in a unit test gets one built here.
        kept = getattr(index, "keyword", None)
        self.keyword = kept if kept is not None else KeywordIndex(index.sections)
        # The index's own places by key when it keeps them (a sync has them): building this dict again asked
        # 100,000 sections their key at every re-index.
        positions = getattr(index, "positions", None)
        self.by_key: Mapping[str, Section] = (
            SectionsByKey(positions(), index.sections) if positions else {s.key: s for s in index.sections}
        )

    def search(self, query: str, k: int = 10, vector: Sequence[float] | None = None) -> Retrieval:
        vec = list(vector) if vector is not None else self.embeddings.embed_query(query)
        chunks: dict[str, float] = {}
        for key, sim in self.index.search_chunks(vec, DENSE_CHUNKS):
            chunks[key] = max(chunks.get(key, -1.0), sim)
        first, _ = fuse_arrays(chunks, {}, self.keyword, query, UNIT_SECTIONS)
        best = sorted(first, key=lambda key: (-first[key], key))[:UNIT_SECTIONS]
        units = unit_scores(np.asarray(vec, dtype=np.float32), self.index.unit_vectors(best))
        fused, kw = fuse_arrays(chunks, units, self.keyword, query, k)
        ordered = signposts_after(sorted(fused, key=lambda key: -fused[key])[:k], self.by_key, fused)
        hits = tuple(
            Hit(self.by_key[key], fused[key], max(chunks.get(key, 0.0), units.get(key, 0.0)), kw.get(key, 0.0))
            for key in ordered
            if key in self.by_key
        )
        return Retrieval(query, tuple(vec), hits)


def signposts_after(ordered: list[str], by_key: Mapping[str, Section], fused: dict[str, float]) -> list[str]:
    """Keys best first, with a section that points to one of its subsections by name put after that subsection.

    A parent whose text names a child's heading ("The **Latency numbers every programmer should know** are handy
    references") is a signpost: it matches the child's subject through that pointer while the child holds it
    (on ../shared/notes-sdp a short "Appendix" overview outranked the 30-line latency table under it). The pair
    swap places and scores, so scores stay best first. Only names of two words or more, matched as whole words,
    count: a parent saying "for example" above an "Example" subsection points at nothing.

    `[appendix, latency-numbers]` (the appendix's text names "Latency numbers every programmer should know") ->
    `[latency-numbers, appendix]`
    """
    out = list(ordered)
    for i in range(len(out)):
        for j in range(i + 1, len(out)):
            parent, child = by_key.get(out[i]), by_key.get(out[j])
            if parent is None or child is None or not _points_to(parent, child):
                continue
            fused[out[i]], fused[out[j]] = fused[out[j]], fused[out[i]]
            out[i], out[j] = out[j], out[i]
    return out


def _points_to(parent: Section, child: Section) -> bool:
    """Whether `child` sits under `parent` and `parent`'s text names it by its heading (two words or more)."""
    depth = len(parent.heading_path)
    under = child.path == parent.path and child.heading_path[:depth] == parent.heading_path
    if not under or len(child.heading_path) <= depth:
        return False
    name = " ".join(child.title.lower().split())
    if len(name.split()) < 2:
        return False
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", " ".join(parent.text.lower().split())) is not None


def unit_scores(vector: np.ndarray, rows: Mapping[str, Sequence[tuple[int, Sequence[float]]]]) -> dict[str, float]:
    """Each section's best unit similarity to the question: `{key: max cosine}` (vectors are unit length)."""
    return {key: float(np.max(np.asarray([v for _, v in its], dtype=np.float32) @ vector)) for key, its in rows.items()}


# A section beyond this many of the keyword ranking's best cannot be among a search's k results (k at most this)
# unless dense search found it too: that many others fuse above it (see `fuse_arrays`).
KEYWORD_KEPT = 200


def fuse_arrays(
    chunks: dict[str, float], units: dict[str, float], keyword: KeywordIndex, query: str, k: int = 10
) -> tuple[dict[str, float], dict[str, float]]:
    """`fuse_scores(chunks, units, keyword.scores(query))` and `normalize` of the keyword scores, to the last bit,
    for the sections that can be among the best k: those of the dense lists and the `KEYWORD_KEPT` best of the
    rest. The rest of the keyword ranking (a common word scores 10,000 of 30,000 sections) is worked out in numpy,
    in the same operations in the same order, and dropped: fusing it as dicts took 30 ms a question there.
    """
    docs, scores = keyword.bm25.score_arrays(expand(query))
    keys = keyword.keys
    if len(docs) <= max(KEYWORD_KEPT, k):
        kw_scores = {keys[i]: s for i, s in zip(docs.tolist(), scores.tolist(), strict=True)}
        return fuse_scores(chunks, units, kw_scores), normalize(kw_scores)
    # `ranks` of the keyword list: best score first, ties by key.
    rank = np.empty(len(docs), dtype=np.int64)
    rank[np.lexsort((keyword.key_order[docs], -scores))] = np.arange(1, len(docs) + 1)
    rrf = 1.0 / (10 + rank)  # `reciprocal_rank_fusion` with k=10: 0.0 + 1.0 / (10 + rank) for the keyword alone
    dense_rrf = [{key: 1.0 / (10 + r) for key, r in ranks(scored).items()} for scored in (chunks, units)]
    dense_keys = set(chunks) | set(units)
    found = {keys[i]: n for n, i in enumerate(docs.tolist()) if keys[i] in dense_keys}
    others: dict[str, float] = {}  # dense sections without a keyword score
    for key in dense_keys:
        total = 0.0  # summed as `reciprocal_rank_fusion` does: chunks, then units, then keyword
        for part in dense_rrf:
            if key in part:
                total = total + part[key]
        if key in found:
            rrf[found[key]] = total + rrf[found[key]]
        else:
            others[key] = total
    top = max(float(rrf.max()), max(others.values(), default=0.0))
    kw_top = float(scores.max())
    kw_norm = scores / kw_top if kw_top > 0 else np.zeros(len(docs))
    dense = np.zeros(len(docs))
    for key, n in found.items():
        dense[n] = max(chunks.get(key, 0.0), units.get(key, 0.0))
    fused_kw = (rrf / top if top > 0 else np.zeros(len(docs))) + 0.5 * kw_norm + dense
    kept = sorted(set(np.argsort(-fused_kw, kind="stable")[: max(KEYWORD_KEPT, k)].tolist()) | set(found.values()))
    fused = {keys[docs[n]]: float(fused_kw[n]) for n in kept}
    kw = {keys[docs[n]]: float(kw_norm[n]) for n in kept}
    for key, total in others.items():
        fused[key] = (total / top if top > 0 else 0.0) + 0.5 * 0.0 + max(chunks.get(key, 0.0), units.get(key, 0.0))
    return fused, kw
