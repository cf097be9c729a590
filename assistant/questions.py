"""Checking what a user types before it reaches the chain: questions and chat history."""

from __future__ import annotations

from collections.abc import Sequence

from assistant.types import Turn

# MiniLM reads 256 word pieces; a question far beyond that is a paste, not a question. 2,000 characters
# (~400 words) leaves room for a long question with context and refuses megabytes with a clear message.
MAX_QUESTION_CHARS = 2000


class QuestionError(ValueError):
    """A question that cannot be answered as typed; the message says why in one line."""


def clean_question(question: object) -> str:
    """The question with its white space folded; raises `QuestionError` for empty, huge or garbage input.

    `"  What is   SQS?\\n"` -> `"What is SQS?"`
    """
    if not isinstance(question, str):
        raise QuestionError("the question must be text")
    text = " ".join(question.replace("\x00", " ").split())
    if not text:
        raise QuestionError("the question is empty: type what you want to know")
    if len(text) > MAX_QUESTION_CHARS:
        raise QuestionError(f"the question is {len(text):,} characters long; keep it under {MAX_QUESTION_CHARS:,}")
    printable = sum(ch.isprintable() for ch in text)
    letters = sum(ch.isalnum() for ch in text)
    if printable < 0.9 * len(text) or letters == 0 or "\ufffd" in text and text.count("\ufffd") > 0.1 * len(text):
        raise QuestionError("the question does not look like text (binary or garbled characters)")
    return text


def clean_history(history: Sequence[object]) -> list[Turn]:
    """Turns from `Turn`s or `{"role", "content"}` dicts; malformed entries are skipped, not fatal."""
    turns: list[Turn] = []
    if not isinstance(history, (list, tuple)):
        return turns
    for item in history:
        if isinstance(item, Turn):
            turns.append(item)
        elif isinstance(item, dict) and item.get("role") in ("user", "assistant") and isinstance(
            item.get("content"), str
        ):
            cited = item.get("cited") or ()
            cited = tuple(c for c in cited if isinstance(c, str)) if isinstance(cited, (list, tuple)) else ()
            turns.append(Turn(item["role"], item["content"][:MAX_QUESTION_CHARS], cited))
    return turns
