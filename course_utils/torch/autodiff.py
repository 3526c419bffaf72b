"""PyTorch helpers for chapter 2: higher-order gradients, Hessian-vector products, optimizers.

Mirrors :mod:`course_utils.tensorflow.autodiff` name for name. Parameters are dicts of tensors
in the layout of :mod:`course_utils.nets` (``w0`` (in, out), ``b0`` (out,), ...).
"""
from __future__ import annotations

import inspect
from typing import Callable

import numpy as np
import torch

from course_utils.nets import mlp_layer_count
from course_utils.torch.core import as_task_tensors, from_numpy, mlp_forward, mse_loss, to_tensor
from course_utils.validation import (check_bool, check_callable, check_instance, check_same_keys,
                                     check_meta_call, check_params)

__all__ = ["hessian_vector_product", "meta_gradient_by_hand", "list_optimizers", "mlp_module",
           "module_to_numpy"]

Params = dict[str, torch.Tensor]


def hessian_vector_product(loss_fn: Callable[[Params], torch.Tensor], params: Params,
                           vector: Params) -> Params:
    """H v, the Hessian of ``loss_fn`` at ``params`` times ``vector``, without forming H.

    Uses the identity H v = ∇_θ (∇_θ L(θ) · v): one backward pass with ``create_graph=True``,
    a dot product with ``v`` (held constant), and a second backward pass.

    Args:
        loss_fn: maps a parameter dict to a scalar tensor.
        params: ``{name: tensor}``; each tensor's shape is kept.
        vector: ``{name: tensor or array}`` with the same keys and shapes as ``params``.

    Returns:
        ``{name: tensor}`` with the shapes of ``params`` (detached).
    """
    check_callable(loss_fn, "loss_fn")
    check_params(params)
    check_same_keys(params, vector)
    names = list(params)
    theta = {k: to_tensor(params[k]).detach().clone().requires_grad_(True) for k in names}
    v = [to_tensor(vector[k]).to(theta[k].dtype).detach() for k in names]
    loss = loss_fn(theta)
    grads = torch.autograd.grad(loss, [theta[k] for k in names], create_graph=True)
    dot = sum((g * vk).sum() for g, vk in zip(grads, v))
    hv = torch.autograd.grad(dot, [theta[k] for k in names], allow_unused=True)
    return {k: (torch.zeros_like(theta[k]) if h is None else h.detach()) for k, h in zip(names, hv)}


def meta_gradient_by_hand(params: dict[str, np.ndarray], x_support, y_support, x_query, y_query, *,
                          inner_lr: float = 0.01, forward: Callable = mlp_forward,
                          loss_fn: Callable = mse_loss) -> tuple[float, dict[str, np.ndarray]]:
    """The one-step MAML meta-gradient assembled from its formula, in NumPy out.

    For each task: g_s = ∇L_s(θ), φ = θ - α g_s, g_q = ∇L_q(φ), and the meta-gradient
    (I - α H_s(θ)) g_q = g_q - α · hessian_vector_product(L_s, θ, g_q); averaged over tasks.
    No gradient flows through the inner step: the Hessian term is added explicitly, so
    the result must equal ``maml_meta_gradient(..., steps=1, first_order=False)``.

    Args:
        params: NumPy weights ``{name: array}`` (e.g. from :func:`course_utils.nets.init_mlp`).
        x_support, y_support: (tasks, k_shot, in) and (tasks, k_shot, out).
        x_query, y_query: (tasks, k_query, in) and (tasks, k_query, out).
        inner_lr: the inner step size α (>= 0).

    Returns:
        ``(meta_loss, {name: gradient array})``: mean query loss after the step, and the
        meta-gradient with the shapes of ``params``.
    """
    inner_lr, _, _, *arrays = check_meta_call(
        params, {"x_support": x_support, "y_support": y_support, "x_query": x_query, "y_query": y_query},
        inner_lr=inner_lr, steps=1, forward=forward, loss_fn=loss_fn, mlp_forward=mlp_forward, mse_loss=mse_loss)
    xs, ys, xq, yq = as_task_tensors(*arrays)
    theta = from_numpy(params)
    names = list(theta)
    total = {k: torch.zeros_like(theta[k]) for k in names}
    losses = []
    for t in range(xs.shape[0]):
        support_loss = lambda p, t=t: loss_fn(forward(p, xs[t]), ys[t])  # noqa: E731
        g_s = torch.autograd.grad(support_loss(theta), [theta[k] for k in names])
        phi = {k: (theta[k] - inner_lr * g).detach().requires_grad_(True) for k, g in zip(names, g_s)}
        q_loss = loss_fn(forward(phi, xq[t]), yq[t])
        g_q = dict(zip(names, torch.autograd.grad(q_loss, [phi[k] for k in names])))
        hv = hessian_vector_product(support_loss, theta, g_q)
        for k in names:
            total[k] += g_q[k] - inner_lr * hv[k]
        losses.append(float(q_loss.detach()))
    n = xs.shape[0]
    return float(np.mean(losses)), {k: (total[k] / n).detach().numpy() for k in names}


