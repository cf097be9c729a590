"""The one module that talks to Chroma: an on-disk index of chunks, synced incrementally.

Layout of an index folder (the folder 0700 and every file in it 0600: it holds text from private notes):
- `chroma/`: a persistent Chroma database with a cosine collection, `chunks`. Ids derive from content, so
  unchanged text is never re-embedded. Units (sentences and list items) are embedded when a question needs them
  (`index.units`); an index from before that has a `units` collection too, dropped at its next write.
- `manifest.json`: the live sections, written *after* Chroma holds their vectors: a header line and a line per
  section, written whole (atomically), then a line appended per write that changed little (a delta naming the
  runs of lines it keeps and the new lines: a one-section edit of 100,000 sections appends kilobytes instead of
  rewriting 120 MB), until `MAX_DELTAS` or a quarter of its size, when it is written whole again. A run that dies
  half-way leaves the previous manifest, and so the previous index, in force (a delta cut short is ignored, and
  cut off by the next write); rows it added are swept next run, and the sections it finished are not embedded
  again.
- `keyword.npz`: the keyword (BM25) index (`index.retrieve.KeywordIndex`), written with a manifest written whole,
  before it, and tagged with the sections it was built from. One a few deltas behind the manifest gives the
  counts of the sections that did not change since, and only the others are tokenized at open.
- `units.sqlite3`: the unit vectors questions embedded (`index.units.UnitFile`), by content hash: a new process
  finds the units of sections asked about before. Not part of the index's state: any run may add to it.
- `lock`: an advisory lock (flock) that every run holds while it uses Chroma. Chroma is not safe for two writers
  (two overlapping `index` runs left a collection that failed every `get` of its vectors), and in Chroma
  1.5 a reader writes too: opening a client records itself in `chroma.sqlite3`, and a query replays the write
  log into the vector index and may rewrite its files. So there is one kind of lock, exclusive. A run holds it
  for one write, one command, or one question of a chat. See `IndexLock`.
- `clean`: present only while the database is known good: a writer removes it before its first write and puts
  it back after the manifest. An index without it (a writer died, or an index from before this marker) gets a
  health check in a child process before this process opens it: Chroma on a damaged database can abort,
  segfault or hang the process that opens it (garbled HNSW data: SIGSEGV, a truncated header: SIGABRT).

With a Chroma server (`NOTES_CHROMA_URL`) there are no files: `index.remote.RemoteIndex` keeps the manifest and
the keyword index in the server too, and writers take a lease there instead of the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from corpus.chunking import section_chunks, section_units
from corpus.types import Block, Chunk, Section, Unit
from index.retrieve import KeywordIndex, keyword_current, keyword_fingerprint, pairs_fingerprint, unit_scores
from index.units import UnitFile, UnitRows, UnitVectors, unit_embed_text

FORMAT = 1
# Texts per write: Chroma's cost per write is what a batch amortizes (on 600 sections, 4,221 texts with letter
# embeddings, 64 took 3.8-4.8 s, 128 2.7-2.9 s). A killed run loses one batch.
BATCH = 128
# The collection of unit vectors indexes kept before units were embedded at answer time: dropped at a write.
LEGACY_UNITS = "units"
# Deltas appended to a manifest before it is written whole again: an open applies each (a list of 100,000 lines
# rebuilt per delta, about 1 ms), and the rewrite of a 120 MB manifest (100,000 sections) costs about a second.
MAX_DELTAS = 64
# Deltas may add up to a quarter of the manifest, or this many bytes for a small one (rewriting it costs nothing).
APPENDED_FLOOR = 1_000_000
Progress = Callable[[int, int], None]
Say = Callable[[str], None]

LOCK_FILE = "lock"
KEYWORD_FILE = "keyword.npz"
UNITS_FILE = "units.sqlite3"  # unit vectors embedded by questions, kept for the next process (`index.units`)
# Files beside the index that are not derived from the notes (practice history: practice.sqlite3 and its
# journal) stay when a damaged index is moved aside: rebuilding the index cannot bring them back.
KEPT_PREFIX = "practice."
CLEAN_FILE = "clean"
# How long a run waits for another to release the index before giving up with a message. A full index of the
# bundled notes takes 2.8 s and of 5,520 sections 302 s (README); a second run that waits that out finds nothing
# left to embed. Longer than that, the holder is most likely stuck, and the user should hear so.
LOCK_WAIT = 300.0
LOCK_POLL = 0.1  # flock has no timeout: poll a non-blocking attempt
# The health check's child takes 1.0 s on the bundled notes, 1.2 s on 600 sections (4,221 texts) and 3.2 s on
# 5,000 sections (32,406 texts of 384 dimensions) on this 2-core machine, about 1 s of it starting chromadb.
# One that takes 60 s is hung on a damaged database.
CHECK_TIMEOUT = 60.0


class IndexError_(Exception):
    """The index cannot be read; the message says why."""


class IndexBusy(IndexError_):
    """Another run held the index for longer than this one waits."""


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
class ManifestLog:
    """How the manifest in force is stored: `size` in all (bytes in a file, characters in a server), the first
    `base` of it written whole, then `deltas` appended lines."""

    size: int
    base: int
    deltas: int


@dataclass(frozen=True)
class Manifest:
    model_id: str
    indexed_at: float
    sections: tuple[Section, ...]
    hashes: dict[str, str]  # section key -> content hash
    warnings: tuple[str, ...] = ()
    notes: str = ""  # fingerprint of the notes it was built from ("" when unknown): see `assistant.app`
    # content hash -> [chunks] it has in Chroma (`[chunks, units]` in indexes that kept unit vectors: the units
    # count is not read); empty in manifests written before it was kept
    rows: dict[str, list[int]] = field(default_factory=dict)
    keyword: str = ""  # `keyword_fingerprint` of the keyword index kept with it ("" when none is)


def section_hash(section: Section, model_id: str, pieces: tuple[list[Chunk], list[Unit]] | None = None) -> str:
    """Changes exactly when what gets embedded for the section changes, the embedding model included.

    It hashes the embedded texts themselves, chunks and units, so a change in how sections are cut re-embeds what
    it touches, and the unit vectors a question embeds are kept by it (`index.units`); line numbers are left out,
    so a line added above a section costs no re-embedding (the manifest carries the new line numbers).
    """
    its_chunks, its_units = pieces or (section_chunks(section), section_units(section))
    chunks = [c.embed_text for c in its_chunks]
    units = [unit_embed_text(section, u) for u in its_units]
    payload = json.dumps([section.key, section.kind, chunks, units], ensure_ascii=False)
    return hashlib.sha1(f"{FORMAT}\n{model_id}\n{payload}".encode()).hexdigest()[:20]


def _section_from_dict(data: dict) -> Section:
    blocks = tuple(Block(**block) for block in data.pop("blocks"))
    return Section(
        **{**data, "heading_path": tuple(data["heading_path"]), "links": tuple(data["links"])}, blocks=blocks
    )


def _fsync_dir(path: Path) -> None:
    """Make a rename or unlink in `path` survive a crash of the machine, not just of the process."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_private(path: Path, text: str | bytes | Iterable[str]) -> int:
    """Write `path` atomically, readable by its owner only from the first byte; returns the bytes written.

    Lines (an iterable of str) are written one at a time, joined by newlines: a 100,000-section manifest is 188 MB,
    and holding it whole, then encoded, added about 380 MB to the peak of a full index.
    """
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    size = 0
    with os.fdopen(fd, "wb") as handle:
        if isinstance(text, (str, bytes)):
            size = handle.write(text.encode() if isinstance(text, str) else text)
        else:
            for n, line in enumerate(text):
                size += handle.write((b"\n" if n else b"") + line.encode())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    return size


