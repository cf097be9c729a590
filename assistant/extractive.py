"""The offline answerer: picks the sentences and list items of the retrieved sections that answer the question.

Pure: it gets the query vector, the hits and the unit vectors (computed at index time) and does arithmetic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from assistant.refusal import name_like
from corpus.chunking import is_label, section_units
from corpus.types import Section, Unit
from index.keyword import facets, tokenize
from index.retrieve import Hit

# A unit joins the answer when it scores within this much of the best unit of its section; MiniLM cosines of
# on-topic sentences spread over ~0.15, off-topic ones sit lower.
KEEP_MARGIN = 0.2
MAX_UNITS = 4
# A question written in the notes that matches nearly as well as the best sentence heads an answer written
# below it: interview notes are full of "Q?\nA1\nA2".
FAQ_MARGIN = 0.05
MAX_RUN = 6
# A passage (a paragraph, a list with its lead-in) is quoted whole up to this many units, and one section's part of
# an answer stops at ANSWER_UNITS: the longest lists in the dev notes (SOLID, the cache-aside steps) fit.
PASSAGE_UNITS = 10
ANSWER_UNITS = 14
# A paragraph is quoted whole up to this many sentences; past it, it is an essay and only the chosen part is.
PARAGRAPH_UNITS = 6
# A section this short is one thought: quoted whole ("Cache-aside is also referred to as lazy loading", the
# Cassandra example of a wide column store, both sat two sentences away from the best one).
SECTION_UNITS = 10
CANDIDATE_SECTIONS = 4
# Bonuses on top of a unit's cosine, each for a kind of question and the kind of sentence that answers it.
TERM_BONUS = 0.15
DEFINITION_BONUS = 0.15
REASON_BONUS = 0.1
_DEFINITION = re.compile(r"^\s*(what\s+(is|are|was)|what's|define|explain|describe|tell me about)\b", re.IGNORECASE)
_WHY = re.compile(r"^\s*why\b|\bwhat for\b|\bpurpose\b", re.IGNORECASE)
# A sentence that defines: "X is a ...", "It is a ...", or a bare noun phrase "A distributed key-value store".
_DEFINES = re.compile(r"^(?:an?\s|it\s+is\s|this\s+is\s|[\w\s()'’-]{1,40}?\s(?:is|are)\s(?:an?|the)\s)", re.IGNORECASE)
# Words that give a reason or a purpose, for "why" questions.
_REASON = re.compile(
    r"\b(because|so that|in order to|designed to|to ensure|ensures?|helps?|prevents?|providing|enables?|which means)\b",
    re.IGNORECASE,
)
_URL_ONLY = re.compile(r"^\S*://\S*$")
# "How do I fix/do X?" wants the step, and notes write steps as commands: "Add a healthcheck ...".
HOW_BONUS = 0.1
_HOW = re.compile(r"^\s*how\s+(do|can|should|would)\s+(i|you|we)\b|\bhow to\b|\bfix\b", re.IGNORECASE)
_IMPERATIVE = re.compile(
    r"^(?:[\w\s]{0,30}:\s*)?(add|use|set|run|create|enable|configure|install|call|pass|wrap|put|make|specify|define|"
    r"ensure|associate|avoid|check|replace|remove|move|keep|write|give|start|stop|open|close|switch|attach|"
    r"mount|deploy|build|restart|increase|decrease|turn|prefer)\b",
    re.IGNORECASE,
)
# Notes file lists under labels like "Pros" and "Cons"; questions ask for "advantages" or "downsides". A unit whose
# label (or opening word) names the facet the question asks for gets FACET_BONUS.
FACET_BONUS = 0.2
# "What is etcd and why does Kubernetes use it?" asks two things; each part picks its own sentences.
_SECOND_PART = re.compile(r"[,;]?\s+(?:and|but)\s+(?=(?:what|why|how|when|where|which|who|does|do|is|are|can)\b)", re.I)


def split_question(question: str) -> list[str]:
    """The parts of a question that asks several things.

    `"What is etcd and why does Kubernetes use it?"` -> `["What is etcd", "why does Kubernetes use it?"]`
    """
    parts = [part.strip() for part in _SECOND_PART.split(question) if part.strip()]
    return parts if len(parts) > 1 else [question]


@dataclass(frozen=True)
class Evidence:
    """The units of one section that the answer uses, in reading order."""

    section: Section
    units: tuple[Unit, ...]
    score: float


def _cosines(query: Sequence[float], vectors: Sequence[Sequence[float]]) -> np.ndarray:
    if not vectors:
        return np.zeros(0)
    return np.asarray(vectors, dtype=np.float32) @ np.asarray(query, dtype=np.float32)


def overlap(question_terms: set[str], text: str) -> float:
    """Share of the question's terms found in text: `({"sqs", "queue"}, "SQS is a queue")` -> 1.0."""
    if not question_terms:
        return 0.0
    return len(question_terms & set(tokenize(text))) / len(question_terms)


