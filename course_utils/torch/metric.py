"""Metric-based meta-learning in PyTorch: Prototypical Networks, Matching Networks, ProtoMAML.

Mirrors :mod:`course_utils.tensorflow.metric` name for name (chapter 8). The NumPy float64
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

import numpy as np
import torch
import torch.nn.functional as F

from course_utils.torch.convnet import conv_body
from course_utils.torch.core import adapt, cross_entropy_loss, to_tensor
from course_utils.torch.core import num_threads as pin_threads
from course_utils.torch.training import register_meta_method
from course_utils.validation import (check_bn_stats, check_convnet, check_embedding_pair,
                                     check_float, check_linear_head, check_metric_episode,
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


def convnet_embed(params: dict, x, bn_stats: dict | None = None) -> torch.Tensor:
    """The embedding f_θ(x): chapter 6's conv net up to (not including) its head, (n, hidden).

    ``convnet_embed(p, x) @ p["head_w"] + p["head_b"]`` is ``convnet_forward(p, x)``. Images
    ``x`` (n, H, W) or (n, H, W, C); uint8 NumPy images are scaled to [0, 1].

    Args:
        bn_stats: None - batch norm normalises with the statistics of ``x`` (as in training);
            or the dict of :func:`bn_statistics` - fixed statistics, so each image's embedding
            does not depend on the others in the batch.
    """
    check_convnet(params, x, head=False)
    check_bn_stats(params, bn_stats)
    return conv_body(params, x, bn_stats)


def bn_statistics(params: dict, x, *, batch_size: int = 256) -> dict[str, np.ndarray]:
    """The batch-norm means and variances that ``x`` (a large batch of training images) gives
    every block: ``{"bn0_mean": (hidden,), "bn0_var": (hidden,), ...}`` (NumPy float32).

    The numbers are those of one batch holding all of ``x`` (up to float rounding), but ``x`` is
    streamed in batches of ``batch_size``: block i's sums are accumulated over every batch (in
    float64) before block i + 1 runs with them, so memory stays that of one batch (2,000 images
    in one batch would cost ~150 MB more).
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    check_convnet(params, x, head=False)
    x = np.asarray(x)
    check_positive_int(len(x), "len(x) (images to measure)")
    p = {k: to_tensor(v) for k, v in params.items()}
    stats: dict[str, np.ndarray] = {}
    with torch.no_grad():
        i = 0
        while f"conv{i}_w" in p:
            total, total_sq, count = 0.0, 0.0, 0
            for s in range(0, len(x), batch_size):
                h = conv_body(p, x[s:s + batch_size], stats, stop_at=i).double()    # (b, C, H, W)
                total, total_sq = total + h.sum((0, 2, 3)), total_sq + (h * h).sum((0, 2, 3))
                count += h.shape[0] * h.shape[2] * h.shape[3]
            mean = total / count
            stats[f"bn{i}_mean"] = mean.float().numpy()
            stats[f"bn{i}_var"] = (total_sq / count - mean**2).clamp_min(0).float().numpy()
            i += 1
    if i == 0:
        raise ValueError(f"params must hold the conv net's conv0_w, bn0_gamma, ...; got keys {sorted(params)}")
    return stats


def embed_images(params: dict, images, bn_stats: dict | None = None, *, batch_size: int = 256,
                 num_threads: int | None = 1) -> np.ndarray:
    """Embeddings (n, hidden) float32 of ``images`` (n, H, W), computed without a graph in
    batches of ``batch_size`` (with ``bn_stats=None`` each batch normalises with its own statistics)."""
    batch_size = check_positive_int(batch_size, "batch_size")
    check_convnet(params, images, head=False, x_name="images")
    check_bn_stats(params, bn_stats)
    images = np.asarray(images)
    check_positive_int(len(images), "len(images) (images to embed)")
    p = {k: to_tensor(v) if not isinstance(v, torch.Tensor) else v.detach() for k, v in params.items()}
    out = None                 # filled in place: no small arrays left between the batches' buffers
    with torch.no_grad(), pin_threads(num_threads):
        for s in range(0, len(images), batch_size):
            z = convnet_embed(p, images[s:s + batch_size], bn_stats)
            out = np.empty((len(images), z.shape[1]), np.float32) if out is None else out
            out[s:s + len(z)] = z.numpy()
    return out


def prototypes(z_support: torch.Tensor, y_support: torch.Tensor, n_way: int) -> torch.Tensor:
    """c_k = mean of the support embeddings of class k: (n_way, D) from (n_s, D) and labels (n_s,)."""
    n_way = check_support_set(z_support, y_support, n_way)
    onehot = F.one_hot(to_tensor(y_support, "int64"), n_way).to(z_support.dtype)      # (n_s, n_way)
    return (onehot.T @ z_support) / onehot.sum(0)[:, None]


def protonet_logits(z_query: torch.Tensor, protos: torch.Tensor) -> torch.Tensor:
    """-||z_q - c_k||²: (n_q, n_way). Softmax over them is ProtoNets' p(y = k | x)."""
    check_embedding_pair(z_query, protos, ("z_query", "protos"))
    return -((z_query[:, None, :] - protos[None, :, :]) ** 2).sum(-1)


def _unit(z, eps=1e-8):
    return z / torch.clamp(torch.linalg.vector_norm(z, dim=-1, keepdim=True), min=eps)


