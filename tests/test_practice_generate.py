"""Questions from the notes: every content section asks something, nothing comes from navigation."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from assistant.app import read_sections
from corpus.chunking import section_units
from corpus.parse import parse_note
from corpus.types import Note
from practice.generate import BLANK, in_topic, questions_for, section_questions, usable

from .conftest import BUNDLED_NOTES, ROOT

SDP_NOTES = ROOT.parent / "shared" / "notes-sdp"


def _sections(folder: Path):
    return read_sections(folder)[0]


def _check_corpus(sections) -> Counter:
    kinds: Counter = Counter()
    for s in sections:
        questions = section_questions(s)
        if s.kind != "content":
            assert questions == [], s.key  # never from a table of contents, a link list or an empty section
            continue
        if any(usable(u) for u in section_units(s)):
            assert questions, f"{s.key} has text but no question"
        texts = {u.text for u in section_units(s)}
        for q in questions:
            kinds[q.kind] += 1
            assert 1 <= len(q.key_points) <= 5, q
            assert q.section_key == s.key
            for p in q.key_points:
                assert p.text in texts, (q.text, p.text)  # quoted from the section, never made up
                assert s.line_start <= p.line_start <= p.line_end <= s.line_end
                assert "http" not in p.text or len(p.text.split()) > 3
    return kinds


def test_aws_notes_every_content_section_asks_something():
    sections = _sections(BUNDLED_NOTES)
    kinds = _check_corpus(sections)
    assert {"definition", "list", "cloze", "comparison"} <= set(kinds)
    # The one content section with no question holds only a link ("Refer - https://www.youtube.com/…").
    silent = [s.key for s in sections if s.kind == "content" and not section_questions(s)]
    assert silent == ["aws.md#aws-services"]


@pytest.mark.skipif(not SDP_NOTES.exists(), reason="../shared/notes-sdp is not beside the checkout")
def test_system_design_notes_cover_content_sections_and_skip_link_lists():
    sections = _sections(SDP_NOTES)
    kinds = _check_corpus(sections)
    assert {"definition", "list", "cloze", "comparison"} <= set(kinds)
    content = [s for s in sections if s.kind == "content"]
    asked = [s for s in content if section_questions(s)]
    # 287 of 289: the other two hold a lone lead-in line ("…discussed in the Database section:") and a table
    # kept as one long code block.
    silent = sorted(s.key for s in content if not section_questions(s))
    assert silent == ["README.md#master-slave-and-master-master", "README.md#powers-of-two-table"]
    assert len(asked) == len(content) - 2
    assert any(s.kind == "links" for s in sections)


def test_definition_list_and_cloze_from_one_section():
    (section,) = [s for s in _sections(BUNDLED_NOTES) if s.key == "aws.md#key-features-of-an-availability-zone-"]
    (q,) = section_questions(section)
    assert q.kind == "list"
    assert q.text == "Name the key features of an Availability Zone."
    assert [p.text.split(":")[0] for p in q.key_points] == [
        "Redundant Infrastructure",
        "Low Latency Connectivity",
        "Fault Isolation",
        "High Availability",
    ]
    (vpc,) = [s for s in _sections(BUNDLED_NOTES) if s.key == "aws.md#vpc-virtual-private-cloud"]
    by_kind = {q.kind: q for q in section_questions(vpc)}
    assert by_kind["definition"].text == "What is VPC (Virtual Private Cloud)?"
    cloze = by_kind["cloze"]
    assert BLANK in cloze.text
    assert "Virtual Private Cloud" not in cloze.text
    assert cloze.term == "Virtual Private Cloud"


NOTE = """# Deploys

## Release steps

To release:

1. Tag the commit with the version
2. Build the image in CI
3. Roll it out to staging, then production

## Monolith or services?

Pros

- One thing to deploy and monitor
- Calls are in-process and fast

Cons

- One bug can take everything down
- Teams wait on each other's releases
"""


def test_steps_and_comparison_from_structure():
    sections = parse_note(Note("deploys.md", NOTE))
    questions = questions_for(sections)
    steps = [q for q in questions if q.kind == "steps"]
    assert [q.text for q in steps] == ["List, in order, the steps for “To release” (Release steps)."]
    assert len(steps[0].key_points) == 3
    (comparison,) = [q for q in questions if q.kind == "comparison"]
    assert "Pros" in comparison.text
    assert "Cons" in comparison.text
    sides = {"One thing to deploy and monitor", "One bug can take everything down"}
    assert {p.text for p in comparison.key_points} >= sides


def test_ids_are_content_derived():
    first = questions_for(parse_note(Note("deploys.md", NOTE)))
    again = questions_for(parse_note(Note("deploys.md", "\n\n" + NOTE)))  # lines moved, text the same
    assert [q.id for q in first] == [q.id for q in again]
    edited = questions_for(parse_note(Note("deploys.md", NOTE.replace("Build the image", "Build the wheel"))))
    assert {q.id for q in first} - {q.id for q in edited}  # the steps question changed its id
    assert len({q.id for q in first} & {q.id for q in edited}) == len(first) - 1


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("", True), ("aws.md", True), ("aws", True), ("databases", True), ("Neptune", True), ("compute", False),
        ("database", True),  # another form of a heading's word
    ],
)
def test_topic_by_file_or_heading(topic, expected):
    (neptune,) = [s for s in _sections(BUNDLED_NOTES) if s.key == "aws.md#neptune"]
    assert in_topic(neptune, topic) is expected


def test_topic_vpc_includes_its_subsections():
    sections = [s for s in _sections(BUNDLED_NOTES) if in_topic(s, "VPC")]
    assert {s.key for s in sections} >= {"aws.md#vpc-virtual-private-cloud", "aws.md#aws-privatelink"}
    assert "aws.md#lambda" not in {s.key for s in sections}
