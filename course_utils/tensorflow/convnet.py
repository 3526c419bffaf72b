"""The 4-block convolutional network of MAML's Omniglot experiments, with explicit parameters.

Mirrors :mod:`course_utils.torch.convnet` name for name. Architecture (Finn et al. 2017,
§5.2, following Vinyals et al. 2016 with strided convolutions instead of max-pooling): four
blocks of [3×3 convolution with 64 filters, stride 2, padding 1 → batch norm → ReLU]
(28 → 14 → 7 → 4 → 2 pixels), a mean over the remaining 2×2 positions (as MAML's official code
does for Omniglot), then a linear layer to ``n_way`` logits.

Batch norm is used in MAML's *transductive* mode: it always normalises with the statistics of the
batch it is given (the support set during adaptation, the query set when evaluating) and keeps
no running averages, so there is no hidden state outside ``params``. The convolutions have no
bias (batch norm's offset β makes it redundant).

Parameters are a NumPy-compatible dict, the same in both frameworks (layout chosen once, here,
in PyTorch's order; this module transposes to TensorFlow's HWIO inside the forward pass):

* ``conv{i}_w`` (out_channels, in_channels, 3, 3)
* ``bn{i}_gamma``, ``bn{i}_beta`` (out_channels,)
* ``head_w`` (hidden, n_way), ``head_b`` (n_way,)
"""
from __future__ import annotations

from course_utils.env import configure_tensorflow_env

configure_tensorflow_env()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from course_utils.nets import init_convnet  # noqa: E402,F401  (framework-free)
from course_utils.tensorflow.core import to_tensor  # noqa: E402
from course_utils.validation import check_choice, check_convnet  # noqa: E402

__all__ = ["init_convnet", "convnet_forward", "BN_EPS"]

BN_EPS = 1e-5
_PAD = [[0, 0], [1, 1], [1, 1], [0, 0]]  # explicit padding 1, as PyTorch's padding=1 ("SAME" differs on even sizes)


def conv_body(params: dict, x, bn_stats: dict | None = None, stop_at: int | None = None) -> tf.Tensor:
    """The four blocks and the spatial mean, without the head: (n, hidden) features of ``x``;
    ``stop_at=i`` returns block i's convolution output (n, H, W, C) before its batch norm. See
    :func:`course_utils.torch.convnet.conv_body` (same arguments, same numbers)."""
    x = to_tensor(x)
    check_choice(x.shape.rank, "x.ndim (images (n, H, W) or (n, H, W, C))", (3, 4))
    h = x[..., None] if x.shape.rank == 3 else x
    i = 0
    while f"conv{i}_w" in params:
        w = tf.transpose(params[f"conv{i}_w"], (2, 3, 1, 0))
        h = tf.nn.conv2d(h, w, strides=2, padding=_PAD)
        if i == stop_at:
            return h
        if bn_stats is None:
            mean = tf.reduce_mean(h, axis=(0, 1, 2), keepdims=True)
            var = tf.reduce_mean(tf.square(h - mean), axis=(0, 1, 2), keepdims=True)
        else:
            mean = tf.constant(np.asarray(bn_stats[f"bn{i}_mean"], np.float32))
            var = tf.constant(np.asarray(bn_stats[f"bn{i}_var"], np.float32))
        h = (h - mean) * tf.math.rsqrt(var + BN_EPS)
        h = h * params[f"bn{i}_gamma"] + params[f"bn{i}_beta"]
        h = tf.nn.relu(h)
        i += 1
    if i == 0:
        raise ValueError(f"params must hold the conv net's conv0_w, bn0_gamma, ...; got keys {sorted(params)}")
    return tf.reduce_mean(h, axis=(1, 2))


def convnet_forward(params: dict, x: tf.Tensor) -> tf.Tensor:
    """Logits of the conv net: images ``x`` (n, H, W) or (n, H, W, C), float → (n, n_way).

    TensorFlow works in NHWC, the course's image layout; the (out, in, 3, 3) filters are
    transposed to HWIO here. Explicit padding of one pixel reproduces PyTorch's ``padding=1``
    (TensorFlow's ``"SAME"`` pads 28 → 14 asymmetrically and would give different numbers).
    NumPy images are converted with :func:`course_utils.tensorflow.to_tensor` (uint8 → [0, 1]).
    """
    check_convnet(params, x)
    return tf.matmul(conv_body(params, x), params["head_w"]) + params["head_b"]
