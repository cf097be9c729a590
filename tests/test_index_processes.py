"""The index across processes: one writer at a time, readers that never write, killed runs that resume, damage
that is found before it crashes anyone, private files.

Real processes run the real CLI with letter embeddings (`tests/letters_cli.py`); a run can be held mid-write at a
gate, so "a second run while the first writes" is a fact of the test, not a race against the clock.
"""

from __future__ import annotations

import os
import queue
import random
import re
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import chromadb
import pytest

from assistant.app import build
from assistant.cli import main
from assistant.settings import Settings
from corpus.chunking import section_chunks
from index.store import CLEAN_FILE, IndexBusy, IndexLock, check_health, index_state
from tests.conftest import ROOT, LetterEmbeddings

WORDS = (
    "apple basil cedar dune ember fjord grove harbor island juniper kelp lagoon meadow nectar orchard pebble "
    "quartz river saffron tundra umber valley willow xenon yarrow zephyr"
).split()
EMBEDDED = re.compile(r"\((\d+) texts embedded")
RUN_TIMEOUT = 120


def write_notes(folder: Path, files: int, sections: int, seed: int = 7) -> Path:
    """`files` notes of `sections` sections each: a heading, a few sentences and a two-item list."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        parts = []
        for s in range(sections):
            parts.append(f"# Topic {f}-{s} {rng.choice(WORDS)}\n")
            for _ in range(rng.randint(2, 5)):
                parts.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12))).capitalize() + ".\n")
            parts.append("".join(f"- {' '.join(rng.choice(WORDS) for _ in range(5))}\n" for _ in range(2)) + "\n")
        (folder / f"note{f}.md").write_text("".join(parts), encoding="utf-8")
    return folder


def texts_to_embed(notes: Path) -> int:
    from assistant.app import read_sections

    sections, _ = read_sections(notes)
    return sum(len(section_chunks(s)) for s in sections if s.indexable)


class Run:
    """`notes-assistant` with letter embeddings in a child process; its stderr is read as it comes."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.letters_cli", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.err: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.put(line)
        self.lines.put("")  # end of stream

    def wait_for(self, text: str, timeout: float = RUN_TIMEOUT) -> bool:
        """Whether the run says `text` on stderr before it ends (or `timeout` passes)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line == "":
                return False
            self.err.append(line)
            if text in line:
                return True
        return False

    def finish(self) -> tuple[int, str, str]:
        """Exit status, stdout and all of stderr."""
        with self.proc:
            out = self.proc.stdout.read()
            code = self.proc.wait(timeout=RUN_TIMEOUT)
            while (line := self.lines.get(timeout=RUN_TIMEOUT)) != "":
                self.err.append(line)
        return code, out, "".join(self.err)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.finish()


def run(*args: str) -> tuple[int, str, str]:
    return Run(*args).finish()


def embedded(out: str) -> int:
    found = EMBEDDED.search(out)
    assert found, out
    return int(found.group(1))


def index_in_process(notes: Path, index_dir: Path) -> None:
    """Index `notes` here, with letters, and let go of the database, as a finished run would."""
    app = build(Settings(notes_dir=notes, index_dir=index_dir), embeddings=LetterEmbeddings(), say=lambda _: None)
    app.index.close()


def assert_answers(index_dir: Path, notes: Path) -> None:
    """Every vector reads back and a question gets a cited answer: what a corrupted index could not do.

    The health check's child reads it first: were it damaged, opening it here could crash the test run.
    """
    assert check_health(index_dir) is None
    said: list[str] = []
    app = build(
        Settings(notes_dir=notes, index_dir=index_dir), embeddings=LetterEmbeddings(), say=said.append, sync=False
    )
    try:
        with app.reading():
            answer = app.assistant.ask("apple basil cedar")
    finally:
        app.index.close()
    assert answer.citations, answer.text
    assert said == []


@pytest.fixture
def gate(tmp_path):
    """A file whose creation lets a gated run go on; created at teardown too, so no run is left waiting."""
    path = tmp_path / "gate"
    yield path
    path.touch()


@pytest.fixture(scope="module")
def small_notes(tmp_path_factory) -> Path:
    return write_notes(tmp_path_factory.mktemp("notes"), files=2, sections=15)


# One writer at a time.


def test_second_index_run_waits_for_the_first_then_finds_nothing_to_do(tmp_path, small_notes, gate):
    """While one `index` run writes, a second says so, waits, and then embeds nothing; the index is healthy."""
    index_dir = tmp_path / "index"
    first = Run("--gate", str(gate), "--index-dir", str(index_dir), "index", str(small_notes))
    second = None
    try:
        assert first.wait_for("at the gate"), first.err
        second = Run("--index-dir", str(index_dir), "index", str(small_notes))
        # Before the fix the second run wrote beside the first instead of waiting.
        assert second.wait_for(f"another indexing run is in progress on {index_dir}; waiting"), second.err
    finally:
        gate.touch()
        if second is None:
            first.kill()
    code1, out1, err1 = first.finish()
    code2, out2, err2 = second.finish()
    assert (code1, code2) == (0, 0), err1 + err2
    assert embedded(out1) == texts_to_embed(small_notes)
    assert embedded(out2) == 0
    assert_answers(index_dir, small_notes)


def test_index_runs_started_together_leave_a_healthy_index(tmp_path):
    """Two `index` runs at once on 600 sections, then two more after a third of the notes were rewritten: every
    run finishes (one after the other) or says another run is in progress, and the index answers afterwards.

    Before the lock, two runs at once on these notes left rows whose vectors could not be read (every `ask`
    then failed with "Error getting embedding") in 3 of 3 trials; on 240 sections, in none of 3.
    """
    notes = write_notes(tmp_path / "notes", files=20, sections=30)
    index_dir = tmp_path / "index"
    for trial in range(2):
        if trial:
            write_notes(notes, files=7, sections=30, seed=99)  # notes 0-6 rewritten
        expected = texts_to_embed(notes) if trial == 0 else None
        results = [r.finish() for r in [Run("--index-dir", str(index_dir), "index", str(notes)) for _ in range(2)]]
        for code, _, err in results:
            assert code == 0 or (code == 2 and "another indexing run is in progress" in err), err
        done = [embedded(out) for code, out, _ in results if code == 0]
        assert 0 in done or len(done) == 1, done  # whichever ran second found nothing left to do
        if expected is not None:
            assert sum(done) == expected
        assert_answers(index_dir, notes)


def test_a_writer_that_waits_too_long_gives_up_with_one_line(tmp_path, small_notes, letters):
    """A second writer waits a bounded time, then stops with a message naming the folder; nothing is written."""
    index_dir = tmp_path / "index"
    build(Settings(notes_dir=small_notes, index_dir=index_dir), embeddings=letters, say=lambda _: None)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(index_dir)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        said: list[str] = []
        started = time.monotonic()
        with pytest.raises(IndexBusy, match=f"another indexing run is in progress on {re.escape(str(index_dir))}"):
            build(Settings(notes_dir=small_notes, index_dir=index_dir), embeddings=letters, say=said.append, wait=0.5)
        assert 0.5 <= time.monotonic() - started < 10
        assert said == [f"another indexing run is in progress on {index_dir}; waiting"]
    finally:
        with holder:
            holder.kill()


HOLD_LOCK = """
import sys, time
from pathlib import Path
from index.store import IndexLock
with IndexLock(Path(sys.argv[1])).hold("index"):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_the_apps_reindex_takes_the_same_lock(tmp_path, small_notes, letters):
    """The Streamlit app re-indexes through `App.reindex`: it waits for a CLI run like any other writer."""
    index_dir = tmp_path / "index"
    app = build(Settings(notes_dir=small_notes, index_dir=index_dir), embeddings=letters, say=lambda _: None)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(index_dir)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        app.wait = 0.3
        with pytest.raises(IndexBusy, match="another indexing run is in progress"):
            app.reindex()
    finally:
        with holder:
            holder.kill()
    assert app.reindex().embedded == 0


