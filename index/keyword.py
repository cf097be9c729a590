"""Keyword ranking over sections (BM25): exact names (SQS vs SNS, IAM, EBS) that dense search blurs."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence

import numpy as np

_WORD = re.compile(r"[a-z0-9]+")

STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers him his how i if in into is it its itself just me more most my no nor not
    now of off on once only or other our ours out over own same she should so some such than that the
    their theirs them then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself i'm i've can't
    don't isn't vs versus etc eg e g ie use used using way ways thing things one""".split()
)


# Study notes file lists under "Pros"/"Cons" or "Advantages"/"Disadvantages"; questions ask for "benefits" or
# "drawbacks". A query that names a facet also searches for its other names.
FACETS = {
    "cons": frozenset(
        "con cons downside downsides disadvantage disadvantages drawback drawbacks limitation limitations "
        "weakness weaknesses negative negatives".split()
    ),
    "pros": frozenset(
        "pro pros upside upsides advantage advantages benefit benefits strength strengths positive positives".split()
    ),
}


def facets(text: str) -> set[str]:
    """The facets a text names: `"What are the downsides?"` -> `{"cons"}`."""
    words = set(re.findall(r"[a-z]+", text.lower()))
    return {name for name, synonyms in FACETS.items() if words & synonyms}


_COMPOUND = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)+")


def compounds(text: str) -> list[str]:
    """Hyphenated words as one term each, beside the parts `tokenize` gives: `"Write-through caching"` ->
    `["writethrough"]`.

    A hyphen makes a term of its own out of common words: "write-through", "write-behind" and "write-back" are
    three caching policies, and with "through" a stopword `tokenize` leaves "write" alone for the first, so "what
    is write-through caching?" matched "Write-behind (write-back)" as well as "Write-through". Spelled without
    the hyphen too ("writethrough", "e-mail" / "email"). Ranking only: whether the notes know a word is asked of
    its parts, so "multi-region" is not unknown to notes that write "multi region".
    """
    return [stem(word.replace("-", "")) for word in _COMPOUND.findall(text.lower())]


def keyword_terms(text: str) -> list[str]:
    """What BM25 counts of a text: `tokenize`'s terms and the `compounds`."""
    return tokenize(text) + compounds(text)


def expand(text: str) -> list[str]:
    """Query terms (`keyword_terms`) plus the other names of any facet the text names.

    `"drawbacks of indexes"` -> `["drawback", "index", "con", "downside", ...]`
    """
    terms = keyword_terms(text)
    for name in sorted(facets(text)):
        terms += [t for t in dict.fromkeys(stem(w) for w in FACETS[name]) if t not in terms]
    return terms


def stem(word: str) -> str:
    """A light suffix stripper so plurals meet singulars: `queries` -> `query`, `indexes` -> `index`."""
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def root(term: str) -> str:
    """A stemmed term cut further, for asking whether the notes know a word in any form: -ing, -ed, final e.

    `root("warehousing")` == `root("warehouse")` == `"warehous"`. Too coarse for ranking ("checked" would meet
    "check" everywhere), right for "do the notes mention this at all?".
    """
    if len(term) <= 4 or not term.isalpha():
        return term
    if term.endswith("ing") and len(term) > 6:
        term = term[:-3]
    elif term.endswith("ed") and len(term) > 5:
        term = term[:-2]
    return term[:-1] if term.endswith("e") and len(term) > 4 else term


def tokenize(text: str) -> list[str]:
    """Lower-cased, stemmed content words; a joined name yields its parts too.

    `"Route53 queries"` -> `["route53", "route", "53", "query"]`
    """
    out: list[str] = []
    for word in _WORD.findall(text.lower()):
        if word in STOPWORDS:
            continue
        out.append(stem(word))
        parts = re.findall(r"[a-z]+|[0-9]+", word)
        if len(parts) > 1:
            out.extend(stem(part) for part in parts if part not in STOPWORDS and len(part) > 1)
    return out


# A document's title field: its terms are given marked (`in_title`), the rest is its body. BM25F (Robertson &
# Zaragoza's multi-field BM25) adds each field's length-normalized count, the title's weighted, before the one
# saturation: a heading names its section's subject, so a word there counts as much as TITLE_WEIGHT words of
# text, and a short title is not penalized against a long one the way a short text is.
TITLE = "\x01"


