"""The Chroma index: incremental sync, crash safety, damage recovery, model changes.

Every test uses the hand-computable `letters` embeddings and a real Chroma: a persistent one in `tmp_path`, and
the sync tests again against a real Chroma server (`backend`), where the manifest and keyword index live too.
"""

from __future__ import annotations

import json
import re
import stat
import time
from pathlib import Path

import chromadb
import pytest

from assistant.app import build
from assistant.settings import Settings
from corpus.chunking import section_chunks, section_units
from corpus.parse import parse_note
from corpus.types import Note, Section
from index.remote import RemoteIndex
from index.retrieve import HybridSearch
from index.store import BATCH, ChromaIndex, IndexError_, Manifest, read_manifest
from index.units import UnitFile
from tests.conftest import LetterEmbeddings
from tests.server_fixture import chroma_server_fixture, chroma_url_fixture  # noqa: F401  (fixtures)

NOTE = """# Alpha
Alpha keeps apples and avocados in a big barn.

# Bravo
Bravo brings bread and butter to the market.

# Charlie
Charlie cooks curry with cumin and coriander.
"""


def sections(text: str = NOTE, path: str = "farm.md") -> list[Section]:
    return parse_note(Note(path, text))


def texts_of(*secs: Section) -> int:
    """How many texts syncing these sections embeds: one per chunk (units wait for a question)."""
    return sum(len(section_chunks(s)) for s in secs if s.indexable)


def reopen(index_dir: Path, embeddings, model_id: str = "letters-v1") -> ChromaIndex:
    """A fresh ChromaIndex on the same folder, as a restarted app would open it.

    chromadb caches one client per path in-process; clearing it makes the reopen read the files on disk
    instead of reusing the previous client's in-memory state, as a new process would.
    """
    chromadb.api.client.SharedSystemClient.clear_system_cache()
    return ChromaIndex(index_dir, embeddings, model_id)


def top_key(index: ChromaIndex, embeddings, query: str) -> str:
    hits = HybridSearch(index, embeddings).search(query, 3).hits
    assert hits, f"nothing found for {query!r}"
    return hits[0].section.key


def chunk_rows(index: ChromaIndex, key: str) -> list[str]:
    return index.chunks.get(where={"section": key})["ids"]


