"""Checking what an LLM wrote, as pure functions: sentence splitting of a stream, citation checks, renumbering.

Sections are built by hand; the only "model" is the hand-computable `letters` fake from conftest.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

import pytest

from assistant.citations import (
    MIN_COSINE,
    check_sentence,
    cited_numbers,
    renumber,
    split_sentences_stream,
    strip_citations,
)
from corpus.types import Block, Section
from tests.conftest import LetterEmbeddings


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail instead of hanging: the streamed splitter once looped forever on a citation marker arriving alone.

    SIGALRM interrupts pure-Python loops in the main thread, which is where pytest runs a test.
    """

    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds}s: a hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def section(anchor: str, title: str, *texts: str, path: str = "aws.md") -> Section:
    """A level-2 section under "# AWS" whose blocks are the given paragraphs."""
    blocks = tuple(Block(text, "paragraph", line, line) for line, text in enumerate(texts, start=4))
    return Section(
        path=path,
        anchor=anchor,
        title=title,
        level=2,
        heading_path=("AWS", title),
        line_start=3,
        line_end=3 + len(texts),
        blocks=blocks,
        markdown=f"## {title}\n" + "\n".join(texts),
    )


SQS = section("sqs", "SQS", "Managed message queue service for decoupling components.")
SNS = section("sns", "SNS", "Fully managed pub/sub messaging service.")
LAMBDA = section(
    "lambda",
    "Lambda",
    "AWS's serverless technology that allows you to run functions in the cloud.",
    "Serverless compute service that runs code in response to events",
)
SOURCES = [SQS, SNS]


def split(chunks: list[str]) -> list[str]:
    with deadline(5):
        return list(split_sentences_stream(chunks))


# split_sentences_stream


def test_split_docstring_example():
    assert split(["Lambda is server", "less. [1] It scales", ". [2]"]) == [
        "Lambda is serverless. [1]",
        "It scales. [2]",
    ]


@pytest.mark.parametrize(
    "chunks",
    [
        ["SQS queues. [", "1", "][2", "] SNS topics. [2]"],
        ["SQS queues.", " ", "[1]", "[2]", " ", "SNS topics.", " ", "[2]"],
        ["SQS queues. [1]", "[2] SNS", " topics. [2]"],
        ["SQS queues. [1][2] ", "SNS topics. [2]\n"],
        ["SQS queues.", " [", "1][", "2] SNS topics.", " [2", "]"],
    ],
)
def test_split_keeps_citations_split_across_chunks_with_their_sentence(chunks):
    """A marker cut anywhere (`[`, `1`, `]`) still ends up with the sentence before it, never the next one."""
    assert split(chunks) == ["SQS queues. [1][2]", "SNS topics. [2]"]


def test_split_same_sentences_whatever_the_chunk_size():
    text = (
        "SQS is a managed message queue. [1] SNS is pub/sub messaging! [2][1] Is it fully managed? [2]\n"
        "- queues decouple components [1]\n- topics fan out [2]"
    )
    expected = [
        "SQS is a managed message queue. [1]",
        "SNS is pub/sub messaging! [2][1]",
        "Is it fully managed? [2]",
        "- queues decouple components [1]",
        "- topics fan out [2]",
    ]
    for size in range(1, len(text) + 1):
        chunks = [text[i : i + size] for i in range(0, len(text), size)]
        assert split(chunks) == expected, f"chunk size {size}"


def test_split_marker_arriving_alone_at_the_end_does_not_hang():
    """The last piece of a streamed answer is often the marker alone, with nothing after it."""
    assert split(["SQS is a queue.", " ", "[1]"]) == ["SQS is a queue. [1]"]
    assert split(["SQS is a queue. ", "[1]", "\n"]) == ["SQS is a queue. [1]"]


def test_split_waits_for_the_word_after_a_break():
    """A sentence is not given out until the next word shows no citation marker follows it."""
    pieces = iter(["SQS is a queue.", " ", "[1]", " SNS", " is pub/sub."])
    out = split_sentences_stream(pieces)
    with deadline(5):
        assert next(out) == "SQS is a queue. [1]"
        # By the time the first sentence came out, the splitter had read up to the next word and no further.
        assert next(pieces) == " is pub/sub."
        assert list(out) == ["SNS"]


def test_split_keeps_decimals_and_flushes_an_unfinished_sentence():
    assert split(["It costs 0.", "40 dollars per million requests [1]"]) == [
        "It costs 0.40 dollars per million requests [1]"
    ]
    assert split(["", "  ", "no full stop here"]) == ["no full stop here"]
    assert split([]) == []


def test_split_accepts_non_string_chunks():
    assert split(["Version ", 2, " is out. [1]"]) == ["Version 2 is out. [1]"]


# cited_numbers, strip_citations, renumber


def test_cited_numbers_docstring_example():
    assert cited_numbers("SQS queues. [2][1] [2]") == [2, 1]
    assert cited_numbers("no citations here") == []