def in_title(terms: Iterable[str]) -> list[str]:
    """Terms of a document's title field, as `BM25` takes them: `["queue"]` -> `["\x01queue"]`."""
    return [TITLE + t for t in terms]


class BM25:
    """Okapi BM25 over pre-tokenized documents, scored by `bm25s` (its Lucene variant: the textbook idf
    `log(1 + (N - df + 0.5) / (df + 0.5))`, k1=1.2, b=0.75), with a title field (BM25F) when documents have one.

    A document's terms are ours (`tokenize`: stemmed, joined names split), those of its title field marked by
    `in_title`. A term found once in a document of average length scores `idf * 2.2 / 2.2 = idf`; a document
    without a title field scores as plain BM25, to the last digit of bm25s's own builder. In a title, a term's
    count is normalized by the title's length (`title_b`) and weighed `title_weight` times, added to its
    normalized count in the body, then saturated once: `tf = w * t / (1 - bt + bt * lt / avg_lt) + c / (1 - b +
    b * lc / avg_lc)`, score `idf * tf * (k1 + 1) / (tf + k1)`, idf over documents holding the term in either.
    bm25s keeps every (document, term) score in one sparse matrix, so a query reads only its terms' columns.
    Beside it this keeps each document's term counts (`rows`): a new index of mostly the same documents reuses
    them (`from_rows`) instead of tokenizing every section again, and the matrix is computed from them with
    whole-array numpy (bm25s's own builder loops over documents in Python: 2.4 s on 10,000 sections).
    `arrays`/`from_arrays` keep both on disk or in a Chroma server.
    """

    def __init__(
        self,
        documents: Iterable[Sequence[str]],
        k1: float = 1.2,
        b: float = 0.75,
        title_b: float = 0.5,
        title_weight: float = 3.0,
    ) -> None:
        vocab: dict[str, int] = {}
        rows = [_row([vocab.setdefault(term, len(vocab)) for term in doc]) for doc in documents]
        self._build(vocab, rows, k1, b, title_b, title_weight)

    @classmethod
    def from_rows(
        cls,
        vocab: dict[str, int],
        rows: Sequence[tuple[np.ndarray, np.ndarray]],
        k1: float = 1.2,
        b: float = 0.75,
        title_b: float = 0.5,
        title_weight: float = 3.0,
    ) -> BM25:
        """An index of documents given as (term ids, counts) over `vocab` (which may name terms no row uses)."""
        bm25 = cls.__new__(cls)
        bm25._build(vocab, rows, k1, b, title_b, title_weight)
        return bm25

    def encode(self, document: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """A document as a row of `from_rows`, over this index's vocabulary, which grows by its new terms."""
        return _row([self.vocab.setdefault(term, len(self.vocab)) for term in document])

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Document i's (term ids, counts)."""
        start, end = self.ptr[i], self.ptr[i + 1]
        return self.terms[start:end], self.counts[start:end]

    @property
    def params(self) -> tuple[float, float, float, float]:
        """(k1, b, title_b, title_weight): what `from_rows` needs to build an index scored like this one."""
        return self.k1, self.b, self.title_b, self.title_weight

    def _fields(self, vocab: dict[str, int]) -> None:
        """`self.base` (each id's term id without the title mark) and `self.titled` (whether an id is a title
        term) over `vocab`, extending those of the vocabulary it grew from; a term seen only in titles gets an
        id of its own, the column its scores go in. Ids are given in order (`setdefault(term, len(vocab))`), so
        the terms not yet seen are the last ones; only the marked ones are looked at one by one (an edit adds a
        few terms to a vocabulary of 100,000)."""
        base = getattr(self, "base", np.zeros(0, np.int64))
        titled = getattr(self, "titled", np.zeros(0, bool))
        while len(base) < len(vocab):
            done = len(base)
            new = itertools.islice(vocab, done, None)
            marked = np.fromiter((t.startswith(TITLE) for t in new), bool, count=len(vocab) - done)
            more = np.arange(done, len(vocab), dtype=np.int64)
            named = list(itertools.compress(itertools.islice(vocab, done, None), marked.tolist()))
            more[marked] = [vocab.setdefault(t[1:], len(vocab)) for t in named]  # may add plain ids at the end
            base, titled = np.concatenate([base, more]), np.concatenate([titled, marked])
        self.base, self.titled = base, titled

    def _build(
        self,
        vocab: dict[str, int],
        rows: Sequence[tuple[np.ndarray, np.ndarray]],
        k1: float,
        b: float,
        title_b: float,
        title_weight: float,
    ) -> None:
        self.k1, self.b, self.title_b, self.title_weight = k1, b, title_b, title_weight
        self.vocab, self.documents = vocab, len(rows)
        self.csc_counts = self.csc_title = None
        sizes = np.array([len(terms) for terms, _ in rows], dtype=np.int64)
        self.ptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.terms = np.concatenate([t for t, _ in rows]).astype(np.int32) if rows else np.zeros(0, np.int32)
        self.counts = np.concatenate([c for _, c in rows]).astype(np.float64) if rows else np.zeros(0)
        self.df = np.zeros(len(vocab), np.int64)
        self.model = _model(k1, b)
        if not len(self.terms):  # no terms at all: nothing to score (and no average length to divide by)
            return
        self._fields(vocab)
        n = len(rows)
        docs = np.repeat(np.arange(n, dtype=np.int64), sizes)
        titled = self.titled[self.terms]
        self.lengths = np.bincount(docs, weights=np.where(titled, 0.0, self.counts), minlength=n)
        self.title_lengths = np.bincount(docs, weights=np.where(titled, self.counts, 0.0), minlength=n)
        # One (term, document) pair per column entry, title and body counts summed apart, in the matrix's order.
        keys, pair = np.unique(self.base[self.terms] * n + docs, return_inverse=True)
        self.csc_title = np.bincount(pair, weights=np.where(titled, self.counts, 0.0)).astype(np.float32)
        self.csc_counts = np.bincount(pair, weights=np.where(titled, 0.0, self.counts)).astype(np.float32)
        self._score(keys // n, (keys % n).astype(np.int32))

    def _score(self, pair_terms: np.ndarray, docs: np.ndarray) -> None:
        """The matrix of the pairs (term ascending, then document) whose counts `csc_title`/`csc_counts` hold."""
        n, k1, b = self.documents, self.k1, self.b
        self.df = np.bincount(pair_terms, minlength=len(self.vocab))
        idf = np.log(1 + (n - self.df + 0.5) / (self.df + 0.5))
        tf = self.csc_counts.astype(np.float64)  # small whole numbers: exact in float32
        body_norm = 1 - b + b * self.lengths[docs] / (self.lengths.mean() or 1.0)
        # bm25s's Lucene scores: idf * tf / (tf + k1 * (1 - b + b * length / average)), in its CSC layout; the
        # pairs with a title count (a few per section) get BM25F's sum of normalized counts saturated once.
        scores = idf[pair_terms] * tf / (tf + k1 * body_norm)
        titled = np.flatnonzero(self.csc_title)
        if len(titled):
            tb, average = self.title_b, self.title_lengths.mean() or 1.0
            title_norm = 1 - tb + tb * self.title_lengths[docs[titled]] / average
            title = self.csc_title[titled].astype(np.float64)
            both = self.title_weight * title / title_norm + tf[titled] / body_norm[titled]
            scores[titled] = idf[pair_terms[titled]] * both / (both + k1)
        self.model.scores = {
            "data": scores,
            "indices": docs,
            "indptr": np.concatenate([[0], np.cumsum(self.df)]).astype(np.int64),
            "num_docs": n,
        }
        self.model.vocab_dict = self.vocab
        self.model.unique_token_ids_set = set(self.vocab.values())
        self.model.nonoccurrence_array = None  # only BM25L and BM25+ have one

    def replaced(self, vocab: dict[str, int], rows: dict[int, tuple[np.ndarray, np.ndarray]]) -> BM25 | None:
        """This index with document i replaced by `rows[i]` (over `vocab`, this index's grown by `encode`): the
        arrays `from_rows` builds, bit for bit, without sorting every (term, document) pair again (on 100,000
        sections that sort took 0.6 s of a one-section edit). None when it cannot (no matrix kept to start from).
        """
        if getattr(self, "csc_counts", None) is None or not len(self.terms) or not rows:
            return None
        changed = np.array(sorted(rows), dtype=np.int64)
        n = self.documents
        # The documents' rows: the kept ones' slices around the new ones.
        sizes = np.diff(self.ptr)
        pieces_t, pieces_c, start = [], [], 0
        for i in changed.tolist():
            pieces_t += [self.terms[self.ptr[start] : self.ptr[i]], rows[i][0]]
            pieces_c += [self.counts[self.ptr[start] : self.ptr[i]], rows[i][1]]
            sizes[i] = len(rows[i][0])
            start = i + 1
        pieces_t.append(self.terms[self.ptr[start] :])
        pieces_c.append(self.counts[self.ptr[start] :])
        bm25 = BM25.__new__(BM25)
        bm25.k1, bm25.b, bm25.title_b, bm25.title_weight = self.params
        bm25.vocab, bm25.documents = vocab, n
        bm25.base, bm25.titled = self.base, self.titled
        bm25._fields(vocab)
        bm25.ptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        bm25.terms = np.concatenate(pieces_t).astype(np.int32, copy=False)
        bm25.counts = np.concatenate(pieces_c).astype(np.float64, copy=False)
        bm25.model = _model(self.k1, self.b)
        # The matrix's pairs, (term, document) ascending: the kept documents' pairs, and the new ones put in place.
        old = self.model.scores
        width = len(old["indptr"]) - 1
        keep = ~np.isin(old["indices"], changed)
        kept_docs = old["indices"][keep]
        kept_terms = np.repeat(np.arange(width, dtype=np.int64), np.diff(old["indptr"]))[keep]
        # Where each term's column starts once the changed documents' pairs are gone.
        starts = np.searchsorted(kept_terms, np.arange(width + 1))
        new_ids = np.concatenate([rows[i][0] for i in changed.tolist()]).astype(np.int64)
        new_docs = np.repeat(changed, [len(rows[i][0]) for i in changed.tolist()])
        new_counts = np.concatenate([rows[i][1] for i in changed.tolist()])
        new_titled = bm25.titled[new_ids]
        new_keys, pair = np.unique(bm25.base[new_ids] * n + new_docs, return_inverse=True)
        title_counts = np.bincount(pair, weights=np.where(new_titled, new_counts, 0.0)).astype(np.float32)
        body_counts = np.bincount(pair, weights=np.where(new_titled, 0.0, new_counts)).astype(np.float32)
        # Each new pair's place: in its term's column (a term new to the index goes at the end), by document.
        new_terms, new_pair_docs = new_keys // n, (new_keys % n).astype(np.int32)
        at = np.empty(len(new_keys), dtype=np.int64)
        for j, (term, doc) in enumerate(zip(new_terms.tolist(), new_pair_docs.tolist(), strict=True)):
            lo, hi = (starts[term], starts[term + 1]) if term < width else (len(kept_docs), len(kept_docs))
            at[j] = lo + np.searchsorted(kept_docs[lo:hi], doc)
        pair_terms = np.insert(kept_terms, at, new_terms)
        pair_docs = np.insert(kept_docs, at, new_pair_docs)
        bm25.csc_counts = np.insert(self.csc_counts[keep], at, body_counts)
        bm25.csc_title = np.insert(self.csc_title[keep], at, title_counts)
        # Document lengths are sums of whole numbers, exact in any order: only the replaced ones change.
        bm25.lengths, bm25.title_lengths = self.lengths.copy(), self.title_lengths.copy()
        for i in changed.tolist():
            ids, counts = rows[i]
            marked = bm25.titled[ids]
            bm25.lengths[i] = counts[~marked].sum()
            bm25.title_lengths[i] = counts[marked].sum()
        # The same expression as `_build`, over the same pairs in the matrix's order: the same scores.
        bm25._score(pair_terms, pair_docs)
        return bm25

    def scores(self, query: Iterable[str]) -> dict[int, float]:
        """Score of every document that shares a term with the query; the others score 0."""
        hits, found = self.score_arrays(query)
        return dict(zip(hits.tolist(), found.tolist(), strict=True))

    def score_arrays(self, query: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """`scores` as arrays: the documents that share a term with the query, ascending, and their scores."""
        terms = sorted({i for term in set(query) if (i := self.vocab.get(term)) is not None and self.df[i]})
        if not terms:
            return np.zeros(0, np.int64), np.zeros(0)
        # bm25s leaves out BM25's constant (k1 + 1) factor; it is put back so scores read as the textbook's.
        found = self.model.get_scores_from_ids(terms) * (self.k1 + 1)
        hits = np.flatnonzero(found)
        return hits, found[hits]

    def document_frequencies(self) -> dict[str, int]:
        """How many documents hold each term (terms no document holds any more are left out)."""
        df = self.df.tolist()
        return {term: df[i] for term, i in self.vocab.items() if df[i]}

    def __contains__(self, term: str) -> bool:
        i = self.vocab.get(term)
        return i is not None and bool(self.df[i])

    def arrays(self) -> dict[str, np.ndarray]:
        """The index as plain arrays (no pickles), for `np.savez`: the counts it is rebuilt from, and the
        score matrix so that loading builds nothing."""
        terms = sorted(self.vocab, key=self.vocab.__getitem__)
        scores = self.model.scores if len(self.terms) else {"data": [], "indices": [], "indptr": [0]}
        return {
            "bm25_params": np.array([self.k1, self.b, self.documents, self.title_b, self.title_weight], np.float64),
            "bm25_terms": np.array(terms, dtype=np.str_),
            "bm25_ptr": self.ptr,
            "bm25_term_ids": self.terms,
            "bm25_counts": self.counts,
            "bm25_data": np.asarray(scores["data"], dtype=np.float64),
            "bm25_indices": np.asarray(scores["indices"], dtype=np.int32),
            "bm25_indptr": np.asarray(scores["indptr"], dtype=np.int64),
            "bm25_csc_counts": np.asarray(self.csc_counts if self.csc_counts is not None else [], np.float32),
            "bm25_csc_title": np.asarray(self.csc_title if self.csc_title is not None else [], np.float32),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> BM25:
        """The index `arrays` gave, without building anything."""
        k1, b, documents, title_b, title_weight = arrays["bm25_params"].tolist()
        bm25 = cls.__new__(cls)
        bm25.k1, bm25.b, bm25.title_b, bm25.title_weight = k1, b, title_b, title_weight
        bm25.documents = int(documents)
        bm25.vocab = {str(term): i for i, term in enumerate(arrays["bm25_terms"].tolist())}
        bm25._fields(bm25.vocab)
        bm25.ptr, bm25.terms, bm25.counts = arrays["bm25_ptr"], arrays["bm25_term_ids"], arrays["bm25_counts"]
        bm25.model = _model(k1, b)
        bm25.csc_counts = bm25.csc_title = None
        bm25.df = np.zeros(len(bm25.vocab), np.int64)
        if not len(bm25.terms):
            return bm25
        pairs = len(arrays["bm25_data"])
        if any(len(arrays.get(name, ())) != pairs for name in ("bm25_csc_counts", "bm25_csc_title")):
            # Kept without the pairs' counts (an older writer): built again from the kept rows, once.
            rows = [bm25.row(i) for i in range(len(bm25.ptr) - 1)]
            return cls.from_rows(bm25.vocab, rows, k1, b, title_b, title_weight)
        n = len(bm25.ptr) - 1
        docs = np.repeat(np.arange(n, dtype=np.int32), np.diff(bm25.ptr))
        # Lengths are sums of whole numbers: exact in any order, so the title's are taken from the whole's: two
        # weight arrays the size of every row (94 MB on 100,000 sections) took a serving process from 1.79 to
        # 1.88 GB at its peak.
        titled = np.flatnonzero(bm25.titled[bm25.terms])
        bm25.title_lengths = np.bincount(docs[titled], weights=bm25.counts[titled], minlength=n)
        bm25.lengths = np.bincount(docs, weights=bm25.counts, minlength=n) - bm25.title_lengths
        bm25.csc_counts, bm25.csc_title = arrays["bm25_csc_counts"], arrays["bm25_csc_title"]
        indptr = arrays["bm25_indptr"]
        bm25.df = np.zeros(len(bm25.vocab), np.int64)
        bm25.df[: len(indptr) - 1] = np.diff(indptr)
        bm25.model.scores = {
            "data": arrays["bm25_data"],
            "indices": arrays["bm25_indices"],
            "indptr": indptr,
            "num_docs": int(documents),
        }
        bm25.model.vocab_dict = bm25.vocab
        bm25.model.unique_token_ids_set = set(bm25.vocab.values())
        bm25.model.nonoccurrence_array = None
        return bm25


def _row(ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Term ids and their counts, ids ascending: `[4, 1, 4]` -> `([1, 4], [1, 2])`."""
    terms, counts = np.unique(np.asarray(ids, dtype=np.int32), return_counts=True)
    return terms.astype(np.int32), counts.astype(np.float64)


def _model(k1: float, b: float):
    import bm25s  # 0.3 s of imports (numpy-only backend), paid when keyword search is first built or loaded

    # float64: the scores must match the textbook BM25 this replaced to the last digit, or ties reorder.
    return bm25s.BM25(k1=k1, b=b, method="lucene", dtype="float64", backend="numpy", csc_backend="numpy")
