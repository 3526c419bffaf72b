"""Bad input gets a clear error naming the argument: never a silent result, a deep error or an abort.

The table of callables and the bad values derived for them live in
:mod:`tests.core.bad_input_cases`. The framework-free and PyTorch cases run in this process; the
TensorFlow cases run in a child process that imports TensorFlow *before* ``course_utils`` (the
set-up in which a conv net fed flat images used to abort the kernel), concurrently, so a C++
abort shows up as an ``abort`` row instead of killing pytest.

One test per module. Modules whose owners validate them in a follow-up are
``xfail(strict=False)`` (see ``PENDING``); remove a module from ``PENDING`` once it passes.
"""
from __future__ import annotations

import importlib
import inspect
import json
import os
import threading

import pytest

from tests.core import bad_input_cases as cases

#: One test per module: every module of course_utils that defines ``__all__`` (found on disk,
#: nothing imported: TensorFlow stays out of this process) but the re-exporting packages in
#: ``cases.RE_EXPORTS``; framework submodules as ``torch.core`` / ``tensorflow.core``.
MODULES = cases.probed_modules()


def _param(module):
    marks = [pytest.mark.xfail(strict=False, reason=cases.PENDING[module])] if module in cases.PENDING else []
    return pytest.param(module, marks=marks, id=module)


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> list[dict]:
    """Every probe's outcome: TensorFlow in a child process, the rest here, at the same time."""
    tf_rows: list[dict] = []
    errors: list[BaseException] = []
    path = tmp_path_factory.mktemp("bad_input") / "tensorflow.jsonl"

    def tf_run():
        try:
            tf_rows.extend(cases.run_in_subprocess("tensorflow", path, timeout=600))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)

    thread = threading.Thread(target=tf_run)
    thread.start()
    try:
        here = cases.run_all("core") + cases.run_all("torch")
    finally:
        thread.join()
    if errors:
        raise errors[0]
    if os.environ.get("BAD_INPUT_DUMP"):  # the full table, for a report: BAD_INPUT_DUMP=rows.json
        with open(os.environ["BAD_INPUT_DUMP"], "w") as f:
            json.dump(here + tf_rows, f)
    return here + tf_rows


@pytest.mark.parametrize("module", [_param(m) for m in MODULES])
def test_bad_input_is_rejected_by_name(rows, module):
    """Each bad value raises ValueError/TypeError naming the argument; each valid variant gives the baseline."""
    mine = [r for r in rows if r["module"] == module]
    assert mine, f"no probes ran for {module}"
    failures = [r for r in mine if r["outcome"] not in ("clear", "accepted")]
    listing = "\n".join(f"  {r['function']}({r['param']}={r['value']}): {r['outcome']}: {r['detail'][:150]}"
                        for r in failures)
    assert not failures, f"{len(failures)} of {len(mine)} calls of {module} are not clear errors:\n{listing}"


def test_no_call_kills_the_process(rows):
    """No call aborts the (TensorFlow) process; every module is covered, the counts add up."""
    aborts = [r for r in rows if r["outcome"] == "abort"]
    assert not aborts, "calls that killed the process:\n" + "\n".join(
        f"  {r['function']}({r['param']}={r['value']}): {r['detail']}" for r in aborts)
    assert {r["module"] for r in rows} <= set(MODULES), sorted({r["module"] for r in rows} - set(MODULES))
    assert len(rows) > 3000


def test_every_public_callable_has_a_case():
    """Every callable of every ``__all__`` is in the table (or in NOT_PROBED, with the reason), and a
    module without a test of its own (``cases.RE_EXPORTS``) only re-exports probed modules' callables."""
    covered = {c.target.split(":")[1].split(".")[0] for c in cases.all_cases()}
    public = cases.public_modules()
    assert set(cases.RE_EXPORTS) <= set(public), sorted(set(cases.RE_EXPORTS) - set(public))
    missing, probed = [], set()
    for name in public:
        mod = importlib.import_module(name)
        for attr in getattr(mod, "__all__", []):
            obj = getattr(mod, attr)
            if name not in cases.RE_EXPORTS:
                probed.add(id(obj))
            if not callable(obj) or attr in cases.NOT_PROBED or attr in covered:
                continue
            if inspect.ismodule(obj):
                continue
            missing.append(f"{name}.{attr}")
    assert not missing, f"public callables without a bad-input case: {missing}"
    own = [f"{name}.{attr}" for name in cases.RE_EXPORTS for attr in importlib.import_module(name).__all__
           if callable(obj := getattr(importlib.import_module(name), attr)) and id(obj) not in probed
           and attr not in cases.NOT_PROBED]
    assert not own, f"callables of a module without a bad-input test of its own, not re-exported: {own}"
