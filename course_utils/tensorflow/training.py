"""The course's one meta-training API in TensorFlow: :func:`meta_train` for every method.

Mirrors :mod:`course_utils.torch.training` name for name and signature for signature. The loop
is framework-free (:func:`course_utils.training.run_meta_loop`); a block of iterations here is a
single ``tf.function`` (a graph loop): per iteration the method's meta-step, then Adam
(:func:`course_utils.tensorflow.adam_step`, PyTorch's arithmetic, so both frameworks take the
same steps) or Reptile's interpolation.
MAML and FOMAML use chapter 6's tiled-weights meta-gradient; ANIL and Reptile vectorise the
tasks with ``tf.vectorized_map`` (Reptile on a model other than the MLP loops over the tasks in
the graph: ``pfor`` cannot batch a convolution over per-task filters).
"""
from __future__ import annotations

from typing import Callable

from course_utils.env import configure_tensorflow_env

configure_tensorflow_env()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from course_utils.seed import check_rng  # noqa: E402
from course_utils.training import MetaHistory, MethodRegistry, batches, reptile_epsilon, run_meta_loop  # noqa: E402
from course_utils.validation import check_inner_loop, check_lr, check_meta_train, check_positive_int  # noqa: E402
from course_utils.tensorflow.core import adam_init, adam_step, as_task_tensors, mlp_forward, mse_loss  # noqa: E402
from course_utils.tensorflow.core import _device_scope as device_scope  # noqa: E402
from course_utils.tensorflow.core import num_threads as pin_threads  # noqa: E402
from course_utils.tensorflow.first_order import anil_adapt, reptile_adapt  # noqa: E402
from course_utils.tensorflow.meta import make_meta_gradient_fn  # noqa: E402

__all__ = ["METHODS", "register_meta_method", "make_meta_step", "meta_train", "pretrain_baseline"]

#: The methods :func:`meta_train` knows (same names in both frameworks).
METHODS = MethodRegistry()


def register_meta_method(name: str, make_step: Callable, *, update: str = "gradient", doc: str = ""):
    """Make ``meta_train(name, ...)`` available; see :func:`course_utils.torch.register_meta_method`
    (the step takes and returns TensorFlow tensors and may be a ``tf.function``)."""
    return METHODS.register(name, make_step, update=update, doc=doc)


# --------------------------------------------------------------------------- built-in methods
def _maml_step(*, inner_lr, steps, first_order, forward, loss_fn, chunk_size=None):
    return make_meta_gradient_fn(inner_lr=inner_lr, steps=steps, first_order=first_order,
                                 forward=forward, loss_fn=loss_fn, chunk_size=chunk_size)


def _fomaml_step(*, first_order=True, **kw):
    return _maml_step(first_order=True, **kw)


def _anil_step(*, inner_lr, steps, first_order, forward, loss_fn, head=None):
    check_lr(inner_lr, "inner_lr")
    steps = check_positive_int(steps, "steps", 0)

    @tf.function(reduce_retracing=True)
    def step(params, x_support, y_support, x_query, y_query):
        names = list(params)

        def task(args):
            xs, ys, xq, yq = args
            phi = anil_adapt(params, xs, ys, inner_lr=inner_lr, steps=steps, first_order=first_order, head=head,
                             forward=forward, loss_fn=loss_fn)
            return loss_fn(forward(phi, xq), yq)

        with tf.GradientTape() as outer:
            outer.watch([params[k] for k in names])
            loss = tf.reduce_mean(tf.vectorized_map(task, (x_support, y_support, x_query, y_query)))
        grads = outer.gradient(loss, [params[k] for k in names])
        return loss, dict(zip(names, grads))

    return step


