"""Typed words -> the notes' words, on a hand-made vocabulary: pure, no model."""

from __future__ import annotations

import pytest

from index.spelling import Speller

# term -> sections that use it, as the keyword index counts them; titles are the heading words.
POSTINGS = {"elasticache": 1, "lambda": 3, "dynamodb": 2, "cache": 4, "elastic": 3, "shortlink": 1, "glacier": 1}
SPELLER = Speller(POSTINGS, titles={"elasticache", "lambda", "dynamodb", "glacier"})


@pytest.mark.parametrize(
    ("typed", "searched"),
    [
        ("wat is elastcache", "wat is elasticache"),  # one edit; "wat" is too short to guess at
        ("what is lamda", "what is lambda"),
        ("what is elastic cache", "what is elasticache"),  # two words the notes write as one heading word
        ("what is a dynamo db table", "what is a dynamodb table"),
    ],
)
def test_typos_and_spacing_become_the_notes_terms(typed, searched):
    assert SPELLER.correct(typed) == searched


@pytest.mark.parametrize(
    "typed",
    [
        "What is Glacier good for?",  # "good" is common English: never "corrected"
        "explain lambda like I'm five",
        "how is the short link made",  # "shortlink" is no heading word: fine English stays
        "elastic, cache",  # punctuation between two words: they are not one
        "",
    ],
)
def test_ordinary_words_stay_as_typed(typed):
    assert SPELLER.correct(typed) == typed


@pytest.mark.parametrize(
    "typed",
    [
        "lambda",  # as the notes write it
        "lambdas",  # a plural
        "elasti",  # a prefix of a term ("multi-region" for "multiple regions")
        "elastcache",  # one letter off a long term
        "lambdaglacier",  # two heading words run together
    ],
)
def test_familiar_words_are_the_notes_terms_in_another_spelling(typed):
    assert SPELLER.familiar(typed)


# "elasticshortlink": "shortlink" is no heading word, so the two are not one term typed together.
@pytest.mark.parametrize("typed", ["kinesis", "spot", "fifo", "elasticsearch", "gla", "elasticshortlink"])
def test_words_the_notes_never_use_are_not_familiar(typed):
    assert not SPELLER.familiar(typed)


def test_two_terms_typed_as_one_are_searched_as_two():
    assert SPELLER.correct("what is lambdaglacier") == "what is lambda glacier"
