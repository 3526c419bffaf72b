"""Framework-free network parameters, so PyTorch and TensorFlow can start from the same weights.

Parameters are a ``dict[str, np.ndarray]`` with keys ``w0, b0, w1, b1, ...`` in layer order;
weight ``wi`` has shape (fan_in, fan_out) and bias ``bi`` (fan_out,), float32. Both
:mod:`course_utils.torch` and :mod:`course_utils.tensorflow` read and write this layout.
"""
from __future__ import annotations

import numpy as np

from course_utils.seed import check_rng

__all__ = ["init_mlp", "mlp_forward_numpy", "layer_sizes"]


def init_mlp(sizes: tuple[int, ...] = (1, 40, 40, 1), *,
             rng: np.random.Generator | int | None = None) -> dict[str, np.ndarray]:
    """Initialise an MLP as PyTorch's ``nn.Linear`` does: W, b ~ U(-1/√fan_in, 1/√fan_in).

    Args:
        sizes: layer widths, input first (at least two entries, each >= 1).
        rng: generator or seed.

    Returns:
        ``{"w0": (sizes[0], sizes[1]), "b0": (sizes[1],), ...}``, float32.
    """
    sizes = tuple(sizes)
    if len(sizes) < 2 or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1
                             for s in sizes):
        raise ValueError(f"sizes must be at least two positive integers, got {sizes!r}")
    rng = check_rng(rng)
    params = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        bound = 1.0 / np.sqrt(fan_in)
        params[f"w{i}"] = rng.uniform(-bound, bound, size=(fan_in, fan_out)).astype(np.float32)
        params[f"b{i}"] = rng.uniform(-bound, bound, size=(fan_out,)).astype(np.float32)
    return params


def layer_sizes(params: dict) -> tuple[int, ...]:
    """The widths ``(in, hidden..., out)`` of an MLP parameter dict."""
    n = len([k for k in params if k.startswith("w")])
    return tuple([params["w0"].shape[0]] + [params[f"w{i}"].shape[1] for i in range(n)])


def mlp_forward_numpy(params: dict, x: np.ndarray) -> np.ndarray:
    """Reference forward pass in NumPy (ReLU hidden layers, linear output): x (..., in) → (..., out)."""
    n = len([k for k in params if k.startswith("w")])
    h = np.asarray(x, dtype=np.float32)
    for i in range(n):
        h = h @ params[f"w{i}"] + params[f"b{i}"]
        if i < n - 1:
            h = np.maximum(h, 0.0)
    return h
