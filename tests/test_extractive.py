"""The extractive answerer's pure parts: worked examples, no model."""

from __future__ import annotations

import pytest

from assistant.extractive import (
    SECTION_UNITS,
    Evidence,
    compose,
    drop_dangling,
    pick_units,
    quotable,
    split_question,
)
from corpus.types import Section, Unit
from index.keyword import expand, facets


def unit(ordinal: int, text: str, context: str = "", line: int = 0, passage: int | None = None, kind: str = "") -> Unit:
    """A unit of its own passage unless told otherwise."""
    return Unit(
        "n.md#x", ordinal, text, line or ordinal + 2, line or ordinal + 2, context=context,
        passage=ordinal if passage is None else passage, kind=kind or ("item" if context else "paragraph"),
    )


def test_pick_units_returns_the_whole_list_a_question_asks_for():
    """ "Drawbacks" asks for the list under "Cons:", all of it, not just its best item."""
    units = [
        unit(0, "fast to write", "Pros"),
        unit(1, "slower at run time", "Cons"),
        unit(2, "harder to debug", "Cons"),
    ]
    picked, best = pick_units([(units[0], 0.5), (units[1], 0.9), (units[2], 0.4)], "What are the drawbacks?")
    assert [u.text for u in picked] == ["slower at run time", "harder to debug"]
    assert best == 0.9


def test_pick_units_answers_a_question_the_notes_ask_with_the_lines_below_it():
    units = [
        unit(0, "Interview question: how do I X?"),
        unit(1, "Do A"),
        unit(2, "Then B"),
        unit(3, "Far away", line=40),
    ]
    picked, _ = pick_units([(units[0], 0.8), (units[1], 0.5), (units[2], 0.4), (units[3], 0.79)], "how do I X")
    assert [u.text for u in picked] == ["Do A", "Then B"]


def test_pick_units_keeps_units_near_the_best_and_drops_the_rest():
    """In a long section, only what scores near the best unit is quoted."""
    filler = [unit(n, f"far off topic {n}") for n in range(2, 2 + SECTION_UNITS)]
    units = [unit(0, "best one here"), unit(1, "close second one"), *filler]
    picked, _ = pick_units([(units[0], 0.9), (units[1], 0.8), *((u, 0.3) for u in filler)], "q")
    assert [u.text for u in picked] == ["best one here", "close second one"]


def test_a_short_section_is_quoted_whole():
    """A section of a few sentences is one thought: the sentence two away from the best one is part of it."""
    units = [unit(0, "The app reads the cache"), unit(1, "Subsequent reads are fast"), unit(2, "Also lazy loading")]
    picked, _ = pick_units([(units[0], 0.9), (units[1], 0.3), (units[2], 0.2)], "q")
    assert [u.text for u in picked] == [u.text for u in units]


def test_a_list_travels_with_its_lead_in_and_all_its_items():
    """ "The application does the following:" is quoted with its list, in a section too long to quote whole."""
    lead = unit(20, "The application does the following:", passage=99)
    steps = [unit(21 + n, f"step {n}", context="The application does the following", passage=99) for n in range(4)]
    filler = [unit(n, f"other text {n}") for n in range(SECTION_UNITS)]
    scores = [0.5, 0.4, 0.9, 0.3, 0.1]
    scored = [(u, 0.2) for u in filler] + list(zip([lead, *steps], scores, strict=True))
    picked, _ = pick_units(scored, "what does the application do")
    assert [u.text for u in picked] == [lead.text, *(u.text for u in steps)]


def test_compose_keeps_a_list_as_a_list():
    section = Section("n.md", "x", "Cache-aside", 3, ("Cache-aside",), 1, 9, (), "")
    lead = unit(0, "The application does the following:", passage=0)
    items = [unit(1, "Look in the cache", context="The application does", passage=0),
             unit(2, "Load from the database", context="The application does", passage=0)]
    text = compose([Evidence(section, (lead, *items), 1.0)], {"n.md#x": 1})
    assert text == (
        "**Cache-aside**\nThe application does the following: [1]\n- Look in the cache. [1]\n"
        "- Load from the database. [1]"
    )


@pytest.mark.parametrize(
    ("question", "parts"),
    [
        ("What is etcd and why does Kubernetes use it?", ["What is etcd", "why does Kubernetes use it?"]),
        ("How do SQS and SNS differ?", ["How do SQS and SNS differ?"]),
    ],
)
def test_split_question(question, parts):
    assert split_question(question) == parts


def test_facets_and_query_expansion():
    assert facets("What are the downsides?") == {"cons"}
    assert facets("Any benefits?") == {"pros"}
    assert facets("What is SQS?") == set()
    assert {"con", "disadvantage"} <= set(expand("drawbacks of indexes"))


@pytest.mark.parametrize(("text", "ok"), [("https://youtu.be/x", False), ("DynamoDB", False), ("It scales.", True)])
def test_quotable(text, ok):
    assert quotable(text) is ok


def test_compose_puts_the_title_first_and_a_citation_after_each_claim():
    section = Section("n.md", "sqs", "SQS", 2, ("N", "SQS"), 1, 2, (), "")
    text = compose([Evidence(section, (unit(0, "Managed message queue"),), 1.0)], {"n.md#sqs": 1})
    assert text == "**SQS** — Managed message queue. [1]"


def test_text_under_a_commented_out_heading_is_not_quoted_as_the_sections_own():
    """ "S3" with `<!-- ### Glacier ... ### Storage Gateway ... -->` under it: a question about S3 quotes S3's
    own text, not Glacier's or Storage Gateway's, although the section is short enough to quote whole."""
    from corpus.chunking import section_units
    from corpus.parse import parse_note
    from corpus.types import Note

    note = (
        "# AWS\n## S3\nObject storage for files.\n\n<!-- ### Glacier\nLow-cost archive storage.\n"
        "### Storage Gateway\nA VM on premises.\nIt backs data up to AWS. -->\n"
    )
    s3 = next(s for s in parse_note(Note("aws.md", note)) if s.title == "S3")
    units = section_units(s3)
    assert [u.heading for u in units] == ["", "Glacier", "Storage Gateway", "Storage Gateway"]
    picked, _ = pick_units([(units[0], 0.9), *((u, 0.2) for u in units[1:])], "What is S3?")
    assert [u.text for u in picked] == ["Object storage for files."]
    glacier, _ = pick_units([(units[1], 0.9), *((u, 0.2) for u in units[2:])], "What is Glacier?")
    assert [u.text for u in glacier] == ["Glacier: Low-cost archive storage."]


def test_a_lead_in_without_its_list_is_dropped():
    """ "Example 1:" or "Regions: Pros" alone says nothing; kept only when it is all there is."""
    lead = unit(0, "Example 1:", passage=0)
    item = unit(1, "run it twice", context="Example 1", passage=0)
    other = unit(2, "Something that answers.", passage=1)
    assert drop_dangling([lead, other], [lead, item, other]) == (other,)
    assert drop_dangling([lead, item], [lead, item, other]) == (lead, item)
    assert drop_dangling([lead], [lead, item, other]) == (lead,)
