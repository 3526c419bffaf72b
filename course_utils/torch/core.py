"""PyTorch core helpers: conversion, functional MLP parameters, losses, the MAML inner loop,
Adam and thread pinning.

Parameters are ``dict[str, torch.Tensor]`` in the layout of :mod:`course_utils.nets`
(``w0`` (in, out), ``b0`` (out,), ...), so the same NumPy weights load into both frameworks.
Mirrors :mod:`course_utils.tensorflow.core` name for name and signature for signature.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import numpy as np
import torch

from course_utils.validation import (check_adam, check_array, check_bool, check_classification, check_meta_call,
                                     check_mlp_input, check_names, check_params, check_positive_int,
                                     check_regression_loss, check_to_tensor)

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

FRAMEWORK = "torch"

Params = dict[str, torch.Tensor]


def to_tensor(a, dtype: str | None = None) -> torch.Tensor:
    """The one NumPy → tensor converter of the PyTorch half.

    Without ``dtype``: float arrays → float32, integer labels → int64, ``uint8`` images (ink =
    255) → float32 in [0, 1]; tensors pass through unchanged. With ``dtype`` (``"float32"`` or
    ``"int64"``) the result is cast to it (tensors too). Read-only arrays are copied.
    """
    check_to_tensor(a, "a", dtype)
    if isinstance(a, torch.Tensor):
        return a if dtype is None else a.to(getattr(torch, dtype))
    a = np.asarray(a)
    if dtype is not None:
        return torch.from_numpy(np.array(a, dtype=dtype))
    if a.dtype == np.uint8:
        return torch.from_numpy(a.astype(np.float32) / 255.0)
    if np.issubdtype(a.dtype, np.floating) or a.dtype == np.bool_:
        return torch.from_numpy(np.array(a, dtype=np.float32))
    if np.issubdtype(a.dtype, np.integer):
        return torch.from_numpy(a.astype(np.int64))
    raise ValueError(f"arrays must be float, integer or uint8 images, got dtype {a.dtype}")


def _task_array(a, name: str):
    check_to_tensor(a, name)
    return check_array(a, name, min_ndim=1, nonempty=False)


def as_task_tensors(*arrays) -> tuple[torch.Tensor, ...]:
    """Task arrays → tensors with :func:`to_tensor` (float32; int64 labels; uint8 images in [0, 1]).

    Also accepts a single object with ``x_support, y_support, x_query, y_query`` attributes
    (``SinusoidTasks``, ``Episode``) and returns those four tensors.
    """
    if len(arrays) == 1 and hasattr(arrays[0], "x_support"):
        t = arrays[0]
        arrays = (t.x_support, t.y_support, t.x_query, t.y_query)
    return tuple(to_tensor(_task_array(a, f"arrays[{i}]")) for i, a in enumerate(arrays))


def from_numpy(params: dict[str, np.ndarray], *, requires_grad: bool = True) -> Params:
    """NumPy parameter dict → float32 tensors (leaf tensors that require grad by default)."""
    check_params(params)
    requires_grad = check_bool(requires_grad, "requires_grad")
    return {k: torch.tensor(np.asarray(v), dtype=torch.float32, requires_grad=requires_grad)
            for k, v in params.items()}


def to_numpy(params: Params) -> dict[str, np.ndarray]:
    """Tensors (or arrays) → a NumPy parameter dict, detached and float32."""
    check_params(params)
    return {k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)).astype(np.float32)
            for k, v in params.items()}


def mlp_forward(params: Params, x: torch.Tensor) -> torch.Tensor:
    """ReLU MLP with explicit parameters: x (..., in) → (..., out)."""
    check_mlp_input(params, x)
    n = sum(1 for k in params if k.startswith("w"))
    h = x
    for i in range(n):
        h = h @ params[f"w{i}"] + params[f"b{i}"]
        if i < n - 1:
            h = torch.relu(h)
    return h


def mse_loss(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all elements; ``pred`` and ``y`` must have the same shape."""
    check_regression_loss(pred, y)
    return torch.mean((pred - y) ** 2)


