"""Every hidden solution passes its own checker, and the checker rejects None and a wrong answer.

The checks themselves run inside nbval's one execution of each chapter (``make test``): the
plugin :mod:`tests.harness.plugin` adds an item after each exercise's starter cell that runs the
exercise's hidden solution in the chapter's kernel (:mod:`tests.harness.hidden`). Here: every
solution block has code and a starter cell whose checker call the plugin can find, and, on a tiny
notebook run by nbval with the plugin in a child pytest, a planted wrong solution, a checker that
accepts anything and a checker that raises each fail the run while a sound exercise passes, and
the learner's state (names, random numbers) is the same after the checks as without them.
"""
from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest

from tests.harness.hidden import find_exercises, instrumented

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"


def _chapters():
    return [pytest.param(p, id=p.name) for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
            if "<details>" in p.read_text(encoding="utf-8")]


@pytest.mark.parametrize("path", _chapters())
def test_every_solution_block_has_code_and_a_checker(path):
    nb = nbformat.read(path, as_version=4)
    exercises = find_exercises(nb)
    assert len(exercises) >= 3
    missing = [ex["name"] for ex in exercises if not ex["solution"].strip()]
    assert not missing, f"solutions without a ```python block: {missing}"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    for ex in exercises:   # the plugin puts the check after code cell ex["code_cell"]: that is the starter
        assert code[ex["code_cell"]] is nb.cells[ex["starter"]] and ex["var"] in code[ex["code_cell"]].source
    checks = [c for c in instrumented(nb).cells if c.metadata.get("course_hidden_check")]
    assert len(checks) == len(exercises)


def _tiny_notebook():
    """Four exercises (a sound one, a wrong solution, a checker accepting anything, a checker that
    raises), with cells around them that would see any state the checks leaked."""
    cells = [
        nbformat.v4.new_code_cell("import numpy as np\nnp.random.seed(0)\nEXPECTED = np.random.RandomState(0).rand(2)\n"
                                  "def check_good(a):\n    return a == 3\n"
                                  "def check_lenient(a):\n    return True\n"
                                  "def check_raises(a):\n    return float(a) == 3.0"),
        nbformat.v4.new_code_cell("x = None\ncheck_good(x)"),
        nbformat.v4.new_markdown_cell("<details><summary>Solution</summary>\n\n```python\nhelper = 3\n"
                                      "noise = np.random.rand(5)\nx = helper\n```\n</details>"),
        nbformat.v4.new_code_cell("y = None\ncheck_good(y)"),
        nbformat.v4.new_markdown_cell("<details><summary>Solution</summary>\n\n```python\ny = helper + 1\n```\n"
                                      "</details>"),
        nbformat.v4.new_code_cell("z = None\ncheck_lenient(z)"),
        nbformat.v4.new_markdown_cell("<details><summary>Solution</summary>\n\n```python\nz = 3\n```\n</details>"),
        nbformat.v4.new_code_cell("w = 3\ncheck_raises(w)"),
        nbformat.v4.new_markdown_cell("<details><summary>Solution</summary>\n\n```python\nw = 3\n```\n"
                                      "<!-- wrong: 2 -->\n</details>"),
        # The learner's state after the checks: no solution's names, the same random numbers.
        nbformat.v4.new_code_cell("assert x is None and y is None and z is None and 'helper' not in globals()\n"
                                  "assert np.allclose(np.random.rand(2), EXPECTED)\nprint('state untouched')"),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.mark.slow
def test_planted_errors_fail_the_nbval_run(tmp_path):
    nbformat.write(_tiny_notebook(), tmp_path / "tiny.ipynb")
    junit = tmp_path / "junit.xml"
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_EXECUTION_LOG", "PYTEST_XDIST_WORKER")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "tiny.ipynb"), "--nbval-lax",
                           "--nbval-current-env", "-p", "tests.harness.plugin", "-p", "no:cacheprovider",
                           "-p", "no:xdist", "--rootdir", str(tmp_path), f"--junitxml={junit}", "-q"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]    # 1: some tests failed
    outcome = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        failure = case.find("failure")
        outcome[case.get("name")] = "passed" if failure is None else failure.get("message", "") + (failure.text or "")
    checks = {name: result for name, result in outcome.items() if "hidden solution" in name}
    assert len(checks) == 4, outcome
    assert checks["Cell 1 hidden solution check_good"] == "passed"                       # sound: passes
    assert "rejects its own solution" in checks["Cell 2 hidden solution check_good"]       # planted wrong solution
    assert "does not reject None" in checks["Cell 3 hidden solution check_lenient"]        # accepts anything
    assert "accepts a wrong answer" in checks["Cell 3 hidden solution check_lenient"]
    assert "TypeError" in checks["Cell 4 hidden solution check_raises"]                    # a checker that raises
    cells = {name: result for name, result in outcome.items() if "hidden" not in name}
    assert len(cells) == 6 and all(result == "passed" for result in cells.values()), cells
