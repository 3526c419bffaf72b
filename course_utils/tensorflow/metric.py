"""Metric-based meta-learning in TensorFlow: Prototypical Networks, Matching Networks, ProtoMAML.

Mirrors :mod:`course_utils.torch.metric` name for name and signature for signature (chapter 8). The NumPy float64
references are in :mod:`course_utils.metric`.

* :func:`convnet_embed` - chapter 6's conv net without its head: the embedding f_θ(x).
  Batch norm uses the statistics of the batch it is given (training, as in chapter 6) or
  fixed statistics from :func:`bn_statistics` (evaluation: every image embedded once, alone).
* :func:`prototypes`, :func:`protonet_logits`, :func:`matching_logits`, :func:`prototype_head`,
  :func:`head_forward` - the classifiers on top of an embedding.
* :func:`metric_episode_loss` - one episode's loss for ``"protonet"``, ``"matchingnet"`` or
  ``"protomaml"``; the three are registered with :func:`register_meta_method`, so
  ``meta_train("protonet", body, sample_batch, forward=convnet_embed)`` trains them.

Parameters are the conv net's dict of :func:`course_utils.nets.init_convnet` without ``head_*``
(a head, if present, is ignored: these methods build their classifier from the support set).
"""
from __future__ import annotations

from typing import Callable

from course_utils.env import configure_tensorflow_env

configure_tensorflow_env()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from course_utils.tensorflow.convnet import conv_body  # noqa: E402
from course_utils.tensorflow.core import adapt, cross_entropy_loss, to_tensor  # noqa: E402
from course_utils.tensorflow.training import register_meta_method  # noqa: E402
from course_utils.validation import (check_bn_stats, check_convnet, check_embedding_pair,  # noqa: E402
                                     check_float, check_linear_head, check_metric_episode, check_optional_int,
                                     check_positive_int, check_support_set)

__all__ = [
    "METRIC_LOSSES",
    "convnet_embed",
    "bn_statistics",
    "embed_images",
    "prototypes",
    "protonet_logits",
    "matching_logits",
    "prototype_head",
    "head_forward",
    "metric_episode_loss",
]

#: The methods :func:`metric_episode_loss` knows (all three are ``meta_train`` methods too).
METRIC_LOSSES = ("protonet", "matchingnet", "protomaml")
_MASKED = -1e9  # the score of "not this class" in matching_logits (exp underflows to exactly 0)


def convnet_embed(params: dict, x, bn_stats: dict | None = None) -> tf.Tensor:
    """The embedding f_θ(x): chapter 6's conv net up to (not including) its head, (n, hidden);
    see :func:`course_utils.torch.convnet_embed` (same arguments, same numbers)."""
    check_convnet(params, x, head=False)
    check_bn_stats(params, bn_stats)
    return conv_body(params, x, bn_stats)


def bn_statistics(params: dict, x, *, batch_size: int = 256) -> dict[str, np.ndarray]:
    """The batch-norm means and variances that ``x`` gives every block (NumPy float32), streamed
    in batches of ``batch_size``; see :func:`course_utils.torch.bn_statistics`."""
    batch_size = check_positive_int(batch_size, "batch_size")
    check_convnet(params, x, head=False)
    x = np.asarray(x)
    check_positive_int(len(x), "len(x) (images to measure)")
    p = {k: to_tensor(v) for k, v in params.items()}
    stats: dict[str, np.ndarray] = {}
    i = 0
    while f"conv{i}_w" in p:
        total, total_sq, count = 0.0, 0.0, 0
        for s in range(0, len(x), batch_size):
            h = tf.cast(conv_body(p, x[s:s + batch_size], stats, stop_at=i), tf.float64)   # (b, H, W, C)
            total = total + tf.reduce_sum(h, (0, 1, 2))
            total_sq = total_sq + tf.reduce_sum(h * h, (0, 1, 2))
            count += h.shape[0] * h.shape[1] * h.shape[2]
        mean = total / count
        stats[f"bn{i}_mean"] = tf.cast(mean, tf.float32).numpy()
        stats[f"bn{i}_var"] = tf.cast(tf.maximum(total_sq / count - mean**2, 0.0), tf.float32).numpy()
        i += 1
    if i == 0:
        raise ValueError(f"params must hold the conv net's conv0_w, bn0_gamma, ...; got keys {sorted(params)}")
    return stats


def embed_images(params: dict, images, bn_stats: dict | None = None, *, batch_size: int = 256,
                 num_threads: int | None = 1) -> np.ndarray:
    """Embeddings (n, hidden) float32 of ``images`` in batches of ``batch_size``; ``num_threads`` is
    validated by the PyTorch half and ignored here (TensorFlow's threads are set at start-up)."""
    batch_size = check_positive_int(batch_size, "batch_size")
    check_convnet(params, images, head=False, x_name="images")
    check_optional_int(num_threads, "num_threads")
    check_bn_stats(params, bn_stats)
    images = np.asarray(images)
    check_positive_int(len(images), "len(images) (images to embed)")
    p = {k: to_tensor(v) for k, v in params.items()}
    out = None                 # filled in place: no small arrays left between the batches' buffers
    for s in range(0, len(images), batch_size):
        z = convnet_embed(p, images[s:s + batch_size], bn_stats).numpy()
        out = np.empty((len(images), z.shape[1]), np.float32) if out is None else out
        out[s:s + len(z)] = z
    return out


def prototypes(z_support: tf.Tensor, y_support: tf.Tensor, n_way: int) -> tf.Tensor:
    """c_k = mean of the support embeddings of class k: (n_way, D)."""
    n_way = check_support_set(z_support, y_support, n_way)
    onehot = tf.one_hot(tf.cast(y_support, tf.int64), n_way, dtype=z_support.dtype)     # (n_s, n_way)
    return tf.matmul(onehot, z_support, transpose_a=True) / tf.reduce_sum(onehot, 0)[:, None]


