"""Learned update rules in TensorFlow (chapter 10): Meta-SGD and the meta-learner LSTM.

Mirrors :mod:`course_utils.torch.learned` name for name and signature for signature; see there
and :mod:`course_utils.learned` for the maths and the parameter layouts. Tiled weights (one copy
of the learner per task) under nested ``tf.GradientTape`` s; the registered ``meta_train``
steps (``"metasgd"``, ``"metalstm"``) run inside the training loop's compiled graph.
"""
from __future__ import annotations

from typing import Callable

from course_utils.env import configure_tensorflow_env

configure_tensorflow_env()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from course_utils.learned import final_step, register_learned_methods, split_learned  # noqa: E402
from course_utils.validation import (check_array, check_bool, check_float, check_learned_call,  # noqa: E402
                                     check_params)
from course_utils.tensorflow.core import as_task_tensors, mlp_forward, mse_loss, to_tensor  # noqa: E402
from course_utils.tensorflow.meta import _mlp_forward_tasks, _n_tasks  # noqa: E402
from course_utils.tensorflow.training import register_meta_method  # noqa: E402

__all__ = ["preprocess_gradient", "meta_sgd_adapt", "meta_lstm_adapt", "learned_curve"]


def preprocess_gradient(x: tf.Tensor, p: float = 10.0) -> tf.Tensor:
    """Andrychowicz et al.'s preprocessing: x (...) → (..., 2); see :func:`course_utils.torch.preprocess_gradient`."""
    check_array(x, "x", dtype="real")
    p = check_float(p, "p", 0.0, low_open=True)
    x = to_tensor(x)
    cut = float(np.exp(-p))
    big = tf.abs(x) >= cut
    first = tf.where(big, tf.math.log(tf.maximum(tf.abs(x), cut)) / p, -tf.ones_like(x))
    second = tf.where(big, tf.sign(x), float(np.exp(p)) * x)
    return tf.stack([first, second], -1)


def _task_losses_fn(forward: Callable, loss_fn: Callable) -> Callable:
    """``fn(phi_tiled, x, y) -> (tasks,)`` per-task mean losses."""
    if forward is mlp_forward and loss_fn is mse_loss:
        return lambda phi, x, y: tf.reduce_mean((_mlp_forward_tasks(phi, x) - y) ** 2,
                                                axis=list(range(1, len(y.shape))))
    return lambda phi, x, y: tf.stack([loss_fn(forward({k: v[t] for k, v in phi.items()}, x[t]), y[t])
                                       for t in range(_n_tasks(x))])


def _check_call(params, x_support, y_support, steps, forward, loss_fn):
    steps = check_learned_call(params, x_support, y_support, steps, forward, loss_fn, mlp_forward)
    xs, ys = as_task_tensors(x_support, y_support)
    return steps, xs, ys


def _tile(theta: dict, n: int) -> dict:
    return {k: tf.repeat(tf.convert_to_tensor(v)[None], n, axis=0) for k, v in theta.items()}


def _meta_sgd_trajectory(params, xs, ys, steps, first_order, task_losses):
    theta, lrs, _ = split_learned(params)
    missing = sorted(set(theta) - set(lrs))
    if missing:
        raise ValueError(f"Meta-SGD needs a step size for every weight: params lacks {['lr_' + k for k in missing]} "
                         f"(build them with course_utils.learned.init_meta_sgd)")
    names = list(theta)
    phi = _tile(theta, _n_tasks(xs))
    yield phi, None
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch([phi[k] for k in names])
            total = tf.reduce_sum(task_losses(phi, xs, ys))
        g = tape.gradient(total, [phi[k] for k in names])
        if first_order:
            g = [tf.stop_gradient(v) for v in g]
        phi = {k: phi[k] - tf.convert_to_tensor(lrs[k]) * gk for k, gk in zip(names, g)}
        yield phi, None


def meta_sgd_adapt(params: dict, x_support, y_support, *, steps: int = 1, first_order: bool = False,
                   forward: Callable = mlp_forward, loss_fn: Callable = mse_loss) -> dict:
    """Meta-SGD's inner loop for every task; see :func:`course_utils.torch.meta_sgd_adapt`."""
    steps, xs, ys = _check_call(params, x_support, y_support, steps, forward, loss_fn)
    first_order = check_bool(first_order, "first_order")
    phi, _ = final_step(_meta_sgd_trajectory(params, xs, ys, steps, first_order,
                                                       _task_losses_fn(forward, loss_fn)))
    return phi


