"""The ONNX int8 embedder: its pooling and batching by hand, its cache and fallback on small fakes, its vectors
against sentence-transformers', and a cold `ask` / `search` / app start that never imports torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from assistant.embedder import make_embeddings
from assistant.settings import Settings
from index.embeddings import MODEL_SHA256, MiniLMEmbeddings, ModelError, get_embeddings, packaged_model_dir
from index.onnx_model import (
    RECIPES,
    OnnxEmbeddings,
    cached_model_path,
    length_batches,
    mean_pool_normalize,
    padded,
    write_atomically,
)

ROOT = Path(__file__).resolve().parent.parent
AWS_NOTES = ROOT / "corpus" / "notes" / "aws.md"
# What must stay out of a process that answers from a cached ONNX model: each costs seconds to import.
HEAVY = ("torch", "sentence_transformers", "transformers", "sklearn", "langchain_community", "onnx")


# Pooling and batching, by hand.


def test_mean_pooling_skips_padding_and_normalizes():
    hidden = np.array([[[1.0, 0.0], [3.0, 4.0], [9.0, 9.0]]])
    mask = np.array([[1, 1, 0]])
    # mean of [1, 0] and [3, 4] is [2, 2]; the padding [9, 9] counts for nothing; length 1 -> 0.7071 each
    assert mean_pool_normalize(hidden, mask) == pytest.approx(np.array([[0.70710678, 0.70710678]]))


def test_mean_pooling_of_each_row_uses_its_own_mask():
    hidden = np.array([[[3.0, 4.0], [0.0, 0.0]], [[0.0, 2.0], [0.0, 4.0]]])
    mask = np.array([[1, 0], [1, 1]])
    assert mean_pool_normalize(hidden, mask) == pytest.approx(np.array([[0.6, 0.8], [0.0, 1.0]]))


def test_an_all_zero_vector_stays_finite():
    """sentence-transformers clamps the token count and the norm; so does this: no division by zero, no NaN."""
    out = mean_pool_normalize(np.zeros((1, 2, 3)), np.array([[0, 0]]))
    assert np.isfinite(out).all()
    assert out.tolist() == [[0.0, 0.0, 0.0]]


def test_length_batches_group_texts_by_length():
    assert length_batches([5, 1, 3, 2], 9) == [[1, 3, 2], [0]]  # 3 rows padded to 3 tokens, then 5 alone
    assert length_batches([5, 1, 3, 2], 4) == [[1, 3], [2], [0]]  # 2 rows of 2 tokens; 3 and 5 alone
    assert length_batches([9], 4) == [[0]]  # longer than the budget: alone, never dropped
    assert length_batches([], 2) == []
    assert sorted(i for batch in length_batches(list(range(70, 0, -1)), 32) for i in batch) == list(range(70))


def test_padded_rows_and_their_mask():
    ids, mask = padded([[101, 7, 102], [101, 102]])
    assert ids.tolist() == [[101, 7, 102], [101, 102, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 1, 0]]
    assert ids.dtype == np.int64  # what the exported graph takes


# The cache: keyed by the weights, written whole or not at all.


def test_cache_file_is_keyed_by_the_weights_sha256_and_the_recipe(tmp_path):
    one = cached_model_path(tmp_path, "a" * 64)
    other = cached_model_path(tmp_path, "b" * 64)
    assert one != other
    assert one == cached_model_path(tmp_path, "a" * 64)
    assert one != cached_model_path(tmp_path, "a" * 64, quantized=True)
    assert one.parent == tmp_path
    assert RECIPES[False] in one.name
    assert "a" * 16 in one.name


def test_write_atomically_never_shows_half_a_file(tmp_path):
    target = tmp_path / "models" / "m.onnx"

    def make(part: Path) -> None:
        part.write_bytes(b"half")
        assert not target.exists()  # a reader meanwhile finds nothing, not half a file
        with part.open("ab") as handle:
            handle.write(b" and the rest")

    assert write_atomically(target, make) == target
    assert target.read_bytes() == b"half and the rest"
    assert [p.name for p in target.parent.iterdir()] == ["m.onnx"]  # no temporary file left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_litter(tmp_path):
    target = tmp_path / "m.onnx"
    target.write_bytes(b"old")

    def make(part: Path) -> None:
        part.write_bytes(b"new but unfinish")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(target, make)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


# The embedder on a tiny fake model: a real ONNX graph you can compute by hand.


def fake_export(model_dir: Path, target: Path, quantized: bool = False) -> Path:
    """An ONNX graph with the real model's inputs and output: token i's vector is [i, 1, 0, ...] (384 wide).

    The pooled vector of a text is then [mean of its token ids, 1, 0, ...], scaled to length 1.
    """
    import onnx
    from onnx import TensorProto, helper

    first, second = np.zeros(384, np.float32), np.zeros(384, np.float32)
    first[0], second[1] = 1.0, 1.0
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["input_ids"], ["ids"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["ids", "axis"], ["column"]),
            helper.make_node("Mul", ["column", "first"], ["scaled"]),
            helper.make_node("Add", ["scaled", "second"], ["last_hidden_state"]),
        ],
        "fake",
        [
            helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "tokens"])
            for name in ("input_ids", "attention_mask", "token_type_ids")
        ],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "tokens", 384])],
        initializer=[
            helper.make_tensor("axis", TensorProto.INT64, [1], [2]),
            helper.make_tensor("first", TensorProto.FLOAT, [384], first),
            helper.make_tensor("second", TensorProto.FLOAT, [384], second),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return write_atomically(target, lambda part: onnx.save(model, str(part)))


def expected(token_ids: list[int]) -> list[float]:
    mean = sum(token_ids) / len(token_ids)
    norm = (mean * mean + 1) ** 0.5
    return [mean / norm, 1 / norm] + [0.0] * 382


def test_the_fake_model_is_exported_once_and_embeds_by_hand(tmp_path):
    exports, said = [], []

    def export(model_dir, target, quantized):
        exports.append(target)
        return fake_export(model_dir, target, quantized)

    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(packaged_model_dir() / "tokenizer.json"))
    tokenizer.no_padding()  # the file pads to 128 tokens; the embedder pads each batch to its longest text
    ids = tokenizer.encode("sqs").ids
    assert ids[0] == 101
    assert ids[-1] == 102
    model = OnnxEmbeddings(tmp_path, threads=1, say=said.append, export=export)
    tokens = model.embed_query("sqs")
    assert tokens == pytest.approx(expected(ids), abs=1e-6)
    assert exports == [cached_model_path(tmp_path, MODEL_SHA256)]
    assert len(said) == 1
    assert "exporting" in said[0]
    # A second embedder over the same cache loads the file by path and exports nothing.
    again = OnnxEmbeddings(tmp_path, threads=1, say=said.append, export=export)
    assert again.embed_query("sqs") == pytest.approx(tokens)
    assert len(exports) == 1


def test_a_text_embeds_the_same_alone_or_padded_in_a_batch(tmp_path):
    """Length-sorted batches pad short texts; the mask must keep the padding out of every vector."""
    model = OnnxEmbeddings(tmp_path, threads=1, say=lambda _: None, export=fake_export)
    texts = ["sqs", "a much longer text about queues and topics and many other things", "sns", "sqs"]
    together = model.embed_documents(texts)
    for text, vector in zip(texts, together, strict=True):
        assert vector == pytest.approx(model.embed_query(text), abs=1e-6)
    assert together[0] == together[3]  # a repeated text is embedded once and shared
    assert model.embed_documents([]) == []


def test_model_id_names_the_weights_the_backend_and_the_recipe(tmp_path):
    float_model = OnnxEmbeddings(tmp_path, say=lambda _: None, export=fake_export)
    int8_model = OnnxEmbeddings(tmp_path, say=lambda _: None, export=fake_export, quantized=True)
    torch_id = MiniLMEmbeddings().model_id
    assert float_model.model_id == f"{torch_id}-onnx-{RECIPES[False]}"
    # An index built by one is re-embedded by another: no index holds vectors of two kinds.
    assert len({float_model.model_id, int8_model.model_id, torch_id}) == 3
    assert float_model.model_path != int8_model.model_path


def test_without_torch_or_onnx_it_falls_back_to_sentence_transformers_with_one_line(tmp_path):
    said = []
    model = OnnxEmbeddings(tmp_path, say=said.append, exportable=lambda: False)
    assert model.backend == "torch"
    assert model.model_id == MiniLMEmbeddings().model_id  # it names what makes the vectors
    assert len(said) == 1
    assert "\n" not in said[0]
    assert "sentence-transformers" in said[0]
    assert model.backend == "torch"
    assert len(said) == 1


def test_a_cached_model_needs_no_torch_to_be_used(tmp_path):
    fake_export(packaged_model_dir(), cached_model_path(tmp_path, MODEL_SHA256))
    said = []
    model = OnnxEmbeddings(tmp_path, say=said.append, exportable=lambda: False)
    assert model.backend == "onnx"
    assert said == []


def test_a_failed_export_is_one_clear_error(tmp_path):
    def broken(model_dir, target, quantized):
        raise RuntimeError("exporter crashed")

    model = OnnxEmbeddings(tmp_path, say=lambda _: None, export=broken)
    with pytest.raises(ModelError, match="exporter crashed.*NOTES_EMBEDDER=torch"):
        model.embed_query("sqs")


def test_a_damaged_cached_model_is_one_clear_error(tmp_path):
    path = cached_model_path(tmp_path, MODEL_SHA256)
    path.write_bytes(b"not a model")
    model = OnnxEmbeddings(tmp_path, say=lambda _: None, export=fake_export)
    with pytest.raises(ModelError, match="delete it"):
        model.embed_query("sqs")


# Settings and the factory.


def test_the_embedder_and_its_threads_come_from_the_environment():
    assert (Settings.from_env({}).embedder, Settings.from_env({}).embed_threads) == ("onnx", 0)
    settings = Settings.from_env({"NOTES_EMBEDDER": " Torch ", "NOTES_EMBED_THREADS": "3"})
    assert (settings.embedder, settings.embed_threads) == ("torch", 3)


def test_the_factory_picks_the_backend_and_the_threads(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    onnx_model = make_embeddings(Settings())
    assert isinstance(onnx_model, OnnxEmbeddings)
    assert onnx_model.cache_dir == tmp_path / "notes-assistant" / "models"
    assert 1 <= onnx_model.threads <= len(os.sched_getaffinity(0))  # the cores free when it was made
    assert make_embeddings(Settings(embed_threads=3)).threads == 3
    assert onnx_model.quantized is False
    assert make_embeddings(Settings(embedder="onnx-int8")).quantized is True
    assert isinstance(make_embeddings(Settings(embedder="torch")), MiniLMEmbeddings)
    with pytest.raises(ModelError, match="unknown embedder"):
        get_embeddings("tf", tmp_path)


# The real model.


@pytest.fixture(scope="module")
def onnx_minilm():
    """The ONNX embedder as the app makes it: exported into the user's cache on the first run, then loaded."""
    model = make_embeddings(Settings(embed_threads=1))
    model.embed_query("warm up")
    return model


