"""Markdown -> sections: the traps of the real AWS notes, and small synthetic notes for the rest."""

from __future__ import annotations

import json

import pytest

from corpus.anchors import AnchorCounter, slugify
from corpus.parse import parse_note
from corpus.redact import MASK
from corpus.types import Note, Section
from tests.conftest import AWS_NOTES, SHARED_EVAL

AWS_TEXT = AWS_NOTES.read_text(encoding="utf-8")
AWS_LINES = AWS_TEXT.split("\n")


@pytest.fixture(scope="module")
def aws() -> dict[str, Section]:
    """The parsed AWS notes by anchor."""
    return {s.anchor: s for s in parse_note(Note("aws.md", AWS_TEXT))}


def file_line(text: str, *, exact: bool = False) -> int:
    """1-based line of the only line of aws.md equal to (or containing) `text`: expectations come from the file."""
    found = [n for n, line in enumerate(AWS_LINES, start=1) if (line == text if exact else text in line)]
    assert len(found) == 1, f"{text!r} is on lines {found} of aws.md"
    return found[0]


def test_anchors_are_unique_in_the_aws_notes():
    """No two sections of one note share an anchor, so every citation names one place."""
    anchors = [s.anchor for s in parse_note(Note("aws.md", AWS_TEXT))]
    assert len(anchors) == len(set(anchors))


@pytest.mark.parametrize("title", ["EFS (Elastic File System)", "Glacier", "Storage Gateway"])
def test_heading_inside_html_comment_is_not_a_section(aws, title):
    """`### Glacier` inside `<!-- ... -->` is commented out, so it must not become a citable section."""
    assert f"### {title}" in AWS_TEXT  # the trap is really in the file
    assert title not in {s.title for s in aws.values()}
    assert slugify(title) not in aws


def test_kube_apiserver_in_comment_is_not_a_heading(aws):
    """The commented Kubernetes component list yields no heading anywhere."""
    assert not [s for s in aws.values() if "kube-apiserver" in s.title]
    headings = [b for s in aws.values() for b in s.blocks if b.kind == "heading"]
    assert not [b for b in headings if "kube-apiserver" in b.text]


def test_commented_out_text_stays_in_s3_section_marked_hidden(aws):
    """The comment under S3 belongs to S3: its text is kept (searchable) but flagged hidden."""
    s3 = aws["s3-simple-storage-service"]
    glacier = [b for b in s3.blocks if "low-cost archival" in b.text]
    assert len(glacier) == 1
    assert glacier[0].hidden
    assert glacier[0].line_start == file_line("It is an extremely low-cost archival service")
    # The visible first paragraph is not hidden: hidden is per block, not per section.
    assert not s3.blocks[0].hidden
    assert "Storage service of AWS" in s3.blocks[0].text
    assert s3.hidden
    # The comment does not end the section early nor swallow the next one.
    assert s3.line_end == file_line("backed up to AWS providing more durability")
    assert "Glacier" in s3.markdown
    assert "<!--" not in s3.markdown
    assert "-->" not in s3.markdown


def test_kubernetes_section_holds_hidden_component_text(aws):
    """`what-is-kubernetes-` keeps the commented component list as hidden blocks with file line numbers."""
    section = aws["what-is-kubernetes-"]
    assert section.hidden
    scheduler = [b for b in section.blocks if "kube-scheduler" in b.text]
    assert scheduler
    assert all(b.hidden for b in scheduler)
    assert scheduler[0].line_start == file_line("kube-scheduler:-", exact=True)
    # The visible opening paragraph stays visible.
    assert not section.blocks[0].hidden
    # The last section runs to the comment's closing line, the last line of the file with text.
    assert section.line_end == file_line(" -->", exact=True)


def test_table_of_contents_is_toc_and_not_indexable(aws):
    """A section of nothing but anchor links would match every query; it is kept but not indexed."""
    toc = aws["table-of-contents"]
    assert toc.kind == "toc"
    assert not toc.indexable


@pytest.mark.parametrize("anchor", ["ec2-vs-ecs-vs-eks-vs-lambda", "aws", "databases", "container-services"])
def test_heading_without_text_is_empty(aws, anchor):
    """A heading followed only by `<br/>`, `---` or subheadings has no text of its own."""
    assert aws[anchor].kind == "empty"
    assert not aws[anchor].indexable
    assert aws[anchor].blocks == ()


@pytest.mark.parametrize(
    ("heading_line", "anchor", "title"),
    [
        ("### CloudWatch ", "cloudwatch", "CloudWatch"),
        ("### Rekognition:", "rekognition", "Rekognition:"),
        ("## What is kubernetes ? ", "what-is-kubernetes-", "What is kubernetes ?"),
        ("### Key features of an Availability Zone :", "key-features-of-an-availability-zone-",
         "Key features of an Availability Zone :"),
        ("#### Between two regions   ", "between-two-regions", "Between two regions"),
        ("### Elastic Container Registry (ECR) ", "elastic-container-registry-ecr", "Elastic Container Registry (ECR)"),
        ("## Networking & Content Delivery", "networking--content-delivery", "Networking & Content Delivery"),
    ],
)
def test_github_anchor_of_awkward_headings(aws, heading_line, anchor, title):
    """Trailing spaces are trimmed, punctuation dropped, inner spaces kept as hyphens, as GitHub does."""
    line = file_line(heading_line, exact=True)
    section = aws[anchor]
    assert section.title == title
    assert section.line_start == line


