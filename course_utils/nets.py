"""Framework-free network parameters, so PyTorch and TensorFlow can start from the same weights.

MLP parameters are a ``dict[str, np.ndarray]`` with keys ``w0, b0, w1, b1, ...`` in layer order;
weight ``wi`` has shape (fan_in, fan_out) and bias ``bi`` (fan_out,), float32. Both
:mod:`course_utils.torch` and :mod:`course_utils.tensorflow` read and write this layout.
"""
from __future__ import annotations

import numpy as np

from course_utils.validation import check_positive_int, check_array, check_names, check_params
from course_utils.seed import check_rng

__all__ = ["init_mlp", "mlp_forward_numpy", "layer_sizes", "init_convnet", "head_keys", "check_head"]


def init_mlp(sizes: tuple[int, ...] = (1, 40, 40, 1), *,
             rng: np.random.Generator | int | None = None) -> dict[str, np.ndarray]:
    """Initialise an MLP as PyTorch's ``nn.Linear`` does: W, b ~ U(-1/√fan_in, 1/√fan_in).

    Args:
        sizes: layer widths, input first (at least two entries, each >= 1).
        rng: generator or seed.

    Returns:
        ``{"w0": (sizes[0], sizes[1]), "b0": (sizes[1],), ...}``, float32.
    """
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise ValueError(f"sizes must be a sequence of at least two layer widths (integers >= 1), got {sizes!r}")
    sizes = tuple(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes must be at least two positive integers, got {sizes!r}")
    sizes = tuple(check_positive_int(s, "sizes (every layer width)") for s in sizes)
    rng = check_rng(rng)
    params = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        bound = 1.0 / np.sqrt(fan_in)
        params[f"w{i}"] = rng.uniform(-bound, bound, size=(fan_in, fan_out)).astype(np.float32)
        params[f"b{i}"] = rng.uniform(-bound, bound, size=(fan_out,)).astype(np.float32)
    return params


def layer_sizes(params: dict) -> tuple[int, ...]:
    """The widths ``(in, hidden..., out)`` of an MLP parameter dict."""
    check_params(params, mlp=True)
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
    check_params(params, mlp=True)
    check_array(x, "x", min_ndim=1, last=np.shape(params["w0"])[0], dtype="real")
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


def _check_model(params) -> None:
    """A parameter dict; one in the MLP layout (only ``w{i}``/``b{i}`` keys) must also chain its shapes."""
    check_params(params)
    if all(isinstance(k, str) and k[:1] in "wb" and k[1:].isdigit() for k in params):
        check_params(params, mlp=True)


def head_keys(params) -> tuple[str, ...]:
    """The keys of the last linear layer: what ANIL adapts in its inner loop.

    For the course's MLPs (``w0, b0, ..., w{n-1}, b{n-1}``) that is ``("w{n-1}", "b{n-1}")``.
    For any other parameter dict, the last two keys in insertion order, provided they are a
    weight matrix and a bias vector (the chapter 6 conv net lists its linear layer last).

    Raises:
        ValueError: if ``params`` has fewer than two entries or no recognisable last layer.
    """
    _check_model(params)
    keys = list(params)
    if len(keys) < 2:
        raise ValueError(f"params must hold at least one weight and one bias, got keys {keys}")
    ws = [k for k in keys if k.startswith("w") and k[1:].isdigit()]
    if ws and all(f"b{k[1:]}" in params for k in ws):
        last = max(int(k[1:]) for k in ws)
        return (f"w{last}", f"b{last}")
    w, b = keys[-2], keys[-1]
    if len(tuple(params[w].shape)) != 2 or len(tuple(params[b].shape)) != 1:
        raise ValueError("params must end with a linear layer (a 2-D weight then a 1-D bias); "
                         f"the last two keys are {w!r} {tuple(params[w].shape)} and {b!r} {tuple(params[b].shape)}")
    return (w, b)


def check_head(params, head) -> tuple[str, ...]:
    """ANIL's head: ``head`` (default :func:`head_keys`), every name a key of ``params``."""
    _check_model(params)
    keys = head_keys(params) if head is None else check_names(head, "head", params)
    missing = [k for k in keys if k not in params]
    if not keys or missing:
        raise ValueError(f"head must name parameters of the model among {list(params)}, unknown: {missing or keys}")
    return keys
