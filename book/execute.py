"""Execute a notebook in a fresh kernel, driven from a child process (notebook tests, site build).

The child drives the kernel with jupyter_client's *blocking* client, cell by cell, as nbval
does. Twice on CI, nbclient's asyncio client (zmq.asyncio) waited without end for a message of
a kernel that sat idle with its cell finished; the blocking client has not lost one. The child
process keeps the tests' own process out of it, and a limit turns a hang into a clear failure.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from book.config import EXECUTED

_CHILD = r'''
import sys, time, queue
import nbformat
from jupyter_client.manager import KernelManager

src, dst, cwd, cell_timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
nb = nbformat.read(src, as_version=4)
km = KernelManager(kernel_name="python3")
km.start_kernel(cwd=cwd, extra_arguments=["--HistoryManager.hist_file=:memory:"])
kc = km.client()
kc.start_channels()
failed = None
try:
    kc.wait_for_ready(timeout=120)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        cell.outputs = []
        msg_id = kc.execute(cell.source, store_history=True, allow_stdin=False)
        deadline = time.monotonic() + cell_timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"cell {index} did not finish within {cell_timeout:.0f} s")
            try:
                msg = kc.get_iopub_msg(timeout=min(left, 5))
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content["execution_state"] == "idle":
                break
            if kind == "stream":
                cell.outputs.append(nbformat.v4.new_output("stream", name=content["name"], text=content["text"]))
            elif kind in ("display_data", "execute_result"):
                cell.outputs.append(nbformat.v4.new_output("display_data", data=content["data"],
                                                           metadata=content.get("metadata", {})))
            elif kind == "error":
                cell.outputs.append(nbformat.v4.new_output("error", ename=content["ename"], evalue=content["evalue"],
                                                           traceback=content["traceback"]))
                failed = (index, content)
        if failed:
            break
finally:
    nbformat.write(nb, dst)
    kc.stop_channels()
    km.shutdown_kernel(now=True)
if failed:
    index, content = failed
    sys.stderr.write(f"cell {index} raised {content['ename']}: {content['evalue']}\n" + "\n".join(content["traceback"]))
    sys.exit(1)
'''


def execute_notebook(nb: nbformat.NotebookNode, cwd: Path, *, timeout: int = 900,
                     total_timeout: int = 1800) -> nbformat.NotebookNode:
    """Run every code cell of ``nb`` in a fresh kernel whose folder is ``cwd``; return the notebook
    with its outputs (streams, displays, errors).

    Args:
        timeout: seconds one cell may take.
        total_timeout: seconds the whole notebook may take.

    Raises:
        AssertionError: a cell raised (with its traceback), or a limit was passed.
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


# --- One execution, reused -------------------------------------------------------------------
# The nbval run of `make test` writes each notebook it executed to _build/executed/ (the root
# conftest.py, `record_nbval_outputs`), tagged with the hash of the stored notebook; the site, the
# slides and their tests reuse those copies and execute a notebook only where none is current.

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
    EXECUTED.mkdir(parents=True, exist_ok=True)
    dst = EXECUTED / source.name
    tmp = dst.with_suffix(".tmp")
    nbformat.write(nb, tmp)
    tmp.replace(dst)  # never a half-written copy
    return dst


def current_execution(source: Path) -> nbformat.NotebookNode | None:
    """The executed copy of ``source`` if one exists for its current content, else ``None``."""
    dst = EXECUTED / source.name
    if not dst.is_file():
        return None
    nb = nbformat.read(dst, as_version=4)
    info = nb.metadata.get("course_execution", {})
    return nb if info.get("source_sha256") == source_hash(source) else None


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
    nb = execute_notebook(nbformat.read(source, as_version=4), source.parent)
    write_executed(nb, source, ok=True, by="book.execute")
    return nb
