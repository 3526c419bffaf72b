"""Deterministic: two runs of a notebook print the same numbers.

Runs two short chapters twice each in fresh kernels and compares every printed line, except
lines that report wall-clock time, speed or memory (which legitimately vary between runs).
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from book.execute import execute_notebook

REPO = Path(__file__).resolve().parents[2]
VOLATILE = re.compile(r"(\d\s*(ms|s|MB|MiB|GB)\b|/s\b|seconds|memory|iterations per second|threads?)", re.I)


def _printed(path: Path) -> list[str]:
    nb = execute_notebook(nbformat.read(path, as_version=4), path.parent, timeout=600)
    lines = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                lines += [ln for ln in out["text"].splitlines() if ln.strip() and not VOLATILE.search(ln)]
    return lines


@pytest.mark.slow
@pytest.mark.parametrize("name", ["01_background.ipynb", "03_transfer_learning.ipynb"])
def test_two_runs_print_the_same_numbers(name):
    first, second = _printed(REPO / "notebooks" / name), _printed(REPO / "notebooks" / name)
    assert len(first) > 5, "the notebook prints results"
    assert sum(any(ch.isdigit() for ch in ln) for ln in first) > 5, "…with numbers in them"
    assert first == second