class Embedded:
    """An index in a folder, reopened as a new process would."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir

    def open(self, embeddings, model_id: str = "letters-v1") -> ChromaIndex:
        return ChromaIndex(self.index_dir, embeddings, model_id)

    def reopen(self, embeddings, model_id: str = "letters-v1") -> ChromaIndex:
        return reopen(self.index_dir, embeddings, model_id)

    def manifest(self) -> Manifest | None:
        return read_manifest(self.index_dir)


class Server:
    """An index in a Chroma server; a new client is what another process would have."""

    def __init__(self, url: str) -> None:
        self.url = url

    def open(self, embeddings, model_id: str = "letters-v1") -> RemoteIndex:
        return RemoteIndex(self.url, embeddings, model_id)

    reopen = open

    def manifest(self) -> Manifest | None:
        return RemoteIndex(self.url, LetterEmbeddings(), "letters-v1").manifest


@pytest.fixture(params=["embedded", "server"])
def backend(request, tmp_path):
    if request.param == "server":
        return Server(request.getfixturevalue("chroma_url"))
    return Embedded(tmp_path / "index")


@pytest.fixture
def index(backend, letters) -> ChromaIndex:
    return backend.open(letters, letters.model_id)


def test_first_sync_adds_and_embeds_everything(index, letters, backend):
    """A new index embeds every chunk of every section once, and no unit: those wait for a question."""
    secs = sections()
    report = index.sync(secs)
    assert (report.added, report.updated, report.removed, report.unchanged) == (3, 0, 0, 0)
    assert report.embedded == texts_of(*secs) == letters.texts
    for s in secs:
        assert len(chunk_rows(index, s.key)) == len(section_chunks(s))
    assert backend.manifest().hashes.keys() == {s.key for s in secs}
    assert "units" not in {c.name for c in index._client.list_collections()}


def test_a_write_drops_the_unit_vectors_an_older_index_kept(index, letters):
    """Indexes made before units were embedded at answer time kept them in a `units` collection: the next write
    drops it (it is never read again), and the index answers as before."""
    secs = sections()
    index.sync(secs)
    legacy = index._client.get_or_create_collection("units")
    legacy.add(ids=["old-u0"], embeddings=[letters.embed_query("Alpha")], metadatas=[{"section": "farm.md#alpha"}])
    index.sync(secs)
    assert "units" not in {c.name for c in index._client.list_collections()}
    assert top_key(index, letters, "Bravo brings bread and butter") == "farm.md#bravo"


def test_unit_vectors_are_embedded_when_first_needed_and_kept(index, letters):
    """A question's sections get their units embedded once; asked again, nothing is embedded; an edited section
    (a new content hash) gets its new units."""
    secs = sections()
    index.sync(secs)
    before = letters.texts
    keys = [s.key for s in secs]
    first = index.unit_vectors(keys)
    assert {k: [o for o, _ in rows] for k, rows in first.items()} == {
        s.key: [u.ordinal for u in section_units(s)] for s in secs
    }
    assert letters.texts - before == sum(len(section_units(s)) for s in secs)
    embedded = letters.texts
    again = index.unit_vectors(list(reversed(keys)))
    assert letters.texts == embedded
    assert {k: [v.tolist() for _, v in rows] for k, rows in again.items()} == {
        k: [v.tolist() for _, v in rows] for k, rows in first.items()
    }
    edited = sections(NOTE.replace("bread and butter", "beans and barley"))
    index.sync(edited)
    after_sync = letters.texts
    bravo = next(s for s in edited if s.anchor == "bravo")
    [(_, vector)] = index.unit_vectors([bravo.key])[bravo.key]
    assert letters.texts - after_sync == 1  # the edited section alone
    assert vector.tolist() == pytest.approx(letters.embed_query(f"Bravo: {section_units(bravo)[0].text}"))
    assert index.unit_vectors(["farm.md#nowhere"]) == {}


@pytest.mark.parametrize("restart", [False, True], ids=["same-object", "reopened"])
def test_second_sync_of_unchanged_notes_embeds_nothing(backend, letters, restart):
    """Nothing changed, nothing embedded: a restart must not cost a re-embed of the notes."""
    index = backend.open(letters)
    index.sync(sections())
    before = letters.texts
    if restart:
        index = backend.reopen(letters)
    report = index.sync(sections())
    assert letters.texts == before
    assert report.embedded == 0
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 0, 0, 3)


def test_editing_one_section_embeds_only_it(index, letters):
    """An edit that keeps the line count re-embeds that one section and no other."""
    index.sync(sections())
    edited = sections(NOTE.replace("bread and butter", "beans and barley"))
    before = letters.texts
    report = index.sync(edited)
    bravo = next(s for s in edited if s.anchor == "bravo")
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 1, 0, 2)
    assert report.embedded == texts_of(bravo) == letters.texts - before
    # The old version's rows are swept: one set of rows per section.
    assert len(chunk_rows(index, bravo.key)) == len(section_chunks(bravo))
    assert len(index.unit_vectors([bravo.key])[bravo.key]) == len(section_units(bravo))
    assert top_key(index, letters, "Bravo beans and barley") == bravo.key


def test_inserting_a_line_does_not_reembed_later_sections(index, letters):
    """Adding a line to the first section moves the others down but does not change what they say."""
    index.sync(sections())
    grown = sections(NOTE.replace("in a big barn.\n", "in a big barn.\nAnd a second line about apricots.\n"))
    before = letters.texts
    index.sync(grown)
    alpha = next(s for s in grown if s.anchor == "alpha")
    assert letters.texts - before == texts_of(alpha)


def test_deleting_a_section_removes_its_rows(index, letters):
    """A deleted section is gone from Chroma and from search, not just hidden by the manifest."""
    index.sync(sections())
    charlie_key = "farm.md#charlie"
    assert top_key(index, letters, "Charlie cooks curry with cumin") == charlie_key
    before = letters.texts
    report = index.sync(sections(NOTE.split("# Charlie")[0]))
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 0, 1, 2)
    assert report.embedded == 0
    assert letters.texts == before
    assert chunk_rows(index, charlie_key) == []
    found = HybridSearch(index, letters).search("Charlie cooks curry with cumin", 10).hits
    assert charlie_key not in {hit.section.key for hit in found}
    assert charlie_key not in {key for key, _ in index.search_chunks(letters.embed_query("Charlie curry"), 10)}


def test_deleting_a_whole_note_removes_its_sections(backend, letters):
    """Sections of a note that is no longer there are removed; another note's sections are untouched."""
    index = backend.open(letters)
    other = sections("# Zulu\nZebras zigzag in the zoo.\n", path="zoo.md")
    index.sync(sections() + other)
    report = index.sync(other)
    assert (report.removed, report.unchanged, report.embedded) == (3, 1, 0)
    assert {m["section"] for m in index.chunks.get(include=["metadatas"])["metadatas"]} == {"zoo.md#zulu"}


