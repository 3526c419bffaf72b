"""Deterministic, and sized for the CPUs it gets: a second run of a chapter on ONE CPU prints the
same numbers as ``make test``'s first.

The first run is nbval's (its outputs are in ``_build/executed/``, one thread per framework by the
root ``conftest.py``). This test runs one short chapter once more in a fresh kernel, with the same
hidden-solution checks inserted (so both runs execute the same code), under a simulated 1-CPU quota: the
kernel sees a cgroup whose ``cpu.max`` allows one CPU (``COURSE_CGROUP_ROOT`` points at it; this
machine has two cores, which PyTorch alone would use) and inherits no thread setting
(``COURSE_THREADS``, ``OMP_NUM_THREADS``, ...), so the course must size PyTorch's and TensorFlow's
pools itself from the CPUs it may use (``course_utils.env.usable_cpus``), as on Binder's 1-CPU quota. A last cell
asserts it did. Every printed line is compared, except lines that report wall-clock time, speed or
memory (which legitimately vary between runs). Run on its own, with no executed copy current, it
makes the first run too.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from course_utils.env import THREAD_VARIABLES
from tests.harness.hidden import instrumented
from tests.harness.kernel import execute_notebook
from tests.harness.store import current_execution

REPO = Path(__file__).resolve().parents[2]
CHAPTER = REPO / "notebooks" / "01_background.ipynb"   # short (under 30 s) and prints many numbers
VOLATILE = re.compile(r"(\d\s*(ms|s|MB|MiB|GB)\b|/s\b|seconds|memory|iterations per second|threads?)", re.I)
ONE_CPU_CHECK = """\
import os, sys
import torch
from course_utils.env import usable_cpus
assert usable_cpus() == 1, usable_cpus()
assert torch.get_num_threads() == 1, f"PyTorch uses {torch.get_num_threads()} threads on 1 CPU"
if "tensorflow" in sys.modules:
    assert os.environ.get("TF_NUM_INTRAOP_THREADS") == "1", os.environ.get("TF_NUM_INTRAOP_THREADS")
"""


def printed(nb: nbformat.NotebookNode) -> list[str]:
    """The stdout lines of the notebook's own code cells (not inserted ones), volatile ones dropped."""
    lines = []
    for cell in nb.cells:
        if cell.cell_type != "code" or cell.metadata.get("course_hidden_check") or cell.metadata.get("course_harness"):
            continue
        text = "".join(out.get("text", "") for out in cell.get("outputs", [])
                       if out.get("output_type") == "stream" and out.get("name") == "stdout")
        lines += [ln for ln in text.splitlines() if ln.strip() and not VOLATILE.search(ln)]
    return lines


def _run(path: Path, *, quota_root: Path | None = None) -> nbformat.NotebookNode:
    """Run ``path`` (with the checks inserted); under a 1-CPU quota written in ``quota_root`` if given."""
    nb = instrumented(nbformat.read(path, as_version=4))
    env = None
    if quota_root is not None:
        (quota_root / "cpu.max").write_text("100000 100000\n")   # quota = period: one CPU
        nb.cells.append(nbformat.v4.new_code_cell(ONE_CPU_CHECK, metadata={"course_harness": True}))
        env = {"COURSE_CGROUP_ROOT": str(quota_root), **{name: None for name in THREAD_VARIABLES}}
    return execute_notebook(nb, path.parent, timeout=600, source=path, by="determinism", env=env)


@pytest.mark.slow
@pytest.mark.after_notebooks
def test_a_second_run_on_one_cpu_prints_the_same_numbers(tmp_path):
    first = current_execution(CHAPTER)
    if first is not None:
        assert first.metadata["course_execution"]["ok"], f"{CHAPTER.name} failed under nbval; see its notebook test"
    else:   # run on its own: make the first run here
        first = _run(CHAPTER)
    second = _run(CHAPTER, quota_root=tmp_path)   # raises if the 1-CPU check (the last cell) fails
    a, b = printed(first), printed(second)
    assert len(a) > 5, "the notebook prints results"
    assert sum(any(ch.isdigit() for ch in ln) for ln in a) > 5, "…with numbers in them"
    assert a == b
