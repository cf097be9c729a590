"""The embedder the settings name, and loading it in the background: kept apart from `assistant.app` so a command
can start the model loading before it imports Chroma and LangChain's runnables (about a second of imports)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from langchain_core.embeddings import Embeddings

from assistant.settings import Settings


def make_embeddings(settings: Settings) -> Embeddings:
    """The embedder the settings name (ONNX by default: answering then never imports torch)."""
    from assistant.cores import free_cores
    from index.embeddings import get_embeddings

    threads = settings.embed_threads or free_cores()
    return get_embeddings(settings.embedder, settings.model_cache_dir, settings.model_dir, threads)


def load_in_background(embeddings: Embeddings) -> Callable[[], None]:
    """Start loading the model on another thread; the function returned waits for it and raises what it raised.

    ONNX Runtime builds its session without holding Python's lock, so the load (0.2 s here) runs beside the
    imports and the index opening a command does meanwhile instead of after them.
    """
    failed: list[BaseException] = []

    def load() -> None:
        try:
            embeddings.embed_query("warm up")
        except Exception as err:  # noqa: BLE001 - handed to the waiting command as it was
            failed.append(err)

    thread = threading.Thread(target=load, name="load-embedder", daemon=True)
    thread.start()

    def wait() -> None:
        thread.join()
        if failed:
            raise failed[0]

    return wait
