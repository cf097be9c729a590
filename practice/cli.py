"""`notes-assistant quiz` and `notes-assistant grade`: practice from the terminal (registered by assistant.cli)."""

from __future__ import annotations

import json
from pathlib import Path

from practice.types import Grade, Question

# What the user types instead of an answer. A command is the whole line, so an answer that mentions "stop" is
# still an answer.
SKIP, SHOW, STOP = "skip", "show", "stop"


def _practice(args):
    from assistant.cli import _build
    from practice.session import Practice

    practice = Practice.of(_build(args, sync=False))
    practice.refresh()
    return practice


def show_grade(grade: Grade) -> None:
    print(f"score {grade.score}/100")
    if grade.elsewhere:
        print(f"(this answers another section, {grade.elsewhere}, so it gets no credit here)")
    for point in grade.covered:
        print(f"  ✓ {point}")
    for missed in grade.missed:
        print(f"  ✗ {missed.point}  [{missed.citation}]")


def show_answer(question: Question) -> None:
    for point in question.key_points:
        print(f"  • {point.text}  [{question.section_key}, lines {point.line_start}-{point.line_end}]")


def cmd_quiz(args) -> int:
    practice = _practice(args)
    if args.anki:
        from practice.anki import apkg_bytes

        questions = practice.topic(args.topic or "")[: args.count]
        Path(args.anki).write_bytes(apkg_bytes(questions))
        print(f"wrote {len(questions)} question(s) to {args.anki}")
        return 0
    if args.json:
        for question in practice.topic(args.topic or "")[: args.count]:
            print(json.dumps(question.as_json(), ensure_ascii=False))
        return 0
    run = practice.run(args.topic or "", args.count, cram=args.cram)
    if not run:
        print("Nothing is due. `--cram` asks everything anyway.")
        return 0
    print(f"{len(run)} question(s). Type your answer; `{SKIP}`, `{SHOW}` (the answer) or `{STOP}`.")
    for n, question in enumerate(run, start=1):
        question = practice.ask(question.id) or question
        print(f"\n[{n}/{len(run)}] {question.text}\n  ({question.section_key})")
        try:
            answer = input("answer> ").strip()
        except EOFError:
            print()
            return 0
        command = answer.lower()
        if command == STOP:
            return 0
        if command == SKIP:
            continue
        if command == SHOW:
            show_answer(question)
            practice.store.record(question.id, 0, _now(), "")  # shown, not known: comes back soon
            continue
        grade = practice.answer(question, answer)
        show_grade(grade)
        try:
            after = input("enter: next · k: I knew that · r: never ask again · stop> ").strip().lower()
        except EOFError:
            print()
            return 0
        if after == "k":
            practice.store.override(question.id, 100)
        elif after == "r":
            practice.store.retire(question.id)
        elif after == STOP:
            return 0
    return 0


def _now():
    from practice.session import now

    return now()


def cmd_grade(args) -> int:
    from assistant.cli import _build
    from practice.session import Practice

    practice = Practice.of(_build(args, sync=False))
    question = practice.question_for(args.section, args.question)
    grade = practice.grade(question, args.answer)
    if args.json:
        print(json.dumps(grade.as_json(), ensure_ascii=False))
    else:
        show_grade(grade)
    return 0


def _count(text: str) -> int:
    import argparse

    from assistant.settings import whole_number

    value = whole_number(text.strip(), 1, 10_000)
    if value is None:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 10,000, got {text[:20]!r}")
    return value


def add_commands(sub, notes_flag) -> None:
    """Register `quiz` and `grade` on the main parser's subcommands."""
    sp = sub.add_parser("quiz", help="practice: questions from your notes, answers graded against them")
    sp.add_argument("--topic", help="a file or a heading (and what is under it); default: all notes")
    sp.add_argument("--count", type=_count, default=None, help="how many questions")
    sp.add_argument("--cram", action="store_true", help="ignore the schedule: ask everything, weakest first")
    sp.add_argument("--json", action="store_true", help="print the questions, one JSON object a line, and quit")
    sp.add_argument("--anki", metavar="FILE", help="write the questions to an Anki deck (.apkg) and quit")
    notes_flag(sp)
    sp.set_defaults(func=cmd_quiz)

    sp = sub.add_parser("grade", help="grade one answer against a section of your notes")
    sp.add_argument("--section", required=True, help="the section, as PATH#ANCHOR")
    sp.add_argument("--question", required=True)
    sp.add_argument("--answer", required=True)
    sp.add_argument("--json", action="store_true", help="print the grade as one JSON line")
    notes_flag(sp)
    sp.set_defaults(func=cmd_grade)
