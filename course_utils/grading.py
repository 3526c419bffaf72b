"""Tiny helpers for the chapters' challenge checkers: one clear pass/fail line and a bool."""
from __future__ import annotations

import numpy as np

__all__ = ["report", "close"]


def report(passed: bool, name: str, hint: str = "") -> bool:
    """Print ``✅ name: passed`` or ``❌ name: <hint>`` and return ``passed``."""
    if passed:
        print(f"✅ {name}: correct.")
    else:
        print(f"❌ {name}: not yet. {hint}".rstrip())
    return bool(passed)


def close(answer, expected, *, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    """True when ``answer`` has ``expected``'s shape and matches it to tolerance (never raises)."""
    try:
        a = np.asarray(answer, dtype=float)
        e = np.asarray(expected, dtype=float)
    except (TypeError, ValueError):
        return False
    return a.shape == e.shape and bool(np.allclose(a, e, rtol=rtol, atol=atol))
