"""Metric-based meta-learning in NumPy (float64): the references both framework halves are checked
against, and the evaluation of a fixed embedding on thousands of episodes in seconds.

Chapter 8. Every function takes embeddings, not images: ``z_support`` (..., n_support, D) with
integer labels ``y_support`` (..., n_support) in ``0..n_way-1``, ``z_query`` (..., n_query, D); a
leading batch of episodes ``...`` is optional and broadcast through.

* :func:`prototypes`, :func:`squared_distances`, :func:`protonet_logits` - Prototypical Networks
  (Snell et al. 2017): class means, squared Euclidean distance, logits = minus distances.
* :func:`prototype_head` - the same classifier as a linear layer, W = 2c, b = -||c||².
* :func:`cosine_similarities`, :func:`matching_logits` - Matching Networks' attention (Vinyals
  et al. 2016) over cosine similarities, as class scores whose softmax is the attention mass.
* :func:`protonet_loss_and_grad`, :func:`matching_loss_and_grad` - each loss and its gradient in
  closed form (the chapter's formulas), :func:`finetune_head` - ProtoMAML's inner SGD on the head.
* :func:`rotated_classes`, :func:`classify_episodes`, :func:`evaluate_embeddings`, :func:`mean_ci95` -
  evaluation on precomputed embeddings with :class:`course_utils.tasks.EpisodeSampler`.
"""
from __future__ import annotations

import numpy as np

from course_utils.seed import check_rng
from course_utils.tasks import EpisodeSampler
from course_utils.validation import (check_array, check_choice, check_float, check_int, check_labels,
                                     check_positive_int, check_values)

__all__ = [
    "METRIC_METHODS",
    "check_episode",
    "prototypes",
    "squared_distances",
    "protonet_logits",
    "prototype_head",
    "cosine_similarities",
    "matching_logits",
    "log_softmax",
    "protonet_loss_and_grad",
    "matching_loss_and_grad",
    "finetune_head",
    "rotated_classes",
    "classify_episodes",
    "evaluate_embeddings",
    "mean_ci95",
    "pca_2d",
]

#: How :func:`classify_episodes` can decide a query: ``"protonet"`` (nearest prototype, squared
#: Euclidean), ``"cosine_protonet"`` (most cosine-similar prototype), ``"matchingnet"`` (cosine
#: attention over the support set), ``"protomaml"`` (prototype head + SGD on the support set),
#: ``"nearest"`` (1-nearest support example, squared Euclidean: the nearest-neighbour baseline).
METRIC_METHODS = ("protonet", "cosine_protonet", "matchingnet", "protomaml", "nearest")


def check_episode(z_support, y_support, n_way, z_query=None) -> tuple[np.ndarray, np.ndarray, int]:
    """Validate one episode's embeddings and labels (optionally a batch of episodes).

    Returns ``(z_support, y_support int64, n_way)`` (float embeddings keep their dtype).
    Raises ``ValueError`` naming the
    argument: mismatched shapes, labels outside ``0..n_way-1``, a class without support examples,
    or query embeddings of another dimension.
    """
    z = _emb(z_support, "z_support")
    y = np.asarray(check_array(y_support, "y_support", dtype="label", nonempty=False))
    if y.shape != z.shape[:-1]:
        raise ValueError(f"y_support must have shape {z.shape[:-1]} (one label per embedding of z_support "
                         f"{z.shape}), got {y.shape}")
    n_way = check_int(n_way, "n_way", 1)
    check_labels(y, "y_support", n_way)
    counts = (y[..., None] == np.arange(n_way)).sum(-2)
    if np.any(counts == 0):
        raise ValueError(f"y_support must hold every class 0..{n_way - 1} at least once (n_way={n_way})")
    if z_query is not None:
        zq = _emb(z_query, "z_query")
        if zq.ndim != z.ndim or zq.shape[-1] != z.shape[-1] or zq.shape[:-2] != z.shape[:-2]:
            raise ValueError(f"z_query must have shape (..., n_query, {z.shape[-1]}) with the episodes of "
                             f"z_support {z.shape}, got {zq.shape}")
    return z, y.astype(np.int64), n_way


def _one_hot(y: np.ndarray, n_way: int, dtype=np.float64) -> np.ndarray:
    return (np.asarray(y)[..., None] == np.arange(n_way)).astype(dtype)


def _emb(a, name: str, min_ndim: int = 2) -> np.ndarray:
    """Embeddings ``name`` (..., n, D) of real numbers, none empty, as a float array (:func:`_float`)."""
    return _float(check_array(a, name, min_ndim=min_ndim, dtype="real"))


def _same_dim(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"{names[0]} and {names[1]} must have the same last dimension D, "
                         f"got {a.shape} and {b.shape}")


def _float(a) -> np.ndarray:
    """``a`` as a float array: float32 stays float32 (fast evaluation), anything else becomes float64."""
    a = np.asarray(a)
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float64)


