# Two commands a newcomer needs: `make run` (the main job: news model -> adapted to the seed labels ->
# evaluated -> the seed article scored; ~15 min on 2 CPU cores) and `make test`. `make quick`: a 30-second demo.
# Each creates the virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The CPU build that lies on this machine's disk; elsewhere override, e.g. TORCH_SPEC='torch --index-url ...'.
TORCH_SPEC ?= torch==2.13.0
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install run quick build test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# CPU build of torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e '.[dev,onnx,sweep,distributed]'
	# report.html is tested in a real headless browser: the Debian package chromium, installed when
	# running as root and missing (elsewhere the test skips, saying why)
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed: tests/test_analyst.py skips its browser test"; \
	fi
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m stance.pipeline

quick: $(STAMP)
	$(PY) -m stance.train

build: $(STAMP)
	$(PY) -m stance.build

# ruff (lint + format check) and mypy first: CI (.ci/) runs `make test`
lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks
	$(PY) -m mypy

test: lint
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

clean:
	rm -rf outputs multirun data/processed .pytest_cache
