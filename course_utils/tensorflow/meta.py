"""MAML vectorised over the tasks of a meta-batch, fine-tuning curves and meta-testing, in TensorFlow.

Mirrors :mod:`course_utils.torch.meta` name for name (see its docstring for the shared
conventions on ``params``, task batches, ``forward``, ``loss_fn`` and ``sample_batch``).

How the tasks are vectorised without ``vmap``: the shared weights θ are *tiled* into one copy
per task, φ₀ = tile(θ) with shape (tasks, ...). Because task t's loss depends only on copy t,
the gradient of the **sum** of the per-task support losses with respect to the tiled copies is
exactly the stack of per-task gradients, from one inner ``tf.GradientTape``. The MLP then runs
all tasks at once with batched ``tf.matmul`` (:func:`tasks_forward`); other models (the conv
net) fall back to an unrolled loop over tasks inside the graph. An outer tape differentiates
through the whole inner loop (second order) unless ``first_order=True`` stops the inner
gradients. ``tf.function`` compiles the meta-gradient (and, in ``meta_train``, the whole training step).
"""
from __future__ import annotations

from typing import Callable

from course_utils.env import configure_tensorflow_env

configure_tensorflow_env()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from course_utils.seed import check_rng  # noqa: E402
from course_utils.training import FinetuneCurve, meta_test_summary  # noqa: E402
from course_utils.validation import (check_bool, check_callable, check_inner_loop, check_meta_call,  # noqa: E402
                                     check_optional_int, check_params, check_positive_int,
                                     check_task_tuple, check_tasks_forward)
from course_utils.tensorflow.core import as_task_tensors, from_numpy, mlp_forward, mse_loss, to_tensor  # noqa: E402
from course_utils.tensorflow.core import num_threads as pin_threads  # noqa: E402
from course_utils.tensorflow.core import _device_scope  # noqa: E402

__all__ = [
    "adapt_tasks",
    "tasks_forward",
    "maml_task_losses",
    "make_meta_gradient_fn",
    "maml_meta_gradient_batched",
    "finetune_curve",
    "meta_test",
]


def _meta_call(params, arrays: dict, inner_lr, steps, first_order, forward, loss_fn) -> tuple:
    """:func:`course_utils.validation.check_meta_call` with this framework's MLP and MSE."""
    return check_meta_call(params, arrays, inner_lr=inner_lr, steps=steps, first_order=first_order, forward=forward,
                           loss_fn=loss_fn, mlp_forward=mlp_forward, mse_loss=mse_loss)


def _n_tasks(x) -> int:
    n = x.shape[0]
    if n is None:
        raise ValueError("the number of tasks (axis 0 of the task arrays) must be static")
    return int(n)


# --------------------------------------------------------------------------- the inner loop
def _mlp_forward_tasks(params_batched: dict, x: tf.Tensor) -> tf.Tensor:
    """The MLP with one weight set per task: w_i (tasks, in, out), b_i (tasks, out), x (tasks, n, in)."""
    n = sum(1 for k in params_batched if k.startswith("w"))
    h = x
    for i in range(n):
        h = tf.matmul(h, params_batched[f"w{i}"]) + params_batched[f"b{i}"][:, None, :]
        if i < n - 1:
            h = tf.nn.relu(h)
    return h


def tasks_forward(params_batched: dict, x, *, forward: Callable = mlp_forward) -> tf.Tensor:
    """Evaluate per-task parameters on per-task inputs: ``{name: (tasks, ...)}``, x (tasks, n, ...)
    → (tasks, n, out). Batched matmuls for the course's MLP; an unrolled loop over tasks otherwise."""
    check_tasks_forward(params_batched, x, forward, mlp_forward)
    x = to_tensor(x)
    if forward is mlp_forward:
        return _mlp_forward_tasks(params_batched, x)
    return tf.stack([forward({k: v[t] for k, v in params_batched.items()}, x[t]) for t in range(_n_tasks(x))])