def test_strip_citations():
    assert strip_citations("SQS queues. [2][1] [2]") == "SQS queues."
    assert strip_citations("SQS [1] queues [12]. ") == "SQS queues."


def test_renumber_docstring_example():
    numbers: dict[int, int] = {}
    assert renumber("A. [3] B. [1][3]", numbers) == "A. [1] B. [2][1]"
    assert numbers == {3: 1, 1: 2}


def test_renumber_continues_in_order_of_first_use_across_sentences():
    numbers: dict[int, int] = {}
    assert renumber("SNS fans out. [2]", numbers) == "SNS fans out. [1]"
    assert renumber("SQS queues. [1]", numbers) == "SQS queues. [2]"
    assert renumber("Both are managed. [1][2][5]", numbers) == "Both are managed. [2][1][3]"
    assert numbers == {2: 1, 1: 2, 5: 3}


# check_sentence


def test_check_keeps_a_sentence_whose_words_are_in_the_cited_source():
    verdict = check_sentence("SQS is a managed message queue service for decoupling components. [1]", SOURCES)
    assert verdict.supported
    assert verdict.text == "SQS is a managed message queue service for decoupling components. [1]"


def test_check_removes_a_citation_to_a_source_that_was_not_given():
    verdict = check_sentence("SQS is a managed message queue service. [1][7]", SOURCES)
    assert verdict.supported
    assert verdict.text == "SQS is a managed message queue service. [1]"
    assert cited_numbers(verdict.text) == [1]


def test_check_recites_a_sentence_whose_only_citation_was_not_given():
    verdict = check_sentence("SNS is a fully managed pub/sub messaging service. [7]", SOURCES)
    assert verdict.supported
    assert verdict.text == "SNS is a fully managed pub/sub messaging service. [2]"


@pytest.mark.parametrize("bad", ["[0]", "[3]", "[99]"])
def test_check_out_of_range_numbers_are_never_kept(bad):
    verdict = check_sentence(f"SQS is a managed message queue service. {bad}", SOURCES)
    assert bad not in verdict.text
    assert cited_numbers(verdict.text) == [1]


def test_check_drops_a_fabricated_sentence_citing_a_real_source():
    verdict = check_sentence("Lambda was invented in 1850 by Napoleon [1]", [LAMBDA])
    assert not verdict.supported
    assert verdict.reason == "no cited source says this"
    assert "[1]" not in verdict.text


def test_check_drops_a_true_sentence_cited_to_the_wrong_source():
    """Citing SQS for what the SNS note says would send the reader to the wrong section."""
    verdict = check_sentence("SNS is a fully managed pub/sub messaging service. [1]", SOURCES)
    assert not (verdict.supported and cited_numbers(verdict.text) == [1])


def test_check_cites_an_uncited_but_supported_sentence_to_its_source():
    verdict = check_sentence("SNS is a fully managed pub/sub messaging service.", SOURCES)
    assert verdict.supported
    assert verdict.text == "SNS is a fully managed pub/sub messaging service. [2]"
    verdict = check_sentence("SQS decouples components with a message queue.", SOURCES)
    assert verdict.supported
    assert verdict.text == "SQS decouples components with a message queue. [1]"


def test_check_drops_an_uncited_sentence_no_source_supports():
    verdict = check_sentence("Napoleon invented the telegraph in 1850.", SOURCES)
    assert not verdict.supported
    assert verdict.reason == "uncited and not in the sources"


def test_check_an_empty_sentence_is_not_kept():
    verdict = check_sentence("[1]", SOURCES)
    assert (verdict.text, verdict.supported, verdict.reason) == ("", False, "empty")


def test_check_no_sources_supports_nothing():
    assert not check_sentence("SQS is a managed message queue service. [1]", []).supported


def test_check_title_words_count_as_the_source_saying_them():
    assert check_sentence("Lambda is serverless. [1]", [LAMBDA]).supported


def test_check_falls_back_to_meaning_when_the_words_differ():
    """With few shared words, a cited unit close in meaning (cosine >= MIN_COSINE) supports the sentence.

    With `letters`, an anagram has the same vector: "listen" supports "silent", "zzz" is orthogonal to it.
    """
    letters = LetterEmbeddings()
    source = section("ears", "Ears", "listen")
    vectors = {source.key: [(0, letters.embed_query("listen"))]}
    kept = check_sentence("Silent. [1]", [source], vectors, letters)
    assert kept.supported
    assert kept.text == "Silent. [1]"
    assert not check_sentence("Silent. [1]", [source]).supported, "without embeddings only words count"
    far = check_sentence("Zzz. [1]", [source], vectors, letters)
    assert not far.supported
    assert float(sum(a * b for a, b in zip(letters.embed_query("zzz"), vectors[source.key][0][1], strict=True))) < (
        MIN_COSINE
    )
