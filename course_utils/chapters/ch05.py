"""Chapter 5 (meta-regression, L + λD(f_θ, f*)): slider callback, best-λ plot, checkers.

f* is a prior function learned from many tasks (the pretrained model's prediction); D is the
mean squared distance between functions on a grid, and the parameter-space cousin is iMAML's
proximal term λ/2‖φ − θ‖². The maths runs in :mod:`course_utils.torch.objectives`; the sweep
helpers shared with chapter 3 come from :mod:`course_utils.sweeps` (no chapter imports another).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from course_utils.grading import close, report
from course_utils.implicit import conjugate_gradient_numpy
from course_utils.nets import mlp_forward_numpy
from course_utils.plots import _axes, new_figure, show_figure
from course_utils.sweeps import X_PLOT, best_lambdas, param_distance, unstack
from course_utils.validation import (check_array, check_bool, check_choice, check_float, check_int, check_lr,
                                     check_mapping, check_numbers, check_pair, check_params, check_record, check_str)

__all__ = [
    "PRIORS",
    "GRID",
    "meta_regression_view",
    "meta_regression_explorer",
    "plot_best_lambda",
    "check_function_penalty_gradient",
    "check_function_metric",
    "check_sum_convention",
    "CG_TOY",
    "QUAD_TOY",
    "MEMORY_TOY",
    "saved_tensors_peak",
    "plot_memory_time",
    "check_cg_two_steps",
    "check_implicit_gradient_1d",
    "check_memory_counts",
]

#: Exercise 4: a 2 × 2 symmetric positive-definite system A x = b for conjugate gradient by hand.
CG_TOY = {"a": np.array([[4.0, 1.0], [1.0, 3.0]]), "b": np.array([1.0, 2.0])}
#: Exercise 5: support loss L̂(φ) = a/2 (φ − c)², query loss L_q(φ) = ½(φ − d)², θ and λ.
QUAD_TOY = {"a": 3.0, "c": 0.5, "d": -1.0, "theta": 2.0, "lam": 1.5}
#: Exercise 6: inner steps S and conjugate-gradient steps of one meta-gradient.
MEMORY_TOY = {"steps": 20, "cg_steps": 5}

PRIORS = {"function": "function space λ·D(f_φ, f*)", "proximal": "parameter space λ/2‖φ − θ‖²"}
GRID = np.linspace(-5, 5, 41, dtype=np.float32).reshape(-1, 1)


def _check_view_args(params, task, best, k_grid) -> None:
    """θ an MLP dict, ``task`` a one-task SinusoidTasks, ``best`` None or a dict, ``k_grid`` None or K values."""
    check_params(params, mlp=True)
    check_record(task, "task", ("x_support", "y_support", "true_function"), "a one-task SinusoidTasks (tasks.task(0))")
    if best is not None:
        check_mapping(best, "best", "a dict {penalty: best λ per K} (sweeps.best_lambdas) or None")
    if k_grid is not None:
        check_array(k_grid, "k_grid", ndim=1, dtype="real")


def meta_regression_view(lam: float, k_shot: int, *, params: dict, task, best: dict | None = None,
                         k_grid=None, steps: int = 100, lr: float = 0.005, draw: bool = True) -> dict:
    """Adapt θ (the prior model, f* = f_θ) to K points of ``task`` with both penalties.

    Draws the fits (left) and, when ``best``/``k_grid`` are given (from a sweep), the best λ
    against K with the current (K, λ) marked (right); prints a readout; returns the numbers.
    ``lam`` >= 0, ``1 <= k_shot <=`` the task's support size, ``steps`` >= 0, ``lr`` finite > 0.

    Returns:
        ``{"lam", "k_shot", "function": {...}, "proximal": {...}}``, each with ``train_mse``,
        ``test_mse``, ``d_prior`` = mean_g (f_φ − f*)² on :data:`GRID` and ``dist`` = ‖φ − θ‖;
        with ``draw`` also ``"figure"``, the matplotlib Figure shown.
    """
    from course_utils.torch.objectives import finetune

    _check_view_args(params, task, best, k_grid)
    lam = check_float(lam, "lam", 0.0)
    k_shot = check_int(k_shot, "k_shot", 1, task.x_support.shape[1])
    steps = check_int(steps, "steps", 0)
    lr = check_lr(lr, "lr")
    draw = check_bool(draw, "draw")
    xs, ys = task.x_support[:1, :k_shot], task.y_support[:1, :k_shot]
    y_true = task.true_function(X_PLOT)[0]
    prior_grid = mlp_forward_numpy(params, GRID)
    out = {"lam": lam, "k_shot": int(k_shot)}
    curves = {"true function": y_true, "prior f*": mlp_forward_numpy(params, X_PLOT[:, None])[:, 0]}
    for name, label in PRIORS.items():
        fitted = finetune(params, xs, ys, lam, penalty=name, x_grid=GRID, steps=steps, lr=lr)
        phi = unstack(fitted)
        pred = mlp_forward_numpy(phi, X_PLOT[:, None])[:, 0]
        out[name] = {"train_mse": float(np.mean((mlp_forward_numpy(phi, xs[0]) - ys[0]) ** 2)),
                     "test_mse": float(np.mean((pred - y_true) ** 2)),
                     "d_prior": float(np.mean((mlp_forward_numpy(phi, GRID) - prior_grid) ** 2)),
                     "dist": param_distance(fitted, params)}
        curves[label] = pred
    lam_txt = "0" if lam == 0 else f"{lam:.3g}"
    print(f"λ = {lam_txt}, K = {k_shot}:  " + "  |  ".join(
        f"{n}: train MSE {out[n]['train_mse']:.4g}, test MSE {out[n]['test_mse']:.4g}, "
        f"D(f_φ, f*) {out[n]['d_prior']:.4g}, ‖φ−θ‖ {out[n]['dist']:.4g}" for n in PRIORS))
    if draw:
        from course_utils.plots import plot_regression_fit

        panels = 2 if best is not None else 1
        fig = new_figure((6.5 * panels, 4))
        axes = fig.subplots(1, panels, squeeze=False)
        plot_regression_fit(X_PLOT, curves, x_support=xs[0], y_support=ys[0], ax=axes[0, 0],
                            title=f"Adapting to K = {k_shot} points, λ = {lam_txt}",
                            ylabel="y = A sin(x − φ)")
        axes[0, 0].set_ylim(-6.5, 6.5)
        if best is not None:
            plot_best_lambda(k_grid, best, ax=axes[0, 1], current=(k_shot, lam))
        fig.tight_layout()
        show_figure(fig)
        out["figure"] = fig
    return out


def meta_regression_explorer(params: dict, task, *, best: dict | None = None, k_grid=None,
                             lam: float = 0.1, k_shot: int = 5, steps: int = 100, lr: float = 0.005):
    """λ (log scale, 0 reachable, 10⁻³…10²) and K sliders wired to :func:`meta_regression_view`.

    CSS classes: ``l2l-lambda`` (λ slider), ``l2l-explorer`` (widget), ``l2l-readout`` (output).
    """
    from course_utils.widgets import int_slider, lambda_slider, make_interactive

    _check_view_args(params, task, best, k_grid)
    lam = check_float(lam, "lam", 0.0)
    k_shot = check_int(k_shot, "k_shot", 1, task.x_support.shape[1])
    steps = check_int(steps, "steps", 0)
    lr = check_lr(lr, "lr")

    lam_w = lambda_slider("λ (prior weight)", value=lam, min_exp=-3, max_exp=2, per_decade=4)
    lam_w.add_class("l2l-lambda")
    lam_w.layout.width = "560px"  # a long track: one notch per quarter decade is easy to hit
    k_w = int_slider("K (support points)", value=k_shot, min=1, max=task.x_support.shape[1])

    def view(lam, k_shot):
        return meta_regression_view(lam, k_shot, params=params, task=task, best=best, k_grid=k_grid,
                                    steps=steps, lr=lr)

    k_w.layout.width = "560px"
    w = make_interactive(view, lam=lam_w, k_shot=k_w)
    w.add_class("l2l-explorer")
    w.out.add_class("l2l-readout")
    return w


def plot_best_lambda(k_shots, best: dict, *, ax=None, current: tuple | None = None,
                     title: str = "Best λ against K (mean test MSE over tasks)"):
    """Best λ (log y; 0 drawn at the bottom) against K (log x), one line per penalty."""
    k_shots = np.asarray(check_numbers(k_shots, "k_shots", integer=True, low=1, nonempty=True), dtype=float)
    check_mapping(best, "best", "a dict {penalty: best λ per K} (sweeps.best_lambdas)")
    for name, values in best.items():
        check_numbers(np.asarray(values).tolist() if hasattr(values, "shape") else values, f"best[{name!r}]", low=0.0)
        if len(values) != len(k_shots):
            raise ValueError(f"best[{name!r}] must hold one λ per K of k_shots ({len(k_shots)}), got {len(values)}")
    if current is not None:
        current = check_pair(current, "current", 0.0)
    check_str(title, "title")
    ax = _axes(ax)
    positive = np.concatenate([np.asarray(v, float)[np.asarray(v) > 0] for v in best.values()] + [[1e-3]])
    floor = positive.min() / 3
    for name, values in best.items():
        values = np.asarray(values, dtype=float)
        ax.plot(k_shots, np.where(values > 0, values, floor), marker="o", label=PRIORS.get(name, name))
    if current is not None:
        ax.axvline(current[0], color="grey", ls=":", label=f"current K = {current[0]}")
        ax.axhline(max(current[1], floor), color="grey", ls="--", label="current λ")
    ax.set(xscale="log", yscale="log", title=title, xlabel="K (support points, log scale)",
           ylabel="best λ (log scale)")
    ax.legend(fontsize="small")
    return ax


# ------------------------------------------------------------------ challenge checkers
def check_function_penalty_gradient(fn: Callable | None) -> bool:
    """Exercise 1: for a linear model f_w(x) = Φ(x)w, ``fn(Phi_grid, w, f_star, lam)`` returns
    ∇_w λ·mean_g (Φ_g w − f*_g)²."""
    name = "function-space penalty gradient"
    if fn is None:
        return report(False, name, "Write grad_fspace(Phi_grid, w, f_star, lam) and pass the function.")
    rng = np.random.default_rng(5)
    for g, d, lam in ((9, 3, 0.7), (20, 5, 0.0), (4, 6, 2.0)):
        phi, w, f = rng.normal(size=(g, d)), rng.normal(size=(d, 1)), rng.normal(size=(g, 1))
        ref = 2 * lam / g * phi.T @ (phi @ w - f)
        try:
            got = fn(phi.copy(), w.copy(), f.copy(), lam)
        except Exception as e:  # noqa: BLE001
            return report(False, name, f"your function raised {type(e).__name__}: {e}")
        if not close(np.reshape(got, (-1, 1)) if np.size(got) == d else got, ref):
            return report(False, name, "Chain rule: d/dw (Φw − f)² = 2Φᵀ(Φw − f); keep the 1/G of the mean.")
    return report(True, name)


def check_function_metric(fn: Callable | None) -> bool:
    """Exercise 2: ``fn(Phi_grid)`` returns M with mean_g (Φ_g(w − w₀))² = (w − w₀)ᵀ M (w − w₀)."""
    name = "function-space metric"
    if fn is None:
        return report(False, name, "Write metric(Phi_grid) returning a (d, d) matrix.")
    rng = np.random.default_rng(6)
    phi = rng.normal(size=(15, 4))
    try:
        got = np.asarray(fn(phi.copy()), dtype=float)
    except Exception as e:  # noqa: BLE001
        return report(False, name, f"your function raised {type(e).__name__}: {e}")
    return report(close(got, phi.T @ phi / 15), name,
                  "Expand mean_g (Φ_g δ)² = δᵀ (Σ_g Φ_gᵀΦ_g / G) δ.")


def check_sum_convention(answer, *, sweep: dict, penalty: str = "function") -> bool:
    """Exercise 3: the best λ per K in the article's Σ_i convention (λ_Σ = K·λ_mean)."""
    check_mapping(sweep, "sweep", "a lambda_sweep result {'lambdas', 'k_shots', 'test_mse', ...}")
    if "test_mse" not in sweep or "k_shots" not in sweep:
        raise ValueError(f"sweep must be a lambda_sweep result with 'k_shots' and 'test_mse', got keys {sorted(sweep)}")
    check_choice(penalty, "penalty", tuple(sweep["test_mse"]))
    name = "best λ in the Σ convention"
    if answer is None:
        return report(False, name, "Pass an array with one λ_Σ per K in sweep['k_shots'].")
    best = best_lambdas(sweep)[penalty]
    k = np.asarray(sweep["k_shots"], dtype=float)
    if close(answer, best * k, rtol=1e-3):
        return report(True, name)
    if close(answer, best / k, rtol=1e-3):
        hint = "You divided by K: the sum convention's λ weighs a penalty against a sum of K losses, not a mean."
    elif close(answer, best, rtol=1e-3):
        hint = "Those are the mean convention's values; convert each one to the sum convention."
    else:
        hint = "Start from the best λ of each K in the sweep (one value per K, in the order of sweep['k_shots'])."
    return report(False, name, hint)


