"""Issue 7: credentials in notes are never shown or stored. Every shape the issue lists is put in every place a
note can hold it (prose, an HTML comment, a code fence, a table with the label in its header, a link target, a
heading) and looked for, case-insensitively, wherever text goes: the parsed fields, the answers and sources of
the real pipeline, the CLI's output, and every byte of every file in the index folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from corpus.chunking import section_chunks, section_units
from corpus.parse import parse_note
from corpus.redact import MASK
from corpus.types import Note, Section
from tests.conftest import LetterEmbeddings


def _token(marker: str, length: int) -> str:
    """A token body of `length` characters that starts with `marker`, the part the tests look for."""
    return (marker + "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP" * 8)[:length]


@dataclass(frozen=True)
class Shape:
    """A credential as written in notes. `secrets` must never be seen; `header`/`cell` put it in a table."""

    name: str
    topic: str
    line: str
    secrets: tuple[str, ...]
    header: str = "Value"
    cell: str = ""

    @property
    def one_line(self) -> bool:
        return "\n" not in self.line

    @property
    def needles(self) -> tuple[str, ...]:
        """What to look for: each run of 5+ letters and digits of each secret (an anchor keeps only those), or a
        short secret whole."""
        found = []
        for secret in self.secrets:
            runs = [run for run in re.findall(r"[^\W_]{5,}", secret)]
            found += runs or [secret]
        return tuple(n.lower() for n in found)


GHP = "ghp_" + _token("Gh7tGithubMarker", 36)
AWS_KEY_ID = "AKIA" + "ZQ7MARKERKEYID29"  # 16 after the prefix
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYAwsMarker1"  # 40, written after the key id without a label
SHAPES = [
    Shape("redis-uri", "redis cache", "redis://:Rq7xRedisMarker@cache.internal:6379/0", ("Rq7xRedisMarker",)),
    Shape(
        "postgres-uri", "orders database", "postgres://app:Pg4kPostgresMarker@db:5432/orders", ("Pg4kPostgresMarker",)
    ),
    Shape(
        "mongodb-srv-uri", "mongo cluster", "mongodb+srv://admin:Mg8zMongoMarker@cluster0.ab1cd.mongodb.net/app",
        ("Mg8zMongoMarker",),
    ),
    Shape(
        "uri-without-scheme", "redis connection",
        "REDIS_CONNECTION_URI=default:Rc5wConnMarker@redis-12345.c1.us-east-1.ec2.cloud.redislabs.com:12345",
        ("Rc5wConnMarker",),
    ),
    Shape(
        "db-password", "database env", "DB_PASSWORD=Db3vEnvMarker", ("Db3vEnvMarker",), "DB_PASSWORD", "Db3vEnvMarker"
    ),
    Shape(
        "postgres-password", "compose database", "POSTGRES_PASSWORD: Pq6nComposeMarker", ("Pq6nComposeMarker",),
        "POSTGRES_PASSWORD", "Pq6nComposeMarker",
    ),
    Shape(
        "mysql-root-password", "mysql container", "MYSQL_ROOT_PASSWORD: My2rRootMarker", ("My2rRootMarker",),
        "MYSQL_ROOT_PASSWORD", "My2rRootMarker",
    ),
    Shape("github-token", "github actions", f"GITHUB_TOKEN={GHP}", (GHP,), "GITHUB_TOKEN", GHP),
    Shape(
        "openai-api-key", "openai client", "OPENAI_API_KEY=sk-proj-" + _token("Oa5iOpenaiMarker", 48),
        (_token("Oa5iOpenaiMarker", 48),), "OPENAI_API_KEY", "sk-proj-" + _token("Oa5iOpenaiMarker", 48),
    ),
    Shape("stripe-key", "stripe billing", "charge with sk_live_" + _token("St4rStripeMarker", 24),
          ("St4rStripeMarker",)),
    Shape("github-pat", "github fine grained", "github_pat_11" + _token("Gp3tPatMarker", 60), ("Gp3tPatMarker",)),
    Shape("gitlab-token", "gitlab runner", "glpat-" + _token("Gl9bGitlabMarker", 20), ("Gl9bGitlabMarker",)),
    Shape("npm-token", "npm publish", "//registry.npmjs.org/:_authToken=npm_" + _token("Np6mNpmMarker", 36),
          ("Np6mNpmMarker",)),
    Shape("google-api-key", "google maps", "maps key AIza" + _token("Go8gGoogleMarker", 35), ("Go8gGoogleMarker",)),
    Shape(
        "sendgrid-key", "sendgrid mail", "SG." + _token("Sg2dSendgridMarker", 22) + "." + _token("Sg2dSecondHalf", 43),
        ("Sg2dSendgridMarker", "Sg2dSecondHalf"),
    ),
    Shape(
        "azure-account-key", "azure storage",
        "DefaultEndpointsProtocol=https;AccountName=notes;AccountKey=Az9kAzureMarker+abc/def==;"
        "EndpointSuffix=core.windows.net",
        ("Az9kAzureMarker",),
    ),
    Shape("slack-webhook", "slack alerts", "https://hooks.slack.com/services/T0SLACK01/B0SLACK02/Sw4hSlackMarker",
          ("Sw4hSlackMarker",)),
    Shape("bearer-header", "api bearer", "Authorization: Bearer Bt6bBearerMarker", ("Bt6bBearerMarker",)),
    Shape("basic-header", "api basic", "Authorization: Basic QmFzaWNNYXJrZXI6cHc=", ("QmFzaWNNYXJrZXI6cHc",)),
    Shape(
        "json-password", "service config", '{"user": "app", "password": "Js3nJsonMarker"}', ("Js3nJsonMarker",),
        "password", '"Js3nJsonMarker"',
    ),
    Shape("mysql-p", "mysql shell", "mysql -u root -pMy7pCliMarker orders", ("My7pCliMarker",)),
    Shape("curl-u", "curl call", "curl -u bob:Cu8lCurlMarker https://api.example.com/v1/items", ("Cu8lCurlMarker",)),
    Shape(
        "pgp-private-key", "pgp key",
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGPgpMarkerBodyOne\nPgpMarkerBodyTwo==\n=Pg9k\n"
        "-----END PGP PRIVATE KEY BLOCK-----",
        ("lQOYBGPgpMarkerBodyOne", "PgpMarkerBodyTwo"),
    ),
    Shape("netrc-line", "heroku netrc", "machine api.heroku.com login bob@example.com password Nr4cNetrcMarker",
          ("Nr4cNetrcMarker",)),
    Shape("netrc-lines", "github netrc", "machine github.com\n  login bob\n  password Nm5lNetrcMarker",
          ("Nm5lNetrcMarker",)),
    Shape("pgpass", "pgpass file", "db.example.com:5432:orders:app:Pp2gPgpassMarker", ("Pp2gPgpassMarker",)),
    Shape("short-password", "kiosk login", "password: Zé7", ("Zé7",), "password", "Zé7"),
    Shape(
        "passphrase", "disk passphrase", "passphrase: vellum quokka zircon fjord",
        ("vellum", "quokka", "zircon", "fjord"), "passphrase", "vellum quokka zircon fjord",
    ),
    Shape(
        "password-words", "vault unseal", "password: tundra walrus mosaic", ("tundra", "walrus", "mosaic"),
        "password", "tundra walrus mosaic",
    ),
    Shape("aws-secret-after-key-id", "aws deploy user", f"{AWS_KEY_ID} {AWS_SECRET}", (AWS_KEY_ID, AWS_SECRET)),
    Shape(
        "aws-secret-labelled", "aws cli profile", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/AwsLabelMarkerKey1",
        ("AwsLabelMarkerKey1",), "aws_secret_access_key", "wJalrXUtnFEMI/K7MDENG/AwsLabelMarkerKey1",
    ),
    Shape("wifi-prose", "home wifi", "The wifi password is BlueHouse42Wf", ("BlueHouse42Wf",), "wifi password",
          "BlueHouse42Wf"),
    Shape("router-prose", "office router", "router: admin / Rt3rRouterMarker", ("Rt3rRouterMarker",)),
]
SHAPE_IDS = [s.name for s in SHAPES]


def place(shape: Shape, where: str) -> str:
    """The shape written in one place of a note, as markdown."""
    line = shape.line
    if where == "prose":
        return f"On staging we use {line} for now." if shape.one_line else f"On staging we use:\n{line}\nfor now."
    if where == "comment":
        return f"<!-- {line} -->" if shape.one_line else f"<!--\n{line}\n-->"
    if where == "fence":
        return f"```\n{line}\n```"
    if where == "table":
        return f"| {shape.header} | Notes |\n|---|---|\n| {shape.cell or line} | staging |"
    if where == "link":
        return f"See [the {shape.topic}](<{line}>) for staging."
    raise ValueError(where)


PLACES = ["prose", "comment", "fence", "table", "link", "heading"]
CASES = [
    pytest.param(shape, where, id=f"{shape.name}-{where}")
    for shape in SHAPES
    for where in PLACES
    if shape.one_line or where in ("prose", "comment", "fence")
]


def note_text(shape: Shape, places=PLACES) -> str:
    parts = [f"# {shape.topic.title()}", ""]
    for where in places:
        if where == "heading":
            if shape.one_line:
                parts += [f"## {shape.line}", f"The {shape.topic} for staging.", ""]
        elif shape.one_line or where in ("prose", "comment", "fence"):
            parts += [f"## In {where}", place(shape, where), ""]
    return "\n".join([*parts, "## After", "Nothing secret here.", ""])


def leaks(needles, *texts: str) -> list[str]:
    """The needles found in any of `texts`, case-insensitively; a needle shorter than 5 only as a whole word."""
    found = []
    for text in texts:
        low = text.lower()
        for needle in needles:
            hit = needle in low if len(needle) >= 5 else re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", low)
            if hit:
                found.append(f"{needle!r} in {text!r}")
    return found


def section_texts(section: Section) -> list[str]:
    """Every text a section gives to be shown, stored, embedded or quoted."""
    texts = [section.path, section.anchor, section.key, section.title, section.breadcrumb, section.markdown,
             section.text, *section.heading_path, *section.links, *(block.text for block in section.blocks)]
    texts += [chunk.embed_text for chunk in section_chunks(section)]
    texts += [f"{unit.context} {unit.text}" for unit in section_units(section)]
    return texts


# (a) The parsed note: every field, every derived text.


@pytest.mark.parametrize(("shape", "where"), CASES)
def test_parsed_fields_hold_no_secret(shape, where):
    sections = parse_note(Note(f"{shape.name}.md", note_text(shape, [where])))
    texts = [t for section in sections for t in section_texts(section)]
    assert not leaks(shape.needles, *texts)
    assert any(MASK in t for t in texts), "the credential is not there at all: the test would prove nothing"


@pytest.mark.parametrize("shape", [s for s in SHAPES if s.one_line], ids=lambda s: s.name)
def test_a_secret_in_a_heading_is_masked_in_title_breadcrumb_anchor_and_key(shape):
    [_, heading, _] = parse_note(Note("n.md", f"# Ops\n## {shape.line}\ntext\n## After\nmore\n"))
    assert MASK in heading.title
    assert heading.breadcrumb == f"Ops > {heading.title}"
    assert "redacted" in heading.anchor
    assert heading.key == f"n.md#{heading.anchor}"


def test_a_table_password_cell_is_masked_in_the_row_and_in_the_source_shown():
    """The label is in the header row: the answer quotes the row, the source panel shows the markdown."""
    [section] = parse_note(Note("t.md", "# Logins\n| user | password |\n|---|---|\n| bob | hunter2 |\n"))
    assert [b.text for b in section.blocks if b.kind == "row"] == ["user: bob; password: [redacted]"]
    assert section.markdown == "# Logins\n| user | password |\n|---|---|\n| bob | [redacted] |"


def test_masking_keeps_line_numbers():
    """A multi-line key becomes one mask and the same number of lines, so what follows keeps its lines."""
    pgp = next(s for s in SHAPES if s.name == "pgp-private-key")
    sections = parse_note(Note("k.md", f"# Keys\n{pgp.line}\n\n# After\nplain\n"))
    after = sections[-1]
    assert (after.title, after.line_start, after.blocks[0].line_start) == ("After", 9, 10)


@pytest.mark.parametrize(
    "prose",
    [
        "A password is required for login, so use a strong password and rotate it monthly.",
        "Secrets Manager rotates API keys. The token is expired after an hour.",
    ],
)
def test_prose_about_passwords_reads_as_written(prose):
    [section] = parse_note(Note("p.md", f"# Passwords\n{prose}\n"))
    assert section.text == prose
    assert MASK not in section.markdown


# (b), (c), (d): the real pipeline over a folder of these notes, with the letter-count embeddings.


@pytest.fixture(scope="module")
def notes_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("secret-notes")
    for shape in SHAPES:
        (folder / f"{shape.name}.md").write_text(note_text(shape), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def secrets_app(notes_dir, tmp_path_factory):
    from assistant.app import build
    from assistant.settings import Settings

    index_dir = tmp_path_factory.mktemp("secret-index")
    return build(Settings(notes_dir=notes_dir, index_dir=index_dir), embeddings=LetterEmbeddings(), say=lambda _: None)


ALL_NEEDLES = tuple(dict.fromkeys(n for shape in SHAPES for n in shape.needles))


def question(shape: Shape) -> str:
    return f"What is the {shape.topic} for staging?"


def answer_texts(answer) -> list[str]:
    texts = [answer.text, answer.standalone, *answer.notices, *answer.dropped]
    for c in (*answer.citations, *answer.related):
        texts += [c.key, c.path, c.anchor, *c.heading_path, *c.quotes, c.markdown]
    for hit in answer.hits:
        texts += section_texts(hit.section)
    return texts


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_answers_and_their_sources_hold_no_secret(secrets_app, shape):
    answer = secrets_app.assistant.ask(question(shape))
    sources = (*answer.citations, *answer.related)
    assert any(c.path == f"{shape.name}.md" for c in sources) or any(
        h.section.path == f"{shape.name}.md" for h in answer.hits
    ), "the question did not reach the note: the test would prove nothing"
    assert not leaks(ALL_NEEDLES, *answer_texts(answer))


def test_the_note_view_holds_no_secret(secrets_app):
    """The whole-note page draws the index's sections (title, anchor, markdown), never the file."""
    texts = [t for section in secrets_app.index.sections for t in section_texts(section)]
    assert not leaks(ALL_NEEDLES, *texts)
    assert sum(MASK in s.markdown for s in secrets_app.index.sections) >= len(SHAPES)