def protonet_logits(z_query: tf.Tensor, protos: tf.Tensor) -> tf.Tensor:
    """-||z_q - c_k||²: (n_q, n_way)."""
    check_embedding_pair(z_query, protos, ("z_query", "protos"))
    return -tf.reduce_sum(tf.square(z_query[:, None, :] - protos[None, :, :]), -1)


def _unit(z, eps=1e-8):
    return z / tf.maximum(tf.norm(z, axis=-1, keepdims=True), eps)


def matching_logits(z_query: tf.Tensor, z_support: tf.Tensor, y_support: tf.Tensor, n_way: int, *,
                    scale: float = 1.0) -> tf.Tensor:
    """log Σ_{i: y_i = k} exp(scale·cos(z_q, z_i)): (n_q, n_way); see :func:`course_utils.torch.matching_logits`."""
    n_way = check_support_set(z_support, y_support, n_way, z_query)
    check_float(scale, "scale", 0.0, low_open=True)
    s = scale * tf.matmul(_unit(z_query), _unit(z_support), transpose_b=True)             # (n_q, n_s)
    member = tf.transpose(tf.one_hot(tf.cast(y_support, tf.int64), n_way, dtype=s.dtype))  # (n_way, n_s)
    return tf.reduce_logsumexp(s[:, None, :] + (1 - member)[None] * _MASKED, axis=-1)


def prototype_head(protos: tf.Tensor) -> dict:
    """The linear layer with the ProtoNet's softmax: ``{"head_w": 2cᵀ, "head_b": -||c||²}``."""
    check_embedding_pair(protos, protos, ("protos", "protos"))
    return {"head_w": 2 * tf.transpose(protos), "head_b": -tf.reduce_sum(tf.square(protos), -1)}


def head_forward(params: dict, z: tf.Tensor) -> tf.Tensor:
    """A linear head on embeddings: z @ head_w + head_b."""
    check_linear_head(params, z)
    return tf.matmul(z, params["head_w"]) + params["head_b"]


def metric_episode_loss(method: str, params: dict, x_support, y_support, x_query, y_query, *,
                        forward: Callable = convnet_embed, n_way: int | None = None, scale: float = 1.0,
                        inner_lr: float = 0.1, steps: int = 1, first_order: bool = False
                        ) -> tuple[tf.Tensor, tf.Tensor]:
    """Query cross-entropy of ONE episode and the query logits; see
    :func:`course_utils.torch.metric_episode_loss` (same arguments, same numbers)."""
    check_metric_episode(method, params, x_support, y_support, x_query, y_query, forward=forward, n_way=n_way,
                         scale=scale, inner_lr=inner_lr, steps=steps, first_order=first_order, allowed=METRIC_LOSSES)
    xs, xq = to_tensor(x_support), to_tensor(x_query)
    ys, yq = tf.cast(to_tensor(y_support), tf.int64), tf.cast(to_tensor(y_query), tf.int64)
    if xs.shape[1:] != xq.shape[1:] or ys.shape != xs.shape[:1] or yq.shape != xq.shape[:1]:
        raise ValueError("x_support, y_support, x_query, y_query must be (n_s, ...), (n_s,), (n_q, ...), (n_q,) "
                         f"with the same example shape, got {tuple(xs.shape)}, {tuple(ys.shape)}, "
                         f"{tuple(xq.shape)}, {tuple(yq.shape)}")
    n_way = tf.cast(tf.reduce_max(ys), tf.int32) + 1 if n_way is None else n_way
    n_s = xs.shape[0]
    z = forward(params, tf.concat([xs, xq], 0))
    zs, zq = z[:n_s], z[n_s:]
    if method == "protonet":
        logits = protonet_logits(zq, prototypes(zs, ys, n_way))
    elif method == "matchingnet":
        logits = matching_logits(zq, zs, ys, n_way, scale=scale)
    else:
        head = adapt(prototype_head(prototypes(zs, ys, n_way)), zs, ys, inner_lr=inner_lr, steps=steps,
                     first_order=first_order, forward=head_forward, loss_fn=cross_entropy_loss)
        logits = head_forward(head, zq)
    return cross_entropy_loss(logits, yq), logits


def _metric_step(method):
    def make_step(*, inner_lr, steps, first_order, forward, loss_fn, scale=1.0, n_way=None):
        @tf.function(reduce_retracing=True)
        def step(params, x_support, y_support, x_query, y_query):
            names = list(params)
            with tf.GradientTape() as tape:
                tape.watch([params[k] for k in names])
                losses = [metric_episode_loss(method, params, x_support[t], y_support[t], x_query[t], y_query[t],
                                              forward=forward, n_way=n_way, scale=scale, inner_lr=inner_lr,
                                              steps=steps, first_order=first_order)[0]
                          for t in range(x_support.shape[0])]
                loss = tf.reduce_mean(tf.stack(losses))
            grads = tape.gradient(loss, [params[k] for k in names],
                                  unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return loss, dict(zip(names, grads))
        return step
    return make_step


register_meta_method("protonet", _metric_step("protonet"),
                     doc="Prototypical Networks (forward = the embedding, e.g. convnet_embed); option n_way")
register_meta_method("matchingnet", _metric_step("matchingnet"),
                     doc="Matching Networks, cosine attention (forward = the embedding); options scale, n_way")
register_meta_method("protomaml", _metric_step("protomaml"),
                     doc="ProtoMAML: prototype-initialised head adapted by the inner loop; option n_way")
