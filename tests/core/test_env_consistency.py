"""requirements.txt is the one source of truth: environment.yml and binder/ pin the same versions."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^\s*-?\s*([A-Za-z0-9_.\-]+)==([^\s#;]+)")


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        m = PIN.match(line)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def test_requirements_pin_the_issue_versions():
    req = _pins(REPO / "requirements.txt")
    assert req["torch"] == "2.13.0", "torch must stay at the CPU build on disk (2.13.0)"
    assert req["tensorflow-cpu"].startswith("2.21")
    assert req["jupyterlab"].startswith("4.") and req["ipywidgets"].startswith("8.")
    for name in ("numpy", "matplotlib", "nbval", "pytest", "hypothesis", "tqdm"):
        assert name in req, name
    assert "tensorflow" not in req, "use tensorflow-cpu, never the GPU package"


def test_environment_yml_matches_requirements():
    req = _pins(REPO / "requirements.txt")
    env = _pins(REPO / "environment.yml")
    assert env == req
    text = (REPO / "environment.yml").read_text()
    assert "python=3.11" in text and "download.pytorch.org/whl/cpu" in text


def test_binder_matches_requirements():
    req = _pins(REPO / "requirements.txt")
    binder = _pins(REPO / "binder" / "requirements.txt")
    text = (REPO / "binder" / "requirements.txt").read_text()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in text
    assert binder.pop("torch") == req["torch"] + "+cpu"  # the CPU wheel, never CUDA
    # parallel and browser tests, lint and the site build run outside Binder; nbconvert comes with JupyterLab there
    dev_only = ("torch", "pytest-xdist", "playwright", "ruff", "nbstripout", "sphinx", "myst-nb", "myst-parser",
                "sphinx-book-theme", "pydata-sphinx-theme", "sphinx-mathjax-offline", "nbconvert")
    expected = {k: v for k, v in req.items() if k not in dev_only}
    assert binder == expected
    assert "jupyterlab-rise" in binder, "the slide extension runs on Binder too"
    assert "pip install --no-deps -e ." in (REPO / "binder" / "postBuild").read_text()
    start = (REPO / "binder" / "start").read_text()
    assert "TF_ENABLE_ONEDNN_OPTS=0" in start and "TF_CPP_MIN_LOG_LEVEL" in start and 'exec "$@"' in start
    assert (REPO / "binder" / "runtime.txt").read_text().strip() == "python-3.11"


def test_makefile_and_ci_use_the_readme_commands():
    readme = (REPO / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci
    make = (REPO / "Makefile").read_text()
    assert "--nbval-lax" in make and "--nbval-current-env" in make
    assert "-r requirements.txt" in make and "-e ." in make


def test_setup_installs_the_cpu_torch_without_waiting_on_an_index():
    """`make setup` takes PyTorch's CPU build (not PyPI's CUDA one) unless TORCH_INDEX says otherwise, and
    first tries a wheel already on the machine with no index at all (this machine reaches no PyTorch index)."""
    make = (REPO / "Makefile").read_text()
    assert "TORCH_INDEX ?= https://download.pytorch.org/whl/cpu" in make
    first, fallback = [ln.strip() for ln in make.split("define install_torch", 1)[1].split("endef")[0].splitlines()
                       if "pip install" in ln]
    assert "--no-index" in first and "--no-deps" in first and '"$(TORCH_PIN)"' in first and "||" in first
    assert "$(TORCH_FROM)" in fallback
    assert make.count("$(call install_torch,") == 2       # the course's venv and the Colab-stack venv
    assert "TORCH_INDEX" in (REPO / "README.md").read_text(), "the README says how to get another build"


def test_colab_stack_is_tested_in_ci():
    """CI runs the widget tests and a slider chapter on Colab's own versions (ipywidgets 7 among them)."""
    constraints = _pins(REPO / "tests" / "colab" / "constraints.txt")
    assert constraints["ipywidgets"].startswith("7.") and constraints["tensorflow-cpu"].startswith("2.20")
    assert {"numpy", "matplotlib", "keras", "ipykernel", "ipython"} <= set(constraints)
    assert "torch" not in constraints, "torch stays the local CPU build (see the file's header)"
    assert re.search(r"copied 20\d\d-\d\d-\d\d", (REPO / "tests" / "colab" / "constraints.txt").read_text())
    assert "make test-colab-ci" in (REPO / ".ci" / "run").read_text()
    make = (REPO / "Makefile").read_text()
    assert "-c tests/colab/constraints.txt" in make and "notebooks/00_start_here.ipynb" in make
