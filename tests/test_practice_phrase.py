"""Questions reworded by a chat model (LangChain's fake at the seam): used when usable, the key points unchanged."""

from __future__ import annotations

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

from corpus.parse import parse_note
from corpus.types import Note
from practice.generate import questions_for
from practice.phrase import gives_away, phrase, usable_phrasing
from practice.session import Practice
from practice.store import PracticeStore

NOTE = "# AWS\n\n## Lambda\n\nServerless compute service that runs code in response to events.\n"


def lambda_question():
    return next(q for q in questions_for(parse_note(Note("aws.md", NOTE))) if q.kind == "definition")


def fake(*replies: str) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter(replies))


@pytest.mark.parametrize(
    ("reply", "used"),
    [
        ("What would you use AWS Lambda for?", True),
        ("Which service runs code in response to events?", False),  # gives the key point away
        ("Sure! Here is a question:\nWhat is Lambda?", False),  # not one line
        ("Lambda", False),  # not a question
        ("", False),
    ],
)
def test_usable_phrasing(reply, used):
    assert (usable_phrasing(reply, lambda_question()) is not None) is used


def test_gives_away():
    q = lambda_question()
    assert gives_away("Which service runs code in response to events?", q)
    assert not gives_away("What is Lambda for?", q)


def test_phrase_uses_the_model_and_keeps_key_points(tmp_path):
    q = lambda_question()
    assert phrase(q, NOTE, fake("What would you use AWS Lambda for?")) == "What would you use AWS Lambda for?"


class _App:
    """The two things `Practice.ask` uses of an app: its sections, under a `reading()` block."""

    def __init__(self, sections):
        self.index = type("Index", (), {"sections": sections})()

    def reading(self):
        import contextlib

        return contextlib.nullcontext(self)


def test_practice_asks_the_reworded_question_once(tmp_path):
    sections = parse_note(Note("aws.md", NOTE))
    store = PracticeStore(tmp_path / "practice.sqlite3")
    store.sync(questions_for(sections))
    q = lambda_question()
    practice = Practice(_App(sections), store, fake("What would you use AWS Lambda for?"))
    asked = practice.ask(q.id)
    assert asked.text == "What would you use AWS Lambda for?"
    assert asked.key_points == q.key_points
    assert practice.ask(q.id).text == asked.text  # stored: the model is not asked again (its fake has no more)
    store.edit(q.id, "My own wording?")
    assert practice.ask(q.id).text == "My own wording?"  # the user's edit wins
