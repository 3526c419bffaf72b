"""Execute a notebook in a fresh kernel, driven from a child process, for the notebook tests.

Why a child process: driven from pytest's own process, nbclient runs its kernel client on
jupyter_core's background event loop whenever another loop looks active there (the browser
tests' Playwright leaves one behind). On CI that client once waited 15 minutes for a reply that
an idle kernel had already sent. In a child process the client has a process of its own, and a
hang becomes a clear failure after ``timeout`` seconds instead of a stuck run.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

_CHILD = """
import sys, nbformat, nbclient
nb = nbformat.read(sys.argv[1], as_version=4)
try:
    nbclient.NotebookClient(nb, timeout=int(sys.argv[4]), kernel_name="python3",
                            resources={"metadata": {"path": sys.argv[3]}}).execute()
finally:
    nbformat.write(nb, sys.argv[2])
"""


def execute_notebook(nb: nbformat.NotebookNode, cwd: Path, *, timeout: int = 900,
                     total_timeout: int = 1800) -> nbformat.NotebookNode:
    """Run every cell of ``nb`` with ``cwd`` as the kernel's folder; return the executed notebook.

    Args:
        timeout: seconds one cell may take (nbclient's limit).
        total_timeout: seconds the whole notebook may take.

    Raises:
        AssertionError: a cell raised (with the child's traceback), or a limit was passed.
    """
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.ipynb", Path(tmp) / "out.ipynb"
        nbformat.write(nb, src)
        cmd = [sys.executable, "-c", _CHILD, str(src), str(dst), str(cwd), str(timeout)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=total_timeout)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"the notebook did not finish within {total_timeout} s") from exc
        if proc.returncode != 0:
            raise AssertionError(f"executing the notebook failed:\n{proc.stderr[-4000:]}")
        return nbformat.read(dst, as_version=4)
