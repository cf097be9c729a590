"""Typed words -> the words the notes use: typos ("elastcache", "lamda") and spacing ("elastic cache").

A word is only changed when the notes never use it and it is not a common English word: "good" or "five" in
"What is Glacier good for?" stay as typed (the notes need not say them), "lamda" becomes "lambda". The chain keeps
what the user typed beside the corrected question, so the answer can show what was searched.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from functools import lru_cache
from pathlib import Path

from index.english import EnglishFile
from index.keyword import STOPWORDS, stem

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*")
# Below this Zipf frequency (wordfreq: 3 is once per million words) a word is rare enough in English that, when
# the notes lack it, a near miss of a word they use is the likelier reading. "raft" (3.5) and "glacier" (3.6)
# are words; "lamda" (1.8) and "elastcache" (0) are typos.
COMMON_ZIPF = 3.0
# Edits allowed for a word of this many letters: one for 4-7, two from 8 (elastcache -> elasticache is one).
MIN_LETTERS = 4
TWO_EDITS_FROM = 8
# A word English rarely writes, one slip (a letter added, dropped, changed or two swapped) from a word written at
# least this much more often (Zipf is log10: 3 is a thousand times), was meant as that word: "teh" (3.0) is "the"
# (7.7), "hw" (3.2) is "how" (6.5), "diffrence" (1.6) is "difference" (5.1). "rust" (3.9) beside "just" (6.5) is
# not: both are words people mean, and a name is never pulled toward a common word.
MEANT_GAP = 3.0
# English words a slip may have been meant as: wordfreq's most common 40,000 reach down to Zipf 2.7, below what
# MEANT_GAP lets any word be taken for.
ENGLISH_WORDS = 40_000
# Each half of a word read as two run-together terms has at least this many letters: "auto|scaling", not "a|zs".
SPLIT_LETTERS = 3


# Where word frequencies are looked up before wordfreq is loaded: set once by the composition root
# (`use_english_file`), none for a library caller, who gets wordfreq as before. Module state because the
# frequencies are facts about English, the same for every index in the process.
_ENGLISH = EnglishFile(None)


def use_english_file(path: Path) -> None:
    """Look words up in the file at `path` (`index.english`), written there the first time wordfreq loads."""
    global _ENGLISH
    if _ENGLISH.path != path:
        _ENGLISH = EnglishFile(path)


@lru_cache(maxsize=4096)
def zipf(word: str) -> float:
    """How common a word is in English, 0 (never seen) to ~7.5 ("the"), from wordfreq's packaged counts."""
    kept = _ENGLISH.zipf(word)
    if kept is not None:
        return kept
    from wordfreq import zipf_frequency

    _ENGLISH.keep()
    return zipf_frequency(word, "en")


@lru_cache(maxsize=1)
def _english() -> list[str]:
    kept = _ENGLISH.common(ENGLISH_WORDS)
    if kept is not None:
        return kept
    from wordfreq import top_n_list

    _ENGLISH.keep()
    return [w for w in top_n_list("en", ENGLISH_WORDS) if w.isalpha()]


@lru_cache(maxsize=4096)
def meant_zipf(word: str) -> float:
    """How common in English the word someone typing `word` most likely meant is: its own Zipf frequency, or
    that of a far more common word one slip away (two in a word of TWO_EDITS_FROM letters or more).

    `meant_zipf("teh")` -> 7.7 (as "the"); `meant_zipf("rust")` -> 3.9 (a word of its own)
    """
    own = zipf(word)
    if not word.isalpha():
        return own
    from rapidfuzz.distance import OSA
    from rapidfuzz.process import extract

    limit = 2 if len(word) >= TWO_EDITS_FROM else 1
    near = extract(word, _english(), scorer=OSA.distance, score_cutoff=limit, limit=None)
    best = max((zipf(w) for w, _, _ in near if w != word), default=0.0)
    return best if best >= own + MEANT_GAP else own