def score_units(
    question: str, query: Sequence[float], section: Section, vectors: Sequence[tuple[int, Sequence[float]]]
) -> list[tuple[Unit, float]]:
    """Each unit of a section with its score: cosine to the query, plus term overlap, plus a definition bonus."""
    units = section_units(section)
    by_ordinal = dict(vectors)
    known = [u for u in units if u.ordinal in by_ordinal]
    sims = _cosines(query, [by_ordinal[u.ordinal] for u in known])
    terms = set(tokenize(question))
    definition = bool(_DEFINITION.search(question))
    why = bool(_WHY.search(question))
    wanted = facets(question)
    how = bool(_HOW.search(question))
    scored = []
    first = next((u.ordinal for u in known if quotable(u.text)), -1)
    for unit, sim in zip(known, sims, strict=True):
        if not quotable(unit.text):
            continue
        # Terms count in the unit or the title it sits under, so units of different sections compare fairly. Under
        # a commented-out heading that heading is the title: EFS text in the S3 section is no answer about S3.
        score = float(sim) + TERM_BONUS * overlap(terms, f"{unit.heading or section.title} {unit.text}")
        if definition and (unit.ordinal == first or _DEFINES.match(unit.text)):
            score += DEFINITION_BONUS
        if why and _REASON.search(unit.text):
            score += REASON_BONUS
        if wanted and wanted & facets(unit.context or " ".join(unit.text.split()[:2])):
            score += FACET_BONUS
        if how and _IMPERATIVE.match(unit.text):
            score += HOW_BONUS
        scored.append((unit, score))
    return scored


def quotable(text: str) -> bool:
    """Worth quoting in an answer: not a bare link, not a lone word. `"https://youtu.be/x"` -> False."""
    return not _URL_ONLY.match(text.strip()) and len(text.split()) >= 2


def _is_question(unit: Unit) -> bool:
    return unit.text.rstrip().endswith("?")


def pick_units(scored: list[tuple[Unit, float]], question: str = "") -> tuple[tuple[Unit, ...], float]:
    """The units to quote from one section and the section's best score.

    When the best unit is a question the notes ask themselves ("How can a lambda communicate with a VPC?"),
    the answer is the run of lines that follows it. When it is an item of a list whose label the question asks
    for ("drawbacks" and a list under "Cons:"), the answer is that list.
    """
    if not scored:
        return (), 0.0
    ordered = sorted(scored, key=lambda pair: -pair[1])
    best_unit, best = ordered[0]
    if best_unit.context and _asks_for_label(question, best_unit.context):
        items = [u for u, _ in scored if u.context == best_unit.context]
        if len(items) > 1:
            return tuple(items[:MAX_RUN]), best
    asked = next(((u, s) for u, s in ordered if _is_question(u)), None)
    if asked is not None and asked[1] >= best - FAQ_MARGIN:
        units = [u for u, _ in scored]
        start = units.index(asked[0])
        run = [asked[0]]
        for unit in units[start + 1 :]:
            if unit.line_start > run[-1].line_end + 1 or len(run) > MAX_RUN:
                break
            run.append(unit)
        if len(run) > 1:
            return tuple(run[1:]), best
    floor = best - KEEP_MARGIN
    chosen = [u for u, s in ordered[:MAX_UNITS] if s >= floor and not _is_question(u)] or [best_unit]
    return with_passages(chosen, [u for u, _ in scored]), best