def test_no_file_of_the_index_holds_a_secret(secrets_app):
    """Every byte of every file under the index folder: the manifest, Chroma's SQLite and its vector files."""
    index_dir = secrets_app.settings.resolved_index_dir
    files = [p for p in index_dir.rglob("*") if p.is_file()]
    assert any(p.name == "manifest.json" for p in files)
    assert any(p.suffix == ".sqlite3" for p in files)
    found = []
    for path in files:
        data = path.read_bytes().lower()
        found += [f"{n!r} in {path.relative_to(index_dir)}" for n in ALL_NEEDLES if n.encode() in data]
    assert not found
    manifest = (index_dir / "manifest.json").read_text(encoding="utf-8")
    assert MASK in manifest


@pytest.fixture
def cli(monkeypatch, capsys):
    """`notes-assistant` in-process with the letter embeddings swapped in at the composition root's seam."""
    from assistant import cli, embedder

    embeddings = LetterEmbeddings()
    monkeypatch.setattr(embedder, "make_embeddings", lambda settings: embeddings)
    for name in ("NOTES_DIR", "NOTES_INDEX_DIR", "NOTES_LLM", "NOTES_TOP_K", "NOTES_MODEL_DIR"):
        monkeypatch.delenv(name, raising=False)

    def run(*argv: str) -> str:
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        assert code == 0, err
        return out + err

    return run


def test_the_cli_prints_no_secret(cli, notes_dir, tmp_path):
    index = str(tmp_path / "index")
    printed = [cli("--index-dir", index, "index", str(notes_dir))]
    for shape in SHAPES:
        printed.append(cli("--index-dir", index, "ask", question(shape), "--notes", str(notes_dir)))
        printed.append(cli("--index-dir", index, "search", question(shape), "--notes", str(notes_dir), "-k", "10"))
    printed.append(cli("--index-dir", index, "ask", question(SHAPES[0]), "--notes", str(notes_dir), "--json"))
    assert not leaks(ALL_NEEDLES, *printed)
    assert any(MASK in text for text in printed)