def prototypes(z_support, y_support, n_way: int) -> np.ndarray:
    """Class prototypes c_k = mean of the support embeddings of class k: (..., n_way, D)."""
    z, y, n_way = check_episode(z_support, y_support, n_way)
    onehot = _one_hot(y, n_way)                                    # (..., n_s, n_way)
    return np.einsum("...sk,...sd->...kd", onehot, z) / onehot.sum(-2)[..., None]


def squared_distances(a, b) -> np.ndarray:
    """||a_i - b_k||² for a (..., n, D) and b (..., m, D): (..., n, m)."""
    return _squared_distances(a, b)


def _squared_distances(a, b, names: tuple[str, str] = ("a", "b")) -> np.ndarray:
    a, b = _emb(a, names[0]), _emb(b, names[1])
    _same_dim(a, b, names)
    # ||a||² + ||b||² - 2 a·b: no (n, m, D) intermediate, so 20-way episodes of raw pixels fit in memory
    d = (a ** 2).sum(-1)[..., :, None] + (b ** 2).sum(-1)[..., None, :] - 2.0 * np.einsum("...nd,...md->...nm", a, b)
    return np.maximum(d, 0.0)


def protonet_logits(z_query, protos) -> np.ndarray:
    """Prototypical Networks' logits -||f(x) - c_k||²: (..., n_query, n_way)."""
    return -_squared_distances(z_query, protos, ("z_query", "protos"))


def prototype_head(protos) -> tuple[np.ndarray, np.ndarray]:
    """The linear layer equivalent to :func:`protonet_logits`: W = 2cᵀ (..., D, n_way), b = -||c||².

    -||z - c_k||² = 2 c_kᵀz - ||c_k||² - ||z||², and the last term is the same for every class,
    so the softmax of ``z @ W + b`` equals the softmax of the ProtoNet logits.
    """
    c = _emb(protos, "protos").astype(np.float64)
    return 2.0 * np.swapaxes(c, -1, -2), -(c ** 2).sum(-1)


def cosine_similarities(a, b, eps: float = 1e-8) -> np.ndarray:
    """cos(a_i, b_j) for a (..., n, D), b (..., m, D): (..., n, m)."""
    return _cosine_similarities(a, b, eps)


def _cosine_similarities(a, b, eps: float = 1e-8, names: tuple[str, str] = ("a", "b")) -> np.ndarray:
    a, b = _emb(a, names[0]), _emb(b, names[1])
    _same_dim(a, b, names)
    eps = check_float(eps, "eps", 0.0, low_open=True)
    an = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), eps)
    bn = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), eps)
    return np.einsum("...nd,...md->...nm", an, bn)


def _logsumexp(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(x - m), axis=axis))


def log_softmax(logits, axis: int = -1) -> np.ndarray:
    """log softmax along ``axis`` (stable)."""
    x = np.asarray(check_array(logits, "logits", min_ndim=1, dtype="real"), np.float64)
    axis = check_int(axis, "axis", -x.ndim, x.ndim - 1)
    return x - np.expand_dims(_logsumexp(x, axis), axis)


def matching_logits(z_query, z_support, y_support, n_way: int, *, scale: float = 1.0) -> np.ndarray:
    """Matching Networks' class scores: log Σ_{i: y_i = k} exp(scale·cos(f(x), g(x_i))).

    Their softmax over k is exactly the attention mass Σ_{i: y_i=k} a(x, x_i) that Vinyals et al.
    predict with, a = softmax_i(scale·cos). ``scale`` = 1 is the paper's plain cosine.
    """
    z, y, n_way = check_episode(z_support, y_support, n_way, z_query)
    scale = check_float(scale, "scale", 0.0, low_open=True)
    s = scale * _cosine_similarities(z_query, z, names=("z_query", "z_support"))  # (..., n_q, n_s)
    m = s.max(-1, keepdims=True)
    with np.errstate(divide="ignore"):                                # a class whose mass underflows: -inf
        return np.log(np.exp(s - m) @ _one_hot(y, n_way, s.dtype)) + m          # (..., n_q, n_way)


def _query_labels(y_query, z_query, z: np.ndarray, n_way: int) -> np.ndarray:
    """One unbatched episode's query labels: (n_query,) integers in [0, n_way)."""
    if z.ndim != 2:
        raise ValueError(f"z_support must be one unbatched episode (n_support, D), got shape {z.shape}")
    zq = _emb(z_query, "z_query")
    check_array(y_query, "y_query", dtype="label", nonempty=False)
    if np.shape(y_query) != zq.shape[:-1]:
        raise ValueError(f"y_query must have shape {zq.shape[:-1]} (one label per embedding of z_query {zq.shape}), "
                         f"got {np.shape(y_query)}")
    return np.asarray(check_labels(y_query, "y_query", n_way))


