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

from course_utils.nets import init_convnet  # noqa: F401  (framework-free)
from course_utils.torch.core import to_tensor
from course_utils.validation import check_choice, check_convnet

__all__ = ["init_convnet", "convnet_forward", "BN_EPS"]

BN_EPS = 1e-5


def conv_body(params: dict, x, bn_stats: dict | None = None, stop_at: int | None = None) -> torch.Tensor:
    """The four blocks and the spatial mean, without the head: (n, hidden) features of ``x``.

    The one implementation of the blocks, shared by :func:`convnet_forward` and the embedding of
    chapter 8 (:func:`course_utils.torch.convnet_embed`).

    Args:
        bn_stats: None - batch norm normalises with the statistics of ``x`` (transductive, as
            in training); or fixed ``{"bn{i}_mean", "bn{i}_var"}`` arrays (inference mode).
        stop_at: return block ``stop_at``'s convolution output (n, C, H, W), before its batch
            norm (how fixed statistics are measured).
    """
    x = to_tensor(x)
    check_choice(x.dim(), "x.ndim (images (n, H, W) or (n, H, W, C))", (3, 4))
    h = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    i = 0
    while f"conv{i}_w" in params:
        h = F.conv2d(h, params[f"conv{i}_w"], stride=2, padding=1)
        if i == stop_at:
            return h
        if bn_stats is None:
            mean = h.mean(dim=(0, 2, 3), keepdim=True)
            var = ((h - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
        else:  # fixed statistics, on the activations' device (a GPU under COURSE_SCALE=paper)
            mean = torch.as_tensor(np.asarray(bn_stats[f"bn{i}_mean"], np.float32), device=h.device).view(1, -1, 1, 1)
            var = torch.as_tensor(np.asarray(bn_stats[f"bn{i}_var"], np.float32), device=h.device).view(1, -1, 1, 1)
        h = (h - mean) * torch.rsqrt(var + BN_EPS)
        h = h * params[f"bn{i}_gamma"].view(1, -1, 1, 1) + params[f"bn{i}_beta"].view(1, -1, 1, 1)
        h = torch.relu(h)
        i += 1
    if i == 0:
        raise ValueError(f"params must hold the conv net's conv0_w, bn0_gamma, ...; got keys {sorted(params)}")
    return h.mean(dim=(2, 3))


def convnet_forward(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Logits of the conv net: images ``x`` (n, H, W) or (n, H, W, C), float → (n, n_way).

    Images are channel-last like NumPy arrays (the course's image layout); they are moved to
    PyTorch's NCHW inside. Works under ``torch.func.vmap`` (one set of parameters per task).
    NumPy images are converted with :func:`course_utils.torch.to_tensor` (uint8 → [0, 1]).
    """
    check_convnet(params, x)
    return conv_body(params, x) @ params["head_w"] + params["head_b"]
