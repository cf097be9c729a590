"""The index in a real Chroma server (`NOTES_CHROMA_URL`): index, search, cited answers and the eval against it,
a second process that has only the URL, writers kept apart by a lease, batches within the server's limit.

The server is a real `chroma run` (tests/server_fixture.py), emptied before each test; embeddings are the
hand-computable letters except in the eval test, which uses the real MiniLM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.app import build
from assistant.evaluation import figures, load_cases, run_cases
from assistant.settings import Settings, SettingsError
from corpus.chunking import section_chunks, section_units
from index import remote
from index.remote import RemoteIndex, connect, server_address
from index.store import IndexBusy, IndexError_
from tests.conftest import ROOT, LetterEmbeddings
from tests.server_fixture import chroma_server_fixture, chroma_url_fixture, free_port  # noqa: F401  (fixtures)
from tests.test_store import NOTE, FailingEmbeddings, sections, texts_of

HELDOUT = ROOT / "tests" / "data" / "heldout"


def farm(tmp_path: Path, text: str = NOTE) -> Path:
    notes = tmp_path / "notes"
    notes.mkdir(exist_ok=True)
    (notes / "farm.md").write_text(text, encoding="utf-8")
    return notes


def server_app(notes: Path, url: str, embeddings, tmp_path: Path, sync: bool = True):
    # `index_dir` is where an embedded index would go: server mode must leave it untouched.
    settings = Settings(notes_dir=notes, index_dir=tmp_path / "no-index-here", chroma_url=url)
    return build(settings, embeddings=embeddings, say=lambda _: None, sync=sync)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("https://chroma.example.org/", "https://chroma.example.org"),
        ("", None),
    ],
)
def test_chroma_url_setting(value, expected):
    assert Settings.from_env({"NOTES_CHROMA_URL": value}).chroma_url == expected


@pytest.mark.parametrize("value", ["localhost:8000", "ftp://host", "http://host:99999", "http://host/db", "http://:1"])
def test_a_bad_chroma_url_is_one_clear_line(value):
    with pytest.raises(SettingsError, match=r"^NOTES_CHROMA_URL=.*: expected a Chroma server URL like http://"):
        Settings.from_env({"NOTES_CHROMA_URL": value})


def test_server_address():
    assert server_address("http://10.0.0.5:8000") == ("10.0.0.5", 8000, False)
    assert server_address("https://chroma.example.org") == ("chroma.example.org", 443, True)


def test_a_server_that_is_not_there_is_one_line(tmp_path):
    port = free_port()
    with pytest.raises(IndexError_, match=rf"^cannot reach the Chroma server at http://127.0.0.1:{port} "):
        connect(f"http://127.0.0.1:{port}")


def test_index_search_and_ask_with_citations(tmp_path, chroma_url, letters):
    """Everything through the server; nothing is written beside the notes or in an index folder."""
    app = server_app(farm(tmp_path), chroma_url, letters, tmp_path)
    assert (app.report.added, app.report.embedded) == (3, texts_of(*sections()))
    assert not (tmp_path / "no-index-here").exists()
    hits = app.assistant.search.search("Charlie cooks curry with cumin", 3).hits
    assert hits[0].section.key == "farm.md#charlie"
    with app.reading():
        answer = app.assistant.ask("What does Charlie cook?")
    assert not answer.refused, answer.text
    assert answer.citations[0].key == "farm.md#charlie"
    # The manifest and keyword index are in the server: a fresh client reads them back.
    again = RemoteIndex(chroma_url, letters, letters.model_id)
    assert [s.key for s in again.sections] == [s.key for s in app.index.sections]
    assert again.keyword.scores("curry cumin") == app.index.keyword.scores("curry cumin")


def test_reindex_of_unchanged_notes_embeds_nothing(tmp_path, chroma_url, letters):
    notes = farm(tmp_path)
    server_app(notes, chroma_url, letters, tmp_path)
    before = letters.texts
    app = server_app(notes, chroma_url, letters, tmp_path)  # a new process would open a new client
    assert letters.texts == before
    assert (app.report.embedded, app.report.unchanged) == (0, 3)


def test_editing_one_section_embeds_it_and_sweeps_its_old_rows(tmp_path, chroma_url, letters):
    notes = farm(tmp_path)
    app = server_app(notes, chroma_url, letters, tmp_path)
    farm(tmp_path, NOTE.replace("bread and butter", "beans and barley"))
    report = app.reindex()
    bravo = next(s for s in app.index.sections if s.anchor == "bravo")
    assert (report.updated, report.unchanged, report.embedded) == (1, 2, texts_of(bravo))
    assert len(app.index.chunks.get(where={"section": bravo.key})["ids"]) == len(section_chunks(bravo))
    assert len(app.index.unit_vectors([bravo.key])[bravo.key]) == len(section_units(bravo))
    assert app.assistant.search.search("beans and barley", 1).hits[0].section.key == bravo.key


def test_a_second_process_with_only_the_url_answers_the_same(tmp_path, chroma_url, letters):
    """Another process, with no notes and no index folder of its own, answers with the same citations."""
    app = server_app(farm(tmp_path), chroma_url, letters, tmp_path)
    question = "What does Charlie cook?"
    with app.reading():
        here = app.assistant.ask(question)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        **os.environ,
        "NOTES_CHROMA_URL": chroma_url,
        "NOTES_INDEX_DIR": str(elsewhere / "index"),
        "XDG_CACHE_HOME": str(elsewhere / "cache"),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("NOTES_DIR", None)
    done = subprocess.run(
        [sys.executable, "-m", "tests.letters_cli", "ask", "--json", question],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    there = json.loads(done.stdout.strip().splitlines()[-1])
    assert there["text"] == here.text
    assert [c["key"] for c in there["citations"]] == [c.key for c in here.citations] == ["farm.md#charlie"]
    assert not (elsewhere / "index").exists()


def test_a_reader_follows_what_another_process_indexed(tmp_path, chroma_url, letters):
    notes = farm(tmp_path)
    writer = server_app(notes, chroma_url, letters, tmp_path)
    reader = server_app(notes, chroma_url, LetterEmbeddings(), tmp_path, sync=False)
    farm(tmp_path, NOTE.replace("curry with cumin and coriander", "pasta with pesto and parmesan"))
    writer.reindex()
    with reader.reading():
        answer = reader.assistant.ask("What does Charlie cook?")
    assert "pesto" in answer.text, answer.text
    assert answer.citations[0].key == "farm.md#charlie"


def test_batches_respect_the_servers_max_batch_size(tmp_path, chroma_url, letters, monkeypatch):
    """With a limit of 3 records per call, every write and delete goes in slices of at most 3, and the index is
    whole: each section's rows are all there and search finds them."""
    index = RemoteIndex(chroma_url, letters, letters.model_id)
    monkeypatch.setattr(index._client, "get_max_batch_size", lambda: 3)
    sizes: list[int] = []
    collection = index.chunks._collection
    for name in ("upsert", "add", "delete"):
        real = getattr(collection, name)

        def spy(*args, _real=real, **kwargs):
            if kwargs.get("ids") is not None:
                sizes.append(len(kwargs["ids"]))
            return _real(*args, **kwargs)

        monkeypatch.setattr(collection, name, spy)
    # Long enough to be cut into more chunks than one call may carry.
    long = "# Long\n" + "".join(f"Paragraph {n} about apples and apricots. " * 12 + "\n\n" for n in range(9))
    secs = sections(NOTE + long)
    assert len(section_chunks(secs[-1])) > 3
    index.sync(secs)
    assert len(sizes) > 1
    assert max(sizes) <= 3
    for s in secs:
        if s.indexable:
            assert len(index.chunks.get(where={"section": s.key})["ids"]) == len(section_chunks(s))
    index.sync(sections(NOTE))  # the long section is deleted: by ids, within the limit too
    assert max(sizes) <= 3
    assert index.chunks.get(where={"section": "farm.md#long"})["ids"] == []