# ------------------------------------------------------------------ iMAML: measuring memory and time
def saved_tensors_peak(fn: Callable, *args, **kwargs) -> tuple[object, int]:
    """Run ``fn(*args, **kwargs)`` and return ``(result, peak_bytes)``: the largest number of bytes
    that PyTorch's autograd held *for backward* at any moment of the call.

    Every tensor autograd saves for a backward pass goes through
    ``torch.autograd.graph.saved_tensors_hooks``; the hook counts its storage's bytes while the
    saved tensor is alive (a storage saved several times counts once) and releases them when the
    graph holding it is freed. That is the memory that back-propagating through an inner loop
    costs; the weights, data and results of ``fn`` are not counted.
    """
    import torch
    from course_utils.validation import check_callable

    check_callable(fn, "fn")
    live: dict[int, list[int]] = {}  # storage pointer -> [references, bytes]
    state = {"now": 0, "peak": 0}

    class _Held:
        __slots__ = ("tensor", "key")

        def __init__(self, tensor):
            self.tensor = tensor
            storage = tensor.untyped_storage()
            self.key = storage.data_ptr()
            entry = live.setdefault(self.key, [0, storage.nbytes()])
            if entry[0] == 0:
                state["now"] += entry[1]
                state["peak"] = max(state["peak"], state["now"])
            entry[0] += 1

        def __del__(self):
            entry = live[self.key]
            entry[0] -= 1
            if entry[0] == 0:
                state["now"] -= entry[1]
                del live[self.key]

    with torch.autograd.graph.saved_tensors_hooks(_Held, lambda held: held.tensor):
        out = fn(*args, **kwargs)
    return out, state["peak"]


