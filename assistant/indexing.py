"""Indexing in the background: the notes are synced in steps, the index released between them, so the chat
answers from what is indexed so far while a thread embeds the rest and reports how far it got.

`Indexer.start()` runs `App.plan_sync` and then each `App.sync_step` under the caller's lock (the one questions
hold); `Indexer.progress` is a snapshot any thread may read at any time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace

from langchain_core.embeddings import Embeddings

# Texts per call to the model while indexing: small enough that the count moves at least once a second (8 MiniLM
# texts took 0.3-1.6 s on this 2-core machine with other work running, so 4 take at most about 0.8 s), large
# enough to keep some of the model's batching.
METER_TEXTS = 4


class MeteredEmbeddings(Embeddings):
    """Embeddings that count the documents they embed, `METER_TEXTS` at a time, for a progress display.

    `MeteredEmbeddings(inner, size=8)` embeds exactly as `inner`; while `meter` is set it is called with the
    number of texts each slice embedded: 20 texts -> meter(8), meter(8), meter(4).
    """

    def __init__(self, inner: Embeddings, size: int = METER_TEXTS) -> None:
        self.inner = inner
        self.size = size
        self.meter: Callable[[int], None] | None = None

    @property
    def model_id(self) -> str:
        return getattr(self.inner, "model_id", type(self.inner).__name__)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.meter is None:
            return self.inner.embed_documents(texts)
        out: list[list[float]] = []
        for start in range(0, len(texts), self.size):
            out += self.inner.embed_documents(texts[start : start + self.size])
            if self.meter is not None:
                self.meter(len(texts[start : start + self.size]))
        return out

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


@dataclass(frozen=True)
class IndexProgress:
    """Where a background index stands. `state`: "idle" (nothing run yet), "running", "done" or "failed"."""

    state: str = "idle"
    files_done: int = 0
    files: int = 0
    texts_done: int = 0
    texts: int = 0
    error: str = ""
    report: str = ""
    started: float = 0.0
    updated: float = 0.0

    @property
    def running(self) -> bool:
        return self.state == "running"

    def line(self) -> str:
        """One line for the page: `"Indexing your notes: 12 of 54 files, 340 of 1,200 texts embedded"`."""
        if self.state == "failed":
            return f"Indexing stopped: {self.error}"
        if self.state == "done":
            return f"Notes indexed: {self.report}" if self.report else "Notes indexed."
        if not self.files:
            return "Checking your notes for changes…"
        if not self.texts:
            return f"Checking your notes for changes ({self.files} files)…"
        return (
            f"Indexing your notes: {self.files_done} of {self.files} files, "
            f"{self.texts_done:,} of {self.texts:,} texts embedded"
        )

    def so_far(self) -> str:
        """What a question is answered from while indexing runs: `"indexed 12 of 54 files so far"`, with the
        texts when a file is indexed part of the way (`"indexed 0 of 1 files (64 of 250 texts) so far"`)."""
        files = f"indexed {self.files_done} of {self.files} files"
        if self.texts and self.files_done < self.files:
            files += f" ({self.texts_done:,} of {self.texts:,} texts)"
        return f"{files} so far"


class Indexer:
    """One background indexing run at a time over a shared app; `progress` is safe to read from any thread."""

    def __init__(self, app, lock: AbstractContextManager, embeddings: MeteredEmbeddings | None = None) -> None:
        self.app = app
        self.lock = lock
        self.embeddings = embeddings
        self._progress = IndexProgress()
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def progress(self) -> IndexProgress:
        with self._guard:
            return self._progress

    def _set(self, **changes) -> None:
        with self._guard:
            self._progress = replace(self._progress, **changes, updated=time.monotonic())

    def _add_texts(self, count: int) -> None:
        with self._guard:
            p = self._progress
            self._progress = replace(p, texts_done=min(p.texts, p.texts_done + count), updated=time.monotonic())

    def start(self) -> bool:
        """Start a run unless one is running; False when one already was."""
        with self._guard:
            if self._thread is not None and self._thread.is_alive():
                return False
            self._progress = IndexProgress("running", started=time.monotonic(), updated=time.monotonic())
            self._thread = threading.Thread(target=self._run, name="notes-indexer", daemon=True)
            self._thread.start()
        return True

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            with self.lock:
                plan = self.app.plan_sync()
            self._set(files=plan.files, texts=plan.texts_at[-1])
            for step in range(len(plan.steps)):
                with self.lock:
                    if self.embeddings is not None:
                        self.embeddings.meter = self._add_texts
                    try:
                        self.app.sync_step(plan, step)
                    finally:
                        if self.embeddings is not None:
                            self.embeddings.meter = None
                self._set(files_done=plan.files_at[step], texts_done=plan.texts_at[step])
            self._set(state="done", report=str(self.app.report) if self.app.report else "")
        except Exception as err:  # noqa: BLE001 - any failure is shown on the page as one line, not lost in a thread
            self._set(state="failed", error=str(err) or type(err).__name__)
