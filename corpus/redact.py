"""Secrets never leave the notes: credentials are masked in a note's text once, before it is parsed.

Everything shown or stored (titles, heading paths, anchors and keys, links, blocks, the section markdown, the
chunks Chroma embeds) is derived from the masked text, so it is masked by construction. A mask replaces only the
secret and never adds or removes a line break, so line numbers and the text around stay as they were:
`postgres://app:hunter2@db:5432/orders` -> `postgres://app:[redacted]@db:5432/orders`.

Every pattern runs in linear time: it starts at something rare (a label word, `://`, a vendor prefix), each
repeat is possessive (it never gives back what it took) or bounded, a repeat never takes in the character the
pattern starts at, and the scan resumes after each match. Patterns are written first-letter-first
(`p(?i:assword)|P(?i:assword)`) because Python's `re` skips ahead fast only to a known first character:
that took the label pattern from 400 to 60 ms a megabyte. The measure is `tests/test_redact.py`: adversarial
megabytes against an ordinary one.

detect-secrets (1.5.0) was measured first, on this 2-core machine: 8.3 s for a 1 MB note against ~0.3 s here;
it finds about half the shapes below (not `redis://:pw@`, `user:pw@host` without a scheme, `github_pat_`,
`npm_`, `AIza`, `AccountKey=`, `Authorization:`, `curl -u`, `mysql -p`, .netrc, .pgpass, or prose), and for
GitHub and GitLab tokens it reports only the prefix (`ghp`), so it cannot say what to mask.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator

MASK = "[redacted]"

Span = tuple[int, int]
Judge = Callable[[re.Match, str], list[Span]]


def _any_case(*words: str, after: str = "") -> str:
    """Words in any case, first letter first, so a search can skip to them; `after`: what may not come before.

    `_any_case("pw", after="[A-Za-z]")` -> `p(?<![A-Za-z]p)(?i:w)|P(?<![A-Za-z]P)(?i:w)`
    """
    alternatives = []
    for word in words:
        for first in dict.fromkeys((word[0].lower(), word[0].upper())):
            guard = f"(?<!{after}{re.escape(first)})" if after else ""
            alternatives.append(f"{re.escape(first)}{guard}(?i:{word[1:]})")
    return "|".join(alternatives)


def _prefixed(prefix: str, rest: str, after: str = "[A-Za-z0-9_]") -> str:
    """A vendor prefix that starts a word, then the token's body: `_prefixed("npm_", "[A-Za-z0-9]{36}")`."""
    first = re.escape(prefix[0])
    return f"{first}(?<!{after}{first}){re.escape(prefix[1:])}{rest}"


