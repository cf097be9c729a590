"""The word-frequency file answers exactly as wordfreq does, and is passed over when it cannot."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest
from wordfreq import top_n_list, zipf_frequency

from index import english, spelling
from index.english import EnglishFile
from index.keyword import tokenize

ROOT = Path(__file__).resolve().parent.parent
# Notes the file was not written for: the bundled AWS notes, another author's system-design notes, and the
# practice notes of the tests (each word any of them uses, as a question would use it).
FOLDERS = [ROOT / "corpus" / "notes", ROOT.parent / "shared" / "notes-sdp", ROOT / "tests" / "data"]


@pytest.fixture(scope="module")
def kept(tmp_path_factory) -> EnglishFile:
    path = english.table_path(tmp_path_factory.mktemp("models"))
    english.write(path)
    return EnglishFile(path)


def _note_words() -> set[str]:
    words: set[str] = set()
    for folder in FOLDERS:
        for path in folder.rglob("*.md"):
            words.update(tokenize(path.read_text(encoding="utf-8", errors="replace")))
    return words


def test_every_word_of_three_notes_folders_has_wordfreqs_value(kept):
    words = {w for w in _note_words() if english.answerable(w)}
    assert len(words) > 3000
    wrong = {w: (kept.zipf(w), zipf_frequency(w, "en")) for w in words if kept.zipf(w) != zipf_frequency(w, "en")}
    assert not wrong


def test_numbers_years_typos_and_a_sample_of_the_list_have_wordfreqs_value(kept):
    rng = random.Random(7)
    listed = [w for w in top_n_list("en", 300_000) if english.answerable(w)]
    numbers = [str(n) for n in (0, 7, 42, 53, 443, 8080, 65535, 1999, 2019, 2024, 2039, 2040, 2100, 12345678)]
    made_up = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rng.randint(2, 12)))
               for _ in range(2000)]
    words = [*rng.sample(listed, 5000), *numbers, "route53", "ec2", "s3", "ipv6", "http2", "x86", "win32", *made_up]
    assert [kept.zipf(w) for w in words] == [zipf_frequency(w, "en") for w in words]


def test_the_common_words_are_wordfreqs_in_its_order(kept):
    assert kept.common(spelling.ENGLISH_WORDS) == [w for w in top_n_list("en", spelling.ENGLISH_WORDS) if w.isalpha()]
    assert kept.common(english.RANKED + 1) is None  # more than it keeps: wordfreq answers


def test_words_it_does_not_answer_for_go_to_wordfreq(kept):
    assert [kept.zipf(w) for w in ("café", "x-ray", "Glacier", "")] == [None] * 4


def test_a_missing_file_is_written_when_wordfreq_loads_then_answers(tmp_path):
    path = english.table_path(tmp_path / "models")
    found = EnglishFile(path)
    assert found.zipf("glacier") is None
    found.keep()
    assert path.is_file()
    assert EnglishFile(path).zipf("glacier") == zipf_frequency("glacier", "en")


def test_a_damaged_file_is_passed_over_not_an_error(tmp_path):
    path = tmp_path / "english.sqlite3"
    path.write_bytes(b"not a database" * 100)
    damaged = EnglishFile(path)
    assert damaged.zipf("glacier") is None
    assert damaged.common(10) is None
    # The next time wordfreq loads, the file is written again and read from then on.
    damaged.keep()
    assert damaged.zipf("glacier") == zipf_frequency("glacier", "en")


def test_a_file_that_cannot_be_written_is_passed_over(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the folder should be")
    found = EnglishFile(blocked / "models" / "english.sqlite3")
    found.keep()  # no error
    assert found.zipf("glacier") is None


def test_the_speller_reads_the_file_it_is_given(tmp_path, monkeypatch):
    # A file that says "glacier" is as common as "the" (wordfreq: 3.6): only reading it gives 6.0.
    path = tmp_path / "english.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE words (word TEXT PRIMARY KEY, freq REAL NOT NULL, rank INTEGER) WITHOUT ROWID")
        db.execute("INSERT INTO words VALUES ('glacier', 1e-3, 0)")
    monkeypatch.setattr(spelling, "_ENGLISH", EnglishFile(None))
    spelling.use_english_file(path)
    spelling.zipf.cache_clear()
    try:
        assert spelling.zipf("glacier") == 6.0
        assert spelling.zipf("lamda") == 0.0  # not in the file: as rare as wordfreq can say
    finally:
        spelling.zipf.cache_clear()
