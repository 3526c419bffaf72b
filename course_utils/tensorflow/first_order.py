"""Chapter 7 in TensorFlow: first-order MAML (FOMAML), Reptile and ANIL.

Mirrors :mod:`course_utils.torch.first_order` name for name (same arguments, same results to
float32 tolerance from the same NumPy weights and tasks).

* NumPy-in/NumPy-out references that loop over tasks in Python (eager, nested
  ``tf.GradientTape`` s): :func:`fomaml_meta_gradient`, :func:`anil_meta_gradient`,
  :func:`reptile_direction`, :func:`reptile_update`;
* the compiled meta-steps (``tf.function`` with ``tf.vectorized_map`` over the tasks of a
  meta-batch) are registered with the one training loop in :mod:`course_utils.tensorflow.training`.
"""
from __future__ import annotations

from typing import Callable

from course_utils.env import configure_tensorflow_env

configure_tensorflow_env()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from course_utils.nets import check_head  # noqa: E402
from course_utils.training import batches  # noqa: E402
from course_utils.validation import check_epsilon, check_positive_int  # noqa: E402
from course_utils.tensorflow.core import (adapt, from_numpy, maml_meta_gradient, mlp_forward, mse_loss,  # noqa: E402
                                          to_tensor)

__all__ = [
    "anil_adapt",
    "reptile_adapt",
    "fomaml_meta_gradient",
    "anil_meta_gradient",
    "reptile_direction",
    "reptile_update",
]

# --------------------------------------------------------------------------- inner loops
def anil_adapt(params, x_support, y_support, *, inner_lr: float = 0.01, steps: int = 1,
               first_order: bool = False, head=None, forward: Callable = mlp_forward,
               loss_fn: Callable = mse_loss) -> dict:
    """ANIL's inner loop: ``steps`` SGD steps on the head only; the body is shared, unchanged.

    Call it inside an outer ``tf.GradientTape`` to differentiate through the head's updates
    (second order unless ``first_order``). ``head`` defaults to :func:`head_keys`.
    """
    return adapt(params, x_support, y_support, inner_lr=inner_lr, steps=steps, first_order=first_order,
                 forward=forward, loss_fn=loss_fn, only=check_head(params, head))


def reptile_adapt(params, x, y, *, inner_lr: float = 0.02, inner_steps: int = 5,
                  batch_size: int | None = None, forward: Callable = mlp_forward,
                  loss_fn: Callable = mse_loss) -> dict:
    """Reptile's inner loop: ``inner_steps`` plain SGD steps on one task (minibatch j = the j-th
    consecutive slice of ``batch_size`` points, cycling; None = all points). Returns φ̃."""
    check_positive_int(inner_steps, "inner_steps", 0)
    names = list(params)
    phi = {k: tf.stop_gradient(tf.convert_to_tensor(v)) for k, v in params.items()}
    for sl in batches(int(x.shape[0]), batch_size, inner_steps):
        with tf.GradientTape() as tape:
            tape.watch([phi[k] for k in names])
            loss = loss_fn(forward(phi, x[sl]), y[sl])
        grads = tape.gradient(loss, [phi[k] for k in names])
        phi = {k: tf.stop_gradient(phi[k] - inner_lr * g) for k, g in zip(names, grads)}
    return phi


# --------------------------------------------------------------------------- NumPy references
def fomaml_meta_gradient(params: dict[str, np.ndarray], x_support, y_support, x_query, y_query, *,
                         inner_lr: float = 0.01, steps: int = 1, forward: Callable = mlp_forward,
                         loss_fn: Callable = mse_loss) -> tuple[float, dict[str, np.ndarray]]:
    """First-order MAML: ``maml_meta_gradient(..., first_order=True)`` (one source of truth)."""
    return maml_meta_gradient(params, x_support, y_support, x_query, y_query, inner_lr=inner_lr,
                              steps=steps, first_order=True, forward=forward, loss_fn=loss_fn)


def anil_meta_gradient(params: dict[str, np.ndarray], x_support, y_support, x_query, y_query, *,
                       inner_lr: float = 0.01, steps: int = 1, first_order: bool = False, head=None,
                       forward: Callable = mlp_forward, loss_fn: Callable = mse_loss
                       ) -> tuple[float, dict[str, np.ndarray]]:
    """ANIL's meta-loss and meta-gradient (mean over tasks), NumPy in and out."""
    theta = from_numpy(params)
    with tf.GradientTape() as outer:
        losses = []
        for t in range(np.asarray(x_support).shape[0]):
            phi = anil_adapt(theta, to_tensor(x_support[t]), to_tensor(y_support[t]), inner_lr=inner_lr, steps=steps,
                             first_order=first_order, head=head, forward=forward, loss_fn=loss_fn)
            losses.append(loss_fn(forward(phi, to_tensor(x_query[t])), to_tensor(y_query[t])))
        loss = tf.reduce_mean(tf.stack(losses))
    grads = outer.gradient(loss, list(theta.values()))
    return float(loss), {k: g.numpy() for k, g in zip(theta, grads)}


def reptile_direction(params: dict[str, np.ndarray], x, y, *, inner_lr: float = 0.02,
                      inner_steps: int = 5, batch_size: int | None = None,
                      forward: Callable = mlp_forward, loss_fn: Callable = mse_loss
                      ) -> dict[str, np.ndarray]:
    """Reptile's direction mean_i(φ̃_i - θ) over a batch of tasks (x: (tasks, n, ...)), NumPy."""
    theta = from_numpy(params, requires_grad=False)
    total = {k: tf.zeros_like(v) for k, v in theta.items()}
    n_tasks = np.asarray(x).shape[0]
    for t in range(n_tasks):
        phi = reptile_adapt(theta, to_tensor(x[t]), to_tensor(y[t]), inner_lr=inner_lr, inner_steps=inner_steps,
                            batch_size=batch_size, forward=forward, loss_fn=loss_fn)
        total = {k: total[k] + (phi[k] - theta[k]) for k in theta}
    return {k: (v / n_tasks).numpy() for k, v in total.items()}


def reptile_update(params: dict[str, np.ndarray], x, y, *, epsilon: float, inner_lr: float = 0.02,
                   inner_steps: int = 5, batch_size: int | None = None,
                   forward: Callable = mlp_forward, loss_fn: Callable = mse_loss
                   ) -> dict[str, np.ndarray]:
    """One (batched) Reptile meta-update θ ← θ + ε · mean_i(φ̃_i - θ), NumPy in and out."""
    check_epsilon(epsilon)
    d = reptile_direction(params, x, y, inner_lr=inner_lr, inner_steps=inner_steps,
                          batch_size=batch_size, forward=forward, loss_fn=loss_fn)
    return {k: (np.asarray(params[k], np.float32) + np.float32(epsilon) * d[k]).astype(np.float32)
            for k in params}