def test_duplicate_headings_get_numbered_anchors():
    """Repeated headings in one file get `-1`, `-2` in file order, whatever their level."""
    text = "# Notes\n## Setup\none\n## Setup\ntwo\n### Setup\nthree\n## Other\nfour\n"
    sections = parse_note(Note("dup.md", text))
    assert [s.anchor for s in sections] == ["notes", "setup", "setup-1", "setup-2", "other"]
    assert [s.text for s in sections[1:4]] == ["one", "two", "three"]


def test_numbered_anchor_does_not_collide_with_literal_heading():
    """A heading whose own slug equals an earlier generated `-1` anchor must still get a unique anchor."""
    text = "# Foo\na\n# Foo\nb\n# Foo-1\nc\n"
    anchors = [s.anchor for s in parse_note(Note("n.md", text))]
    assert len(set(anchors)) == 3, anchors
    assert anchors == ["foo", "foo-1", "foo-1-1"]


def test_anchor_keeps_double_inner_space():
    """Each inner space becomes a hyphen, so two spaces give two hyphens, as `slugify` itself does."""
    assert slugify("Foo  Bar") == "foo--bar"  # the rule, applied to the raw heading text
    [section] = parse_note(Note("n.md", "## Foo  Bar\ntext\n"))
    assert section.anchor == "foo--bar"


@pytest.mark.parametrize(
    "fence",
    [
        "```bash\n# install it\npip install x\n## not a heading either\n```",
        "~~~\n# install it\npip install x\n## not a heading either\n~~~",
        "    # install it\n    pip install x\n    ## not a heading either",
    ],
    ids=["backticks", "tildes", "indented"],
)
def test_hash_lines_inside_code_are_not_headings(fence):
    """`# comment` lines in a shell snippet stay code, inside the section they sit in."""
    text = f"# Tools\n## Pip\nRun this:\n\n{fence}\n\n## Next\nafter\n"
    sections = parse_note(Note("code.md", text))
    assert [s.anchor for s in sections] == ["tools", "pip", "next"]
    code = [b for b in sections[1].blocks if b.kind == "code"]
    assert len(code) == 1
    assert "# install it" in code[0].text
    assert code[0].line_start == 5


def test_heading_path_runs_from_top_heading(aws):
    """The path names every enclosing heading, so a citation reads AWS > Databases > Elasticache."""
    assert aws["elasticache"].heading_path == ("AWS", "Databases", "Elasticache")
    assert aws["elasticache"].breadcrumb == "AWS > Databases > Elasticache"
    assert aws["aws-privatelink"].heading_path == (
        "AWS", "Networking & Content Delivery", "VPC (Virtual Private Cloud)", "AWS PrivateLink"
    )
    # A level-2 heading after level-4 ones pops back to the top.
    assert aws["elastic-block-store-ebs"].heading_path == ("AWS", "Elastic Block Store (EBS)")


def test_elasticache_line_range(aws):
    """Lines are 1-based and inclusive: the heading line through the line before the next heading."""
    section = aws["elasticache"]
    assert section.line_start == file_line("### Elasticache", exact=True)
    assert section.line_end == file_line("### Timestream", exact=True) - 1
    assert section.markdown.split("\n")[0] == "### Elasticache"
    assert section.markdown.split("\n")[-1] == AWS_LINES[section.line_end - 1]


def test_every_section_starts_on_its_heading_line(aws):
    """Each section's first line is its own heading, and sections do not overlap."""
    ordered = sorted(aws.values(), key=lambda s: s.line_start)
    for section in ordered:
        line = AWS_LINES[section.line_start - 1]
        assert line.startswith("#" * section.level + " "), (section.anchor, line)
        assert line.lstrip("#").strip() == section.title
    for before, after in zip(ordered, ordered[1:], strict=False):
        assert before.line_end < after.line_start


def test_links_to_other_notes_are_kept(aws):
    """Links to other notes are kept (for following them); anchor and web links are not."""
    assert aws["dynamodb"].links == ("./DynamoDB.md",)
    assert "../Auth/README.md#interview-questions-related-to-jwt" in aws["aws-privatelink"].links
    # Route53 links to `#between-two-regions`, an anchor in the same note: not a note link.
    assert aws["amazon-route53"].links == ()
    # The reference link to a blog is a web link.
    assert aws["amazon-web-services"].links == ()


