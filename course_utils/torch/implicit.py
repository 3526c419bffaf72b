"""Implicit MAML in PyTorch (Rajeswaran et al. 2019, chapter 5): the proximal inner loop and the
implicit meta-gradient by conjugate gradient.

Mirrors :mod:`course_utils.tensorflow.implicit` name for name; the maths and NumPy references
are in :mod:`course_utils.implicit`. Tasks run at once on *tiled* weights, one copy φ_t per task
(as chapter 6's MAML and chapter 10's learned rules do): the gradient of the sum of the per-task
losses with respect to the copies is the stack of per-task gradients, and its Hessian is block
diagonal, so one Hessian-vector product (chapter 2's :func:`hessian_vector_product`) of the summed
support loss gives every task's H_t v_t at once.

* :func:`conjugate_gradient` — CG on dicts of tensors, one system per task with ``batch_dims=1``.
* :func:`imaml_adapt` — ``steps`` gradient steps on L̂(φ) + λ/2‖φ − θ‖², no graph kept.
* :func:`imaml_meta_gradient` — (I + H/λ)⁻¹∇L_q(φ) per task, averaged over tasks.

``meta_train("imaml", ...)`` (options ``lam``, ``cg_steps``) uses them.
"""
from __future__ import annotations

from typing import Callable

import torch

from course_utils.implicit import register_imaml_method
from course_utils.validation import check_cg_call, check_imaml_call
from course_utils.torch.autodiff import hessian_vector_product
from course_utils.torch.core import as_task_tensors, mlp_forward, mse_loss, to_tensor
from course_utils.torch.learned import _task_losses_fn
from course_utils.torch.training import register_meta_method

__all__ = ["conjugate_gradient", "imaml_adapt", "imaml_meta_gradient"]

Params = dict[str, torch.Tensor]


def _dot(a: Params, b: Params, batch_dims: int) -> torch.Tensor:
    """Σ_k ⟨a_k, b_k⟩ over every axis but the leading ``batch_dims``: a number, or one per task."""
    return sum((a[k] * b[k]).reshape(*a[k].shape[:batch_dims], -1).sum(-1) for k in a)