def _tile(params: dict, n: int) -> dict:
    return {k: tf.repeat(tf.convert_to_tensor(v)[None], n, axis=0) for k, v in params.items()}


def _adapt_tiled(phi: dict, xs, ys, inner_lr, steps, first_order, forward, loss_fn) -> dict:
    n = float(_n_tasks(xs))
    names = list(phi)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch([phi[k] for k in names])
            # Sum of the per-task mean losses (all tasks have the same size): one tape, per-task grads.
            total = n * loss_fn(tasks_forward(phi, xs, forward=forward), ys)
        grads = tape.gradient(total, [phi[k] for k in names])
        if first_order:
            grads = [tf.stop_gradient(g) for g in grads]
        phi = {k: phi[k] - inner_lr * g for k, g in zip(names, grads)}
    return phi


def adapt_tasks(params: dict, x_support, y_support, *, inner_lr: float = 0.01, steps: int = 1,
                first_order: bool = False, forward: Callable = mlp_forward, loss_fn: Callable = mse_loss) -> dict:
    """The MAML inner loop for every task of a batch at once (tiled weights, one inner tape).

    Args and result as :func:`course_utils.torch.adapt_tasks`: adapted parameters
    ``{name: (tasks, *shape)}``, differentiable with respect to ``params`` when called under an
    outer ``tf.GradientTape`` (second order unless ``first_order=True``).
    """
    inner_lr, steps, first_order, x_support, y_support = _meta_call(
        params, {"x_support": x_support, "y_support": y_support}, inner_lr, steps, first_order, forward, loss_fn)
    xs, ys = as_task_tensors(x_support, y_support)
    return _adapt_tiled(_tile(params, _n_tasks(xs)), xs, ys, inner_lr, steps, first_order, forward, loss_fn)


def maml_task_losses(params: dict, x_support, y_support, x_query, y_query, *, inner_lr: float = 0.01,
                     steps: int = 1, first_order: bool = False, forward: Callable = mlp_forward,
                     loss_fn: Callable = mse_loss) -> tf.Tensor:
    """Query loss of every task after its inner loop, shape (tasks,)."""
    inner_lr, steps, first_order, *arrays = _meta_call(
        params, {"x_support": x_support, "y_support": y_support, "x_query": x_query, "y_query": y_query},
        inner_lr, steps, first_order, forward, loss_fn)
    xs, ys, xq, yq = as_task_tensors(*arrays)
    phi = adapt_tasks(params, xs, ys, inner_lr=inner_lr, steps=steps, first_order=first_order,
                      forward=forward, loss_fn=loss_fn)
    pred = tasks_forward(phi, xq, forward=forward)
    return tf.stack([loss_fn(pred[t], yq[t]) for t in range(_n_tasks(xq))])


