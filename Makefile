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

.PHONY: lab test setup lint test-fast test-notebooks test-browser test-colab test-colab-ci setup-colab benchmark \
	site slides sync clean

setup: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# PyTorch's CPU build by default: about 190 MB instead of several GB of CUDA wheels that the course
# never uses. A torch wheel already on this machine (pip's find-links) is taken first, without asking
# any index (its dependencies come with the requirements). For another build:
# `make setup TORCH_INDEX=https://download.pytorch.org/whl/cu126` (a CUDA build), or
# `TORCH_INDEX=pypi` (PyPI's default build).
TORCH_PIN := $(shell grep -E '^torch==' requirements.txt)
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_FROM := $(if $(filter pypi,$(TORCH_INDEX)),,--extra-index-url $(TORCH_INDEX))
define install_torch
	$(1) -m pip install --quiet --no-index --no-deps "$(TORCH_PIN)" 2>/dev/null || \
	  $(1) -m pip install --quiet "$(TORCH_PIN)" $(TORCH_FROM)
endef

# Re-install only when a pin or the package metadata changed (idempotent and quick otherwise).
$(STAMP): requirements.txt pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet --upgrade pip
	$(call install_torch,$(PY))
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

# `make test`: every chapter executed ONCE (nbval; the hidden-solution checks run inside that
# execution, tests/harness/plugin.py), on two pytest workers (pytest-xdist, one notebook per worker
# at a time, one framework thread per process: see conftest.py). Pass 1: unit tests + notebooks.
# Pass 2, once every notebook has run: the browser, site, slide and determinism tests, which reuse
# the executed copies in _build/executed/. Both passes run even if the first fails; then the
# execution log is checked: each chapter once by nbval, at most one other full run (determinism).
NBVAL := --nbval-lax --nbval-current-env --nbval-cell-timeout=600
WORKERS ?= 2
PYTEST_PAR := $(if $(filter-out 0 1,$(WORKERS)),-n $(WORKERS) --dist loadfile,)
EXEC_LOG := _build/executions.jsonl
LATER := after_notebooks or browser

test: setup lint
	@mkdir -p _build && rm -f $(EXEC_LOG); export COURSE_EXECUTION_LOG=$(EXEC_LOG); status=0; \
	t0=$$(date +%s); \
	$(PY) -m pytest tests notebooks $(NBVAL) $(PYTEST_PAR) -m "not ($(LATER))" -p no:cacheprovider \
	  --durations=25 $(PYTEST_ARGS) || status=$$?; \
	t1=$$(date +%s); \
	$(PY) -m pytest tests $(PYTEST_PAR) -m "$(LATER)" -p no:cacheprovider --durations=10 $(PYTEST_ARGS) || \
	  { rc=$$?; [ $$rc -eq 5 ] || status=$$rc; }; \
	t2=$$(date +%s); \
	$(PY) -m tests.harness.store --log $(EXEC_LOG) --max-extra 1 || status=1; \
	echo "make test: pass 1 (unit + notebooks) $$((t1 - t0)) s, pass 2 (browser, site, slides, determinism) $$((t2 - t1)) s"; \
	exit $$status

test-fast: setup
	$(PY) -m pytest tests $(PYTEST_PAR) -m "not browser and not slow" -p no:cacheprovider $(PYTEST_ARGS)

test-notebooks: setup
	$(PY) -m pytest notebooks $(NBVAL) $(PYTEST_PAR) -p no:cacheprovider $(PYTEST_ARGS)

test-browser: setup
	$(PY) -m pytest tests/browser -m browser -p no:cacheprovider $(PYTEST_ARGS)

# Google Colab's own package versions (tests/colab/constraints.txt: ipywidgets 7, TF 2.20, NumPy 2.1, ...)
# in a second venv: the chapters run there on Colab, where the Colab cell installs only what is missing.
# torch stays the local 2.13.0 CPU build (the pin in requirements.txt) and Python 3.11 (see the file).
COLAB_VENV := .venv-colab
COLAB_PY := $(COLAB_VENV)/bin/python
COLAB_STAMP := $(COLAB_VENV)/.installed
COLAB_ENV := COURSE_EXECUTED_DIR=_build/executed-colab
# The widget tests (every chapter's factories and checkers, ipywidgets 7) and chapter 0's sliders.
COLAB_CI := tests/core/test_widgets_plots.py tests/chapters notebooks/00_start_here.ipynb

setup-colab: $(COLAB_STAMP)

$(COLAB_STAMP): tests/colab/constraints.txt tests/colab/requirements.txt requirements.txt pyproject.toml
	rm -rf $(COLAB_VENV)
	$(PYTHON) -m venv $(COLAB_VENV)
	$(call install_torch,$(COLAB_PY))
	$(COLAB_PY) -m pip install --quiet "$(TORCH_PIN)" -r tests/colab/requirements.txt -c tests/colab/constraints.txt
	$(COLAB_PY) -m pip install --quiet --no-deps -e .
	touch $(COLAB_STAMP)

# Every chapter and the widget tests on Colab's stack (about as long as the notebooks of `make test`).
test-colab: setup-colab
	$(COLAB_ENV) $(COLAB_PY) -m pytest tests/core/test_widgets_plots.py tests/chapters notebooks $(NBVAL) \
	  $(PYTEST_PAR) -p no:cacheprovider --durations=20 $(PYTEST_ARGS)

# What CI runs on Colab's stack (.ci/run): a few minutes.
test-colab-ci: setup-colab
	$(COLAB_ENV) $(COLAB_PY) -m pytest $(COLAB_CI) $(NBVAL) $(PYTEST_PAR) -p no:cacheprovider $(PYTEST_ARGS)

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
	rm -rf $(VENV) $(COLAB_VENV) .pytest_cache _build
