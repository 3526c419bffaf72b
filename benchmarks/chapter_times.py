"""Each chapter's wall time and peak memory, on a quiet machine and beside one other busy job.

    python benchmarks/chapter_times.py [--load] [--chapters 06 12] [--threads N]

Every chapter runs top to bottom in a fresh kernel (``tests.harness.kernel.execute_notebook``), one
at a time, with the course's own thread sizing (no thread variable is passed to the kernel unless
``--threads`` sets ``COURSE_THREADS``). ``--load`` starts one single-threaded busy process for the
whole run: the "second job on the 2 cores" of a laptop or a shared CI machine. The peak is the one
the chapter prints (``peak_memory_mb``, the kernel's own maximum RSS). Results go to
``benchmarks/results/chapter_times.json`` (merged under a key per condition) and are printed as a
table. Budget (DEVELOPERS.md): under 120 s quiet, and no worse than about 2x with one other job.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import nbformat  # noqa: E402

from course_utils.env import THREAD_VARIABLES  # noqa: E402
from tests.harness.kernel import execute_notebook  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "chapter_times.json"
OFFLINE_DATA = REPO.parent / "shared" / "data" / "omniglot"   # as the Makefile and conftest.py do
PEAK = re.compile(r"peak[^\n]*?([\d,]+(?:\.\d+)?)\s*(MiB|MB|GiB|GB)", re.I)


def printed_peak(nb) -> float | None:
    """The last peak memory the chapter printed, in MiB."""
    text = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []) if out.get("output_type") == "stream")
    found = PEAK.findall(text)
    if not found:
        return None
    value, unit = found[-1]
    value = float(value.replace(",", ""))
    return value * 1024 if unit.upper().startswith("G") else value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", action="store_true", help="run one single-threaded busy job beside")
    parser.add_argument("--chapters", nargs="*", default=None, help="chapter numbers (default: all)")
    parser.add_argument("--threads", type=int, default=None, help="COURSE_THREADS for the kernels")
    args = parser.parse_args(argv)
    paths = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if args.chapters:
        paths = [p for p in paths if p.name[:2] in {c.zfill(2) for c in args.chapters}]
    env = {name: None for name in THREAD_VARIABLES}
    if "COURSE_DATA_DIR" not in os.environ and (OFFLINE_DATA / "omniglot28.npz").is_file():
        env["COURSE_DATA_DIR"] = str(OFFLINE_DATA)
    if args.threads:
        env["COURSE_THREADS"] = str(args.threads)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.load else None
    rows = {}
    try:
        for path in paths:
            t0 = time.perf_counter()
            try:
                nb = execute_notebook(nbformat.read(path, as_version=4), path.parent, env=env)
                ok, peak = True, printed_peak(nb)
            except AssertionError as exc:
                ok, peak = False, None
                print(f"{path.name}: FAILED {str(exc)[-300:]}", flush=True)
            seconds = time.perf_counter() - t0
            rows[path.name] = {"seconds": round(seconds, 1), "peak_mib": peak, "ok": ok}
            print(f"{path.name:40s} {seconds:7.1f} s  peak {peak} MiB  {'ok' if ok else 'FAILED'}", flush=True)
    finally:
        if busy is not None:
            busy.kill()
    key = ("loaded" if args.load else "quiet") + (f"-threads{args.threads}" if args.threads else "")
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data.setdefault(key, {}).update(rows)
    RESULTS.write_text(json.dumps(data, indent=1) + "\n")
    return 0 if all(r["ok"] for r in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
