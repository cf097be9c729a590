"""BM25 keyword ranking and rank fusion: pure functions checked against worked examples and the formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from index.fusion import normalize, ranks, reciprocal_rank_fusion
from index.keyword import BM25, stem, tokenize


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("queries", "query"),  # docstring example
        ("instances", "instance"),  # docstring example
        ("queues", "queue"),
        ("addresses", "address"),  # -sses loses only "es"
        ("class", "class"),  # -ss is not a plural
        ("status", "status"),  # -us is not a plural
        ("analysis", "analysis"),  # -is is not a plural
        ("aws", "aws"),  # three letters or fewer are left alone: "aws" is not the plural of "aw"
        ("ies", "ies"),
        ("2024", "2024"),
        ("lambda", "lambda"),
    ],
)
def test_stem(word, expected):
    """Plurals meet singulars; short words, numbers and -ss/-us/-is endings are kept."""
    assert stem(word) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Route53 queries", ["route53", "route", "53", "query"]),  # docstring example
        ("What is the SQS queue?", ["sqs", "queue"]),  # stopwords and punctuation dropped
        ("EC2 instances", ["ec2", "ec", "instance"]),  # a one-character part ("2") is not a term
        ("S3 vs EBS", ["s3", "ebs"]),  # "vs" is a stopword; "s3" has no part longer than one character
        ("kube-proxy", ["kube", "proxy"]),  # a hyphen splits words
        ("", []),
    ],
)
def test_tokenize(text, expected):
    """Lower-cased, stemmed content words, with joined names split into their parts too."""
    assert tokenize(text) == expected


def bm25_term(tf: int, df: int, n: int, length: int, avg: float, k1: float = 1.2, b: float = 0.75) -> float:
    """Okapi BM25 for one term, written out from the textbook formula."""
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    return idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg))


def test_bm25_two_document_corpus_by_hand():
    """Scores of a 2-document corpus, computed by hand."""
    docs = [["queue", "message", "queue"], ["email", "message"]]
    bm25 = BM25(docs)
    avg = (3 + 2) / 2
    # "queue": in doc 0 only, twice. idf = ln(1 + 1.5/1.5) = ln 2; norm = 1.2 * (0.25 + 0.75 * 3/2.5) = 1.38.
    assert bm25.scores(["queue"]) == {0: pytest.approx(math.log(2) * 2 * 2.2 / (2 + 1.38))}
    assert bm25.scores(["queue"])[0] == pytest.approx(bm25_term(2, 1, 2, 3, avg))
    # "message": in both. idf = ln(1 + 0.5/2.5) = ln 1.2; the shorter doc 1 scores higher.
    message = bm25.scores(["message"])
    assert message == {
        0: pytest.approx(math.log(1.2) * 2.2 / (1 + 1.38)),
        1: pytest.approx(math.log(1.2) * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 2 / 2.5))),
    }
    assert message[1] > message[0]
    # Scores of several terms add up per document.
    both = bm25.scores(["queue", "email"])
    assert both == {0: pytest.approx(bm25_term(2, 1, 2, 3, avg)), 1: pytest.approx(bm25_term(1, 1, 2, 2, avg))}


def test_bm25_term_once_in_average_document_scores_idf():
    """The docstring's claim: a term found once in a document of average length scores exactly its idf."""
    bm25 = BM25([["alpha", "beta"], ["gamma", "delta"], ["alpha", "gamma"]])
    idf = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))
    assert bm25.document_frequencies()["alpha"] == 2
    assert bm25.scores(["alpha"]) == {0: pytest.approx(idf), 2: pytest.approx(idf)}


def test_bm25_query_edge_cases():
    """Unknown terms score nothing, a repeated query term counts once, an empty corpus finds nothing."""
    bm25 = BM25([["queue", "message"], ["email"]])
    assert bm25.scores(["nothing"]) == {}
    assert bm25.scores([]) == {}
    assert bm25.scores(["queue", "queue"]) == bm25.scores(["queue"])
    assert "queue" in bm25
    assert "nothing" not in bm25
    assert BM25([]).scores(["queue"]) == {}


