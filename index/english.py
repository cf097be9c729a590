"""How common English words are (wordfreq's counts), kept in a SQLite file: a new process looks a word up in
microseconds instead of importing wordfreq and unpacking its list of 321,000 words, which was 0.2-0.3 s of a
cold `notes-assistant ask`.

The file holds the frequency of every word of wordfreq's English list made of lowercase ASCII letters and digits
(the words `index.keyword.tokenize` yields: "glacier", "s3", "route00"), and the alphabetic words of its most
common RANKED with their rank. A word's Zipf value is then computed the way wordfreq 3.1 computes it for a word
of one token (`zipf`, below: its numbers replaced by zeros and estimated apart, rounded to three significant
digits, as log10 + 9); a word of that kind the list lacks is 0, also wordfreq's answer. Any other word ("café",
"x-ray") is asked of wordfreq itself. `tests/test_english.py` checks every word of three notes folders, and a
sample of the list, against wordfreq. The file is written once, by the first process that loads wordfreq, named
by wordfreq's version so an upgrade writes a new one; a file that cannot be read or written is passed over, and
wordfreq answers.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sqlite3
import tempfile
import threading
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

FILE_VERSION = 1
LANG = "en"
# Ranked words kept: what `common` can list (the speller reads the 40,000 most common).
RANKED = 50_000
_WORD = re.compile(r"[a-z0-9]+")
# wordfreq's numbers (3.1.1 `wordfreq.numbers`): a run of two or more digits is looked up as zeros ("route53" as
# "route00") and its own frequency estimated: Benford's law for the first digit, a curve over years for four.
_NUMBER = re.compile(r"[0-9]{2,}")
DIGIT_FREQS = (0.009, 0.300, 0.175, 0.124, 0.096, 0.078, 0.066, 0.057, 0.050, 0.045)
YEAR_LOG_PEAK, NOT_YEAR_PROB, REFERENCE_YEAR, PLATEAU_WIDTH = -1.9185, 0.1, 2019, 20
MIN_FREQ = 1e-9  # Zipf 0: `zipf_frequency`'s floor


def answerable(word: str) -> bool:
    """Lowercase ASCII letters and digits only: a word the file answers for, whether or not it holds it."""
    return _WORD.fullmatch(word) is not None


def table_path(cache_dir: Path) -> Path:
    try:
        release = version("wordfreq")
    except PackageNotFoundError:
        release = "unknown"
    return cache_dir / f"english-wordfreq-{release}-v{FILE_VERSION}.sqlite3"


def _benford(digits: str) -> float:
    return DIGIT_FREQS[int(digits[0])] / 10 ** (len(digits) - 1)


def _year(digits: str) -> float:
    year = int(digits)
    if year <= REFERENCE_YEAR:
        log_freq = YEAR_LOG_PEAK - 0.0083 * (REFERENCE_YEAR - year)
    elif year <= REFERENCE_YEAR + PLATEAU_WIDTH:
        log_freq = YEAR_LOG_PEAK
    else:
        log_freq = YEAR_LOG_PEAK - 0.2 * (year - (REFERENCE_YEAR + PLATEAU_WIDTH))
    return 10.0**log_freq + NOT_YEAR_PROB * _benford(digits)


def smashed(word: str) -> str:
    """The form the list holds `word` under: `"route53"` -> `"route00"`, `"s3"` -> `"s3"`."""
    return _NUMBER.sub(lambda m: "0" * len(m.group()), word)


def zipf(word: str, listed: float | None) -> float:
    """wordfreq's Zipf value for a one-token `word` whose smashed form the list gives frequency `listed`."""
    if listed is None:
        return 0.0
    freq = listed
    if smashed(word) != word:  # a word already of zeros ("000") is listed as it is
        for number in _NUMBER.findall(word):
            freq *= _year(number) if len(number) == 4 else _benford(number)
    unrounded = max(1.0 / (1.0 / freq), MIN_FREQ)
    rounded = round(unrounded, math.floor(-math.log(unrounded, 10)) + 3)
    return round(math.log(rounded, 10) + 9, 2)


def rows() -> list[tuple[str, float, int | None]]:
    """(word, frequency, rank or None) for the file, in word order (SQLite's key order: the fastest to insert)."""
    from wordfreq import get_frequency_dict, top_n_list

    freqs = get_frequency_dict(LANG, "best")
    top = top_n_list(LANG, RANKED)
    rank = {w: i for i, w in enumerate(top)}
    words = {w for w in freqs if answerable(w)} | {w for w in top if w.isalpha()}
    return sorted((w, freqs[w], rank.get(w)) for w in words)


def write(path: Path) -> None:
    """Write the file whole: to a temporary file first, renamed over `path`, so a reader never sees half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".english-", suffix=".tmp")
    os.close(handle)
    try:
        with contextlib.closing(sqlite3.connect(tmp)) as db:
            # A new file renamed into place once complete: it needs no journal to survive a crash midway.
            db.execute("PRAGMA journal_mode = OFF")
            db.execute("PRAGMA synchronous = OFF")
            db.execute("CREATE TABLE words (word TEXT PRIMARY KEY, freq REAL NOT NULL, rank INTEGER) WITHOUT ROWID")
            db.executemany("INSERT INTO words VALUES (?, ?, ?)", rows())
            db.execute("CREATE INDEX by_rank ON words (rank) WHERE rank IS NOT NULL")
            db.commit()
        os.chmod(tmp, 0o644)  # public data (wordfreq's list), shared like the exported model
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


class EnglishFile:
    """Lookups in the file at `path` (None: none kept); each answer None when the file cannot give it."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._failed = False  # unreadable: passed over until `keep` writes it again
        self._unwritable = False
        self._lock = threading.Lock()  # one connection, shared by Streamlit's threads

    def _connection(self) -> sqlite3.Connection | None:
        if self._db is None and not self._failed and self.path is not None and self.path.is_file():
            try:
                self._db = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, check_same_thread=False)
            except sqlite3.Error:
                self._failed = True
        return self._db

    def _query(self, sql: str, args: tuple) -> list[tuple] | None:
        with self._lock:
            db = self._connection()
            if db is None:
                return None
            try:
                return db.execute(sql, args).fetchall()
            except sqlite3.Error:  # damaged, or replaced by an unreadable file: wordfreq answers until `keep`
                db.close()
                self._failed, self._db = True, None
                return None

    def zipf(self, word: str) -> float | None:
        if not answerable(word):
            return None
        found = self._query("SELECT freq FROM words WHERE word = ?", (smashed(word),))
        if found is None:
            return None
        return zipf(word, found[0][0] if found else None)

    def common(self, n: int) -> list[str] | None:
        """The alphabetic words among wordfreq's `n` most common, most common first (`n` <= RANKED)."""
        if n > RANKED:
            return None
        found = self._query("SELECT word FROM words WHERE rank < ? ORDER BY rank", (n,))
        return None if found is None else [w for (w,) in found if w.isalpha()]

    def keep(self) -> None:
        """Write the file if it is missing or cannot be read: called when wordfreq has just been loaded anyway."""
        if self.path is None or self._unwritable or (self.path.is_file() and not self._failed):
            return
        try:
            write(self.path)
        except (OSError, sqlite3.Error):
            self._unwritable = True
            return
        with self._lock:
            self._failed, self._db = False, None
