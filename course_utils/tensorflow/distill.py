"""Chapter 4 in TensorFlow: classification with a λ-weighted divergence to a target distribution.

Mirrors :mod:`course_utils.torch.distill` name for name (see its docstring for the maths):
:func:`kl_divergence`, :func:`distillation_kl`, the 2-D softmax-regression objective
:func:`kl_regularised_loss` with its gradient and fit, Learning without Forgetting
(:func:`lwf_forward`, :func:`lwf_loss`, :func:`lwf_finetune`), Adam and the teacher's training.
Gradients come from ``tf.GradientTape`` over explicit weight dicts; batched parameters (a leading
axis B) broadcast through ``tf.matmul``.
"""
from __future__ import annotations

from course_utils.env import configure_tensorflow_env

configure_tensorflow_env()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from course_utils.validation import (check_epochs_batch_size, check_nonnegative, check_steps,  # noqa: E402
                                  check_temperature)
from course_utils.seed import check_rng  # noqa: E402
from course_utils.tensorflow.core import from_numpy  # noqa: E402

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
    "adam_init",
    "adam_step",
    "train_classifier",
]


def _t(a, dtype=tf.float32) -> tf.Tensor:
    if isinstance(a, (tf.Tensor, tf.Variable)):
        return a if a.dtype == dtype else tf.cast(a, dtype)
    return tf.convert_to_tensor(np.asarray(a), dtype=dtype)


def kl_divergence(p_star, logits) -> tf.Tensor:
    """Mean over rows of KL(p* ‖ softmax(logits)) in nats: (..., n, C) → (...)."""
    p_star = _t(p_star)
    log_q = tf.nn.log_softmax(logits, axis=-1)
    kl = tf.math.xlogy(p_star, p_star) - p_star * log_q
    return tf.reduce_mean(tf.reduce_sum(kl, axis=-1), axis=-1)


def distillation_kl(teacher_logits, student_logits, *, temperature: float = 1.0) -> tf.Tensor:
    """Hinton et al.'s T²·KL(softmax(t/T) ‖ softmax(s/T)), mean over rows: (..., n, C) → (...)."""
    check_temperature(temperature)
    p_teacher = tf.nn.softmax(_t(teacher_logits) / temperature, axis=-1)
    return temperature**2 * kl_divergence(p_teacher, student_logits / temperature)


# --------------------------------------------------------------------------- 2-D Gaussian part
def softmax_regression_logits(params: dict, x) -> tf.Tensor:
    """Logits x W + b: x (n, d) → (n, C), ``params = {"w0": (d, C), "b0": (C,)}``."""
    return tf.matmul(_t(x), params["w0"]) + params["b0"]


def kl_regularised_loss(params: dict, x_labelled, y_labelled, x_unlabelled, p_star, *,
                        lam: float = 0.0) -> tf.Tensor:
    """J(θ) = mean CE on the labelled points + λ · mean KL(p*(x) ‖ p_θ(x)) on the unlabelled ones."""
    check_nonnegative(lam, "lam")
    logits = softmax_regression_logits(params, x_labelled)
    ce = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=_t(y_labelled, tf.int64), logits=logits))
    return ce + lam * kl_divergence(p_star, softmax_regression_logits(params, x_unlabelled))


def kl_regularised_gradient(params: dict[str, np.ndarray], x_labelled, y_labelled, x_unlabelled,
                            p_star, *, lam: float = 0.0) -> tuple[float, dict[str, np.ndarray]]:
    """J(θ) and its tape gradient, NumPy in and out (mirrors the PyTorch function)."""
    theta = from_numpy(params)
    with tf.GradientTape() as tape:
        loss = kl_regularised_loss(theta, x_labelled, y_labelled, x_unlabelled, p_star, lam=lam)
    grads = tape.gradient(loss, list(theta.values()))
    return float(loss), {k: g.numpy() for k, g in zip(theta, grads)}


def fit_kl_regularised(params: dict[str, np.ndarray], x_labelled, y_labelled, x_unlabelled, p_star,
                       *, lam: float = 0.0, steps: int = 200, lr: float = 0.5
                       ) -> tuple[dict[str, np.ndarray], list[float]]:
    """Full-batch gradient descent with step ``lr / (1 + λ)``; returns NumPy params and the losses."""
    check_steps(steps)
    theta = from_numpy(params)
    step = lr / (1.0 + lam)
    history = []
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = kl_regularised_loss(theta, x_labelled, y_labelled, x_unlabelled, p_star, lam=lam)
        grads = tape.gradient(loss, list(theta.values()))
        for v, g in zip(theta.values(), grads):
            v.assign_sub(step * g)
        history.append(float(loss))
    return {k: v.numpy().copy() for k, v in theta.items()}, history


# --------------------------------------------------------------------------- Learning without Forgetting
def _linear(h, w, b):
    return tf.matmul(h, w) + tf.expand_dims(b, -2)


