"""Settings from NOTES_* variables and flags: numbers are checked, and a bad one is one line naming the variable and
what it accepts, from the CLI (exit 2) as from the library. Pure: no model."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.cli import main
from assistant.settings import BUNDLED_NOTES, MAX_TOP_K, Settings, SettingsError


def test_defaults_when_nothing_is_set():
    settings = Settings.from_env({})
    assert settings == Settings()
    assert (settings.top_k, settings.llm_context_tokens, settings.llm_timeout) == (8, 4096, 60.0)
    assert settings.notes_dir == BUNDLED_NOTES


def test_numbers_are_read_from_the_environment():
    env = {"NOTES_TOP_K": " 12 ", "NOTES_LLM_CONTEXT": "8192", "NOTES_LLM_TIMEOUT": "2.5"}
    settings = Settings.from_env(env)
    assert (settings.top_k, settings.llm_context_tokens, settings.llm_timeout) == (12, 8192, 2.5)


def test_local_model_threads_default_to_the_free_cores_and_can_be_set():
    assert Settings.from_env({}).llm_threads == 0  # 0: one per free core, decided when the model loads
    assert Settings.from_env({"NOTES_LLM_THREADS": "1"}).llm_threads == 1


@pytest.mark.parametrize("name", ["NOTES_TOP_K", "NOTES_LLM_CONTEXT", "NOTES_LLM_TIMEOUT"])
def test_an_empty_variable_means_the_default(name):
    """`NOTES_TOP_K=` in a compose file or a shell means "not set", as it does for NOTES_DIR."""
    assert Settings.from_env({name: ""}) == Settings.from_env({name: "  "}) == Settings()


def test_flags_override_the_environment():
    settings = Settings.from_env({"NOTES_TOP_K": "12", "NOTES_DIR": "/notes"}, top_k=3, notes_dir=None)
    assert settings.top_k == 3
    assert settings.notes_dir == Path("/notes")


@pytest.mark.parametrize(
    ("name", "value", "accepts"),
    [
        ("NOTES_TOP_K", "abc", f"a whole number from 1 to {MAX_TOP_K}"),
        ("NOTES_TOP_K", "0", f"a whole number from 1 to {MAX_TOP_K}"),
        ("NOTES_TOP_K", "-3", f"a whole number from 1 to {MAX_TOP_K}"),
        ("NOTES_TOP_K", "8.5", f"a whole number from 1 to {MAX_TOP_K}"),
        ("NOTES_TOP_K", "100000", f"a whole number from 1 to {MAX_TOP_K}"),
        ("NOTES_LLM_CONTEXT", "4k", "a whole number from 1,024 to 1,048,576"),
        ("NOTES_LLM_CONTEXT", "100", "a whole number from 1,024 to 1,048,576"),
        ("NOTES_LLM_CONTEXT", "9" * 5000, "a whole number from 1,024 to 1,048,576"),  # past int()'s digit limit
        ("NOTES_LLM_TIMEOUT", "soon", "a number of seconds above 0, at most 3600"),
        ("NOTES_LLM_TIMEOUT", "0", "a number of seconds above 0, at most 3600"),
        ("NOTES_LLM_TIMEOUT", "-1", "a number of seconds above 0, at most 3600"),
        ("NOTES_LLM_TIMEOUT", "nan", "a number of seconds above 0, at most 3600"),
        ("NOTES_LLM_TIMEOUT", "inf", "a number of seconds above 0, at most 3600"),
        ("NOTES_LLM_THREADS", "all", "a whole number from 0 to 512"),
        ("NOTES_LLM_THREADS", "-1", "a whole number from 0 to 512"),
        ("NOTES_EMBEDDER", "tensorflow", "one of onnx, onnx-int8, torch"),
        ("NOTES_EMBEDDER", "x" * 500, "one of onnx, onnx-int8, torch"),
        ("NOTES_EMBED_THREADS", "many", "a whole number from 0 to 512"),
        ("NOTES_EMBED_THREADS", "-1", "a whole number from 0 to 512"),
    ],
)
def test_a_bad_setting_names_the_variable_and_what_it_accepts(name, value, accepts):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value})
    message = str(caught.value)
    assert message.startswith(f"{name}=")
    assert message.endswith(f": expected {accepts}")
    assert "\n" not in message
    assert len(message) < 120  # a pasted megabyte is cut, not echoed


def test_settings_error_is_a_value_error():
    """Code that guards `Settings.from_env` with `except ValueError` keeps working."""
    assert issubclass(SettingsError, ValueError)


# The command line.


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("NOTES_DIR", "NOTES_INDEX_DIR", "NOTES_LLM", "NOTES_TOP_K", "NOTES_LLM_CONTEXT", "NOTES_LLM_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("name", "value"),
    [("NOTES_TOP_K", "abc"), ("NOTES_TOP_K", "0"), ("NOTES_LLM_CONTEXT", "x"), ("NOTES_LLM_TIMEOUT", "0")],
)
@pytest.mark.parametrize("command", [["ask", "What is SQS?"], ["search", "What is SQS?"], ["index"]])
def test_bad_variable_is_one_line_from_the_cli(capsys, clean_env, tmp_path, command, name, value):
    clean_env.setenv(name, value)
    code = main(["--index-dir", str(tmp_path / "index"), *command])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"notes-assistant: {name}={value!r}: expected ")
    assert not (tmp_path / "index").exists()  # nothing was built


@pytest.mark.parametrize("k", ["-1", "0", "abc", "2.5", str(MAX_TOP_K + 1), "9" * 5000])
def test_search_k_must_be_a_positive_whole_number(capsys, clean_env, tmp_path, k):
    with pytest.raises(SystemExit) as caught:
        main(["--index-dir", str(tmp_path / "index"), "search", "What is SQS?", "-k", k])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    error = err.strip().splitlines()[-1]  # argparse's usage line, then the error
    assert error.startswith("notes-assistant search: error: argument -k: expected a whole number from 1 to")
    assert len(error) < 150
    assert not (tmp_path / "index").exists()
