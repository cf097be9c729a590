"""A BM25 keyword ranker over sections: exact names (SQS vs SNS, IAM, EBS) that dense search blurs."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

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


def expand(text: str) -> list[str]:
    """Query terms plus the other names of any facet the text names.

    `"drawbacks of indexes"` -> `["drawback", "index", "con", "downside", ...]`
    """
    terms = tokenize(text)
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


class BM25:
    """Okapi BM25 over pre-tokenized documents.

    With k1=1.2, b=0.75: a term found once in a document of average length scores `idf * 2.2 / 2.2 = idf`.
    """

    def __init__(self, documents: Sequence[Sequence[str]], k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.counts = [Counter(doc) for doc in documents]
        self.lengths = [len(doc) for doc in documents]
        self.avg_length = (sum(self.lengths) / len(self.lengths)) if documents else 0.0
        df: Counter[str] = Counter()
        for counts in self.counts:
            df.update(counts.keys())
        n = len(documents)
        self.idf = {term: math.log(1 + (n - freq + 0.5) / (freq + 0.5)) for term, freq in df.items()}
        self.postings: dict[str, list[int]] = {}
        for i, counts in enumerate(self.counts):
            for term in counts:
                self.postings.setdefault(term, []).append(i)

    def scores(self, query: Iterable[str]) -> dict[int, float]:
        """Score of every document that shares a term with the query; the others score 0."""
        out: dict[int, float] = {}
        for term in set(query):
            idf = self.idf.get(term)
            if idf is None:
                continue
            for i in self.postings[term]:
                tf = self.counts[i][term]
                norm = self.k1 * (1 - self.b + self.b * self.lengths[i] / (self.avg_length or 1))
                out[i] = out.get(i, 0.0) + idf * tf * (self.k1 + 1) / (tf + norm)
        return out

    def __contains__(self, term: str) -> bool:
        return term in self.idf