def protonet_loss_and_grad(z_support, y_support, z_query, y_query, n_way: int):
    """Mean cross-entropy of the ProtoNet logits and its gradient, in closed form.

    With logits l_qk = -||z_q - c_k||², p_qk = softmax_k(l_qk), one-hot labels Y and
    δ_qk = ∂L/∂l_qk = (p_qk - Y_qk)/n_q:  ∂L/∂z_q = -2 Σ_k δ_qk (z_q - c_k),
    ∂L/∂c_k = 2 Σ_q δ_qk (z_q - c_k), and each of the K_k support examples of class k receives
    ∂L/∂c_k / K_k. Returns ``(loss, dL/dz_support, dL/dz_query)`` for ONE episode.
    """
    z, y, n_way = check_episode(z_support, y_support, n_way, z_query)
    yq = _query_labels(y_query, z_query, z, n_way)
    zq = np.asarray(z_query, np.float64)
    c = prototypes(z, y, n_way)
    logp = log_softmax(protonet_logits(zq, c))
    n_q = zq.shape[0]
    loss = -logp[np.arange(n_q), yq].mean()
    delta = (np.exp(logp) - _one_hot(yq, n_way)) / n_q               # ∂L/∂logits (n_q, n_way)
    diff = zq[:, None, :] - c[None]                                  # z_q - c_k
    d_zq = -2.0 * np.einsum("qk,qkd->qd", delta, diff)                # logits = -||z_q - c_k||²
    d_c = 2.0 * np.einsum("qk,qkd->kd", delta, diff)
    counts = _one_hot(y, n_way).sum(0)
    d_zs = d_c[y] / counts[y][:, None]
    return float(loss), d_zs, d_zq


def matching_loss_and_grad(z_support, y_support, z_query, y_query, n_way: int, *, scale: float = 1.0):
    """Matching Networks' loss -mean log Σ_{i∈y} a_i and its gradient with respect to the scaled
    similarities s_qi = scale·cos(z_q, z_i): ∂L/∂s_qi = (a_qi - 1[y_i = y_q]·a_qi / P_q) / n_q,
    with P_q the attention mass on the correct class. Returns ``(loss, dL/ds)`` for ONE episode."""
    z, y, n_way = check_episode(z_support, y_support, n_way, z_query)
    yq = _query_labels(y_query, z_query, z, n_way)
    scale = check_float(scale, "scale", 0.0, low_open=True)
    s = scale * _cosine_similarities(z_query, z, names=("z_query", "z_support"))
    a = np.exp(log_softmax(s))                                       # attention (n_q, n_s)
    same = (y[None, :] == yq[:, None]).astype(np.float64)
    mass = (a * same).sum(1, keepdims=True)
    n_q = s.shape[0]
    return float(-np.log(mass).mean()), (a - same * a / mass) / n_q


def finetune_head(head_w, head_b, z_support, y_support, *, inner_lr: float, steps: int):
    """ProtoMAML's inner loop on a linear head, in closed form: ``steps`` SGD steps on the mean
    cross-entropy of ``z_support @ W + b``, whose gradients are zᵀ(P - Y)/n and mean(P - Y).

    Shapes: W (..., D, n_way), b (..., n_way), z_support (..., n_s, D). Returns (W, b)."""
    check_float(inner_lr, "inner_lr", 0.0)
    steps = check_int(steps, "steps", 0)
    w = _emb(head_w, "head_w").astype(np.float64)
    d, n_way = w.shape[-2:]
    check_array(head_b, "head_b", dtype="real")
    if np.shape(head_b) != w.shape[:-2] + (n_way,):
        raise ValueError(f"head_b must have shape {w.shape[:-2] + (n_way,)} (one bias per class of head_w "
                         f"{w.shape}), got {np.shape(head_b)}")
    b = np.asarray(head_b, np.float64)
    z = _emb(z_support, "z_support").astype(np.float64)
    if z.shape[-1] != d:
        raise ValueError(f"z_support must have D = {d} features (head_w is (..., D, n_way) {w.shape}), got {z.shape}")
    check_array(y_support, "y_support", dtype="label", nonempty=False)
    if np.shape(y_support) != z.shape[:-1]:
        raise ValueError(f"y_support must have shape {z.shape[:-1]} (one label per embedding of z_support "
                         f"{z.shape}), got {np.shape(y_support)}")
    onehot = _one_hot(check_labels(y_support, "y_support", n_way), n_way)
    n = z.shape[-2]
    for _ in range(steps):
        delta = (np.exp(log_softmax(z @ w + b[..., None, :])) - onehot) / n
        w = w - inner_lr * np.swapaxes(z, -1, -2) @ delta
        b = b - inner_lr * delta.sum(-2)
    return w, b


