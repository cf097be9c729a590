"""Saying no: which words of a question name things, which of those the notes never mention, and the verdict.

Pure: the verdict is judged on hand-made hits, with similarities placed relative to the calibrated thresholds
so the tests hold when the thresholds are re-calibrated.
"""

from __future__ import annotations

import pytest

from assistant.refusal import (
    FLOOR,
    STRONG,
    SUPPORT,
    judge,
    name_like,
    specificity,
    support,
    unheard,
    unknown_names,
)
from corpus.types import Block, Section
from index.keyword import tokenize
from index.retrieve import Hit
from index.spelling import meant_zipf, zipf

NOTES_TEXT = (
    "SQS is a managed message queue. SNS sends notifications. AWS Lambda runs code. Route53 is DNS. m5 instances"
)
VOCABULARY = set(tokenize(NOTES_TEXT))


def section(anchor: str, title: str, text: str) -> Section:
    return Section(
        path="aws.md",
        anchor=anchor,
        title=title,
        level=3,
        heading_path=("AWS", "Messaging", title),
        line_start=10,
        line_end=11,
        blocks=(Block(text, "paragraph", 11, 11),),
        markdown=f"### {title}\n{text}",
    )


SQS = section("sqs", "SQS", "SQS is a managed message queue.")
SNS = section("sns", "SNS", "SNS sends notifications.")
LAMBDA = section("lambda", "Lambda", "AWS Lambda runs code.")


def hits(*dense: float) -> list[Hit]:
    sections = [SQS, SNS, LAMBDA, SQS]
    return [
        Hit(s, score=2.0 - i * 0.1, dense=d, keyword=0.0)
        for i, (s, d) in enumerate(zip(sections[: len(dense)], dense, strict=True))
    ]


MEDIUM = (FLOOR + STRONG) / 2
LOW = FLOOR - 0.1
HIGH = min(1.0, STRONG + 0.1)


# name_like


@pytest.mark.parametrize(
    ("question", "names"),
    [
        ("What is AWS Glue used for?", ["AWS", "Glue"]),  # docstring
        ("cost of an m5.large?", ["m5.large"]),  # docstring
        ("SQS or SNS for fan-out?", ["SQS", "SNS"]),  # an acronym counts even as the first word
        ("Kubernetes pods restart why", []),  # a capital first word is only the start of a sentence
        ("how do i set up route53 health checks", ["route53"]),  # letters mixed with digits; "i" is no name
        ("What Is The Best Region?", ["Best", "Region"]),  # capitalized stop and question words are not names
        ("what is a queue", []),
        ("Does EC2 support IPv6?", ["EC2", "IPv6"]),
    ],
)
def test_name_like(question, names):
    assert name_like(question) == names


# unknown_names


def test_unknown_names_against_a_small_vocabulary():
    """An unknown name is reported with the name words next to it, as the user wrote the name."""
    assert unknown_names("What is AWS Glue used for?", VOCABULARY) == ["AWS Glue"]
    assert unknown_names("How is SQS different from SNS?", VOCABULARY) == []
    assert unknown_names("How do I configure Amazon Kinesis Firehose?", VOCABULARY) == ["Amazon Kinesis Firehose"]
    assert unknown_names("Is Glue like Athena or SQS?", VOCABULARY) == ["Glue", "Athena"]


def test_unknown_names_matches_names_through_the_tokenizer():
    """Names meet the vocabulary as the keyword index sees them: lower-cased and stemmed."""
    assert unknown_names("Which Queues does SQS offer?", VOCABULARY) == []
    assert unknown_names("Is an m5.large enough?", VOCABULARY) == []
    assert unknown_names("Is an r7g.large enough?", VOCABULARY) == ["r7g.large"]


def test_unknown_names_with_empty_vocabulary_lists_every_name():
    assert unknown_names("What is AWS Glue used for?", set()) == ["AWS Glue"]


def test_question_without_names_has_no_unknown_names():
    assert unknown_names("how do i decouple two services", set()) == []


# judge


def test_no_hits_is_refused():
    verdict = judge("What is SQS?", [], VOCABULARY)
    assert verdict.refused
    assert "nothing" in verdict.reason


def test_low_similarity_is_refused():
    verdict = judge("What is SQS?", hits(LOW, LOW - 0.05, LOW - 0.1), VOCABULARY)
    assert verdict.refused
    assert "weak match" in verdict.reason
    assert verdict.unknown == ()


def test_unknown_name_with_medium_similarity_is_refused():
    verdict = judge("What is AWS Glue used for?", hits(MEDIUM, LOW), VOCABULARY)
    assert verdict.refused
    assert verdict.unknown == ("AWS Glue",)
    assert "Glue" in verdict.reason


def test_unknown_name_with_strong_similarity_is_answered():
    """A paraphrase can name things its answer does not: a strong match wins over the unknown name."""
    verdict = judge("Is Amazon's queue product SQS good for fan-out?", hits(HIGH, MEDIUM), VOCABULARY)
    assert not verdict.refused
    assert verdict.reason == ""


def test_known_names_with_medium_similarity_are_answered():
    verdict = judge("How is SQS different from SNS?", hits(MEDIUM, MEDIUM - 0.05), VOCABULARY)
    assert not verdict.refused


def test_best_similarity_of_the_top_three_counts():
    """The strongest of the first three hits decides, wherever it ranks among them."""
    assert not judge("How is SQS different from SNS?", hits(LOW, LOW, MEDIUM), VOCABULARY).refused


