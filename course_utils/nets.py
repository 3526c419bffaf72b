"""Framework-free network parameters, so PyTorch and TensorFlow can start from the same weights.

MLP parameters are a ``dict[str, np.ndarray]`` with keys ``w0, b0, w1, b1, ...`` in layer order;
weight ``wi`` has shape (fan_in, fan_out) and bias ``bi`` (fan_out,), float32. Both
:mod:`course_utils.torch` and :mod:`course_utils.tensorflow` read and write this layout.
"""
from __future__ import annotations

import numpy as np

from course_utils.validation import check_positive_int
from course_utils.seed import check_rng

__all__ = ["init_mlp", "mlp_forward_numpy", "layer_sizes", "init_convnet", "convnet_head_names"]


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


def mlp_layer_count(params: dict) -> int:
    """The number of linear layers n of an MLP dict, which must hold exactly ``w0, b0, ..., w{n-1}, b{n-1}``."""
    n = sum(1 for k in params if k.startswith("w"))
    if n < 1 or set(params) != {f"{p}{i}" for i in range(n) for p in "wb"}:
        raise ValueError(f"params must have keys w0, b0, ..., w{{n-1}}, b{{n-1}}, got {sorted(params)}")
    return n


def mlp_forward_numpy(params: dict, x: np.ndarray) -> np.ndarray:
    """Reference forward pass in NumPy (ReLU hidden layers, linear output): x (..., in) → (..., out)."""
    n = len([k for k in params if k.startswith("w")])
    h = np.asarray(x, dtype=np.float32)
    for i in range(n):
        h = h @ params[f"w{i}"] + params[f"b{i}"]
        if i < n - 1:
            h = np.maximum(h, 0.0)
    return h


# ------------------------------------------------------------------ the 4-block conv net
# Layout (see course_utils.torch.convnet): conv{i}_w (out, in, 3, 3), bn{i}_gamma/beta (out,),
# head_w (hidden, n_way), head_b (n_way,).

def init_convnet(rng: np.random.Generator | int | None = None, *, n_way: int = 5, in_channels: int = 1,
                 hidden: int = 64, n_blocks: int = 4) -> dict[str, np.ndarray]:
    """Initialise the conv net in NumPy (identical in both frameworks for the same ``rng``).

    Convolutions and the head use Glorot-uniform weights (MAML's official code uses Xavier for
    its convolutions); batch-norm scales start at 1 and offsets at 0; the head bias at 0.

    Args:
        rng: generator or seed.
        n_way: output classes (>= 2).
        in_channels: image channels (1 for Omniglot).
        hidden: filters per block (64 in MAML's Omniglot net).
        n_blocks: convolution blocks (>= 1; 4 in the paper).

    Returns:
        dict of float32 arrays; see the module docstring for keys and shapes.
    """
    return _init_convnet_numpy(rng, n_way=n_way, in_channels=in_channels, hidden=hidden, n_blocks=n_blocks)


def _init_convnet_numpy(rng, *, n_way, in_channels, hidden, n_blocks):
    n_way = check_positive_int(n_way, "n_way", 2)
    in_channels = check_positive_int(in_channels, "in_channels", 1)
    hidden = check_positive_int(hidden, "hidden", 1)
    n_blocks = check_positive_int(n_blocks, "n_blocks", 1)
    rng = check_rng(rng)
    params: dict[str, np.ndarray] = {}
    c_in = in_channels
    for i in range(n_blocks):
        fan_in, fan_out = c_in * 9, hidden * 9
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        params[f"conv{i}_w"] = rng.uniform(-bound, bound, size=(hidden, c_in, 3, 3)).astype(np.float32)
        params[f"bn{i}_gamma"] = np.ones(hidden, dtype=np.float32)
        params[f"bn{i}_beta"] = np.zeros(hidden, dtype=np.float32)
        c_in = hidden
    bound = np.sqrt(6.0 / (hidden + n_way))
    params["head_w"] = rng.uniform(-bound, bound, size=(hidden, n_way)).astype(np.float32)
    params["head_b"] = np.zeros(n_way, dtype=np.float32)
    return params


def convnet_head_names(params) -> list[str]:
    """Names of the final linear layer's parameters (what ANIL adapts): ``["head_w", "head_b"]``."""
    return [k for k in params if k.startswith("head")]
