"""Every hidden solution passes its own checker, and the checker rejects None and a wrong answer.

For each chapter the notebook is executed ONCE (nbclient, a fresh kernel), with a cell injected after
each exercise's starter cell. That cell runs the code of the exercise's ``<details>`` solution in the
kernel's state at that point (everything above has run, as for a learner), then calls the starter's
checker three ways: with the solution's answer (must return True), with None (must return False) and
with a wrong answer (must return False). The wrong answer is the solution's answer perturbed
(``+ 1`` on numbers, arrays and tensors, element-wise in dicts and tuples, on the output of a
function, a changed string), or the expressions declared in the solution block as
``<!-- wrong: EXPR -->`` (evaluated in the kernel). A checker that raises fails too. The results
come back as one JSON line printed by a last injected cell.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from book.execute import execute_notebook

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
SKIP: dict[str, str] = {}   # notebook name -> why its solutions are not run (none today)
MARKER = "__HIDDEN_SOLUTIONS__"

_DETAILS = re.compile(r"<details>\s*<summary>\s*Solution\s*</summary>(.*?)</details>", re.S | re.I)
_CODE = re.compile(r"```python\n(.*?)```", re.S)
_WRONG = re.compile(r"<!--\s*wrong:\s*(.*?)\s*-->", re.S)
_CALL = re.compile(r"^\s*(?P<fn>(?:\w+\.)*check_\w+)\(\s*(?P<var>[A-Za-z_]\w*)\s*(?P<rest>,.*)?\)\s*(?:#.*)?$")

KERNEL_HELPERS = r'''
import contextlib as _hs_contextlib, io as _hs_io, json as _hs_json
_HS_RESULTS = {}

def _hs_perturb(v):
    """A wrong answer of the same kind as v."""
    import numpy as _np
    if callable(v):
        return lambda *a, **k: _hs_perturb(v(*a, **k))
    if isinstance(v, dict):
        return {k: _hs_perturb(x) for k, x in v.items()}
    if isinstance(v, str):
        return v + " (wrong)"
    if isinstance(v, (bool, _np.bool_)):
        return not v
    if isinstance(v, (tuple, list)):
        return type(v)(_hs_perturb(x) for x in v)
    return v + 1

def _hs_check(name, solution, var, call, wrong):
    g = globals()
    out = {}
    def run_checker(value):
        g[var] = value
        with _hs_contextlib.redirect_stdout(_hs_io.StringIO()):
            verdict = eval(call, g)
        return verdict if isinstance(verdict, bool) else repr(verdict)
    try:
        with _hs_contextlib.redirect_stdout(_hs_io.StringIO()):
            exec(compile(solution, name, "exec"), g)
        answer = g[var]
        out["solution"] = run_checker(answer)
        out["none"] = run_checker(None)
        wrongs = [eval(w, g) for w in wrong] or [_hs_perturb(answer)]
        out["wrong"] = [run_checker(w) for w in wrongs]
        g[var] = answer
    except Exception as exc:  # the test reports it
        out["error"] = f"{type(exc).__name__}: {exc}"
    _HS_RESULTS[name] = out
'''


def find_exercises(nb) -> list[dict]:
    """Exercises of a notebook: ``{name, starter (cell index), var, call, solution, wrong}``.

    The starter is the nearest code cell above a solution block whose line calls ``check_*(var, ...)``.
    """
    exercises, starter = [], None
    for i, cell in enumerate(nb.cells):
        text = cell.source
        if cell.cell_type == "code":
            calls = [m for m in map(_CALL.match, text.splitlines()) if m]
            if calls:
                starter = (i, calls[-1])
            continue
        for block in _DETAILS.findall(text):
            if starter is None:
                raise AssertionError(f"cell {i}: a solution without a checker cell above it")
            index, m = starter
            call = f"{m.group('fn')}({m.group('var')}{m.group('rest') or ''})"
            exercises.append({"name": f"{m.group('fn')} (starter cell {index})", "starter": index,
                              "var": m.group("var"), "call": call,
                              "solution": "\n".join(_CODE.findall(block)), "wrong": _WRONG.findall(block)})
    return exercises


def inject(nb, exercises):
    """A copy of ``nb`` with the helper cell first and a checking cell after every starter cell."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    by_starter = {}
    for ex in exercises:
        by_starter.setdefault(ex["starter"], []).append(ex)
    cells = [nbformat.v4.new_code_cell(KERNEL_HELPERS)]
    for i, cell in enumerate(nb.cells):
        cells.append(cell)
        for ex in by_starter.get(i, []):
            args = ", ".join(repr(ex[k]) for k in ("name", "solution", "var", "call", "wrong"))
            cells.append(nbformat.v4.new_code_cell(f"_hs_check({args})"))
    cells.append(nbformat.v4.new_code_cell(f"print({MARKER!r} + _hs_json.dumps(_HS_RESULTS))"))
    nb.cells = cells
    return nb