# Label words: the names people give a credential when they write it down. The long ones also count inside an
# identifier (DB_PASSWORD, MYSQL_ROOT_PASSWORD, accessToken, client_secret); the short ones only as a whole part
# (DB_PASS, `pw:`), never inside "compass" or "bypass". A plural ("Passwords:", "API keys") introduces a topic,
# not a value, so it is not a label: `(?![a-z])`.
_LONG = ("pass(?:word|wd|phrase)", "secret", "token", "cred(?:entials?|s)")
# Keys that are secret by name (a public key, a primary key or a sort key is not).
_KEYS = tuple(
    f"{name}[ _-]?key"
    for name in ("api", "access", "account", "secret", "private", "shared[ _-]?access", "master", "signing",
                 "encryption", "license")
)
_SHORT = ("pwd?", "pass")
_LABEL = rf"(?P<label>(?:{_any_case(*_LONG, *_KEYS)}|{_any_case(*_SHORT, after='[A-Za-z]')})(?![a-z])"
# ... and the rest of an identifier: DB_PASSWORD_FILE, passwordHash.
_LABEL += r"(?:[_.-][A-Za-z0-9]++|[A-Z][a-z0-9]*+){0,4})"
# `AWS Secret Access Key [None]: ...`, as `aws configure` prints it.
_PROMPT = r"(?:[ \t]*+(?!\[redacted\])\[[^\]\n]{0,30}+\](?=:))?"
# "Password for the prod DB: ...", "the wifi password at home is ...": a label may say what it is for.
_FOR = r"(?:[ \t]++(?i:for|of|on|at|in|to)(?:[ \t]++(?!(?i:is|was)\b)[^\s.,;:!?|=`]{1,40}+){1,4}?)?"
# "password: x", "password = x", `"password": "x"`, "**Password:** x", Go's :=, PHP's =>; not "==" or "://".
_SEP = r"(?P<sep>[ \t]*+(?:\*\*|__|[\"'`])?[ \t]*+(?::=|=>|:(?!//)|=(?![=~]))(?:\*\*|__)?[ \t]*+)"
# "the wifi password is x": in prose a value must look like one (`_looks_secret`).
_IS = r"(?P<is>[ \t]++(?i:is|was)\b(?:[ \t]++(?i:now|still)\b)?[ \t]*+:?[ \t]*+)"
_QUOTED = r"(?:\"(?P<dq>[^\"\n]++)\"|'(?P<sq>[^'\n]++)'|`(?P<bq>[^`\n]++)`)"
# An unquoted value: a run of non-space, cut where markup or the next field starts (a comment's `-->`, a
# closing tag, a link's `](`, `;Name=` in a connection string, `&name=` in a query string).
_TOKEN = r"(?P<tok>(?:(?!-->|</|\]\()[^\s|`;&]|[;&](?![A-Za-z_][\w.-]{0,64}+=))++)"
_VALUE = rf"(?:{_QUOTED}|{_TOKEN})"

# A value written as a field ("password: correct horse battery staple") runs to the end of its field.
_FIELD_END = re.compile(r"\n|\||-->|</|\]\(|`|\*\*|[,;.?](?=\s)|[ \t](?=#|\(|[-–—][ \t])|[ \t]{2}")
_FIELD_MAX = 256  # characters after the first word; a passphrase is a few words
_TRAILING = ".,;:?)]}>*_~-\"'"  # sentence and markup punctuation after a value, not part of it
_LEADING = "\"'*_(["
# "$DB_PASSWORD", "${TOKEN}", "$(pass show db)", "<your-token>", "{{ secret }}": says where the secret is.
_REFERENCE = re.compile(r"\$\{?[A-Za-z_]\w*+\}?|\$\(.*\)|<[^<>\n]*+>|\{\{.*\}\}|%[A-Za-z_]\w*+%")


def redact(text: str) -> str:
    """Mask credentials in `text`, keeping their labels and every line break.

    >>> redact("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG")
    'aws_secret_access_key = [redacted]'
    >>> redact("the root password is `hunter2!`")
    'the root password is `[redacted]`'
    >>> redact("-----BEGIN OPENSSH PRIVATE KEY-----\\nb3Blbn\\n-----END OPENSSH PRIVATE KEY-----\\nnext")
    '[redacted]\\n\\nnext'
    """
    spans: list[Span] = []
    for pattern, judge in _RULES:
        spans.extend(_scan(pattern, judge, text))
    spans.extend(_aws_secrets(text))
    spans.extend(_key_blocks(text))
    spans.extend(_table_cells(text))
    # What an earlier pass masked stays as it is: a value found inside "[redacted]" (the mask read as a
    # directive's value, "TOKEN **[redacted]:**") would be masked again, and masking twice must change nothing.
    starts = [m.start() for m in re.finditer(re.escape(MASK), text)]
    spans = [(a, b) for a, b in spans if not _inside_mask(a, b, starts)]
    return _apply(text, spans)


def _inside_mask(start: int, end: int, masks: list[int]) -> bool:
    """Whether `start:end` lies within one of the masks starting at `masks` (ascending)."""
    i = bisect.bisect_right(masks, start) - 1
    return i >= 0 and end <= masks[i] + len(MASK)


