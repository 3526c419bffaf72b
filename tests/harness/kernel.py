"""Execute a notebook in a fresh kernel, driven from a child process.

Used where a notebook must run outside nbval: the determinism check (a second run of one short
chapter) and ``make site``/``make slides`` for a chapter that has no current executed copy.

The child drives the kernel with jupyter_client's *blocking* client, cell by cell, as nbval
does. Twice on CI, nbclient's asyncio client (zmq.asyncio) waited without end for a message of
a kernel that sat idle with its cell finished; the blocking client has not lost one. The child
process keeps the tests' own process out of it, and a limit turns a hang into a clear failure.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from tests.harness.store import record_execution

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
                     total_timeout: int = 1800, source: Path | None = None,
                     by: str = "execute_notebook",
                     env: dict[str, str | None] | None = None) -> nbformat.NotebookNode:
    """Run every code cell of ``nb`` in a fresh kernel whose folder is ``cwd``; return the notebook
    with its outputs (streams, displays, errors).

    Args:
        nb: the notebook to run (not modified).
        cwd: the kernel's working folder (a chapter's is ``notebooks/``).
        timeout: seconds one cell may take.
        total_timeout: seconds the whole notebook may take.
        source: the stored notebook ``nb`` came from, if any: the run is counted in the execution
            log under its name (:func:`tests.harness.store.record_execution`).
        by: who runs it, for that log.
        env: changes to the environment the kernel inherits: a value sets a variable, ``None``
            removes it.

    Raises:
        AssertionError: a cell raised (with its traceback), or a limit was passed.
    """
    if source is not None:
        record_execution(source, by=by)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.ipynb", Path(tmp) / "out.ipynb"
        nbformat.write(nb, src)
        cmd = [sys.executable, "-c", _CHILD, str(src), str(dst), str(cwd), str(timeout)]
        child_env = dict(os.environ)
        for name, value in (env or {}).items():
            if value is None:
                child_env.pop(name, None)
            else:
                child_env[name] = value
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=total_timeout, env=child_env)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"the notebook did not finish within {total_timeout} s") from exc
        if proc.returncode != 0:
            raise AssertionError(f"executing the notebook failed:\n{proc.stderr[-4000:]}")
        return nbformat.read(dst, as_version=4)
