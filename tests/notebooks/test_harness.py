"""The notebook harness itself (tests/harness): which folders nbval executes, and the count of
executions that ``make test`` checks at its end."""
from __future__ import annotations

import json

from tests.harness import plugin, store
from tests.harness.store import REPO


def test_only_configured_folders_are_executed():
    assert plugin.notebook_folders() == ((REPO / "notebooks").resolve(),)
    assert plugin.pytest_ignore_collect(REPO / "notebooks" / "03_transfer_learning.ipynb", None) is None
    # the Chinese edition (same code cells) is not executed a second time, nor is a stray notebook
    assert plugin.pytest_ignore_collect(REPO / "notebooks" / "zh" / "03_transfer_learning.ipynb", None) is True
    assert plugin.pytest_ignore_collect(REPO / "book" / "scratch.ipynb", None) is True
    assert plugin.pytest_ignore_collect(REPO / "tests" / "core" / "test_data.py", None) is None


def _log(tmp_path, rows):
    path = tmp_path / "executions.jsonl"
    path.write_text("".join(json.dumps({"pid": 1, "worker": "gw0", **r}) + "\n" for r in rows))
    return path


def test_the_execution_count_allows_one_extra_run(tmp_path, capsys):
    nbval = [{"notebook": f"notebooks/{i:02d}.ipynb", "by": "nbval", "cells": "all"} for i in range(13)]
    once = _log(tmp_path, nbval + [{"notebook": "notebooks/01.ipynb", "by": "determinism", "cells": "all"},
                                   {"notebook": "notebooks/03.ipynb", "by": "lab", "cells": "1-9 of 19"}])
    assert store.main(["--log", str(once), "--max-extra", "1"]) == 0
    out = capsys.readouterr().out
    assert "14 full (13 by nbval, 1 other), 1 partial" in out and "lab (cells 1-9 of 19)" in out
    twice = _log(tmp_path, nbval + [{"notebook": "notebooks/01.ipynb", "by": "determinism", "cells": "all"},
                                    {"notebook": "notebooks/05.ipynb", "by": "book", "cells": "all"}])
    assert store.main(["--log", str(twice), "--max-extra", "1"]) == 1
    rerun = _log(tmp_path, nbval + nbval[:1])
    assert store.main(["--log", str(rerun), "--max-extra", "1"]) == 1
    assert "nbval ran ['notebooks/00.ipynb'] more than once" in capsys.readouterr().out


def test_executions_are_logged_only_where_asked(tmp_path, monkeypatch):
    monkeypatch.delenv(store.LOG_ENV, raising=False)
    store.record_execution(REPO / "notebooks" / "00_start_here.ipynb", by="nbval")   # no log configured: nothing
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv(store.LOG_ENV, str(log))
    store.record_execution(tmp_path / "tiny.ipynb", by="nbval")                      # outside the repository
    assert not log.exists()
    store.record_execution(REPO / "notebooks" / "00_start_here.ipynb", by="nbval")
    assert [r["notebook"] for r in store.read_log()] == ["notebooks/00_start_here.ipynb"]
