"""Chapter 7 in TensorFlow: first-order MAML (FOMAML), Reptile and ANIL.

Mirrors :mod:`course_utils.torch.first_order` name for name (same arguments, same results to
float32 tolerance from the same NumPy weights and tasks).

* NumPy-in/NumPy-out references that loop over tasks in Python (eager, nested
  ``tf.GradientTape`` s): :func:`fomaml_meta_gradient`, :func:`anil_meta_gradient`,
  :func:`reptile_direction`, :func:`reptile_update`;
* a compiled meta-step, :func:`make_meta_step` (a ``tf.function`` with ``tf.vectorized_map``
  over the tasks of a meta-batch), and the loop :func:`train_meta_method`.
"""
from __future__ import annotations

import time
from typing import Callable

from course_utils.env import configure_tensorflow_env

configure_tensorflow_env()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from course_utils.validation import (batches, check_choice, check_epsilon, check_head, check_lr,  # noqa: E402
                                  check_positive_int, finish_history)
from course_utils.chapters.ch07 import PeakMemory, head_keys, reptile_epsilon  # noqa: E402
from course_utils.tensorflow.core import adapt, from_numpy, maml_meta_gradient, mlp_forward, mse_loss  # noqa: E402
from course_utils.tensorflow.meta import make_meta_gradient_fn  # noqa: E402

__all__ = [
    "METHODS",
    "reptile_epsilon",
    "head_keys",
    "anil_adapt",
    "reptile_adapt",
    "fomaml_meta_gradient",
    "anil_meta_gradient",
    "reptile_direction",
    "reptile_update",
    "make_meta_step",
    "train_meta_method",
]

#: The four methods the chapter compares.
METHODS = ("maml", "fomaml", "reptile", "anil")