def _scan(pattern: re.Pattern, judge: Judge, text: str) -> Iterator[Span]:
    """The spans `judge` picks from the matches of `pattern`, resuming after each match and each span."""
    pos = 0
    while (match := pattern.search(text, pos)) is not None:
        spans = judge(match, text)
        yield from spans
        pos = max([match.end(), match.start() + 1, *(end for _, end in spans)])


def _apply(text: str, spans: list[Span]) -> str:
    """`text` with each span (merged where they touch) replaced by the mask and the line breaks it held."""
    out: list[str] = []
    last = 0
    for start, end in _merged(spans):
        out += [text[last:start], MASK, "\n" * text.count("\n", start, end)]
        last = end
    out.append(text[last:])
    return "".join(out)


def _merged(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _trimmed(text: str, start: int, end: int) -> Span:
    """The value in `text[start:end]` without punctuation or markup around it: `**hunter2**.` -> `hunter2`."""
    while end > start and text[end - 1] in _TRAILING:
        end -= 1
    while start < end and text[start] in _LEADING:
        start += 1
    return start, end


def _is_reference(text: str, start: int, end: int) -> bool:
    while end > start and text[end - 1] in ".,;:?\"'":
        end -= 1
    return _REFERENCE.fullmatch(text, start, end) is not None


def _value(match: re.Match, text: str, group: str = "tok") -> Span | None:
    """The span of a matched value, trimmed; None when it is empty or only refers to a secret kept elsewhere."""
    start, end = match.span(group)
    if start < 0 or text.startswith(MASK, start) or _is_reference(text, start, end):
        return None  # (a value that is the mask was masked before: redacting twice changes nothing)
    start, end = _trimmed(text, start, end)
    return (start, end) if end > start else None


def _looks_secret(word: str) -> bool:
    """Whether a word after "password is" is a value rather than prose: a digit, a symbol or a camel hump.

    `BlueHouse42`, `hunter2!`, `dXNlcjpwYXNz` yes; `required`, `expired`, `JWT`, `time-based` no.
    """
    if any(c.isdigit() for c in word):
        return True
    if re.fullmatch(r"[A-Za-z]++(?:-[A-Za-z]++)*+", word):
        return re.search(r"[a-z][A-Z]", word) is not None
    return True


# Judges: each turns a match into the spans to mask ([] when it is no secret after all).


def _whole(match: re.Match, text: str) -> list[Span]:
    return [match.span()]


def _token(match: re.Match, text: str) -> list[Span]:
    """The value in group `tok`, or in a quoted group (`dq`, `sq`, `bq`) where the pattern has them."""
    for quoted in ("dq", "sq", "bq"):
        if quoted in match.re.groupindex and match.start(quoted) >= 0:
            return [] if _is_reference(text, *match.span(quoted)) else [match.span(quoted)]
    span = _value(match, text)
    return [span] if span else []


def _labelled(match: re.Match, text: str) -> list[Span]:
    """`label: value` or `label is value`: the quoted value, or the token (and, for a field, the words after)."""
    if match.start("tok") < 0:
        return _token(match, text)  # quoted
    span = _value(match, text)
    if span is None:
        return []
    passphrase = "phrase" in match.group("label").lower()
    if match.group("is") is not None and not passphrase and not _looks_secret(text[span[0] : span[1]]):
        return []
    sep = match.group("sep")
    if passphrase or (sep is not None and (":" in sep or sep.strip() != sep)):
        # A field: "password: correct horse battery staple" is one value, up to the end of its line or cell.
        start, token_end = span
        limit = min(len(text), match.end() + _FIELD_MAX)
        stop = _FIELD_END.search(text, start, limit)
        end = stop.start() if stop else limit
        while end > start and text[end - 1] in " \t":
            end -= 1
        span = (start, max(token_end, _trimmed(text, start, end)[1]))
    return [span]


def _userinfo(match: re.Match, text: str) -> list[Span]:
    """`default:pw@redis-host:6379` without a scheme: only after `=` or before a port, never `mailto:bob@x.com`."""
    if text[match.start() - 1] != "=" and match.group("port") is None:
        return []
    return _token(match, text)


def _header(match: re.Match, text: str) -> list[Span]:
    """`Authorization: Bearer x`; without a scheme word the value must look like one ("Authorization: IAM" stays)."""
    span = _value(match, text)
    if span is None or (match.group("scheme") is None and not _looks_secret(text[span[0] : span[1]])):
        return []
    return [span]


def _rule(pattern: str, judge: Judge = _whole, flags: int = 0) -> tuple[re.Pattern, Judge]:
    return re.compile(pattern, flags), judge


_MYSQL = _any_case(r"mysql\w*+", r"mariadb\w*+", after=r"[\w-]")
_FACTORY = _any_case("admin(?:istrator)?", "root", after=r"[\w./-]")  # accounts a device ships with
_AWS_KEY_ID = re.compile(_prefixed("AKIA", "[0-9A-Z]{16}(?![0-9A-Z])") + "|" + _prefixed("ASIA", "[0-9A-Z]{16}"))

_RULES = (
    # Tokens whose vendor gave them a prefix so that scanners can find them.
    _rule(
        "|".join(
            [
                _AWS_KEY_ID.pattern,
                _prefixed("gh", "[pousr]_[A-Za-z0-9]{20,255}+"),  # GitHub
                _prefixed("github_pat_", "[A-Za-z0-9_]{20,255}+"),
                _prefixed("gl", "(?:pat|dt|ptt|rt)-[A-Za-z0-9_-]{20,255}+"),  # GitLab
                _prefixed("npm_", "[A-Za-z0-9]{36}"),
                _prefixed("sk-", "(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,400}+"),  # OpenAI
                _prefixed("sk_", "(?:live|test)_[A-Za-z0-9]{10,247}+"),  # Stripe
                _prefixed("rk_", "(?:live|test)_[A-Za-z0-9]{10,247}+"),
                _prefixed("AIza", "[0-9A-Za-z_-]{35}"),  # Google
                _prefixed("SG.", r"[A-Za-z0-9_-]{16,32}+\.[A-Za-z0-9_-]{16,64}+"),  # SendGrid
                _prefixed("xox", "[abposre]-[A-Za-z0-9-]{10,255}+"),  # Slack
                _prefixed("eyJ", r"[A-Za-z0-9_-]{8,4096}+\.eyJ[A-Za-z0-9_-]{8,8192}+\.[A-Za-z0-9_-]{8,4096}+",
                          after="[A-Za-z0-9_-]"),  # JWT
            ]
        )
    ),
    _rule(r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<tok>[A-Za-z0-9_/-]{8,255}+)", _token),
    _rule(r"discord(?:app)?\.com/api/webhooks/(?P<tok>[A-Za-z0-9_/-]{8,255}+)", _token),
    # The password in a URI of any scheme: redis://:pw@, postgres://u:pw@, mongodb+srv://u:pw@. The user is kept.
    # (A password runs to the last "@" before the host; its class holds no "/", so no scan crosses another "://".)
    _rule(r"://[^\s/?#@:\[\]]*+:(?P<tok>[^\s/?#]+)@", _token),
    # ... and without a scheme, as in REDIS_CONNECTION_URI=default:pw@redis-1.example.com:6379.
    _rule(
        r"(?<=[=\s\"'(<`])[A-Za-z0-9._~%+-]*+:(?P<tok>[^\s/?#=\"'`(<@]++)@[A-Za-z0-9][A-Za-z0-9.-]*+(?P<port>:\d)?",
        _userinfo,
    ),
    # An HTTP header: Authorization: Bearer <token> / Basic <base64>.
    _rule(
        rf"(?:{_any_case('authorization', 'proxy-authorization')})[\"']?+[ \t]*+[:=][ \t]*+[\"']?+"
        rf"(?:(?P<scheme>(?i:bearer|basic|token|digest|bot|apikey))[ \t]++)?{_TOKEN}",
        _header,
    ),
    # Labelled values, in code, config or prose.
    _rule(rf"{_LABEL}{_PROMPT}{_FOR}(?:{_SEP}|{_IS}){_VALUE}", _labelled),
    # Command lines: curl -u user:pass, mysql -u root -pX (the password glued to -p).
    _rule(r"-(?<![\w-]-)(?:u|-user)(?:[ \t]++|=)[\"']?+[^\s:\"']++:(?P<tok>[^\s\"'`|]++)", _token),
    _rule(
        f"(?:{_MYSQL})" r"(?:[ \t]++\S++){0,12}?[ \t]++-p" rf"(?:{_QUOTED}|(?P<tok>[^\s|`\"'-][^\s|`]*+))",
        _token,
    ),
    # .netrc: "machine h login u password p", or a "password p" line of the multi-line form.
    _rule(r"l(?<![\w-]l)ogin[ \t]++\S++[ \t]++password[ \t]++(?P<tok>\S++)", _token),
    _rule(r"^[ \t]*+password[ \t]++(?P<tok>\S++)[ \t]*+$", _token, re.MULTILINE),
    # .pgpass: host:port:database:user:password. (No field's class holds ":", where each try starts.)
    _rule(
        r":(?<=[^\s:`'\"|<(\[]:)(?:\d{1,5}+|\*):[^\s:`'\"|<(\[]++:[^\s:`'\"|<(\[]++:(?P<tok>[^\s`'\"|<(\[]++)",
        _token,
    ),
    # A config directive named for its secret, value after a space: Redis's "requirepass Plum-7731",
    # "masterpassword s3cr3t!". Only a name that ends in the credential word after a prefix, and only a value that
    # looks like one (a digit, a symbol or a camel hump), so "bypass caching" stays.
    _rule(
        r"(?<![\w$-])[A-Za-z][A-Za-z0-9_]{0,40}?(?i:pass(?:word|wd)?|secret|token)[ \t]++(?P<tok>[^\s`'\"|]{6,256}+)",
        lambda match, text: _token(match, text) if _looks_secret(match.group("tok")) else [],
    ),
    # A device's factory account and its password: "router: admin / hunter2", "root:toor".
    _rule(
        f"(?:{_FACTORY})" r"(?:[ \t]*+/[ \t]*+|:(?=\S))" + _TOKEN,
        _token,
    ),
)


# An AWS secret access key written without a label is known by the access key id just before it.

_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_AWS_SECRET_AFTER = 300  # characters after a key id: the same line, the next line, the next table cell


def _aws_secrets(text: str) -> list[Span]:
    spans = []
    for key_id in _AWS_KEY_ID.finditer(text):
        secret = _AWS_SECRET.search(text, key_id.end(), key_id.end() + _AWS_SECRET_AFTER)
        if secret is not None:
            spans.append(secret.span())
    return spans


# Private key blocks (PEM, OpenSSH, PGP), masked whole.

_KEY_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]++ ){0,4}PRIVATE KEY(?: BLOCK)?-----")
_KEY_END = re.compile(r"-----END (?:[A-Z0-9]++ ){0,4}PRIVATE KEY(?: BLOCK)?-----")
_KEY_MAX = 64 * 1024  # characters; an armored 4096-bit PGP key with subkeys is ~7 KB
_ARMOR = re.compile(r"[A-Za-z0-9+/=]++|[A-Za-z-]{1,40}+: .{0,200}+")  # base64 lines and "Version: ..." headers


