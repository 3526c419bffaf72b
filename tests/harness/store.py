"""Executed copies of the notebooks, and the log that counts notebook executions.

``make test`` executes every chapter once, under nbval. When a chapter's last cell has run, the
plugin writes the notebook with those outputs to ``_build/executed/<name>`` tagged with the hash
of the stored source; the site, the slides and the determinism check read that copy instead of
running the chapter again.

Every execution of a notebook (nbval's, :func:`tests.harness.kernel.execute_notebook`'s, a
browser test's) appends one line to the log named by ``$COURSE_EXECUTION_LOG`` when that variable
is set (``make test`` sets it and clears the file first). ``python -m tests.harness.store`` prints
the count per notebook and, with ``--max-extra N``, fails when the run executed more than each
executed-by-nbval notebook once plus ``N`` other full executions.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections import Counter
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
BUILD = REPO / "_build"              # ignored: executed copies, the site and the slides
EXECUTED = BUILD / "executed"
LOG_ENV = "COURSE_EXECUTION_LOG"
EXECUTED_ENV = "COURSE_EXECUTED_DIR"   # another stack's run (make test-colab) keeps its copies apart


def executed_dir() -> Path:
    """Where executed copies go: ``$COURSE_EXECUTED_DIR`` if set, else ``_build/executed``."""
    value = os.environ.get(EXECUTED_ENV)
    if not value:
        return EXECUTED
    path = Path(value)
    return path if path.is_absolute() else REPO / path


def source_hash(path: Path) -> str:
    """SHA-256 of the stored notebook's cell types and sources (what an execution depends on)."""
    nb = nbformat.read(path, as_version=4)
    digest = hashlib.sha256()
    for cell in nb.cells:
        digest.update(cell.cell_type.encode() + b"\0" + cell.source.encode() + b"\0")
    return digest.hexdigest()


def write_executed(nb: nbformat.NotebookNode, source: Path, *, ok: bool, by: str) -> Path:
    """Store an executed copy of ``source`` in ``_build/executed/`` with its provenance."""
    nb.metadata["course_execution"] = {"source_sha256": source_hash(source), "ok": ok, "by": by}
    folder = executed_dir()
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / source.name
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    nbformat.write(nb, tmp)
    tmp.replace(dst)  # never a half-written copy
    return dst


def current_execution(source: Path) -> nbformat.NotebookNode | None:
    """The executed copy of ``source`` if one exists for its current content, else ``None``."""
    dst = executed_dir() / source.name
    if not dst.is_file():
        return None
    nb = nbformat.read(dst, as_version=4)
    info = nb.metadata.get("course_execution", {})
    return nb if info.get("source_sha256") == source_hash(source) else None


# --- The execution log --------------------------------------------------------------------------

def log_path() -> Path | None:
    """The log file named by ``$COURSE_EXECUTION_LOG`` (relative to the repository), or ``None``."""
    value = os.environ.get(LOG_ENV)
    if not value:
        return None
    path = Path(value)
    return path if path.is_absolute() else REPO / path


def record_execution(notebook: Path, *, by: str, cells: str = "all") -> None:
    """Append one execution of ``notebook`` to the log (a no-op when no log is configured).

    Args:
        notebook: the notebook that was (or is being) executed.
        by: who executed it: ``nbval``, ``determinism``, ``book``, ``lab``, ...
        cells: ``"all"`` for a run of every cell, else which code cells ran (e.g. ``"0-8 of 22"``).
    """
    path = log_path()
    if path is None:
        return
    try:
        name = str(Path(notebook).resolve().relative_to(REPO))
    except ValueError:   # a notebook outside the repository (a test's temporary one): not a chapter
        return
    line = json.dumps({"notebook": name, "by": by, "cells": cells, "pid": os.getpid(),
                       "worker": os.environ.get("PYTEST_XDIST_WORKER", "main")})
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:   # one short line per write: appends do not interleave
        f.write(line + "\n")


def read_log(path: Path | None = None) -> list[dict]:
    path = path or log_path()
    if path is None or not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def summarise(rows: list[dict]) -> tuple[str, int, int]:
    """A table of executions per notebook; ``(text, full executions by nbval, other full executions)``."""
    full = Counter((r["notebook"], r["by"]) for r in rows if r["cells"] == "all")
    partial = [r for r in rows if r["cells"] != "all"]
    by_nbval = sum(n for (_, by), n in full.items() if by == "nbval")
    other = sum(n for (_, by), n in full.items() if by != "nbval")
    lines = [f"notebook executions: {by_nbval + other} full ({by_nbval} by nbval, {other} other)"
             + (f", {len(partial)} partial" if partial else "")]
    for name in sorted({r["notebook"] for r in rows}):
        runs = [f"{by}×{n}" for (nb, by), n in sorted(full.items()) if nb == name]
        runs += [f"{r['by']} (cells {r['cells']})" for r in partial if r["notebook"] == name]
        lines.append(f"  {name}: {', '.join(runs)}")
    return "\n".join(lines), by_nbval, other


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, default=None, help=f"the log (default: ${LOG_ENV})")
    parser.add_argument("--max-extra", type=int, default=None,
                        help="fail if more than this many full executions other than nbval's happened, "
                             "or if nbval executed a notebook more than once")
    args = parser.parse_args(argv)
    rows = read_log(args.log)
    if not rows:
        print("notebook executions: none recorded" + ("" if (args.log or log_path()) else f" (${LOG_ENV} unset)"))
        return 0
    text, _, other = summarise(rows)
    print(text)
    if args.max_extra is None:
        return 0
    twice = [name for name, n in Counter(r["notebook"] for r in rows
                                         if r["by"] == "nbval" and r["cells"] == "all").items() if n > 1]
    if twice or other > args.max_extra:
        print(f"FAILED: each notebook is executed once by nbval and at most {args.max_extra} more full "
              f"execution(s) are allowed" + (f"; nbval ran {twice} more than once" if twice else ""))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