def _scale(s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return s.reshape(*s.shape, *([1] * (v.dim() - s.dim())))


def conjugate_gradient(matvec: Callable[[Params], Params], b: Params, *, steps: int = 5, tol: float = 1e-10,
                       batch_dims: int = 0) -> Params:
    """Solve A x = b for a symmetric positive-definite operator A, given only x ↦ A x.

    From x₀ = 0: α = rᵀr / pᵀAp, x ← x + αp, r ← r − αAp, p ← r + βp with β = r_newᵀr_new / rᵀr.
    Always ``steps`` steps (one ``matvec`` each); a system whose residual ‖r‖ is <= ``tol`` (or
    whose curvature pᵀAp is not positive) stops moving.

    Args:
        matvec: ``matvec(p) -> A p``, dicts of tensors shaped like ``b``.
        b: the right-hand side ``{name: tensor}``.
        steps: CG steps (>= 1).
        tol: residual norm at which a system counts as solved (>= 0).
        batch_dims: 0 for one system; 1 for independent systems along the leading axis (one per
            task; A must then act on each slice separately, as a block-diagonal Hessian does).

    Returns:
        x, a dict shaped like ``b`` (detached).
    """
    steps, tol, batch_dims = check_cg_call(matvec, b, steps, tol, batch_dims)
    x = {k: torch.zeros_like(v) for k, v in b.items()}
    r = {k: v.detach().clone() for k, v in b.items()}
    p = {k: v.clone() for k, v in r.items()}
    rr = _dot(r, r, batch_dims)
    for _ in range(steps):
        ap = {k: v.detach() for k, v in matvec(p).items()}
        pap = _dot(p, ap, batch_dims)
        active = (rr > tol * tol) & (pap > 0)
        alpha = torch.where(active, rr / torch.where(active, pap, torch.ones_like(pap)), torch.zeros_like(pap))
        x = {k: x[k] + _scale(alpha, x[k]) * p[k] for k in x}
        r = {k: r[k] - _scale(alpha, r[k]) * ap[k] for k in r}
        rr_new = _dot(r, r, batch_dims)
        beta = torch.where(active, rr_new / torch.where(active, rr, torch.ones_like(rr)), torch.zeros_like(rr))
        p = {k: r[k] + _scale(beta, p[k]) * p[k] for k in p}
        rr = rr_new
    return x


def _prox_adapt(theta: Params, xs, ys, lam: float, inner_lr: float, steps: int, task_losses) -> Params:
    """φ ← φ − η(∇L̂(φ) + λ(φ − θ)) on detached tiled copies: no graph survives a step."""
    n = xs.shape[0]
    anchor = {k: v.detach() for k, v in theta.items()}
    phi = {k: v.expand(n, *v.shape).clone() for k, v in anchor.items()}
    for _ in range(steps):
        with torch.enable_grad():
            leaf = {k: v.requires_grad_() for k, v in phi.items()}
            g = torch.autograd.grad(task_losses(leaf, xs, ys).sum(), list(leaf.values()))
        phi = {k: (phi[k] - inner_lr * (gk + lam * (phi[k] - anchor[k]))).detach() for k, gk in zip(phi, g)}
    return phi


def imaml_adapt(params: Params, x_support, y_support, *, lam: float = 1.0, inner_lr: float = 0.01, steps: int = 10,
                forward: Callable = mlp_forward, loss_fn: Callable = mse_loss) -> Params:
    """iMAML's inner loop for every task: ``steps`` gradient steps from φ = θ on the proximal
    objective L̂_t(φ) + λ/2‖φ − θ‖² (an approximate φ*_t(θ)).

    Args:
        params: θ (tensors or NumPy arrays).
        x_support, y_support: (tasks, k_shot, ...) support sets.
        lam: the proximal weight λ (> 0). inner_lr: the step size η (> 0). steps: inner steps (>= 0).
        forward, loss_fn: the model and its mean loss.

    Returns:
        ``{name: (tasks, *shape)}`` detached: iMAML never differentiates through these steps.
    """
    lam, inner_lr, steps, _ = check_imaml_call(params, x_support, y_support, lam=lam, inner_lr=inner_lr, steps=steps,
                                               forward=forward, loss_fn=loss_fn, mlp_forward=mlp_forward)
    xs, ys = as_task_tensors(x_support, y_support)
    theta = {k: to_tensor(v) for k, v in params.items()}
    return _prox_adapt(theta, xs, ys, lam, inner_lr, steps, _task_losses_fn(forward, loss_fn))


def _implicit_gradient(theta: Params, xs, ys, xq, yq, lam, inner_lr, steps, cg_steps, task_losses):
    phi = _prox_adapt(theta, xs, ys, lam, inner_lr, steps, task_losses)
    with torch.enable_grad():
        leaf = {k: v.requires_grad_() for k, v in phi.items()}
        q = task_losses(leaf, xq, yq)
        g_q = dict(zip(leaf, torch.autograd.grad(q.sum(), list(leaf.values()))))   # ∇L_q,t(φ_t) per task
    support = lambda p: task_losses(p, xs, ys).sum()                               # noqa: E731
    matvec = lambda v: {k: v[k] + h / lam for k, h in hessian_vector_product(support, phi, v).items()}  # noqa: E731
    v = conjugate_gradient(matvec, g_q, steps=cg_steps, batch_dims=1)
    return q.detach().mean(), {k: t.mean(0) for k, t in v.items()}


def imaml_meta_gradient(params: Params, x_support, y_support, x_query, y_query, *, lam: float = 1.0,
                        inner_lr: float = 0.01, steps: int = 10, cg_steps: int = 5, forward: Callable = mlp_forward,
                        loss_fn: Callable = mse_loss) -> tuple[torch.Tensor, Params]:
    """iMAML's meta-gradient: per task, adapt with :func:`imaml_adapt`, then solve
    (I + H_t/λ) v_t = ∇L_q,t(φ_t) with ``cg_steps`` of :func:`conjugate_gradient` (H_t v from
    :func:`hessian_vector_product` of the support loss at φ_t); return the mean over tasks.

    Args:
        params: θ. x_support, y_support, x_query, y_query: (tasks, n, ...) task arrays.
        lam, inner_lr, steps: the inner problem (see :func:`imaml_adapt`).
        cg_steps: conjugate-gradient steps (>= 1), each one Hessian-vector product.
        forward, loss_fn: the model and its mean loss.

    Returns:
        ``(meta_loss, grads)``: the mean query loss at the adapted weights (0-d tensor) and the
        implicit meta-gradient ``{name: tensor}`` with the shapes of ``params``.
    """
    lam, inner_lr, steps, cg_steps = check_imaml_call(
        params, x_support, y_support, lam=lam, inner_lr=inner_lr, steps=steps, forward=forward, loss_fn=loss_fn,
        mlp_forward=mlp_forward, x_query=x_query, y_query=y_query, cg_steps=cg_steps)
    xs, ys, xq, yq = as_task_tensors(x_support, y_support, x_query, y_query)
    theta = {k: to_tensor(v) for k, v in params.items()}
    return _implicit_gradient(theta, xs, ys, xq, yq, lam, inner_lr, steps, cg_steps, _task_losses_fn(forward, loss_fn))


register_imaml_method(register_meta_method, _implicit_gradient, _task_losses_fn)