def plot_memory_time(steps, memory_mb: dict, seconds: dict, *, title: str = "Cost of one meta-gradient"):
    """Two panels against the number of inner steps: autograd's peak saved memory (MiB) and the
    wall time (ms) of one meta-gradient, one line per method (``{name: values per step count}``)."""
    steps = check_numbers(steps, "steps", integer=True, low=0)
    check_mapping(memory_mb, "memory_mb", "a dict {method: MiB per step count}")
    check_mapping(seconds, "seconds", "a dict {method: seconds per step count}")
    check_str(title, "title")
    for name, table in (("memory_mb", memory_mb), ("seconds", seconds)):
        for k, v in table.items():
            check_array(v, f"{name}[{k!r}]", ndim=1, dtype="real")
            if len(v) != len(steps):
                raise ValueError(f"{name}[{k!r}] must have one value per step count ({len(steps)}), got {len(v)}")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    ms = {k: 1e3 * np.asarray(v) for k, v in seconds.items()}
    for ax, table, label in ((axes[0], memory_mb, "peak memory saved for backward (MiB)"),
                             (axes[1], ms, "time per meta-gradient (ms)")):
        for k, v in table.items():
            ax.plot(steps, v, "o-", label=k)
        ax.set(xlabel="inner steps S", ylabel=label)
        ax.legend(fontsize="small")
    axes[0].set_title("Memory")
    axes[1].set_title("Time")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ iMAML challenge checkers