class Speller:
    """Matches the words of a question to the terms of one index (term -> number of sections that use it)."""

    def __init__(self, postings: Mapping[str, int], titles: Collection[str] = ()) -> None:
        self.postings = dict(postings)
        self.titles = set(titles)
        self._terms = [t for t in self.postings if t.isalpha() and len(t) >= MIN_LETTERS - 1]

    def known(self, word: str) -> bool:
        w = word.lower()
        return w in self.postings or stem(w) in self.postings

    def familiar(self, word: str) -> bool:
        """Whether the notes use `word` in some spelling: as typed, or a variant of a term they use.

        The variants are the ones people type for a term they have read: one letter off in a long word
        ("analyse" / "analyze"), a prefix of it ("multi-region" / "multiple"), two of its terms run together
        ("autoscaling" / "auto scaling"), an acronym's plural ("AZs" / "AZ"). Used to ask whether the notes could
        answer at all, never to rank.
        """
        w = word.lower()
        if self.known(w) or (w.endswith("s") and w[:-1] in self.postings):
            return True
        if not w.isalpha() or len(w) < MIN_LETTERS + 1:
            return False
        return (
            self._split(w) is not None
            or any(t.startswith(w) for t in self._terms)
            or (len(w) >= 6 and self._nearest(w, limit=1) is not None)
        )

    def _split(self, w: str) -> str | None:
        """Two heading words of the notes run together: `"autoscaling"` -> `"auto scaling"`, else None.

        Heading words only, as for joining: "websocket" is a thing of its own, not "web" and "socket" where the
        notes happen to say both.
        """
        for cut in range(SPLIT_LETTERS, len(w) - SPLIT_LETTERS + 1):
            head, tail = w[:cut], w[cut:]
            if head in self.titles and stem(tail) in self.titles:
                return f"{head} {tail}"
        return None

    def correct(self, question: str) -> str:
        """The question with unknown rare words replaced by the notes' nearest term.

        With notes about ElastiCache: `"what is elastic cache"` -> `"what is elasticache"`;
        `"wat is elastcache"` -> `"wat is elasticache"` ("wat" is too short to guess at).
        """
        words = list(_WORD.finditer(question))
        out, pos, i = [], 0, 0
        while i < len(words):
            match = words[i]
            replacement, used = self._fix(match.group(), words[i + 1].group() if i + 1 < len(words) else None)
            if used == 2 and question[match.end() : words[i + 1].start()].strip():
                replacement, used = None, 1  # "elastic, cache" is two words, not one split
            if replacement is None:
                i += 1
                continue
            end = words[i + used - 1].end()
            out.append(question[pos : match.start()] + replacement)
            pos, i = end, i + used
        out.append(question[pos:])
        return "".join(out)

    def _fix(self, word: str, following: str | None) -> tuple[str | None, int]:
        """The notes' term for `word` (with the following word when the two are one term), and words used."""
        w = word.lower()
        if following is not None and not {w, following.lower()} & STOPWORDS:
            joined = w + following.lower()
            # Two typed words that name one thing the notes write as one word in a heading ("dynamo db", and with
            # a typo "elastic cache" for "ElastiCache") are that name. Only heading words: "short link" is fine
            # English even where a table column is called "shortlink", and joining it cost the match.
            if len(joined) >= 6 and stem(joined) in self.titles:
                return stem(joined), 2
            # Near a heading word only when both words are real words ("I install" is not "install" misspelt).
            short = min(len(w), len(following)) < 3
            if not short and len(joined) >= TWO_EDITS_FROM and zipf(joined) < COMMON_ZIPF:
                near = self._nearest(joined, limit=1)
                if near and near in self.titles:
                    return near, 2
        if len(w) < MIN_LETTERS or w in STOPWORDS or self.known(w) or zipf(w) >= COMMON_ZIPF:
            return None, 1
        # A misspelling first; failing that, two of the notes' terms typed as one ("autoscaling").
        return self._nearest(w) or self._split(w), 1

    def _nearest(self, w: str, limit: int | None = None) -> str | None:
        """The notes' term within one or two edits of `w`, the most used one when several are as near."""
        from rapidfuzz.distance import Levenshtein
        from rapidfuzz.process import extract

        limit = limit or (2 if len(w) >= TWO_EDITS_FROM else 1)
        found = extract(w, self._terms, scorer=Levenshtein.distance, score_cutoff=limit, limit=20)
        if not found:
            return None
        best = min(distance for _, distance, _ in found)
        ties = [term for term, distance, _ in found if distance == best]
        return max(ties, key=lambda term: (self.postings[term], term))
