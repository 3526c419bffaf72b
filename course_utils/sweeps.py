"""Framework-free helpers of the λ sweeps of chapters 3 and 5 (regularised fine-tuning).

Both :mod:`course_utils.torch.objectives` and :mod:`course_utils.tensorflow.objectives` use
these, and so do the chapter modules :mod:`course_utils.chapters.ch03` and ``ch05``.
NumPy only.
"""
from __future__ import annotations

import numpy as np

from course_utils.nets import mlp_forward_numpy
from course_utils.validation import check_choice, check_lam_per_model, check_positive_int

__all__ = ["X_PLOT", "grid_and_prior", "check_sweep_args", "sweep_result", "best_lambdas",
           "param_distance", "unstack"]

#: The 200-point grid on [−5, 5] on which the chapters draw and score fitted curves.
X_PLOT = np.linspace(-5, 5, 200, dtype=np.float32)


def param_distance(stacked: dict, params: dict) -> float:
    """‖φ − θ‖ between model 0 of a stacked parameter dict (M, ...) and an unstacked one."""
    return float(np.sqrt(sum(np.sum((stacked[k][0].reshape(-1) - params[k].reshape(-1)) ** 2)
                             for k in params)))


def unstack(stacked: dict, i: int = 0) -> dict:
    """Model ``i`` of a stacked parameter dict (biases (M, 1, out) back to (out,))."""
    return {k: (v[i].reshape(-1) if k.startswith("b") else v[i]) for k, v in stacked.items()}


def best_lambdas(sweep: dict) -> dict:
    """The λ with the lowest mean test MSE, per penalty and K: ``{penalty: (nK,)}``."""
    lambdas = np.asarray(sweep["lambdas"])
    return {p: lambdas[np.nanargmin(np.asarray(v), axis=1)] for p, v in sweep["test_mse"].items()}


def grid_and_prior(params: dict, x_grid, f_prior) -> tuple[np.ndarray, np.ndarray]:
    """The function-space prior's grid (G, 1) and values f*(grid) (G, 1), float32 NumPy.

    Defaults: 41 points on [−5, 5] and f* = the MLP ``params`` itself.
    """
    if x_grid is None:
        x_grid = np.linspace(-5, 5, 41, dtype=np.float32).reshape(-1, 1)
    x_grid = np.asarray(x_grid, dtype=np.float32).reshape(-1, 1)
    if f_prior is None:
        f_prior = mlp_forward_numpy(params, x_grid)
    f_prior = np.asarray(f_prior, dtype=np.float32).reshape(-1, 1)
    if f_prior.shape != x_grid.shape:
        raise ValueError(f"f_prior must have shape {x_grid.shape} to match x_grid, got {f_prior.shape}")
    return x_grid, f_prior


def check_sweep_args(tasks, lambdas, k_shots, penalties, allowed_penalties, x_eval):
    """``lambda_sweep``'s arguments: returns ``(lambdas (L,) float32, k_shots list, x_eval float32)``."""
    lambdas = np.asarray(lambdas, dtype=np.float32).reshape(-1)
    check_lam_per_model(lambdas, lambdas.size)
    k_shots = [check_positive_int(k, "k_shots") for k in k_shots]
    if max(k_shots) > tasks.x_support.shape[1]:
        raise ValueError(f"k_shots must be <= {tasks.x_support.shape[1]} (support points per task), "
                         f"got {max(k_shots)}")
    for p in penalties:
        check_choice(p, "penalties", allowed_penalties)
    x_eval = np.linspace(-5, 5, 100, dtype=np.float32) if x_eval is None else np.asarray(x_eval, np.float32)
    return lambdas, k_shots, x_eval


def sweep_result(lambdas: np.ndarray, k_shots, per_task: dict, n_tasks: int) -> dict:
    """``lambda_sweep``'s result: mean test MSE over tasks and its standard error, per penalty."""
    mean = {p: v.mean(axis=1) for p, v in per_task.items()}
    sem = {p: v.std(axis=1, ddof=1) / np.sqrt(n_tasks) if n_tasks > 1 else np.zeros_like(mean[p])
           for p, v in per_task.items()}
    return {"lambdas": lambdas, "k_shots": np.array(k_shots), "test_mse": mean, "sem": sem,
            "per_task": per_task}