def with_passages(chosen: Sequence[Unit], units: Sequence[Unit]) -> tuple[Unit, ...]:
    """The chosen units with the rest of their passages: a list with its lead-in and all its items, a paragraph
    whole, in reading order; a passage longer than PASSAGE_UNITS gives its lead-in and the units from the
    chosen one on.

    A sentence picked alone lost what made it an answer on notes it was not tuned on: the list after "The
    application does the following:", the last SOLID principles, the "HTTP 503" one sentence further on.
    """
    # Text under a commented-out heading belongs to that heading, not to the section around it: the whole of a
    # short section means the whole of the part the chosen units sit in.
    heading = chosen[0].heading if chosen else ""
    chosen = [u for u in chosen if u.heading == heading]
    units = [u for u in units if u.heading == heading]
    if len(units) <= SECTION_UNITS:
        return tuple(units)
    keep = {u.ordinal for u in chosen}
    for unit in chosen:
        passage = [u for u in units if u.passage == unit.passage and not _is_question(u)]
        listed = any(_listed(u) for u in passage)
        if len(passage) <= (PASSAGE_UNITS if listed else PARAGRAPH_UNITS):
            keep.update(u.ordinal for u in passage)
            continue
        if not listed:
            # A long paragraph: the chosen sentence and the one after it, which most often finishes its thought.
            at = passage.index(unit)
            keep.update(u.ordinal for u in passage[at : at + 2])
            continue
        if passage and passage[0].text.rstrip().endswith(":"):
            keep.add(passage[0].ordinal)
        after = [u for u in passage if u.ordinal >= unit.ordinal]
        keep.update(u.ordinal for u in after[: PASSAGE_UNITS - 1])
    ordered = [u for u in units if u.ordinal in keep]
    return tuple(ordered[:ANSWER_UNITS])


def drop_dangling(chosen: Sequence[Unit], units: Sequence[Unit]) -> tuple[Unit, ...]:
    """The chosen units without lead-ins whose list is not quoted: "Example 1:", "Node components :-" or a heading
    joined to a label ("Deploying across regions: Pros") say nothing alone. A lone lead-in is kept: it is all
    there is.

    A lead-in is a unit ending in ":" (or ":-"), or a label a list follows in its passage.
    """
    kept = tuple(u for u in chosen if not (_leads(u, units) and not _followed(u, chosen)))
    return kept or tuple(chosen)


def _leads(unit: Unit, units: Sequence[Unit]) -> bool:
    if unit.text.rstrip(" .").endswith((":", ":-")):
        return True
    return unit.kind == "paragraph" and is_label(unit.text) and _followed(unit, units)


def _followed(unit: Unit, units: Sequence[Unit]) -> bool:
    return any(u.passage == unit.passage and u.ordinal > unit.ordinal for u in units)


def _asks_for_label(question: str, label: str) -> bool:
    """Whether the question asks for what a list's label names: by facet ("drawbacks" for "Cons") or by word.

    `("What are the key features of PrivateLink?", "Key features of AWS PrivateLink")` -> True
    """
    if facets(question) & facets(label):
        return True
    asked, named = set(tokenize(question)), set(tokenize(label))
    return len(asked & named) >= 2 or (bool(named) and named <= asked)


@dataclass(frozen=True)
class Rarity:
    """How many section titles and how many sections hold each term: what makes a term a name here."""

    titles: Mapping[str, int]
    sections: Mapping[str, int]


def named_terms(question: str, section: Section, rarity: Rarity) -> set[str]:
    """Terms of the question that name this section's subject: in its title and in few other titles, and either
    written as a name (SNS, Lambda, m5) or rare in the notes as a whole.

    `("How is SQS unlike SNS?", <SNS (Simple Notification Service)>)` -> `{"sns"}`; but "take" in "How long does it
    take?" never names "Decorators that take arguments".
    """
    written = {t for word in name_like(question) for t in tokenize(word)}
    shared = set(tokenize(question)) & set(tokenize(section.title))
    return {
        t
        for t in shared
        if rarity.titles.get(t, 0) <= 2 and (t in written or rarity.sections.get(t, 0) <= 2)
    }