def cross_entropy_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean softmax cross-entropy: logits (..., n, classes), integer labels y (..., n) in [0, classes)."""
    check_classification(logits, y)
    if logits.dim() > 2:  # every row counts once, as in TensorFlow (torch reads axis 1 as the classes)
        logits, y = logits.reshape(-1, logits.shape[-1]), y.reshape(-1)
    return torch.nn.functional.cross_entropy(logits, y.long())


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows whose arg-max equals the label: logits (n, classes), integer labels y (n,)."""
    check_classification(logits, y)
    return float((logits.argmax(-1) == y).float().mean())


def adapt(params: Params, x_support: torch.Tensor, y_support: torch.Tensor, *,
          inner_lr: float = 0.01, steps: int = 1, first_order: bool = False,
          forward: Callable = mlp_forward, loss_fn: Callable = mse_loss,
          only: tuple[str, ...] | None = None) -> Params:
    """The MAML inner loop: ``steps`` SGD steps φ ← φ - α ∇L_support(φ), starting from ``params``.

    With ``first_order=False`` the graph of every step is kept (``create_graph=True``), so a
    gradient of the result with respect to ``params`` contains the Hessian terms. With
    ``first_order=True`` the inner gradients are treated as constants (FOMAML). ``only`` names
    the parameters that adapt (ANIL adapts the head); the others pass through unchanged.
    """
    inner_lr, steps, first_order, x_support, y_support = check_meta_call(
        params, {"x_support": x_support, "y_support": y_support}, inner_lr=inner_lr, steps=steps,
        first_order=first_order, forward=forward, loss_fn=loss_fn, mlp_forward=mlp_forward, mse_loss=mse_loss,
        tasks_axis=False)
    names = list(params) if only is None else list(check_names(only, "only", params))
    for _ in range(steps):
        loss = loss_fn(forward(params, x_support), y_support)
        grads = torch.autograd.grad(loss, [params[k] for k in names], create_graph=not first_order)
        params = {**params, **{k: params[k] - inner_lr * g for k, g in zip(names, grads)}}
    return params


def maml_objective(params: Params, x_support, y_support, x_query, y_query, *, inner_lr: float = 0.01,
                   steps: int = 1, first_order: bool = False, forward: Callable = mlp_forward,
                   loss_fn: Callable = mse_loss) -> torch.Tensor:
    """Mean over tasks of the query loss after adaptation.

    Shapes: ``x_support`` (tasks, k_shot, in), ``x_query`` (tasks, k_query, in); the task
    loop is plain Python (chapter 6 vectorises it with ``torch.func.vmap``).
    """
    inner_lr, steps, first_order, x_support, y_support, x_query, y_query = check_meta_call(
        params, {"x_support": x_support, "y_support": y_support, "x_query": x_query, "y_query": y_query},
        inner_lr=inner_lr, steps=steps, first_order=first_order, forward=forward, loss_fn=loss_fn,
        mlp_forward=mlp_forward, mse_loss=mse_loss)
    losses = []
    for t in range(x_support.shape[0]):
        phi = adapt(params, x_support[t], y_support[t], inner_lr=inner_lr, steps=steps,
                    first_order=first_order, forward=forward, loss_fn=loss_fn)
        losses.append(loss_fn(forward(phi, x_query[t]), y_query[t]))
    return torch.stack(losses).mean()