def run_and_collect(nb, path: Path) -> dict:
    """Execute the injected notebook in a fresh kernel and return the per-exercise results."""
    nb = execute_notebook(nb, path)
    for out in nb.cells[-1].get("outputs", []):
        text = out.get("text", "")
        if MARKER in text:
            return json.loads(text.split(MARKER, 1)[1])
    raise AssertionError("the results cell printed nothing")


def problems(exercises, results) -> list[str]:
    """What went wrong, one line per failure (empty when every checker behaves)."""
    bad = []
    for ex in exercises:
        r = results.get(ex["name"], {"error": "not run"})
        if not ex["solution"].strip():
            bad.append(f"{ex['name']}: the solution block has no ```python code")
        elif "error" in r:
            bad.append(f"{ex['name']}: {r['error']}")
        else:
            if r["solution"] is not True:
                bad.append(f"{ex['name']}: the checker rejects its own solution ({r['solution']})")
            if r["none"] is not False:
                bad.append(f"{ex['name']}: the checker does not reject None ({r['none']})")
            if any(w is not False for w in r["wrong"]):
                bad.append(f"{ex['name']}: the checker accepts a wrong answer ({r['wrong']})")
    return bad


def _chapters(skip: dict):
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        if "<details>" not in path.read_text(encoding="utf-8"):
            continue
        marks = [pytest.mark.skip(reason=skip[path.name])] if path.name in skip else []
        yield pytest.param(path, marks=marks, id=path.name)


@pytest.mark.parametrize("path", list(_chapters({})))
def test_every_solution_block_has_code_and_a_checker(path):
    exercises = find_exercises(nbformat.read(path, as_version=4))
    assert len(exercises) >= 3
    missing = [ex["name"] for ex in exercises if not ex["solution"].strip()]
    assert not missing, f"solutions without a ```python block: {missing}"


@pytest.mark.slow
@pytest.mark.parametrize("path", list(_chapters(SKIP)))
def test_hidden_solutions_pass_and_wrong_answers_fail(path):
    nb = nbformat.read(path, as_version=4)
    exercises = find_exercises(nb)
    results = run_and_collect(inject(nb, exercises), path.parent)
    bad = problems(exercises, results)
    assert not bad, f"{path.name}:\n" + "\n".join(bad)


def _tiny_notebook():
    """Four exercises: a sound one, a wrong solution, a checker accepting anything, a checker that raises."""
    cells = [
        nbformat.v4.new_code_cell("def check_good(a):\n    return a == 3\n"
                                  "def check_lenient(a):\n    return True\n"
                                  "def check_raises(a):\n    return float(a) == 3.0"),
        nbformat.v4.new_code_cell("x = None\ncheck_good(x)"),
        nbformat.v4.new_markdown_cell("<details><summary>Solution</summary>\n\n```python\nx = 3\n```\n</details>"),
        nbformat.v4.new_code_cell("y = None\ncheck_good(y)"),
        nbformat.v4.new_markdown_cell("<details><summary>Solution</summary>\n\n```python\ny = 4\n```\n</details>"),
        nbformat.v4.new_code_cell("z = None\ncheck_lenient(z)"),
        nbformat.v4.new_markdown_cell("<details><summary>Solution</summary>\n\n```python\nz = 3\n```\n</details>"),
        nbformat.v4.new_code_cell("w = None\ncheck_raises(w)  # a starter that raises: the learner's first run"),
        nbformat.v4.new_markdown_cell("<details><summary>Solution</summary>\n\n```python\nw = 3\n```\n"
                                      "<!-- wrong: 2 -->\n</details>"),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_injection_catches_planted_errors(tmp_path):
    nb = _tiny_notebook()
    nb.cells[7].source = "w = 3\ncheck_raises(w)"   # the starter itself must run for the notebook to execute
    exercises = find_exercises(nb)
    assert [ex["var"] for ex in exercises] == ["x", "y", "z", "w"] and exercises[3]["wrong"] == ["2"]
    results = run_and_collect(inject(nb, exercises), tmp_path)
    bad = problems(exercises, results)
    assert not any("check_good (starter cell 1)" in b for b in bad), bad             # sound: no complaint
    assert any("starter cell 3" in b and "rejects its own solution" in b for b in bad)  # planted wrong solution
    assert any("starter cell 5" in b and "does not reject None" in b for b in bad)      # a checker accepting None
    assert any("starter cell 5" in b and "accepts a wrong answer" in b for b in bad)
    assert any("starter cell 7" in b and "TypeError" in b for b in bad)                 # a checker that raises