def test_a_long_lived_app_sees_what_a_cli_run_indexed(tmp_path, small_notes):
    """The Streamlit app keeps one index open for its lifetime; after `notes-assistant index` in another
    process, its next question reopens the index and finds the new section, and its own re-index writes
    through a fresh client, so it finds nothing left to do rather than undoing the CLI's work."""
    notes = tmp_path / "notes"
    notes.mkdir()
    for path in small_notes.iterdir():
        (notes / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    app = build(Settings(notes_dir=notes, index_dir=tmp_path / "index"), embeddings=LetterEmbeddings(), say=print)
    (notes / "zoo.md").write_text("# Zebras\nZebras zigzag through the zoo at dawn.\n", encoding="utf-8")
    code, out, err = run("--index-dir", str(tmp_path / "index"), "index", str(notes))
    assert code == 0, err
    assert "1 added" in out, out

    with app.reading():
        answer = app.assistant.ask("zebras zigzag zoo")
    assert [c.key for c in answer.citations][:1] == ["zoo.md#zebras"], answer.text
    assert app.reindex().embedded == 0
    app.index.close()


# Readers never write.


def contents(index_dir: Path) -> tuple:
    """What a write would change: the manifest, the marker of the last finished write, and the rows.

    Not Chroma's files themselves: in Chroma 1.5 any client that opens them records itself in the database.
    """
    chromadb.api.client.SharedSystemClient.clear_system_cache()
    client = chromadb.PersistentClient(
        str(index_dir / "chroma"), settings=chromadb.Settings(anonymized_telemetry=False)
    )
    try:
        rows = tuple(sorted(client.get_collection(c.name).get()["ids"]) for c in client.list_collections())
    finally:
        client.close()
    return (index_dir / "manifest.json").read_bytes(), index_state(index_dir), rows


def test_reading_commands_leave_the_index_untouched(tmp_path, small_notes):
    """`ask` on an up-to-date index writes nothing to it; `search` on changed notes says so in one line and
    still writes nothing (before, both re-indexed)."""
    notes = tmp_path / "notes"
    notes.mkdir()
    for path in small_notes.iterdir():
        (notes / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    index_dir = tmp_path / "index"
    index_in_process(notes, index_dir)
    before = contents(index_dir)

    code, out, err = run("--index-dir", str(index_dir), "ask", "apple basil", "--notes", str(notes))
    assert code == 0, err
    assert "Sources:" in out, out
    assert contents(index_dir) == before
    assert "changed since" not in err

    with (notes / "note0.md").open("a", encoding="utf-8") as handle:
        handle.write("\n# Late addition\nZephyr yarrow xenon.\n")
    code, out, err = run("--index-dir", str(index_dir), "search", "apple basil", "--notes", str(notes))
    assert code == 0, err
    assert out.startswith("1. "), out
    assert contents(index_dir) == before
    [line] = [line for line in err.splitlines() if "changed since" in line]
    assert "notes-assistant index" in line


def test_ask_during_an_index_run_waits_and_then_answers(tmp_path, small_notes, gate):
    """`ask` while `index` writes waits for it (one line), then answers from the finished index."""
    index_dir = tmp_path / "index"
    writer = Run("--gate", str(gate), "--index-dir", str(index_dir), "index", str(small_notes))
    reader = None
    try:
        assert writer.wait_for("at the gate"), writer.err
        reader = Run("--index-dir", str(index_dir), "ask", "apple basil cedar", "--notes", str(small_notes))
        assert reader.wait_for(f"another indexing run is in progress on {index_dir}; waiting"), reader.err
    finally:
        gate.touch()
        if reader is None:
            writer.kill()
    code, out, err = writer.finish()
    assert code == 0, err
    assert embedded(out) == texts_to_embed(small_notes)
    code, out, err = reader.finish()
    assert code == 0, err
    assert "Sources:" in out, out
    assert "no index yet" not in err  # it read what the writer built rather than building its own
    assert_answers(index_dir, small_notes)


# A killed run: the next one resumes, and finds the index good.


def test_a_run_killed_mid_write_leaves_the_next_only_what_was_left(tmp_path):
    """SIGKILL a first index run at ~40% of its texts: the next run embeds only the rest, with no damage found.

    Sections are written whole, a few per batch (320 chunks here: three batches), so the sections the killed run
    finished are not embedded again.
    """
    notes = write_notes(tmp_path / "notes", files=8, sections=40)
    index_dir = tmp_path / "index"
    total = texts_to_embed(notes)
    code, _, err = run("--die-after", str(total * 2 // 5), "--index-dir", str(index_dir), "index", str(notes))
    assert code == -9, err
    done = int(re.search(r"killed after (\d+) texts", err).group(1))
    assert 0 < done < total
    assert index_state(index_dir) is None  # it died mid-write: the index is not marked good

    code, out, err = run("--index-dir", str(index_dir), "index", str(notes))
    assert code == 0, err
    assert "in progress" not in err  # the dead run's lock died with it
    assert "damaged" not in err, err  # checked, found good, used
    assert embedded(out) == total - done
    assert index_state(index_dir) is not None
    assert_answers(index_dir, notes)


# Damage is found in a child process before it can crash this one.


def test_damaged_vectors_after_a_dead_writer_are_moved_aside_not_crashed_on(tmp_path, small_notes):
    """Garbled HNSW data segfaults the process that queries it. With the writer gone mid-way (no `clean`
    marker), `ask` health-checks in a child, moves the index aside, rebuilds it and answers."""
    # Over 1,000 chunks: Chroma keeps smaller vector indexes in its write log and rebuilds them on every open.
    notes = write_notes(tmp_path / "notes", files=10, sections=110)
    index_dir = tmp_path / "index"
    index_in_process(notes, index_dir)
    rng = random.Random(1)
    for data in (index_dir / "chroma").glob("*/data_level0.bin"):
        raw = bytearray(data.read_bytes())
        for i in range(0, len(raw), 3):
            raw[i] = rng.randrange(256)
        data.write_bytes(bytes(raw))
    (index_dir / CLEAN_FILE).unlink()

    code, out, err = run("--index-dir", str(index_dir), "ask", "apple basil cedar", "--notes", str(notes))
    assert code == 0, err
    [moved] = [line for line in err.splitlines() if line.startswith("the index was damaged")]
    assert "health check" in moved, moved
    assert "Sources:" in out, out
    assert len(list(tmp_path.glob("index.damaged-*"))) == 1
    assert_answers(index_dir, notes)


# Private files; nothing made for a missing notes folder.


def test_index_files_are_0600_and_folders_0700(tmp_path, small_notes, letters):
    """The index holds text from private notes: nobody but its owner may read it, Chroma's files included."""
    index_dir = tmp_path / "cache" / "index"
    app = build(Settings(notes_dir=small_notes, index_dir=index_dir), embeddings=letters, say=lambda _: None)
    with app.reading():
        app.assistant.ask("apple basil")
    modes = {str(p.relative_to(tmp_path)): stat.S_IMODE(p.stat().st_mode) for p in [index_dir, *index_dir.rglob("*")]}
    assert len(modes) > 5
    wrong = {
        path: oct(mode) for path, mode in modes.items() if mode != (0o700 if Path(tmp_path, path).is_dir() else 0o600)
    }
    assert wrong == {}
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o700  # the parent it had to create


@pytest.mark.parametrize(
    "command",
    [
        ["index", "{missing}"],
        ["ask", "What is SQS?", "--notes", "{missing}"],
        ["search", "SQS", "--notes", "{missing}"],
    ],
)
def test_a_missing_notes_folder_creates_nothing(tmp_path, capsys, command):
    missing = tmp_path / "no-such-notes"
    index_dir = tmp_path / "index"
    code = main(["--index-dir", str(index_dir), *[arg.format(missing=missing) for arg in command]])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err
    assert sorted(tmp_path.iterdir()) == []


def test_a_clean_index_is_opened_without_the_health_check(tmp_path, small_notes, letters, monkeypatch):
    """The check costs a process start (~1 s); an index whose last write finished skips it."""
    index_dir = tmp_path / "index"
    build(Settings(notes_dir=small_notes, index_dir=index_dir), embeddings=letters, say=lambda _: None)
    chromadb.api.client.SharedSystemClient.clear_system_cache()
    checked: list[Path] = []
    import assistant.app

    monkeypatch.setattr(assistant.app, "check_health", lambda path: checked.append(path))
    build(Settings(notes_dir=small_notes, index_dir=index_dir), embeddings=LetterEmbeddings(), sync=False)
    assert checked == []
    (index_dir / CLEAN_FILE).unlink()
    build(Settings(notes_dir=small_notes, index_dir=index_dir), embeddings=LetterEmbeddings(), sync=False)
    assert checked == [index_dir]


def test_lock_file_survives_moving_a_damaged_index_aside(tmp_path):
    """Moving aside keeps the lock file in place, so a run holding it still holds the folder's lock."""
    from index.store import move_aside

    index_dir = tmp_path / "index"
    with IndexLock(index_dir).hold():
        (index_dir / "manifest.json").write_text("garbage", encoding="utf-8")
        aside = move_aside(index_dir)
        assert sorted(p.name for p in index_dir.iterdir()) == ["lock"]
        assert sorted(p.name for p in aside.iterdir()) == ["manifest.json"]
    assert os.path.exists(index_dir / "lock")