def maml_meta_gradient(params: dict[str, np.ndarray], x_support, y_support, x_query, y_query, *,
                       inner_lr: float = 0.01, steps: int = 1, first_order: bool = False,
                       forward: Callable = mlp_forward, loss_fn: Callable = mse_loss
                       ) -> tuple[float, dict[str, np.ndarray]]:
    """The MAML meta-loss and its gradient with respect to the initial weights, in NumPy.

    Takes and returns NumPy (weights dict; task arrays as from
    :func:`course_utils.tasks.sample_sinusoid_tasks`), so the result can be compared directly
    with :func:`course_utils.tensorflow.maml_meta_gradient`.
    """
    inner_lr, steps, first_order, *arrays = check_meta_call(
        params, {"x_support": x_support, "y_support": y_support, "x_query": x_query, "y_query": y_query},
        inner_lr=inner_lr, steps=steps, first_order=first_order, forward=forward, loss_fn=loss_fn,
        mlp_forward=mlp_forward, mse_loss=mse_loss)
    x_support, y_support, x_query, y_query = arrays
    theta = from_numpy(params)
    t = lambda a: torch.as_tensor(np.asarray(a))  # noqa: E731
    loss = maml_objective(theta, t(x_support), t(y_support), t(x_query), t(y_query), inner_lr=inner_lr,
                          steps=steps, first_order=first_order, forward=forward, loss_fn=loss_fn)
    grads = torch.autograd.grad(loss, list(theta.values()))
    return float(loss.detach()), {k: g.detach().numpy() for k, g in zip(theta, grads)}


# --------------------------------------------------------------------------- Adam
def adam_init(params: Params) -> dict:
    """Adam's state for a parameter dict: the step count and zero first and second moments."""
    check_params(params)
    return {"t": 0, "m": {k: torch.zeros_like(v) for k, v in params.items()},
            "v": {k: torch.zeros_like(v) for k, v in params.items()}}


def adam_step(params: Params, grads: Params, state: dict, *, lr: float = 1e-3, beta1: float = 0.9,
              beta2: float = 0.999, eps: float = 1e-8) -> dict:
    """One Adam update (Kingma & Ba 2015) of ``params`` in place; returns ``state``.

    The course's one Adam, in both frameworks. It is written out (rather than calling
    ``torch.optim.Adam``) so that the same formula runs on plain tensor dicts in PyTorch and on
    ``tf.Variable`` s inside a compiled ``tf.function`` in TensorFlow; it follows
    ``torch.optim.Adam``'s arithmetic operation for operation (m ← lerp(m, g, 1 − β₁),
    θ ← θ − (lr/(1 − β₁ᵗ))·m/(√v/√(1 − β₂ᵗ) + ε)), and a test proves the two equal. Keras' Adam
    is not used: it adds ε before the bias correction and defaults to ε = 1e-7.
    Only the keys of ``grads`` are updated (the others are frozen).
    """
    check_adam(params, grads, state, lr=lr, beta1=beta1, beta2=beta2, eps=eps)
    state["t"] += 1
    t = state["t"]
    step_size = lr / (1 - beta1 ** t)
    bc2_sqrt = (1 - beta2 ** t) ** 0.5
    keys = list(grads)
    p = [params[k] for k in keys]
    g = [grads[k] for k in keys]
    m = [state["m"][k] for k in keys]
    v = [state["v"][k] for k in keys]
    with torch.no_grad():  # the same operations on every tensor at once (torch._foreach_*, as torch.optim.Adam)
        torch._foreach_lerp_(m, g, 1 - beta1)
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, g, g, value=1 - beta2)
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, bc2_sqrt)
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(p, m, denom, value=-step_size)
    return state


# --------------------------------------------------------------------------- threads
@contextlib.contextmanager
def num_threads(n: int | None = 1) -> Iterator[None]:
    """Run a block with ``torch.set_num_threads(n)``, then restore the caller's setting.

    The course's work is thousands of tiny kernels (40-unit layers, 28×28 images). On the 1-2
    shared cores of a laptop, Binder or CI, multi-threaded kernels then wait on each other
    whenever another process holds a core: measured here under load, one sinusoid
    meta-gradient took 1.8 ms on one thread and 340 ms on two. ``None`` leaves the setting alone.
    """
    if n is None:
        yield
        return
    n = check_positive_int(n, "num_threads(n)")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
