"""Secrets never leave the notes: credentials are masked before text is indexed or shown."""

from __future__ import annotations

import re

MASK = "[redacted]"

# Shapes of credentials people paste into notes. Each names the part to mask, so the label stays readable:
# "password: hunter2" -> "password: [redacted]".
_PATTERNS = (
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.DOTALL),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),  # GitHub tokens
    re.compile(r"\bsk-[A-Za-z0-9_\-]{20,}\b"),  # OpenAI-style keys
    re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}\b"),  # Slack tokens
    re.compile(r"\beyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\b"),  # JWTs
)
_LABEL = (
    r"(?i)\b((?:aws_)?(?:secret(?:_access)?_key|access_key_id|password|passwd|pwd|passphrase|api[_\- ]?key|"
    r"(?:access|auth|bearer|refresh)?[_\- ]?token|client[_\- ]secret|secret)"
)
# "password: x" and "token=x" mask whatever follows; "the password is x" only a quoted value or one with a
# digit or symbol, so that "a password is required" stays readable.
_QUOTED = r"([\"'`])([^\"'`\n]{4,}?)\2"
_LABELLED = re.compile(_LABEL + r"\s*[:=]\s*)(?:" + _QUOTED + r"|()([^\s\"'`]{4,}))")
_LABELLED_IS = re.compile(
    _LABEL + r"\s+is\s+)(?:" + _QUOTED + r"|()([^\s\"'`]*[\d_!@#$%^&*+=/\\|~-][^\s\"'`]*[^\s.,;:!?\"'`]))"
)


def redact(text: str) -> str:
    """Mask credentials in `text`.

    >>> redact("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG")
    'aws_secret_access_key = [redacted]'
    >>> redact("the root password is `hunter2!`")
    'the root password is `[redacted]`'
    """
    for pattern in _PATTERNS:
        text = pattern.sub(MASK, text)
    for pattern in (_LABELLED, _LABELLED_IS):
        text = pattern.sub(_mask_value, text)
    return text


def _mask_value(match: re.Match) -> str:
    quote = match.group(2) or ""
    return f"{match.group(1)}{quote}{MASK}{quote}"
