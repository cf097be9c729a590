"""The packaged all-MiniLM-L6-v2 served by ONNX Runtime: exported once from the packaged weights (float, or int8
when quantized), then loaded by path with its tokenizer, so answering never imports torch.

The export (torch + onnx, ~20 s) runs on first use and is cached under the user's cache, keyed by the weights'
sha256 and the recipe (`RECIPES`); everything after it needs only `onnxruntime`, `tokenizers` and numpy (0.2 s
of CPU to import and load, where torch + sentence-transformers took 5-8 s on this 2-core machine).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import tempfile
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from index.embeddings import DIMENSIONS, MODEL_SHA256, MiniLMEmbeddings, ModelError, packaged_model_dir, verify_model

# How a file is made, by whether it is quantized; a change in a recipe gets a new name here, which names a new
# file and a new model id, so no index mixes two recipes.
# - "fp32": the float graph as exported: the same vectors as sentence-transformers (min cosine 0.99999 over
#   the 2,411 texts of the bundled and SDP notes; every eval figure identical).
# - "int8": int8 weights per output channel, MatMuls only, except each layer's feed-forward output: its input
#   (after GELU) spans a wide range that one per-tensor activation scale cuts coarsely. Min cosine 0.981 on the
#   bundled notes with every MatMul quantized, 0.992 with those six left in float; 1.6x less CPU than "fp32".
RECIPES = {False: "fp32-v1", True: "int8pc-v1"}
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model (sentence_bert_config.json)
# Tokens per ONNX run (rows x the longest row), texts taken in length order: a batch pads to its longest text,
# so sorting keeps a 12-token sentence from being padded to a 256-token chunk, and a budget in tokens rather than
# texts keeps batches of long texts small (a 32 x 256 batch ran slower per token than eight 4 x 256 ones, likely
# cache-bound). Measured on this 2-core machine over every text a full index embeds, 2 threads, same vectors:
# budget 128: 1.63 s, 512: 1.46 s, 1024: 1.50 s, 4096: 2.02 s, 32 texts a batch (before): 1.93 s on the bundled
# AWS notes (chosen here); checked on ../shared/notes-sdp (2,161 texts): 512: 10.1 s, 32 texts: 11.6 s.
BATCH_TOKENS = 512
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Texts whose vectors are kept for reuse: 12% of the texts of a 54-file notes folder (272 of 2,161) repeat a text
# of another section ("Step 2: Create a high level design: ..." 9 times), usually in another batch. 4,096
# vectors are 6 MB.
MEMO = 4096

Say = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def cached_model_path(cache_dir: Path, weights_sha256: str, quantized: bool = False) -> Path:
    """Where the exported model for these weights lives: `(~/.cache/notes-assistant/models, "53aa…", True)` ->
    `…/models/all-minilm-l6-v2-53aa51172d142c89-int8pc-v1.onnx`."""
    return cache_dir / f"all-minilm-l6-v2-{weights_sha256[:16]}-{RECIPES[quantized]}.onnx"


def can_export() -> bool:
    """Whether this machine can export the model: torch and onnx are installed (looked up, not imported)."""
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "onnx"))


def mean_pool_normalize(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' pooling for this model: the mean of the token vectors the attention mask keeps,
    then scaled to length 1.

    hidden [[[1, 0], [3, 4], [9, 9]]] with mask [[1, 1, 0]] -> mean [2, 2] -> [[0.707, 0.707]]: the padding
    token [9, 9] counts for nothing.
    """
    weights = mask[..., None].astype(hidden.dtype)
    summed = (hidden * weights).sum(axis=1)
    pooled = summed / np.clip(weights.sum(axis=1), 1e-9, None)  # the same floors as sentence-transformers
    return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


