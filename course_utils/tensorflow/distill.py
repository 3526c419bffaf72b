"""Chapter 4 in TensorFlow: classification with a λ-weighted divergence to a target distribution.

Mirrors :mod:`course_utils.torch.distill` name for name (see its docstring for the maths):
:func:`kl_divergence`, :func:`distillation_kl`, the 2-D softmax-regression objective
:func:`kl_regularised_loss` with its gradient and fit, Learning without Forgetting
(:func:`lwf_forward`, :func:`lwf_loss`, :func:`lwf_finetune`) and the teacher's training (with the
course's one Adam, :func:`course_utils.tensorflow.adam_step`).
Gradients come from ``tf.GradientTape`` over explicit weight dicts; batched parameters (a leading
axis B) broadcast through ``tf.matmul``.
"""
from __future__ import annotations

from course_utils.env import configure_tensorflow_env

configure_tensorflow_env()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from course_utils.seed import check_rng  # noqa: E402
from course_utils.tensorflow.core import adam_init, adam_step, from_numpy, to_tensor  # noqa: E402
from course_utils.validation import (check_array, check_float, check_images_labels, check_int,  # noqa: E402
                                     check_kl_inputs, check_labels, check_lwf_call, check_lwf_params, check_names,
                                     check_params, check_positive_int, check_probabilities, check_rows,
                                     check_tensor_float32)

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


def kl_divergence(p_star, logits) -> tf.Tensor:
    """Mean over rows of KL(p* ‖ softmax(logits)) in nats: (..., n, C) → (...)."""
    check_probabilities(p_star, "p_star")
    check_rows(p_star=p_star, logits=logits)
    check_tensor_float32(logits, "logits")
    p_star, logits = to_tensor(p_star, "float32"), to_tensor(logits, "float32")
    log_q = tf.nn.log_softmax(logits, axis=-1)
    kl = tf.math.xlogy(p_star, p_star) - p_star * log_q
    return tf.reduce_mean(tf.reduce_sum(kl, axis=-1), axis=-1)


def distillation_kl(teacher_logits, student_logits, *, temperature: float = 1.0) -> tf.Tensor:
    """Hinton et al.'s T²·KL(softmax(t/T) ‖ softmax(s/T)), mean over rows: (..., n, C) → (...)."""
    temperature = check_float(temperature, "temperature", 0.0, low_open=True)
    check_rows(teacher_logits=teacher_logits, student_logits=student_logits)
    check_tensor_float32(student_logits, "student_logits")
    student_logits = to_tensor(student_logits, "float32")
    p_teacher = tf.nn.softmax(to_tensor(teacher_logits, "float32") / temperature, axis=-1)
    return temperature**2 * kl_divergence(p_teacher, student_logits / temperature)


# --------------------------------------------------------------------------- 2-D Gaussian part
def softmax_regression_logits(params: dict, x) -> tf.Tensor:
    """Logits x W + b: x (n, d) → (n, C), ``params = {"w0": (d, C), "b0": (C,)}``."""
    check_params(params, mlp=True, keys=("w0", "b0"))
    check_array(x, "x", min_ndim=2, last=tuple(params["w0"].shape)[-2], dtype="real")
    return tf.matmul(to_tensor(x, "float32"), params["w0"]) + params["b0"]


def kl_regularised_loss(params: dict, x_labelled, y_labelled, x_unlabelled, p_star, *,
                        lam: float = 0.0) -> tf.Tensor:
    """J(θ) = mean CE on the labelled points + λ · mean KL(p*(x) ‖ p_θ(x)) on the unlabelled ones."""
    check_kl_inputs(params, x_labelled, y_labelled, x_unlabelled, p_star, lam)
    logits = softmax_regression_logits(params, x_labelled)
    ce = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=to_tensor(y_labelled, "int64"), logits=logits))
    return ce + lam * kl_divergence(p_star, softmax_regression_logits(params, x_unlabelled))