def test_gold_anchors_of_shared_eval_exist(aws):
    """Every gold section the dev questions name is one the parser produces."""
    if not SHARED_EVAL.exists():
        pytest.skip(f"{SHARED_EVAL} is not present")
    gold = set()
    for line in SHARED_EVAL.read_text(encoding="utf-8").splitlines():
        if line.strip():
            gold.update(json.loads(line)["gold"])
    assert gold, "the eval file names no gold sections"
    anchors = {g.rsplit("#", 1)[-1] for g in gold}
    paths = {g.rsplit("#", 1)[0] for g in gold if "#" in g}
    assert paths <= {"aws.md"}
    assert anchors - set(aws) == set()


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        # The two examples ../shared/eval/README.md gives.
        ("VPC (Virtual Private Cloud)", "vpc-virtual-private-cloud"),
        ("What is kubernetes ? ", "what-is-kubernetes-"),
        # The README's rules one by one: trim, lower-case, drop punctuation, keep `-` and `_`, space -> `-`.
        ("  Trimmed  ", "trimmed"),
        ("MixedCase", "mixedcase"),
        ("Q&A: costs, limits!", "qa-costs-limits"),
        ("snake_case and kebab-case", "snake_case-and-kebab-case"),
        ("Route 53", "route-53"),
        ("Größe über", "größe-über"),  # letters beyond ASCII are letters, as on GitHub
    ],
)
def test_slugify_examples(heading, anchor):
    """`slugify` follows GitHub's rule as the eval README states it."""
    assert slugify(heading) == anchor


def test_anchor_counter_counts_per_base():
    """Counting is per anchor: an unrelated heading in between does not disturb the numbering."""
    counter = AnchorCounter()
    assert [counter(h) for h in ["A", "B", "A", "B", "A"]] == ["a", "b", "a-1", "b-1", "a-2"]


SECRET_KEY_ID = "AKIAIOSFODNN7EXAMPLE"


@pytest.mark.parametrize(
    "body",
    [
        f"My key id is {SECRET_KEY_ID} and password: hunter2 for the dev box.",
        f"- key {SECRET_KEY_ID}\n- password: hunter2",
        f"```ini\naws_access_key_id = {SECRET_KEY_ID}\npassword: hunter2\n```",
        f"<!-- old creds\n{SECRET_KEY_ID}\npassword: hunter2\n-->",
        f"| key | value |\n|---|---|\n| id | {SECRET_KEY_ID} |\n| login | password: hunter2 |",
    ],
    ids=["paragraph", "list", "code", "comment", "table"],
)
def test_secrets_are_masked_in_text_and_markdown(body):
    """A pasted AWS key id or password never reaches the index or the source shown, wherever it sits."""
    sections = parse_note(Note("creds.md", f"# Creds\n{body}\n\n# After\nplain\n"))
    creds = sections[0]
    for shown in (creds.text, creds.markdown, *(b.text for b in creds.blocks)):
        assert SECRET_KEY_ID not in shown
        assert "hunter2" not in shown
    assert MASK in creds.text
    assert MASK in creds.markdown
    assert "password: [redacted]" in creds.markdown
    assert sections[1].text == "plain"


def test_inline_comment_is_hidden_not_shown_with_markers():
    """Text commented out inside a paragraph is not shown as visible text with `<!--` markers."""
    [section] = parse_note(Note("n.md", "# T\nsee <!-- old idea --> here\n"))
    assert all("<!--" not in b.text for b in section.blocks)
    assert all(b.hidden for b in section.blocks if "old idea" in b.text)


def test_loose_list_item_lines_end_on_its_text():
    """An item's lines are the lines of its text, as an editor highlights them, not the blank line after."""
    [section] = parse_note(Note("n.md", "# T\n- a\n\n- b\n\n- c\n\ntext\n"))
    assert [(b.text, b.line_start, b.line_end) for b in section.blocks] == [
        ("a", 2, 2), ("b", 4, 4), ("c", 6, 6), ("text", 8, 8)
    ]


def test_yaml_front_matter_is_not_a_heading_and_lines_still_match():
    """Obsidian-style front matter: its closing `---` must not make the YAML above it a setext heading."""
    note = Note("o.md", "---\ntitle: My note\ntags: [aws]\n---\n# AWS\nSome text.\n")
    sections = parse_note(note)
    assert [(s.anchor, s.line_start, s.text) for s in sections] == [("aws", 5, "Some text.")]


def test_a_thematic_break_first_without_a_closing_one_is_kept():
    sections = parse_note(Note("o.md", "---\n# AWS\nSome text.\n"))
    assert [s.anchor for s in sections] == ["aws"]


def test_an_image_beside_prose_adds_no_words_and_one_standing_alone_keeps_its_alt_text():
    """Notes of a kind the parser was not written on (a recipe blog's): the photo inside a paragraph is not a
    sentence of it; a photo on its own line is described by its alt text, kept so the caption can be recognised."""
    text = (
        "# Bread\n\nKnead for ten minutes. ![crumb shot](https://blog.invalid/crumb.jpg)\n\n"
        "![Finished loaf on a rack](loaf.jpg)\n"
    )
    [bread] = parse_note(Note("bread.md", text))
    assert [b.text for b in bread.blocks] == ["Knead for ten minutes.", "Finished loaf on a rack"]
    assert "crumb" not in bread.text
