"""TensorFlow core helpers: conversion, functional MLP parameters, losses, the MAML inner loop,
Adam and (for symmetry) thread pinning.

Mirrors :mod:`course_utils.torch.core` name for name and signature for signature. Parameters are
``dict[str, tf.Variable]``
(or tensors) in the layout of :mod:`course_utils.nets`; gradients come from nested
``tf.GradientTape`` s. TensorFlow's logging variables are set before TensorFlow is imported.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from course_utils.env import configure_tensorflow_env

configure_tensorflow_env()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from course_utils.env import course_device  # noqa: E402

from course_utils.validation import (check_adam, check_array, check_bool, check_classification, check_meta_call,  # noqa: E402
                                     check_mlp_input, check_names, check_params, check_positive_int,
                                     check_regression_loss, check_to_tensor)



def _validators_run_as_python() -> None:
    """Let AutoGraph call :mod:`course_utils.validation` as plain Python inside ``tf.function``.

    The validators only read shapes and dtypes (and values when they are known), so converting
    them buys nothing; converted, every one of their many small calls goes through AutoGraph's
    call wrapper at each trace (measured: chapter 6's ``finetune_curve`` 70 % slower). TensorFlow
    has no public switch for a whole module, hence its (stable since TF 2.2) conversion rules;
    without them the validators are merely converted, which is correct, only slower.
    """
    try:
        from tensorflow.python.autograph.core import config, config_lib
    except ImportError:  # pragma: no cover - a TensorFlow without these internals
        return
    rule = config_lib.DoNotConvert("course_utils.validation")
    if not any(str(r) == str(rule) for r in config.CONVERSION_RULES):
        config.CONVERSION_RULES = (rule, *config.CONVERSION_RULES)


_validators_run_as_python()

__all__ = [
    "FRAMEWORK",
    "to_tensor",
    "as_task_tensors",
    "from_numpy",
    "to_numpy",
    "mlp_forward",
    "mse_loss",
    "cross_entropy_loss",
    "accuracy",
    "adapt",
    "maml_objective",
    "maml_meta_gradient",
    "adam_init",
    "adam_step",
    "num_threads",
]

FRAMEWORK = "tensorflow"


def to_tensor(a, dtype: str | None = None) -> tf.Tensor:
    """The one NumPy → tensor converter of the TensorFlow half (mirrors the PyTorch one).

    Without ``dtype``: float arrays → float32, integer labels → int64, ``uint8`` images (ink =
    255) → float32 in [0, 1]; tensors and variables pass through unchanged. With ``dtype``
    (``"float32"`` or ``"int64"``) the result is cast to it (tensors too).
    """
    check_to_tensor(a, "a", dtype)
    if isinstance(a, (tf.Tensor, tf.Variable)):
        return a if dtype is None or a.dtype == getattr(tf, dtype) else tf.cast(a, getattr(tf, dtype))
    a = np.asarray(a)
    if dtype is not None:
        return tf.constant(np.asarray(a, dtype=dtype))
    if a.dtype == np.uint8:
        return tf.constant(a.astype(np.float32) / 255.0)
    if np.issubdtype(a.dtype, np.floating) or a.dtype == np.bool_:
        return tf.constant(np.asarray(a, dtype=np.float32))
    if np.issubdtype(a.dtype, np.integer):
        return tf.constant(a.astype(np.int64))
    raise ValueError(f"arrays must be float, integer or uint8 images, got dtype {a.dtype}")


def _task_array(a, name: str):
    check_to_tensor(a, name)
    return check_array(a, name, min_ndim=1, nonempty=False)


def as_task_tensors(*arrays) -> tuple[tf.Tensor, ...]:
    """Task arrays → tensors with :func:`to_tensor` (float32; int64 labels; uint8 images in [0, 1]).

    Also accepts a single object with ``x_support, y_support, x_query, y_query`` attributes.
    """
    if len(arrays) == 1 and hasattr(arrays[0], "x_support"):
        t = arrays[0]
        arrays = (t.x_support, t.y_support, t.x_query, t.y_query)
    return tuple(to_tensor(_task_array(a, f"arrays[{i}]")) for i, a in enumerate(arrays))


def from_numpy(params: dict[str, np.ndarray], *, requires_grad: bool = True) -> dict:
    """NumPy parameter dict → float32 ``tf.Variable`` s (trainable) or constants."""
    check_params(params)
    if check_bool(requires_grad, "requires_grad"):
        return {k: tf.Variable(np.asarray(v, dtype=np.float32), name=k) for k, v in params.items()}
    return {k: tf.constant(np.asarray(v, dtype=np.float32)) for k, v in params.items()}


def to_numpy(params: dict) -> dict[str, np.ndarray]:
    """Variables/tensors (or arrays) → a NumPy parameter dict, float32."""
    check_params(params)
    return {k: np.asarray(v.numpy() if hasattr(v, "numpy") else v, dtype=np.float32)
            for k, v in params.items()}


def mlp_forward(params: dict, x: tf.Tensor) -> tf.Tensor:
    """ReLU MLP with explicit parameters: x (..., in) → (..., out)."""
    check_mlp_input(params, x)
    n = sum(1 for k in params if k.startswith("w"))
    h = x
    for i in range(n):
        h = tf.matmul(h, params[f"w{i}"]) + params[f"b{i}"]
        if i < n - 1:
            h = tf.nn.relu(h)
    return h


def mse_loss(pred: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """Mean squared error over all elements."""
    check_regression_loss(pred, y)
    return tf.reduce_mean(tf.square(pred - y))


def cross_entropy_loss(logits: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """Mean softmax cross-entropy: logits (n, classes), integer labels y (n,)."""
    check_classification(logits, y)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(y, tf.int64), logits=logits))


def accuracy(logits: tf.Tensor, y: tf.Tensor) -> float:
    """Fraction of rows whose arg-max equals the label."""
    check_classification(logits, y)
    pred = tf.argmax(logits, axis=-1, output_type=tf.int64)
    return float(tf.reduce_mean(tf.cast(pred == tf.cast(y, tf.int64), tf.float32)))


def adapt(params: dict, x_support, y_support, *, inner_lr: float = 0.01, steps: int = 1,
          first_order: bool = False, forward: Callable = mlp_forward,
          loss_fn: Callable = mse_loss, only: tuple[str, ...] | None = None) -> dict:
    """The MAML inner loop: ``steps`` SGD steps φ ← φ - α ∇L_support(φ), starting from ``params``.

    Call it inside an outer ``tf.GradientTape`` to differentiate through it: the inner tape's
    gradient is itself recorded by the outer tape (second order). ``first_order=True`` wraps
    the inner gradients in ``tf.stop_gradient`` (FOMAML). ``only`` names the parameters that
    adapt (ANIL adapts the head); the others pass through unchanged.
    """
    inner_lr, steps, first_order, x_support, y_support = check_meta_call(
        params, {"x_support": x_support, "y_support": y_support}, inner_lr=inner_lr, steps=steps,
        first_order=first_order, forward=forward, loss_fn=loss_fn, mlp_forward=mlp_forward, mse_loss=mse_loss,
        tasks_axis=False)
    names = list(params) if only is None else list(check_names(only, "only", params))
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch([params[k] for k in names])
            loss = loss_fn(forward(params, x_support), y_support)
        grads = tape.gradient(loss, [params[k] for k in names])
        if first_order:
            grads = [tf.stop_gradient(g) for g in grads]
        params = {**params, **{k: params[k] - inner_lr * g for k, g in zip(names, grads)}}
    return params


def maml_objective(params: dict, x_support, y_support, x_query, y_query, *, inner_lr: float = 0.01,
                   steps: int = 1, first_order: bool = False, forward: Callable = mlp_forward,
                   loss_fn: Callable = mse_loss) -> tf.Tensor:
    """Mean over tasks of the query loss after adaptation (tasks on the leading axis)."""
    inner_lr, steps, first_order, x_support, y_support, x_query, y_query = check_meta_call(
        params, {"x_support": x_support, "y_support": y_support, "x_query": x_query, "y_query": y_query},
        inner_lr=inner_lr, steps=steps, first_order=first_order, forward=forward, loss_fn=loss_fn,
        mlp_forward=mlp_forward, mse_loss=mse_loss)
    losses = []
    for t in range(int(x_support.shape[0])):
        phi = adapt(params, x_support[t], y_support[t], inner_lr=inner_lr, steps=steps,
                    first_order=first_order, forward=forward, loss_fn=loss_fn)
        losses.append(loss_fn(forward(phi, x_query[t]), y_query[t]))
    return tf.reduce_mean(tf.stack(losses))


def maml_meta_gradient(params: dict[str, np.ndarray], x_support, y_support, x_query, y_query, *,
                       inner_lr: float = 0.01, steps: int = 1, first_order: bool = False,
                       forward: Callable = mlp_forward, loss_fn: Callable = mse_loss
                       ) -> tuple[float, dict[str, np.ndarray]]:
    """The MAML meta-loss and its gradient with respect to the initial weights, in NumPy.

    Mirrors :func:`course_utils.torch.maml_meta_gradient`: same inputs, same outputs.
    """
    inner_lr, steps, first_order, *arrays = check_meta_call(
        params, {"x_support": x_support, "y_support": y_support, "x_query": x_query, "y_query": y_query},
        inner_lr=inner_lr, steps=steps, first_order=first_order, forward=forward, loss_fn=loss_fn,
        mlp_forward=mlp_forward, mse_loss=mse_loss)
    x_support, y_support, x_query, y_query = arrays
    theta = from_numpy(params)
    c = lambda a: tf.convert_to_tensor(np.asarray(a))  # noqa: E731
    with tf.GradientTape() as outer:
        loss = maml_objective(theta, c(x_support), c(y_support), c(x_query), c(y_query),
                              inner_lr=inner_lr, steps=steps, first_order=first_order,
                              forward=forward, loss_fn=loss_fn)
    grads = outer.gradient(loss, list(theta.values()))
    return float(loss), {k: g.numpy() for k, g in zip(theta, grads)}


# --------------------------------------------------------------------------- Adam
def adam_init(params: dict) -> dict:
    """Adam's state for a parameter dict: the step count and zero moments, as ``tf.Variable`` s
    (create it outside ``tf.function``; :func:`adam_step` may then run inside one)."""
    check_params(params)
    return {"t": tf.Variable(0.0, trainable=False),
            "m": {k: tf.Variable(tf.zeros_like(v), trainable=False) for k, v in params.items()},
            "v": {k: tf.Variable(tf.zeros_like(v), trainable=False) for k, v in params.items()}}


def adam_step(params: dict, grads: dict, state: dict, *, lr: float = 1e-3, beta1: float = 0.9,
              beta2: float = 0.999, eps: float = 1e-8) -> dict:
    """One Adam update of the ``tf.Variable`` s in ``params``, in place; returns ``state``.

    The same formula as :func:`course_utils.torch.adam_step` (``torch.optim.Adam``'s arithmetic),
    so both frameworks take the same steps from the same gradients; runs eagerly or inside a
    ``tf.function``. Only the keys of ``grads`` are updated.
    """
    check_adam(params, grads, state, lr=lr, beta1=beta1, beta2=beta2, eps=eps)
    t = state["t"].assign_add(1.0)
    step_size = lr / (1.0 - tf.pow(beta1, t))
    bc2_sqrt = tf.sqrt(1.0 - tf.pow(beta2, t))
    for k, g in grads.items():
        m = state["m"][k].assign_add((1.0 - beta1) * (g - state["m"][k]))
        v = state["v"][k].assign(beta2 * state["v"][k] + (1.0 - beta2) * g * g)
        params[k].assign_sub(step_size * m / (tf.sqrt(v) / bc2_sqrt + eps))
    return state


# --------------------------------------------------------------------------- threads
@contextlib.contextmanager
def num_threads(n: int | None = 1) -> Iterator[None]:
    """Accepted for symmetry with :func:`course_utils.torch.num_threads` and validated, but a
    no-op: TensorFlow fixes its thread pools when it starts (``tf.config.threading``), and its
    pools cope with shared cores."""
    if n is not None:
        check_positive_int(n, "num_threads(n)")
    yield


def _device_scope():
    """TensorFlow's side of :func:`course_utils.env.course_device`: pinned to the CPU when the
    setting is ``"cpu"`` (a visible GPU is then left alone), placed by TensorFlow otherwise."""
    if course_device() == "cpu" and tf.config.list_physical_devices("GPU"):
        return tf.device("/CPU:0")
    return contextlib.nullcontext()
