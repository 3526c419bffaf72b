"""Chapter 7 in PyTorch: first-order MAML (FOMAML), Reptile and ANIL.

Mirrors :mod:`course_utils.tensorflow.first_order` name for name.

Two layers, as in the rest of the package:

* reference functions that take and return NumPy (weights dict, task arrays with tasks on the
  leading axis) and loop over tasks in plain Python - easy to read, and directly comparable
  with the TensorFlow versions: :func:`fomaml_meta_gradient`, :func:`anil_meta_gradient`,
  :func:`reptile_direction`, :func:`reptile_update`;
* the vectorised meta-steps (``torch.func``: ``grad`` inside ``vmap`` over tasks) are registered
  with the one training loop in :mod:`course_utils.torch.training` (``meta_train("reptile", ...)``,
  ``meta_train("anil", ...)``), which the chapter uses to compare the methods.

Parameters are dicts in the layout of :mod:`course_utils.nets` (MLP) or of the chapter 6 conv net.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from course_utils.nets import check_head
from course_utils.training import batches
from course_utils.validation import check_float, check_meta_call, check_names, check_optional_int
from course_utils.torch.core import adapt, from_numpy, maml_meta_gradient, mlp_forward, mse_loss, to_tensor

__all__ = [
    "anil_adapt",
    "reptile_adapt",
    "fomaml_meta_gradient",
    "anil_meta_gradient",
    "reptile_direction",
    "reptile_update",
]


def _head(params, head) -> tuple[str, ...]:
    """ANIL's head: :func:`check_head` with ``head`` (if given) a collection of names of ``params``."""
    return check_head(params, None if head is None else check_names(head, "head", params))


# --------------------------------------------------------------------------- inner loops
def anil_adapt(params, x_support, y_support, *, inner_lr: float = 0.01, steps: int = 1,
               first_order: bool = False, head=None, forward: Callable = mlp_forward,
               loss_fn: Callable = mse_loss) -> dict:
    """ANIL's inner loop: ``steps`` SGD steps on the head only; the body is shared, unchanged.

    Args:
        params: tensors of one model (e.g. from :func:`course_utils.torch.from_numpy`).
        x_support, y_support: one task's support set, (k, ...) and (k, ...).
        head: keys to adapt; default :func:`head_keys` (the last linear layer).
        first_order: treat the inner gradients as constants.

    Returns:
        A new dict: head entries adapted (differentiable w.r.t. ``params`` unless first order),
        body entries the very same tensors as in ``params``.
    """
    inner_lr, steps, first_order, x_support, y_support = check_meta_call(
        params, {"x_support": x_support, "y_support": y_support}, inner_lr=inner_lr, steps=steps,
        first_order=first_order, forward=forward, loss_fn=loss_fn, mlp_forward=mlp_forward, mse_loss=mse_loss,
        tasks_axis=False)
    return adapt(params, x_support, y_support, inner_lr=inner_lr, steps=steps, first_order=first_order,
                 forward=forward, loss_fn=loss_fn, only=_head(params, head))


def reptile_adapt(params, x, y, *, inner_lr: float = 0.02, inner_steps: int = 5,
                  batch_size: int | None = None, forward: Callable = mlp_forward,
                  loss_fn: Callable = mse_loss) -> dict:
    """Reptile's inner loop: ``inner_steps`` plain SGD steps on one task, no graph kept.

    Minibatch j is the j-th consecutive slice of ``batch_size`` points of the task's data
    (cycling; shuffle the data beforehand if its order matters). ``batch_size=None`` uses all
    points at every step.

    Returns:
        φ̃, detached tensors.
    """
    inner_lr, inner_steps, _, x, y = check_meta_call(
        params, {"x": x, "y": y}, inner_lr=inner_lr, steps=inner_steps, forward=forward, loss_fn=loss_fn,
        mlp_forward=mlp_forward, mse_loss=mse_loss, tasks_axis=False, steps_name="inner_steps")
    batch_size = check_optional_int(batch_size, "batch_size")
    names = list(params)
    phi = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    for sl in batches(int(x.shape[0]), batch_size, inner_steps):
        loss = loss_fn(forward(phi, x[sl]), y[sl])
        grads = torch.autograd.grad(loss, [phi[k] for k in names])
        phi = {k: (phi[k] - inner_lr * g).detach().requires_grad_(True) for k, g in zip(names, grads)}
    return {k: v.detach() for k, v in phi.items()}


