"""PyTorch core helpers: functional MLP parameters, losses, and the MAML inner loop.

Parameters are ``dict[str, torch.Tensor]`` in the layout of :mod:`course_utils.nets`
(``w0`` (in, out), ``b0`` (out,), ...), so the same NumPy weights load into both frameworks.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from course_utils.validation import check_steps

__all__ = [
    "FRAMEWORK",
    "from_numpy",
    "to_numpy",
    "mlp_forward",
    "mse_loss",
    "cross_entropy_loss",
    "accuracy",
    "adapt",
    "maml_objective",
    "maml_meta_gradient",
]

FRAMEWORK = "torch"

Params = dict[str, torch.Tensor]


def from_numpy(params: dict[str, np.ndarray], *, requires_grad: bool = True) -> Params:
    """NumPy parameter dict → float32 tensors (leaf tensors that require grad by default)."""
    return {k: torch.tensor(np.asarray(v), dtype=torch.float32, requires_grad=requires_grad)
            for k, v in params.items()}


def to_numpy(params: Params) -> dict[str, np.ndarray]:
    """Tensors (or arrays) → a NumPy parameter dict, detached and float32."""
    return {k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)).astype(np.float32)
            for k, v in params.items()}


def mlp_forward(params: Params, x: torch.Tensor) -> torch.Tensor:
    """ReLU MLP with explicit parameters: x (..., in) → (..., out)."""
    n = sum(1 for k in params if k.startswith("w"))
    h = x
    for i in range(n):
        h = h @ params[f"w{i}"] + params[f"b{i}"]
        if i < n - 1:
            h = torch.relu(h)
    return h


def mse_loss(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all elements."""
    return torch.mean((pred - y) ** 2)


def cross_entropy_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean softmax cross-entropy: logits (n, classes), integer labels y (n,)."""
    return torch.nn.functional.cross_entropy(logits, y.long())


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows whose arg-max equals the label."""
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
    check_steps(steps)
    names = list(params) if only is None else list(only)
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
    theta = from_numpy(params)
    t = lambda a: torch.as_tensor(np.asarray(a))  # noqa: E731
    loss = maml_objective(theta, t(x_support), t(y_support), t(x_query), t(y_query), inner_lr=inner_lr,
                          steps=steps, first_order=first_order, forward=forward, loss_fn=loss_fn)
    grads = torch.autograd.grad(loss, list(theta.values()))
    return float(loss.detach()), {k: g.detach().numpy() for k, g in zip(theta, grads)}