def test_bm25_rare_term_outweighs_common_term():
    """A term in one document of ten is worth more than one in every document (the point of idf)."""
    docs = [["rare", "filler"], ["common", "filler"]] + [["common", "other"]] * 8
    bm25 = BM25(docs)
    assert bm25.scores(["rare"])[0] > bm25.scores(["common"])[1] > 0
    scores = bm25.scores(["common", "rare"])
    assert scores[0] > scores[1]


def test_bm25_kept_as_arrays_scores_the_same():
    """The arrays it is kept as (on disk or in a Chroma server) give back an index that scores exactly alike."""
    docs = [["queue", "message", "queue"], ["email", "message"], []]
    bm25 = BM25(docs)
    back = BM25.from_arrays({name: array.copy() for name, array in bm25.arrays().items()})
    for query in (["queue"], ["message", "email"], ["nothing"]):
        assert back.scores(query) == bm25.scores(query)
    assert back.document_frequencies() == bm25.document_frequencies() == {"queue": 1, "message": 2, "email": 1}
    empty = BM25.from_arrays(BM25([]).arrays())
    assert empty.scores(["queue"]) == {}
    assert empty.document_frequencies() == {}


def test_normalize():
    """Best becomes 1, the rest in proportion; nothing positive means all zero."""
    assert normalize({"a": 4, "b": 1}) == {"a": 1.0, "b": 0.25}
    assert normalize({}) == {}
    assert normalize({"a": 0.0, "b": 0.0}) == {"a": 0.0, "b": 0.0}
    assert normalize({"a": -1.0, "b": -3.0}) == {"a": 0.0, "b": 0.0}


def test_ranks_best_first_ties_by_key():
    """1-based ranks, best first; equal scores are ordered by key so results are repeatable."""
    assert ranks({"a": 0.2, "b": 0.9}) == {"b": 1, "a": 2}
    assert ranks({"z": 1.0, "y": 1.0, "x": 0.5}) == {"y": 1, "z": 2, "x": 3}


def test_reciprocal_rank_fusion():
    """The docstring example, the default k, and weights."""
    assert reciprocal_rank_fusion([({"a": 9, "b": 1}, 1.0), ({"b": 5}, 1.0)], k=0) == {
        "a": pytest.approx(1.0),
        "b": pytest.approx(1.5),
    }
    assert reciprocal_rank_fusion([({"a": 9, "b": 1}, 1.0), ({"b": 5}, 1.0)]) == {
        "a": pytest.approx(1 / 61),
        "b": pytest.approx(1 / 62 + 1 / 61),
    }
    weighted = reciprocal_rank_fusion([({"a": 2, "b": 1}, 2.0), ({"b": 2, "a": 1}, 1.0)], k=0)
    assert weighted == {"a": pytest.approx(2 / 1 + 1 / 2), "b": pytest.approx(2 / 2 + 1 / 1)}
    # Only ranks count, not raw scores: rescaling a list changes nothing.
    big, small = {"a": 900, "b": 100}, {"a": 0.9, "b": 0.1}
    assert reciprocal_rank_fusion([(big, 1.0)]) == reciprocal_rank_fusion([(small, 1.0)])
    assert reciprocal_rank_fusion([]) == {}


def test_bm25_matrix_is_the_one_bm25s_builds():
    """The score matrix computed from term counts with whole-array numpy is bm25s's own, entry for entry."""
    import random

    import bm25s
    import numpy as np

    rng = random.Random(3)
    words = [f"w{n}" for n in range(40)]
    docs = [[rng.choice(words[: rng.randint(3, 40)]) for _ in range(rng.randint(0, 30))] for _ in range(60)]
    ours = BM25(docs)
    ids = [[ours.vocab[t] for t in doc] for doc in docs]
    theirs = bm25s.BM25(k1=1.2, b=0.75, method="lucene", dtype="float64", backend="numpy", csc_backend="numpy")
    theirs.index((ids, ours.vocab), create_empty_token=False, show_progress=False)
    for name in ("indptr", "indices"):
        assert np.array_equal(ours.model.scores[name], theirs.scores[name]), name
    assert np.allclose(ours.model.scores["data"], theirs.scores["data"], rtol=1e-12)


