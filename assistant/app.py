"""The composition root: settings -> notes -> index -> search -> assistant. The UI and the CLI both call it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from langchain_core.embeddings import Embeddings

from assistant.chain import NotesAssistant
from assistant.settings import Settings
from corpus.parse import parse_notes
from corpus.reader import read_notes
from corpus.types import Section
from index.store import ChromaIndex, IndexError_, Progress, SyncReport, move_aside

Say = Callable[[str], None]


def read_sections(notes_dir: Path) -> tuple[list[Section], tuple[str, ...]]:
    """All sections of all notes under `notes_dir`, and what could not be read."""
    result = read_notes(notes_dir)
    sections, unparsed = parse_notes(result.notes)
    return sections, result.warnings + tuple(unparsed)


def open_index(index_dir: Path, embeddings: Embeddings, model_id: str, say: Say) -> ChromaIndex:
    """The index at `index_dir`; a damaged one is moved aside (kept for inspection) and started afresh."""
    try:
        return ChromaIndex(index_dir, embeddings, model_id)
    except IndexError_ as err:
        import chromadb

        chromadb.api.client.SharedSystemClient.clear_system_cache()
        aside = move_aside(index_dir)
        say(f"the index was damaged ({err}); moved it to {aside} and rebuilding")
        return ChromaIndex(index_dir, embeddings, model_id)


@dataclass
class App:
    """A ready assistant over one notes folder, and what the last indexing run did."""

    settings: Settings
    embeddings: Embeddings
    index: ChromaIndex
    assistant: NotesAssistant
    report: SyncReport | None = None
    warnings: tuple[str, ...] = field(default=())

    def reindex(self, progress: Progress | None = None) -> SyncReport:
        """Re-read the notes and sync the index: only changed sections are embedded."""
        sections, warnings = read_sections(self.settings.notes_dir)
        self.report = self.index.sync(sections, warnings, progress)
        self.warnings = warnings
        self.assistant = make_assistant(self.settings, self.index, self.embeddings, self.assistant.llm)
        return self.report


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
    from assistant.llm import LLMAnswerer, get_chat_model

    return LLMAnswerer(get_chat_model(settings), settings.llm, settings.llm_context_tokens, embeddings)


def build(
    settings: Settings,
    embeddings: Embeddings | None = None,
    llm=None,
    progress: Progress | None = None,
    say: Say = print,
    sync: bool = True,
) -> App:
    """Everything wired: embeddings (lazy), the index opened and synced with the notes, the assistant."""
    embeddings = embeddings or make_embeddings(settings)
    model_id = getattr(embeddings, "model_id", type(embeddings).__name__)
    index = open_index(settings.resolved_index_dir, embeddings, model_id, say)
    report, warnings = None, ()
    if sync:
        sections, warnings = read_sections(settings.notes_dir)
        if index.manifest is None:
            say(f"no index yet for {settings.notes_dir}: building it in {settings.resolved_index_dir}")
        report = index.sync(sections, warnings, progress)
    llm = llm if llm is not None else make_llm_answerer(settings, embeddings)
    return App(settings, embeddings, index, make_assistant(settings, index, embeddings, llm), report, warnings)