def _numbers(answer, n: int):
    try:
        v = np.asarray(answer, dtype=float).ravel()
    except (TypeError, ValueError):
        return None
    return v if v.size == n and np.all(np.isfinite(v)) else None


def check_cg_two_steps(answer) -> bool:
    """Exercise 4: the conjugate-gradient iterates x₁ and x₂ from x₀ = 0 for :data:`CG_TOY`,
    as ``{"x1": [., .], "x2": [., .]}``."""
    name = "conjugate gradient on a 2 × 2 system"
    if not isinstance(answer, dict) or not {"x1", "x2"} <= set(answer):
        return report(False, name, 'Set answer to a dict {"x1": x₁, "x2": x₂} of two 2-vectors.')
    x1, x2 = _numbers(answer["x1"], 2), _numbers(answer["x2"], 2)
    if x1 is None or x2 is None:
        return report(False, name, "x1 and x2 must each be two finite numbers.")
    a, b = CG_TOY["a"], CG_TOY["b"]
    ref1, ref2 = conjugate_gradient_numpy(a, b, steps=1), conjugate_gradient_numpy(a, b, steps=2)
    if close(x1, ref2) and not close(x1, ref1):
        return report(False, name, "x₁ is already the exact solution? After one step CG has only moved "
                                   "along p₀ = r₀ = b.")
    if not close(x1, ref1):
        return report(False, name, "Step 1: r₀ = b, p₀ = r₀, α₀ = r₀ᵀr₀ / p₀ᵀAp₀, x₁ = α₀ p₀.")
    return report(close(x2, ref2), name, "Step 2: r₁ = r₀ − α₀Ap₀, β = r₁ᵀr₁ / r₀ᵀr₀, p₁ = r₁ + βp₀, "
                                         "α₁ = r₁ᵀr₁ / p₁ᵀAp₁, x₂ = x₁ + α₁p₁ (it must solve A x = b).")