def manifest_text(manifest: Manifest) -> str:
    """The manifest as `parse_manifest` reads it: a header line, then one JSON line per section (its content hash,
    its row counts and the section: `["1f2e...", [2, 9], {"path": "a.md", ...}]`)."""
    return "\n".join(manifest_text_lines(manifest))


def manifest_text_lines(manifest: Manifest) -> Iterator[str]:
    """`manifest_text`'s lines, made one at a time."""
    header = _header(manifest) | {"layout": "log"}
    yield json.dumps(header, ensure_ascii=False)
    for s in manifest.sections:
        yield _entry(s, manifest)


def manifest_delta(old: Manifest, new: Manifest, same: Sequence[int | None] | None = None) -> str:
    """One line that turns `old`'s text into `new`'s when appended to it: `new`'s header, and its sections as
    runs of `old`'s (`[start, end]`) and the lines of the others. A one-section edit of 100,000 sections appends
    a few kilobytes instead of rewriting 120 MB (0.28 s of a one-section edit on 10,000 sections).

    `same`: for each of `new`'s sections, where `old` has the same line (section, hash and row counts), or None;
    found here when not given (a sync knows it already).
    """
    if same is None:
        at = {s.key: i for i, s in enumerate(old.sections)}
        same = []
        for s in new.sections:
            i = at.get(key := s.key)
            was = old.sections[i] if i is not None else None
            h = new.hashes.get(key)
            keep = was is not None and (was is s or was == s) and old.hashes.get(key) == h
            same.append(i if keep and old.rows.get(h) == new.rows.get(h) else None)
    ops: list = []
    for s, i in zip(new.sections, same, strict=True):
        if i is None:
            ops.append(_entry(s, new))
        elif ops and isinstance(ops[-1], list) and ops[-1][1] == i:
            ops[-1][1] = i + 1
        else:
            ops.append([i, i + 1])
    return json.dumps(_header(new) | {"ops": ops}, ensure_ascii=False)


def _header(manifest: Manifest) -> dict:
    return {
        "format": FORMAT,
        "model_id": manifest.model_id,
        "indexed_at": manifest.indexed_at,
        "warnings": list(manifest.warnings),
        "notes": manifest.notes,
        "keyword": manifest.keyword,
        "sections": len(manifest.sections),
    }


def _entry(section: Section, manifest: Manifest) -> str:
    h = manifest.hashes.get(section.key)
    return json.dumps([h, manifest.rows.get(h) if h else None, _section_dict(section)], ensure_ascii=False)