def test_a_second_writer_waits_for_the_lease_then_gives_up_in_one_line(chroma_url, letters, monkeypatch):
    monkeypatch.setattr(remote, "LEASE_SETTLE", 0.01)
    first = RemoteIndex(chroma_url, letters, letters.model_id)
    second = RemoteIndex(chroma_url, letters, letters.model_id)
    said: list[str] = []
    busy = pytest.raises(IndexBusy, match=r"^another indexing run .* \(waited 0 s\)$")
    with first.lease("index"), busy, second.lease("index", wait=0.3, say=said.append):
        pass
    assert len(said) == 1
    assert "waiting" in said[0]
    with second.lease("index", wait=0.3):  # released: taken at once
        pass


def test_a_lease_its_holder_stopped_renewing_is_taken_over(chroma_url, letters, monkeypatch):
    monkeypatch.setattr(remote, "LEASE_SETTLE", 0.01)
    monkeypatch.setattr(remote, "LEASE_TTL", 0.2)
    dead = RemoteIndex(chroma_url, letters, letters.model_id)
    dead._take_lease("index")  # and never renews or releases it, as a killed writer
    with RemoteIndex(chroma_url, letters, letters.model_id).lease("index", wait=5.0):
        pass


def test_an_interrupted_write_leaves_the_old_index_and_the_next_completes(chroma_url):
    embeddings = FailingEmbeddings()
    index = RemoteIndex(chroma_url, embeddings, embeddings.model_id)
    old = sections()
    index.sync(old)
    edited = sections(NOTE.replace("bread and butter", "beans and barley"))
    embeddings.fail_on_next(1)  # dies embedding the edited section's chunks
    with pytest.raises(RuntimeError, match="died half-way"):
        index.sync(edited)
    embeddings.fail_at = None
    fresh = RemoteIndex(chroma_url, embeddings, embeddings.model_id)
    assert [s.text for s in fresh.sections] == [s.text for s in old]
    assert fresh._read_head()["writing"]  # the dead write is visible: the next one counts rows
    report = fresh.sync(edited)
    assert (report.updated, report.unchanged) == (1, 2)
    bravo = next(s for s in edited if s.anchor == "bravo")
    assert len(fresh.chunks.get(where={"section": bravo.key})["ids"]) == len(section_chunks(bravo))
    assert len(fresh.unit_vectors([bravo.key])[bravo.key]) == len(section_units(bravo))
    assert not fresh._read_head()["writing"]


@pytest.mark.model
def test_eval_against_the_server_matches_the_embedded_index(minilm, tmp_path, chroma_url):
    """The held-out eval set gives the same figures from the server as from an embedded index."""
    cases = load_cases(HELDOUT / "questions.jsonl")
    embedded = build(
        Settings(notes_dir=HELDOUT / "notes", index_dir=tmp_path / "index"), embeddings=minilm, say=lambda _: None
    )
    served = build(Settings(notes_dir=HELDOUT / "notes", chroma_url=chroma_url), embeddings=minilm, say=lambda _: None)
    got, expected = figures(run_cases(served.assistant, cases)), figures(run_cases(embedded.assistant, cases))
    timing = {"answer_p50_ms", "answer_p95_ms", "retrieval_p50_ms", "retrieval_p95_ms"}
    assert {k: v for k, v in got.items() if k not in timing and "ms" not in k} == {
        k: v for k, v in expected.items() if k not in timing and "ms" not in k
    }
    assert got["recall@3"] >= 0.9
