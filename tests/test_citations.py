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


def test_check_keeps_a_reordered_sentence_in_other_word_forms():
    """Near-extractive, not verbatim: "decouples" is "decoupling", the title says what the text is about."""
    verdict = check_sentence("SQS decouples components with a managed message queue. [1]", SOURCES)
    assert verdict.supported, verdict.reason


def test_check_removes_a_citation_to_a_source_that_was_not_given():
    verdict = check_sentence("SQS is a managed message queue service. [1][7]", SOURCES)
    assert verdict.supported
    assert verdict.text == "SQS is a managed message queue service. [1]"
    assert cited_numbers(verdict.text) == [1]


def test_check_drops_a_sentence_whose_only_citation_was_not_given():
    """The old check re-cited it to the SNS note; a model that cites a source it never saw is not trusted."""
    verdict = check_sentence("SNS is a fully managed pub/sub messaging service. [7]", SOURCES)
    assert not verdict.supported
    assert verdict.reason == "cites a source it was not given"
    assert verdict.text == "SNS is a fully managed pub/sub messaging service."


@pytest.mark.parametrize("bad", ["[0]", "[3]", "[99]"])
def test_check_out_of_range_numbers_are_never_kept(bad):
    verdict = check_sentence(f"SQS is a managed message queue service. {bad}", SOURCES)
    assert bad not in verdict.text
    assert not verdict.supported


def test_check_drops_a_citation_free_sentence_even_when_a_source_says_it():
    """The old check cited it to the source it matched; now every sentence must carry its own citation."""
    verdict = check_sentence("SNS is a fully managed pub/sub messaging service.", SOURCES)
    assert not verdict.supported
    assert verdict.reason == "cites no source"


def test_check_drops_a_fabricated_sentence_citing_a_real_source():
    verdict = check_sentence("Lambda was invented in 1850 by Napoleon [1]", [LAMBDA])
    assert not verdict.supported
    assert verdict.reason == "number not in the cited source: 1850"
    assert "[1]" not in verdict.text


def test_check_drops_a_true_sentence_cited_to_the_wrong_source():
    """Citing SQS for what the SNS note says would send the reader to the wrong section."""
    verdict = check_sentence("SNS is a fully managed pub/sub messaging service. [1]", SOURCES)
    assert not verdict.supported


def test_check_drops_a_sentence_sharing_most_words_with_the_cited_source():
    """Four of five words are the SQS note's, the fifth makes it false: the old check (60% of the words) kept it."""
    verdict = check_sentence("SNS is a managed message queue service. [1]", SOURCES)
    assert not verdict.supported
    assert verdict.reason == "not in the cited source: SNS"


def test_check_drops_an_embellished_sentence():
    """SmolLM2's kind of sentence: the note's words plus a claim of its own ("for free")."""
    verdict = check_sentence("Lambda runs functions in the cloud for free. [1]", [LAMBDA])
    assert not verdict.supported
    assert verdict.reason == "not in the cited source: free"


def test_check_drops_a_number_not_in_the_source_verbatim():
    """"3.11" is the words "3" and "11" to a word check; the source has both, but not the version."""
    source = section("python", "Python", "Python 3 runs on Lambda with 11 other runtimes.")
    verdict = check_sentence("Lambda runs Python 3.11. [1]", [source])
    assert not verdict.supported
    assert verdict.reason == "number not in the cited source: 3.11"
    assert check_sentence("Lambda runs Python 3. [1]", [source]).supported


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        ("SQS is not a managed message queue service. [1]", "negates what the cited source says"),
        ("SQS never decouples components. [1]", "negates what the cited source says"),
        ("SQS isn't a managed message queue service. [1]", "negates what the cited source says"),
    ],
)
def test_check_drops_a_negation_the_source_does_not_make(sentence, reason):
    verdict = check_sentence(sentence, SOURCES)
    assert not verdict.supported
    assert verdict.reason == reason


def test_check_drops_a_sentence_that_loses_the_sources_negation():
    source = section("glacier", "Glacier", "Glacier does not give instant access to archives.")
    verdict = check_sentence("Glacier gives instant access to archives. [1]", [source])
    assert not verdict.supported
    assert verdict.reason == "drops a negation"
    assert check_sentence("Glacier does not give instant access to archives. [1]", [source]).supported


def test_check_drops_a_named_thing_the_source_does_not_name():
    verdict = check_sentence("SQS is a managed message queue service for EC2. [1]", SOURCES)
    assert not verdict.supported


def test_check_drops_a_sentence_with_nothing_to_check():
    verdict = check_sentence("It is. [1]", SOURCES)
    assert (verdict.supported, verdict.reason) == (False, "says nothing that can be checked")


def test_check_an_empty_sentence_is_not_kept():
    verdict = check_sentence("[1]", SOURCES)
    assert (verdict.text, verdict.supported, verdict.reason) == ("", False, "empty")


def test_check_no_sources_supports_nothing():
    assert not check_sentence("SQS is a managed message queue service. [1]", []).supported