def _key_blocks(text: str) -> list[Span]:
    """Private key blocks: BEGIN to END, or BEGIN and the armor lines after it when the END is missing."""
    ends = [m.end() for m in _KEY_END.finditer(text)]
    spans: list[Span] = []
    covered = 0
    for begin in _KEY_BEGIN.finditer(text):
        if begin.start() < covered:
            continue
        n = bisect.bisect_right(ends, begin.end())
        end = ends[n] if n < len(ends) and ends[n] - begin.end() <= _KEY_MAX else _armor_end(text, begin.end())
        spans.append((begin.start(), end))
        covered = end
    return spans


def _armor_end(text: str, pos: int) -> int:
    """Where the armor lines after a BEGIN line stop (blank lines count only before the first base64 line)."""
    end = text.find("\n", pos)
    if end < 0:
        return len(text)
    body = False
    while end < len(text):
        nxt = text.find("\n", end + 1)
        nxt = len(text) if nxt < 0 else nxt
        line = text[end + 1 : nxt].strip(" \t>")
        if line and _ARMOR.fullmatch(line):
            body = True
        elif line or body:
            break
        end = nxt
    return end


# Tables: a column whose header is a credential label is masked in every row, so the source shown (the table's
# markdown) is masked as well as the row text ("password: [redacted]") that answers quote. So is a cell right of
# a label cell ("| DB password | hunter2 |").

