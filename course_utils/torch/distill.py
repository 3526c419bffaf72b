"""Chapter 4 in PyTorch: classification with a λ-weighted divergence to a target distribution.

The objective is ``L(θ) + λ·D(p_θ, p*)`` with D a Kullback-Leibler divergence:

* :func:`kl_regularised_loss` / :func:`kl_regularised_gradient` - softmax regression on a few
  labelled points plus ``λ·KL(p* ‖ p_θ)`` on unlabelled points, where p* is a known posterior.
* :func:`distillation_kl` - Hinton et al.'s (2015) temperature-softened KL, scaled by T².
* :func:`lwf_forward` / :func:`lwf_loss` / :func:`lwf_finetune` - Learning without Forgetting
  (Li & Hoiem 2016): a student that shares the teacher's features learns a new head on a
  K-shot task while λ·T²·KL keeps its old-task predictions close to the teacher's.
* :func:`train_classifier` - the teacher's ordinary minibatch training (the course's one Adam,
  :func:`course_utils.torch.adam_step`).

Mirrors :mod:`course_utils.tensorflow.distill` name for name. Parameters are dicts in the layout
of :mod:`course_utils.nets`; the LwF network uses ``w0, b0, w1, b1`` (shared features),
``w_old, b_old`` (teacher head) and ``w_new, b_new`` (new-task head). Every function also accepts
*batched* parameters with a leading axis B (one copy per episode or per λ): their losses are
independent, so the gradient of the summed loss is every copy's own gradient.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from course_utils.seed import check_rng
from course_utils.torch.core import adam_init, adam_step, from_numpy, to_tensor
from course_utils.validation import (check_array, check_float, check_images_labels, check_int, check_kl_inputs,
                                     check_labels, check_lwf_call, check_lwf_params, check_names, check_params,
                                     check_positive_int, check_probabilities, check_rows, check_tensor_float32)

__all__ = [
    "kl_divergence",
    "distillation_kl",
    "softmax_regression_logits",
    "kl_regularised_loss",
    "kl_regularised_gradient",
    "fit_kl_regularised",
    "lwf_forward",
    "lwf_loss",
    "lwf_finetune",
    "train_classifier",
]


def kl_divergence(p_star: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Mean over rows of KL(p* ‖ softmax(logits)) in nats.

    Args:
        p_star: target probabilities (..., n, C), rows sum to one (zeros allowed).
        logits: the model's logits (..., n, C).

    Returns:
        Shape ``(...)``: a scalar for unbatched input, (B,) for a batch of B.
    """
    check_probabilities(p_star, "p_star")
    check_rows(p_star=p_star, logits=logits)
    check_tensor_float32(logits, "logits")
    p_star, logits = to_tensor(p_star, "float32"), to_tensor(logits, "float32")
    log_q = F.log_softmax(logits, dim=-1)
    kl = torch.special.xlogy(p_star, p_star) - p_star * log_q
    return kl.sum(-1).mean(-1)


def distillation_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, *,
                    temperature: float = 1.0) -> torch.Tensor:
    """Hinton et al.'s distillation term T²·KL(softmax(t/T) ‖ softmax(s/T)), mean over rows.

    The T² keeps the gradient's size roughly independent of T (its gradient with respect to
    the student logits is T·(softmax(s/T) − softmax(t/T))). Shapes: (..., n, C) → (...).
    """
    temperature = check_float(temperature, "temperature", 0.0, low_open=True)
    check_rows(teacher_logits=teacher_logits, student_logits=student_logits)
    check_tensor_float32(student_logits, "student_logits")
    student_logits = to_tensor(student_logits, "float32")
    p_teacher = F.softmax(to_tensor(teacher_logits, "float32") / temperature, dim=-1)
    return temperature**2 * kl_divergence(p_teacher, student_logits / temperature)


# --------------------------------------------------------------------------- 2-D Gaussian part
def softmax_regression_logits(params: dict, x: torch.Tensor) -> torch.Tensor:
    """Logits x W + b of softmax (multinomial logistic) regression: x (n, d) → (n, C).

    ``params = {"w0": (d, C), "b0": (C,)}`` (:func:`course_utils.nets.init_mlp` with sizes (d, C)).
    """
    check_params(params, mlp=True, keys=("w0", "b0"))
    check_array(x, "x", min_ndim=2, last=tuple(params["w0"].shape)[-2], dtype="real")
    return to_tensor(x, "float32") @ params["w0"] + params["b0"]


def kl_regularised_loss(params: dict, x_labelled, y_labelled, x_unlabelled, p_star, *,
                        lam: float = 0.0) -> torch.Tensor:
    """J(θ) = mean CE on the labelled points + λ · mean KL(p*(x) ‖ p_θ(x)) on the unlabelled ones.

    Shapes: ``x_labelled`` (n, d), ``y_labelled`` (n,), ``x_unlabelled`` (m, d),
    ``p_star`` (m, C). ``lam`` >= 0.
    """
    check_kl_inputs(params, x_labelled, y_labelled, x_unlabelled, p_star, lam)
    ce = F.cross_entropy(softmax_regression_logits(params, x_labelled), to_tensor(y_labelled, "int64"))
    return ce + lam * kl_divergence(p_star, softmax_regression_logits(params, x_unlabelled))