def kl_regularised_gradient(params: dict[str, np.ndarray], x_labelled, y_labelled, x_unlabelled,
                            p_star, *, lam: float = 0.0) -> tuple[float, dict[str, np.ndarray]]:
    """J(θ) and its tape gradient, NumPy in and out (mirrors the PyTorch function)."""
    check_kl_inputs(params, x_labelled, y_labelled, x_unlabelled, p_star, lam)
    theta = from_numpy(params)
    with tf.GradientTape() as tape:
        loss = kl_regularised_loss(theta, x_labelled, y_labelled, x_unlabelled, p_star, lam=lam)
    grads = tape.gradient(loss, list(theta.values()))
    return float(loss), {k: g.numpy() for k, g in zip(theta, grads)}


def fit_kl_regularised(params: dict[str, np.ndarray], x_labelled, y_labelled, x_unlabelled, p_star,
                       *, lam: float = 0.0, steps: int = 200, lr: float = 0.5
                       ) -> tuple[dict[str, np.ndarray], list[float]]:
    """Full-batch gradient descent with step ``lr / (1 + λ)``; returns NumPy params and the losses.

    Mirrors the PyTorch function: ``lam`` >= 0 (a number), ``steps`` >= 0, ``lr`` finite and > 0.
    """
    check_kl_inputs(params, x_labelled, y_labelled, x_unlabelled, p_star, lam)
    lam = check_float(lam, "lam", 0.0)
    steps = check_int(steps, "steps", 0)
    lr = check_float(lr, "lr", 0.0, low_open=True)
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
    check_lwf_call(params, x, x_name="x")
    x = to_tensor(x)
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
    check_lwf_call(params, x_support, y_support, teacher_old_logits, lam=lam, temperature=temperature)
    old, new = lwf_forward(params, x_support)
    y = tf.one_hot(to_tensor(y_support, "int64"), depth=new.shape[-1], dtype=tf.float32)
    ce = -tf.reduce_mean(tf.reduce_sum(y * tf.nn.log_softmax(new, axis=-1), axis=-1), axis=-1)
    return ce + to_tensor(lam, "float32") * distillation_kl(teacher_old_logits, old, temperature=temperature)


def _per_copy(step, g):
    """Reshape a (B,) step size to broadcast over a batched weight (B, ...)."""
    return tf.reshape(step, tf.concat([tf.shape(step), tf.ones([len(g.shape) - len(step.shape)], tf.int32)], 0))


def lwf_finetune(params: dict[str, np.ndarray], x_support, y_support, *, lam=0.0,
                 temperature: float = 2.0, steps: int = 40, lr: float = 0.1,
                 frozen: tuple[str, ...] = ("w0", "b0")) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Fine-tune the student with the LwF objective (full-batch gradient descent); mirrors the PyTorch
    function (same arguments, same checks)."""
    steps = check_int(steps, "steps", 0)
    lr = check_float(lr, "lr", 0.0, low_open=True)
    frozen = check_names(frozen, "frozen", check_params(params))
    check_lwf_call(params, x_support, y_support, lam=lam, temperature=temperature)
    names = [k for k in params if k not in frozen]
    theta = {**from_numpy({k: params[k] for k in frozen}, requires_grad=False),
             **from_numpy({k: params[k] for k in names})}
    theta = {k: theta[k] for k in params}  # the caller's key order
    x = to_tensor(x_support)
    teacher_old, _ = lwf_forward(theta, x)
    lam_t = to_tensor(lam, "float32")
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
    """Train the teacher (features + old head) by minibatch Adam; mirrors the PyTorch function
    (the course's one Adam, same arguments and checks)."""
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
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                    labels=yb, logits=lwf_forward(theta, xb)[0]))
            grads = tape.gradient(loss, [theta[k] for k in names])
            adam_step(theta, dict(zip(names, grads)), state, lr=lr)
            losses.append(float(loss))
        history.append(float(np.mean(losses)))
    return {k: v.numpy().copy() for k, v in theta.items()}, history
