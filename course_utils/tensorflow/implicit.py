"""Implicit MAML in TensorFlow (Rajeswaran et al. 2019, chapter 5): the proximal inner loop and the
implicit meta-gradient by conjugate gradient.

Mirrors :mod:`course_utils.torch.implicit` name for name and signature for signature; see there
and :mod:`course_utils.implicit` for the maths. Tiled weights (one copy per task) under
``tf.GradientTape``; the Hessian-vector products are chapter 2's nested-tape
:func:`hessian_vector_product`. The registered ``meta_train`` step (``"imaml"``) runs inside the
training loop's compiled graph.
"""
from __future__ import annotations

from typing import Callable

from course_utils.env import configure_tensorflow_env

configure_tensorflow_env()

import tensorflow as tf  # noqa: E402

from course_utils.implicit import register_imaml_method  # noqa: E402
from course_utils.validation import check_cg_call, check_imaml_call  # noqa: E402
from course_utils.tensorflow.autodiff import hessian_vector_product  # noqa: E402
from course_utils.tensorflow.core import as_task_tensors, mlp_forward, mse_loss, to_tensor  # noqa: E402
from course_utils.tensorflow.learned import _task_losses_fn  # noqa: E402
from course_utils.tensorflow.meta import _n_tasks  # noqa: E402
from course_utils.tensorflow.training import register_meta_method  # noqa: E402

__all__ = ["conjugate_gradient", "imaml_adapt", "imaml_meta_gradient"]


def _dot(a: dict, b: dict, batch_dims: int) -> tf.Tensor:
    """Σ_k ⟨a_k, b_k⟩ over every axis but the leading ``batch_dims``: a number, or one per task."""
    if batch_dims:
        return tf.add_n([tf.reduce_sum(tf.reshape(a[k] * b[k], (tf.shape(a[k])[0], -1)), -1) for k in a])
    return tf.add_n([tf.reduce_sum(a[k] * b[k]) for k in a])


def _scale(s: tf.Tensor, v: tf.Tensor) -> tf.Tensor:
    return tf.reshape(s, tf.concat([tf.shape(s), tf.ones([len(v.shape) - len(s.shape)], tf.int32)], 0))


def conjugate_gradient(matvec: Callable[[dict], dict], b: dict, *, steps: int = 5, tol: float = 1e-10,
                       batch_dims: int = 0) -> dict:
    """Solve A x = b by conjugate gradient from x₀ = 0; see :func:`course_utils.torch.conjugate_gradient`."""
    steps, tol, batch_dims = check_cg_call(matvec, b, steps, tol, batch_dims)
    r = {k: tf.stop_gradient(to_tensor(v)) for k, v in b.items()}
    x = {k: tf.zeros_like(v) for k, v in r.items()}
    p = dict(r)
    rr = _dot(r, r, batch_dims)
    for _ in range(steps):
        ap = {k: tf.stop_gradient(v) for k, v in matvec(p).items()}
        pap = _dot(p, ap, batch_dims)
        active = tf.logical_and(rr > tol * tol, pap > 0)
        alpha = tf.where(active, rr / tf.where(active, pap, tf.ones_like(pap)), tf.zeros_like(pap))
        x = {k: x[k] + _scale(alpha, x[k]) * p[k] for k in x}
        r = {k: r[k] - _scale(alpha, r[k]) * ap[k] for k in r}
        rr_new = _dot(r, r, batch_dims)
        beta = tf.where(active, rr_new / tf.where(active, rr, tf.ones_like(rr)), tf.zeros_like(rr))
        p = {k: r[k] + _scale(beta, p[k]) * p[k] for k in p}
        rr = rr_new
    return x


def _prox_adapt(theta: dict, xs, ys, lam: float, inner_lr: float, steps: int, task_losses) -> dict:
    """φ ← φ − η(∇L̂(φ) + λ(φ − θ)) on tiled copies, each step's tape dropped (no graph kept)."""
    n = _n_tasks(xs)
    anchor = {k: tf.stop_gradient(tf.convert_to_tensor(v)) for k, v in theta.items()}
    phi = {k: tf.repeat(v[None], n, axis=0) for k, v in anchor.items()}
    names = list(phi)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch([phi[k] for k in names])
            total = tf.reduce_sum(task_losses(phi, xs, ys))
        g = tape.gradient(total, [phi[k] for k in names], unconnected_gradients=tf.UnconnectedGradients.ZERO)
        phi = {k: tf.stop_gradient(phi[k] - inner_lr * (gk + lam * (phi[k] - anchor[k]))) for k, gk in zip(names, g)}
    return phi


def imaml_adapt(params: dict, x_support, y_support, *, lam: float = 1.0, inner_lr: float = 0.01, steps: int = 10,
                forward: Callable = mlp_forward, loss_fn: Callable = mse_loss) -> dict:
    """iMAML's proximal inner loop for every task; see :func:`course_utils.torch.imaml_adapt`."""
    lam, inner_lr, steps, _ = check_imaml_call(params, x_support, y_support, lam=lam, inner_lr=inner_lr, steps=steps,
                                               forward=forward, loss_fn=loss_fn, mlp_forward=mlp_forward)
    xs, ys = as_task_tensors(x_support, y_support)
    theta = {k: to_tensor(v) for k, v in params.items()}
    return _prox_adapt(theta, xs, ys, lam, inner_lr, steps, _task_losses_fn(forward, loss_fn))


def _implicit_gradient(theta: dict, xs, ys, xq, yq, lam, inner_lr, steps, cg_steps, task_losses):
    phi = _prox_adapt(theta, xs, ys, lam, inner_lr, steps, task_losses)
    names = list(phi)
    with tf.GradientTape() as tape:
        tape.watch([phi[k] for k in names])
        q = task_losses(phi, xq, yq)
        total = tf.reduce_sum(q)
    g_q = dict(zip(names, tape.gradient(total, [phi[k] for k in names],
                                        unconnected_gradients=tf.UnconnectedGradients.ZERO)))  # ∇L_q,t(φ_t) per task
    support = lambda p: tf.reduce_sum(task_losses(p, xs, ys))  # noqa: E731
    matvec = lambda v: {k: v[k] + h / lam for k, h in hessian_vector_product(support, phi, v).items()}  # noqa: E731
    v = conjugate_gradient(matvec, g_q, steps=cg_steps, batch_dims=1)
    return tf.reduce_mean(q), {k: tf.reduce_mean(t, axis=0) for k, t in v.items()}


def imaml_meta_gradient(params: dict, x_support, y_support, x_query, y_query, *, lam: float = 1.0,
                        inner_lr: float = 0.01, steps: int = 10, cg_steps: int = 5, forward: Callable = mlp_forward,
                        loss_fn: Callable = mse_loss) -> tuple[tf.Tensor, dict]:
    """iMAML's implicit meta-gradient; see :func:`course_utils.torch.imaml_meta_gradient`."""
    lam, inner_lr, steps, cg_steps = check_imaml_call(
        params, x_support, y_support, lam=lam, inner_lr=inner_lr, steps=steps, forward=forward, loss_fn=loss_fn,
        mlp_forward=mlp_forward, x_query=x_query, y_query=y_query, cg_steps=cg_steps)
    xs, ys, xq, yq = as_task_tensors(x_support, y_support, x_query, y_query)
    theta = {k: to_tensor(v) for k, v in params.items()}
    return _implicit_gradient(theta, xs, ys, xq, yq, lam, inner_lr, steps, cg_steps, _task_losses_fn(forward, loss_fn))


register_imaml_method(register_meta_method, _implicit_gradient, _task_losses_fn)
