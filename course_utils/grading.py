"""Grading: the chapters' exercise checkers and the notebooks' numeric comparisons.

:func:`report` prints one clear pass/fail line; :func:`close` compares an answer with the
expected value without ever raising; :func:`max_abs_diff` is the one "largest difference"
that every parity and by-hand check in the notebooks prints and asserts.
"""
from __future__ import annotations

import numpy as np

from course_utils.validation import check_bool, check_float, check_str

__all__ = ["report", "close", "max_abs_diff"]


def report(passed: bool, name: str, hint: str = "") -> bool:
    """Print ``✅ name: passed`` or ``❌ name: <hint>`` and return ``passed``."""
    passed = check_bool(passed, "passed")
    check_str(name, "name"), check_str(hint, "hint")
    if passed:
        print(f"✅ {name}: correct.")
    else:
        print(f"❌ {name}: not yet. {hint}".rstrip())
    return bool(passed)


def close(answer, expected, *, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    """True when ``answer`` has ``expected``'s shape and matches it to tolerance.

    Never raises for a wrong ``answer`` or ``expected`` (a checker's input); ``rtol``/``atol`` must be
    finite and >= 0.
    """
    rtol = check_float(rtol, "rtol", 0.0)
    atol = check_float(atol, "atol", 0.0)
    if answer is None or expected is None:
        return False
    try:
        a, e = _numpy(answer, cast=False), _numpy(expected, cast=False)
        if a.dtype.kind not in "biuf" or e.dtype.kind not in "biuf":  # strings, objects: not numbers
            return False
        a, e = a.astype(float), e.astype(float)
    except Exception:  # noqa: BLE001 - whatever a learner passes, the answer is just "not close"
        return False
    return a.shape == e.shape and bool(np.allclose(a, e, rtol=rtol, atol=atol))


def _numpy(v, cast: bool = True) -> np.ndarray:
    """A NumPy float64 copy of an array, a PyTorch tensor (detached) or a TensorFlow tensor."""
    if hasattr(v, "detach"):
        v = v.detach()
    if hasattr(v, "numpy"):
        v = v.numpy()
    return np.asarray(v, dtype=np.float64) if cast else np.asarray(v)


def max_abs_diff(a, b) -> float:
    """Largest absolute difference between two arrays, or two dicts of arrays with the same keys.

    Entries may be NumPy arrays, PyTorch or TensorFlow tensors (so a notebook can compare the two
    frameworks' parameters or gradients directly); shapes must match.

    Raises:
        ValueError: if the dicts' keys differ or two entries' shapes differ.
    """
    if isinstance(a, dict) or isinstance(b, dict):
        if not (isinstance(a, dict) and isinstance(b, dict)) or set(a) != set(b):
            keys = [sorted(v) if isinstance(v, dict) else type(v).__name__ for v in (a, b)]
            raise ValueError(f"a and b must be dicts with the same keys, got {keys[0]} and {keys[1]}")
        return max((max_abs_diff(a[k], b[k]) for k in a), default=0.0)
    x, y = _numpy(a), _numpy(b)
    if x.shape != y.shape:
        raise ValueError(f"a and b must have the same shape, got {x.shape} and {y.shape}")
    return float(np.max(np.abs(x - y))) if x.size else 0.0