def test_bm25_rebuilt_from_kept_rows_equals_one_built_from_words():
    """Reusing unchanged documents' counts (and a vocabulary holding a term no document uses any more) gives the
    same scores as tokenizing everything again."""
    first = BM25([["queue", "message"], ["email", "bounce"], ["queue", "topic"]])
    edited = [first.row(0), first.encode(["email", "digest"]), first.row(2)]  # "bounce" is gone
    rebuilt = BM25.from_rows(first.vocab, edited)
    fresh = BM25([["queue", "message"], ["email", "digest"], ["queue", "topic"]])
    for query in (["queue"], ["email", "digest"], ["bounce"], ["topic", "message"]):
        assert rebuilt.scores(query) == pytest.approx(fresh.scores(query))
    assert "bounce" not in rebuilt
    assert rebuilt.document_frequencies() == fresh.document_frequencies()


def test_replacing_documents_gives_the_arrays_of_a_full_build():
    """An edit replaces a document's row in place (no sort of every pair): the arrays and scores equal, bit for
    bit, those of an index built whole from the same rows over the same vocabulary."""
    docs = [["apple", "pear", "apple"], ["pear", "plum"], ["fig"], ["apple", "fig", "kiwi", "kiwi"]]
    before = BM25(docs)
    vocab = dict(before.vocab)
    grown = BM25.from_rows(vocab, [])
    rows = {1: grown.encode(["plum", "quince", "quince"]), 3: grown.encode(["apple"])}
    whole = BM25.from_rows(vocab, [rows[i] if i in rows else before.row(i) for i in range(len(docs))])
    # Also from an index kept before the matrix's counts were kept with it.
    older = BM25.from_arrays({k: v for k, v in before.arrays().items() if k != "bm25_csc_counts"})
    for start in (before, older):
        replaced = start.replaced(vocab, rows)
        for name, array in whole.arrays().items():
            assert np.array_equal(replaced.arrays()[name], array), name
    for query in (["quince"], ["apple", "fig"], ["pear", "plum", "kiwi"]):
        assert replaced.scores(query) == whole.scores(query)


def test_fusing_in_arrays_equals_fusing_dicts_for_every_section_that_can_rank():
    """A common word scores most sections: `fuse_arrays` fuses the whole keyword list in numpy and keeps its best,
    with exactly the scores `fuse_scores` gives them, so a search's top k is the same (ties included)."""
    import random

    from corpus.parse import parse_note
    from corpus.types import Note
    from index.retrieve import KEYWORD_KEPT, KeywordIndex, fuse_arrays, fuse_scores

    rng = random.Random(3)
    words = ["queue", "topic", "stream", "shard", "lambda", "bucket", "policy", "role", "region", "zone"]
    text = "\n\n".join(
        f"## Section {n}\n\nThe service " + " ".join(rng.choice(words) for _ in range(rng.randint(3, 30)))
        for n in range(3 * KEYWORD_KEPT)
    )
    keyword = KeywordIndex(parse_note(Note("big.md", "# Big\n\n" + text)))
    keys = keyword.keys
    for query in ("service queue", "shard region zone", "lambda"):
        reference_kw = keyword.scores(query)
        assert len(reference_kw) > KEYWORD_KEPT  # the numpy path is taken
        for _ in range(5):
            chunks = {key: rng.random() for key in rng.sample(keys, 40)}
            units = {key: rng.random() for key in rng.sample(keys, 60)}
            units["not-a-keyword-hit.md#x"] = 0.99  # dense only
            reference = fuse_scores(chunks, units, reference_kw)
            fused, kw = fuse_arrays(chunks, units, keyword, query, 10)
            assert all(fused[key] == reference[key] for key in fused)
            assert all(kw[key] == normalize(reference_kw)[key] for key in kw)
            best = sorted(reference.values(), reverse=True)[:10]
            assert sorted(fused.values(), reverse=True)[:10] == best


# A parent that names a subsection is a signpost: the subsection goes first. Notes written for this test.