# --------------------------------------------------------------------------- meta-gradient
def make_meta_gradient_fn(*, inner_lr: float = 0.01, steps: int = 1, first_order: bool = False,
                          forward: Callable = mlp_forward, loss_fn: Callable = mse_loss,
                          chunk_size: int | None = None) -> Callable:
    """Build ``fn(params, x_support, y_support, x_query, y_query) -> (meta_loss, grads)``.

    ``grads`` is a dict of gradients of the mean query loss with respect to ``params``
    (variables or tensors), from an outer ``tf.GradientTape`` around :func:`adapt_tasks`.
    The computation is a ``tf.function`` (traced once per input shape; keep shapes fixed; run it
    eagerly with ``tf.config.run_functions_eagerly(True)``). ``chunk_size`` accumulates gradients
    over chunks of tasks.
    """
    inner_lr, steps, first_order = check_inner_loop(inner_lr, steps, first_order, forward, loss_fn)
    check_optional_int(chunk_size, "chunk_size")

    def _fn(params, xs, ys, xq, yq):
        names = list(params)
        with tf.GradientTape() as tape:
            tape.watch([params[k] for k in names])
            phi = _adapt_tiled(_tile(params, _n_tasks(xs)), xs, ys, inner_lr, steps, first_order, forward, loss_fn)
            loss = loss_fn(tasks_forward(phi, xq, forward=forward), yq)  # mean over tasks of the mean losses
        grads = tape.gradient(loss, [params[k] for k in names])
        return loss, dict(zip(names, grads))

    core = tf.function(_fn)

    def fn(params: dict, x_support, y_support, x_query, y_query):
        params = {k: (v if isinstance(v, (tf.Variable, tf.Tensor)) else to_tensor(v)) for k, v in params.items()}
        arrays = _meta_call(params, dict(zip(("x_support", "y_support", "x_query", "y_query"),
                                             (x_support, y_support, x_query, y_query))),
                            inner_lr, steps, first_order, forward, loss_fn)[3:]
        xs, ys, xq, yq = as_task_tensors(*arrays)
        n = _n_tasks(xs)
        if chunk_size is None or chunk_size >= n:
            return core(params, xs, ys, xq, yq)
        total, acc = 0.0, None
        for s in range(0, n, chunk_size):
            e = min(s + chunk_size, n)
            w = (e - s) / n
            loss, g = core(params, xs[s:e], ys[s:e], xq[s:e], yq[s:e])
            total = total + w * loss
            acc = {k: w * v for k, v in g.items()} if acc is None else {k: acc[k] + w * g[k] for k in acc}
        return total, acc

    return fn


def maml_meta_gradient_batched(params: dict[str, np.ndarray], x_support, y_support, x_query, y_query, *,
                               inner_lr: float = 0.01, steps: int = 1, first_order: bool = False,
                               forward: Callable = mlp_forward, loss_fn: Callable = mse_loss,
                               chunk_size: int | None = None) -> tuple[float, dict[str, np.ndarray]]:
    """NumPy in, NumPy out: the vectorised twin of :func:`course_utils.tensorflow.core.maml_meta_gradient`."""
    fn = make_meta_gradient_fn(inner_lr=inner_lr, steps=steps, first_order=first_order, forward=forward,
                               loss_fn=loss_fn, chunk_size=chunk_size)
    loss, g = fn(from_numpy(params, requires_grad=False), x_support, y_support, x_query, y_query)
    return float(loss), {k: v.numpy() for k, v in g.items()}