@pytest.fixture(scope="module")
def onnx_int8_minilm():
    model = make_embeddings(Settings(embedder="onnx-int8", embed_threads=1))
    model.embed_query("warm up")
    return model


SENTENCES = [
    "What is SQS?",
    "Amazon SQS is a fully managed message queuing service.",
    "AWS > Storage > S3\nObject storage with eleven nines of durability, versioning and lifecycle rules.",
    "Cons: higher latency between regions",
    "Kubernetes",
]


@pytest.mark.model
def test_onnx_vectors_match_sentence_transformers(onnx_minilm, minilm):
    ours = np.array(onnx_minilm.embed_documents(SENTENCES))
    reference = np.array(minilm.embed_documents(SENTENCES))
    assert np.linalg.norm(ours, axis=1) == pytest.approx(np.ones(len(SENTENCES)), abs=1e-5)
    assert (ours * reference).sum(axis=1).min() >= 0.9999
    # Truncation at 256 tokens, as sentence-transformers does: a long text is cut, not an error.
    long = "queue " * 600
    assert float(np.dot(onnx_minilm.embed_query(long), minilm.embed_query(long))) >= 0.9999


@pytest.mark.model
def test_int8_vectors_stay_close_to_sentence_transformers(onnx_int8_minilm, minilm):
    ours = np.array(onnx_int8_minilm.embed_documents(SENTENCES))
    reference = np.array(minilm.embed_documents(SENTENCES))
    assert np.linalg.norm(ours, axis=1) == pytest.approx(np.ones(len(SENTENCES)), abs=1e-5)
    assert (ours * reference).sum(axis=1).min() >= 0.99