def list_optimizers(*, include_wrappers: bool = False) -> list[str]:
    """Names of the optimizer classes that the installed PyTorch ships in ``torch.optim``.

    Found by inspection: every public class in ``torch.optim`` that subclasses
    ``torch.optim.Optimizer`` (the base class itself excluded). PyTorch ships no wrapper
    optimizers there, so ``include_wrappers`` changes nothing (it exists for parity with
    TensorFlow, whose list can include ``LossScaleOptimizer`` and friends).

    Returns:
        Sorted class names, e.g. ``["ASGD", "Adadelta", ..., "SGD", "SparseAdam"]``.
    """
    check_bool(include_wrappers, "include_wrappers")
    optim = torch.optim
    names = {name for name, obj in vars(optim).items()
             if not name.startswith("_") and inspect.isclass(obj)
             and issubclass(obj, optim.Optimizer) and obj is not optim.Optimizer}
    return sorted(names, key=str.lower)


def mlp_module(params: dict[str, np.ndarray]) -> torch.nn.Sequential:
    """An ``nn.Sequential`` of ``Linear``/``ReLU`` layers holding the NumPy weights ``params``.

    ``nn.Linear`` stores its weight as (out, in), so ``w{i}`` (in, out) is transposed on the way
    in. The module computes exactly :func:`course_utils.torch.mlp_forward` of ``params``.

    Args:
        params: ``{"w0": (in, h), "b0": (h,), ...}`` (e.g. :func:`course_utils.nets.init_mlp`).

    Returns:
        A float32 ``torch.nn.Sequential``; its parameters are named ``"0.weight", "0.bias", "2.weight", ...``.
    """
    n = mlp_layer_count(check_params(params, mlp=True))
    layers: list[torch.nn.Module] = []
    for i in range(n):
        w = np.asarray(params[f"w{i}"], np.float32)
        lin = torch.nn.Linear(w.shape[0], w.shape[1])
        with torch.no_grad():
            lin.weight.copy_(to_tensor(w.T))
            lin.bias.copy_(to_tensor(params[f"b{i}"], "float32"))
        layers.append(lin)
        if i < n - 1:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def module_to_numpy(module: torch.nn.Module) -> dict[str, np.ndarray]:
    """The ``Linear`` layers of ``module``, in order, as a NumPy dict ``{"w0": (in, out), "b0": ...}``.

    The inverse of :func:`mlp_module`; load the result into TensorFlow with ``from_numpy``.
    """
    check_instance(module, "module", torch.nn.Module, "a torch.nn.Module containing torch.nn.Linear layers")
    linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    if not linears:
        raise ValueError("module must contain at least one torch.nn.Linear layer")
    out = {}
    for i, lin in enumerate(linears):
        out[f"w{i}"] = lin.weight.detach().cpu().numpy().T.astype(np.float32)
        out[f"b{i}"] = (lin.bias.detach().cpu().numpy() if lin.bias is not None
                        else np.zeros(lin.out_features)).astype(np.float32)
    return out
