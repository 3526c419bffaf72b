# Learning to Learn: the two commands are `make lab` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Where the loader finds Omniglot. Unset: a user cache folder, downloaded on first use.
# A developer checkout beside ../shared/data/omniglot (and CI) uses that offline copy.
ifeq ($(origin COURSE_DATA_DIR), undefined)
  ifneq ($(wildcard ../shared/data/omniglot/omniglot28.npz),)
    export COURSE_DATA_DIR := $(abspath ../shared/data/omniglot)
  endif
endif
# Fewer glibc malloc arenas: TensorFlow's and PyTorch's thread pools otherwise each grow their own,
# which inflates a kernel's resident memory by a few hundred MB (the chapters assert < 1.5 GB).
export MALLOC_ARENA_MAX ?= 2
export TF_ENABLE_ONEDNN_OPTS ?= 0
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: lab test setup lint test-fast test-notebooks test-browser benchmark site slides sync clean

setup: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Re-install only when a pin or the package metadata changed (idempotent and quick otherwise).
$(STAMP): requirements.txt pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# JupyterLab refuses to run as root without --allow-root (containers, CI machines).
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(ALLOW_ROOT) $(LAB_ARGS)

# The checks pre-commit runs for contributors (.pre-commit-config.yaml), with the pinned versions.
lint: setup
	$(VENV)/bin/ruff check course_utils tests benchmarks book conftest.py
	$(VENV)/bin/nbstripout --keep-id --verify notebooks/*.ipynb

test: setup lint
	$(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env --nbval-cell-timeout=600 -p no:cacheprovider $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest tests -m "not browser and not slow" $(PYTEST_ARGS)

test-notebooks: setup
	$(PY) -m pytest notebooks --nbval-lax --nbval-current-env $(PYTEST_ARGS)

test-browser: setup
	$(PY) -m pytest tests/browser -m browser $(PYTEST_ARGS)

benchmark: setup
	$(PY) benchmarks/maml_sine.py

# The rendered course (book/): each reuses the notebooks executed by the last `make test`
# (_build/executed/) and executes only the chapters that changed since, once.
site: setup
	$(PY) -m book.build site

slides: setup
	$(PY) -m book.build slides

# After editing a notebook or the repository URL ([tool.course] in pyproject.toml): rewrite each
# chapter's Colab cell and slide metadata and the README's Colab badges.
sync: setup
	$(PY) -m book.build sync
	$(VENV)/bin/nbstripout --keep-id notebooks/*.ipynb

clean:
	rm -rf $(VENV) .pytest_cache _build
