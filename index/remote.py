"""The index in a Chroma server (`NOTES_CHROMA_URL`): vectors, manifest and keyword index all live in the server.

A second process anywhere, given the URL and the same embedding model, opens the same index and answers the same
questions with the same citations; it needs no files from the machine that indexed.

Beside the `chunks` collection, a `notes_meta` collection holds:
- `head`: which generation of the manifest and of the keyword index is in force, and whether a write is under
  way (`writing`). A write adds the new generation's parts, then points `head` at them (one record, replaced
  whole), then deletes the old parts: a reader sees the old index or the new, and a writer that dies leaves the
  old one in force with `writing` set, so the next writer counts the rows instead of trusting the manifest.
- `m-<generation>-<n>` / `k-<generation>-<n>`: the manifest JSON and the keyword index (`.npz`, base64), cut in
  parts of `PART` characters (a 100,000-section manifest is far larger than one record should be), written whole
  as `index.store` writes its files; `d-<base>-<n>`: the deltas appended to the manifest whose parts are
  generation `base` (the head's `manifest_base`, `manifest_deltas` of them), one record each.
- `lease`: who is writing, until when. Chroma has no compare-and-set, so the lease is taken by writing it and
  reading it back after `LEASE_SETTLE`: two writers that start within that time can both win. It keeps two
  `index` runs apart in practice (the case that damaged embedded indexes); a writer that dies holds it at most
  `LEASE_TTL`. Readers take no lease: the server serializes writes, and readers see one generation or the next.

Every record carries a one-dimensional placeholder vector: Chroma stores no record without one, and without it
Chroma would reach for its default embedding model (a download).
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

from langchain_core.embeddings import Embeddings

from index.store import (
    LOCK_POLL,
    LOCK_WAIT,
    ChromaIndex,
    IndexBusy,
    IndexError_,
    Manifest,
    Say,
)

META = "notes_meta"
HEAD = "head"
LEASE = "lease"
# Characters per stored part: a 4 MB record goes to a local server and back in about 0.5 s.
PART = 4_000_000
# A writer renews its lease at least every LEASE_TTL / 3 while it writes; one not renewed for this long is dead.
LEASE_TTL = 60.0
# How long a writer waits after writing the lease before reading it back: longer than a local round trip
# (about 5 ms), so of two writers that overlap, the later write is the one both read.
LEASE_SETTLE = 0.2
_PLACEHOLDER = [1.0]


def server_address(url: str) -> tuple[str, int, bool]:
    """(host, port, ssl) of a Chroma server URL: `http://10.0.0.5:8000` -> `("10.0.0.5", 8000, False)`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"{url!r} is not a Chroma server URL like http://host:8000")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 8000), parts.scheme == "https"


def connect(url: str):
    """A client of the server at `url`; raises `IndexError_` in one line when it cannot be reached."""
    import chromadb

    host, port, ssl = server_address(url)
    try:
        client = chromadb.HttpClient(
            host=host, port=port, ssl=ssl, settings=chromadb.Settings(anonymized_telemetry=False)
        )
        client.heartbeat()
    except Exception as err:  # httpx and chromadb raise many kinds for a server that is down or not Chroma
        raise IndexError_(f"cannot reach the Chroma server at {url} ({type(err).__name__}: {err})") from err
    return client


