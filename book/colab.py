"""The Colab cell: the first code cell of every chapter. In Colab it fetches the course and what
Colab lacks, and points the data loader at a cache folder; anywhere else it does nothing.

The cell is plain Python with no import of the course (it runs before the course is installed).
``python -m book.build sync`` writes it into every notebook from the configured repository URL and
``requirements.txt``; the tests check the notebooks carry exactly this text and run it off Colab.
"""
from __future__ import annotations

import re

from book.config import REPO, launch

MARKER = "# Colab only"
# import name -> the requirements.txt package that provides it: what the chapters import at run
# time. Colab ships its own torch, TensorFlow, NumPy and the rest, so only a missing one is installed.
RUNTIME = {"torch": "torch", "tensorflow": "tensorflow-cpu", "numpy": "numpy", "matplotlib": "matplotlib",
           "ipywidgets": "ipywidgets", "tqdm": "tqdm", "PIL": "pillow", "psutil": "psutil"}
DATA_CACHE = "/content/course_data"
CHECKOUT = "/content/learning-to-learn"

_TEMPLATE = '''# Colab only: fetch the course, install what Colab lacks, cache Omniglot. Elsewhere: nothing.
import importlib, importlib.util, os, subprocess, sys
if "google.colab" in sys.modules and importlib.util.find_spec("course_utils") is None:
    REPO, BRANCH, HOME = "{repository}", "{branch}", "{checkout}"
    PINS = {pins}
    if not os.path.isdir(HOME):
        subprocess.run(["git", "clone", "--depth", "1", "--branch", BRANCH, REPO, HOME], check=True)
    lacking = [pin for module, pin in PINS.items() if importlib.util.find_spec(module) is None]
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", HOME], check=True)
    if lacking:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *lacking], check=True)
    importlib.invalidate_caches()
    os.environ.setdefault("COURSE_DATA_DIR", "{data}")  # Omniglot is downloaded (and checked) here once
    os.chdir(os.path.join(HOME, "notebooks"))'''


def pins() -> dict[str, str]:
    """``{import name: "package==version"}`` for the run-time packages, from requirements.txt."""
    text = (REPO / "requirements.txt").read_text(encoding="utf-8")
    versions = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", text, re.M))
    return {module: f"{package}=={versions[package]}" for module, package in RUNTIME.items()}


def cell_source() -> str:
    """The Colab cell's source for the configured repository and the current pins."""
    where = launch()
    return _TEMPLATE.format(repository=where.repository, branch=where.branch, checkout=CHECKOUT,
                            data=DATA_CACHE, pins=repr(pins()))
