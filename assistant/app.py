"""The composition root: settings -> notes -> index -> search -> assistant. The UI and the CLI both call it.

Who writes the index: `build(sync=True)` and `App.reindex` (the `index` and `eval` commands, the app's re-index).
Everything else only reads it, and writes only what it cannot read without: an index that does not exist yet,
or one that must be checked and moved aside. Every use of the index, reading included, holds its lock
(`index.store.IndexLock`): Chroma writes even when asked only to read.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from langchain_core.embeddings import Embeddings

from assistant import embedder
from assistant.chain import NotesAssistant
from assistant.settings import Settings
from corpus.chunking import section_chunks
from corpus.parse import parse_notes
from corpus.reader import ReadResult, read_notes
from corpus.types import Note, Section
from index.english import table_path
from index.spelling import use_english_file
from index.store import (
    LOCK_WAIT,
    ChromaIndex,
    IndexError_,
    IndexLock,
    Progress,
    SyncReport,
    check_health,
    index_state,
    mark_clean,
    move_aside,
    section_hash,
)

Say = Callable[[str], None]


def read_sections(notes_dir: Path) -> tuple[list[Section], tuple[str, ...]]:
    """All sections of all notes under `notes_dir`, and what could not be read or parsed."""
    return sections_of(read_notes(notes_dir))


# Each note's sections as last parsed, by the note itself (path and text): re-indexing a folder where one note
# changed parses that note alone (parsing the notes of 10,000 sections took 25 s of a 35 s re-index). Replaced
# at every call, so it holds one folder's notes at most.
_parsed: dict[Note, tuple[list[Section], list[str]]] = {}


def sections_of(result: ReadResult) -> tuple[list[Section], tuple[str, ...]]:
    """Sections of the notes read, keys unique across the folder; a note that cannot be parsed is named in one
    line and skipped, so one file never stops the others."""
    global _parsed
    parsed = {note: _parsed.get(note) or parse_notes([note]) for note in result.notes}
    sections = [s for its, _ in parsed.values() for s in its]
    unparsed = [w for _, its in parsed.values() for w in its]
    if len({s.key for s in sections}) != len(sections):  # keys clash across notes: `parse_notes` renames
        sections, unparsed = parse_notes(result.notes)
    _parsed = parsed
    return sections, result.warnings + tuple(unparsed)


# Each note's own digest, by the note itself: a re-index digests only the notes that changed (digesting all the
# text of 100,000 sections, 59 MB, took 0.3 s of a one-section edit). Replaced at every call, like `_parsed`.
_digests: dict[Note, bytes] = {}


def notes_fingerprint(notes: Sequence[Note]) -> str:
    """Changes exactly when a note is added, removed, renamed or edited; the order notes come in does not matter.

    [Note("a.md", "# A\\n")] -> "a 20-hex-digit sha1"; adding a space to the text, or naming it "b.md", changes it.
    """
    global _digests
    digests = {
        note: _digests.get(note)
        or hashlib.sha1(json.dumps([note.path, note.text], ensure_ascii=False).encode()).digest()
        for note in notes
    }
    _digests = digests
    digest = hashlib.sha1()
    for note in sorted(notes, key=lambda n: n.path):
        digest.update(digests[note])
    return digest.hexdigest()[:20]


def open_index(index_dir: Path, embeddings: Embeddings, model_id: str, say: Say) -> ChromaIndex:
    """The index at `index_dir`, created when missing and checked when not known good; a damaged one is moved
    aside (kept for inspection) and started afresh. Hold the index lock: all three are writes."""
    # Not known good: a writer died mid-way, or the index predates the marker. Opening it here could crash
    # or hang this process, so a child process tries it first.
    problem = check_health(index_dir) if index_state(index_dir) is None else None
    if problem is None:
        try:
            index = ChromaIndex(index_dir, embeddings, model_id)
        except IndexError_ as err:
            problem = str(err)
        else:
            if index.state is None:
                mark_clean(index_dir)  # the check passed: later readers need not run it again
                index.state = index_state(index_dir)
            return index
    aside = move_aside(index_dir)
    say(f"the index was damaged ({problem}); moved it to {aside} and rebuilding")
    return ChromaIndex(index_dir, embeddings, model_id)


@contextlib.contextmanager
def holding(
    index_dir: Path, current: ChromaIndex | None, open_: Callable[[bool], ChromaIndex], say: Say, wait: float
) -> Iterator[ChromaIndex]:
    """Hold the index's lock and yield the index as it is on disk: `current` while no run wrote since it was
    opened, else reopened. `open_(checked)` opens it: as it stands, or through `open_index` (checked, repaired,
    created) when `checked`, which is how an index that is not known good, or fails to open, is opened.

    Reopening matters: Chroma's client in this process knows the disk only as it was when it loaded, so after
    another run's write it would search vectors that no longer match the manifest, and writing through it could
    undo that run's work.
    """
    with IndexLock(index_dir).hold("read", wait, say):
        state = index_state(index_dir)
        if current is None or state is None or state != current.state:
            if current is not None:
                current.close()
            try:
                current = open_(state is None)
            except IndexError_:
                current = open_(True)  # known good by its marker, yet unreadable: moved aside and started afresh
        yield current


# Texts (chunks) a step of a background index embeds, the longest a question waits for one: the bundled notes'
# 61 chunks embed in about 0.9 s on this 2-core machine idle (ONNX), several times that under load.
STEP_TEXTS = 64


@dataclass(frozen=True)
class SyncPlan:
    """A sync cut into steps: `steps[i]` is what the index holds after step i (the notes' sections up to the
    step's end as they are now, the rest as indexed before); `files_at[i]` files are then wholly indexed, and
    `texts_at[i]` texts embedded, of `texts_at[-1]`."""

    steps: tuple[tuple[Section, ...], ...]
    files_at: tuple[int, ...]
    texts_at: tuple[int, ...]
    files: int
    warnings: tuple[str, ...]
    notes: str
    changes: tuple[int, int, int, int] = (0, 0, 0, 0)  # sections added, updated, removed, unchanged
    started: float = 0.0  # `time.perf_counter()` when planned: the report's seconds cover every step


@dataclass
class App:
    """A ready assistant over one notes folder, and what the last indexing run did.

    `notes_changed`: the notes differ from what the index was built from (an index built before this was
    recorded counts as changed). Readers say so rather than re-index: see `build`.
    """

    settings: Settings
    embeddings: Embeddings
    index: ChromaIndex
    assistant: NotesAssistant
    report: SyncReport | None = None
    warnings: tuple[str, ...] = field(default=())
    notes_changed: bool = False
    say: Say = print
    wait: float = LOCK_WAIT

    @property
    def index_dir(self) -> Path:
        return self.settings.resolved_index_dir

    @property
    def model_id(self) -> str:
        return model_id_of(self.embeddings)

    @property
    def needs_index(self) -> bool:
        """Whether the index cannot answer at all: there is none yet, or its vectors are another model's."""
        manifest = self.index.manifest
        return manifest is None or manifest.model_id != self.model_id

    def _open(self, checked: bool) -> ChromaIndex:
        if checked:
            return open_index(self.index_dir, self.embeddings, self.model_id, self.say)
        return ChromaIndex(self.index_dir, self.embeddings, self.model_id, create=False)

    @contextlib.contextmanager
    def reading(self) -> Iterator[App]:
        """Hold the index while answering: no other run uses it until the block ends, and the assistant answers
        from the index as it is on disk (reopened if another run re-indexed since). Every question goes through
        here; hold it for one command or one question, not for a whole session.

        With a Chroma server there is no lock to hold (the server serializes writes): the index follows the
        generation another process wrote since, if any."""
        if self.settings.chroma_url:
            if self.index.refresh():
                self.assistant = make_assistant(self.settings, self.index, self.embeddings, self.assistant.llm)
            yield self
            return
        with holding(self.index_dir, self.index, self._open, self.say, self.wait) as index:
            if index is not self.index:
                self.index = index
                self.assistant = make_assistant(self.settings, index, self.embeddings, self.assistant.llm)
            yield self

    @contextlib.contextmanager
    def _writing(self, say: Say) -> Iterator[None]:
        """Hold the index for a write: a Chroma server's lease (following its latest generation), or the folder's
        exclusive lock, with the index opened afresh (checked) when another run wrote since this one opened it
        (a stale client must not write) or a writer died."""
        if self.settings.chroma_url:
            with self.index.lease("index", self.wait, say):
                self.index.refresh()
                yield
            return
        with IndexLock(self.index_dir).hold("index", self.wait, say):
            if self.index.state is None or index_state(self.index_dir) != self.index.state:
                self.index.close()
                self.index = open_index(self.index_dir, self.embeddings, self.model_id, say)
            yield

    def reindex(self, progress: Progress | None = None, say: Say | None = None) -> SyncReport:
        """Re-read the notes and sync the index under the exclusive lock: only changed sections are embedded."""
        say = say or self.say
        result = read_notes(self.settings.notes_dir)
        sections, warnings = sections_of(result)
        where = self.settings.chroma_url or self.index_dir
        with self._writing(say):
            if self.index.manifest is None:
                say(f"no index yet for {self.settings.notes_dir}: building it in {where}")
            elif self.index.manifest.model_id != self.model_id:
                say(f"the index in {where} was made with another embedding model: embedding the notes again")
            self.report = self.index.sync(sections, warnings, progress, notes_fingerprint(result.notes))
        self.warnings, self.notes_changed = warnings, False
        self.assistant = make_assistant(self.settings, self.index, self.embeddings, self.assistant.llm)
        return self.report

    def plan_sync(self, step_texts: int = STEP_TEXTS) -> SyncPlan:
        """Re-read the notes and plan a sync in steps that each embed about `step_texts` texts, so a caller can
        release the index between steps and questions are answered from what is indexed so far. A step ends at a
        section, not a file: the bundled notes are one file of 250 texts, and a question asked while they were
        indexed in one step waited for all of them (14 s). Raises `NotesError` when the notes folder cannot be
        read."""
        started = time.perf_counter()
        result = read_notes(self.settings.notes_dir)
        sections, warnings = sections_of(result)
        manifest = self.index.manifest
        usable = manifest is not None and manifest.model_id == self.model_id
        old = manifest.hashes if usable else {}
        by_file: dict[str, list[Section]] = {}
        for s in sections:
            by_file.setdefault(s.path, []).append(s)
        ordered = [s for its in by_file.values() for s in its]
        # What each section costs: its chunks, unless the index holds it as it is now.
        cost = [
            len(section_chunks(s))
            if s.indexable and old.get(s.key) != section_hash(s, self.model_id)
            else 0
            for s in ordered
        ]
        # A step ends after the section that brings it to `step_texts`, unless nothing after it costs anything.
        left = sum(cost)
        ends, texts = [], 0
        for i, c in enumerate(cost):
            texts, left = texts + c, left - c
            if texts >= step_texts and left:
                ends.append(i + 1)
                texts = 0
        ends.append(len(ordered))
        # Sections not reached yet stay as the index has them (when their vectors are still good), so a re-index
        # never hides a note that was already searchable.
        kept = [
            s
            for s in (manifest.sections if usable else ())
            if not s.indexable or old.get(s.key) == section_hash(s, self.model_id)
        ]
        spent = [0, *itertools.accumulate(cost)]  # texts embedded once the first n sections are done
        steps, files_at, texts_at = [], [], []
        for end in ends:
            new = ordered[:end]
            new_keys = {s.key for s in new}
            whole = {s.path for s in new}
            if end < len(ordered) and new and ordered[end].path == new[-1].path:
                whole.discard(new[-1].path)  # a file reached part of the way: its other sections are kept too
            steps.append(tuple(new + [s for s in kept if s.path not in whole and s.key not in new_keys]))
            files_at.append(len(whole))
            texts_at.append(spent[end])
        steps[-1] = tuple(sections)  # the last step is exactly the notes: removed ones go
        new = {s.key: section_hash(s, self.model_id) for s in sections if s.indexable}
        changes = (
            len(new.keys() - old.keys()),
            sum(1 for k in new.keys() & old.keys() if new[k] != old[k]),
            len(old.keys() - new.keys()),
            sum(1 for k in new.keys() & old.keys() if new[k] == old[k]),
        )
        return SyncPlan(
            tuple(steps),
            tuple(files_at),
            tuple(texts_at),
            len(by_file),
            warnings,
            notes_fingerprint(result.notes),
            changes,
            started,
        )

    def sync_step(self, plan: SyncPlan, step: int, progress: Progress | None = None, say: Say | None = None) -> None:
        """Run one step of `plan` under the index's exclusive lock; the last one records the report."""
        say = say or self.say
        with self._writing(say):
            last = step == len(plan.steps) - 1
            # Only the last step records the notes' fingerprint: a run stopped half-way is still "changed".
            self.index.sync(plan.steps[step], plan.warnings, progress, plan.notes if last else "")
        self.assistant = make_assistant(self.settings, self.index, self.embeddings, self.assistant.llm)
        if last:
            self.warnings, self.notes_changed = plan.warnings, False
            seconds = time.perf_counter() - plan.started
            self.report = SyncReport(*plan.changes, embedded=plan.texts_at[-1], seconds=seconds)


def model_id_of(embeddings: Embeddings) -> str:
    return getattr(embeddings, "model_id", type(embeddings).__name__)


def make_assistant(settings: Settings, index: ChromaIndex, embeddings: Embeddings, llm=None) -> NotesAssistant:
    from index.retrieve import HybridSearch

    return NotesAssistant(HybridSearch(index, embeddings), settings.top_k, llm)


def make_llm_answerer(settings: Settings, embeddings: Embeddings):
    """The LLM answerer the settings name, or None for the extractive default."""
    if not settings.llm:
        return None
    from assistant.llm import make_answerer

    return make_answerer(settings, embeddings)  # a local model loads on the first LLM answer, not here


def build(
    settings: Settings,
    embeddings: Embeddings | None = None,
    llm=None,
    progress: Progress | None = None,
    say: Say = print,
    sync: bool = True,
    wait: float = LOCK_WAIT,
) -> App:
    """Everything wired: embeddings (lazy), the index opened, the assistant; `sync` also brings the index up to
    date with the notes (a write, under the exclusive lock).

    Without `sync` the index is used as it stands, written only when there is none (an empty one is created) or
    it must be repaired; `App.notes_changed` tells whether the notes changed since it was built. A run that
    finds the index in use by another waits up to `wait` seconds, then raises `IndexBusy`.
    """
    embeddings = embeddings or embedder.make_embeddings(settings)
    use_english_file(table_path(settings.model_cache_dir))
    # The notes first: a mistyped folder is an error before anything is created (no empty index folder left).
    result = read_notes(settings.notes_dir)
    index_dir, model_id = settings.resolved_index_dir, model_id_of(embeddings)

    def open_(checked: bool) -> ChromaIndex:
        if checked:
            return open_index(index_dir, embeddings, model_id, say)
        return ChromaIndex(index_dir, embeddings, model_id, create=False)

    if settings.chroma_url:
        from index.remote import RemoteIndex

        index = RemoteIndex(settings.chroma_url, embeddings, model_id)
    else:
        with holding(index_dir, None, open_, say, wait) as index:
            pass
    manifest = index.manifest
    llm = llm if llm is not None else make_llm_answerer(settings, embeddings)
    app = App(
        settings,
        embeddings,
        index,
        make_assistant(settings, index, embeddings, llm),
        warnings=result.warnings,
        # A server's index is shared: a process elsewhere, with other notes or none, must not take it for
        # stale and re-index it; `notes-assistant index` (or the app's re-index) updates it.
        notes_changed=not settings.chroma_url
        and manifest is not None
        and manifest.notes != notes_fingerprint(result.notes),
        say=say,
        wait=wait,
    )
    if sync:
        app.reindex(progress)
    return app
