"""Chapter 2 (frameworks): float64 NumPy references for the MAML meta-gradient, and checkers.

Framework-free references that both frameworks are tested against:

* :func:`linear_meta_gradient` - the exact one-step MAML meta-gradient of a linear model with
  MSE, written out by hand: the support Hessian is known in closed form.
* :func:`mlp_loss_and_grad` / :func:`maml_loss_numpy` - a ReLU MLP's MSE, its gradient by
  hand-written backpropagation, and the one-step MAML objective, all in float64, so a finite
  difference of the objective checks a framework's second-order meta-gradient.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from course_utils.grading import report
from course_utils.validation import (check_bool, check_callable, check_float, check_int, check_params,
                                     check_same_keys, check_task_arrays, mlp_dims)

__all__ = [
    "linear_meta_gradient",
    "mlp_loss_and_grad",
    "maml_loss_numpy",
    "directional_derivative",
    "RETRACE_CALLS",
    "check_hvp",
    "check_scalar_meta_gradient",
    "scalar_meta_gradient_problem",
    "check_retrace_count",
]


def _tasks(params, x_support, y_support, x_query, y_query, *, tasks_axis: bool = True):
    """The MLP ``params`` and its task arrays (see :func:`check_task_arrays`), as float64 arrays."""
    names = ("x_support", "y_support", "x_query", "y_query") if tasks_axis else ("x", "y")
    given = (x_support, y_support, x_query, y_query)[:len(names)]
    check_params(params, mlp=True)
    check_task_arrays(dict(zip(names, given)), tasks_axis=tasks_axis, x_dim=mlp_dims(params)[0],
                      y_dim=mlp_dims(params)[1])
    for k, a in zip(names, given):
        if np.ndim(a) != (3 if tasks_axis else 2):
            raise ValueError(f"{k} must be {'(tasks, points, features)' if tasks_axis else '(points, features)'}, "
                             f"got shape {np.shape(a)}")
    return [np.asarray(a, dtype=np.float64) for a in given]


# --------------------------------------------------------------------------- linear model, exact
def linear_meta_gradient(params: dict, x_support, y_support, x_query, y_query, *,
                         inner_lr: float = 0.01, first_order: bool = False
                         ) -> tuple[float, dict[str, np.ndarray]]:
    """Exact one-step MAML meta-loss and meta-gradient of a linear model f(x) = x W + b with MSE.

    With X̃ = [X, 1] (n, d+1), W̃ = [W; b] and L(W̃) = ||X̃ W̃ - Y||² / (n·o):
    ∇L = 2 X̃ᵀ(X̃W̃ - Y) / (n·o), and the Hessian acts as H[V] = 2 X̃ᵀX̃ V / (n·o). One inner step
    φ = W̃ - α ∇L_s(W̃); the meta-gradient is (I - α H_s) ∇L_q(φ) (first-order MAML drops H_s).
    Averaged over tasks, in float64.

    Args:
        params: ``{"w0": (d, o), "b0": (o,)}`` (a one-layer :func:`course_utils.nets.init_mlp`).
        x_support, y_support, x_query, y_query: (tasks, points, d) and (tasks, points, o).
        inner_lr: α (>= 0). first_order: drop the Hessian term.

    Returns:
        ``(meta_loss, {"w0": (d, o), "b0": (o,)})``.
    """
    check_params(params, keys=("w0", "b0"))
    if set(params) != {"w0", "b0"}:
        raise ValueError(f"params must be a linear model {{'w0', 'b0'}}, got keys {sorted(params)}")
    inner_lr = check_float(inner_lr, "inner_lr", 0.0)
    first_order = check_bool(first_order, "first_order")
    xs, ys, xq, yq = _tasks(params, x_support, y_support, x_query, y_query)
    w = np.vstack([np.asarray(params["w0"], np.float64), np.asarray(params["b0"], np.float64)[None]])
    aug = lambda x: np.concatenate([x, np.ones(x.shape[:-1] + (1,))], axis=-1)  # noqa: E731
    total, losses = np.zeros_like(w), []
    for t in range(xs.shape[0]):
        a_s, a_q = aug(xs[t]), aug(xq[t])
        c_s, c_q = 2.0 / ys[t].size, 2.0 / yq[t].size
        phi = w - inner_lr * c_s * a_s.T @ (a_s @ w - ys[t])
        g_q = c_q * a_q.T @ (a_q @ phi - yq[t])
        meta = g_q if first_order else g_q - inner_lr * c_s * a_s.T @ (a_s @ g_q)
        total += meta
        losses.append(np.mean((a_q @ phi - yq[t]) ** 2))
    total /= xs.shape[0]
    return float(np.mean(losses)), {"w0": total[:-1], "b0": total[-1]}


# --------------------------------------------------------------------------- ReLU MLP, float64
def _n_layers(params: dict) -> int:
    n = sum(1 for k in params if k.startswith("w"))
    if n < 1 or set(params) != {f"{p}{i}" for i in range(n) for p in "wb"}:
        raise ValueError(f"params must have keys w0, b0, ..., got {sorted(params)}")
    return n


def mlp_loss_and_grad(params: dict, x, y) -> tuple[float, dict[str, np.ndarray]]:
    """MSE of a ReLU MLP and its gradient by hand-written backpropagation, in float64.

    Args:
        params: ``{"w0": (in, h), "b0": (h,), ...}``.
        x: (n, in); y: (n, out).

    Returns:
        ``(loss, grads)`` with grads shaped like ``params``.
    """
    x, y = _tasks(params, x, y, None, None, tasks_axis=False)
    return _mlp_loss_and_grad(params, x, y)


def _mlp_loss_and_grad(params: dict, x: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    n = _n_layers(params)
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    h = [np.asarray(x, np.float64)]
    pre = []
    for i in range(n):
        z = h[-1] @ p[f"w{i}"] + p[f"b{i}"]
        pre.append(z)
        h.append(np.maximum(z, 0.0) if i < n - 1 else z)
    y = np.asarray(y, np.float64)
    err = h[-1] - y
    loss = float(np.mean(err ** 2))
    delta = 2.0 * err / err.size
    grads = {}
    for i in reversed(range(n)):
        if i < n - 1:
            delta = delta * (pre[i] > 0)
        grads[f"w{i}"] = h[i].T @ delta
        grads[f"b{i}"] = delta.sum(0)
        delta = delta @ p[f"w{i}"].T
    return loss, grads


def maml_loss_numpy(params: dict, x_support, y_support, x_query, y_query, *,
                    inner_lr: float = 0.01, steps: int = 1) -> float:
    """The MAML objective mean_T L_q(U_T(θ)) with ``steps`` SGD steps, in float64.

    Shapes as in :func:`course_utils.torch.maml_meta_gradient` (tasks leading); ``inner_lr`` >= 0,
    ``steps`` >= 0.
    """
    inner_lr = check_float(inner_lr, "inner_lr", 0.0)
    steps = check_int(steps, "steps", 0)
    xs, ys, xq, yq = _tasks(params, x_support, y_support, x_query, y_query)
    losses = []
    for t in range(xs.shape[0]):
        phi = {k: np.asarray(v, np.float64) for k, v in params.items()}
        for _ in range(steps):
            _, g = _mlp_loss_and_grad(phi, xs[t], ys[t])
            phi = {k: phi[k] - inner_lr * g[k] for k in phi}
        losses.append(_mlp_loss_and_grad(phi, xq[t], yq[t])[0])
    return float(np.mean(losses))


def directional_derivative(fn: Callable[[dict], float], params: dict, direction: dict, *,
                           eps: float = 1e-5) -> float:
    """Central finite difference (fn(θ + εv) - fn(θ - εv)) / 2ε of a float64 function of a dict.

    ``direction`` has the keys of ``params``; ``eps`` is finite and > 0.
    """
    check_callable(fn, "fn")
    eps = check_float(eps, "eps", 0.0, low_open=True)
    check_params(params)
    check_same_keys(params, direction, "direction")
    plus = {k: np.asarray(params[k], np.float64) + eps * np.asarray(direction[k], np.float64) for k in params}
    minus = {k: np.asarray(params[k], np.float64) - eps * np.asarray(direction[k], np.float64) for k in params}
    return (fn(plus) - fn(minus)) / (2 * eps)


# --------------------------------------------------------------------------- challenges
def check_hvp(fn: Callable | None) -> bool:
    """Challenge 1: ``fn(f, theta, v) -> H(θ) v`` for a scalar PyTorch function f of a 1-D tensor.

    Tested on f(θ) = ½ θᵀAθ + Σ θ³ / 3, whose Hessian A + diag(2θ) is known exactly.
    """
    name = "Hessian-vector product"
    if fn is None:
        return report(False, name, "Define hvp(f, theta, v) with torch.func or torch.autograd and pass it in.")
    import torch

    rng = np.random.default_rng(7)
    m = rng.standard_normal((4, 4))
    a = m @ m.T
    theta = rng.standard_normal(4)
    v = rng.standard_normal(4)
    a_t = torch.tensor(a)
    f = lambda th: 0.5 * th @ a_t @ th + (th ** 3).sum() / 3  # noqa: E731
    expected = (a + np.diag(2 * theta)) @ v
    try:
        got = fn(f, torch.tensor(theta), torch.tensor(v))
        got = np.asarray(got.detach() if hasattr(got, "detach") else got, dtype=float).ravel()
    except Exception as exc:  # noqa: BLE001
        return report(False, name, f"calling it raised {type(exc).__name__}: {exc}")
    if got.shape != expected.shape:
        return report(False, name, f"expected a vector of {expected.size} numbers, got shape {got.shape}")
    if np.allclose(got, a @ v, rtol=1e-6):
        return report(False, name, "You returned A v: the cubic term's Hessian diag(2θ) is missing.")
    if not np.allclose(got, expected, rtol=1e-6, atol=1e-8):
        return report(False, name, "Not H v. Differentiate (∇f(θ) · v) once more with respect to θ.")
    return report(True, name)


def scalar_meta_gradient_problem() -> dict:
    """The numbers of challenge 2: a model y = w·x, one inner SGD step on the support set."""
    return {"w": 0.5, "inner_lr": 0.1, "x_support": [1.0, 2.0], "y_support": [2.0, 4.0],
            "x_query": [3.0], "y_query": [6.0]}


def _scalar_meta_gradient(first_order: bool = False) -> float:
    p = scalar_meta_gradient_problem()
    w, a = p["w"], p["inner_lr"]
    xs, ys = np.array(p["x_support"]), np.array(p["y_support"])
    xq, yq = np.array(p["x_query"]), np.array(p["y_query"])
    g_s = np.mean(2 * xs * (w * xs - ys))
    h_s = np.mean(2 * xs ** 2)
    phi = w - a * g_s
    g_q = np.mean(2 * xq * (phi * xq - yq))
    return float(g_q if first_order else (1 - a * h_s) * g_q)


def check_scalar_meta_gradient(answer: float | None) -> bool:
    """Challenge 2: d/dw L_q(w - α L_s'(w)) for :func:`scalar_meta_gradient_problem` (MSE losses)."""
    name = "meta-gradient by hand"
    if answer is None:
        return report(False, name, "Compute the number with pen and paper (or NumPy) and pass it in.")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return report(False, name, f"expected a number, got {answer!r}")
    if np.isclose(value, _scalar_meta_gradient(first_order=True), rtol=1e-4):
        return report(False, name, "That is the first-order answer: multiply by (1 - α L_s''(w)).")
    if not np.isclose(value, _scalar_meta_gradient(), rtol=1e-4):
        return report(False, name, "Not yet. Use φ = w - α L_s'(w), then the chain rule "
                                   "dL_q(φ)/dw = L_q'(φ) · (1 - α L_s''(w)).")
    return report(True, name)


#: The calls of challenge 3, in order, as source strings (``f`` is ``@tf.function def f(x): return x * 2``).
RETRACE_CALLS = ("f(1)", "f(2)", "f(1)", "f(tf.constant(1.0))", "f(tf.constant(5.0))",
                 "f(tf.constant([1.0, 2.0]))", "f(3.0)")


def _count_retraces() -> int:
    from course_utils.env import configure_tensorflow_env

    configure_tensorflow_env()
    import tensorflow as tf

    @tf.function
    def f(x):
        return x * 2

    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # the retracing warning is the point of the exercise, not news
    try:
        for call in RETRACE_CALLS:
            eval(call, {"f": f, "tf": tf})  # noqa: S307 - fixed strings defined above
    finally:
        logger.setLevel(level)
    return int(f.experimental_get_tracing_count())


def check_retrace_count(answer: int | None) -> bool:
    """Challenge 3: how many times does ``tf.function`` trace ``f`` for the calls in :data:`RETRACE_CALLS`?

    The checker runs the calls on the installed TensorFlow to get the true count.
    """
    name = "retracing"
    if answer is None:
        return report(False, name, "Predict the number of traces, then pass it in as an int.")
    if isinstance(answer, bool) or not isinstance(answer, (int, np.integer)):
        return report(False, name, f"expected an int, got {answer!r}")
    true = _count_retraces()
    if int(answer) != true:
        return report(False, name, "Not yet. A Python value is part of the trace key (each new value "
                                   "traces); a tensor only contributes its dtype and shape.")
    return report(True, name)
