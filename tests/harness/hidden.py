"""Hidden solutions, checked inside the kernel that executes the chapter.

Every exercise is a *starter* code cell that calls a checker, ``check_x(answer, ...)``, followed
by a markdown cell with a ``<details><summary>Solution</summary>`` block holding the solution's
``python`` code. Right after the starter cell has run (everything above has run, as for a
learner), :func:`check_source` runs the solution's code and calls the starter's checker three
ways: with the solution's answer (must return True), with None (must return False) and with a
wrong answer (must return False). The wrong answer is the solution's answer perturbed (``+ 1`` on
numbers, arrays and tensors, element-wise in dicts, tuples and lists, on the output of a function,
a changed string, a negated bool), or the expressions declared in the solution block as
``<!-- wrong: EXPR -->`` (evaluated in the kernel). A checker that raises fails too.

The check leaves the learner's state alone: the solution runs in a copy of the notebook's global
names (names earlier solutions defined are carried to later ones, as for a learner solving the
exercises in order), and the Python, NumPy and PyTorch random states are restored afterwards, so
the cells below print what they print without the checks.
"""
from __future__ import annotations

import json
import re

import nbformat

MARKER = "__HIDDEN_SOLUTIONS__"

_DETAILS = re.compile(r"<details>\s*<summary>\s*Solution\s*</summary>(.*?)</details>", re.S | re.I)
_CODE = re.compile(r"```python\n(.*?)```", re.S)
_WRONG = re.compile(r"<!--\s*wrong:\s*(.*?)\s*-->", re.S)
_CALL = re.compile(r"^\s*(?P<fn>(?:\w+\.)*check_\w+)\(\s*(?P<var>[A-Za-z_]\w*)\s*(?P<rest>,.*)?\)\s*(?:#.*)?$")

# Runs in the kernel, in a namespace of its own: no name is left in the notebook's globals.
KERNEL_CODE = r'''
import contextlib as _contextlib, io as _io, json as _json, random as _random, sys as _sys, types as _types


def _perturb(v):
    """A wrong answer of the same kind as v."""
    import numpy as np
    if callable(v):
        return lambda *a, **k: _perturb(v(*a, **k))
    if isinstance(v, dict):
        return {k: _perturb(x) for k, x in v.items()}
    if isinstance(v, str):
        return v + " (wrong)"
    if isinstance(v, (bool, np.bool_)):
        return not v
    if isinstance(v, (tuple, list)):
        return type(v)(_perturb(x) for x in v)
    return v + 1


def _random_states():
    import numpy as np
    states = {"random": _random.getstate(), "numpy": np.random.get_state()}
    if "torch" in _sys.modules:
        states["torch"] = _sys.modules["torch"].get_rng_state()
    return states


def _restore(states):
    import numpy as np
    _random.setstate(states["random"])
    np.random.set_state(states["numpy"])
    if "torch" in states:
        _sys.modules["torch"].set_rng_state(states["torch"])


def check(notebook_globals, name, solution, var, call, wrong):
    state = _sys.modules.setdefault("__course_hidden_solutions__", _types.ModuleType("__course_hidden_solutions__"))
    solved = state.__dict__.setdefault("solved", {})
    g = {**notebook_globals, **solved}
    out = {}

    def run_checker(value):
        g[var] = value
        with _contextlib.redirect_stdout(_io.StringIO()):
            verdict = eval(call, g)
        return verdict if isinstance(verdict, bool) else repr(verdict)

    states = _random_states()
    try:
        with _contextlib.redirect_stdout(_io.StringIO()):
            exec(compile(solution, name, "exec"), g)
        answer = g[var]
        out["solution"] = run_checker(answer)
        out["none"] = run_checker(None)
        wrongs = [eval(w, g) for w in wrong] or [_perturb(answer)]
        out["wrong"] = [run_checker(w) for w in wrongs]
        g[var] = answer
        solved.update({k: v for k, v in g.items()
                       if k not in notebook_globals or notebook_globals[k] is not v})
    except Exception as exc:  # the test reports it
        out["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        _restore(states)
    return MARKER + _json.dumps({name: out})
'''


def find_exercises(nb: nbformat.NotebookNode) -> list[dict]:
    """Exercises of a notebook, in order.

    Returns:
        One dict per solution block: ``name``, ``starter`` (index of the starter cell among all
        cells), ``code_cell`` (its number among code cells, as nbval counts them), ``var``,
        ``call``, ``solution`` (the block's python code) and ``wrong`` (declared wrong answers).
        The starter is the nearest code cell above the block with a line ``check_*(var, ...)``.
    """
    exercises, starter, code_num = [], None, -1
    for i, cell in enumerate(nb.cells):
        text = cell.source
        if cell.cell_type == "code":
            code_num += 1
            calls = [m for m in map(_CALL.match, text.splitlines()) if m]
            if calls:
                starter = (i, code_num, calls[-1])
            continue
        for block in _DETAILS.findall(text):
            if starter is None:
                raise AssertionError(f"cell {i}: a solution without a checker cell above it")
            index, number, m = starter
            call = f"{m.group('fn')}({m.group('var')}{m.group('rest') or ''})"
            exercises.append({"name": f"{m.group('fn')} (starter cell {index})", "starter": index,
                              "code_cell": number, "var": m.group("var"), "call": call,
                              "solution": "\n".join(_CODE.findall(block)), "wrong": _WRONG.findall(block)})
    return exercises


def check_source(exercise: dict) -> str:
    """The code of a cell that checks ``exercise`` in the kernel and prints its result line."""
    args = ", ".join(f"{k}={exercise[k]!r}" for k in ("name", "solution", "var", "call", "wrong"))
    return (f"__course_hs = {{'MARKER': {MARKER!r}}}\n"
            f"exec({KERNEL_CODE!r}, __course_hs)\n"
            f"print(__course_hs['check'](globals(), {args}))\n"
            "del __course_hs")


def parse_results(text: str) -> dict:
    """The results printed by :func:`check_source` cells in ``text`` (stdout), merged."""
    results = {}
    for line in text.splitlines():
        if MARKER in line:
            results.update(json.loads(line.split(MARKER, 1)[1]))
    return results


def problems(exercises: list[dict], results: dict) -> list[str]:
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


def instrumented(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` with a checking cell after every starter cell: the cells nbval runs in
    ``make test``, as one notebook (for a run outside nbval, such as the determinism check)."""
    exercises = find_exercises(nb)
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    by_starter: dict[int, list[dict]] = {}
    for ex in exercises:
        by_starter.setdefault(ex["starter"], []).append(ex)
    cells = []
    for i, cell in enumerate(nb.cells):
        cells.append(cell)
        cells += [nbformat.v4.new_code_cell(check_source(ex), metadata={"course_hidden_check": True})
                  for ex in by_starter.get(i, [])]
    nb.cells = cells
    return nb
