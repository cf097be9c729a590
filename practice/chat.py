"""Practice inside the chat: "Quiz me on VPC" starts a run, each answer is graded, "skip", "show me the answer"
and "stop" steer it, and a question (a message ending in "?") is left to the assistant to answer.

Pure over plain data: the caller keeps the `ChatRun` (Streamlit's session state) and shows the markdown.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from corpus.types import Section
from practice.generate import names_of
from practice.session import Practice, PracticeError
from practice.types import Grade, Question

# How a request to practise reads once the topic and numbers are taken out. A last resort (STYLE.md 13): no
# markdown structure says "quiz me". Measured with MiniLM on what is left of a message without its topic: these
# requests reach 0.76-1.0 ("Quiz me on", "ask me something about", "mock interview on questions"); the 76
# questions of the dev and held-out eval sets at most 0.32, "Tell me more" 0.44, "What is a mock object?" 0.51.
PRACTICE_REQUESTS = (
    "quiz me on",
    "ask me a question about",
    "mock interview on",
    "test me on",
    "practice questions about",
    "interview me about",
)
REQUEST_SIMILARITY = 0.70
DEFAULT_COUNT = 5
MAX_COUNT = 50
# What steers a run, typed as the whole message (so an answer that mentions "stop" is still an answer).
SKIP = ("skip", "next", "pass")
SHOW = ("show", "show me the answer", "show the answer", "show answer", "answer")
STOP = ("stop", "quit", "end", "stop the quiz", "stop quiz")

_WORD = re.compile(r"[\w'’-]+")


@dataclass
class ChatRun:
    """A practice run in the chat: the questions' ids and which one is being asked."""

    ids: list[str]
    topic: str
    at: int = 0
    scores: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Request:
    topic: str  # "" for all notes
    count: int


def named_topic(message: str, sections: Sequence[Section]) -> str:
    """The longest heading or file name the message contains: `"Quiz me on VPC"` -> `"VPC"`; `""` for none."""
    found = ""
    lowered = message.lower()
    headings = {n for s in sections for h in s.heading_path for n in names_of(h.strip().rstrip(":-").strip())}
    files = {s.path for s in sections} | {s.path.rsplit(".", 1)[0] for s in sections}
    for name in [*sorted(headings), *sorted(files - headings)]:  # a heading wins a tie with a file ("AWS", "aws")
        if len(name) > len(found) and re.search(rf"(?<![\w-]){re.escape(name.lower())}(?![\w-])", lowered):
            found = name
    return found


def practice_request(message: str, sections: Sequence[Section], embeddings) -> Request | None:
    """A request to practise, with its topic and question count; None for anything else.

    `"mock interview on AWS, 10 questions"` -> `Request("AWS", 10)`; `"What is Lambda?"` -> None.
    """
    topic = named_topic(message, sections)
    rest = message
    if topic:
        rest = re.sub(rf"(?<![\w-]){re.escape(topic)}(?![\w-])", " ", rest, flags=re.IGNORECASE)
    words = [w for w in _WORD.findall(rest) if not w.isdigit()]
    if not words or len(words) > 12:  # a request is short; a pasted paragraph is an answer or a question
        return None
    vectors = np.array(embeddings.embed_documents([" ".join(words), *PRACTICE_REQUESTS]))
    if float(np.max(vectors[1:] @ vectors[0])) < REQUEST_SIMILARITY:
        return None
    numbers = [int(n) for n in re.findall(r"\b\d{1,3}\b", message)]
    count = min(max(numbers[0], 1), MAX_COUNT) if numbers else DEFAULT_COUNT
    return Request(topic, count)


def _command(message: str) -> str:
    said = " ".join(_WORD.findall(message.lower()))
    for name, words in (("skip", SKIP), ("show", SHOW), ("stop", STOP)):
        if said in words:
            return name
    return ""


def _md(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>#|~$])", r"\\\1", text)


def ask_markdown(run: ChatRun, question: Question) -> str:
    return (
        f"**Question {run.at + 1} of {len(run.ids)}** · _{_md(' > '.join(question.heading_path))}_\n\n"
        f"{_md(question.text)}\n\n"
        "_Type your answer, or “skip”, “show me the answer”, “stop”._"
    )


def _sources(question: Question, numbers: Sequence[int]) -> str:
    """The `[n]` lines under a grade: `[2] aws.md#lambda, lines 104-104`, each a link to the note."""
    points = question.key_points
    return "\n".join(
        f"- [{n}] [{_md(question.section_key)}](<?note={question.section_key}>), lines "
        f"{points[n - 1].line_start}-{points[n - 1].line_end}"
        for n in numbers
    )


def grade_markdown(question: Question, grade: Grade) -> str:
    """What was covered and what was missed, each missed point quoted from the notes with its `[n]`."""
    number = {p.text: n for n, p in enumerate(question.key_points, start=1)}
    lines = [f"**Score: {grade.score}/100**"]
    if grade.elsewhere:
        lines.append(f"_That answers another part of your notes ({_md(grade.elsewhere)}), so no credit here._")
    lines += [f"- ✓ {_md(point)}" for point in grade.covered]
    lines += [f"- ✗ missed: “{_md(m.point)}” [{number.get(m.point, 0)}]" for m in grade.missed]
    if grade.missed:
        lines += ["", _sources(question, [number[m.point] for m in grade.missed if m.point in number])]
    return "\n".join(lines)


def answer_markdown(question: Question) -> str:
    points = "\n".join(f"- {_md(p.text)} [{n}]" for n, p in enumerate(question.key_points, start=1))
    return f"**From your notes:**\n{points}\n\n{_sources(question, range(1, len(question.key_points) + 1))}"


def start(practice: Practice, request: Request) -> tuple[ChatRun | None, str]:
    """A new run for a request, and the first question (or why there is none)."""
    try:
        questions = practice.run(request.topic, request.count)
        if not questions:  # nothing due: practise anyway, weakest first
            questions = practice.run(request.topic, request.count, cram=True)
    except PracticeError as err:
        return None, str(err)
    if not questions:
        return None, "Your notes have no questions to practise yet."
    run = ChatRun([q.id for q in questions], request.topic)
    about = f" on {_md(request.topic)}" if request.topic else ""
    first = practice.ask(run.ids[0])
    return run, f"Practice{about}: {len(run.ids)} question(s).\n\n{ask_markdown(run, first)}"


def reply(practice: Practice, run: ChatRun, message: str) -> tuple[ChatRun | None, str]:
    """Take one message of a run: an answer (graded and recorded), or skip / show / stop. Returns the run as it
    stands (None once it is over) and what to say."""
    question = practice.ask(run.ids[run.at])
    command = _command(message)
    if command == "stop" or question is None:
        return None, _summary(run)
    if command == "skip":
        said = "Skipped."
    elif command == "show":
        practice.store.record(question.id, 0, _now(), "")  # shown, not known: it comes back soon
        said = answer_markdown(question)
    else:
        grade = practice.answer(question, message)
        run.scores.append(grade.score)
        said = grade_markdown(question, grade)
    run.at += 1
    if run.at >= len(run.ids):
        return None, f"{said}\n\n{_summary(run)}"
    return run, f"{said}\n\n{ask_markdown(run, practice.ask(run.ids[run.at]))}"


def _summary(run: ChatRun) -> str:
    if not run.scores:
        return "Practice over."
    return f"Practice over: {len(run.scores)} answered, average {sum(run.scores) / len(run.scores):.0f}/100."


def _now():
    from practice.session import now

    return now()