def _c(a) -> tf.Tensor:
    a = np.asarray(a)
    if a.dtype == np.uint8:
        return tf.constant(a.astype(np.float32) / 255.0)
    if np.issubdtype(a.dtype, np.integer):
        return tf.constant(a.astype(np.int64))
    return tf.constant(a.astype(np.float32))


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
            phi = anil_adapt(theta, _c(x_support[t]), _c(y_support[t]), inner_lr=inner_lr, steps=steps,
                             first_order=first_order, head=head, forward=forward, loss_fn=loss_fn)
            losses.append(loss_fn(forward(phi, _c(x_query[t])), _c(y_query[t])))
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
        phi = reptile_adapt(theta, _c(x[t]), _c(y[t]), inner_lr=inner_lr, inner_steps=inner_steps,
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


# --------------------------------------------------------------------------- compiled step
def make_meta_step(method: str, *, inner_lr: float = 0.01, steps: int = 1,
                   reptile_inner_lr: float = 0.02, reptile_steps: int = 5,
                   reptile_batch_size: int | None = None, head=None,
                   forward: Callable = mlp_forward, loss_fn: Callable = mse_loss) -> Callable:
    """A compiled (``tf.function``) meta-step for one of :data:`METHODS`.

    Returns ``step(params, x_support, y_support, x_query, y_query) -> (loss, update)`` with the
    same meaning as :func:`course_utils.torch.make_meta_step`: the meta-gradient for
    ``"maml"``/``"fomaml"``/``"anil"`` (descend it), the direction mean_i(φ̃_i - θ) for
    ``"reptile"`` (ascend it; support and query are concatenated into the task's data).
    MAML and FOMAML are chapter 6's :func:`course_utils.tensorflow.make_meta_gradient_fn`
    (tiled weights); ANIL and Reptile vectorise the tasks with ``tf.vectorized_map`` (nested
    tapes inside; traced once per input shape), except Reptile on a model other than the MLP,
    whose per-task convolution filters ``pfor`` cannot batch: it loops over the tasks in the graph.
    """
    check_choice(method, "method", METHODS)
    check_lr(inner_lr, "inner_lr")
    check_positive_int(steps, "steps", 0)
    if method == "reptile":
        check_lr(reptile_inner_lr, "reptile_inner_lr")
        check_positive_int(reptile_steps, "reptile_steps", 1)

        @tf.function(reduce_retracing=True)
        def reptile_step(params, x_support, y_support, x_query, y_query):
            x = tf.concat([x_support, x_query], axis=1)
            y = tf.concat([y_support, y_query], axis=1)
            first = batches(int(x.shape[1]), reptile_batch_size, 1)[0]

            def task(args):
                xt, yt = args
                phi = reptile_adapt(params, xt, yt, inner_lr=reptile_inner_lr, inner_steps=reptile_steps,
                                    batch_size=reptile_batch_size, forward=forward, loss_fn=loss_fn)
                return loss_fn(forward(params, xt[first]), yt[first]), phi

            if forward is mlp_forward:
                losses, phi = tf.vectorized_map(task, (x, y))
                return tf.reduce_mean(losses), {k: tf.reduce_mean(phi[k], axis=0) - params[k] for k in params}
            # pfor cannot batch a convolution over per-task filters: a graph loop over the tasks
            n_tasks = int(x.shape[0])
            total = {k: tf.zeros_like(v) for k, v in params.items()}
            loss_sum = tf.constant(0.0)
            for t in tf.range(n_tasks):
                loss_t, phi = task((x[t], y[t]))
                total = {k: total[k] + phi[k] for k in total}
                loss_sum += loss_t
            return loss_sum / n_tasks, {k: total[k] / n_tasks - params[k] for k in params}

        return reptile_step

    if method in ("maml", "fomaml"):  # chapter 6's vectorised MAML: one source of truth
        return make_meta_gradient_fn(inner_lr=inner_lr, steps=steps, first_order=method == "fomaml",
                                     forward=forward, loss_fn=loss_fn)

    @tf.function(reduce_retracing=True)
    def grad_step(params, x_support, y_support, x_query, y_query):
        names = list(params)

        def task(args):
            xs, ys, xq, yq = args
            phi = anil_adapt(params, xs, ys, inner_lr=inner_lr, steps=steps, head=head,
                             forward=forward, loss_fn=loss_fn)
            return loss_fn(forward(phi, xq), yq)

        with tf.GradientTape() as outer:
            outer.watch([params[k] for k in names])
            loss = tf.reduce_mean(tf.vectorized_map(task, (x_support, y_support, x_query, y_query)))
        grads = outer.gradient(loss, [params[k] for k in names])
        return loss, dict(zip(names, grads))

    return grad_step


def train_meta_method(method: str, params: dict[str, np.ndarray], sample_tasks: Callable, *,
                      n_iterations: int = 1000, outer_lr: float = 1e-3, epsilon_start: float = 1.0,
                      epsilon_end: float = 0.0, eval_fn: Callable | None = None, eval_every: int = 100,
                      progress: bool = True, num_threads: int | None = 1,
                      **step_kwargs) -> tuple[dict[str, np.ndarray], dict]:
    """Meta-train with one of :data:`METHODS` and measure its cost (mirrors the PyTorch version).

    ``"maml"``/``"fomaml"``/``"anil"`` use Adam in PyTorch's form (β₁ = 0.9, β₂ = 0.999,
    ε = 1e-8) on the meta-gradient; ``"reptile"`` uses θ ← θ + ε_i·direction with ε_i from
    :func:`reptile_epsilon`. The meta-step and the update run in one ``tf.function``; its first
    call (tracing) is excluded from ``seconds_per_iteration`` and reported as ``trace_seconds``.
    ``num_threads`` is accepted for symmetry with PyTorch and ignored (TensorFlow's thread pools
    are fixed when it starts). See :func:`course_utils.torch.train_meta_method` for the other
    arguments and the returned history.
    """
    check_choice(method, "method", METHODS)
    n_iterations = check_positive_int(n_iterations, "n_iterations")
    eval_every = check_positive_int(eval_every, "eval_every")
    if num_threads is not None:
        check_positive_int(num_threads, "num_threads")
    if method != "reptile":
        check_lr(outer_lr, "outer_lr")
    else:
        reptile_epsilon(0, n_iterations, epsilon_start=epsilon_start, epsilon_end=epsilon_end)
    step = make_meta_step(method, **step_kwargs)
    names = list(params)
    variables = {k: tf.Variable(np.asarray(v, np.float32), name=k) for k, v in params.items()}
    m = {k: tf.Variable(tf.zeros_like(v)) for k, v in variables.items()}
    v2 = {k: tf.Variable(tf.zeros_like(v)) for k, v in variables.items()}
    b1, b2, adam_eps = 0.9, 0.999, 1e-8

    @tf.function(reduce_retracing=True)
    def train_step(t, eps, xs, ys, xq, yq):
        loss, update = step({k: tf.convert_to_tensor(variables[k]) for k in names}, xs, ys, xq, yq)
        if method == "reptile":
            for k in names:
                variables[k].assign_add(eps * update[k])
        else:
            c1, c2 = 1.0 - tf.pow(b1, t), 1.0 - tf.pow(b2, t)
            for k in names:
                m[k].assign(b1 * m[k] + (1.0 - b1) * update[k])
                v2[k].assign(b2 * v2[k] + (1.0 - b2) * tf.square(update[k]))
                variables[k].assign_sub(outer_lr * (m[k] / c1) / (tf.sqrt(v2[k] / c2) + adam_eps))
        return loss

    hist = {"loss": [], "eval_iterations": [], "eval": []}
    seconds, trace = 0.0, 0.0
    from tqdm.auto import trange

    with PeakMemory() as mem:
        for i in trange(n_iterations, desc=method, disable=not progress, leave=False):
            if eval_fn is not None and i % eval_every == 0:
                hist["eval_iterations"].append(i)
                hist["eval"].append(float(eval_fn({k: v.numpy() for k, v in variables.items()})))
            batch = [_c(a) for a in sample_tasks(i)]
            eps = reptile_epsilon(i, n_iterations, epsilon_start=epsilon_start, epsilon_end=epsilon_end) \
                if method == "reptile" else 0.0
            t0 = time.perf_counter()
            loss = float(train_step(tf.constant(i + 1.0), tf.constant(eps, tf.float32), *batch))
            dt = time.perf_counter() - t0
            if i == 0:
                trace = dt
            else:
                seconds += dt
            hist["loss"].append(loss)
    final = {k: v.numpy().astype(np.float32) for k, v in variables.items()}
    return finish_history(hist, final, eval_fn, n_iterations, seconds, trace, mem.peak_mb)
