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
_LABELLED = re.compile(
    r"(?i)\b((?:aws_)?(?:secret(?:_access)?_key|access_key_id|password|passwd|pwd|api[_\- ]?key|token|secret)"
    r"\s*[:=]\s*)([\"']?)([^\s\"'`]{4,})\2"
)


def redact(text: str) -> str:
    """Mask credentials in `text`.

    >>> redact("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG")
    'aws_secret_access_key = [redacted]'
    """
    for pattern in _PATTERNS:
        text = pattern.sub(MASK, text)
    return _LABELLED.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}{m.group(2)}", text)
