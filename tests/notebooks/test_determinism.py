"""Deterministic: a second run of a chapter prints the same numbers as ``make test``'s first.

The first run is nbval's (its outputs are in ``_build/executed/``); this test runs one short
chapter once more in a fresh kernel, with the same hidden-solution checks inserted (so both runs
execute the same code), and compares every printed line, except lines that report wall-clock
time, speed or memory (which legitimately vary between runs). Run on its own, with no executed
copy current, it runs the chapter twice.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from tests.harness.hidden import instrumented
from tests.harness.kernel import execute_notebook
from tests.harness.store import current_execution

REPO = Path(__file__).resolve().parents[2]
CHAPTER = REPO / "notebooks" / "01_background.ipynb"   # short (under 30 s) and prints many numbers
VOLATILE = re.compile(r"(\d\s*(ms|s|MB|MiB|GB)\b|/s\b|seconds|memory|iterations per second|threads?)", re.I)


def printed(nb: nbformat.NotebookNode) -> list[str]:
    """The stdout lines of the notebook's own code cells (not the inserted checks), volatile ones dropped."""
    lines = []
    for cell in nb.cells:
        if cell.cell_type != "code" or cell.metadata.get("course_hidden_check"):
            continue
        text = "".join(out.get("text", "") for out in cell.get("outputs", [])
                       if out.get("output_type") == "stream" and out.get("name") == "stdout")
        lines += [ln for ln in text.splitlines() if ln.strip() and not VOLATILE.search(ln)]
    return lines


def _run(path: Path) -> nbformat.NotebookNode:
    return execute_notebook(instrumented(nbformat.read(path, as_version=4)), path.parent, timeout=600,
                            source=path, by="determinism")


@pytest.mark.slow
@pytest.mark.after_notebooks
def test_a_second_run_prints_the_same_numbers():
    first = current_execution(CHAPTER)
    if first is not None:
        assert first.metadata["course_execution"]["ok"], f"{CHAPTER.name} failed under nbval; see its notebook test"
    else:   # run on its own: make the first run here
        first = _run(CHAPTER)
    second = _run(CHAPTER)
    a, b = printed(first), printed(second)
    assert len(a) > 5, "the notebook prints results"
    assert sum(any(ch.isdigit() for ch in ln) for ln in a) > 5, "…with numbers in them"
    assert a == b
