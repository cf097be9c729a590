"""Questions from sections, offline: definitions, lists, steps, comparisons and clozes, each with its key points.

Everything here reads the structure markdown gives (a list and the label it hangs under, an ordered list, a
paragraph, the heading) rather than English word lists: see STYLE.md 13.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence

from corpus.chunking import is_label, section_units
from corpus.types import Section, Unit
from index.keyword import tokenize
from practice.types import KeyPoint, Question

MAX_POINTS = 5
# A unit under 3 words ("DynamoDB", "1") states nothing to ask about; a section with nothing else is near-empty.
MIN_WORDS = 3
# A cloze sentence needs enough around the blank to be answerable: 6 words or more besides the term.
CLOZE_MIN_WORDS = 6
_URL = re.compile(r"https?://\S+|www\.\S+")
_ORDERED = re.compile(r"^\s*\d+[.)]\s")
_PARENS = re.compile(r"\s*\(([^)]*)\)")
_WORD = re.compile(r"[\w'’-]+")
BLANK = "_____"


def question_id(section_key: str, kind: str, points: Iterable[str]) -> str:
    """Content-derived: `("aws.md#lambda", "definition", ["Serverless…"])` -> 12 hex digits, the same every run."""
    payload = json.dumps([section_key, kind, list(points)], ensure_ascii=False)
    return hashlib.sha1(payload.encode()).hexdigest()[:12]


def usable(unit: Unit) -> bool:
    """A unit worth asking about: words of its own, not a link reference ("Refer - https://…") or a lead-in.

    A list item may be one name ("Caching" under "Topics covered:"); a sentence needs `MIN_WORDS`.
    """
    least = 1 if unit.kind in ("item", "row") else MIN_WORDS
    return len(_WORD.findall(_URL.sub(" ", unit.text))) >= least and not unit.text.rstrip().endswith(":")


def term_of(section: Section) -> str:
    """What the section is about, from its heading: `"Rekognition:"` -> `"Rekognition"`."""
    return section.title.strip().rstrip(":-").strip()


def names_of(term: str) -> list[str]:
    """The names a heading gives a thing, longest first: `"S3 (Simple Storage Service)"` ->
    `["S3 (Simple Storage Service)", "Simple Storage Service", "S3"]`."""
    names = [term]
    inner = _PARENS.findall(term)
    bare = _PARENS.sub("", term).strip()
    names += inner + [bare]
    return sorted({n.strip() for n in names if n.strip()}, key=len, reverse=True)


def _lower_first(label: str) -> str:
    """`"Key features"` -> `"key features"`; `"AWS PrivateLink"` and `"ETCD"` keep their capitals."""
    first = label.split(" ", 1)[0]
    if len(first) > 1 and (first[1:].lower() != first[1:] or first.isupper()):
        return label
    return label[:1].lower() + label[1:]


def _point(unit: Unit) -> KeyPoint:
    return KeyPoint(unit.text, unit.line_start, unit.line_end)


def _ordered(section: Section, units: Sequence[Unit]) -> bool:
    """Whether the items come from a numbered list: the source line of the first item starts with `1.`."""
    lines = section.markdown.split("\n")
    at = units[0].line_start - section.line_start
    return 0 <= at < len(lines) and bool(_ORDERED.match(lines[at]))


def _label(section: Section, items: Sequence[Unit], lead: Unit | None) -> tuple[str, bool]:
    """What a list is a list of, and whether that is a label ("Key features:") rather than a sentence or a plain
    heading: the label its items hang under, the line leading into it, or a heading that ends in ":"."""
    term = term_of(section)
    if items[0].context:
        label, is_label_ = items[0].context.rstrip(" :-"), True
    elif lead is not None:
        label, is_label_ = lead.text.rstrip(" :-"), False  # a lead-in sentence reads badly after "Name the"
    else:
        label, is_label_ = term, section.title.rstrip().endswith(":")
    if is_label_ and len(label.split()) <= 2 and term not in label:
        # "Pros" alone does not say of what
        label = f"{label} ({term})" if term.endswith("?") else f"{label} of {term}"
    return label, is_label_


def _named(term: str) -> bool:
    """A heading that names a thing rather than describing a topic: every word after the first is capitalised
    or not a word (`"Elastic Compute Cloud (EC2)"`, `"ETCD"`), unlike `"Between two regions"`."""
    words = _WORD.findall(_PARENS.sub("", term))
    return bool(words) and all(not w[:1].islower() for w in words[1:])


def _item_labelled(unit: Unit) -> bool:
    """An item of the form "Isolation: A VPC provides…": a named feature, not a step."""
    head, colon, _ = unit.text.partition(":")
    return bool(colon) and is_label(head)


def _make(section: Section, kind: str, text: str, points: Sequence[KeyPoint], term: str = "") -> Question:
    points = tuple(points[:MAX_POINTS])
    return Question(
        question_id(section.key, kind, [p.text for p in points]),
        section.key,
        kind,
        text,
        points,
        section.heading_path,
        term,
    )


def _passages(units: Sequence[Unit]) -> list[list[Unit]]:
    out: dict[int, list[Unit]] = {}
    for unit in units:
        out.setdefault(unit.passage, []).append(unit)
    return list(out.values())


def section_questions(section: Section) -> list[Question]:
    """The questions one section yields; none from a table of contents, a link list or a near-empty section.

    A section "Lambda" with "Serverless compute service that runs code in response to events." yields
    `definition: "What is Lambda?"` with that sentence as its key point, and a cloze of any sentence that names
    Lambda. A list under "Key features:" yields `list: "Name the key features of …"` with its items as key points.
    """
    if not section.indexable:
        return []
    units = [u for u in section_units(section) if usable(u)]
    if not units:
        return []
    term = term_of(section)
    questions: list[Question] = []
    lists: list[tuple[str, list[Unit], bool]] = []
    all_units = section_units(section)
    for passage in _passages(units):
        items = [u for u in passage if u.kind in ("item", "row")]
        if len(items) >= 2:
            before = [u for u in all_units if u.ordinal < items[0].ordinal]
            lead = before[-1] if before and before[-1].kind == "paragraph" else None
            label, named = _label(section, items, lead)
            lists.append((label, items, named))
    # Two lists under their own labels ("Pros", "Cons") are two sides to compare, never steps.
    compared = sum(1 for _, items, _ in lists if items[0].context) >= 2
    for label, items, named in lists:
        n = min(len(items), MAX_POINTS)
        if _ordered(section, items) and not compared and not any(_item_labelled(u) for u in items):
            raw = (items[0].context or term).rstrip(" :-")
            text = f"List, in order, the steps for “{raw}”" + (f" ({term})." if raw != term else ".")
            questions.append(_make(section, "steps", text, _points(items)))
            continue
        some = f"{n} of " if len(items) > MAX_POINTS else ""
        if named:
            text = f"Name {some}the {_lower_first(label)}."
        else:
            text = f"What do your notes list under “{label}”? Name {some or 'each of '}them."
        questions.append(_make(section, "list", text, _points(items)))
    labelled = [(label, items) for label, items, _ in lists if items[0].context]
    if len(labelled) >= 2:
        (a, xs), (b, ys) = labelled[-2:]
        half = MAX_POINTS // 2
        points = _points(xs)[: half + 1] + _points(ys)[:half]
        questions.append(_make(section, "comparison", f"Compare “{a}” with “{b}”.", points))
    prose = [u for u in units if u.kind == "paragraph" and not u.heading]
    if prose:
        first = [u for u in prose if u.passage == prose[0].passage][:3]
        if term.endswith("?"):
            asked = term
        elif _named(term):
            asked = f"What is {term}?"
        else:
            asked = f"What do your notes say about “{_lower_first(term)}”?"
        questions.append(_make(section, "definition", asked, [_point(u) for u in first]))
    elif not questions:
        # Only items, and too few for a list question: ask what the heading is about.
        asked = term if term.endswith("?") else f"What do your notes say about {term}?"
        questions.append(_make(section, "definition", asked, [_point(u) for u in units[:3]]))
    cloze = _cloze(section, units, term)
    if cloze is not None:
        questions.append(cloze)
    return questions


def _points(units: Sequence[Unit]) -> list[KeyPoint]:
    return [_point(u) for u in units[:MAX_POINTS]]


def _cloze(section: Section, units: Sequence[Unit], term: str) -> Question | None:
    """The first sentence naming the section's subject, with the name blanked; None when no sentence names it."""
    if term.endswith("?"):
        return None
    for unit in units:
        for name in names_of(term):
            pattern = re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])", re.IGNORECASE)
            found = pattern.search(unit.text)
            if found is None:
                continue
            rest = len(_WORD.findall(pattern.sub(" ", unit.text)))
            if rest < CLOZE_MIN_WORDS:
                continue
            blanked = pattern.sub(BLANK, unit.text)
            return _make(section, "cloze", f"Fill in the blank: {blanked}", [_point(unit)], term=found.group(0))
    return None


def questions_for(sections: Iterable[Section]) -> list[Question]:
    """Every section's questions, in note order."""
    return [q for s in sections for q in section_questions(s)]


def in_topic(section: Section, topic: str) -> bool:
    """Whether a section is in a topic named by the user: a file (`aws.md`), a heading and what is under it
    (`Databases`, `VPC`), or all notes (empty topic). Case and spacing do not matter.

    `("AWS > Databases > Neptune", "databases")` -> True; `("AWS > Compute > Lambda", "databases")` -> False.
    """
    wanted = " ".join(topic.lower().split())
    if not wanted:
        return True
    path = section.path.lower()
    if wanted in (path, path.rsplit("/", 1)[-1], path.rsplit(".", 1)[0]):
        return True
    # Word forms count too: "containers" names a "Container Services" heading (each word of the topic, stemmed,
    # is a word of the heading).
    asked = set(tokenize(wanted))
    for heading in section.heading_path:
        names = [n.lower() for n in names_of(heading.strip().rstrip(":-").strip())]
        if any(wanted == n or re.search(rf"(?<!\w){re.escape(wanted)}(?!\w)", n) for n in names):
            return True
        if asked and asked <= set(tokenize(heading)):
            return True
    return False