def _meta_lstm_trajectory(params, xs, ys, steps, p, task_losses):
    theta, _, opt = split_learned(params)
    need = ("opt_w1", "opt_b1", "opt_wf", "opt_bf", "opt_wi", "opt_bi")
    missing = [k for k in need if k not in opt]
    if missing:
        raise ValueError(f"the meta-learner LSTM needs the weights {list(need)}; params lacks {missing} "
                         f"(build them with course_utils.learned.init_meta_lstm)")
    opt = {k: tf.convert_to_tensor(v) for k, v in opt.items()}
    names, shapes = list(theta), [tuple(v.shape) for v in theta.values()]
    sizes = [int(np.prod(s)) for s in shapes]
    n, hidden, n_p = _n_tasks(xs), int(opt["opt_w1"].shape[1]) // 4, sum(sizes)
    unflat = lambda c: {k: tf.reshape(v, (n, *s)) for k, v, s in zip(names, tf.split(c, sizes, 1), shapes)}  # noqa: E731
    c = tf.repeat(tf.concat([tf.reshape(tf.convert_to_tensor(theta[k]), [-1]) for k in names], 0)[None], n, axis=0)
    h1 = c1 = tf.zeros((n, n_p, hidden))
    f = i = tf.zeros((n, n_p))
    yield unflat(c), None
    for _ in range(steps):
        leaf = tf.stop_gradient(c)                                                   # gradient inputs are constants
        with tf.GradientTape() as tape:
            tape.watch(leaf)
            losses = task_losses(unflat(leaf), xs, ys)
            total = tf.reduce_sum(losses)
        g = tf.stop_gradient(tape.gradient(total, leaf))
        pl = tf.broadcast_to(preprocess_gradient(tf.stop_gradient(losses), p)[:, None, :], (n, n_p, 2))
        x = tf.concat([preprocess_gradient(g, p), pl], -1)
        z = tf.matmul(tf.concat([x, h1], -1), opt["opt_w1"]) + opt["opt_b1"]
        zi, zf, zg, zo = tf.split(z, 4, -1)
        c1 = tf.sigmoid(zf) * c1 + tf.sigmoid(zi) * tf.tanh(zg)
        h1 = tf.sigmoid(zo) * tf.tanh(c1)
        hc = tf.concat([h1, c[..., None]], -1)
        f = tf.sigmoid(tf.matmul(tf.concat([hc, f[..., None]], -1), opt["opt_wf"])[..., 0] + opt["opt_bf"])
        i = tf.sigmoid(tf.matmul(tf.concat([hc, i[..., None]], -1), opt["opt_wi"])[..., 0] + opt["opt_bi"])
        c = f * c - i * g
        yield unflat(c), (f, i)


def meta_lstm_adapt(params: dict, x_support, y_support, *, steps: int = 5, forward: Callable = mlp_forward,
                    loss_fn: Callable = mse_loss, p: float = 10.0, return_gates: bool = False):
    """The meta-learner LSTM's inner loop; see :func:`course_utils.torch.meta_lstm_adapt`."""
    steps, xs, ys = _check_call(params, x_support, y_support, steps, forward, loss_fn)
    p = check_float(p, "p", 0.0, low_open=True)
    return_gates = check_bool(return_gates, "return_gates")
    trajectory = list(_meta_lstm_trajectory(params, xs, ys, steps, p, _task_losses_fn(forward, loss_fn)))
    phi = trajectory[-1][0]
    gates = [g for _, g in trajectory[1:]]
    if not return_gates:
        return phi
    stack = lambda j: np.stack([g[j].numpy() for g in gates]) if gates else np.zeros((0, int(xs.shape[0]), 0))  # noqa: E731
    return phi, {"forget": stack(0), "input": stack(1)}


def learned_curve(method: str, params: dict, x_support, y_support, x_query, y_query, *, steps: int = 5,
                  forward: Callable = mlp_forward, loss_fn: Callable = mse_loss) -> np.ndarray:
    """Per-task query loss after 0, 1, ..., ``steps`` inner steps; see :func:`course_utils.torch.learned_curve`."""
    if method not in ("metasgd", "metalstm"):
        raise ValueError(f"method must be one of ['metasgd', 'metalstm'], got {method!r}")
    check_params(params)
    params = {k: tf.convert_to_tensor(np.asarray(v, np.float32) if not isinstance(v, (tf.Tensor, tf.Variable)) else v)
              for k, v in params.items()}
    check_learned_call(params, x_support, y_support, steps, forward, loss_fn, mlp_forward, x_query=x_query,
                       y_query=y_query)
    steps, xs, ys = _check_call(params, x_support, y_support, steps, forward, loss_fn)
    xq, yq = as_task_tensors(x_query, y_query)
    task_losses = _task_losses_fn(forward, loss_fn)
    chunks = []
    for s in range(0, _n_tasks(xs), _CHUNK):  # chunks of tasks: the LSTM's state is (tasks, P, H)
        e = s + _CHUNK
        traj = (_meta_sgd_trajectory(params, xs[s:e], ys[s:e], steps, False, task_losses) if method == "metasgd"
                else _meta_lstm_trajectory(params, xs[s:e], ys[s:e], steps, 10.0, task_losses))
        chunks.append(np.stack([task_losses(phi, xq[s:e], yq[s:e]).numpy() for phi, _ in traj]))
    return np.concatenate(chunks, 1).astype(np.float64)


_CHUNK = 100  # tasks evaluated at once by learned_curve


# --------------------------------------------------------------------------- meta_train methods
def _step(trajectory_of):
    def make_step(*, inner_lr, steps, first_order, forward, loss_fn):
        task_losses = _task_losses_fn(forward, loss_fn)

        def step(params, x_support, y_support, x_query, y_query):
            names = list(params)
            with tf.GradientTape() as tape:
                tape.watch([params[k] for k in names])
                phi, _ = final_step(trajectory_of(params, x_support, y_support, steps, first_order, task_losses))
                loss = tf.reduce_mean(task_losses(phi, x_query, y_query))
            grads = tape.gradient(loss, [params[k] for k in names])
            return loss, dict(zip(names, grads))
        return step
    return make_step


register_learned_methods(register_meta_method, _step, _meta_sgd_trajectory, _meta_lstm_trajectory)