def test_similarity_below_the_top_three_does_not_count():
    assert judge("How is SQS different from SNS?", hits(LOW, LOW, LOW, HIGH), VOCABULARY).refused


def test_floor_and_strong_are_ordered():
    assert 0.0 < FLOOR < STRONG < 1.0


# support: how much of what is asked the closest sections say, each word weighed by how specific it is


def test_specific_words_weigh_more_than_ordinary_ones():
    assert specificity("metaclass") > specificity("replication") > specificity("good") >= 0.5


def test_support_counts_specific_words_and_names_what_is_missing():
    """The Kafka row of a table shares one specific word of "exactly-once delivery": low support, and the reason
    names the missing words as typed, most specific first."""
    row = section("real", "Real world architectures", "Kafka - Pub/sub message queue from LinkedIn")
    share, missing = support("How does Kafka guarantee exactly-once delivery?", [row])
    assert share < 0.5
    assert missing[0] in ("exactly-once", "guarantee", "delivery")
    assert "Kafka" not in missing


def test_an_ordinary_word_the_notes_lack_costs_little_support():
    """ "explain VPC like I'm five": the notes need not say "five"."""
    vpc = section("vpc", "VPC", "A VPC is a private network in the cloud.")
    share, missing = support("explain VPC like I'm five", [vpc])
    assert share > 0.5
    assert "five" in missing


def test_low_support_is_refused_unless_the_match_is_strong():
    """Notes near the topic (they know Lambda) do not answer about a thing they never name (snapstart)."""
    on_lambda = [Hit(LAMBDA, score=2.0, dense=MEDIUM, keyword=0.0)]
    assert judge("how does lambda snapstart work", on_lambda, VOCABULARY).refused
    assert "snapstart" in judge("how does lambda snapstart work", on_lambda, VOCABULARY).reason
    assert not judge("how does lambda snapstart work", [Hit(LAMBDA, 2.0, HIGH, 0.0)], VOCABULARY).refused
    assert not judge("What is Lambda?", on_lambda, VOCABULARY).refused


def test_support_and_dense_similarity_add_up():
    """A middling match with every specific word present is answered; the same match sharing none is not."""
    assert not judge("How is SQS different from SNS?", hits(SUPPORT / 2, LOW), VOCABULARY).refused
    assert judge("How is the pricing tier chosen?", hits(SUPPORT / 2, LOW), VOCABULARY).refused


@pytest.mark.parametrize("message", ["hi", "thanks!", "%s%s%s%n", "asdfgh"])
def test_small_talk_and_noise_get_a_chat_reply_not_related_reading(message):
    verdict = judge(message, hits(MEDIUM, LOW), VOCABULARY)
    assert verdict.refused
    assert verdict.chat


def test_a_comparison_is_supported_by_the_sections_it_names_read_together():
    """ "Compare SQS and Lambda": neither section holds the other's name, together they hold both."""
    share, missing = support("Compare SQS and Lambda", [SQS, LAMBDA])
    assert missing == ["Compare"]
    alone, _ = support("Compare SQS and Lambda", [SQS])
    assert alone < share


def test_unheard_weighs_the_words_the_notes_never_use():
    assert unheard("What is SQS?", VOCABULARY.__contains__) == 0.0
    assert unheard("", VOCABULARY.__contains__) == 0.0
    absent = unheard("How does SQS batching work?", VOCABULARY.__contains__)
    assert 0.0 < absent < 1.0
    assert unheard("How does SQS batching work?", (VOCABULARY | {"batching", "work"}).__contains__) == 0.0


def test_a_word_the_notes_never_use_counts_against_a_middling_match():
    """ "SQS batching": the SQS section holds every word but "batching". When the notes never say it anywhere the
    question is declined; when another section does, the middling match is still an answer."""
    on_sqs = [Hit(SQS, score=2.0, dense=0.5, keyword=0.0)]  # without the rule, answered: 0.5 + 0.47 > SUPPORT
    question = "How does SQS batching work?"
    assert judge(question, on_sqs, VOCABULARY, VOCABULARY.__contains__).refused
    elsewhere = VOCABULARY | {"batching"}
    assert not judge(question, on_sqs, elsewhere, elsewhere.__contains__).refused


@pytest.mark.parametrize("typo", ["teh", "hw", "diffrence"])
def test_a_typo_of_a_common_word_weighs_as_that_word(typo):
    """A slip of a common English word ("teh" for "the") says no more than the word meant; a word of its own
    ("rust", near "just") and a name typed in capitals keep their weight."""
    assert meant_zipf(typo) >= zipf(typo) + 3
    assert meant_zipf("rust") == zipf("rust")
    assert unheard(f"{typo} SQS queue", VOCABULARY.__contains__) < 0.25


def test_a_typed_slip_does_not_decline_what_a_name_typed_in_capitals_would():
    """Lower case "cdn" may be a slip of "can"; "CDN" typed in capitals is a name the notes lack."""
    on_sqs = [Hit(SQS, score=2.0, dense=0.5, keyword=0.0)]
    assert unheard("SQS CDN", VOCABULARY.__contains__) > unheard("SQS cdn", VOCABULARY.__contains__)
    assert not judge("hw does teh SQS queue work", on_sqs, VOCABULARY, VOCABULARY.__contains__).refused
