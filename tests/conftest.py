"""Shared pytest fixtures and settings for the course's tests.

Layout (mirrors the package): ``core/`` (framework-free modules), ``frameworks/`` (the torch and
tensorflow halves and their parity), ``chapters/`` (slider callbacks and exercise checkers),
``notebooks/`` (structure, hidden solutions, determinism), ``browser/`` (JupyterLab in Chromium).

Real Omniglot comes from ``$COURSE_DATA_DIR`` (the root ``conftest.py`` points it at the offline
copy beside the checkout). Where it is missing the tests that need it are skipped — unless
``COURSE_REQUIRE_DATA=1`` (CI sets it), where a missing data set fails them instead.
"""
from __future__ import annotations

import importlib
import os

import matplotlib

matplotlib.use("Agg")  # tests draw without a screen

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


def require_data() -> bool:
    """True when missing Omniglot must fail the run (``COURSE_REQUIRE_DATA=1``) instead of skipping."""
    return os.environ.get("COURSE_REQUIRE_DATA", "") == "1"


def missing_data(reason: str):
    """Skip the calling test for want of real data, or fail it when data are required."""
    if require_data():
        pytest.fail(f"COURSE_REQUIRE_DATA=1 but the real Omniglot is not available: {reason}")
    pytest.skip(f"real Omniglot not available: {reason}")


@pytest.fixture(scope="session")
def omniglot():
    """The real Omniglot (no download): 1,623 characters × 20 drawings, 28×28 uint8."""
    from course_utils.data import load_omniglot

    try:
        return load_omniglot(download=False)
    except (FileNotFoundError, OSError, RuntimeError, ValueError) as exc:
        missing_data(str(exc))


@pytest.fixture(params=["torch", "tensorflow"])
def fw(request):
    """The framework half under test: ``course_utils.torch`` or ``course_utils.tensorflow`` (test ids
    ``torch`` / ``tensorflow``). Imported when the test runs, not when it is collected."""
    return importlib.import_module(f"course_utils.{request.param}")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