def _reptile_step(*, inner_lr, steps, first_order, forward, loss_fn, reptile_inner_lr=0.02, reptile_steps=5,
                  reptile_batch_size=None):
    check_lr(reptile_inner_lr, "reptile_inner_lr")
    reptile_steps = check_positive_int(reptile_steps, "reptile_steps")

    @tf.function(reduce_retracing=True)
    def step(params, x_support, y_support, x_query, y_query):
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
        n_tasks = int(x.shape[0])  # pfor cannot batch a convolution over per-task filters
        total = {k: tf.zeros_like(v) for k, v in params.items()}
        loss_sum = tf.constant(0.0)
        for t in tf.range(n_tasks):
            loss_t, phi = task((x[t], y[t]))
            total = {k: total[k] + phi[k] for k in total}
            loss_sum += loss_t
        return loss_sum / n_tasks, {k: total[k] / n_tasks - params[k] for k in params}

    return step


def _pretrain_step(*, inner_lr, steps, first_order, forward, loss_fn):
    @tf.function(reduce_retracing=True)
    def step(params, x_support, y_support, x_query, y_query):
        flat = lambda a: tf.reshape(a, (-1, *a.shape[2:]))  # noqa: E731
        x = tf.concat([flat(x_support), flat(x_query)], 0)
        y = tf.concat([flat(y_support), flat(y_query)], 0)
        names = list(params)
        with tf.GradientTape() as tape:
            tape.watch([params[k] for k in names])
            loss = loss_fn(forward(params, x), y)
        return loss, dict(zip(names, tape.gradient(loss, [params[k] for k in names])))

    return step


register_meta_method("maml", _maml_step, doc="MAML, second order (first_order=True: FOMAML); option chunk_size")
register_meta_method("fomaml", _fomaml_step, doc="first-order MAML; option chunk_size")
register_meta_method("reptile", _reptile_step, update="direction",
                     doc="Reptile; options reptile_inner_lr, reptile_steps, reptile_batch_size, epsilon_start/end")
register_meta_method("anil", _anil_step, doc="ANIL, inner loop on the head only; option head")
register_meta_method("pretrain", _pretrain_step, doc="pooled pretraining on all tasks (no inner loop)")


def make_meta_step(method: str, *, inner_lr: float = 0.01, steps: int = 1, first_order: bool = False,
                   forward: Callable = mlp_forward, loss_fn: Callable = mse_loss, **options) -> Callable:
    """The meta-step of ``method``; same contract as :func:`course_utils.torch.make_meta_step`."""
    m = METHODS.get(method)
    check_inner_loop(inner_lr, steps, first_order, forward, loss_fn)
    return m.build(inner_lr=inner_lr, steps=steps, first_order=first_order, forward=forward, loss_fn=loss_fn,
                   **options)


