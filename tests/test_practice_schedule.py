"""The review schedule (FSRS, worked examples) and the practice file across restarts and re-indexing."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta

import pytest
from fsrs import Rating

from corpus.parse import parse_note
from corpus.types import Note
from practice.generate import questions_for
from practice.schedule import ReviewState, practice_order, rating_for, replay
from practice.store import PracticeStore
from practice.types import KeyPoint, Question

DAY0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("score", "rating"),
    [(0, Rating.Again), (29, Rating.Again), (30, Rating.Hard), (59, Rating.Hard), (60, Rating.Good),
     (99, Rating.Good), (100, Rating.Easy)],
)
def test_grade_to_rating(score, rating):
    assert rating_for(score) is rating


@pytest.mark.parametrize(
    ("scores", "next_in"),
    [
        # Worked FSRS-6 examples with the default weights, no fuzzing (minutes after the last review):
        ([100], timedelta(days=8)),  # all key points on the first try: Easy, back in 8 days
        ([100, 100], timedelta(days=66)),  # Easy again on day 8: 66 days
        ([75], timedelta(minutes=10)),  # Good on a new card: the 10-minute learning step
        ([75, 75], timedelta(days=2)),  # Good again: graduates, 2 days
        ([75, 75, 75], timedelta(days=11)),  # and 11 days after that
        ([0], timedelta(minutes=1)),  # nothing right: Again, the 1-minute step
        ([0, 75], timedelta(minutes=10)),  # then Good: the next learning step
    ],
)
def test_fsrs_worked_examples(scores, next_in):
    at, reviews = DAY0, []
    for score in scores:
        reviews.append((at, score))
        _, due = replay(reviews)
        last, at = at, due
    assert due - last == next_in


def _q(n: int, section: str = "a.md#x") -> Question:
    return Question(f"q{n}", section, "definition", f"Question {n}?", (KeyPoint(f"point {n}", 1, 1),))


def test_order_due_first_then_new_and_cram_weakest_first():
    qs = [_q(1, "a.md#x"), _q(2, "a.md#y"), _q(3, "a.md#z"), _q(4, "a.md#w")]
    now = DAY0 + timedelta(days=10)
    states = {
        "q1": ReviewState(DAY0 + timedelta(days=20), 100, 2),  # not due
        "q2": ReviewState(DAY0 + timedelta(days=9), 20, 1),  # due, weak
        "q3": ReviewState(DAY0 + timedelta(days=2), 80, 1),  # due longest
    }
    assert [q.id for q in practice_order(qs, states, now)] == ["q3", "q2", "q4"]
    assert [q.id for q in practice_order(qs, states, now, count=1)] == ["q3"]
    # Cram ignores the schedule: everything, never-asked first, then weakest section first.
    assert [q.id for q in practice_order(qs, states, now, cram=True)] == ["q4", "q2", "q3", "q1"]


def test_interview_date_brings_every_question_back_weakest_first():
    qs = [_q(1, "a.md#x"), _q(2, "a.md#y"), _q(3, "a.md#z")]
    now = DAY0 + timedelta(days=10)
    states = {
        "q1": ReviewState(DAY0 + timedelta(days=60), 90, 3),  # next due after the interview
        "q2": ReviewState(DAY0 + timedelta(days=40), 40, 2),  # next due after the interview, weaker
        "q3": ReviewState(DAY0 + timedelta(days=12), 70, 2),  # due before the interview anyway
    }
    interview = DAY0 + timedelta(days=14)
    assert [q.id for q in practice_order(qs, states, now)] == []
    assert [q.id for q in practice_order(qs, states, now, interview=interview)] == ["q2", "q1"]
    assert [q.id for q in practice_order(qs, states, now, interview=now - timedelta(days=1))] == []


NOTE = """# Queues

## SQS

Managed message queue service for decoupling the components of a cloud application.

## SNS

