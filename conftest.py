"""Root pytest configuration, shared by tests/ and the nbval run over notebooks/.

A checkout that sits beside the course's offline data folder (``../shared/data/omniglot``, as on
the course's CI machines) uses it unless ``COURSE_DATA_DIR`` is already set. Notebook kernels
started by nbval inherit this environment.
"""
import os
from pathlib import Path

_offline = Path(__file__).resolve().parent.parent / "shared" / "data" / "omniglot"
if "COURSE_DATA_DIR" not in os.environ and (_offline / "omniglot28.npz").is_file():
    os.environ["COURSE_DATA_DIR"] = str(_offline)
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# --- One execution of every notebook, reused by the site and slides -------------------------
# nbval executes each notebook once in `make test`. After a notebook's last cell has run, its
# cells' outputs (nbval keeps them on each cell item as ``test_outputs``) are written to
# _build/executed/ with the stored notebook's hash, so that the site and slides tests (ordered
# after the notebooks, below) build from this execution instead of running the chapters again.
# Items marked ``after_notebooks`` move to the end of the run.

import pytest  # noqa: E402

_LAST_CELL = {}   # notebook path -> nodeid of its last collected nbval cell


def _is_nbval_cell(item) -> bool:
    return hasattr(item, "cell") and hasattr(item, "cell_num") and type(item).__name__ == "IPyNbCell"


def pytest_collection_modifyitems(session, config, items):
    later = [item for item in items if item.get_closest_marker("after_notebooks")]
    if later:
        items[:] = [item for item in items if not item.get_closest_marker("after_notebooks")] + later
    for item in items:
        if _is_nbval_cell(item):
            _LAST_CELL[str(item.fspath)] = item.nodeid


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if call.when != "call" or not _is_nbval_cell(item):
        return
    report = outcome.get_result()
    record = item.parent.__dict__.setdefault("_course_record", {"ok": True, "outputs": {}})
    record["outputs"][item.cell_num] = list(getattr(item, "test_outputs", None) or [])  # nbval's own list
    record["ok"] = record["ok"] and not report.failed
    if _LAST_CELL.get(str(item.fspath)) == item.nodeid:
        _write_executed(Path(str(item.fspath)), record)


def _write_executed(path: Path, record: dict) -> None:
    import nbformat

    from book.execute import write_executed

    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]   # nbval numbers code cells only
    for number, cell in enumerate(code):
        cell.outputs = [_as_output(out) for out in record["outputs"].get(number, [])]
    ran_all = len(record["outputs"]) == len(code)
    write_executed(nb, path, ok=record["ok"] and ran_all, by="nbval")


def _as_output(out):
    import nbformat

    kind = out.get("output_type")
    if kind == "stream":
        return nbformat.v4.new_output("stream", name=out["name"], text=out["text"])
    if kind == "error":
        return nbformat.v4.new_output("error", ename=out["ename"], evalue=out["evalue"], traceback=out["traceback"])
    return nbformat.v4.new_output("display_data", data=out["data"], metadata=out.get("metadata", {}))