def length_batches(lengths: Sequence[int], budget: int = BATCH_TOKENS) -> list[list[int]]:
    """Indexes of texts in order of length, grouped so that a batch's rows times its longest row (what it costs
    once padded) stays within `budget` tokens; a text longer than the budget is a batch alone.

    `([5, 1, 3, 2], 9)` -> `[[1, 3, 2], [0]]` (3 rows padded to 3 tokens, then 5 alone).
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    batch: list[int] = []
    for i in order:
        if batch and (len(batch) + 1) * lengths[i] > budget:  # sorted: the new text is the batch's longest
            batches.append(batch)
            batch = []
        batch.append(i)
    if batch:
        batches.append(batch)
    return batches


def padded(rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids padded with 0 ([PAD]) to the longest row, and the attention mask.

    `[[101, 7, 102], [101, 102]]` -> `[[101, 7, 102], [101, 102, 0]]`, mask `[[1, 1, 1], [1, 1, 0]]`.
    """
    width = max(len(row) for row in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for r, row in enumerate(rows):
        ids[r, : len(row)] = row
        mask[r, : len(row)] = 1
    return ids, mask


def write_atomically(target: Path, make: Callable[[Path], None]) -> Path:
    """Have `make(path)` write a file beside `target`, then rename it into place.

    Two processes exporting at once each write their own temporary file; a rename is atomic, so a reader finds
    no file or a whole one, never half of one. A failed or killed `make` leaves `target` as it was.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as tmp:
        part = Path(tmp) / target.name
        make(part)
        with part.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(part, target)
    return target


def export_model(model_dir: Path, target: Path, quantized: bool = False) -> Path:
    """Export the packaged weights to an ONNX model at `target` (atomically), int8 when `quantized`. Needs torch
    and onnx."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from tokenizers import Tokenizer
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    class LastHiddenState(torch.nn.Module):
        def __init__(self, model) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    def make(part: Path) -> None:
        transformers_logging.disable_progress_bar()
        # eager attention: the plain graph of matmuls and a softmax, which the TorchScript exporter traces.
        model = AutoModel.from_pretrained(str(model_dir), local_files_only=True, attn_implementation="eager").eval()
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        ids, mask = padded([e.ids for e in tokenizer.encode_batch(["a short text", "and a somewhat longer one"])])
        float_model = part.with_suffix(".float.onnx")
        axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "last_hidden_state")}
        # The exporter warns about what it traces as constants (the mask's padding length, always 0 here: no
        # cache) and about its own deprecation; the file is checked against sentence-transformers in the tests.
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                LastHiddenState(model),
                (torch.from_numpy(ids), torch.from_numpy(mask), torch.zeros_like(torch.from_numpy(ids))),
                str(float_model),
                input_names=list(INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        if not quantized:
            os.replace(float_model, part)
            return
        import onnx

        names = [n.name for n in onnx.load(str(float_model), load_external_data=False).graph.node]
        keep_float = [n for n in names if n.endswith("/output/dense/MatMul") and "/attention/" not in n]
        # quantize_dynamic advises pre-processing through `logging.warning`, which would also give the root logger
        # a stderr handler for good (basicConfig) when it has none: every library's log lines would then show.
        root, guard = logging.getLogger(), logging.NullHandler()
        root.addHandler(guard)
        logging.disable(logging.WARNING)
        try:
            quantize_dynamic(
                str(float_model),
                str(part),
                per_channel=True,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["MatMul"],
                nodes_to_exclude=keep_float,
            )
        finally:
            logging.disable(logging.NOTSET)
            root.removeHandler(guard)

    return write_atomically(target, make)


class OnnxSession:
    """The exported model and its tokenizer, loaded by path: texts in, unit vectors out."""

    def __init__(self, model_path: Path, tokenizer_path: Path, threads: int) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # ONNX Runtime's pool threads spin while they wait for work by default: on a 2-core machine shared with
        # other work, that burns a core the app's other thread, or another process, could use.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only: its warnings about graph transforms are not the user's
        self.session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.no_padding()  # padded per batch, to that batch's longest text

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(list(texts))
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        for batch in length_batches([len(e.ids) for e in encodings]):
            ids, mask = padded([encodings[i].ids for i in batch])
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            (hidden,) = self.session.run(["last_hidden_state"], feed)
            out[batch] = mean_pool_normalize(hidden, mask)
        return out


class OnnxEmbeddings(Embeddings):
    """LangChain embeddings over the ONNX export of the packaged MiniLM (int8 when `quantized`); nothing loads
    until first use.

    `model_id` names the weights, the backend and the recipe. int8 vectors differ a little from
    sentence-transformers' (min cosine 0.993 on the AWS notes), enough to reorder near ties, and an index must be
    queried with vectors of the kind it holds, since the calibrated thresholds compare scores across both. The
    float export's vectors match to 1e-5, but it too gets its own id: switching backends re-embeds the notes
    once, and no index ever holds vectors of two recipes.

    When the model is not cached and cannot be exported here (torch or onnx missing), it falls back to
    sentence-transformers with a one-line notice; `model_id` then names that backend.
    """

    def __init__(
        self,
        cache_dir: Path,
        model_dir: Path | None = None,
        threads: int = 1,
        say: Say = _stderr,
        expected_sha256: str = MODEL_SHA256,
        export: Callable[[Path, Path, bool], Path] = export_model,
        exportable: Callable[[], bool] = can_export,
        quantized: bool = False,
    ) -> None:
        self.cache_dir = cache_dir
        self.quantized = quantized
        self.model_dir = model_dir
        self.threads = threads
        self.say = say
        self.expected_sha256 = expected_sha256
        self.export, self.exportable = export, exportable
        self._session: OnnxSession | None = None
        self._fallback: MiniLMEmbeddings | None = None
        self._backend: str | None = None
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()
        # The app embeds from two threads (a question, and a step of the background index): one at a time, so
        # neither loads the model twice nor finds a vector the other just dropped from `_memo`.
        self._lock = threading.Lock()

    def _dir(self) -> Path:
        return self.model_dir or packaged_model_dir()

    def _sha(self) -> str:
        return verify_model(self._dir(), self.expected_sha256, self.cache_dir / "weights-sha256.json")

    @property
    def model_path(self) -> Path:
        return cached_model_path(self.cache_dir, self._sha(), self.quantized)

    @property
    def backend(self) -> str:
        """ "onnx", or "torch" when the model is neither cached nor exportable here; decided once."""
        if self._backend is None:
            if self.model_path.is_file() or self.exportable():
                self._backend = "onnx"
            else:
                self.say(
                    "note: torch or onnx is not installed, so the ONNX model cannot be exported; "
                    "using sentence-transformers"
                )
                self._backend = "torch"
                self._fallback = MiniLMEmbeddings(self.model_dir, self.expected_sha256)
        return self._backend

    @property
    def model_id(self) -> str:
        if self.backend == "torch":
            return self._fallback.model_id
        return f"{self._sha()[:16]}-onnx-{RECIPES[self.quantized]}"

    def _load(self) -> OnnxSession:
        if self._session is None:
            path = self.model_path
            if not path.is_file():
                self.say(f"exporting the embedding model to ONNX once, into {path.parent} (about 20 s)")
                try:
                    self.export(self._dir(), path, self.quantized)
                except Exception as err:
                    raise ModelError(
                        f"exporting the embedding model to ONNX failed ({type(err).__name__}: {err}); "
                        "set NOTES_EMBEDDER=torch to use sentence-transformers"
                    ) from err
            try:
                self._session = OnnxSession(path, self._dir() / "tokenizer.json", self.threads)
            except Exception as err:  # onnxruntime raises its own kinds on a damaged file
                raise ModelError(
                    f"the cached ONNX model {path} cannot be loaded ({type(err).__name__}); delete it and it is "
                    "exported again"
                ) from err
        return self._session

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.backend == "torch":
            return self._fallback.embed_documents(texts)
        if not texts:
            return []
        with self._lock:
            memo = self._memo
            todo = [t for t in dict.fromkeys(texts) if t not in memo]  # each new text once
            if todo:
                for text, vector in zip(todo, self._load().embed(todo), strict=True):
                    memo[text] = vector
            out = []
            for text in texts:
                memo.move_to_end(text)
                out.append(memo[text].tolist())
            while len(memo) > MEMO:
                memo.popitem(last=False)
            return out

    def forget(self) -> None:
        """Drop the vectors kept for texts seen before (a benchmark's first question about a section)."""
        with self._lock:
            self._memo.clear()

    def embed_query(self, text: str) -> list[float]:
        """A question's vector, computed afresh: the memo is for indexing, where texts repeat across batches."""
        if self.backend == "torch":
            return self._fallback.embed_query(text)
        with self._lock:
            return self._load().embed([text])[0].tolist()