@pytest.mark.model
def test_a_cold_ask_search_chat_and_app_start_never_import_torch(onnx_minilm, tmp_path):
    """A real process answers from an index built in tmp_path, with the cached ONNX model (`ask`, `search`, a
    one-question `chat` read from stdin, the Streamlit app), and what it imported is checked: none of `HEAVY`."""
    from assistant.app import build

    notes = tmp_path / "notes"
    notes.mkdir()
    shutil.copy(AWS_NOTES, notes / "aws.md")
    index_dir = tmp_path / "index"
    build(Settings(notes_dir=notes, index_dir=index_dir), embeddings=onnx_minilm, say=lambda _: None)
    script = f"""
import json, sys
from assistant.cli import main
common = ["--index-dir", {str(index_dir)!r}]
asked = main([*common, "ask", "What is SQS?", "--notes", {str(notes)!r}])
searched = main([*common, "search", "What is SQS?", "--notes", {str(notes)!r}])
import io
sys.stdin = io.StringIO("What is SQS?\\n\\n")  # one question, then the empty line that ends a chat
chatted = main([*common, "chat", "--notes", {str(notes)!r}])
from streamlit.testing.v1 import AppTest
app = AppTest.from_file({str(ROOT / "streamlit_app.py")!r}, default_timeout=120).run()
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))
errors = [e.value for e in app.exception]
print()  # the chat's last prompt ("you> ") ends without a newline
print(json.dumps({{"codes": [asked, searched, chatted], "app_errors": errors, "loaded": loaded}}))
"""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "NOTES_EMBED_THREADS": "1",
        "NOTES_DIR": str(notes),
        "NOTES_INDEX_DIR": str(index_dir),
    }
    env.pop("NOTES_EMBEDDER", None)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["codes"] == [0, 0, 0]
    assert result["app_errors"] == []
    # The chat prompted, answered with its source, and quit on the empty line.
    assert "aws.md#sqs" in done.stdout.partition("you> ")[2]
    assert "SQS" in done.stdout
    assert "aws.md#sqs" in done.stdout
    assert result["loaded"] == []
    assert "exporting" not in done.stderr  # the cached model was used