def test_toc_and_empty_sections_are_not_embedded(index, letters):
    """Sections with nothing to find are kept in the manifest for navigation but never embedded."""
    text = "# Top\n\n## Contents\n- [A](#a)\n- [B](#b)\n- [C](#c)\n\n## A\nApples.\n\n## B\n\n## C\nCherries.\n"
    secs = sections(text)
    kinds = {s.anchor: s.kind for s in secs}
    assert kinds == {"top": "empty", "contents": "toc", "a": "content", "b": "empty", "c": "content"}
    report = index.sync(secs)
    assert report.added == 2
    assert {m["section"] for m in index.chunks.get(include=["metadatas"])["metadatas"]} == {"farm.md#a", "farm.md#c"}
    assert len(index.sections) == 5


def test_progress_counts_up_to_total(index):
    """Progress starts at 0 and ends at the total, so a bar reaches 100%."""
    calls: list[tuple[int, int]] = []
    index.sync(sections(), progress=lambda done, total: calls.append((done, total)))
    total = texts_of(*sections())
    assert calls[0] == (0, total)
    assert calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


class FailingEmbeddings(LetterEmbeddings):
    """Letters that raise on the Nth `embed_documents` call from now, as a killed or crashing run would."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_at: int | None = None

    def fail_on_next(self, n: int) -> None:
        self.fail_at = self.calls + n

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.fail_at is not None and self.calls + 1 == self.fail_at:
            self.calls += 1
            raise RuntimeError("embedding died half-way")
        return super().embed_documents(texts)


def test_interrupted_sync_keeps_previous_index_and_next_sync_completes(backend):
    """A run that dies mid-way leaves the old index in force; the next run finishes the job."""
    embeddings = FailingEmbeddings()
    index = backend.open(embeddings, embeddings.model_id)
    old = sections()
    index.sync(old)
    old_hashes = backend.manifest().hashes
    edited = sections(NOTE.replace("bread and butter", "beans and barley"))
    bravo = next(s for s in edited if s.anchor == "bravo")
    # Small enough that its chunks take one embed call.
    assert len(section_chunks(bravo)) <= BATCH

    embeddings.fail_on_next(1)
    with pytest.raises(RuntimeError, match="died half-way"):
        index.sync(edited)

    embeddings.fail_at = None
    index = backend.reopen(embeddings)
    assert backend.manifest().hashes == old_hashes
    assert [s.text for s in index.sections] == [s.text for s in old]
    # The old text is what search finds; the half-added new rows are not live.
    assert top_key(index, embeddings, "Bravo brings bread and butter") == "farm.md#bravo"
    found = {key for key, _ in index.search_chunks(embeddings.embed_query("Bravo beans and barley"), 10)}
    assert found == {s.key for s in old if s.indexable}

    report = index.sync(edited)
    assert (report.updated, report.unchanged) == (1, 2)
    assert backend.manifest().hashes != old_hashes
    # The edited section is whole again: all its chunks, with nothing left over, and its units.
    assert len(chunk_rows(index, bravo.key)) == len(section_chunks(bravo))
    assert len(index.unit_vectors([bravo.key]).get(bravo.key, [])) == len(section_units(bravo))
    assert top_key(index, embeddings, "Bravo beans and barley") == bravo.key


def test_manifest_ahead_of_chroma_is_reported_as_damage(tmp_path, letters):
    """A manifest naming sections Chroma has no vectors for is refused, not silently trusted."""
    index_dir = tmp_path / "index"
    ChromaIndex(index_dir, letters, letters.model_id).sync(sections())
    header, *lines = (index_dir / "manifest.json").read_text(encoding="utf-8").split("\n")
    entries = [json.loads(line) for line in lines]  # [content hash, row counts, section]
    (bravo,) = [e for e in entries if e[2]["anchor"] == "bravo"]
    bravo[0] = "0" * 20
    (index_dir / "manifest.json").write_text("\n".join([header, *map(json.dumps, entries)]), encoding="utf-8")
    with pytest.raises(IndexError_, match="lacks vectors"):
        reopen(index_dir, letters)


@pytest.mark.parametrize(
    "damage",
    ["garbage-sqlite", "garbage-manifest", "both", "wrong-format-manifest", "manifest-without-vectors"],
)
def test_damaged_index_is_moved_aside_and_rebuilt(tmp_path, letters, damage):
    """A damaged index never stops the app: it is moved aside (kept), rebuilt, and answers work."""
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "farm.md").write_text(NOTE, encoding="utf-8")
    index_dir = tmp_path / "index"
    ChromaIndex(index_dir, letters, letters.model_id).sync(sections())
    # Drop the cached client so the damage is met by a fresh open, as in a new process.
    chromadb.api.client.SharedSystemClient.clear_system_cache()
    if damage in ("garbage-sqlite", "both"):
        (index_dir / "chroma" / "chroma.sqlite3").write_bytes(b"\x00garbage, not a database\xff" * 512)
    if damage in ("garbage-manifest", "both"):
        (index_dir / "manifest.json").write_bytes(b'{"format": 1, "sections": [tru')
    if damage == "wrong-format-manifest":
        (index_dir / "manifest.json").write_text(json.dumps({"format": 99}), encoding="utf-8")
    if damage == "manifest-without-vectors":
        for path in (index_dir / "chroma").iterdir():
            if path.is_dir():
                continue
            path.unlink()

    messages: list[str] = []
    app = build(Settings(notes_dir=notes, index_dir=index_dir), embeddings=letters, say=messages.append)

    damaged = [m for m in messages if m.startswith("the index was damaged")]
    assert len(damaged) == 1, messages
    asides = [p for p in tmp_path.iterdir() if p.name.startswith("index.damaged-")]
    assert len(asides) == 1
    assert str(asides[0]) in damaged[0]
    assert app.report.added == 3
    answer = app.assistant.ask("What does Charlie cook?")
    assert not answer.refused, answer.text
    assert answer.citations[0].key == "farm.md#charlie"
    assert top_key(app.index, letters, "Bravo brings bread and butter") == "farm.md#bravo"


def test_damage_aside_never_lands_inside_an_earlier_aside(tmp_path, letters):
    """Each damaged index gets a folder of its own, and the message names the folder that holds it."""
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "farm.md").write_text(NOTE, encoding="utf-8")
    index_dir = tmp_path / "index"
    ChromaIndex(index_dir, letters, letters.model_id).sync(sections())
    # Earlier asides for the next several seconds, so the clash does not depend on the clock ticking.
    now = time.time()
    earlier = [tmp_path / f"index.damaged-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now + s))}" for s in range(10)]
    for folder in earlier:
        folder.mkdir()
        (folder / "manifest.json").write_text("earlier", encoding="utf-8")
    (index_dir / "manifest.json").write_text("garbage", encoding="utf-8")

    messages: list[str] = []
    build(Settings(notes_dir=notes, index_dir=index_dir), embeddings=letters, say=messages.append)

    [moved] = [m for m in messages if "moved" in m]
    aside = Path(re.search(r"moved it to (\S+) and rebuilding", moved).group(1))
    assert (aside / "manifest.json").read_text(encoding="utf-8") == "garbage"
    for folder in earlier:
        assert sorted(p.name for p in folder.iterdir()) == ["manifest.json"]


def test_model_change_reembeds_everything(backend, letters):
    """Vectors of one model are meaningless to another: a new model id re-embeds every section."""
    secs = sections()
    backend.open(letters, "letters-v1").sync(secs)
    other = LetterEmbeddings()
    index = backend.reopen(other, "letters-v2")
    report = index.sync(secs)
    assert report.embedded == texts_of(*secs) == other.texts
    assert report.added == 3
    assert backend.manifest().model_id == "letters-v2"
    # The old model's rows are swept: exactly one set of rows remains.
    assert len(index.chunks.get()["ids"]) == sum(len(section_chunks(s)) for s in secs)
    # Unit vectors come from the model in use, never kept across models.
    units_before = other.texts
    index.unit_vectors([s.key for s in secs])
    assert other.texts - units_before == sum(len(section_units(s)) for s in secs)
    # And going back to the first model re-embeds again rather than trusting stale vectors.
    again = backend.reopen(letters, "letters-v1")
    before = letters.texts
    assert again.sync(secs).embedded == texts_of(*secs) == letters.texts - before


def test_keyword_index_is_kept_and_an_edit_matches_a_full_build(backend, letters, monkeypatch):
    """The keyword index is stored with the index (a restart tokenizes nothing), and after an edit it scores
    exactly as one built from scratch on the edited sections."""
    from index import retrieve
    from index.retrieve import KeywordIndex

    index = backend.open(letters)
    index.sync(sections())
    index.sync(sections(NOTE.replace("bread and butter", "beans and barley")))
    fresh = KeywordIndex(index.sections)
    for query in ("beans barley", "bread butter", "curry cumin", "apples"):
        assert index.keyword.scores(query) == pytest.approx(fresh.scores(query))
    tokenized: list[str] = []
    real = retrieve.keyword_document
    monkeypatch.setattr(retrieve, "keyword_document", lambda s: tokenized.append(s.key) or real(s))
    again = backend.reopen(letters)
    assert again.keyword.scores("beans barley") == pytest.approx(fresh.scores("beans barley"))
    # The edit appended a delta to the manifest and kept the keyword index as it was (150 MB on 100,000
    # sections): the restart tokenizes the one section edited since, and nothing else.
    assert tokenized == ["farm.md#bravo"]
    tokenized.clear()
    beans = NOTE.replace("bread and butter", "beans and barley")
    again.sync(sections(beans.replace("apples and avocados", "apricots and almonds")))
    assert tokenized == ["farm.md#alpha"]  # only the edited section
    expected = KeywordIndex(again.sections).scores("apricots almonds")
    assert again.keyword.scores("apricots almonds") == pytest.approx(expected)


def test_a_keyword_index_kept_by_an_older_version_is_replaced_at_the_next_write(backend, letters, monkeypatch):
    """After an upgrade that counts other terms, a reader does not use the kept keyword index (it tokenizes the
    sections), and the next write, notes unchanged, keeps a new one: opens stop tokenizing."""
    from index import retrieve

    monkeypatch.setattr(retrieve, "KEYWORD_TERMS", retrieve.KEYWORD_TERMS - 1)  # written by the version before
    backend.open(letters).sync(sections())
    monkeypatch.setattr(retrieve, "KEYWORD_TERMS", retrieve.KEYWORD_TERMS + 1)
    tokenized: list[str] = []
    real = retrieve.keyword_document
    monkeypatch.setattr(retrieve, "keyword_document", lambda s: tokenized.append(s.key) or real(s))
    reader = backend.reopen(letters)
    assert not retrieve.keyword_current(reader.manifest.keyword)
    expected = reader.keyword.scores("bread butter")
    assert sorted(tokenized) == sorted(s.key for s in reader.sections if s.indexable)
    reader.sync(sections())  # nothing changed in the notes
    assert retrieve.keyword_current(reader.manifest.keyword)
    tokenized.clear()
    after = backend.reopen(letters)
    assert after.keyword.scores("bread butter") == pytest.approx(expected)
    assert tokenized == []


def test_manifest_grows_by_deltas_and_reads_back_as_written_whole(backend, letters, monkeypatch):
    """A one-section edit appends a delta to the manifest instead of rewriting it; a new process reads the same
    manifest (sections, hashes, row counts) as a full write gives; after `MAX_DELTAS` it is written whole again."""
    from index import store

    monkeypatch.setattr(store, "MAX_DELTAS", 2)
    index = backend.open(letters)
    index.sync(sections())
    assert (index._log.deltas, index._log.size) == (0, index._log.base)
    for n, word in enumerate(("beans", "barley")):
        index.sync(sections(NOTE.replace("bread", word)))
        assert index._log.deltas == n + 1  # appended, not rewritten
    edited = sections(NOTE.replace("bread", "barley"))
    whole = store.parse_manifest(store.manifest_text(index.manifest), "test")
    for read in (backend.manifest(), backend.reopen(letters).manifest):
        assert (read.sections, read.hashes, read.rows) == (whole.sections, whole.hashes, whole.rows)
    assert [s.key for s in read.sections] == [s.key for s in edited]
    assert read.sections[1].markdown == edited[1].markdown
    index.sync(sections(NOTE.replace("bread", "bagels")))
    assert index._log.deltas == 0  # the third delta would pass MAX_DELTAS: written whole, from the lines in force
    whole, read = store.parse_manifest(store.manifest_text(index.manifest), "test"), backend.manifest()
    assert (read.sections, read.hashes, read.rows) == (whole.sections, whole.hashes, whole.rows)
    assert "bagels" in read.sections[1].markdown


def test_a_delta_cut_short_leaves_the_manifest_before_it(tmp_path, letters):
    """A run that dies while appending a delta leaves a torn last line: the manifest before it is in force, and
    the next write cuts it off before appending its own."""
    index_dir = tmp_path / "index"
    ChromaIndex(index_dir, letters, letters.model_id).sync(sections())
    path = index_dir / "manifest.json"
    before = read_manifest(index_dir)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('\n{"format": 1, "ops": [[0, 2], ["half a li')
    assert read_manifest(index_dir) == before
    index = reopen(index_dir, letters)
    index.sync(sections(NOTE.replace("bread", "beans")))
    assert "half a li" not in path.read_text(encoding="utf-8")
    assert "beans" in read_manifest(index_dir).sections[1].markdown
    assert index._log.deltas == 1


def test_unit_vectors_are_kept_on_disk_for_the_next_process(tmp_path, letters):
    """A cold `ask` or a restarted app finds the units of sections asked about before in `units.sqlite3` (private),
    embeds only the others, and a write drops the rows of sections no longer in the notes."""
    index_dir = tmp_path / "index"
    secs = sections()
    index = ChromaIndex(index_dir, letters, letters.model_id)
    index.sync(secs)
    bravo = next(s for s in secs if s.anchor == "bravo")
    first = index.unit_vectors([bravo.key])
    path = index_dir / "units.sqlite3"
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    counting = LetterEmbeddings()
    again = reopen(index_dir, counting)
    found = again.unit_vectors([bravo.key, "farm.md#alpha"])
    alpha = next(s for s in secs if s.anchor == "alpha")
    assert counting.texts == len(section_units(alpha))  # bravo's came from the file
    assert [(o, v.tolist()) for o, v in found[bravo.key]] == [(o, v.tolist()) for o, v in first[bravo.key]]

    again.sync(sections(NOTE.replace("bread and butter", "beans and barley")))  # bravo's old hash is gone
    kept = UnitFile(path).get([index.manifest.hashes[bravo.key], again.manifest.hashes[alpha.key]])
    assert list(kept) == [again.manifest.hashes[alpha.key]]


def test_a_damaged_unit_file_is_passed_over(tmp_path, letters):
    """`units.sqlite3` is a cache: garbage in it costs a re-embedding, never an error for the question."""
    index_dir = tmp_path / "index"
    index = ChromaIndex(index_dir, letters, letters.model_id)
    index.sync(sections())
    (index_dir / "units.sqlite3").write_bytes(b"not a database" * 100)
    bravo = next(s for s in sections() if s.anchor == "bravo")
    assert len(index.unit_vectors([bravo.key])[bravo.key]) == len(section_units(bravo))
    again = reopen(index_dir, letters)
    assert len(again.unit_vectors([bravo.key])[bravo.key]) == len(section_units(bravo))
    again.sync(sections(NOTE.replace("bread and butter", "beans and barley")))  # a write passes over it too
