"""`notes-assistant`: index, search, ask, chat and eval from the terminal."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from assistant.settings import MAX_TOP_K, Settings, SettingsError, whole_number

PROGRESS_FROM = 200  # texts to embed before a progress bar is worth drawing


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _progress():
    """A progress callback that draws a bar on stderr for long runs only."""
    state: dict = {}

    def update(done: int, total: int) -> None:
        if total < PROGRESS_FROM:
            return
        if "bar" not in state:
            from tqdm import tqdm

            state["bar"] = tqdm(total=total, desc="embedding", unit="text", file=sys.stderr)
        bar = state["bar"]
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def _build(args, sync: bool = True):
    """The app; `sync` re-indexes the notes (a writer). Without it (search, ask, chat) the index is only read.

    A reader builds the index only when there is none: it could not answer otherwise. Notes changed since the
    index was built are one line on stderr, not a re-index: a reader that writes is how two runs corrupted the
    index (issue 7), and a surprise re-index can take minutes on a large notes folder. The answer still cites
    what the index holds.
    """
    from assistant import embedder

    settings = Settings.from_env(
        notes_dir=Path(args.notes) if getattr(args, "notes", None) else None,
        index_dir=Path(args.index_dir) if getattr(args, "index_dir", None) else None,
        top_k=getattr(args, "k", None),
    )
    embeddings = embedder.make_embeddings(settings)
    # A reader needs the model for its first question: it loads while the app's modules import and the index
    # opens (a writer embeds only what changed, often nothing, so it loads the model when it needs it).
    loaded = None if sync else embedder.load_in_background(embeddings)
    from assistant.app import build

    app = build(settings, embeddings=embeddings, progress=_progress(), say=_say, sync=sync)
    if loaded is not None:
        # The model is loaded now, not with the index held: it takes seconds and needs no index, and another run
        # waiting for the index should not wait for it. An error loading it is raised here.
        loaded()
    if not sync and app.needs_index:
        app.reindex(_progress())
    if app.notes_changed:
        _say(
            f"note: the notes in {settings.notes_dir} changed since they were indexed; answers come from the "
            "indexed version (run `notes-assistant index` to update it)"
        )
    for warning in app.warnings:
        _say(f"warning: {warning}")
    return app


def cmd_index(args) -> int:
    if args.notes_dir:
        args.notes = args.notes_dir
    app = _build(args)
    sections = len(app.index.sections)
    files = len({s.path for s in app.index.sections})
    print(f"indexed {app.settings.notes_dir}: {files} files, {sections} sections — {app.report}")
    print(f"index: {app.settings.resolved_index_dir}")
    return 0


def cmd_search(args) -> int:
    from assistant.questions import clean_question

    question = clean_question(args.question)
    with _build(args, sync=False).reading() as app:
        hits = app.assistant.search.search(question, args.k or app.settings.top_k).hits
    if not hits:
        print("no matching sections")
    for n, hit in enumerate(hits, start=1):
        s = hit.section
        print(f"{n}. {s.key}  lines {s.line_start}-{s.line_end}  score {hit.score:.3f}  ({s.breadcrumb})")
    return 0


def _print_sources(answer) -> None:
    for notice in answer.notices:
        print(f"note: {notice}")
    if answer.citations:
        print("\nSources:")
    for c in answer.citations:
        hidden = " — from a commented-out part" if c.hidden else ""
        print(f"[{c.number}] {c.key} — {' > '.join(c.heading_path)}, lines {c.line_start}-{c.line_end}{hidden}")
    if answer.related:
        print("\nRelated reading (it does not answer the question):")
    for c in answer.related:
        print(f"- {c.key} — {' > '.join(c.heading_path)}, lines {c.line_start}-{c.line_end}")


def _print_answer(answer) -> None:
    if answer.rewritten:
        print(f"(searched for: {answer.standalone})")
    print(answer.text)
    _print_sources(answer)


def cmd_ask(args) -> int:
    from assistant.questions import clean_question

    question = clean_question(args.question)
    with _build(args, sync=False).reading() as app:
        answer = app.assistant.stream(question).answer
    if args.json:
        print(json.dumps(_answer_json(answer), ensure_ascii=False))
        return 0
    _print_answer(answer)
    return 0


def _answer_json(answer) -> dict:
    return {
        "question": answer.question,
        "standalone": answer.standalone,
        "text": answer.text,
        "refused": answer.refused,
        # What wrote the answer: `extractive` also when an LLM failed and the extractive answer stood in for it.
        "answerer": answer.answerer,
        "notices": list(answer.notices),
        "citations": [
            {"n": c.number, "key": c.key, "heading_path": list(c.heading_path), "lines": [c.line_start, c.line_end]}
            for c in answer.citations
        ],
    }


def cmd_chat(args) -> int:
    from assistant.questions import QuestionError
    from assistant.types import Turn

    app = _build(args, sync=False)
    history: list[Turn] = []
    print(f"Ask your notes ({app.settings.notes_dir}); answerer: {app.assistant.answerer}. Empty line or Ctrl-D quits.")
    while True:
        try:
            question = input("\nyou> ")
        except EOFError:
            print()
            return 0
        if not question.strip():
            return 0
        try:
            # Held per question, not for the session: an `index` run meanwhile waits seconds, not until we quit.
            with app.reading():
                stream = app.assistant.stream(question, history)
                print()
                for piece in stream:
                    print(piece, end="", flush=True)
                print()
                answer = stream.answer
        except QuestionError as err:
            print(f"! {err}")
            continue
        _print_sources(answer)
        history += [Turn("user", question), Turn("assistant", answer.text, tuple(c.key for c in answer.citations))]


def cmd_eval(args) -> int:
    from assistant.evaluation import figures, load_cases, run_cases, table

    cases = load_cases(Path(args.questions))
    app = _build(args)  # a writer: it indexes NOTES_DIR, or finds the index up to date
    with app.reading():
        outcomes = run_cases(app.assistant, cases)
    result = {"answerer": app.assistant.answerer, **figures(outcomes)}
    if not args.json:
        print(table(outcomes))
    print(json.dumps(result))
    return 0


def top_k_flag(text: str) -> int:
    """The `-k` flag's type: `"3"` -> 3; anything but a whole number in 1..MAX_TOP_K is a usage error."""
    value = whole_number(text.strip(), 1, MAX_TOP_K)
    if value is None:
        shown = text if len(text) <= 20 else text[:20] + "…"
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {MAX_TOP_K}, got {shown!r}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="notes-assistant", description="Ask your markdown notes; answers cite sections.")
    p.add_argument("--index-dir", help="where the index lives (default: one per notes folder in ~/.cache)")
    sub = p.add_subparsers(dest="command", required=True)

    def notes_flag(sp):
        sp.add_argument("--notes", help="notes folder (default: the bundled AWS notes, or $NOTES_DIR)")

    sp = sub.add_parser("index", help="index a notes folder (only changed sections are embedded)")
    sp.add_argument("notes_dir", nargs="?", help="notes folder (default: the bundled AWS notes)")
    sp.set_defaults(func=cmd_index, notes=None)

    sp = sub.add_parser("search", help="ranked sections for a question")
    sp.add_argument("question")
    sp.add_argument("-k", type=top_k_flag, default=None, help=f"how many sections (1 to {MAX_TOP_K})")
    notes_flag(sp)
    sp.set_defaults(func=cmd_search)

    sp = sub.add_parser("ask", help="a cited answer to one question")
    sp.add_argument("question")
    sp.add_argument("--json", action="store_true", help="print the answer as one JSON line")
    notes_flag(sp)
    sp.set_defaults(func=cmd_ask)

    sp = sub.add_parser("chat", help="an interactive chat that keeps history")
    notes_flag(sp)
    sp.set_defaults(func=cmd_chat)

    sp = sub.add_parser("eval", help="measure retrieval and answers on a questions file")
    sp.add_argument("questions", help="JSONL questions file (see ../shared/eval/README.md)")
    sp.add_argument("--json", action="store_true", help="print only the figures, as one JSON line")
    notes_flag(sp)
    sp.set_defaults(func=cmd_eval)

    from practice.cli import add_commands

    add_commands(sub, notes_flag)  # quiz, grade
    return p


def main(argv: list[str] | None = None) -> int:
    from assistant.evaluation import EvalFileError
    from assistant.questions import QuestionError
    from corpus.reader import NotesError
    from index.embeddings import ModelError
    from index.store import IndexError_
    from practice.session import PracticeError

    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (NotesError, ModelError, QuestionError, IndexError_, EvalFileError, SettingsError, PracticeError) as err:
        print(f"notes-assistant: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("notes-assistant: interrupted; the index keeps its last complete state", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