SIGNPOSTS = """# Networking
Two tables matter here: **Port numbers worth knowing** and the DNS record types. For example, see below.

## Port numbers worth knowing
| service | port |
|---|---|
| SSH | 22 |
| DNS | 53 |

## Example
A lookup of example.com on port 53.
"""


def test_a_parent_naming_its_subsection_goes_after_it():
    from corpus.parse import parse_note
    from corpus.types import Note
    from index.retrieve import signposts_after

    sections = {s.anchor: s for s in parse_note(Note("net.md", SIGNPOSTS))}
    by_key = {s.key: s for s in sections.values()}
    parent, ports, example = (sections[a].key for a in ("networking", "port-numbers-worth-knowing", "example"))
    fused = {parent: 2.0, ports: 1.5, example: 1.0}
    assert signposts_after([parent, ports, example], by_key, fused) == [ports, parent, example]
    assert fused == {ports: 2.0, parent: 1.5, example: 1.0}  # scores follow: still best first
    # "For example" names no subsection: a heading of one word is not a name the parent points to.
    fused = {parent: 2.0, example: 1.0}
    assert signposts_after([parent, example], by_key, fused) == [parent, example]
    # A subsection already first stays first; a section of another file is never a child.
    assert signposts_after([ports, parent], by_key, {ports: 2.0, parent: 1.5}) == [ports, parent]
    elsewhere = next(s for s in parse_note(Note("other.md", SIGNPOSTS)) if s.anchor == "port-numbers-worth-knowing")
    by_key[elsewhere.key] = elsewhere
    assert signposts_after([parent, elsewhere.key], by_key, {parent: 2.0, elsewhere.key: 1.0}) == [
        parent,
        elsewhere.key,
    ]


# Notes the compound rule was not written for (it came from caching policies): a hotel's check-in and check-out,
# where "in" and "out" are stopwords and `tokenize` leaves "check" alone for both headings.
HOTEL = """# Front desk

## Check-in
Guests show an ID and a card; the room key is handed over at 3 pm or later.

## Check-out
The room is inspected, the minibar counted and the final bill settled by 11 am.

## Late check-out
Ask the desk a day before; it costs half a night after 1 pm.
"""


def test_hyphenated_words_count_whole_as_well():
    from index.keyword import compounds, expand, keyword_terms

    assert compounds("Write-through caching, e-mail and multi-AZ") == ["writethrough", "email", "multiaz"]
    assert keyword_terms("Check-out") == ["check", "checkout"]
    assert "checkout" in expand("what happens at check-out?")
    assert compounds("no hyphen here - nor here") == []


def test_a_hyphenated_heading_is_found_by_its_whole_word():
    from corpus.parse import parse_note
    from corpus.types import Note
    from index.retrieve import KeywordIndex

    sections = parse_note(Note("hotel.md", HOTEL))
    index = KeywordIndex(sections)
    titles = {s.key: s.title for s in sections}

    def best(question: str) -> str:
        scores = index.scores(question)
        return titles[max(scores, key=scores.get)]

    assert best("what happens at check-out?") == "Check-out"
    assert best("when is check-in") == "Check-in"
    assert best("how much is a late check-out") == "Late check-out"


def test_a_kept_keyword_index_of_other_terms_is_not_read():
    from corpus.parse import parse_note
    from corpus.types import Note
    from index import retrieve
    from index.retrieve import KeywordIndex, keyword_fingerprint

    sections = parse_note(Note("hotel.md", HOTEL))
    hashes = {s.key: f"h{i}" for i, s in enumerate(sections)}
    built = KeywordIndex(sections, hashes=[hashes[s.key] for s in sections if s.indexable])
    fingerprint = keyword_fingerprint(sections, hashes)
    assert KeywordIndex.from_bytes(built.to_bytes(fingerprint), sections, fingerprint) is not None
    # The same index as the version before wrote it (its fingerprint names that version's terms): neither read
    # as current nor reused as counts a few edits behind.
    older = f"t{retrieve.KEYWORD_TERMS - 1}-" + fingerprint.split("-", 1)[1]
    assert not retrieve.keyword_current(older)
    data = built.to_bytes(older)
    assert KeywordIndex.from_bytes(data, sections, fingerprint) is None
    assert KeywordIndex.from_bytes(data, (), None) is None