# --------------------------------------------------------------------------- NumPy references
def fomaml_meta_gradient(params: dict[str, np.ndarray], x_support, y_support, x_query, y_query, *,
                         inner_lr: float = 0.01, steps: int = 1, forward: Callable = mlp_forward,
                         loss_fn: Callable = mse_loss) -> tuple[float, dict[str, np.ndarray]]:
    """First-order MAML: the MAML meta-gradient with the inner gradients held constant.

    The same as ``maml_meta_gradient(..., first_order=True)`` (one source of truth): the
    result is the mean over tasks of ∇L_query evaluated at the adapted weights φ.
    """
    inner_lr, steps, _, *arrays = check_meta_call(
        params, {"x_support": x_support, "y_support": y_support, "x_query": x_query, "y_query": y_query},
        inner_lr=inner_lr, steps=steps, forward=forward, loss_fn=loss_fn, mlp_forward=mlp_forward, mse_loss=mse_loss)
    return maml_meta_gradient(params, *arrays, inner_lr=inner_lr, steps=steps, first_order=True, forward=forward,
                              loss_fn=loss_fn)


def anil_meta_gradient(params: dict[str, np.ndarray], x_support, y_support, x_query, y_query, *,
                       inner_lr: float = 0.01, steps: int = 1, first_order: bool = False, head=None,
                       forward: Callable = mlp_forward, loss_fn: Callable = mse_loss
                       ) -> tuple[float, dict[str, np.ndarray]]:
    """ANIL's meta-loss and meta-gradient (mean over tasks), NumPy in and out.

    Inner loop: :func:`anil_adapt` (head only). Outer gradient: all parameters, through the
    head's inner updates (second order unless ``first_order``). Task arrays have tasks on the
    leading axis, e.g. ``x_support`` (tasks, k_shot, in).
    """
    inner_lr, steps, first_order, x_support, y_support, x_query, y_query = check_meta_call(
        params, {"x_support": x_support, "y_support": y_support, "x_query": x_query, "y_query": y_query},
        inner_lr=inner_lr, steps=steps, first_order=first_order, forward=forward, loss_fn=loss_fn,
        mlp_forward=mlp_forward, mse_loss=mse_loss)
    head = _head(params, head)
    theta = from_numpy(params)
    losses = []
    for t in range(np.asarray(x_support).shape[0]):
        phi = anil_adapt(theta, to_tensor(x_support[t]), to_tensor(y_support[t]), inner_lr=inner_lr, steps=steps,
                         first_order=first_order, head=head, forward=forward, loss_fn=loss_fn)
        losses.append(loss_fn(forward(phi, to_tensor(x_query[t])), to_tensor(y_query[t])))
    loss = torch.stack(losses).mean()
    grads = torch.autograd.grad(loss, list(theta.values()))
    return float(loss.detach()), {k: g.detach().numpy() for k, g in zip(theta, grads)}


def reptile_direction(params: dict[str, np.ndarray], x, y, *, inner_lr: float = 0.02,
                      inner_steps: int = 5, batch_size: int | None = None,
                      forward: Callable = mlp_forward, loss_fn: Callable = mse_loss
                      ) -> dict[str, np.ndarray]:
    """Reptile's direction mean_i(φ̃_i - θ) over a batch of tasks (x: (tasks, n, ...)), NumPy."""
    inner_lr, inner_steps, _, x, y = check_meta_call(
        params, {"x": x, "y": y}, inner_lr=inner_lr, steps=inner_steps, forward=forward, loss_fn=loss_fn,
        mlp_forward=mlp_forward, mse_loss=mse_loss, steps_name="inner_steps")
    batch_size = check_optional_int(batch_size, "batch_size")
    theta = from_numpy(params, requires_grad=False)
    total = {k: torch.zeros_like(v) for k, v in theta.items()}
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
    """One (batched) Reptile meta-update θ ← θ + ε · mean_i(φ̃_i - θ), NumPy in and out.

    Args:
        epsilon: the outer step size ε in (0, 1] (see :func:`reptile_epsilon` for its schedule).
    """
    epsilon = check_float(epsilon, "epsilon", 0.0, 1.0, low_open=True)
    d = reptile_direction(params, x, y, inner_lr=inner_lr, inner_steps=inner_steps,
                          batch_size=batch_size, forward=forward, loss_fn=loss_fn)
    return {k: (np.asarray(params[k], np.float32) + np.float32(epsilon) * d[k]).astype(np.float32)
            for k in params}