def select_evidence(
    question: str,
    query: Sequence[float],
    hits: Sequence[Hit],
    unit_vectors: Mapping[str, Sequence[tuple[int, Sequence[float]]]],
    rarity: Rarity,
    max_sections: int = 5,
    naming: str | None = None,
    parts: Sequence[tuple[str, Sequence[float]]] = (),
    shown: str = "",
) -> list[Evidence]:
    """The sections and units an answer is built from, best section first.

    A further section is cited only when it holds what the ones before lack: a thing the question names in its
    title. (Citing a runner-up on similarity alone cost citation precision on the dev set: sentence cosines of
    neighbouring sections differ by less than their noise.)

    `naming` is the text whose names may pull in more sections (the question as typed, by default); `parts` are
    the sub-questions of a question that asks several things, with their vectors. `shown` is what the chat has
    already shown ("Tell me more" brings what it has not): units quoted in it are left out.
    """
    named_text = naming or question
    # Near the top, or named by the question anywhere in the hits ("compare EC2, ECS, EKS and Lambda").
    candidates = [
        h
        for rank, h in enumerate(hits)
        if h.score >= 0.5 * hits[0].score
        and (rank < CANDIDATE_SECTIONS or named_terms(named_text, h.section, rarity))
    ]
    asks = [(question, query), *(parts or ())]
    evidence: list[Evidence] = []
    for hit in candidates:
        vectors = unit_vectors.get(hit.section.key, ())
        if shown:
            fresh = {u.ordinal for u in section_units(hit.section) if _sentence(u.text) not in shown}
            vectors = [(ordinal, vector) for ordinal, vector in vectors if ordinal in fresh]
        picked: dict[int, Unit] = {}
        best = 0.0
        for text, vector in asks:
            scored = score_units(text, vector, hit.section, vectors)
            units, score = pick_units(scored, text)
            units = drop_dangling(units, [u for u, _ in scored])
            picked.update((u.ordinal, u) for u in units)
            best = max(best, score)
        if picked:
            evidence.append(Evidence(hit.section, tuple(picked[o] for o in sorted(picked)), best))
    if not evidence:
        return []
    primary, rest = evidence[0], evidence[1:]
    # The first section covers what it says and what its headings say: "Postgres" in the question names nothing
    # new when the first section sits under the "Postgres indexes" heading.
    covered = set(tokenize(" ".join(primary.section.heading_path) + " " + primary.section.text))
    chosen = [primary]
    for ev in rest:
        # Named: the question names this section's subject and the sections chosen so far never mention it.
        new_name = bool(named_terms(named_text, ev.section, rarity) - covered)
        if new_name and len(chosen) < max_sections:
            chosen.append(ev)
            covered |= set(tokenize(" ".join(ev.section.heading_path) + " " + ev.section.text))
    return chosen


def compose(evidence: Sequence[Evidence], numbers: Mapping[str, int]) -> str:
    """The answer text: each section's title in bold, then its passages, each unit followed by its citation.

    `[Evidence(SQS, ("Managed message queue service.",))]` -> `**SQS** — Managed message queue service. [1]`;
    a list keeps its shape: `**Cache-aside**\nThe application does the following: [1]\n- Look in cache. [1]`
    """
    parts = []
    for ev in evidence:
        n = numbers[ev.section.key]
        note = " *(from a commented-out part of your notes)*" if all(u.hidden for u in ev.units) else ""
        title = f"**{ev.section.title.rstrip(' :')}**{note}"
        if len(ev.units) <= 2 and not any(_listed(u) for u in ev.units):
            parts.append(f"{title} — " + " ".join(f"{_sentence(u.text)} [{n}]" for u in ev.units))
            continue
        lines = [title]
        for unit, previous in zip(ev.units, (None, *ev.units[:-1]), strict=True):
            text = f"{_sentence(unit.text)} [{n}]"
            if _listed(unit):
                lines.append(f"- {text}")
            elif previous is not None and previous.passage == unit.passage and not _listed(previous):
                lines[-1] += f" {text}"  # the next sentence of the same paragraph
            else:
                lines.append(text)
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _listed(unit: Unit) -> bool:
    return unit.kind in ("item", "row")


def _sentence(text: str) -> str:
    """A unit as a sentence: `"Fast"` -> `"Fast."`; a lead-in ends in a colon: `"do the following-"` ->
    `"do the following:"`."""
    text = text.strip()
    if text.endswith(("-", ":-", ":")) and not text.endswith("--"):
        return text.rstrip(" :-") + ":"
    return text if text.endswith((".", "!", "?")) else text + "."
