"""The executed chapters the site and the slides are built from.

``make test`` executes every chapter once (nbval) and stores each with its outputs in
``_build/executed/`` (:mod:`tests.harness.store`); the site and slides reuse those copies and run
a chapter here only where no copy is current, once (:mod:`tests.harness.kernel`).
"""
from __future__ import annotations

from pathlib import Path

import nbformat

from tests.harness.kernel import execute_notebook
from tests.harness.store import current_execution, write_executed

__all__ = ["executed"]


def executed(source: Path) -> nbformat.NotebookNode:
    """``source`` with outputs: the current executed copy, or one fresh execution (stored).

    Raises:
        AssertionError: the current copy records a failed run (fix the notebook; its nbval test
            says where), or the fresh execution fails.
    """
    nb = current_execution(source)
    if nb is not None:
        if not nb.metadata["course_execution"]["ok"]:
            raise AssertionError(f"{source.name} failed when it was executed "
                                 f"({nb.metadata['course_execution']['by']}); see its notebook test")
        return nb
    nb = execute_notebook(nbformat.read(source, as_version=4), source.parent, source=source, by="book")
    write_executed(nb, source, ok=True, by="book.execute")
    return nb