def matching_logits(z_query: torch.Tensor, z_support: torch.Tensor, y_support: torch.Tensor, n_way: int, *,
                    scale: float = 1.0) -> torch.Tensor:
    """log Σ_{i: y_i = k} exp(scale·cos(z_q, z_i)): (n_q, n_way); its softmax over k is Matching
    Networks' attention mass on class k (Vinyals et al. 2016; ``scale`` = 1 in the paper)."""
    n_way = check_support_set(z_support, y_support, n_way, z_query)
    check_float(scale, "scale", 0.0, low_open=True)
    s = scale * (_unit(z_query) @ _unit(z_support).T)                                  # (n_q, n_s)
    member = F.one_hot(to_tensor(y_support, "int64"), n_way).T.to(s.dtype)              # (n_way, n_s)
    return torch.logsumexp(s[:, None, :] + (1 - member)[None] * _MASKED, dim=-1)


def prototype_head(protos: torch.Tensor) -> dict[str, torch.Tensor]:
    """The linear layer with the ProtoNet's softmax: ``{"head_w": 2cᵀ (D, n_way), "head_b": -||c||²}``."""
    check_embedding_pair(protos, protos, ("protos", "protos"))
    return {"head_w": 2 * protos.T, "head_b": -(protos ** 2).sum(-1)}


def head_forward(params: dict, z: torch.Tensor) -> torch.Tensor:
    """A linear head on embeddings: z @ head_w + head_b."""
    check_linear_head(params, z)
    return z @ params["head_w"] + params["head_b"]


def metric_episode_loss(method: str, params: dict, x_support, y_support, x_query, y_query, *,
                        forward: Callable = convnet_embed, n_way: int | None = None, scale: float = 1.0,
                        inner_lr: float = 0.1, steps: int = 1, first_order: bool = False
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Query cross-entropy of ONE episode and the query logits, for ``method`` in :data:`METRIC_LOSSES`.

    Support and query images are embedded together (one batch, as Snell et al.'s code does).
    ``"protonet"``: logits -||f(x) - c_k||²; ``"matchingnet"``: :func:`matching_logits`;
    ``"protomaml"``: the head :func:`prototype_head` adapted by chapter 6's inner loop
    (:func:`course_utils.torch.adapt`: ``steps`` SGD steps of size ``inner_lr`` on the support
    loss; ``first_order`` drops its second derivatives) on the fixed support embeddings.
    With ``steps=0`` ProtoMAML's loss is exactly ProtoNets'.

    Args:
        n_way: classes in the episode (None: ``max(y_support) + 1``).
    """
    check_metric_episode(method, params, x_support, y_support, x_query, y_query, forward=forward, n_way=n_way,
                         scale=scale, inner_lr=inner_lr, steps=steps, first_order=first_order, allowed=METRIC_LOSSES)
    xs, xq = to_tensor(x_support), to_tensor(x_query)
    ys, yq = to_tensor(y_support, "int64"), to_tensor(y_query, "int64")
    if xs.shape[1:] != xq.shape[1:] or ys.shape != xs.shape[:1] or yq.shape != xq.shape[:1]:
        raise ValueError("x_support, y_support, x_query, y_query must be (n_s, ...), (n_s,), (n_q, ...), (n_q,) "
                         f"with the same example shape, got {tuple(xs.shape)}, {tuple(ys.shape)}, "
                         f"{tuple(xq.shape)}, {tuple(yq.shape)}")
    n_way = int(ys.max()) + 1 if n_way is None else n_way
    z = forward(params, torch.cat([xs, xq]))
    zs, zq = z[: xs.shape[0]], z[xs.shape[0]:]
    if method == "protonet":
        logits = protonet_logits(zq, prototypes(zs, ys, n_way))
    elif method == "matchingnet":
        logits = matching_logits(zq, zs, ys, n_way, scale=scale)
    else:
        head = {k: v if v.requires_grad else v.detach().requires_grad_(True)  # plain tensors: still adaptable
                for k, v in prototype_head(prototypes(zs, ys, n_way)).items()}
        head = adapt(head, zs, ys, inner_lr=inner_lr, steps=steps,
                     first_order=first_order, forward=head_forward, loss_fn=cross_entropy_loss)
        logits = head_forward(head, zq)
    return cross_entropy_loss(logits, yq), logits


def _metric_step(method):
    def make_step(*, inner_lr, steps, first_order, forward, loss_fn, scale=1.0, n_way=None):
        def step(params, x_support, y_support, x_query, y_query):
            theta = {k: v.detach().requires_grad_(True) for k, v in params.items()}
            losses = [metric_episode_loss(method, theta, x_support[t], y_support[t], x_query[t], y_query[t],
                                          forward=forward, n_way=n_way, scale=scale, inner_lr=inner_lr,
                                          steps=steps, first_order=first_order)[0]
                      for t in range(x_support.shape[0])]
            loss = torch.stack(losses).mean()
            grads = torch.autograd.grad(loss, list(theta.values()), allow_unused=True)
            return loss.detach(), {k: (torch.zeros_like(theta[k]) if g is None else g)
                                   for k, g in zip(theta, grads)}
        return step
    return make_step


register_meta_method("protonet", _metric_step("protonet"),
                     doc="Prototypical Networks (forward = the embedding, e.g. convnet_embed); option n_way")
register_meta_method("matchingnet", _metric_step("matchingnet"),
                     doc="Matching Networks, cosine attention (forward = the embedding); options scale, n_way")
register_meta_method("protomaml", _metric_step("protomaml"),
                     doc="ProtoMAML: prototype-initialised head adapted by the inner loop; option n_way")
