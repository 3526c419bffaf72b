"""Implicit MAML (Rajeswaran et al. 2019, chapter 5), the framework-free part: NumPy references.

iMAML adapts to a task by solving the *proximal* inner problem
φ*(θ) = argmin_φ L̂(φ) + λ/2‖φ − θ‖² (approximately, a few gradient steps), and differentiates
the query loss through the optimality condition instead of through the steps:
dφ*/dθ = (I + H/λ)⁻¹ with H = ∇²L̂(φ*), so the meta-gradient is the solution v of
(I + H/λ) v = ∇L_q(φ*), found by conjugate gradient from Hessian-vector products. The framework
halves (:mod:`course_utils.torch.implicit`, :mod:`course_utils.tensorflow.implicit`, mirrored)
run it on networks; this module holds the references the tests and exercises check them with:

* :func:`conjugate_gradient_numpy` — CG on a symmetric positive-definite matrix;
* :func:`linear_proximal_solution` and :func:`linear_implicit_gradient` — the closed forms for a
  linear model with the mean squared error, where the inner problem is a ridge regression.
"""
from __future__ import annotations

import numpy as np

from course_utils.validation import check_array, check_float, check_imaml_options, check_params, check_positive_int

__all__ = ["conjugate_gradient_numpy", "linear_proximal_solution", "linear_implicit_gradient"]


def conjugate_gradient_numpy(a, b, *, steps: int | None = None, tol: float = 1e-10) -> np.ndarray:
    """Solve A x = b for a symmetric positive-definite A with conjugate gradient, from x₀ = 0.

    Per step: α = rᵀr / pᵀAp, x ← x + αp, r ← r − αAp, p ← r + (r_newᵀr_new / rᵀr) p. In exact
    arithmetic it ends at the solution after at most n steps (n = len(b)).

    Args:
        a: (n, n) symmetric positive-definite matrix.
        b: (n,) right-hand side.
        steps: CG steps (>= 1; None: n).
        tol: stop early once ‖r‖ <= tol (>= 0).

    Returns:
        x after ``steps`` steps (float64, shape (n,)).
    """
    a = np.asarray(check_array(a, "a", ndim=2, dtype="real"), np.float64)
    b = np.asarray(check_array(b, "b", ndim=1, dtype="real"), np.float64)
    if a.shape != (b.size, b.size) or b.size == 0:
        raise ValueError(f"a must be a square (n, n) matrix with n = len(b) >= 1, got a {a.shape} and b {b.shape}")
    if not np.allclose(a, a.T, rtol=1e-8, atol=1e-10 * max(1.0, np.abs(a).max())):
        raise ValueError("a must be symmetric (conjugate gradient needs a symmetric positive-definite matrix)")
    steps = b.size if steps is None else check_positive_int(steps, "steps")
    tol = check_float(tol, "tol", 0.0)
    x, r = np.zeros_like(b), b.copy()
    p, rr = r.copy(), float(r @ r)
    for _ in range(steps):
        if np.sqrt(rr) <= tol:
            break
        ap = a @ p
        curv = float(p @ ap)
        if curv <= 0:
            raise ValueError(f"a must be positive definite: found a direction with pᵀAp = {curv:.3g} <= 0")
        alpha = rr / curv
        x, r = x + alpha * p, r - alpha * ap
        rr, rr_old = float(r @ r), rr
        p = r + (rr / rr_old) * p
    return x


def _linear_data(features, y, name_f: str, name_y: str) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(check_array(features, name_f, ndim=2, dtype="real"), np.float64)
    y = np.asarray(check_array(y, name_y, ndim=1, dtype="real"), np.float64)
    if f.shape[0] != y.size or y.size == 0:
        raise ValueError(f"{name_f} (n, d) and {name_y} (n,) must have the same n >= 1, got {f.shape} and {y.shape}")
    return f, y


def linear_proximal_solution(features, y, theta, lam: float) -> np.ndarray:
    """φ*(θ) = argmin_φ (1/n)‖Fφ − y‖² + λ/2‖φ − θ‖² = (A + λI)⁻¹(2Fᵀy/n + λθ), A = 2FᵀF/n.

    Args:
        features: (n, d) inputs F of the linear model f(x) = Fφ (append a column of ones for a bias).
        y: (n,) targets.
        theta: (d,) the meta-parameters θ (the prior the proximal term pulls towards).
        lam: the proximal weight λ (> 0).

    Returns:
        φ* (float64, shape (d,)).
    """
    f, y = _linear_data(features, y, "features", "y")
    theta = np.asarray(check_array(theta, "theta", ndim=1, dtype="real"), np.float64)
    if theta.size != f.shape[1]:
        raise ValueError(f"theta must have one entry per feature ({f.shape[1]}), got shape {theta.shape}")
    lam = check_float(lam, "lam", 0.0, low_open=True)
    n, d = f.shape
    return np.linalg.solve(2 * f.T @ f / n + lam * np.eye(d), 2 * f.T @ y / n + lam * theta)


def linear_implicit_gradient(features, y, features_query, y_query, theta, lam: float) -> tuple[float, np.ndarray]:
    """The query loss L_q(φ*(θ)) = (1/m)‖F_q φ* − y_q‖² and its exact gradient in θ for a linear model:
    (I + A/λ)⁻¹ ∇L_q(φ*), A = 2FᵀF/n the (constant) Hessian of the support loss.

    Args:
        features, y: the support set, (n, d) and (n,).
        features_query, y_query: the query set, (m, d) and (m,).
        theta: (d,) meta-parameters. lam: λ > 0.

    Returns:
        ``(query_loss, gradient (d,))`` in float64.
    """
    f, y = _linear_data(features, y, "features", "y")
    fq, yq = _linear_data(features_query, y_query, "features_query", "y_query")
    if fq.shape[1] != f.shape[1]:
        raise ValueError(f"features_query must have {f.shape[1]} columns like features, got {fq.shape}")
    phi = linear_proximal_solution(f, y, theta, lam)
    resid = fq @ phi - yq
    g_q = 2 * fq.T @ resid / fq.shape[0]
    a = 2 * f.T @ f / f.shape[0]
    return float(np.mean(resid ** 2)), np.linalg.solve(np.eye(f.shape[1]) + a / lam, g_q)


def register_imaml_method(register, implicit_gradient, task_losses_fn) -> None:
    """Register ``"imaml"`` with one framework's ``meta_train`` (called once by each of
    :mod:`course_utils.torch.implicit` and :mod:`course_utils.tensorflow.implicit`).

    Args:
        register: that framework's ``register_meta_method``.
        implicit_gradient: ``implicit_gradient(params, xs, ys, xq, yq, lam, inner_lr, steps, cg_steps,
            task_losses) -> (meta_loss, grads)``, the framework's meta-gradient on tensors.
        task_losses_fn: ``task_losses_fn(forward, loss_fn)`` → per-task losses of tiled weights.
    """
    def make_imaml(*, inner_lr, steps, first_order, forward, loss_fn, lam=1.0, cg_steps=5):
        # first_order is ignored: iMAML never differentiates through the inner steps
        lam, inner_lr = check_imaml_options(lam, inner_lr, cg_steps)
        task_losses = task_losses_fn(forward, loss_fn)

        def step(params, x_support, y_support, x_query, y_query):
            check_params(params)
            return implicit_gradient(params, x_support, y_support, x_query, y_query, lam, inner_lr, steps, cg_steps,
                                     task_losses)
        return step

    register("imaml", make_imaml, doc="implicit MAML: proximal inner loop, CG meta-gradient; options lam, cg_steps")