def test_check_title_words_count_as_the_source_saying_them():
    assert check_sentence("Lambda is serverless. [1]", [LAMBDA]).supported


def test_check_several_citations_are_read_together():
    verdict = check_sentence("SQS queues and SNS pub/sub messaging are managed. [1][2]", SOURCES)
    assert verdict.supported, verdict.reason
    assert not check_sentence("SQS queues and SNS pub/sub messaging are managed. [1]", SOURCES).supported


ARCHITECTURES = section(
    "real-world-architectures",
    "Real world architectures",
    "Chubby: lock service for loosely-coupled distributed systems from Google.",
    "Kafka: pub/sub message queue from LinkedIn.",
    "Glacier keeps archives for 90 days.",
)


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        # SmolLM2-135M's sentence on the system-design dev set ("How does Kafka guarantee exactly-once
        # delivery?"): each word is in the section, "LinkedIn" in another row than Chubby's.
        (
            "Chubby is a lock service for loosely-coupled distributed systems from LinkedIn. [1]",
            "not in the cited source: LinkedIn",
        ),
        ("Kafka keeps archives for 90 days. [1]", "not in the cited source: Kafka"),
        ("Chubby is a lock service from Google for 90 days. [1]", "number not in the cited source: 90"),
    ],
)
def test_check_a_citation_vouches_for_one_unit_of_its_source(sentence, reason):
    """Words gathered from several sentences of one source make a claim the note never makes."""
    verdict = check_sentence(sentence, [ARCHITECTURES])
    assert (verdict.supported, verdict.reason) == (False, reason)
    assert check_sentence("Chubby is a lock service from Google. [1]", [ARCHITECTURES]).supported
    assert check_sentence("Kafka is a pub/sub message queue from LinkedIn. [1]", [ARCHITECTURES]).supported


def test_check_one_unit_of_each_cited_source_and_the_headings_over_it():
    """Two citations: one unit each. The heading path ("Real world architectures") and a list's label count as
    the unit saying them."""
    listed = Section(
        "aws.md", "sqs", "SQS", 2, ("AWS", "SQS"), 3, 6,
        (
            Block("Pros:", "paragraph", 4, 4),
            Block("decoupling components", "item", 5, 5),
            Block("Cons: polling costs", "paragraph", 6, 6),
        ),
        "## SQS\nPros:\n- decoupling components\nCons: polling costs",
    )
    sentence = "SQS pros: decoupling components, and Kafka is from LinkedIn. [1][2]"
    verdict = check_sentence(sentence, [listed, ARCHITECTURES])
    assert verdict.supported, verdict.reason
    assert not check_sentence("SQS pros: decoupling components, polling costs. [1]", [listed]).supported


def test_check_drops_a_sentence_far_in_meaning_from_every_cited_unit():
    """Every word in the source is not enough: the sentence must also be close to a unit it cites (cosine).

    With `letters`, an anagram has the same vector: "listen" is close to "silent", "zzz" is orthogonal to it.
    """
    letters = LetterEmbeddings()
    source = section("ears", "Ears", "Ears listen.")
    near = {source.key: [(0, letters.embed_query("ears silent"))]}
    far = {source.key: [(0, letters.embed_query("zzz"))]}
    assert check_sentence("Ears listen. [1]", [source], near, letters).supported
    verdict = check_sentence("Ears listen. [1]", [source], far, letters)
    assert not verdict.supported
    assert verdict.reason == "far in meaning from the cited source (cosine 0.00)"
    assert check_sentence("Ears listen. [1]", [source], far).supported, "without embeddings only words count"
    assert MIN_COSINE > 0


def test_check_drops_a_question_copied_from_the_source():
    source = section("az", "AZ", "Why is each zone isolated?", "Each zone is isolated from the others.")
    verdict = check_sentence("Why is each zone isolated? [1]", [source])
    assert (verdict.supported, verdict.reason) == (False, "a question, not an answer")
    assert check_sentence("Each zone is isolated. [1]", [source]).supported


def test_check_drops_a_copy_of_the_sources_heading_line():
    verdict = check_sentence("AWS > SQS [1]", SOURCES)
    assert (verdict.supported, verdict.reason) == (False, "copies a source's heading line")


def test_check_a_named_thing_may_be_part_of_a_slashed_name():
    source = section("kafka", "Kafka", "Kafka - Pub/sub message queue from LinkedIn")
    assert check_sentence("Kafka is a Pub/sub message queue. [1]", [source]).supported
    assert check_sentence("Pub is a Kafka queue. [1]", [source]).supported


def test_check_drops_a_sentence_that_only_repeats_the_question():
    """"What is CloudFront?" -> "CloudFront [1]" is true to the note and answers nothing."""
    verdict = check_sentence("SQS [1]", SOURCES, question="What is SQS?")
    assert (verdict.supported, verdict.reason) == (False, "only repeats the question")
    assert check_sentence("SQS [1]", SOURCES, question="Which service is a managed queue?").supported
    assert check_sentence("SQS is a managed message queue. [1]", SOURCES, question="What is SQS?").supported
