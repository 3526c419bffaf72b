"""The pytest plugin behind ``make test``'s notebook run (loaded by the root ``conftest.py``).

1. **Which notebooks run.** nbval executes the notebooks of the folders listed in
   ``pyproject.toml`` under ``[tool.course.tests] notebook_folders`` (``notebooks`` today); a
   notebook in any other folder of the repository, ``notebooks/zh/`` included, is not collected.
2. **Hidden solutions in the same execution.** After each exercise's starter cell, an extra item
   runs that exercise's hidden solution through its checker in the kernel nbval is already
   executing the chapter in (:mod:`tests.harness.hidden`); no second kernel runs the chapter.
3. **One execution, reused.** When a notebook's last cell has run, its outputs are written to
   ``_build/executed/`` (:mod:`tests.harness.store`) for the site, the slides and the
   determinism check, and every execution is counted in the execution log when one is configured.
4. **Two workers.** Under pytest-xdist (``--dist loadfile``) a notebook and its items stay on one
   worker, in order; notebooks are queued first, slowest first, then the other test files, so the
   two workers finish together. Items marked ``after_notebooks`` run last (``make test`` runs
   them, with the browser tests, in a second pass after every notebook has been executed).
"""
from __future__ import annotations

import tomllib
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import nbformat
import pytest

from tests.harness.hidden import check_source, find_exercises, parse_results, problems
from tests.harness.store import REPO, record_execution, read_log, summarise, write_executed

# Seconds each chapter took under nbval on the 2-core machine (one thread per kernel, the other
# worker busy): only the order in which the two workers take the notebooks (slowest first).
# A notebook missing here is queued after the listed ones; stale numbers cost balance, not
# correctness.
NOTEBOOK_SECONDS = {"06_maml.ipynb": 265, "09_black_box.ipynb": 167, "07_first_order.ipynb": 144,
                    "12_challenges_and_future.ipynb": 125, "08_metric_based.ipynb": 92,
                    "10_learned_optimisers.ipynb": 91, "05_meta_regression.ipynb": 74,
                    "04_meta_classification.ipynb": 41, "11_article_code.ipynb": 36,
                    "03_transfer_learning.ipynb": 21, "01_background.ipynb": 21, "02_frameworks.ipynb": 13,
                    "00_start_here.ipynb": 10}