# --------------------------------------------------------------------------- evaluation
def finetune_curve(params: dict, tasks, *, steps: int = 10, inner_lr: float = 0.01, guard: bool = True,
                   forward: Callable = mlp_forward, loss_fn: Callable = mse_loss, accuracy: bool = False,
                   chunk_size: int | None = None, num_threads: int | None = 1) -> FinetuneCurve:
    """Plain-SGD fine-tuning curves with the same divergence guard as
    :func:`course_utils.torch.finetune_curve` (a step that would lift a task's support loss above
    its value before fine-tuning is rejected and that task's step size halved). Vectorised over
    tasks with tiled weights."""
    inner_lr, steps, _, *arrays = _meta_call(params, check_task_tuple(tasks), inner_lr, steps, False, forward,
                                             loss_fn)
    tasks = tuple(arrays)
    check_optional_int(chunk_size, "chunk_size")
    check_bool(guard, "guard")
    check_bool(accuracy, "accuracy")
    with pin_threads(num_threads):  # validates num_threads (a no-op in TensorFlow)
        pass
    with _device_scope():  # course_utils.env.course_device: the CPU unless a GPU run was asked for
        xs, ys, xq, yq = as_task_tensors(*tasks)
        theta = {k: tf.convert_to_tensor(v.numpy() if hasattr(v, "numpy") else np.asarray(v, np.float32))
                 for k, v in params.items()}
        n = _n_tasks(xs)
        size = n if chunk_size is None else chunk_size

        @tf.function
        def _per_task_loss(phi, x, y):
            pred = tasks_forward(phi, x, forward=forward)
            return tf.vectorized_map(lambda a: loss_fn(a[0], a[1]), (pred, y))

        @tf.function
        def _per_task_acc(phi, x, y):
            pred = tasks_forward(phi, x, forward=forward)
            return tf.vectorized_map(lambda a: acc_fn(a[0], a[1]), (pred, y))

        def per_task(fn, phi, x, y):  # one compiled graph per metric (vectorised over tasks)
            return (_per_task_acc if fn is acc_fn else _per_task_loss)(phi, x, y)

        acc_fn = lambda p, y: tf.reduce_mean(tf.cast(tf.argmax(p, -1) == tf.cast(y, tf.int64), tf.float32))  # noqa: E731
        losses, accs, guarded = [], [], []
        for s in range(0, n, size):
            e = min(s + size, n)
            m = e - s
            a, b, c, d = xs[s:e], ys[s:e], xq[s:e], yq[s:e]
            phi = _tile(theta, m)
            lr = tf.fill((m,), float(inner_lr))
            hit = tf.zeros(m, dtype=tf.bool)
            c_loss = [per_task(loss_fn, phi, c, d)]
            c_acc = [per_task(acc_fn, phi, c, d)] if accuracy else []
            start = per_task(loss_fn, phi, a, b)
            for _ in range(steps):
                with tf.GradientTape() as tape:
                    tape.watch(list(phi.values()))
                    sup = per_task(loss_fn, phi, a, b)
                    total = tf.reduce_sum(sup)
                g = tape.gradient(total, phi)
                shape = lambda v: (-1,) + (1,) * (len(v.shape) - 1)  # noqa: E731
                cand = {k: phi[k] - tf.reshape(lr, shape(phi[k])) * g[k] for k in phi}
                if guard:
                    new = per_task(loss_fn, cand, a, b)
                    ok = tf.math.is_finite(new) & (new <= start)
                    phi = {k: tf.where(tf.reshape(ok, shape(phi[k])), cand[k], phi[k]) for k in phi}
                    lr = tf.where(ok, lr, lr / 2)
                    hit = hit | ~ok
                else:
                    phi = cand
                c_loss.append(per_task(loss_fn, phi, c, d))
                if accuracy:
                    c_acc.append(per_task(acc_fn, phi, c, d))
            losses.append(tf.stack(c_loss).numpy())
            if accuracy:
                accs.append(tf.stack(c_acc).numpy())
            guarded.append(hit.numpy())
        return FinetuneCurve(np.concatenate(losses, 1), np.concatenate(accs, 1) if accuracy else None,
                             np.concatenate(guarded))


def meta_test(params: dict, sample_batch: Callable, *, n_batches: int = 10, inner_lr: float = 0.4,
              steps: int = 1, forward: Callable = mlp_forward, loss_fn: Callable = mse_loss,
              accuracy: bool = True, chunk_size: int | None = None,
              rng: np.random.Generator | int | None = None, num_threads: int | None = 1) -> dict:
    """Adapt to fresh meta-batches and report query metrics; same contract as
    :func:`course_utils.torch.meta_test`."""
    check_params(params)
    check_callable(sample_batch, "sample_batch")
    check_positive_int(n_batches, "n_batches")
    rng = check_rng(rng)
    loss, acc = [], []
    for _ in range(n_batches):
        curve = finetune_curve(params, tuple(sample_batch(rng))[:4], steps=steps, inner_lr=inner_lr, guard=False,
                               forward=forward, loss_fn=loss_fn, accuracy=accuracy, chunk_size=chunk_size,
                               num_threads=num_threads)
        loss.append(curve.loss[-1])
        if accuracy:
            acc.append(curve.accuracy[-1])
    return meta_test_summary(loss, acc, accuracy)