class RemoteIndex(ChromaIndex):
    """The index in the Chroma server at `url`. `state` is the generation in force; `refresh` follows a newer one."""

    def __init__(self, url: str, embeddings: Embeddings, model_id: str, create: bool = True, client=None) -> None:
        self.url = url
        self.index_dir = None
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._leased_at: float | None = None
        client = client or connect(url)
        try:
            self.meta = client.get_or_create_collection(META, embedding_function=None)
            self._head = self._read_head()
            self.state = self._head.get("generation", "")
            self._open(client, embeddings, model_id, create)
        except IndexError_:
            raise
        except Exception as err:
            problem = f"{type(err).__name__}: {err}"
            raise IndexError_(f"the index in the Chroma server at {url} is unreadable ({problem})") from err

    def close(self) -> None:
        self.state = None  # the HTTP client holds no files; the next use reopens

    def _unit_file(self) -> None:
        """Unit vectors are kept in this process only: nothing is kept on the machine that reads a server."""
        return None

    def _where(self) -> str:
        return f"in the Chroma server at {self.url}"

    # The head, and parts of stored text.

    def _read_head(self) -> dict:
        got = self.meta.get(ids=[HEAD], include=["metadatas"])
        return dict(got["metadatas"][0]) if got["ids"] else {}

    def _write_head(self, head: dict) -> None:
        self.meta.upsert(ids=[HEAD], embeddings=[_PLACEHOLDER], metadatas=[head], documents=[""])
        self._head = head

    def _read_parts(self, prefix: str, generation: str, count: int, joiner: str = "") -> str:
        ids = [f"{prefix}-{generation}-{n}" for n in range(count)]
        text: dict[str, str] = {}
        for start in range(0, count, 8):  # at most 8 parts (32 MB) per response
            got = self.meta.get(ids=ids[start : start + 8], include=["documents"])
            text.update(zip(got["ids"], got["documents"], strict=True))
        if len(text) != count:
            raise IndexError_(f"the index {self._where()} lacks {count - len(text)} of {count} stored parts")
        return joiner.join(text[i] for i in ids)

    def _write_parts(self, prefix: str, generation: str, text: str) -> int:
        parts = [text[start : start + PART] for start in range(0, len(text), PART)] or [""]
        for n, part in enumerate(parts):
            self.meta.upsert(
                ids=[f"{prefix}-{generation}-{n}"], embeddings=[_PLACEHOLDER], documents=[part], metadatas=[{"n": n}]
            )
        return len(parts)

    def _delete_parts(self, prefix: str, generation: str, count: int) -> None:
        if generation and count:
            ids = [f"{prefix}-{generation}-{n}" for n in range(count)]
            for start in range(0, len(ids), self._batch_limit()):
                self.meta.delete(ids=ids[start : start + self._batch_limit()])

    # What `ChromaIndex` keeps in files, kept in the server.

    def _read_manifest_text(self) -> str | None:
        head = self._head
        if not head.get("generation"):
            return None
        base = head.get("manifest_base") or head["generation"]  # heads before deltas: the generation's parts
        text = self._read_parts("m", base, int(head["manifest_parts"]))
        count = int(head.get("manifest_deltas", 0))
        if count:
            text += "\n" + self._read_parts("d", base, count, "\n")
        return text

    def _read_keyword(self) -> bytes | None:
        head = self._head
        if not head.get("keyword_generation"):
            return None
        with contextlib.suppress(IndexError_, ValueError):  # missing or garbled: the keyword index is rebuilt
            text = self._read_parts("k", head["keyword_generation"], int(head["keyword_parts"]))
            return base64.b64decode(text.encode("ascii"), validate=True)
        return None

    def _begin_write(self) -> bool:
        head = self._read_head()
        trusted = not head.get("writing") and head.get("generation", "") == self.state
        self._write_head({**head, "writing": self.holder})
        return trusted

    def _manifest_update(self, manifest: Manifest) -> str | None:
        delta = super()._manifest_update(manifest)
        return delta if delta is not None and len(delta) <= PART else None  # one record each

    def _commit(self, manifest: Manifest, keyword, fingerprint: str) -> Manifest:
        """A new generation: the manifest's next delta (`d-<base>-<n>`), or its parts written whole with the
        keyword index (as `ChromaIndex._commit`), then the head pointing at them, then the parts no longer needed
        deleted."""
        old = dict(self._head)
        generation = uuid.uuid4().hex[:16]
        head = {**old, "generation": generation}
        delta = self._manifest_update(manifest)
        if delta is not None:
            base, count = old.get("manifest_base") or old["generation"], int(old.get("manifest_deltas", 0))
            self.meta.upsert(
                ids=[f"d-{base}-{count}"], embeddings=[_PLACEHOLDER], documents=[delta], metadatas=[{"n": count}]
            )
            head |= {"manifest_base": base, "manifest_deltas": count + 1}
            kept = None
        else:
            manifest, kept = self._keyword_to_keep(manifest, keyword, fingerprint)
            text = "\n".join(self._compacted(manifest))
            parts = self._write_parts("m", generation, text)
            head |= {"manifest_base": generation, "manifest_parts": parts, "manifest_deltas": 0}
        if kept is not None:
            encoded = base64.b64encode(kept).decode("ascii")
            head |= {"keyword_generation": generation, "keyword_parts": self._write_parts("k", generation, encoded)}
        self._write_head(head)
        self.state = generation
        self._written(len((delta if delta is not None else text).encode()), whole=delta is None)
        if delta is None:
            old_base = old.get("manifest_base") or old.get("generation", "")
            self._delete_parts("m", old_base, int(old.get("manifest_parts", 0)))
            self._delete_parts("d", old_base, int(old.get("manifest_deltas", 0)))
        if kept is not None:
            self._delete_parts("k", old.get("keyword_generation", ""), int(old.get("keyword_parts", 0)))
        return manifest

    def _end_write(self) -> None:
        self._write_head({**self._head, "writing": ""})
        self.state = self._head.get("generation", "")

    def _still_writing(self) -> None:
        """Renew the lease during a long write."""
        if self._leased_at is not None and time.monotonic() - self._leased_at > LEASE_TTL / 3:
            self._take_lease("index")

    # Following other processes' writes, and keeping writers apart.

    def refresh(self) -> bool:
        """Follow the generation in force if another process wrote since; True when it did."""
        head = self._read_head()
        if head.get("generation", "") == self.state:
            return False
        self._head = head
        self.state = head.get("generation", "")
        self._load_manifest(self._read_manifest_text())
        self._live = set(self.manifest.hashes.values()) if self.manifest else set()
        self._keyword, self._keyword_of = None, None
        return True

    @contextlib.contextmanager
    def lease(self, doing: str = "index", wait: float = LOCK_WAIT, say: Say | None = None) -> Iterator[None]:
        """Hold the server's write lease for `doing`, waiting up to `wait` seconds for another holder."""
        deadline = time.monotonic() + wait
        told = False
        while True:
            held = self._lease_holder()
            if held == self.holder:
                break
            if held is None:
                self._take_lease(doing)
                time.sleep(LEASE_SETTLE)
                if self._lease_holder() == self.holder:
                    break
                continue
            if time.monotonic() >= deadline:
                raise IndexBusy(
                    f"another indexing run ({held}) is writing the index {self._where()}; try again when it has "
                    f"finished (waited {wait:.0f} s)"
                )
            if not told and say is not None:
                say(f"another indexing run ({held}) is writing the index {self._where()}; waiting")
                told = True
            time.sleep(max(LOCK_POLL, LEASE_SETTLE))
        try:
            yield
        finally:
            self._leased_at = None
            if self._lease_holder() == self.holder:
                self.meta.delete(ids=[LEASE])

    def _lease_holder(self) -> str | None:
        """Who holds the lease now; None when nobody does or the holder stopped renewing it."""
        got = self.meta.get(ids=[LEASE], include=["metadatas"])
        if not got["ids"]:
            return None
        meta = got["metadatas"][0]
        return meta["holder"] if meta.get("until", 0.0) > time.time() else None

    def _take_lease(self, doing: str) -> None:
        until = time.time() + LEASE_TTL
        held = {"holder": self.holder, "until": until}
        self.meta.upsert(ids=[LEASE], embeddings=[_PLACEHOLDER], documents=[doing], metadatas=[held])
        self._leased_at = time.monotonic()