def kl_regularised_gradient(params: dict[str, np.ndarray], x_labelled, y_labelled, x_unlabelled,
                            p_star, *, lam: float = 0.0) -> tuple[float, dict[str, np.ndarray]]:
    """J(θ) and its autograd gradient, NumPy in and out (compare with the closed form and TF)."""
    check_kl_inputs(params, x_labelled, y_labelled, x_unlabelled, p_star, lam)
    theta = from_numpy(params)
    loss = kl_regularised_loss(theta, x_labelled, y_labelled, x_unlabelled, p_star, lam=lam)
    grads = torch.autograd.grad(loss, list(theta.values()))
    return float(loss.detach()), {k: g.numpy() for k, g in zip(theta, grads)}


def fit_kl_regularised(params: dict[str, np.ndarray], x_labelled, y_labelled, x_unlabelled, p_star,
                       *, lam: float = 0.0, steps: int = 200, lr: float = 0.5
                       ) -> tuple[dict[str, np.ndarray], list[float]]:
    """Full-batch gradient descent on :func:`kl_regularised_loss` with step ``lr / (1 + λ)``.

    The step shrinks with λ because the objective's curvature grows with λ; this changes the
    path, not the minimiser. ``lam`` >= 0 (a number), ``steps`` >= 0, ``lr`` finite and > 0.
    Returns the fitted NumPy params and the loss history (steps,).
    """
    check_kl_inputs(params, x_labelled, y_labelled, x_unlabelled, p_star, lam)
    lam = check_float(lam, "lam", 0.0)
    steps = check_int(steps, "steps", 0)
    lr = check_float(lr, "lr", 0.0, low_open=True)
    theta = from_numpy(params)
    step = lr / (1.0 + lam)
    history = []
    for _ in range(steps):
        loss = kl_regularised_loss(theta, x_labelled, y_labelled, x_unlabelled, p_star, lam=lam)
        grads = torch.autograd.grad(loss, list(theta.values()))
        with torch.no_grad():
            for p, g in zip(theta.values(), grads):
                p -= step * g
        history.append(float(loss.detach()))
    return {k: v.detach().numpy().copy() for k, v in theta.items()}, history


# --------------------------------------------------------------------------- Learning without Forgetting
def _linear(h, w, b):
    return h @ w + b[..., None, :]


def lwf_forward(params: dict, x) -> tuple[torch.Tensor, torch.Tensor]:
    """Shared ReLU features, then the old (teacher) head and the new-task head.

    Args:
        params: ``w0 (D, H0), b0, w1 (H0, H1), b1, w_old (H1, C_old), b_old, w_new (H1, N), b_new``,
            each optionally with a leading batch axis B.
        x: images flattened to (n, D) or (B, n, D), float in [0, 1] (or uint8, ink = 255).

    Returns:
        ``(old_logits, new_logits)``: (…, n, C_old) and (…, n, N). A params dict without
        ``w_new`` (the teacher) returns ``new_logits = None``.
    """
    check_lwf_call(params, x, x_name="x")
    h = torch.relu(_linear(to_tensor(x), params["w0"], params["b0"]))
    h = torch.relu(_linear(h, params["w1"], params["b1"]))
    old = _linear(h, params["w_old"], params["b_old"])
    new = _linear(h, params["w_new"], params["b_new"]) if "w_new" in params else None
    return old, new


def lwf_loss(params: dict, x_support, y_support, teacher_old_logits, *, lam=0.0,
             temperature: float = 2.0) -> torch.Tensor:
    """Learning without Forgetting: CE(new head, y) + λ·T²·KL(teacher_old/T ‖ student_old/T).

    Shapes: ``x_support`` (…, n, D), ``y_support`` (…, n) ints, ``teacher_old_logits``
    (…, n, C_old) recorded once from the frozen teacher. ``lam`` a float or a (B,) array
    (one λ per batched copy). Returns (…,): one loss per copy.
    """
    check_lwf_call(params, x_support, y_support, teacher_old_logits, lam=lam, temperature=temperature)
    old, new = lwf_forward(params, x_support)
    y = to_tensor(y_support, "int64")
    ce = -torch.gather(F.log_softmax(new, dim=-1), -1, y[..., None])[..., 0].mean(-1)
    return ce + to_tensor(lam, "float32") * distillation_kl(teacher_old_logits, old, temperature=temperature)


