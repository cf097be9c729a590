"""The composition root: settings -> notes -> index -> search -> assistant. The UI and the CLI both call it.

Who writes the index: `build(sync=True)` and `App.reindex` (the `index` and `eval` commands, the app's re-index).
Everything else only reads it, and writes only what it cannot read without: an index that does not exist yet,
or one that must be checked and moved aside. Every use of the index, reading included, holds its lock
(`index.store.IndexLock`): Chroma writes even when asked only to read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from langchain_core.embeddings import Embeddings

from assistant.chain import NotesAssistant
from assistant.settings import Settings
from corpus.parse import parse_notes
from corpus.reader import ReadResult, read_notes
from corpus.types import Note, Section
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
)

Say = Callable[[str], None]


def read_sections(notes_dir: Path) -> tuple[list[Section], tuple[str, ...]]:
    """All sections of all notes under `notes_dir`, and what could not be read or parsed."""
    return sections_of(read_notes(notes_dir))


def sections_of(result: ReadResult) -> tuple[list[Section], tuple[str, ...]]:
    """Sections of the notes read, keys unique across the folder; a note that cannot be parsed is named in one
    line and skipped, so one file never stops the others."""
    sections, unparsed = parse_notes(result.notes)
    return sections, result.warnings + tuple(unparsed)


def notes_fingerprint(notes: Sequence[Note]) -> str:
    """Changes exactly when a note is added, removed, renamed or edited; the order notes come in does not matter.

    [Note("a.md", "# A\\n")] -> "a 20-hex-digit sha1"; adding a space to the text, or naming it "b.md", changes it.
    """
    digest = hashlib.sha1()
    for note in sorted(notes, key=lambda n: n.path):
        digest.update(json.dumps([note.path, note.text], ensure_ascii=False).encode())
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
        here; hold it for one command or one question, not for a whole session."""
        with holding(self.index_dir, self.index, self._open, self.say, self.wait) as index:
            if index is not self.index:
                self.index = index
                self.assistant = make_assistant(self.settings, index, self.embeddings, self.assistant.llm)
            yield self

    def reindex(self, progress: Progress | None = None, say: Say | None = None) -> SyncReport:
        """Re-read the notes and sync the index under the exclusive lock: only changed sections are embedded."""
        say = say or self.say
        result = read_notes(self.settings.notes_dir)
        sections, warnings = sections_of(result)
        with IndexLock(self.index_dir).hold("index", self.wait, say):
            if self.index.state is None or index_state(self.index_dir) != self.index.state:
                # Another run wrote since this one opened the index (a stale client must not write), or a
                # writer died: open it afresh, checked.
                self.index.close()
                self.index = open_index(self.index_dir, self.embeddings, self.model_id, say)
            if self.index.manifest is None:
                say(f"no index yet for {self.settings.notes_dir}: building it in {self.index_dir}")
            elif self.index.manifest.model_id != self.model_id:
                say(f"the index in {self.index_dir} was made with another embedding model: embedding the notes again")
            self.report = self.index.sync(sections, warnings, progress, notes_fingerprint(result.notes))
        self.warnings, self.notes_changed = warnings, False
        self.assistant = make_assistant(self.settings, self.index, self.embeddings, self.assistant.llm)
        return self.report


def model_id_of(embeddings: Embeddings) -> str:
    return getattr(embeddings, "model_id", type(embeddings).__name__)


def make_embeddings(settings: Settings) -> Embeddings:
    from index.embeddings import MiniLMEmbeddings

    return MiniLMEmbeddings(settings.model_dir)


def make_assistant(settings: Settings, index: ChromaIndex, embeddings: Embeddings, llm=None) -> NotesAssistant:
    from index.retrieve import HybridSearch

    return NotesAssistant(HybridSearch(index, embeddings), settings.top_k, llm)


def make_llm_answerer(settings: Settings, embeddings: Embeddings):
    """The LLM answerer the settings name, or None for the extractive default."""
    if not settings.llm:
        return None
    from assistant.llm import LLMAnswerer, answerer_name, get_chat_model

    return LLMAnswerer(
        get_chat_model(settings), answerer_name(settings), settings.llm_context_tokens, embeddings, settings.llm_timeout
    )


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
    embeddings = embeddings or make_embeddings(settings)
    # The notes first: a mistyped folder is an error before anything is created (no empty index folder left).
    result = read_notes(settings.notes_dir)
    index_dir, model_id = settings.resolved_index_dir, model_id_of(embeddings)

    def open_(checked: bool) -> ChromaIndex:
        if checked:
            return open_index(index_dir, embeddings, model_id, say)
        return ChromaIndex(index_dir, embeddings, model_id, create=False)

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
        notes_changed=manifest is not None and manifest.notes != notes_fingerprint(result.notes),
        say=say,
        wait=wait,
    )
    if sync:
        app.reindex(progress)
    return app