def _section_dict(section: Section) -> dict:
    """`asdict` for a section, without its deep copies: on 10,000 sections 0.5 s where `asdict` took 3.9 s."""
    data = {f.name: getattr(section, f.name) for f in _SECTION_FIELDS}
    data["blocks"] = [{f.name: getattr(b, f.name) for f in _BLOCK_FIELDS} for b in section.blocks]
    return data


_SECTION_FIELDS = fields(Section)
_BLOCK_FIELDS = fields(Block)


def read_manifest(index_dir: Path) -> Manifest | None:
    """The manifest, None when there is none yet; raises `IndexError_` when it is unreadable."""
    path = index_dir / "manifest.json"
    if not path.exists():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError) as err:
        raise IndexError_(f"manifest {path} is unreadable ({err})") from err
    return parse_manifest(text, f"manifest {path}")


def manifest_lines(text: str) -> tuple[dict, list[str], bool]:
    """The header in force and each section's line, with the appended deltas applied: the text of a manifest
    written whole says the same (`manifest_text`). A last delta cut short (its writer died while appending)
    is left out (the third value says so): the manifest before it is in force. Raises `ValueError` when the
    text is damaged."""
    rows = text.split("\n")
    header = json.loads(rows[0])
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"format {header.get('format') if isinstance(header, dict) else None} is not {FORMAT}")
    count = header["sections"]
    lines = rows[1 : 1 + count]
    if len(lines) != count:
        raise ValueError(f"{len(lines)} of its {count} sections are there")
    deltas = rows[1 + count :]
    for n, raw in enumerate(deltas):
        try:
            delta = json.loads(raw)
        except ValueError:
            if n == len(deltas) - 1:
                return header, lines, True
            raise
        lines = [line for op in delta["ops"] for line in (lines[op[0] : op[1]] if isinstance(op, list) else [op])]
        if len(lines) != delta["sections"]:
            raise ValueError(f"a delta gives {len(lines)} of its {delta['sections']} sections")
        header = delta
    return header, lines, False


def parse_manifest(text: str, where: str) -> Manifest:
    """The manifest in `text`; raises `IndexError_` naming `where` when it is unreadable. Reads the earlier layouts
    too: a header with every hash and a line per section (before 2026-12), one JSON document (before 2026-11)."""
    try:
        first = json.loads(text.partition("\n")[0])
        if isinstance(first, dict) and first.get("layout") == "log":
            data, lines, _ = manifest_lines(text)
            hashes: dict[str, str] = {}
            rows: dict[str, list[int]] = {}
            sections = []
            for line in lines:
                h, counts, section = json.loads(line)
                sections.append(s := _section_from_dict(section))
                if h:
                    hashes[s.key] = h
                    if counts is not None:
                        rows[h] = [int(n) for n in counts]
            sections = tuple(sections)
        else:
            data = first
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format') if isinstance(data, dict) else None} is not {FORMAT}")
            if data.get("layout") == "lines":
                raw = text.partition("\n")[2]
                raw = raw.split("\n") if raw else []
                if len(raw) != data["sections"]:
                    raise ValueError(f"{len(raw)} of its {data['sections']} sections are there")
                sections = tuple(_section_from_dict(json.loads(line)) for line in raw)
            else:
                sections = tuple(_section_from_dict(s) for s in data["sections"])
            hashes = dict(data["hashes"])
            rows = {h: [int(n) for n in counts] for h, counts in data.get("rows", {}).items()}
        return Manifest(
            model_id=data["model_id"],
            indexed_at=data["indexed_at"],
            sections=sections,
            hashes=hashes,
            warnings=tuple(data.get("warnings", ())),
            notes=str(data.get("notes", "")),
            rows=rows,
            keyword=str(data.get("keyword", "")),
        )
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
        raise IndexError_(f"{where} is unreadable ({err})") from err


# Keeping the index private, locked and known good.


def make_private_dir(path: Path) -> None:
    """Create `path` (and a missing parent) readable by its owner only; tighten it if it already exists."""
    if not path.parent.exists():
        path.parent.parent.mkdir(parents=True, exist_ok=True)
        path.parent.mkdir(mode=0o700, exist_ok=True)
    path.mkdir(mode=0o700, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != 0o700:  # an index made before this rule
        os.chmod(path, 0o700)


def make_private(index_dir: Path) -> None:
    """Folders 0700 and files 0600 throughout the index, Chroma's own files included.

    Chroma creates its files with the process umask (0644 under the usual 022); setting the umask instead would
    change it for every thread of the Streamlit server. The index folder itself is 0700 before Chroma writes
    anything, so nobody else can reach those files in the moment before this runs.
    """
    for root, dirs, files in os.walk(index_dir):
        os.chmod(root, 0o700)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, 0o600)
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]


