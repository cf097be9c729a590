"""Practice over one app: questions kept in step with the index, answers graded under the index's lock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from corpus.chunking import section_units
from corpus.types import Section
from practice.generate import in_topic, question_id, questions_for, usable
from practice.grade import grade, pick_question
from practice.schedule import practice_order
from practice.store import PracticeStore, SyncCounts
from practice.types import Grade, KeyPoint, Question

AD_HOC_POINTS = 3  # a typed question not generated from the notes is graded on its section's 3 nearest sentences


class PracticeError(ValueError):
    """A topic or section that is not in the notes; the message says so in one line."""


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Practice:
    """The practice half of one `assistant.app.App`: its store lives beside the index."""

    app: object  # assistant.app.App (not imported: this module stays importable without the chain)
    store: PracticeStore
    model: object | None = None  # a LangChain chat model that rewords questions (`practice.phrase`), if any

    @classmethod
    def of(cls, app) -> Practice:
        """The practice beside the app's index, rewording questions with the app's LLM when one is configured."""
        llm = getattr(app.assistant, "llm", None)
        return cls(app, PracticeStore.beside(app.settings.resolved_index_dir), getattr(llm, "model", None))

    def ask(self, question_id: str) -> Question | None:
        """A question as it is to be asked: reworded by the chat model the first time, when there is one."""
        question = self.store.question(question_id)
        if question is None or self.model is None or not self.store.needs_phrasing(question_id):
            return question
        from practice.phrase import phrase

        section = next((s for s in self.sections() if s.key == question.section_key), None)
        text = phrase(question, section.text, self.model) if section is not None else None
        if text is None:
            self.store.set_phrasing(question_id, question.text)  # asked once is enough
            return question
        self.store.set_phrasing(question_id, text)
        return self.store.question(question_id)

    def sections(self) -> list[Section]:
        """The indexed sections, read under the index's lock (the index may have been rebuilt since)."""
        with self.app.reading() as app:
            return list(app.index.sections)

    def refresh(self) -> SyncCounts:
        """Bring the stored questions in step with the indexed sections: changed sections' questions are
        replaced, unchanged ones keep their id and history."""
        return self.store.sync(questions_for(self.sections()))

    def topic(self, topic: str = "") -> list[Question]:
        """The live questions of a topic (a file, a heading and what is under it, or all notes)."""
        sections = {s.key: s for s in self.sections()}
        picked = [
            q for q in self.store.questions() if q.section_key in sections and in_topic(sections[q.section_key], topic)
        ]
        if topic.strip() and not picked:
            raise PracticeError(f"no questions on “{topic.strip()}”: name a file or a heading of your notes")
        return picked

    def run(self, topic: str = "", count: int | None = None, cram: bool = False) -> list[Question]:
        """The questions of a practice run, due first (see `practice.schedule.practice_order`)."""
        return practice_order(self.topic(topic), self.store.states(), now(), count, cram, self.store.interview())

    def grade(self, question: Question, answer: str) -> Grade:
        with self.app.reading() as app:
            return grade(question, answer, app.embeddings, app.index)

    def answer(self, question: Question, answer: str) -> Grade:
        """Grade an answer and record it for the schedule."""
        result = self.grade(question, answer)
        self.store.record(question.id, result.score, now(), answer)
        return result

    def question_for(self, section_key: str, text: str) -> Question:
        """The question `text` about a section: a generated one when it is one, else one whose key points are the
        section's sentences nearest the question."""
        section = next((s for s in self.sections() if s.key == section_key), None)
        if section is None or not section.indexable:
            raise PracticeError(f"no section {section_key} in the indexed notes (see `notes-assistant search`)")
        found = pick_question(questions_for([section]), text)
        if found is not None:
            return found
        units = [u for u in section_units(section) if usable(u)] or section_units(section)
        if not units:
            raise PracticeError(f"section {section_key} has no text to grade against")
        vectors = np.array(self.app.embeddings.embed_documents([text, *(u.text for u in units)]))
        nearest = np.argsort(-(vectors[1:] @ vectors[0]))[:AD_HOC_POINTS]
        chosen = [units[i] for i in sorted(nearest)]
        points = tuple(KeyPoint(u.text, u.line_start, u.line_end) for u in chosen)
        return Question(
            question_id(section.key, "asked", [p.text for p in points]), section.key, "asked", text, points,
            section.heading_path,
        )