def check_implicit_gradient_1d(answer) -> bool:
    """Exercise 5: d/dθ L_q(φ*(θ)) for the 1-D quadratics of :data:`QUAD_TOY` (a number)."""
    name = "implicit gradient of a 1-D quadratic"
    v = _numbers(answer, 1)
    if v is None:
        return report(False, name, "Set answer to one number, dL_q(φ*(θ))/dθ.")
    q = QUAD_TOY
    phi = (q["a"] * q["c"] + q["lam"] * q["theta"]) / (q["a"] + q["lam"])
    jac = 1.0 / (1.0 + q["a"] / q["lam"])
    if close(v[0], phi - q["d"]):
        return report(False, name, "That is ∇L_q(φ*) alone: multiply by dφ*/dθ = (1 + H/λ)⁻¹.")
    if close(v[0], (q["theta"] - q["d"]) * jac):
        return report(False, name, "The query gradient is taken at the adapted φ*, not at θ.")
    return report(close(v[0], (phi - q["d"]) * jac), name,
                  "φ* solves a(φ − c) + λ(φ − θ) = 0; then multiply L_q'(φ*) = φ* − d by dφ*/dθ.")


def check_memory_counts(answer) -> bool:
    """Exercise 6: for :data:`MEMORY_TOY`, how many inner iterates each method must keep for its
    meta-gradient and how many Hessian-vector products iMAML's costs:
    ``{"maml_iterates": int, "imaml_iterates": int, "imaml_hvps": int}``."""
    name = "why iMAML's memory does not grow"
    keys = {"maml_iterates", "imaml_iterates", "imaml_hvps"}
    if not isinstance(answer, dict) or not keys <= set(answer):
        return report(False, name, f"Set answer to a dict with the keys {sorted(keys)} (integers).")
    try:
        got = {k: float(answer[k]) for k in keys}
    except (TypeError, ValueError):
        return report(False, name, "Each value must be a number.")
    s, k = MEMORY_TOY["steps"], MEMORY_TOY["cg_steps"]
    if got["maml_iterates"] not in (s, s + 1):
        return report(False, name, "Back-propagating through S steps needs every step's graph: one per step.")
    if got["imaml_iterates"] != 1:
        return report(False, name, "The implicit gradient is evaluated at one point only: which one?")
    return report(got["imaml_hvps"] == k, name, "Each CG step multiplies one vector by (I + H/λ).")