class IndexLock:
    """The advisory lock of one index folder: whoever holds it is the only run using the index.

    flock rather than a pid file: the kernel releases it when its holder exits however it exits, SIGKILL and
    power loss included, so there is never a stale lock to clean up. The lock file stays in the folder for good
    (`move_aside` moves everything else), so a run waiting on it waits on the folder it will then use. The
    holder writes what it is doing there ("index 4242"), so a waiting run can say why it waits.
    A run that finds it held waits up to `wait` seconds, saying so once, then gives up with `IndexBusy`.
    Not reentrant: a process must not take it twice at once.
    """

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        self.path = index_dir / LOCK_FILE

    @contextlib.contextmanager
    def hold(self, doing: str = "read", wait: float = LOCK_WAIT, say: Say | None = None) -> Iterator[None]:
        """Hold the lock for `doing`: "index" for a sync, "read" for anything else."""
        make_private_dir(self.index_dir)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as err:
            raise IndexError_(f"cannot lock the index in {self.index_dir} ({err.strerror or err})") from err
        try:
            self._acquire(fd, wait, say)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{doing} {os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # closing the last descriptor releases the lock

    def _acquire(self, fd: int, wait: float, say: Say | None) -> None:
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            holder = os.pread(fd, 64, 0).decode(errors="replace").split()
            if holder[:1] == ["index"]:
                doing = "another indexing run is in progress"
            else:
                doing = "another notes-assistant run is using the index"
            if time.monotonic() >= deadline:
                raise IndexBusy(f"{doing} on {self.index_dir}; try again when it has finished (waited {wait:.0f} s)")
            if not told and say is not None:
                say(f"{doing} on {self.index_dir}; waiting")
                told = True
            time.sleep(LOCK_POLL)


def index_state(index_dir: Path) -> tuple[int, int] | None:
    """Identity of the last finished write, None when the index is not known good.

    Each finished write creates the `clean` marker afresh, so a new (inode, mtime) means another run wrote since.
    """
    try:
        info = (index_dir / CLEAN_FILE).stat()
    except FileNotFoundError:
        return None
    return (info.st_ino, info.st_mtime_ns)


def mark_dirty(index_dir: Path) -> None:
    """Say a write is under way: until `mark_clean`, the database may be half-written."""
    with contextlib.suppress(FileNotFoundError):
        (index_dir / CLEAN_FILE).unlink()
        _fsync_dir(index_dir)


def mark_clean(index_dir: Path) -> None:
    """Say the database is known good (a write finished, or a health check passed)."""
    _write_private(index_dir / CLEAN_FILE, f"{time.time()}\n")


def has_database(index_dir: Path) -> bool:
    return (index_dir / "chroma" / "chroma.sqlite3").exists()


# Runs in a child process: only chromadb, so it starts in about a second and can crash without harm. Every vector
# of every collection is read back (two overlapping writers left rows whose vectors could not be read, while
# counts and metadata looked right) and one real nearest-neighbour query runs on each.
_HEALTH_CHECK = """
import sys
import chromadb
client = chromadb.PersistentClient(path=sys.argv[1], settings=chromadb.Settings(anonymized_telemetry=False))
for listed in client.list_collections():
    collection = client.get_collection(getattr(listed, "name", listed))
    count = collection.count()
    step = 5000
    first = None
    for offset in range(0, count, step):
        vectors = collection.get(limit=step, offset=offset, include=["embeddings"])["embeddings"]
        if first is None and len(vectors):
            first = vectors[0]
    if first is not None:
        collection.query(query_embeddings=[first], n_results=min(count, 10))
"""


def check_health(index_dir: Path, timeout: float = CHECK_TIMEOUT) -> str | None:
    """None when every collection reads back and answers a query in a child process; else what went wrong.

    A child, because a damaged database can kill or hang the process that opens it; this process only opens it
    once the child came back well.
    """
    chroma = index_dir / "chroma"
    if not chroma.exists():
        return None
    try:
        done = subprocess.run(
            [sys.executable, "-c", _HEALTH_CHECK, str(chroma)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"the health check did not finish in {timeout:.0f} s"
    if done.returncode == 0:
        return None
    if done.returncode < 0:
        return f"the health check crashed with {signal.Signals(-done.returncode).name}"
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    return f"the health check failed: {lines[-1] if lines else f'exit status {done.returncode}'}"


class ChromaIndex:
    """Chunks of the live sections, in Chroma, with their manifest and keyword index; their units' vectors are
    embedded when a question needs them (`unit_vectors`).

    It does no locking of its own: a caller holds `IndexLock` while it uses one, as `assistant.app` does.
    `create=False` opens an existing index and never creates one (Chroma itself still writes its bookkeeping).
    Where the manifest and the keyword index are kept is this class's `_read_*`/`_begin_write`/`_commit`/
    `_end_write`: files beside the database here, the server itself in `index.remote.RemoteIndex`.
    """

    def __init__(self, index_dir: Path, embeddings: Embeddings, model_id: str, create: bool = True) -> None:
        import chromadb

        self.index_dir = index_dir
        if create:
            make_private_dir(index_dir)
            new = not has_database(index_dir)
        elif not has_database(index_dir):
            raise IndexError_(f"there is no index in {index_dir}")
        # Taken before opening: a write that finishes after this point changes it, and the caller reopens.
        self.state = index_state(index_dir)
        client = None
        try:
            client = chromadb.PersistentClient(
                path=str(index_dir / "chroma"), settings=chromadb.Settings(anonymized_telemetry=False)
            )
            self._open(client, embeddings, model_id, create)
        except Exception as err:  # Chroma raises many kinds on a damaged database
            if client is not None:
                client.close()  # let go of the files, so the folder can be moved aside
            if isinstance(err, IndexError_):
                raise
            raise IndexError_(f"Chroma database in {index_dir} is unreadable ({type(err).__name__}: {err})") from err
        if create and new:
            mark_clean(index_dir)  # an empty index is a good one
            make_private(index_dir)
            self.state = index_state(index_dir)

    def _open(self, client, embeddings: Embeddings, model_id: str, create: bool) -> None:
        """Open the collection on `client` and read the manifest; raises on a damaged index."""
        from langchain_chroma import Chroma

        self._client = client
        self.embeddings = embeddings
        self.model_id = model_id
        config = {"hnsw": {"space": "cosine"}}
        self.chunks = Chroma(
            "chunks", embeddings, client=client, collection_configuration=config, create_collection_if_not_exists=create
        )
        self.unit_cache = UnitVectors(embeddings, file=self._unit_file())  # kept across writes: by content hash
        self._load_manifest(self._read_manifest_text())
        self._check()
        self._live: set[str] = set(self.manifest.hashes.values()) if self.manifest else set()
        self._keyword: KeywordIndex | None = None
        self._keyword_of: str | None = None  # `_keyword_fingerprint`, once known

    def _load_manifest(self, text: str | None) -> None:
        """Take `text` as the manifest in force, and note how much of it is appended deltas."""
        self.manifest = parse_manifest(text, f"the manifest {self._where()}") if text else None
        self._at: dict[str, int] | None = None  # `positions`
        self._appendable = False  # set by a write that may append to the manifest it read
        self._same: list[int | None] | None = None  # set by a write: see `manifest_delta`
        self._log: ManifestLog | None = None  # none yet, or an earlier layout: the next write writes it whole
        if self.manifest is not None and '"layout": "log"' in text.partition("\n")[0]:
            data = text.encode()
            count = json.loads(text.partition("\n")[0])["sections"]
            base = -1
            for _ in range(count + 1):
                base = data.find(b"\n", base + 1)
            base = len(data) if base < 0 else base
            # A delta cut short is left out of the size, so the next append cuts it off.
            size = data.rfind(b"\n") if manifest_lines(text)[2] else len(data)
            self._log = ManifestLog(size, base, data.count(b"\n", 0, size) - count)

    def _written(self, size: int, whole: bool) -> None:
        """Note what a commit wrote (`size` bytes): the manifest whole, or one delta appended."""
        log = self._log
        if whole or log is None:
            self._log = ManifestLog(size, size, 0)
        else:
            self._log = ManifestLog(log.size + 1 + size, log.base, log.deltas + 1)

    def _manifest_update(self, manifest: Manifest) -> str | None:
        """The delta line to append for `manifest`, or None when the manifest is to be written whole: there is
        none in force yet, it may have changed since this index read it, or its deltas grew past `MAX_DELTAS`
        or a quarter of its size (`APPENDED_FLOOR` at least; each delta is applied at every open)."""
        log = self._log
        if not self._appendable or self.manifest is None or log is None or log.deltas >= MAX_DELTAS:
            return None
        if self.manifest.keyword and not keyword_current(self.manifest.keyword):
            # The kept keyword index counted other terms (an index from before an upgrade): every open would
            # tokenize every section again until a manifest is written whole with a new one, so this write is.
            return None
        delta = manifest_delta(self.manifest, manifest, self._same)
        return delta if log.size + len(delta) - log.base <= max(log.base // 4, APPENDED_FLOOR) else None

    def _compacted(self, manifest: Manifest) -> Iterable[str]:
        """The manifest's lines whole: the lines in force kept as they are (not serialized again: 5 s on 100,000
        sections), changed ones added, when the manifest in force can be read back; else serialized one by one."""
        if self._appendable and self.manifest is not None and self._log is not None:
            current = self._read_manifest_text()
            if current is not None and len(current.encode()) == self._log.size:
                _, lines, _ = manifest_lines(current + "\n" + manifest_delta(self.manifest, manifest, self._same))
                header = _header(manifest) | {"layout": "log"}
                return [json.dumps(header, ensure_ascii=False), *lines]
        return manifest_text_lines(manifest)

    def close(self) -> None:
        """Let go of the database. Chroma shares one client per folder in a process, and that client only knows
        the disk as it was when it loaded: reopening after another process wrote needs this first."""
        self._client.close()
        self.state = None

    # Where the manifest and the keyword index live (files beside the database).

    def _read_manifest_text(self) -> str | None:
        path = self.index_dir / "manifest.json"
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            raise IndexError_(f"manifest {path} is unreadable ({err})") from err

    def _unit_file(self) -> UnitFile | None:
        return UnitFile(self.index_dir / UNITS_FILE)

    def _read_keyword(self) -> bytes | None:
        with contextlib.suppress(FileNotFoundError):
            return (self.index_dir / KEYWORD_FILE).read_bytes()
        return None

    def _begin_write(self) -> bool:
        """Say a write is under way; True when the rows in Chroma are exactly the manifest's (the last write
        finished and nobody wrote since this index was opened), so the sync may trust the manifest's counts."""
        trusted = self.state is not None and index_state(self.index_dir) == self.state
        mark_dirty(self.index_dir)
        return trusted

    def _commit(self, manifest: Manifest, keyword: KeywordIndex | None, fingerprint: str) -> Manifest:
        """Make `manifest` the index in force, and return it as written: a delta appended to the manifest file
        (cut back first to what this index read or wrote, in case a run died appending), or the file written
        whole, after the keyword index (`keyword`, or the one in memory when None; of `fingerprint`)."""
        path = self.index_dir / "manifest.json"
        delta = self._manifest_update(manifest)
        log = self._log
        if delta is not None and log is not None and path.stat().st_size >= log.size:
            with open(path, "r+b") as handle:
                handle.truncate(log.size)
                handle.seek(log.size)
                handle.write(b"\n" + delta.encode())
                handle.flush()
                os.fsync(handle.fileno())
            self._written(len(delta.encode()), whole=False)
            return manifest
        manifest, kept = self._keyword_to_keep(manifest, keyword, fingerprint)
        if kept is not None:
            _write_private(self.index_dir / KEYWORD_FILE, kept)
            del kept  # 153 MB on 100,000 sections: not held while the manifest is written
        self._written(_write_private(path, self._compacted(manifest)), whole=True)
        return manifest

    def _end_write(self) -> None:
        make_private(self.index_dir)
        mark_clean(self.index_dir)
        self.state = index_state(self.index_dir)

    def _still_writing(self) -> None:
        """Called after each batch of a write: the lock needs nothing; a server's lease is renewed."""

    def _batch_limit(self) -> int:
        """Most records one Chroma call may carry (5,461 on a server; embedded Chroma allows more)."""
        return self._client.get_max_batch_size()

    def _counts(self) -> Counter:
        """Chunks per content hash, read from the ids alone ("<hash>-c3").

        Ids, not metadata: every open checks the collection, and on 5,000 sections (27,406 rows) reading the
        metadata took 0.58 s and the ids 0.06 s.
        """
        return Counter(_hash_of(i) for i in self.chunks.get(include=[])["ids"])

    def positions(self) -> dict[str, int]:
        """Where each section of the manifest is in `sections`, by key (kept until the manifest changes)."""
        if self._at is None:
            self._at = {s.key: i for i, s in enumerate(self.sections)}
        return self._at

    def _check(self) -> None:
        """Every live section must have all its chunks in Chroma; a manifest ahead of Chroma is damage."""
        if self.manifest is None:
            return
        have = self._counts()
        rows = self.manifest.rows
        # Manifests from before `rows` was kept only say that each live section has chunks.
        missing = {h for h in set(self.manifest.hashes.values()) if have[h] < rows.get(h, [1])[0]}
        if missing:
            raise IndexError_(f"index {self._where()} lacks vectors for {len(missing)} sections")

    def _where(self) -> str:
        return f"in {self.index_dir}"

    @property
    def sections(self) -> tuple[Section, ...]:
        return self.manifest.sections if self.manifest else ()

    @property
    def keyword(self) -> KeywordIndex:
        """The keyword index of the live sections: the kept one, or (none kept, or not matching) built here."""
        if self._keyword is None:
            sections = self.sections
            kept = self._read_keyword() if self.manifest and self.manifest.keyword else None
            fingerprint = keyword_fingerprint(sections, self.manifest.hashes) if self.manifest else ""
            found = KeywordIndex.from_bytes(kept, sections, fingerprint) if kept else None
            hashes = self.manifest.hashes if self.manifest else {}
            if found is None and kept:
                # Kept a few edits ago (it is kept only with a manifest written whole): its counts are reused and
                # only the sections edited since are tokenized.
                behind = KeywordIndex.from_bytes(kept, (), None)
                found = KeywordIndex.updated(behind, sections, hashes) if behind is not None else None
            self._keyword = found or KeywordIndex(sections, hashes=[hashes[s.key] for s in sections if s.indexable])
            self._keyword_of = fingerprint
        return self._keyword

    def _keyword_fingerprint(self) -> str:
        """`keyword_fingerprint` of the live sections (what the keyword index in memory is, or would be, built
        from); not the kept one's, which may be a few edits behind."""
        if self._keyword_of is None:
            self._keyword_of = keyword_fingerprint(self.sections, self.manifest.hashes) if self.manifest else ""
        return self._keyword_of

    def _keyword_to_keep(
        self, manifest: Manifest, keyword: KeywordIndex | None, fingerprint: str
    ) -> tuple[Manifest, bytes | None]:
        """With a manifest written whole, the keyword index to keep with it (None: the kept one is current).

        Only then: on 100,000 sections it is 150 MB, more than a one-section edit may write, and an open brings a
        kept one a few edits behind up to date by tokenizing the sections it lacks (`keyword`).
        """
        if manifest.keyword == fingerprint:
            return manifest, None
        current = keyword if keyword is not None else self.keyword
        return replace(manifest, keyword=fingerprint), current.to_bytes(fingerprint)

    def sync(
        self,
        sections: Sequence[Section],
        warnings: Iterable[str] = (),
        progress: Progress | None = None,
        notes: str = "",
    ) -> SyncReport:
        """Make the index hold exactly `sections`, embedding only what changed. `notes` fingerprints the notes.

        Each section is written whole, a few sections per batch, and the next run counts rows per section: a run
        killed part-way leaves it only the sections it did not finish.
        """
        started = time.perf_counter()
        begun = self._begin_write()
        self._drop_legacy_units()
        trusted = begun and self.manifest is not None and bool(self.manifest.rows)
        self._appendable = begun  # the manifest this index holds is the one in force: a delta may follow it
        old = self.manifest.hashes if self.manifest and self.manifest.model_id == self.model_id else {}
        # A section exactly as the manifest has it (same text, same lines) keeps its hash and row counts: cutting
        # 10,000 sections into chunks and units to hash them again took 4.9 s. The others are cut once: the
        # pieces give both the hash and, when it changed, what to embed (its chunks: its units, 875,437 of them on
        # 100,000 sections, are dropped once hashed).
        # Found by key, then checked: the same object (after a sync in this process, the notes' unchanged sections
        # are) or equal. A dict keyed by sections hashed every field of every one (0.15 s on 10,000 sections).
        keys = [s.key for s in sections]
        at = self.positions() if old else {}
        had, old_rows = self.sections, self.manifest.rows if self.manifest else {}
        pieces: dict[str, list[Chunk]] = {}
        new: dict[str, str] = {}
        same: list[int | None] = []  # where the manifest has each section's line as it will be, for its delta
        for s, key in zip(sections, keys, strict=True):
            i = at.get(key)
            i = i if i is not None and (had[i] is s or had[i] == s) else None
            h = old.get(key) if i is not None else None
            if h is None or h not in old_rows:
                its_chunks = section_chunks(s)
                h = section_hash(s, self.model_id, (its_chunks, section_units(s)))
                pieces[key] = its_chunks
                i = i if i is not None and not s.indexable else None  # unchanged, and never had a hash
            new[key] = h
            same.append(i)
        self._same = same
        # After a finished write Chroma holds exactly the manifest's rows, so they need not be listed (listing
        # 700,000 ids takes seconds, and a one-section edit must not).
        have = Counter({h: n[0] for h, n in self.manifest.rows.items()}) if trusted else self._counts()
        # Per section, whether it lacks chunks: a run that died part-way left some sections without theirs.
        todo: list[tuple[Section, list[Chunk]]] = []
        for s, key in zip(sections, keys, strict=True):
            h = new[key]
            if not s.indexable:
                continue
            if key not in pieces:  # known: its counts are the manifest's
                if have[h] == old_rows[h][0]:
                    continue
                pieces[key] = section_chunks(s)
            its_chunks = pieces[key]
            if have[h] != len(its_chunks):
                todo.append((s, its_chunks))
        total, done = sum(len(c) for _, c in todo), 0
        if progress:
            progress(0, total)
        limit = self._batch_limit()
        for batch in _section_batches(todo, min(BATCH, limit)):
            chunks = [(s, c) for s, its_chunks in batch for c in its_chunks]
            # A section longer than the server takes in one call goes in slices (sections are packed to BATCH).
            for part in _slices(chunks, limit):
                self.chunks.add_texts(
                    [c.embed_text for _, c in part],
                    metadatas=[{"section": s.key, "hash": new[s.key], "ordinal": c.ordinal} for s, c in part],
                    ids=[f"{new[s.key]}-c{c.ordinal}" for s, c in part],
                )
            done += len(chunks)
            self._still_writing()
            if progress:
                progress(done, total)
        indexable = [key for s, key in zip(sections, keys, strict=True) if s.indexable]
        live = {new[key] for key in indexable}
        hashes = {key: new[key] for key in indexable}  # (a key is unique, and so is its content hash)
        rows = {new[key]: [len(pieces[key])] if key in pieces else old_rows[new[key]] for key in indexable}
        fingerprint = pairs_fingerprint(hashes.items())  # `keyword_fingerprint`: `hashes` is in the sections' order
        keyword = None
        if self.manifest is None or self._keyword_fingerprint() != fingerprint:
            # The sections changed: build the keyword index again from the kept counts of those that did not (a
            # one-section edit tokenizes one section).
            previous = self.keyword if self.manifest is not None and self.manifest.model_id == self.model_id else None
            keyword = KeywordIndex.updated(previous, sections, hashes)
        # The keyword index kept stays the one named, unless the manifest is written whole (`_keyword_to_keep`).
        kept_keyword = self.manifest.keyword if self.manifest else ""
        manifest = Manifest(
            self.model_id, time.time(), tuple(sections), hashes, tuple(warnings), notes, rows, kept_keyword
        )
        manifest = self._commit(manifest, keyword, fingerprint)
        dead = set(self.manifest.hashes.values()) - live if self.manifest else set()
        self.manifest, self._live = manifest, live
        self._at = {key: i for i, key in enumerate(keys)}
        if keyword is not None or self._keyword is not None:
            self._keyword = keyword or self._keyword.over(sections)
        self._keyword_of = fingerprint
        self._sweep(live, dead if trusted else None, old_rows)
        self.unit_cache.keep_only(live)
        self._end_write()
        added = updated = unchanged = 0
        for key, h in hashes.items():  # one pass: sets of 100,000 keys took 0.17 s of a one-section edit
            was = old.get(key)
            if was is None:
                added += 1
            elif was == h:
                unchanged += 1
            else:
                updated += 1
        return SyncReport(
            added=added,
            updated=updated,
            removed=len(old) - updated - unchanged,
            unchanged=unchanged,
            embedded=total,
            seconds=time.perf_counter() - started,
        )

    def _sweep(self, live: set[str], dead: set[str] | None, rows: dict[str, list[int]] | None = None) -> None:
        """Delete rows of sections no longer live (changed, removed, or left by an interrupted run).

        `dead`: the hashes to delete when they are known (the last write finished, so the old manifest names
        every row); None lists every row to find them. `rows`: their row counts, when known, name their ids
        (ordinals count from 0): deleting by ids took 0.01 s where a metadata filter took 0.14 s on 30,000 sections.
        """
        limit = self._batch_limit()
        store = self.chunks
        if dead is not None:
            counted = [h for h in sorted(dead) if rows and h in rows]
            ids = [f"{h}-c{i}" for h in counted for i in range(rows[h][0])]
            for part in _slices(ids, limit):
                store._collection.delete(ids=list(part))
            for part in _slices(sorted(dead - set(counted)), limit):
                store._collection.delete(where={"hash": {"$in": part}})
            return
        ids = [i for i in store.get(include=[])["ids"] if _hash_of(i) not in live]
        for part in _slices(ids, limit):
            store.delete(ids=part)

    def _drop_legacy_units(self) -> None:
        """Drop the unit vectors an index from before FORMAT 2 kept (a write holds the lock or the lease)."""
        from chromadb.errors import NotFoundError

        with contextlib.suppress(NotFoundError):
            self._client.delete_collection(LEGACY_UNITS)

    def search_chunks(self, vector: list[float], k: int) -> list[tuple[str, float]]:
        """(section key, cosine similarity) of the k nearest live chunks, best first."""
        return self._search(self.chunks, vector, k)

    def search_units(self, vector: list[float], k: int) -> list[tuple[str, float]]:
        """(section key, best unit similarity) of the sections of the k chunks nearest `vector`, best first.

        Units have no index of their own (`index.units`): the sections a vector's nearest chunks belong to are
        scored by their units, embedded when first needed. Grading asks this of a whole answer, to find one
        copied from another section.
        """
        keys = list(dict.fromkeys(key for key, _ in self.search_chunks(vector, k)))
        scores = unit_scores(np.asarray(vector, dtype=np.float32), self.unit_vectors(keys))
        return sorted(scores.items(), key=lambda item: (-item[1], item[0]))

    def _search(self, store, vector: list[float], k: int) -> list[tuple[str, float]]:
        if not self._live:
            return []
        found = store.similarity_search_by_vector_with_relevance_scores(vector, k=k)
        live = self._live
        return [(doc.metadata["section"], 1.0 - distance) for doc, distance in found if doc.metadata["hash"] in live]

    def unit_vectors(self, section_keys: Sequence[str]) -> dict[str, UnitRows]:
        """(unit ordinal, vector) of every unit of the given live sections, in reading order, embedded the first
        time a question needs them (`index.units`)."""
        if not section_keys or self.manifest is None:
            return {}
        at, sections, hashes = self.positions(), self.sections, self.manifest.hashes
        return self.unit_cache.of([(sections[at[k]], hashes[k]) for k in section_keys if k in at and k in hashes])


def _slices(items: Sequence, size: int) -> Iterator[Sequence]:
    """`items` in runs of at most `size`: [1, 2, 3, 4, 5] by 2 -> [1, 2], [3, 4], [5]."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _hash_of(row_id: str) -> str:
    """The content hash a row id starts with: "0123abcd-c2" -> "0123abcd"."""
    return row_id.rsplit("-", 1)[0]


def _section_batches(todo: list[tuple[Section, list]], size: int | None = None) -> Iterable[list]:
    """Whole sections, packed until a batch holds `size` (`BATCH`) texts or more; a long section is a batch alone.

    [a: 40 texts, b: 30, c: 10] with size 64 -> [[a, b], [c]].
    """
    size = size or BATCH
    batch, texts = [], 0
    for item in todo:
        batch.append(item)
        texts += len(item[1])
        if texts >= size:
            yield batch
            batch, texts = [], 0
    if batch:
        yield batch


def move_aside(index_dir: Path) -> Path:
    """Move a damaged index out of the way (kept for inspection) and return where it went.

    Everything but the lock file moves, so a run holding or waiting on the lock keeps the folder it will use;
    the practice history (`KEPT_PREFIX`) stays too.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    n = 0
    while True:  # a second damage within the same second gets a folder of its own
        target = index_dir.with_name(f"{index_dir.name}.damaged-{stamp}" + (f"-{n}" if n else ""))
        try:
            target.mkdir(mode=0o700)
            break
        except FileExistsError:
            n += 1
    for entry in sorted(index_dir.iterdir()):
        if entry.name != LOCK_FILE and not entry.name.startswith(KEPT_PREFIX):
            shutil.move(str(entry), str(target / entry.name))
    _fsync_dir(index_dir)
    return target