def test_a_text_seen_before_is_not_run_through_the_model_again(tmp_path, monkeypatch):
    """Across calls too: a sync embeds a notes folder batch by batch, and repeated texts sit in other batches."""
    monkeypatch.setattr("index.onnx_model.MEMO", 3)
    model = OnnxEmbeddings(tmp_path, threads=1, say=lambda _: None, export=fake_export)
    session = model._load()
    ran: list[list[str]] = []
    embed = session.embed
    monkeypatch.setattr(session, "embed", lambda texts: ran.append(list(texts)) or embed(texts))
    first = model.embed_documents(["sqs", "sns"])
    second = model.embed_documents(["sns", "kinesis", "sqs"])
    assert (second[0], second[2]) == (first[1], first[0])
    assert ran == [["sqs", "sns"], ["kinesis"]]
    # Kept now, least recently used first: sns, kinesis, sqs. Two more texts push out sns and kinesis (MEMO 3).
    model.embed_documents(["lambda", "glue"])
    model.embed_documents(["sqs", "sns"])
    assert ran[-1] == ["sns"]


SHARED = ROOT.parent / "shared"
EVAL_SETS = [
    pytest.param(
        ROOT / "tests" / "data" / "heldout" / "questions.jsonl",
        ROOT / "tests" / "data" / "heldout" / "notes",
        id="heldout",
    ),
    pytest.param(SHARED / "eval" / "aws_dev.jsonl", SHARED / "notes", id="aws_dev"),
    pytest.param(SHARED / "eval" / "sdp_dev.jsonl", SHARED / "notes-sdp", id="sdp_dev"),
]


