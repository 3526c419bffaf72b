"""The 4-block convolutional network of MAML's Omniglot experiments, with explicit parameters.

Mirrors :mod:`course_utils.tensorflow.convnet` name for name. Architecture (Finn et al. 2017,
§5.2, following Vinyals et al. 2016 with strided convolutions instead of max-pooling): four
blocks of [3×3 convolution with 64 filters, stride 2, padding 1 → batch norm → ReLU]
(28 → 14 → 7 → 4 → 2 pixels), a mean over the remaining 2×2 positions (as MAML's official code
does for Omniglot), then a linear layer to ``n_way`` logits.

Batch norm is used in MAML's *transductive* mode: it always normalises with the statistics of the
batch it is given (the support set during adaptation, the query set when evaluating) and keeps
no running averages, so there is no hidden state outside ``params``. The convolutions have no
bias (batch norm's offset β makes it redundant).

Parameters are a NumPy-compatible dict, the same in both frameworks (layout chosen once, here,
in PyTorch's order; TensorFlow transposes inside its forward pass):

* ``conv{i}_w`` (out_channels, in_channels, 3, 3)
* ``bn{i}_gamma``, ``bn{i}_beta`` (out_channels,)
* ``head_w`` (hidden, n_way), ``head_b`` (n_way,)
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from course_utils.seed import check_rng

__all__ = ["init_convnet", "convnet_forward", "convnet_head_names", "BN_EPS"]

BN_EPS = 1e-5


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


def _check_pos(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _init_convnet_numpy(rng, *, n_way, in_channels, hidden, n_blocks):
    # Kept line-for-line identical to course_utils.tensorflow.convnet._init_convnet_numpy
    # (tests/test_meta.py asserts both give the same arrays).
    n_way = _check_pos(n_way, "n_way", 2)
    in_channels = _check_pos(in_channels, "in_channels", 1)
    hidden = _check_pos(hidden, "hidden", 1)
    n_blocks = _check_pos(n_blocks, "n_blocks", 1)
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


def convnet_forward(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Logits of the conv net: images ``x`` (n, H, W) or (n, H, W, C), float → (n, n_way).

    Images are channel-last like NumPy arrays (the course's image layout); they are moved to
    PyTorch's NCHW inside. Works under ``torch.func.vmap`` (one set of parameters per task).
    """
    h = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    i = 0
    while f"conv{i}_w" in params:
        h = F.conv2d(h, params[f"conv{i}_w"], stride=2, padding=1)
        mean = h.mean(dim=(0, 2, 3), keepdim=True)
        var = ((h - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
        h = (h - mean) * torch.rsqrt(var + BN_EPS)
        h = h * params[f"bn{i}_gamma"].view(1, -1, 1, 1) + params[f"bn{i}_beta"].view(1, -1, 1, 1)
        h = torch.relu(h)
        i += 1
    h = h.mean(dim=(2, 3))
    return h @ params["head_w"] + params["head_b"]