# --------------------------------------------------------------------------- evaluation on embeddings
def rotated_classes(images) -> np.ndarray:
    """Every character in 4 rotations as its own class: (C, n, H, W) → (4C, n, H, W), class 4c + r
    being character c turned r quarter turns (the convention of ``EpisodeSampler(rotations=True)``)."""
    images = np.asarray(check_array(images, "images", ndim=4))
    if images.shape[-1] != images.shape[-2]:
        raise ValueError(f"images must be (n_classes, n_per_class, S, S), got shape {images.shape}")
    rot = np.stack([np.rot90(images, k=r, axes=(-2, -1)) for r in range(4)], axis=1)
    return np.ascontiguousarray(rot.reshape(-1, *images.shape[1:]))


def classify_episodes(method: str, z_support, y_support, z_query, n_way: int, *, scale: float = 1.0,
                      inner_lr: float = 0.1, steps: int = 5) -> np.ndarray:
    """Predicted labels (..., n_query) of a batch of episodes given as embeddings.

    Args:
        method: one of :data:`METRIC_METHODS`.
        z_support, y_support, z_query: (..., n_s, D), (..., n_s), (..., n_q, D).
        scale: the Matching Networks cosine scale.
        inner_lr, steps: ProtoMAML's SGD on the prototype-initialised head.
    """
    check_choice(method, "method", METRIC_METHODS)
    z, y, n_way = check_episode(z_support, y_support, n_way, z_query)
    zq = _float(z_query)
    scale = check_float(scale, "scale", 0.0, low_open=True)
    inner_lr = check_float(inner_lr, "inner_lr", 0.0)
    steps = check_int(steps, "steps", 0)
    if method == "protonet":
        scores = protonet_logits(zq, prototypes(z, y, n_way))
    elif method == "cosine_protonet":
        scores = cosine_similarities(zq, prototypes(z, y, n_way))
    elif method == "matchingnet":
        scores = matching_logits(zq, z, y, n_way, scale=scale)
    elif method == "protomaml":
        w, b = finetune_head(*prototype_head(prototypes(z, y, n_way)), z, y, inner_lr=inner_lr, steps=steps)
        scores = zq @ w + b[..., None, :]
    else:
        nearest = np.argmin(squared_distances(zq, z), axis=-1)        # (..., n_q)
        return np.take_along_axis(y, nearest, axis=-1)
    return np.argmax(scores, axis=-1)


def evaluate_embeddings(embeddings, method: str = "protonet", *, n_way: int = 5, k_shot: int = 1,
                        n_query: int = 15, n_episodes: int = 600, rng: np.random.Generator | int | None = None,
                        chunk: int = 100, **method_options) -> np.ndarray:
    """Accuracy of each of ``n_episodes`` N-way K-shot episodes on precomputed embeddings.

    Args:
        embeddings: (n_classes, n_per_class, D), e.g. a network's features of
            :func:`rotated_classes` of the test characters (or raw pixels, flattened).
        method: one of :data:`METRIC_METHODS`; ``method_options`` go to :func:`classify_episodes`.
        n_way, k_shot, n_query: the episodes (validated by ``EpisodeSampler``: n_way at most the
            classes available, k_shot + n_query at most the examples per class).
        n_episodes: episodes (>= 1); the same ``rng`` seed gives the same episodes for every method.
        chunk: episodes classified at once (memory).

    Returns:
        (n_episodes,) float accuracies; see :func:`mean_ci95`.
    """
    emb = np.asarray(check_array(embeddings, "embeddings", ndim=3, dtype="real"))
    check_choice(method, "method", METRIC_METHODS)
    n_episodes = check_positive_int(n_episodes, "n_episodes")
    chunk = check_positive_int(chunk, "chunk")
    sampler = EpisodeSampler(emb, n_way=n_way, k_shot=k_shot, n_query=n_query)
    rng = check_rng(rng)
    acc = []
    for start in range(0, n_episodes, chunk):
        ep = sampler.sample_batch(min(chunk, n_episodes - start), rng)
        pred = classify_episodes(method, ep.x_support, ep.y_support, ep.x_query, n_way, **method_options)
        acc.append((pred == ep.y_query).mean(-1))
    return np.concatenate(acc)


def mean_ci95(values) -> tuple[float, float]:
    """Mean and the half-width of its normal 95 % confidence interval, 1.96·s/√n."""
    v = check_values(values, "values", 2)
    return float(v.mean()), float(1.96 * v.std(ddof=1) / np.sqrt(v.size))


def pca_2d(points) -> np.ndarray:
    """Project (n, D) points on their first two principal axes (centred): (n, 2)."""
    x = np.asarray(check_array(points, "points", ndim=2, dtype="real"), np.float64)
    if x.shape[0] < 2:
        raise ValueError(f"points must be (n >= 2, D), got shape {x.shape}")
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return x @ vt[:2].T