Fully managed pub/sub messaging service that pushes to subscribers.
"""


def test_history_survives_restart_and_reindex(tmp_path):
    store = PracticeStore.beside(tmp_path)
    questions = questions_for(parse_note(Note("q.md", NOTE)))
    assert store.sync(questions).added == len(questions)
    sqs = next(q for q in questions if q.section_key == "q.md#sqs" and q.kind == "definition")
    sns = next(q for q in questions if q.section_key == "q.md#sns" and q.kind == "definition")
    store.record(sqs.id, 100, DAY0, "a queue")
    store.record(sns.id, 0, DAY0, "")
    assert stat.S_IMODE((tmp_path / "practice.sqlite3").stat().st_mode) == 0o600

    # A restart: a new store object on the same file.
    again = PracticeStore.beside(tmp_path)
    states = again.states()
    assert states[sqs.id] == ReviewState(DAY0 + timedelta(days=8), 100, 1)
    assert states[sns.id].last_score == 0

    # Re-index after SNS's text changed: its questions are replaced, SQS keeps its id and history.
    edited = questions_for(parse_note(Note("q.md", NOTE.replace("pushes to subscribers", "fans out to subscribers"))))
    counts = again.sync(edited)
    assert counts.gone >= 1
    assert counts.added >= 1
    live = {q.id for q in again.questions()}
    assert sqs.id in live
    assert sns.id not in live
    assert again.states()[sqs.id].reviews == 1
    assert [r.score for r in again.history()] == [100, 0]  # gone questions keep their history
    # The text comes back: so does the question, with its history.
    again.sync(questions)
    assert sns.id in {q.id for q in again.questions()}
    assert again.states()[sns.id].reviews == 1


def test_override_edit_and_retire(tmp_path):
    store = PracticeStore.beside(tmp_path)
    questions = questions_for(parse_note(Note("q.md", NOTE)))
    store.sync(questions)
    q = questions[0]
    store.record(q.id, 0, DAY0, "no idea")
    assert store.states()[q.id].due == DAY0 + timedelta(minutes=1)
    store.override(q.id, 100)  # "I knew that": the schedule uses the override
    assert store.states()[q.id] == ReviewState(DAY0 + timedelta(days=8), 100, 1)
    assert [r.score for r in store.history()] == [100]

    store.edit(q.id, "  What does  SQS do?  ")
    assert store.questions()[0].text == "What does SQS do?"
    assert store.questions()[0].key_points == q.key_points
    store.retire(q.id)
    assert q.id not in {x.id for x in store.questions()}
    store.sync(questions)  # re-indexing does not bring a retired question back
    assert q.id not in {x.id for x in store.questions()}
    assert q.id in {x.id for x in store.questions("retired")}


def test_interview_date_is_stored(tmp_path):
    store = PracticeStore.beside(tmp_path)
    assert store.interview() is None
    store.set_interview(DAY0)
    assert PracticeStore.beside(tmp_path).interview() == DAY0
    store.set_interview(None)
    assert store.interview() is None


def test_practice_history_stays_when_a_damaged_index_is_moved_aside(tmp_path):
    from index.store import move_aside

    index_dir = tmp_path / "index"
    index_dir.mkdir()
    store = PracticeStore.beside(index_dir)
    store.sync(questions_for(parse_note(Note("q.md", NOTE))))
    (index_dir / "manifest.json").write_text("{}")
    aside = move_aside(index_dir)
    assert (aside / "manifest.json").exists()
    assert (index_dir / "practice.sqlite3").exists()
    assert PracticeStore.beside(index_dir).questions()


def test_restart_and_reindex_through_the_app(tmp_path, letters):
    """End to end with the letter embeddings: history kept by id across a restart and a re-index of edited notes."""
    from assistant.app import build
    from assistant.settings import Settings
    from practice.session import Practice

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "q.md").write_text(NOTE, encoding="utf-8")
    settings = Settings(notes_dir=notes, index_dir=tmp_path / "index")
    practice = Practice.of(build(settings, embeddings=letters, say=lambda _: None))
    practice.refresh()
    sqs, sns = (next(q for q in practice.topic(name) if q.kind == "definition") for name in ("SQS", "SNS"))
    practice.store.record(sqs.id, 100, DAY0)
    practice.store.record(sns.id, 40, DAY0)

    (notes / "q.md").write_text(NOTE.replace("pushes to subscribers", "fans out to subscribers"), encoding="utf-8")
    restarted = Practice.of(build(settings, embeddings=letters, say=lambda _: None))  # a new run re-indexes
    counts = restarted.refresh()
    assert counts.gone >= 1
    live = {q.id for q in restarted.topic()}
    assert sqs.id in live
    assert sns.id not in live  # its section changed: new questions stand in for it
    assert any(q.section_key == "q.md#sns" for q in restarted.topic())
    assert restarted.store.states()[sqs.id] == ReviewState(DAY0 + timedelta(days=8), 100, 1)
    assert (tmp_path / "index" / "practice.sqlite3").exists()