def _per_copy(step: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Reshape a (B,) step size to broadcast over a batched weight (B, ...)."""
    return step.reshape(step.shape + (1,) * (g.ndim - step.ndim))


def lwf_finetune(params: dict[str, np.ndarray], x_support, y_support, *, lam=0.0,
                 temperature: float = 2.0, steps: int = 40, lr: float = 0.1,
                 frozen: tuple[str, ...] = ("w0", "b0")) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Fine-tune the student on the K-shot task with the LwF objective (full-batch gradient descent).

    Each copy steps by ``lr / (1 + λ)``: the objective's curvature grows with λ, and this keeps
    large λ stable without changing the minimiser (as in :func:`fit_kl_regularised`). Plain
    gradient descent, not Adam: Adam divides by √v, which turns the rounding noise of a gradient
    that is zero in exact arithmetic (the KL term at the start, where student = teacher) into
    full-size steps, so PyTorch and TensorFlow would drift apart.

    The teacher's old-head logits on the support images are recorded once from the starting
    weights (which must hold the teacher's features and head, plus a new head).

    Args:
        params: NumPy dict as in :func:`lwf_forward`, unbatched or batched (leading B). A frozen
            weight may stay unbatched (shared by all copies), which saves memory and time.
        x_support: float (n, D) or (B, n, D); y_support: ints (n,) or (B, n).
        lam: λ >= 0, a float or a (B,) array.
        temperature: T > 0. steps: >= 0 gradient steps. lr: the step size (finite, > 0).
        frozen: names of weights that are not trained (default: the pixel-level first layer).

    Returns:
        ``(params, history)``: fine-tuned NumPy params and the loss history (steps, …).
    """
    steps = check_int(steps, "steps", 0)
    lr = check_float(lr, "lr", 0.0, low_open=True)
    frozen = check_names(frozen, "frozen", check_params(params))
    check_lwf_call(params, x_support, y_support, lam=lam, temperature=temperature)
    theta = from_numpy(params, requires_grad=False)
    x = to_tensor(x_support)
    with torch.no_grad():
        teacher_old, _ = lwf_forward(theta, x)
    names = [k for k in theta if k not in frozen]
    step = lr / (1.0 + to_tensor(lam, "float32"))  # a scalar or one step size per copy
    history = []
    for _ in range(steps):
        for k in names:
            theta[k].requires_grad_(True)
        loss = lwf_loss(theta, x, y_support, teacher_old, lam=lam, temperature=temperature)
        grads = torch.autograd.grad(loss.sum(), [theta[k] for k in names])
        for k in names:
            theta[k].requires_grad_(False)
        with torch.no_grad():
            for k, g in zip(names, grads):
                theta[k].sub_(_per_copy(step, g) * g)
        history.append(loss.detach().numpy().copy())
    return {k: v.numpy().copy() for k, v in theta.items()}, np.asarray(history, dtype=np.float32)


def train_classifier(params: dict[str, np.ndarray], images: np.ndarray, labels: np.ndarray, *,
                     epochs: int = 5, batch_size: int = 128, lr: float = 1e-3,
                     rng: np.random.Generator | int | None = 0) -> tuple[dict[str, np.ndarray], list[float]]:
    """Train the teacher (features + old head) by minibatch Adam on the cross-entropy.

    The course's one Adam (:func:`course_utils.torch.adam_step`, ``torch.optim.Adam``'s arithmetic).

    Args:
        params: NumPy dict with ``w0, b0, w1, b1, w_old, b_old``.
        images: uint8 (n, 28, 28) or (n, D), ink = 255 (converted to float in [0, 1] per batch),
            or float images already in [0, 1].
        labels: ints (n,) in [0, C_old).
        epochs, batch_size: >= 1. lr: Adam's step size (finite, > 0).
        rng: shuffles the data (same order in both frameworks).

    Returns:
        ``(params, history)``: trained NumPy params and the mean loss of every epoch.
    """
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    lr = check_float(lr, "lr", 0.0, low_open=True)
    rng = check_rng(rng)
    d, c_old, _ = check_lwf_params(params)
    flat, labels = check_images_labels(images, labels)
    check_array(flat, "images", last=d, dtype="image")
    check_labels(labels, "labels", c_old)
    theta = from_numpy(params)
    state = adam_init(theta)
    names = list(theta)
    history = []
    for _ in range(epochs):
        order = rng.permutation(len(flat))
        losses = []
        for start in range(0, len(flat), batch_size):
            idx = order[start:start + batch_size]
            xb, yb = to_tensor(flat[idx]), to_tensor(labels[idx], "int64")
            loss = F.cross_entropy(lwf_forward(theta, xb)[0], yb)
            grads = torch.autograd.grad(loss, [theta[k] for k in names])
            adam_step(theta, dict(zip(names, grads)), state, lr=lr)
            losses.append(float(loss.detach()))
        history.append(float(np.mean(losses)))
    return {k: v.detach().numpy().copy() for k, v in theta.items()}, history
