"""Sections -> chunks that fit MiniLM's window, and units (sentences, items) with exact line numbers."""

from __future__ import annotations

import re

import pytest

from corpus.chunking import CHUNK_TOKENS, estimate_tokens, section_chunks, section_units, split_sentences
from corpus.parse import parse_note
from corpus.types import Note, Section
from tests.conftest import AWS_NOTES

AWS_TEXT = AWS_NOTES.read_text(encoding="utf-8")
AWS_LINES = AWS_TEXT.split("\n")
AWS_SECTIONS = {s.anchor: s for s in parse_note(Note("aws.md", AWS_TEXT))}
WORD = re.compile(r"\bw\d{4}\b")


def file_line(text: str) -> int:
    """1-based line of the only line of aws.md containing `text`."""
    found = [n for n, line in enumerate(AWS_LINES, start=1) if text in line]
    assert len(found) == 1, f"{text!r} is on lines {found} of aws.md"
    return found[0]


def test_worked_examples():
    """The examples the docstrings give."""
    assert estimate_tokens("Hello, world!") == 4
    assert split_sentences("It is fast. It scales.") == ["It is fast.", "It scales."]
    # A full stop inside a name or before a lower-case word is not a sentence end.
    assert split_sentences("Use www.example.com daily. e.g. this one") == ["Use www.example.com daily. e.g. this one"]


@pytest.mark.parametrize("anchor", sorted(AWS_SECTIONS))
def test_every_aws_chunk_fits_the_model(anchor):
    """A chunk over the budget would be truncated by the model and its tail never found."""
    chunks = section_chunks(AWS_SECTIONS[anchor])
    assert chunks
    for chunk in chunks:
        assert estimate_tokens(chunk.embed_text) <= CHUNK_TOKENS, chunk.embed_text


@pytest.mark.parametrize("anchor", sorted(a for a, s in AWS_SECTIONS.items() if s.indexable))
def test_chunks_start_with_heading_path_and_keep_all_text(anchor):
    """The heading path goes in front of every chunk (so "Fully managed messaging service." says SNS)."""
    section = AWS_SECTIONS[anchor]
    chunks = section_chunks(section)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk.section_key == f"aws.md#{anchor}"
        assert chunk.embed_text == f"{section.breadcrumb}\n{chunk.text}"
    # Packing and splitting only regroup words: none is lost or invented.
    assert " ".join(c.text for c in chunks).split() == section.text.split()


def _words(n: int) -> list[str]:
    return [f"w{i:04d}" for i in range(n)]


def _sentences(words: list[str], size: int) -> list[str]:
    return [" ".join(words[i : i + size]).capitalize() + "." for i in range(0, len(words), size)]


def _layout(name: str, words: list[str]) -> str:
    if name == "one-paragraph-of-sentences":
        return " ".join(_sentences(words, 12))
    if name == "one-line-no-sentence-breaks":
        return " ".join(words)
    if name == "many-paragraphs":
        return "\n\n".join(" ".join(words[i : i + 50]) for i in range(0, len(words), 50))
    if name == "list-items":
        return "\n".join("- " + " ".join(words[i : i + 25]) for i in range(0, len(words), 25))
    if name == "sentences-on-lines":
        return "\n".join(_sentences(words, 15))
    raise AssertionError(name)


@pytest.mark.parametrize(
    "layout",
    [
        "one-paragraph-of-sentences",
        "one-line-no-sentence-breaks",
        "many-paragraphs",
        "list-items",
        "sentences-on-lines",
    ],
)
def test_long_section_is_split_within_budget_keeping_every_word(layout):
    """A 5,000-word section becomes many chunks, each within budget, every word kept, in order."""
    words = _words(5000)
    [section] = parse_note(Note("long.md", f"# Long notes\n{_layout(layout, words)}\n"))
    chunks = section_chunks(section)
    # 5,000 words cannot fit in fewer than 5000 / CHUNK_TOKENS chunks.
    assert len(chunks) >= 5000 // CHUNK_TOKENS
    for chunk in chunks:
        assert estimate_tokens(chunk.embed_text) <= CHUNK_TOKENS
        assert chunk.embed_text.startswith("Long notes\n")
    found = [w for chunk in chunks for w in WORD.findall(chunk.text.lower())]
    assert found == words