@pytest.mark.model
@pytest.mark.parametrize(("questions", "notes"), EVAL_SETS)
def test_onnx_changes_no_eval_figure_by_more_than_001(onnx_minilm, minilm, questions, notes, tmp_path):
    """The default embedder against the reference on each eval set: every quality figure within 0.01 (the
    issue's bar). Timings are left out: they measure the machine, not the vectors."""
    from assistant.app import build
    from assistant.evaluation import figures, load_cases, run_cases

    if not questions.exists() or not notes.exists():
        pytest.skip(f"{questions.parent} is not beside this checkout")
    cases = load_cases(questions)
    got = {}
    for name, model in (("onnx", onnx_minilm), ("torch", minilm)):
        settings = Settings(notes_dir=notes, index_dir=tmp_path / name)
        app = build(settings, embeddings=model, say=lambda _: None)
        got[name] = {k: v for k, v in figures(run_cases(app.assistant, cases)).items() if not k.endswith("_ms")}
    assert got["onnx"].keys() == got["torch"].keys()
    apart = {k: (got["onnx"][k], got["torch"][k]) for k in got["torch"] if abs(got["onnx"][k] - got["torch"][k]) > 0.01}
    assert not apart, apart


@pytest.mark.model
def test_onnx_vectors_match_on_every_text_the_aws_notes_embed(onnx_minilm, minilm):
    """Every chunk and unit embedded for the bundled AWS notes (~250 texts, up to 256 tokens, tables
    and code included), not just a few sentences: the float export is sentence-transformers to 1e-4."""
    from assistant.app import read_sections
    from corpus.chunking import section_chunks, section_units
    from index.units import unit_embed_text

    sections, _ = read_sections(AWS_NOTES.parent)
    texts = [
        text
        for s in sections
        if s.indexable
        for text in [c.embed_text for c in section_chunks(s)] + [unit_embed_text(s, u) for u in section_units(s)]
    ]
    assert len(texts) > 200
    cosines = (np.array(onnx_minilm.embed_documents(texts)) * np.array(minilm.embed_documents(texts))).sum(axis=1)
    assert cosines.min() >= 0.9999, texts[int(cosines.argmin())][:80]


def test_the_weights_sha256_is_remembered_for_the_same_file_only(tmp_path):
    from index.embeddings import verify_model

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    weights = model_dir / "model.safetensors"
    weights.write_bytes(b"weights")
    memo = tmp_path / "cache" / "weights-sha256.json"
    real = "1e2e1fcd6b4a4c8a1c3f3a0ff0b2fe8a0c2a3f0b9c5b6a1e1f1b7e5c9b1d3a4f"  # not checked: expected=""
    first = verify_model(model_dir, "", memo)
    assert first != real
    assert json.loads(memo.read_text())["sha256"] == first
    # What the memo says is believed while the file is the one it was written for (a planted value shows it)...
    kept = json.loads(memo.read_text())
    memo.write_text(json.dumps({**kept, "sha256": real}))
    assert verify_model(model_dir, "", memo) == real
    # ...and not once the file changed: the weights are hashed again, and a wrong sha is still an error.
    weights.write_bytes(b"other weights")
    assert verify_model(model_dir, "", memo) not in (real, first)
    with pytest.raises(ModelError):
        verify_model(model_dir, first, memo)
    # A memo that is not JSON, or cannot be written, is passed over.
    memo.write_text("{not json")
    assert verify_model(model_dir, "", memo) == verify_model(model_dir, "", None)
    assert verify_model(model_dir, "", tmp_path / "model" / "model.safetensors" / "memo.json")
