"""When to ask a question again: FSRS (the `fsrs` package) fed with grades, and the order of a practice run."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from practice.types import Question

# A grade as the rating FSRS expects: nothing right is Again; under half of the key points is Hard; most of
# them is Good; all of them is Easy. Worked examples with their intervals are in tests/test_practice_schedule.py.
AGAIN_BELOW, HARD_BELOW, GOOD_BELOW = 30, 60, 100


def rating_for(score: int):
    """`0` -> Again, `40` -> Hard, `75` -> Good, `100` -> Easy."""
    from fsrs import Rating

    if score < AGAIN_BELOW:
        return Rating.Again
    if score < HARD_BELOW:
        return Rating.Hard
    if score < GOOD_BELOW:
        return Rating.Good
    return Rating.Easy


def scheduler():
    """FSRS with its published default weights, without fuzzing: the same grades give the same dates."""
    from fsrs import Scheduler

    return Scheduler(enable_fuzzing=False)


def replay(scores: Iterable[tuple[datetime, int]]) -> tuple[str, datetime] | None:
    """The card (FSRS JSON) and its due date after these reviews in order; None when there were none.

    `[(day 0, 100)]` -> due on day 8; `[(day 0, 75), (day 0 + 10 min, 75)]` -> due on day 2 after the second.
    Replaying the whole history (not updating in place) is what lets a grade override take effect.
    """
    from fsrs import Card

    sched, card = scheduler(), None
    for at, score in scores:
        card = card or Card(card_id=1)
        card, _ = sched.review_card(card, rating_for(score), at)
    return (card.to_json(), card.due) if card is not None else None


@dataclass(frozen=True)
class ReviewState:
    """What the store knows about one question: when it is due, its last score, how often it was asked."""

    due: datetime
    last_score: int
    reviews: int


def topic_strength(questions: Sequence[Question], states: Mapping[str, ReviewState]) -> dict[str, float]:
    """Mean last score per section, over the questions asked at least once: `{"aws.md#lambda": 50.0}`."""
    scores: dict[str, list[int]] = {}
    for q in questions:
        if q.id in states:
            scores.setdefault(q.section_key, []).append(states[q.id].last_score)
    return {key: sum(v) / len(v) for key, v in scores.items()}


def practice_order(
    questions: Sequence[Question],
    states: Mapping[str, ReviewState],
    now: datetime,
    count: int | None = None,
    cram: bool = False,
    interview: datetime | None = None,
) -> list[Question]:
    """The questions to ask, in order.

    Due questions first (most overdue first), then never-asked ones in note order. With an interview date still
    ahead, questions next due after it come too, so each is seen once more before it, and everything is ordered
    weakest section first. `cram` ignores the schedule: every question, weakest section first, never-asked ones
    counting as weakest.
    """
    strength = topic_strength(questions, states)

    def weakness(q: Question) -> tuple[float, float]:
        state = states.get(q.id)
        return (strength.get(q.section_key, -1.0), state.last_score if state else -1.0)

    if cram:
        picked = sorted(questions, key=weakness)
    else:
        due = [q for q in questions if q.id in states and states[q.id].due <= now]
        due.sort(key=lambda q: states[q.id].due)
        new = [q for q in questions if q.id not in states]
        later: list[Question] = []
        if interview is not None and now < interview:
            later = [q for q in questions if q.id in states and now < states[q.id].due and states[q.id].due > interview]
            due = sorted(due, key=weakness)
            later = sorted(later, key=weakness)
        picked = due + new + later
    return picked[:count] if count else picked