def meta_train(method: str, params: dict[str, np.ndarray], sample_batch: Callable, *, n_iterations: int = 1000,
               inner_lr: float = 0.01, outer_lr: float = 1e-3, steps: int = 1, first_order: bool = False,
               forward: Callable = mlp_forward, loss_fn: Callable = mse_loss,
               rng: np.random.Generator | int | None = None, eval_fn: Callable | None = None,
               eval_every: int = 100, epsilon_start: float = 1.0, epsilon_end: float = 0.0,
               progress: bool = True, desc: str | None = None, num_threads: int | None = 1,
               block_size: int | None = None, **options) -> tuple[dict[str, np.ndarray], MetaHistory]:
    """Meta-train ``params`` with ``method``; same contract as :func:`course_utils.torch.meta_train`.

    A whole block of meta-iterations runs in one ``tf.function``: a graph loop over the block's
    batches, each iteration the method's step and then Adam (or Reptile's interpolation) on the
    ``tf.Variable`` s, the losses gathered in a ``tf.TensorArray`` and returned once per block.
    The function is traced once, on iteration 0 (``history.trace_seconds``), for blocks of any
    length. ``block_size=1`` runs one iteration per call. ``num_threads`` is validated and
    otherwise ignored.
    """
    m = METHODS.get(method)
    check_meta_train(params, sample_batch, inner_lr=inner_lr, steps=steps, first_order=first_order, forward=forward,
                     loss_fn=loss_fn, epsilon_start=epsilon_start, epsilon_end=epsilon_end)
    n_iterations = check_positive_int(n_iterations, "n_iterations")
    rng = check_rng(rng)
    if m.update == "gradient":
        check_lr(outer_lr, "outer_lr")
    else:
        reptile_epsilon(0, n_iterations, epsilon_start=epsilon_start, epsilon_end=epsilon_end)
    step = make_meta_step(method, inner_lr=inner_lr, steps=steps, first_order=first_order, forward=forward,
                          loss_fn=loss_fn, **options)
    names = list(params)
    with device_scope():
        variables = {k: tf.Variable(np.asarray(v, np.float32), name=k) for k, v in params.items()}
        state = adam_init(variables) if m.update == "gradient" else None
    compiled = {}

    def one_iteration(eps, xs, ys, xq, yq):
        loss, update = step({k: tf.convert_to_tensor(variables[k]) for k in names}, xs, ys, xq, yq)
        if state is not None:
            adam_step(variables, update, state, lr=outer_lr)
        else:
            for k in update:
                variables[k].assign_add(eps * update[k])
        return tf.cast(loss, tf.float32)

    def train_block(eps, xs, ys, xq, yq):
        n = tf.shape(eps)[0]
        losses = tf.TensorArray(tf.float32, size=n)
        for j in tf.range(n):
            tf.autograph.experimental.set_loop_options(parallel_iterations=1)
            losses = losses.write(j, one_iteration(eps[j], xs[j], ys[j], xq[j], yq[j]))
        return losses.stack()

    def iterate(i, block):
        data = as_task_tensors(*tuple(block)[:4])
        n = 1 if block_size == 1 else int(data[0].shape[0])
        eps = np.zeros(n, np.float32) if state is not None else np.array(
            [reptile_epsilon(i + j, n_iterations, epsilon_start=epsilon_start, epsilon_end=epsilon_end)
             for j in range(n)], np.float32)
        if "fn" not in compiled:
            if block_size == 1:  # the straightforward loop: one call per iteration
                compiled["fn"] = tf.function(one_iteration, reduce_retracing=True)
            else:  # one trace for blocks of every length: only the block axis is left unknown
                spec = [tf.TensorSpec((None,), tf.float32)] + [
                    tf.TensorSpec((None, *a.shape[1:]), a.dtype) for a in data]
                compiled["fn"] = tf.function(train_block, input_signature=spec)
        return compiled["fn"](tf.constant(eps[0] if block_size == 1 else eps), *data)

    with pin_threads(num_threads), device_scope():
        hist = run_meta_loop(iterate, lambda r: tuple(sample_batch(r))[:4], n_iterations=n_iterations, rng=rng,
                             get_params=lambda: {k: v.numpy() for k, v in variables.items()},
                             method=method, framework="tensorflow", eval_fn=eval_fn, eval_every=eval_every,
                             progress=progress, desc=desc, block_size=block_size)
    return {k: v.numpy().astype(np.float32) for k, v in variables.items()}, hist


def pretrain_baseline(params: dict[str, np.ndarray], sample_batch: Callable, *, n_iterations: int = 1000,
                      lr: float = 1e-3, forward: Callable = mlp_forward, loss_fn: Callable = mse_loss,
                      rng: np.random.Generator | int | None = None, progress: bool = True,
                      desc: str | None = None, num_threads: int | None = 1
                      ) -> tuple[dict[str, np.ndarray], MetaHistory]:
    """The pooled "pretrained on all tasks" baseline: ``meta_train("pretrain", ...)``; mirrors
    :func:`course_utils.torch.pretrain_baseline`."""
    check_lr(lr, "lr")
    return meta_train("pretrain", params, sample_batch, n_iterations=n_iterations, outer_lr=lr, steps=0,
                      forward=forward, loss_fn=loss_fn, rng=rng, progress=progress, desc=desc,
                      num_threads=num_threads)
