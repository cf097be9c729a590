"""Secrets in notes are masked before they are indexed or shown; ordinary prose about passwords is left alone."""

from __future__ import annotations

import pytest

from corpus.redact import MASK, redact


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG", "aws_secret_access_key = [redacted]"),
        ("key AKIAIOSFODNN7EXAMPLE here", "key [redacted] here"),
        ("password: hunter2-not-real", "password: [redacted]"),
        ("the root password is `hunter2!`", "the root password is `[redacted]`"),
        ("my password is hunter22.", "my password is [redacted]."),
        ('The password is "correct horse"', 'The password is "[redacted]"'),
        ("client_secret=abcd1234", "client_secret=[redacted]"),
        ("api key: sk-abcdefghijklmnopqrstuvwx", "api key: [redacted]"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", "[redacted]"),
    ],
)
def test_secrets_are_masked(text, masked):
    assert redact(text) == masked


@pytest.mark.parametrize(
    "text",
    ["A password is required for login", "The token is expired", "Secrets Manager rotates API keys", "pwd"],
)
def test_prose_about_secrets_is_left_alone(text):
    assert MASK not in redact(text)
