"""TensorFlow helpers for chapter 2: higher-order gradients, Hessian-vector products, optimizers.

Mirrors :mod:`course_utils.torch.autodiff` name for name. Parameters are dicts of
``tf.Variable`` s or tensors in the layout of :mod:`course_utils.nets`; second derivatives come
from nested ``tf.GradientTape`` s.
"""
from __future__ import annotations

import inspect
from typing import Callable

from course_utils.env import configure_tensorflow_env

configure_tensorflow_env()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from course_utils.nets import mlp_layer_count  # noqa: E402
from course_utils.tensorflow.core import as_task_tensors, from_numpy, mlp_forward, mse_loss, to_tensor  # noqa: E402
from course_utils.validation import (check_bool, check_callable, check_same_keys,  # noqa: E402
                                     check_meta_call, check_params)

__all__ = ["hessian_vector_product", "meta_gradient_by_hand", "list_optimizers", "mlp_module",
           "module_to_numpy"]

#: Keras optimizers that wrap other optimizers instead of defining an update rule.
WRAPPER_OPTIMIZERS = ("LossScaleOptimizer", "MultiOptimizer", "OptimizerMap")


def hessian_vector_product(loss_fn: Callable[[dict], tf.Tensor], params: dict, vector: dict) -> dict:
    """H v, the Hessian of ``loss_fn`` at ``params`` times ``vector``, without forming H.

    Uses the identity H v = ∇_θ (∇_θ L(θ) · v) with two nested tapes: the inner tape gives
    ∇L, the outer tape records that computation and differentiates the dot product with v.

    Args:
        loss_fn: maps a parameter dict to a scalar tensor.
        params: ``{name: tf.Variable or tensor}``.
        vector: ``{name: tensor or array}`` with the same keys and shapes as ``params``.

    Returns:
        ``{name: tensor}`` with the shapes of ``params``.
    """
    check_callable(loss_fn, "loss_fn")
    check_params(params)
    check_same_keys(params, vector)
    names = list(params)
    theta = {k: tf.identity(to_tensor(params[k])) for k in names}  # values, not the caller's variables
    v = [tf.stop_gradient(tf.cast(to_tensor(vector[k]), theta[k].dtype)) for k in names]
    xs = [theta[k] for k in names]
    with tf.GradientTape() as outer:
        outer.watch(xs)
        with tf.GradientTape() as inner:
            inner.watch(xs)
            loss = loss_fn(theta)
        grads = inner.gradient(loss, xs)
        dot = tf.add_n([tf.reduce_sum(g * vk) for g, vk in zip(grads, v)])
    hv = outer.gradient(dot, xs, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return dict(zip(names, hv))


def meta_gradient_by_hand(params: dict[str, np.ndarray], x_support, y_support, x_query, y_query, *,
                          inner_lr: float = 0.01, forward: Callable = mlp_forward,
                          loss_fn: Callable = mse_loss) -> tuple[float, dict[str, np.ndarray]]:
    """The one-step MAML meta-gradient assembled from its formula, in NumPy out.

    For each task: g_s = ∇L_s(θ), φ = θ - α g_s, g_q = ∇L_q(φ), and the meta-gradient
    (I - α H_s(θ)) g_q = g_q - α · hessian_vector_product(L_s, θ, g_q); averaged over tasks.
    Mirrors :func:`course_utils.torch.meta_gradient_by_hand`: same inputs, same outputs.

    Args:
        params: NumPy weights ``{name: array}``.
        x_support, y_support: (tasks, k_shot, in) and (tasks, k_shot, out).
        x_query, y_query: (tasks, k_query, in) and (tasks, k_query, out).
        inner_lr: the inner step size α (>= 0).

    Returns:
        ``(meta_loss, {name: gradient array})``.
    """
    inner_lr, _, _, *arrays = check_meta_call(
        params, {"x_support": x_support, "y_support": y_support, "x_query": x_query, "y_query": y_query},
        inner_lr=inner_lr, steps=1, forward=forward, loss_fn=loss_fn, mlp_forward=mlp_forward, mse_loss=mse_loss)
    xs, ys, xq, yq = as_task_tensors(*arrays)
    theta = from_numpy(params, requires_grad=False)
    names = list(theta)
    total = {k: tf.zeros_like(theta[k]) for k in names}
    losses = []
    for t in range(arrays[0].shape[0]):
        support_loss = lambda p, t=t: loss_fn(forward(p, xs[t]), ys[t])  # noqa: E731
        with tf.GradientTape() as tape:
            tape.watch([theta[k] for k in names])
            s_loss = support_loss(theta)
        g_s = tape.gradient(s_loss, [theta[k] for k in names])
        phi = {k: theta[k] - inner_lr * g for k, g in zip(names, g_s)}
        with tf.GradientTape() as tape:
            tape.watch([phi[k] for k in names])
            q_loss = loss_fn(forward(phi, xq[t]), yq[t])
        g_q = dict(zip(names, tape.gradient(q_loss, [phi[k] for k in names])))
        hv = hessian_vector_product(support_loss, theta, g_q)
        for k in names:
            total[k] += g_q[k] - inner_lr * hv[k]
        losses.append(float(q_loss))
    n = arrays[0].shape[0]
    return float(np.mean(losses)), {k: (total[k] / n).numpy() for k in names}


def list_optimizers(*, include_wrappers: bool = False) -> list[str]:
    """Names of the optimizer classes that the installed TensorFlow ships in ``tf.keras.optimizers``.

    Found by inspection: every public class there that subclasses the Keras ``Optimizer`` base
    (the base itself excluded). Wrappers that hold other optimizers instead of defining an
    update rule (:data:`WRAPPER_OPTIMIZERS`, e.g. ``LossScaleOptimizer``) are left out unless
    ``include_wrappers=True``.

    Returns:
        Sorted class names, e.g. ``["Adadelta", "Adafactor", ..., "SGD"]``.
    """
    include_wrappers = check_bool(include_wrappers, "include_wrappers")
    module = tf.keras.optimizers
    base = module.Optimizer
    names = set()
    for name, obj in vars(module).items():
        if name.startswith("_") or not inspect.isclass(obj) or obj is base:
            continue
        if not issubclass(obj, base) and name not in WRAPPER_OPTIMIZERS:
            continue
        if name in WRAPPER_OPTIMIZERS and not include_wrappers:
            continue
        names.add(name)
    return sorted(names, key=str.lower)


def mlp_module(params: dict[str, np.ndarray]) -> tf.keras.Sequential:
    """A Keras ``Sequential`` of ``Dense`` layers (ReLU hidden, linear output) holding ``params``.

    Keras ``Dense`` kernels are (in, out), the layout of :mod:`course_utils.nets`, so the weights
    load unchanged. The model computes exactly :func:`course_utils.tensorflow.mlp_forward`.

    Args:
        params: ``{"w0": (in, h), "b0": (h,), ...}``.

    Returns:
        A built float32 ``tf.keras.Sequential``.
    """
    n = mlp_layer_count(check_params(params, mlp=True))
    layers = [tf.keras.Input((int(np.shape(params["w0"])[0]),))]
    for i in range(n):
        layers.append(tf.keras.layers.Dense(int(np.shape(params[f"w{i}"])[1]),
                                            activation="relu" if i < n - 1 else None))
    model = tf.keras.Sequential(layers)
    model.set_weights([np.asarray(params[f"{p}{i}"], np.float32) for i in range(n) for p in "wb"])
    return model


def module_to_numpy(module) -> dict[str, np.ndarray]:
    """The ``Dense`` layers of a Keras model, in order, as ``{"w0": (in, out), "b0": (out,), ...}``.

    The inverse of :func:`mlp_module`; load the result into PyTorch with ``from_numpy``.
    """
    dense = [layer for layer in getattr(module, "layers", []) if isinstance(layer, tf.keras.layers.Dense)]
    if not dense:
        raise ValueError("module must be a Keras model with at least one Dense layer")
    out = {}
    for i, layer in enumerate(dense):
        out[f"w{i}"] = np.asarray(layer.kernel.numpy(), np.float32)
        out[f"b{i}"] = (np.asarray(layer.bias.numpy(), np.float32) if layer.use_bias
                        else np.zeros(layer.units, np.float32))
    return out
