"""Chapter 3 (transfer learning, min_θ Σ L + λR(θ)): slider callback, sweep plot, checkers.

The maths runs in :mod:`course_utils.torch.objectives` (PyTorch is imported when a callback
first runs); this module is the framework-free glue the notebook and the tests share. The sweep
helpers it shares with chapter 5 (:data:`X_PLOT`, :func:`best_lambdas`, ...) live in
:mod:`course_utils.sweeps`.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from course_utils.grading import close, report
from course_utils.nets import mlp_forward_numpy
from course_utils.plots import new_figure, show_figure
from course_utils.sweeps import X_PLOT, best_lambdas, param_distance, unstack
from course_utils.validation import (check_bool, check_float, check_int, check_lr, check_mapping, check_params,
                                     check_record)

__all__ = [
    "REGULARISERS",
    "new_figure",
    "show_figure",
    "transfer_view",
    "transfer_explorer",
    "best_lambdas",
    "plot_sweep",
    "check_l2sp_gradient",
    "check_ridge_solution",
    "check_infinite_lambda",
]

REGULARISERS = {"l2": "weight decay ‖θ‖²", "l2sp": "L2-SP ‖θ − θ₀‖²"}


def _check_task(params, task):
    """θ₀ an MLP dict and ``task`` a one-task :class:`course_utils.tasks.SinusoidTasks`."""
    check_params(params, mlp=True)
    return check_record(task, "task", ("x_support", "y_support", "true_function"),
                        "a one-task SinusoidTasks (e.g. tasks.task(0))")


def transfer_view(lam: float, k_shot: int, *, params: dict, task, steps: int = 100,
                  lr: float = 0.005, draw: bool = True) -> dict:
    """Fine-tune θ₀ on the first ``k_shot`` support points of ``task`` with both regularisers.

    Pure function of its arguments (PyTorch, :func:`course_utils.torch.finetune`): draws the
    true curve, the pretrained curve and the two fitted curves, prints a one-line readout, and
    returns the numbers.

    Args:
        lam: λ ≥ 0.
        k_shot: support points used, 1 ≤ K ≤ the task's support size.
        params: pretrained NumPy weights θ₀.
        task: a one-task :class:`course_utils.tasks.SinusoidTasks`.
        steps, lr: the fine-tuning schedule (steps >= 0, lr finite and > 0).
        draw: draw and display the figure.

    Returns:
        ``{"lam", "k_shot", "l2": {...}, "l2sp": {...}}`` where each regulariser has
        ``train_mse``, ``test_mse`` (on 200 grid points against the true function) and
        ``dist`` = ‖θ − θ₀‖; with ``draw`` also ``"figure"``, the matplotlib Figure shown.
    """
    from course_utils.torch.objectives import finetune

    _check_task(params, task)
    lam = check_float(lam, "lam", 0.0)
    k_shot = check_int(k_shot, "k_shot", 1, task.x_support.shape[1])
    steps = check_int(steps, "steps", 0)
    lr = check_lr(lr, "lr")
    draw = check_bool(draw, "draw")
    xs, ys = task.x_support[:1, :k_shot], task.y_support[:1, :k_shot]
    y_true = task.true_function(X_PLOT)[0]
    out = {"lam": lam, "k_shot": int(k_shot)}
    curves = {"true function": y_true, "pretrained θ₀": mlp_forward_numpy(params, X_PLOT[:, None])[:, 0]}
    for name, label in REGULARISERS.items():
        fitted = finetune(params, xs, ys, lam, penalty=name, steps=steps, lr=lr)
        theta = unstack(fitted)
        pred = mlp_forward_numpy(theta, X_PLOT[:, None])[:, 0]
        train = mlp_forward_numpy(theta, xs[0])
        out[name] = {"train_mse": float(np.mean((train - ys[0]) ** 2)),
                     "test_mse": float(np.mean((pred - y_true) ** 2)),
                     "dist": param_distance(fitted, params)}
        curves[f"{label}"] = pred
    lam_txt = "0" if lam == 0 else f"{lam:.3g}"
    print(f"λ = {lam_txt}, K = {k_shot}:  " + "  |  ".join(
        f"{REGULARISERS[n].split(' ‖')[0]}: train MSE {out[n]['train_mse']:.4g}, test MSE "
        f"{out[n]['test_mse']:.4g}, ‖θ−θ₀‖ {out[n]['dist']:.4g}" for n in REGULARISERS))
    if draw:
        from course_utils.plots import plot_regression_fit

        fig = new_figure((7, 4))
        ax = fig.subplots()
        plot_regression_fit(X_PLOT, curves, x_support=xs[0], y_support=ys[0], ax=ax,
                            title=f"Fine-tuning on K = {k_shot} points, λ = {lam_txt}",
                            ylabel="y = A sin(x − φ)")
        ax.set_ylim(-6.5, 6.5)
        show_figure(fig)
        out["figure"] = fig
    return out


def transfer_explorer(params: dict, task, *, k_max: int | None = None, lam: float = 0.1,
                      k_shot: int = 5, steps: int = 100, lr: float = 0.005):
    """Sliders for λ (log scale, 0 reachable, 10⁻³…10²) and K wired to :func:`transfer_view`.

    The λ slider carries the CSS class ``l2l-lambda``, the widget ``l2l-explorer`` and its output
    area ``l2l-readout`` (the browser test finds them by these names). ``k_max`` (default: the
    task's support size) bounds the K slider; ``lam`` >= 0 and ``1 <= k_shot <= k_max`` start them.
    """
    from course_utils.widgets import int_slider, lambda_slider, make_interactive

    _check_task(params, task)
    n_support = task.x_support.shape[1]
    k_max = n_support if k_max is None else check_int(k_max, "k_max", 1, n_support)
    lam = check_float(lam, "lam", 0.0)
    k_shot = check_int(k_shot, "k_shot", 1, k_max)
    steps = check_int(steps, "steps", 0)
    lr = check_lr(lr, "lr")
    lam_w = lambda_slider("λ (regulariser weight)", value=lam, min_exp=-3, max_exp=2, per_decade=4)
    lam_w.add_class("l2l-lambda")
    lam_w.layout.width = "560px"  # a long track: one notch per quarter decade is easy to hit
    k_w = int_slider("K (support points)", value=k_shot, min=1, max=k_max)

    def view(lam, k_shot):
        return transfer_view(lam, k_shot, params=params, task=task, steps=steps, lr=lr)

    k_w.layout.width = "560px"
    w = make_interactive(view, lam=lam_w, k_shot=k_w)
    w.add_class("l2l-explorer")
    w.out.add_class("l2l-readout")
    return w


def plot_sweep(sweep: dict, *, ax=None, labels: dict | None = None, title: str = "λ sweep"):
    """Mean test MSE against λ for every penalty and K of a ``lambda_sweep`` result."""
    from course_utils.plots import plot_lambda_sweep

    check_mapping(sweep, "sweep", "a lambda_sweep result {'lambdas', 'k_shots', 'test_mse', ...}")
    missing = [k for k in ("lambdas", "k_shots", "test_mse") if k not in sweep]
    if missing:
        raise ValueError(f"sweep must be a lambda_sweep result with 'lambdas', 'k_shots' and 'test_mse', "
                         f"missing {missing}")
    labels = {} if labels is None else check_mapping(labels, "labels", "a dict {penalty: label} or None")
    curves = {f"{labels.get(p, p)}, K = {k}": sweep["test_mse"][p][i]
              for p in sweep["test_mse"] for i, k in enumerate(sweep["k_shots"])}
    ax = plot_lambda_sweep(sweep["lambdas"], curves, ax=ax, ylabel="test MSE (mean over tasks)",
                           title=title)
    ax.set_yscale("log")
    return ax


# ------------------------------------------------------------------ challenge checkers
def check_l2sp_gradient(fn: Callable | None) -> bool:
    """Exercise 1: ``fn(theta, theta0, lam)`` returns ∇_θ λ‖θ − θ₀‖² (NumPy vectors)."""
    name = "L2-SP gradient"
    if fn is None:
        return report(False, name, "Write grad_l2sp(theta, theta0, lam) and pass the function.")
    rng = np.random.default_rng(3)
    for lam in (0.0, 0.1, 2.5):
        theta, theta0 = rng.normal(size=7), rng.normal(size=7)
        try:
            got = fn(theta.copy(), theta0.copy(), lam)
        except Exception as e:  # noqa: BLE001 - a learner's bug is a hint, not a crash
            return report(False, name, f"your function raised {type(e).__name__}: {e}")
        if not close(got, 2 * lam * (theta - theta0)):
            return report(False, name, "Differentiate Σ_j (θ_j − θ₀_j)²: every term gives a factor 2.")
    return report(True, name)


def check_ridge_solution(fn: Callable | None) -> bool:
    """Exercise 2: ``fn(H, y, lam, u0)`` returns argmin_u (1/K)‖Hu − y‖² + λ‖u − u0‖² for λ > 0."""
    name = "closed-form L2-SP ridge"
    if fn is None:
        return report(False, name, "Write ridge_l2sp(H, y, lam, u0) and pass the function.")
    rng = np.random.default_rng(4)
    for k, d, lam in ((3, 6, 0.5), (12, 4, 0.01), (5, 5, 3.0)):
        h, y, u0 = rng.normal(size=(k, d)), rng.normal(size=(k, 1)), rng.normal(size=(d, 1))
        ref = np.linalg.solve(h.T @ h / k + lam * np.eye(d), h.T @ y / k + lam * u0)
        try:
            got = fn(h.copy(), y.copy(), lam, u0.copy())
        except Exception as e:  # noqa: BLE001
            return report(False, name, f"your function raised {type(e).__name__}: {e}")
        if not close(np.reshape(got, (-1, 1)) if np.size(got) == d else got, ref, rtol=1e-5):
            return report(False, name, "Set the gradient (2/K)Hᵀ(Hu − y) + 2λ(u − u0) to zero and solve "
                                       "(HᵀH/K + λI) u = Hᵀy/K + λu0.")
    return report(True, name)


def check_infinite_lambda(answer: dict | None, *, params: dict, task) -> bool:
    """Exercise 3: ``{"l2": ..., "l2sp": ...}``, the test MSE each fit tends to as λ → ∞.

    Test MSE is measured on the 200-point grid of :func:`transfer_view`.
    """
    name = "λ → ∞ limits"
    _check_task(params, task)
    if answer is None:
        return report(False, name, "Pass a dict {'l2': number, 'l2sp': number}.")
    y_true = task.true_function(X_PLOT)[0]
    ref = {"l2": float(np.mean(y_true ** 2)),
           "l2sp": float(np.mean((mlp_forward_numpy(params, X_PLOT[:, None])[:, 0] - y_true) ** 2))}
    try:
        ok = all(close(answer[k], ref[k], rtol=1e-2) for k in ref)
    except (KeyError, TypeError):
        ok = False
    return report(ok, name, "Which weights minimise ‖θ‖², and which ‖θ − θ₀‖²? Evaluate the "
                            "corresponding function on X_PLOT and compare with the truth.")
