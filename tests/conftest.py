"""Shared fixtures. Tests cannot reach a model hub: offline flags are set before anything imports transformers."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_NOTES = ROOT / "corpus" / "notes"
AWS_NOTES = BUNDLED_NOTES / "aws.md"
SHARED_EVAL = ROOT.parent / "shared" / "eval" / "aws_dev.jsonl"


class LetterEmbeddings(Embeddings):
    """A fake you can compute by hand: a text's vector is its letter counts a-z, scaled to length 1.

    "ab" -> [0.707, 0.707, 0, ...]; "ba" gets the same vector, "zz" an orthogonal one.
    """

    model_id = "letters-v1"

    def __init__(self) -> None:
        self.calls = 0
        self.texts = 0

    def _vector(self, text: str) -> list[float]:
        counts = [0.0] * 26
        for char in text.lower():
            if "a" <= char <= "z":
                counts[ord(char) - 97] += 1
        norm = math.sqrt(sum(c * c for c in counts)) or 1.0
        return [c / norm for c in counts] if any(counts) else [1.0] + [0.0] * 25

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        self.texts += len(texts)
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch):
    """Flags and each test alone decide: a developer's NOTES_* variables (an LLM, another notes folder) must not
    leak into any test."""
    for name in [n for n in os.environ if n.startswith("NOTES_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def letters() -> LetterEmbeddings:
    return LetterEmbeddings()


@pytest.fixture(scope="session")
def minilm():
    """The real packaged MiniLM, loaded once for the session."""
    from index.embeddings import MiniLMEmbeddings

    model = MiniLMEmbeddings()
    model.embed_query("warm up")
    return model


@pytest.fixture(scope="session")
def aws_app(minilm, tmp_path_factory):
    """The assistant over the bundled AWS notes with the real model, indexed once per session."""
    from assistant.app import build
    from assistant.settings import Settings

    settings = Settings(notes_dir=BUNDLED_NOTES, index_dir=tmp_path_factory.mktemp("aws-index"))
    return build(settings, embeddings=minilm, say=lambda _: None)
