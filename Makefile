# Two commands set everything up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup demo test lint docs bench clean

setup: $(STAMP)
	@bash scripts/ensure-debian.sh ffmpeg ffmpeg ffprobe

# Exact versions come from requirements.lock (used as constraints).
$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "emotrack needs Python 3.11, found " + sys.version' 
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/emotrack fetch --samples samples
	$(BIN)/emotrack run samples --lake lake

test: setup
	$(BIN)/python -m pytest

# Speed and memory, as ratios against baselines measured in the same run (about 40 minutes).
bench: setup
	$(BIN)/emotrack fetch
	$(BIN)/python benchmarks/bench_detectors.py
	$(BIN)/python benchmarks/bench_face_stage.py
	$(BIN)/python benchmarks/bench_crops.py
	$(BIN)/python benchmarks/bench_throughput.py
	$(BIN)/python benchmarks/bench_object_storage.py
	$(BIN)/python benchmarks/bench_archive.py
	$(BIN)/python benchmarks/bench_store_levels.py
	$(BIN)/python benchmarks/bench_action_units.py
	$(BIN)/python benchmarks/bench_identity.py
	$(BIN)/python benchmarks/bench_resting_people.py

# mypy cannot follow setuptools' package-dir: it reads emotrack.flows, .tasks and .models
# through these links (mypy_path in pyproject.toml).
TYPECHECK := build/typecheck/emotrack

$(TYPECHECK):
	mkdir -p $@
	for p in flows tasks models; do ln -sfn ../../../$$p $@/$$p; done

lint: setup $(TYPECHECK)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mkdocs build --strict  # not --quiet: it hides the warnings --strict counts

# The documentation site (docs/, mkdocs.yml) into build/site; --strict: a broken link or
# reference fails the build.
docs: setup
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) lake samples build .pytest_cache .mypy_cache .ruff_cache