def lwf_forward(params: dict, x):
    """Shared ReLU features, then the old (teacher) head and the new-task head.

    Same layout and shapes as :func:`course_utils.torch.lwf_forward`; returns
    ``(old_logits, new_logits)`` (``new_logits`` is None for a params dict without ``w_new``).
    """
    x = _t(x)
    w0 = params["w0"]
    if len(x.shape) == 3 and len(w0.shape) == 2:  # batched images, shared first layer
        h = tf.einsum("bnd,dh->bnh", x, w0) + params["b0"]
    else:
        h = _linear(x, w0, params["b0"])
    h = tf.nn.relu(h)
    h = tf.nn.relu(_linear(h, params["w1"], params["b1"]))
    old = _linear(h, params["w_old"], params["b_old"])
    new = _linear(h, params["w_new"], params["b_new"]) if "w_new" in params else None
    return old, new


def lwf_loss(params: dict, x_support, y_support, teacher_old_logits, *, lam=0.0,
             temperature: float = 2.0) -> tf.Tensor:
    """Learning without Forgetting: CE(new head, y) + λ·T²·KL(teacher_old/T ‖ student_old/T), per copy."""
    check_nonnegative(lam, "lam")
    old, new = lwf_forward(params, x_support)
    y = tf.one_hot(_t(y_support, tf.int64), depth=new.shape[-1], dtype=tf.float32)
    ce = -tf.reduce_mean(tf.reduce_sum(y * tf.nn.log_softmax(new, axis=-1), axis=-1), axis=-1)
    return ce + _t(lam) * distillation_kl(teacher_old_logits, old, temperature=temperature)


def adam_init(params: dict) -> dict:
    """Adam's state (step count and zero moments) for a parameter dict."""
    return {"t": 0, "m": {k: tf.zeros_like(v) for k, v in params.items()},
            "v": {k: tf.zeros_like(v) for k, v in params.items()}}


def adam_step(params: dict, grads: dict, state: dict, *, lr: float = 1e-3, beta1: float = 0.9,
              beta2: float = 0.999, eps: float = 1e-8) -> dict:
    """One Adam update (Kingma & Ba 2015) of the ``tf.Variable`` s in ``params``; returns state."""
    state["t"] += 1
    t = state["t"]
    for k, g in grads.items():
        m = beta1 * state["m"][k] + (1 - beta1) * g
        v = beta2 * state["v"][k] + (1 - beta2) * g * g
        state["m"][k], state["v"][k] = m, v
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        params[k].assign_sub(lr * m_hat / (tf.sqrt(v_hat) + eps))
    return state


def _per_copy(step, g):
    """Reshape a (B,) step size to broadcast over a batched weight (B, ...)."""
    return tf.reshape(step, tf.concat([tf.shape(step), tf.ones([len(g.shape) - len(step.shape)], tf.int32)], 0))


def lwf_finetune(params: dict[str, np.ndarray], x_support, y_support, *, lam=0.0,
                 temperature: float = 2.0, steps: int = 40, lr: float = 0.1,
                 frozen: tuple[str, ...] = ("w0", "b0")) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Fine-tune the student with the LwF objective (full-batch gradient descent); mirrors the PyTorch function."""
    check_steps(steps)
    check_temperature(temperature)
    unknown = set(frozen) - set(params)
    if unknown:
        raise ValueError(f"frozen must name weights of params, unknown: {sorted(unknown)}")
    names = [k for k in params if k not in frozen]
    theta = {k: (tf.constant(np.asarray(v, np.float32)) if k in frozen
                 else tf.Variable(np.asarray(v, np.float32))) for k, v in params.items()}
    x = _t(x_support)
    teacher_old, _ = lwf_forward(theta, x)
    check_nonnegative(lam, "lam")
    lam_t = _t(lam)
    step = lr / (1.0 + lam_t)  # a scalar or one step size per copy
    history = []
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = lwf_loss(theta, x, y_support, teacher_old, lam=lam_t, temperature=temperature)
            total = tf.reduce_sum(loss)
        grads = tape.gradient(total, [theta[k] for k in names])
        for k, g in zip(names, grads):
            theta[k].assign_sub(_per_copy(step, g) * g)
        history.append(loss.numpy().copy())
    return {k: v.numpy().copy() for k, v in theta.items()}, np.asarray(history, dtype=np.float32)


def train_classifier(params: dict[str, np.ndarray], images: np.ndarray, labels: np.ndarray, *,
                     epochs: int = 5, batch_size: int = 128, lr: float = 1e-3,
                     rng: np.random.Generator | int | None = 0) -> tuple[dict[str, np.ndarray], list[float]]:
    """Train the teacher (features + old head) by minibatch Adam; mirrors the PyTorch function."""
    check_epochs_batch_size(epochs, batch_size)
    rng = check_rng(rng)
    flat = np.asarray(images).reshape(len(images), -1)
    theta = from_numpy(params)
    state = adam_init(theta)
    names = list(theta)
    history = []
    for _ in range(epochs):
        order = rng.permutation(len(flat))
        losses = []
        for start in range(0, len(flat), batch_size):
            idx = order[start:start + batch_size]
            xb = tf.convert_to_tensor(flat[idx], dtype=tf.float32) / 255.0
            yb = tf.convert_to_tensor(np.asarray(labels)[idx], dtype=tf.int64)
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                    labels=yb, logits=lwf_forward(theta, xb)[0]))
            grads = tape.gradient(loss, [theta[k] for k in names])
            adam_step(theta, dict(zip(names, grads)), state, lr=lr)
            losses.append(float(loss))
        history.append(float(np.mean(losses)))
    return {k: v.numpy().copy() for k, v in theta.items()}, history