def test_line_of_links_is_split_within_budget():
    """A pasted line of URLs (no sentence breaks, punctuation-dense words) still fits the model."""
    links = " ".join(f"https://docs.aws.amazon.com/vpc/latest/page-{i}.html" for i in range(300))
    [section] = parse_note(Note("links.md", f"# Links\n{links}\n"))
    chunks = section_chunks(section)
    assert max(estimate_tokens(c.embed_text) for c in chunks) <= CHUNK_TOKENS


@pytest.mark.parametrize(
    "text",
    [
        "Associate the Lambda function with a specific VPC during creation or configuration",
        "Specify the subnets within the chosen VPC where the Lambda function should run",
        "Define a security group for the Lambda function to control inbound and outbound traffic",
        "Ensure the Lambda function's execution role has the necessary permissions",
    ],
)
def test_privatelink_interview_steps_are_separate_units_on_their_lines(text):
    """Each step of the hard-broken interview answer is its own quotable unit, cited to its own line."""
    units = section_units(AWS_SECTIONS["aws-privatelink"])
    matching = [u for u in units if text in u.text]
    assert len(matching) == 1
    unit = matching[0]
    # Its own unit: it does not run into the step before or after.
    assert unit.text.startswith(text.split()[0])
    assert unit.text.count("Lambda function") == 1
    line = file_line(text)
    assert (unit.line_start, unit.line_end) == (line, line)
    assert unit.section_key == "aws.md#aws-privatelink"
    assert not unit.hidden


def test_units_are_ordered_and_within_the_section():
    """Units come in reading order with ordinals 0..n-1 and lines inside their section."""
    for section in AWS_SECTIONS.values():
        units = section_units(section)
        assert [u.ordinal for u in units] == list(range(len(units)))
        starts = [u.line_start for u in units]
        assert starts == sorted(starts), section.anchor
        for unit in units:
            # line_end is checked in test_unit_lines_stay_inside_section.
            assert section.line_start <= unit.line_start <= section.line_end, unit
            assert unit.line_start <= unit.line_end, unit


def test_unit_lines_stay_inside_section():
    """A unit is cited to lines of its own section, never to blank lines past the section's end."""
    for section in AWS_SECTIONS.values():
        for unit in section_units(section):
            assert unit.line_end <= section.line_end, unit


def test_list_item_after_label_keeps_label_as_context():
    """An item under "Key features of AWS PrivateLink:" carries that label, and starts at its number line."""
    units = section_units(AWS_SECTIONS["aws-privatelink"])
    [regional] = [u for u in units if u.text.startswith("Regional Service:")]
    assert regional.context == "Key features of AWS PrivateLink"
    assert regional.line_start == file_line("1. Regional Service:")
    # Its end line overruns onto the blank line after it: see test_unit_lines_stay_inside_section.
    assert regional.line_end >= file_line("AWS PrivateLink is a regional service")


def test_heading_inside_comment_joins_the_text_it_heads():
    """The commented `### Glacier` is joined to its sentence: the unit says what it is about, and is hidden."""
    units = section_units(AWS_SECTIONS["s3-simple-storage-service"])
    [glacier] = [u for u in units if "low-cost archival" in u.text]
    assert glacier.text.startswith("Glacier: ")
    assert glacier.hidden
    assert glacier.line_start == file_line("### Glacier")
    assert glacier.line_end == file_line("It is an extremely low-cost archival service")
    visible = [u for u in units if "Storage service of AWS" in u.text]
    assert visible
    assert not visible[0].hidden


