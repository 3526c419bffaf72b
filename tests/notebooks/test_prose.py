"""Learner-facing prose: markdown in steps (no walls of text), and no project-process language."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PENDING: dict[str, str] = {}  # notebook name -> reason, for a chapter whose fix lands in a follow-up (strict xfail)
MAX_CHARS = 2000           # a markdown cell is one step, not a wall (DEVELOPERS.md)
_REFERENCES = re.compile(r"^#+\s*References\b.*$", re.M)
_PROCESS = re.compile(r"\b(the issue|this issue|issue asks|the ticket|the brief)\b", re.I)


def _markdown(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [(i, "".join(c["source"])) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown"]


def _params(pending):
    return [pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=pending[p.name])) if p.name in pending
            else p for p in NOTEBOOKS]


@pytest.mark.parametrize("path", _params(PENDING), ids=lambda p: p.name)
def test_markdown_cells_are_steps(path):
    """Prose cells stay under ~2,000 characters; a References list is exempt (it is a list)."""
    long = [(i, len(_REFERENCES.split(text, maxsplit=1)[0])) for i, text in _markdown(path)
            if len(_REFERENCES.split(text, maxsplit=1)[0]) > MAX_CHARS]
    assert not long, f"{path.name}: markdown cells (index, characters) over {MAX_CHARS}: {long}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_project_process_language(path):
    hits = [(i, m.group(0)) for i, text in _markdown(path) for m in _PROCESS.finditer(text)]
    assert not hits, f"{path.name}: learner-facing text speaks of the project's process: {hits}"
