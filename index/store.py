"""The one module that talks to Chroma: an on-disk index of chunks and units, synced incrementally.

Layout of an index folder:
- `chroma/`: a persistent Chroma database with two cosine collections, `chunks` (for retrieval) and `units`
  (sentences and list items, for answering). Ids derive from content, so unchanged text is never re-embedded.
- `manifest.json`: the live sections, written atomically *after* Chroma holds their vectors. A run that dies
  half-way leaves the previous manifest, and so the previous index, in force; rows it added are swept next run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from langchain_core.embeddings import Embeddings

from corpus.chunking import section_chunks, section_units
from corpus.types import Block, Chunk, Section, Unit

FORMAT = 1
BATCH = 64
Progress = Callable[[int, int], None]


class IndexError_(Exception):
    """The index cannot be read; the message says why."""


@dataclass(frozen=True)
class SyncReport:
    added: int
    updated: int
    removed: int
    unchanged: int
    embedded: int
    seconds: float

    def __str__(self) -> str:
        return (
            f"{self.added} added, {self.updated} updated, {self.removed} removed, {self.unchanged} unchanged "
            f"({self.embedded} texts embedded in {self.seconds:.1f} s)"
        )


@dataclass(frozen=True)
class Manifest:
    model_id: str
    indexed_at: float
    sections: tuple[Section, ...]
    hashes: dict[str, str]  # section key -> content hash
    warnings: tuple[str, ...] = ()


def section_hash(section: Section, model_id: str, pieces: tuple[list[Chunk], list[Unit]] | None = None) -> str:
    """Changes exactly when what gets embedded for the section changes, the embedding model included.

    It hashes the embedded texts themselves, so a change in how sections are cut into chunks and units re-embeds
    what it touches; line numbers are left out, so a line added above a section costs no re-embedding (the
    manifest carries the new line numbers).
    """
    its_chunks, its_units = pieces or (section_chunks(section), section_units(section))
    chunks = [c.embed_text for c in its_chunks]
    units = [_unit_embed_text(section, u) for u in its_units]
    payload = json.dumps([section.key, section.kind, chunks, units], ensure_ascii=False)
    return hashlib.sha1(f"{FORMAT}\n{model_id}\n{payload}".encode()).hexdigest()[:20]


def _section_from_dict(data: dict) -> Section:
    blocks = tuple(Block(**block) for block in data.pop("blocks"))
    return Section(
        **{**data, "heading_path": tuple(data["heading_path"]), "links": tuple(data["links"])}, blocks=blocks
    )


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_manifest(index_dir: Path) -> Manifest | None:
    """The manifest, None when there is none yet; raises `IndexError_` when it is unreadable."""
    path = index_dir / "manifest.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')} is not {FORMAT}")
        return Manifest(
            model_id=data["model_id"],
            indexed_at=data["indexed_at"],
            sections=tuple(_section_from_dict(s) for s in data["sections"]),
            hashes=dict(data["hashes"]),
            warnings=tuple(data.get("warnings", ())),
        )
    except (ValueError, KeyError, TypeError) as err:
        raise IndexError_(f"manifest {path} is unreadable ({err})") from err


class ChromaIndex:
    """Chunks and units of the live sections, in Chroma, with their manifest."""

    def __init__(self, index_dir: Path, embeddings: Embeddings, model_id: str) -> None:
        import chromadb
        from langchain_chroma import Chroma

        self.index_dir = index_dir
        self.embeddings = embeddings
        self.model_id = model_id
        index_dir.mkdir(parents=True, exist_ok=True)
        try:
            client = chromadb.PersistentClient(
                path=str(index_dir / "chroma"), settings=chromadb.Settings(anonymized_telemetry=False)
            )
            config = {"hnsw": {"space": "cosine"}}
            self.chunks = Chroma("chunks", embeddings, client=client, collection_configuration=config)
            self.units = Chroma("units", embeddings, client=client, collection_configuration=config)
            self.manifest = read_manifest(index_dir)
            self._check()
        except IndexError_:
            raise
        except Exception as err:  # Chroma raises many kinds on a damaged database
            raise IndexError_(f"Chroma database in {index_dir} is unreadable ({type(err).__name__}: {err})") from err
        self._live: set[str] = set(self.manifest.hashes.values()) if self.manifest else set()

    def _check(self) -> None:
        """Every live section must have its vectors; a manifest ahead of Chroma means a damaged index."""
        if self.manifest is None:
            return
        live = set(self.manifest.hashes.values())
        have = {meta["hash"] for meta in self.chunks.get(include=["metadatas"])["metadatas"]}
        missing = live - have
        if missing:
            raise IndexError_(f"index in {self.index_dir} lacks vectors for {len(missing)} sections")

    @property
    def sections(self) -> tuple[Section, ...]:
        return self.manifest.sections if self.manifest else ()

    def sync(
        self, sections: Sequence[Section], warnings: Iterable[str] = (), progress: Progress | None = None
    ) -> SyncReport:
        """Make the index hold exactly `sections`, embedding only what changed."""
        started = time.perf_counter()
        old = self.manifest.hashes if self.manifest and self.manifest.model_id == self.model_id else {}
        # Cut each section once: the pieces give both its hash and, when it changed, what to embed.
        pieces = {s.key: (section_chunks(s), section_units(s)) for s in sections}
        new = {s.key: section_hash(s, self.model_id, pieces[s.key]) for s in sections}
        # A section is present only with all its rows: a run that died between batches left some out.
        have_chunks = Counter(meta["hash"] for meta in self.chunks.get(include=["metadatas"])["metadatas"])
        have_units = Counter(meta["hash"] for meta in self.units.get(include=["metadatas"])["metadatas"])
        chunks, units = [], []
        for s in sections:
            its_chunks, its_units = pieces[s.key]
            h = new[s.key]
            if s.indexable and (have_chunks[h] != len(its_chunks) or have_units[h] != len(its_units)):
                chunks += [(s, c) for c in its_chunks]
                units += [(s, u) for u in its_units]
        total, done = len(chunks) + len(units), 0
        if progress:
            progress(0, total)
        for batch in _batches(chunks):
            self.chunks.add_texts(
                [c.embed_text for _, c in batch],
                metadatas=[{"section": s.key, "hash": new[s.key], "ordinal": c.ordinal} for s, c in batch],
                ids=[f"{new[s.key]}-c{c.ordinal}" for s, c in batch],
            )
            done += len(batch)
            if progress:
                progress(done, total)
        for batch in _batches(units):
            self.units.add_texts(
                [_unit_embed_text(s, u) for s, u in batch],
                metadatas=[{"section": s.key, "hash": new[s.key], "ordinal": u.ordinal} for s, u in batch],
                ids=[f"{new[s.key]}-u{u.ordinal}" for s, u in batch],
            )
            done += len(batch)
            if progress:
                progress(done, total)
        live = {new[s.key] for s in sections if s.indexable}
        hashes = {key: value for key, value in new.items() if value in live}
        manifest = Manifest(self.model_id, time.time(), tuple(sections), hashes, tuple(warnings))
        _write_json_atomic(
            self.index_dir / "manifest.json",
            {
                "format": FORMAT,
                "model_id": manifest.model_id,
                "indexed_at": manifest.indexed_at,
                "sections": [asdict(s) for s in sections],
                "hashes": hashes,
                "warnings": list(manifest.warnings),
            },
        )
        self.manifest, self._live = manifest, live
        self._sweep(live)
        old_keys, new_keys = set(old), set(hashes)
        return SyncReport(
            added=len(new_keys - old_keys),
            updated=sum(1 for k in new_keys & old_keys if old[k] != hashes[k]),
            removed=len(old_keys - new_keys),
            unchanged=sum(1 for k in new_keys & old_keys if old[k] == hashes[k]),
            embedded=total,
            seconds=time.perf_counter() - started,
        )

    def _sweep(self, live: set[str]) -> None:
        """Delete rows of sections no longer live (changed, removed, or left by an interrupted run)."""
        for store in (self.chunks, self.units):
            got = store.get(include=["metadatas"])
            dead = [i for i, meta in zip(got["ids"], got["metadatas"], strict=True) if meta["hash"] not in live]
            for start in range(0, len(dead), 5000):
                store.delete(ids=dead[start : start + 5000])

    def search_chunks(self, vector: list[float], k: int) -> list[tuple[str, float]]:
        """(section key, cosine similarity) of the k nearest live chunks, best first."""
        return self._search(self.chunks, vector, k)

    def search_units(self, vector: list[float], k: int) -> list[tuple[str, float]]:
        """(section key, cosine similarity) of the k nearest live units, best first."""
        return self._search(self.units, vector, k)

    def _search(self, store, vector: list[float], k: int) -> list[tuple[str, float]]:
        if not self._live:
            return []
        found = store.similarity_search_by_vector_with_relevance_scores(vector, k=k)
        live = self._live
        return [(doc.metadata["section"], 1.0 - distance) for doc, distance in found if doc.metadata["hash"] in live]

    def unit_vectors(self, section_keys: Sequence[str]) -> dict[str, list[tuple[int, list[float]]]]:
        """(unit ordinal, vector) of every unit of the given sections, in reading order."""
        if not section_keys or self.manifest is None:
            return {}
        hashes = [self.manifest.hashes[k] for k in section_keys if k in self.manifest.hashes]
        if not hashes:
            return {}
        got = self.units.get(where={"hash": {"$in": hashes}}, include=["metadatas", "embeddings"])
        out: dict[str, list[tuple[int, list[float]]]] = {}
        for meta, vector in zip(got["metadatas"], got["embeddings"], strict=True):
            out.setdefault(meta["section"], []).append((meta["ordinal"], list(vector)))
        for rows in out.values():
            rows.sort(key=lambda row: row[0])
        return out


def _unit_embed_text(section: Section, unit: Unit) -> str:
    # The title goes in front: "Fully managed messaging service." alone does not say it is SNS; a list item
    # keeps the label it hangs under: "Cons: higher latency between regions".
    context = f"{unit.context}: " if unit.context else ""
    return f"{section.title}: {context}{unit.text}"


def _batches(items: list, size: int = BATCH) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def move_aside(index_dir: Path) -> Path:
    """Move a damaged index out of the way (kept for inspection) and return where it went."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = index_dir.with_name(f"{index_dir.name}.damaged-{stamp}")
    n = 1
    while target.exists():  # a second damage within the same second
        target = index_dir.with_name(f"{index_dir.name}.damaged-{stamp}-{n}")
        n += 1
    shutil.move(str(index_dir), target)
    return target