@lru_cache(maxsize=1)
def notebook_folders() -> tuple[Path, ...]:
    """The folders whose notebooks nbval executes (``[tool.course.tests] notebook_folders``)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    folders = config.get("tool", {}).get("course", {}).get("tests", {}).get("notebook_folders", ["notebooks"])
    return tuple((REPO / folder).resolve() for folder in folders)


def is_executed_folder(path: Path) -> bool:
    return Path(path).resolve().parent in notebook_folders()


def _in_repo(path: Path) -> bool:
    try:
        Path(path).resolve().relative_to(REPO)
        return True
    except ValueError:
        return False


def pytest_ignore_collect(collection_path: Path, config):
    """Collect a notebook of the repository only from the configured folders."""
    if collection_path.suffix == ".ipynb" and _in_repo(collection_path) and not is_executed_folder(collection_path):
        return True
    return None


# --- nbval items ----------------------------------------------------------------------------------

def _nbval_cell_class():
    from nbval.plugin import IPyNbCell

    return IPyNbCell


def is_nbval_cell(item) -> bool:
    """A cell of the stored notebook (not one of the checks this plugin adds)."""
    return type(item).__name__ == "IPyNbCell"


class HiddenSolutionError(AssertionError):
    """A hidden solution failed its checker, or the checker accepted None or a wrong answer."""


@lru_cache(maxsize=1)
def _hidden_item_class():
    base = _nbval_cell_class()

    class HiddenSolutionCheck(base):
        """Runs one exercise's hidden solution through its checker in the chapter's own kernel."""

        def __init__(self, *, exercise: dict, **kwargs):
            super().__init__(**kwargs)
            self.exercise = exercise

        def runtest(self):
            super().runtest()   # an exception in the kernel fails here, with its traceback
            text = "".join(out.get("text", "") for out in (self.test_outputs or [])
                           if out.get("output_type") == "stream" and out.get("name") == "stdout")
            bad = problems([self.exercise], parse_results(text))
            if bad:
                raise HiddenSolutionError("\n".join(bad))

        def repr_failure(self, excinfo):
            if excinfo.errisinstance(HiddenSolutionError):
                return f"{Path(str(self.fspath)).name}, after code cell {self.cell_num}: {excinfo.value}"
            return super().repr_failure(excinfo)

        def reportinfo(self):
            return self.fspath, 0, f"{self.name} ({self.exercise['call']})"

    return HiddenSolutionCheck


def hidden_solution_items(cell_item) -> list:
    """The checks to run right after ``cell_item``: one per exercise whose starter it is."""
    nb = cell_item.parent.nb
    if "<details>" not in "".join(c.source for c in nb.cells if c.cell_type == "markdown"):
        return []
    cls = _hidden_item_class()
    options = defaultdict(bool, check=False)
    return [cls.from_parent(cell_item.parent, cell_num=cell_item.cell_num,
                            name=f"Cell {cell_item.cell_num} hidden solution {ex['call'].split('(')[0]}",
                            cell=nbformat.v4.new_code_cell(check_source(ex)),
                            options=options, exercise=ex)
            for ex in _exercises(cell_item.parent) if ex["code_cell"] == cell_item.cell_num]


def _exercises(notebook_item) -> list[dict]:
    if not hasattr(notebook_item, "_course_exercises"):
        notebook_item._course_exercises = find_exercises(notebook_item.nb)
    return notebook_item._course_exercises


_LAST_CELL: dict[str, str] = {}   # notebook path -> nodeid of its last collected nbval cell


def _cost(item) -> tuple:
    """Sort key: notebooks first, slowest first; then everything else in collection order."""
    if is_nbval_cell(item) or type(item).__name__ == "HiddenSolutionCheck":
        name = Path(str(item.fspath)).name
        return (0, -NOTEBOOK_SECONDS.get(name, 0.0), name)
    return (1, 0.0, "")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    expanded = []
    for item in items:
        expanded.append(item)
        if is_nbval_cell(item):
            expanded += hidden_solution_items(item)
    later = [item for item in expanded if item.get_closest_marker("after_notebooks")]
    now = [item for item in expanded if not item.get_closest_marker("after_notebooks")]
    now.sort(key=_cost)   # stable: each notebook's items keep their order
    items[:] = now + later
    _LAST_CELL.clear()
    for item in items:
        if is_nbval_cell(item):
            _LAST_CELL[str(item.fspath)] = item.nodeid


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if call.when != "call" or not is_nbval_cell(item):
        return
    path = Path(str(item.fspath))
    if not (_in_repo(path) and is_executed_folder(path)):
        return
    report = outcome.get_result()
    record = item.parent.__dict__.setdefault("_course_record", {"ok": True, "outputs": {}})
    if not record["outputs"]:
        record_execution(path, by="nbval")
    record["outputs"][item.cell_num] = list(getattr(item, "test_outputs", None) or [])  # nbval's own list
    record["ok"] = record["ok"] and not report.failed
    if _LAST_CELL.get(str(item.fspath)) == item.nodeid:
        _write_executed(path, record)


def _write_executed(path: Path, record: dict) -> None:
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]   # nbval numbers code cells only
    for number, cell in enumerate(code):
        cell.outputs = [_as_output(out) for out in record["outputs"].get(number, [])]
    ran_all = len(record["outputs"]) == len(code)
    write_executed(nb, path, ok=record["ok"] and ran_all, by="nbval")


def _as_output(out):
    kind = out.get("output_type")
    if kind == "stream":
        return nbformat.v4.new_output("stream", name=out["name"], text=out["text"])
    if kind == "error":
        return nbformat.v4.new_output("error", ename=out["ename"], evalue=out["evalue"], traceback=out["traceback"])
    return nbformat.v4.new_output("display_data", data=out["data"], metadata=out.get("metadata", {}))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    rows = read_log()
    if rows and not hasattr(config, "workerinput"):
        terminalreporter.write_sep("-", "notebook executions so far in this make test")
        terminalreporter.write_line(summarise(rows)[0])