def test_bm25f_by_hand():
    """A title field's count is normalized by the title's length, weighed 3 times, then saturated once."""
    from index.keyword import in_title

    bm25 = BM25([in_title(["sqs"]) + ["queue", "message"], ["sqs", "queue", "topic", "fanout"]])
    idf = math.log(1 + (2 - 2 + 0.5) / (2 + 0.5))
    titled = 3 * 1 / (1 - 0.5 + 0.5 * 1 / 0.5)  # 2.0: title length 1, average 0.5
    plain = 1 / (1 - 0.75 + 0.75 * 4 / 3)  # body length 4, average 3
    assert bm25.scores(["sqs"]) == pytest.approx(
        {0: idf * titled * 2.2 / (titled + 1.2), 1: idf * plain * 2.2 / (plain + 1.2)}
    )
    # One term in the title outweighs the same term once in a text twice as long, and the title's words count
    # for the document: its frequencies name no marked term.
    assert bm25.scores(["sqs"])[0] > bm25.scores(["sqs"])[1]
    assert bm25.document_frequencies() == {"sqs": 2, "queue": 2, "message": 1, "topic": 1, "fanout": 1}
    assert "sqs" in bm25


def test_replacing_documents_with_titles_gives_the_arrays_of_a_full_build():
    from index.keyword import in_title

    docs = [
        in_title(["apple"]) + ["pear", "apple"],
        ["pear", "plum"],
        in_title(["fig", "tree"]) + ["fig"],
        ["apple", "fig", "kiwi", "kiwi"],
    ]
    before = BM25(docs, b=0.5)
    vocab = dict(before.vocab)
    grown = BM25.from_rows(vocab, [])
    # A title word the index never had, and one it had only in text.
    rows = {1: grown.encode(in_title(["quince"]) + ["plum", "quince"]), 3: grown.encode(in_title(["kiwi"]))}
    whole = BM25.from_rows(vocab, [rows[i] if i in rows else before.row(i) for i in range(len(docs))], *before.params)
    older = BM25.from_arrays({k: v for k, v in before.arrays().items() if k != "bm25_csc_title"})
    for start in (before, older, BM25.from_arrays(before.arrays())):
        replaced = start.replaced(vocab, rows)
        for name, array in whole.arrays().items():
            assert np.array_equal(replaced.arrays()[name], array), name
    for query in (["quince"], ["apple", "fig"], ["kiwi"], ["tree"]):
        assert replaced.scores(query) == whole.scores(query)
    assert whole.scores(["kiwi"]).keys() == {3}


# Notes BM25F was not chosen on (git, not AWS or system design): a short section named for its subject, and a
# longer overview that says the word more often.
GIT = """# Git

## Workflow
Fetch often, rebase your branch before review, and rebase to squash fixups. Push then.

## Rebase
A rebase moves commits onto a new base. The history reads as if the work started from the latest main branch,
at the cost of rewriting commits others may already have pulled, so it is kept to branches nobody else uses and
the old commits are still reachable from the reflog for a while after.
"""


def test_a_section_named_for_the_subject_beats_one_that_says_it_more_often():
    from corpus.parse import parse_note
    from corpus.types import Note
    from index.keyword import tokenize
    from index.retrieve import KeywordIndex

    sections = [s for s in parse_note(Note("git.md", GIT)) if s.indexable]
    titles = {i: s.title for i, s in enumerate(sections)}
    scores = KeywordIndex(sections).bm25.scores(tokenize("what does rebase do"))
    assert titles[max(scores, key=scores.get)] == "Rebase"
    # One field with the title's words repeated three times and b=0.75 (what this replaced) ranked the overview.
    single = BM25(tokenize(s.title) * 3 + tokenize(" ".join(s.heading_path[:-1]) + " " + s.text) for s in sections)
    old = single.scores(tokenize("what does rebase do"))
    assert titles[max(old, key=old.get)] == "Workflow"