_DELIMITER_ROW = re.compile(r"[ \t]*+\|?[ \t]*+:?-++:?[ \t]*+(?:[|+][ \t]*+:?-++:?[ \t]*+)*+\|?[ \t]*+")
# "Password", "DB password", "API keys", "POSTGRES_PASSWORD", "aws_secret_access_key". Plurals count here (a
# "Passwords" column holds passwords); the short words do not ("| Test | Pass |").
_CELL_LABEL = re.compile(
    rf"(?:\S++[ \t]++){{0,3}}[\w.-]{{0,30}}?(?i:{'|'.join((*_LONG, *_KEYS, 'authorization'))})s?(?![a-z])"
    r"(?:[_.-][A-Za-z0-9]++|[A-Z][a-z0-9]*+){0,4}[ \t]*+:?"
)
_CELL_LABEL_MAX = 60  # characters; a label is a few words
_PIPE = re.compile(r"(?<!\\)\|")


def _is_label_cell(cell: str) -> bool:
    cell = cell.strip(" \t*_`")
    return len(cell) <= _CELL_LABEL_MAX and _CELL_LABEL.fullmatch(cell) is not None


def _cells(line: str, offset: int) -> list[Span]:
    """Spans of the cells of a table line, without padding: `| a | b |` -> the spans of `a` and `b`."""
    bounds = [-1, *(m.start() for m in _PIPE.finditer(line)), len(line)]
    cells = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        start, end = a + 1, b
        while start < end and line[start] in " \t":
            start += 1
        while end > start and line[end - 1] in " \t":
            end -= 1
        cells.append((offset + start, offset + end))
    if line.lstrip().startswith("|"):
        cells = cells[1:]
    if line.rstrip().endswith("|") and not line.rstrip().endswith("\\|"):
        cells = cells[:-1]
    return cells


def _table_cells(text: str) -> list[Span]:
    """Cells under a credential header, and cells right of a credential label cell, in pipe tables."""
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    spans: list[Span] = []
    i = 0
    while i + 1 < len(lines):
        header, rule = lines[i], lines[i + 1]
        if "|" not in header or not ("|" in rule or "+" in rule) or not _DELIMITER_ROW.fullmatch(rule):
            i += 1
            continue
        labels = {n for n, (a, b) in enumerate(_cells(header, starts[i])) if _is_label_cell(text[a:b])}
        i += 2
        while i < len(lines) and "|" in lines[i] and lines[i].strip():
            cells = _cells(lines[i], starts[i])
            for n, (a, b) in enumerate(cells):
                if n in labels or (n > 0 and _is_label_cell(text[cells[n - 1][0] : cells[n - 1][1]])):
                    spans.append((a, b))
            i += 1
    return spans
