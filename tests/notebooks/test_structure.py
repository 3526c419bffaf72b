"""Every notebook is stored without outputs; every chapter follows the chapter template."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHAPTERS = [p for p in NOTEBOOKS if not p.name.startswith("00")]
TEMPLATE = ["setup", "1. concepts", "2. formulas", "3. pytorch code", "4. tensorflow code",
            "5. challenges", "summary", "references"]


def _nb(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _headings(nb, level):
    prefix = "#" * level + " "
    return [line[len(prefix):].strip() for c in nb["cells"] if c["cell_type"] == "markdown"
            for line in "".join(c["source"]).splitlines() if line.startswith(prefix)]


def test_there_are_notebooks():
    assert any(p.name.startswith("00_start_here") for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_without_outputs(path):
    nb = _nb(path)
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name} cell {i} has outputs"
            assert cell.get("execution_count") is None, f"{path.name} cell {i} has an execution count"
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_template(path):
    nb = _nb(path)
    number = int(path.name[:2])
    first = "".join(nb["cells"][0]["source"]).splitlines()[0]
    assert re.match(rf"# {number}\. \S", first), f"first line must be '# {number}. Title', got {first!r}"
    h2 = [h.lower() for h in _headings(nb, 2)]
    positions = []
    for section in TEMPLATE:
        hits = [i for i, h in enumerate(h2) if h.startswith(section)]
        assert hits, f"{path.name}: missing '## {section}' (have {h2})"
        positions.append(hits[0])
    assert positions == sorted(positions), f"{path.name}: template sections out of order: {h2}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_asserts_and_challenges(path):
    nb = _nb(path)
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    markdown = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert code.count("assert ") >= 3, "a chapter asserts what it teaches"
    assert len(re.findall(r"\bcheck_\w+\(", code)) >= 3, "three or more exercises with checkers"
    assert markdown.count("<details>") >= 3, "hidden solutions in <details> blocks"
    assert "set_seed(" in code
    setup = [c for c in nb["cells"] if c["cell_type"] == "markdown" and "".join(c["source"]).startswith("## Setup")]
    assert setup


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_code_cells_are_short(path):
    nb = _nb(path)
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            n = len("".join(cell["source"]).splitlines())
            assert n <= 40, f"{path.name} cell {i} has {n} lines: move reusable code into course_utils"