def test_short_code_is_quoted_as_code_and_long_code_is_not():
    """Code is searchable (chunked); a short block can be quoted, as code, a long one never."""
    section: Section = parse_note(Note("c.md", "# Cmd\n```\naws s3 ls\n```\n"))[0]
    assert [c.text for c in section_chunks(section)] == ["aws s3 ls"]
    assert [u.text for u in section_units(section)] == ["`aws s3 ls`"]
    long_code = "\n".join(f"line {n} = {n}" for n in range(10))
    section = parse_note(Note("c.md", f"# Cmd\n```\n{long_code}\n```\n"))[0]
    assert section_units(section) == []


def test_label_and_its_one_line_code_are_one_unit():
    """"On prod:" followed by a code block reads as one statement."""
    note = "# Ix\nOn prod:\n\n```sql\nCREATE INDEX CONCURRENTLY ix ON t (c);\n```\n"
    [unit] = section_units(parse_note(Note("c.md", note))[0])
    assert unit.text == "On prod: `CREATE INDEX CONCURRENTLY ix ON t (c);`"
    assert (unit.line_start, unit.line_end) == (2, 6)


def test_hard_wrapped_prose_is_one_sentence_and_lines_per_fact_stay_apart():
    """A line continuing in lower case joins the previous one; a new capitalised line is its own statement."""
    note = "# H\nRetry only idempotent calls so the client can retry after\na network error.\nPOST is not idempotent\n"
    texts = [u.text for u in section_units(parse_note(Note("c.md", note))[0])]
    assert texts == [
        "Retry only idempotent calls so the client can retry after a network error.",
        "POST is not idempotent",
    ]


def test_table_rows_carry_their_header():
    """A row quoted alone must say what its cells mean, so it is read with the header; the header is no row."""
    note = "# HTTP\n| method | idempotent |\n|---|---|\n| GET | yes |\n| POST | no |\n"
    texts = [u.text for u in section_units(parse_note(Note("h.md", note))[0])]
    assert texts == ["method: GET; idempotent: yes", "method: POST; idempotent: no"]


def test_labelled_paragraphs_after_a_lead_in_are_one_list_with_it():
    """Notes that write a list as one "Name: what it does" paragraph each (no bullets) keep it with its lead-in;
    the run ends where a label stands alone on its line."""
    text = (
        "Some types of these controllers are:\n\n"
        "Node controller: Responsible for noticing when nodes go down.\n\n"
        "Job controller: Watches for Job objects.\n\n"
        "cloud-controller-manager:-\nA control plane component.\n"
    )
    units = section_units(parse_note(Note("k.md", "# K\n\n" + text))[0])
    by_text = {u.text.split(":")[0]: u for u in units}
    lead, node = by_text["Some types of these controllers are"], by_text["Node controller"]
    job = by_text["Job controller"]
    assert lead.passage == node.passage == job.passage
    assert (node.kind, job.kind) == ("item", "item")
    assert by_text["cloud-controller-manager"].passage != lead.passage


def test_a_labelled_paragraph_without_a_lead_in_stays_a_paragraph():
    units = section_units(parse_note(Note("l.md", "# L\n\nLambda runs code.\n\nNote: it has a timeout.\n"))[0])
    assert [u.kind for u in units] == ["paragraph", "paragraph"]
    assert units[0].passage != units[1].passage


@pytest.mark.parametrize(
    ("line", "sentences"),
    [
        # A cookbook's and a paper reader's notes, not the notes the splitter was written on.
        ("Knead it (see p. 12) until smooth. Rest an hour.", ["Knead it (see p. 12) until smooth.", "Rest an hour."]),
        ("Results [tab. 3] hold. 4 runs agree.", ["Results [tab. 3] hold.", "4 runs agree."]),
        ("Oops :( It failed. Retry later.", ["Oops :( It failed.", "Retry later."]),
    ],
)
def test_a_sentence_does_not_end_inside_brackets_it_opened(line, sentences):
    assert split_sentences(line) == sentences
