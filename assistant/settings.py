"""The one settings object, built from the environment and flags in one place and passed down."""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

BUNDLED_NOTES = Path(__file__).resolve().parent.parent / "corpus" / "notes"
# Sections an answer reads. Past ~20 they add noise, not answers; 50 leaves `search -k` room to look further.
MAX_TOP_K = 50
# An LLM's context must hold the 512 tokens kept for its answer, the prompt (~150) and at least one source.
LLM_CONTEXT_RANGE = (1024, 1_048_576)
MAX_LLM_TIMEOUT = 3600.0
MAX_LLM_THREADS = 512  # llama.cpp's own limit (GGML_MAX_N_THREADS)
# `NOTES_EMBEDDER`: MiniLM on ONNX Runtime (no torch when answering), its int8 quantization, or
# sentence-transformers on torch, the reference (`index.embeddings.get_embeddings`).
EMBEDDERS = ("onnx", "onnx-int8", "torch")
MAX_EMBED_THREADS = 512  # NOTES_EMBED_THREADS; more than the machine has only slows ONNX Runtime down


class SettingsError(ValueError):
    """A setting that cannot be used; the message names it and what it accepts, in one line."""


@dataclass(frozen=True)
class Settings:
    """Everything a run can be told. `llm` empty means the offline extractive answerer.

    `llm` examples: `ollama:qwen2.5:3b`, `openai:gpt-4o-mini` (with `llm_base_url` for any OpenAI-compatible
    server), `local:/models/qwen.gguf` (in this process, through llama.cpp). `forge_url`, when the notes also
    live in a git forge, is where source links point (`https://github.com/me/notes/blob/main/` + `path#anchor`);
    without it they open the note in the app.
    """

    notes_dir: Path = BUNDLED_NOTES
    index_dir: Path | None = None
    llm: str = ""
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_context_tokens: int = 4096
    llm_timeout: float = 60.0
    llm_threads: int = 0  # threads for a `local:` model; 0: one per core free when it loads
    top_k: int = 8
    model_dir: Path | None = None
    forge_url: str | None = None
    embedder: str = "onnx"  # one of EMBEDDERS
    embed_threads: int = 0  # ONNX Runtime threads; 0: one per core free when the model loads
    # A Chroma server (`http://host:8000`) that holds the whole index instead of a folder on this machine.
    chroma_url: str | None = None

    @property
    def resolved_index_dir(self) -> Path:
        """The index folder: given, or one per notes folder under the user's cache."""
        if self.index_dir is not None:
            return self.index_dir
        notes = self.notes_dir.resolve()
        digest = hashlib.sha1(str(notes).encode()).hexdigest()[:10]
        return _cache_home() / "notes-assistant" / f"{notes.name or 'notes'}-{digest}"

    @property
    def model_cache_dir(self) -> Path:
        """Where the exported ONNX embedding model is kept, shared by every notes folder."""
        return _cache_home() / "notes-assistant" / "models"

    def with_(self, **changes) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **flags) -> Settings:
        """Settings from `NOTES_*` variables, then flags (None means not given)."""
        env = os.environ if env is None else env
        base = cls(
            notes_dir=Path(env["NOTES_DIR"]) if env.get("NOTES_DIR") else BUNDLED_NOTES,
            index_dir=Path(env["NOTES_INDEX_DIR"]) if env.get("NOTES_INDEX_DIR") else None,
            llm=env.get("NOTES_LLM", ""),
            llm_base_url=env.get("NOTES_LLM_BASE_URL") or None,
            llm_api_key=env.get("NOTES_LLM_API_KEY") or env.get("OPENAI_API_KEY") or None,
            llm_context_tokens=_whole(env, "NOTES_LLM_CONTEXT", cls.llm_context_tokens, *LLM_CONTEXT_RANGE),
            llm_timeout=_seconds(env, "NOTES_LLM_TIMEOUT", cls.llm_timeout),
            llm_threads=_whole(env, "NOTES_LLM_THREADS", cls.llm_threads, 0, MAX_LLM_THREADS),
            top_k=_whole(env, "NOTES_TOP_K", cls.top_k, 1, MAX_TOP_K),
            model_dir=Path(env["NOTES_MODEL_DIR"]) if env.get("NOTES_MODEL_DIR") else None,
            forge_url=env.get("NOTES_FORGE_URL") or None,
            embedder=_choice(env, "NOTES_EMBEDDER", cls.embedder, EMBEDDERS),
            embed_threads=_whole(env, "NOTES_EMBED_THREADS", cls.embed_threads, 0, MAX_EMBED_THREADS),
            chroma_url=_chroma_url(env),
        )
        return base.with_(**flags)


def whole_number(text: str, low: int, high: int) -> int | None:
    """`text` as a whole number in `low..high`, else None: `("8", 1, 50)` -> 8, `("0", 1, 50)` -> None."""
    try:
        value = int(text)
    except ValueError:  # not digits, or more digits than Python converts
        return None
    return value if low <= value <= high else None


def _whole(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """A whole-number variable; unset or empty means `default`."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    value = whole_number(raw, low, high)
    if value is None:
        raise SettingsError(f"{name}={_shown(raw)}: expected a whole number from {low:,} to {high:,}")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    """A variable naming one of `choices` (any case); unset or empty means `default`."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if raw.lower() not in choices:
        raise SettingsError(f"{name}={_shown(raw)}: expected one of {', '.join(choices)}")
    return raw.lower()


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A duration variable in seconds: above 0 and at most MAX_LLM_TIMEOUT ("nan" and "inf" are not)."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (0 < value <= MAX_LLM_TIMEOUT):
        raise SettingsError(f"{name}={_shown(raw)}: expected a number of seconds above 0, at most {MAX_LLM_TIMEOUT:g}")
    return value


def _chroma_url(env: Mapping[str, str]) -> str | None:
    """`NOTES_CHROMA_URL`: http(s)://host[:port] of a Chroma server; unset or empty means the embedded index."""
    raw = env.get("NOTES_CHROMA_URL", "").strip()
    if not raw:
        return None
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(raw)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # a port that is not a number from 0 to 65535
        parts, port_ok = None, False
    usable = parts is not None and parts.scheme in ("http", "https") and parts.hostname and not parts.path.strip("/")
    if not (usable and port_ok):
        raise SettingsError(f"NOTES_CHROMA_URL={_shown(raw)}: expected a Chroma server URL like http://localhost:8000")
    return raw.rstrip("/")


def _shown(raw: str) -> str:
    """A value quoted for a message, cut so a pasted megabyte stays one short line."""
    return repr(raw if len(raw) <= 20 else raw[:20] + "…")


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
