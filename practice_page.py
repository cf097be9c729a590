"""The Practice page: a question from your notes, your answer graded against them, and what to review next.

A file page of the app's `st.navigation` (see `streamlit_app.main`), run as its own script: the app the chat
uses (model and index, shared by every tab) is handed over in `st.session_state["shared"]`, so nothing is
loaded twice. Every use of the index holds the shared lock and the index's own lock, as the chat does.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import streamlit as st

from practice.anki import apkg_bytes
from practice.schedule import topic_strength
from practice.session import Practice, PracticeError, now
from practice.types import Grade, Question

PRACTICE_KEY = "practice_run"  # {"ids": [...], "at": n, "grade": Grade | None, "shown": bool}
WEAKEST_SHOWN = 8


def note_link(key: str, label: str) -> str:
    """A link to a section's text in the app's note view: `[Lambda](<?note=aws.md#lambda>)`."""
    return f"[{label}](<?note={key}>)"


def _md(text: str) -> str:
    """Note text shown as plain text inside markdown."""
    for char in "\\`*_[]<>#|~$":
        text = text.replace(char, "\\" + char)
    return text


def practice_of(shared) -> Practice:
    """The practice of the shared app, its questions brought in step with the index once per index version."""
    practice = Practice.of(shared.app)
    manifest = shared.app.index.manifest
    version = (str(shared.app.settings.resolved_index_dir), manifest.indexed_at if manifest else 0)
    if st.session_state.get("practice_synced") != version:
        with shared.lock:
            practice.refresh()
        st.session_state["practice_synced"] = version
    return practice


def run_state() -> dict | None:
    return st.session_state.get(PRACTICE_KEY)


def start(shared, practice: Practice, topic: str, count: int, cram: bool) -> None:
    try:
        with shared.lock:
            questions = practice.run(topic, count, cram)
    except PracticeError as err:
        st.session_state["practice_notice"] = str(err)
        return
    if not questions:
        st.session_state["practice_notice"] = "Nothing is due on this topic. Tick “Cram” to practise anyway."
        return
    st.session_state[PRACTICE_KEY] = {"ids": [q.id for q in questions], "at": 0, "grade": None, "shown": False}


def advance(state: dict) -> None:
    state.update(at=state["at"] + 1, grade=None, shown=False)


def show_grade(question: Question, grade: Grade) -> None:
    st.metric("Score", f"{grade.score}/100")
    if grade.elsewhere:
        st.warning(
            f"This answers another part of your notes ({_md(grade.elsewhere)}), so it gets no credit here.",
            icon=":material/call_split:",
        )
    for point in grade.covered:
        st.markdown(f":green[:material/check:] {_md(point)}")
    # Numbered as the key points are below ("From your notes"), so [2] is the same point in both.
    number = {p.text: n for n, p in enumerate(question.key_points, start=1)}
    for missed in grade.missed:
        n = number.get(missed.point, 0)
        st.markdown(f":red[:material/close:] {_md(missed.point)} {note_link(question.section_key, f'[{n}]')}")
    if grade.missed:
        st.caption(" · ".join(f"[{number.get(m.point, 0)}] {_md(m.citation)}" for m in grade.missed))


def show_key_points(question: Question) -> None:
    for n, point in enumerate(question.key_points, start=1):
        st.markdown(f"- {_md(point.text)} {note_link(question.section_key, f'[{n}]')}")
    st.caption(f"From {_md(' > '.join(question.heading_path))} · `{question.section_key}`")


def ask_current(shared, practice: Practice, state: dict) -> None:
    ids = state["ids"]
    if state["at"] >= len(ids):
        st.success(f"Done: {len(ids)} question(s). Start another run above.", icon=":material/task_alt:")
        if st.button("Close the run"):
            st.session_state.pop(PRACTICE_KEY)
            st.rerun()
        return
    with shared.lock:
        question = practice.ask(ids[state["at"]])
    if question is None:
        advance(state)
        st.rerun()
    st.subheader(f"Question {state['at'] + 1} of {len(ids)}")
    st.markdown(f"**{_md(question.text)}**")
    st.caption(f"{_md(' > '.join(question.heading_path))} · {question.kind}")
    grade: Grade | None = state["grade"]
    if grade is None and not state["shown"]:
        answer = st.text_area("Your answer", key=f"answer-{question.id}-{state['at']}")
        check, skip, show, stop = st.columns(4)
        if check.button("Check", type="primary", icon=":material/grading:"):
            with shared.lock:
                state["grade"] = practice.answer(question, answer)
            st.rerun()
        if skip.button("Skip", icon=":material/skip_next:"):
            advance(state)
            st.rerun()
        if show.button("Show the answer", icon=":material/visibility:"):
            practice.store.record(question.id, 0, now(), "")  # shown, not known: it comes back soon
            state["shown"] = True
            st.rerun()
        if stop.button("Stop", icon=":material/stop:"):
            st.session_state.pop(PRACTICE_KEY)
            st.rerun()
        with st.expander("Edit or retire this question"):
            edited = st.text_input("Question", value=question.text, key=f"edit-{question.id}")
            if st.button("Save the question") and edited.strip():
                practice.store.edit(question.id, edited)
                st.rerun()
            if st.button("Never ask this again", icon=":material/block:"):
                practice.store.retire(question.id)
                advance(state)
                st.rerun()
        return
    if grade is not None:
        show_grade(question, grade)
        if grade.score < 100 and st.button("I knew that", icon=":material/thumb_up:"):
            practice.store.override(question.id, 100)
            state["grade"] = Grade(100, tuple(p.text for p in question.key_points), ())
            st.rerun()
    st.markdown("**From your notes:**")
    show_key_points(question)
    if st.button("Next", type="primary", icon=":material/arrow_forward:"):
        advance(state)
        st.rerun()


def progress(practice: Practice) -> None:
    """Scores by topic over time, and the weakest sections, each a link to its text."""
    history = practice.store.history()
    if not history:
        st.caption("No answers yet: your scores by topic show here once you have practised.")
        return
    questions = {q.id: q for q in practice.store.questions()}
    rows: dict[str, dict[str, list[int]]] = {}
    for review in history:
        q = questions.get(review.question_id)
        topic = (q.heading_path[1] if q and len(q.heading_path) > 1 else review.section_key.split("#")[0])
        rows.setdefault(review.at.date().isoformat(), {}).setdefault(topic, []).append(review.score)
    chart = {day: {t: sum(v) / len(v) for t, v in topics.items()} for day, topics in sorted(rows.items())}
    st.markdown("**Average score by topic, per day**")
    st.line_chart(_frame(chart))
    strength = topic_strength(list(questions.values()), practice.store.states())
    weakest = sorted(strength.items(), key=lambda item: item[1])[:WEAKEST_SHOWN]
    st.markdown("**Weakest sections**")
    for key, score in weakest:
        st.markdown(f"- {note_link(key, _md(key))} — {score:.0f}/100")


def _frame(chart: dict[str, dict[str, float]]):
    import pandas as pd

    return pd.DataFrame.from_dict(chart, orient="index").sort_index()


def interview_date(practice: Practice) -> None:
    current = practice.store.interview()
    picked = st.date_input(
        "Interview date (optional)",
        value=current.date() if current else None,
        min_value=date.today(),
        help="Before it, every question comes back at least once, weakest topics first.",
    )
    chosen = datetime.combine(picked, time(9), tzinfo=UTC) if picked else None
    if chosen != current:
        practice.store.set_interview(chosen)


def page() -> None:
    shared = st.session_state.get("shared")
    if shared is None:  # opened before the app's entry point ran in this session
        st.switch_page("streamlit_app.py")
    st.title("Practice")
    st.caption("Questions from your notes, graded against them. What you miss comes back sooner.")
    practice = practice_of(shared)
    with st.form("practice-start"):
        topic = st.text_input("Topic", placeholder="all notes, a file (aws.md) or a heading (Databases, VPC)")
        left, right = st.columns(2)
        count = left.number_input("Questions", min_value=1, max_value=100, value=10)
        cram = right.checkbox("Cram (ignore the schedule)")
        started = st.form_submit_button("Start", type="primary", icon=":material/play_arrow:")
    if started:
        start(shared, practice, topic, int(count), cram)
    if notice := st.session_state.pop("practice_notice", None):
        st.info(notice, icon=":material/info:")
    if (state := run_state()) is not None:
        ask_current(shared, practice, state)
    with st.expander("Progress", icon=":material/monitoring:"):
        progress(practice)
    with st.expander("Settings and export", icon=":material/settings:"):
        interview_date(practice)
        st.download_button(
            "Export the questions to Anki (.apkg)",
            data=apkg_bytes(practice.store.questions()),
            file_name="notes-practice.apkg",
            mime="application/octet-stream",
            icon=":material/download:",
            on_click="ignore",
        )


page()
