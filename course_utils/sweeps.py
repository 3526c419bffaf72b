"""Framework-free helpers of the λ sweeps of chapters 3 and 5 (regularised fine-tuning).

Both :mod:`course_utils.torch.objectives` and :mod:`course_utils.tensorflow.objectives` use
these, and so do the chapter modules :mod:`course_utils.chapters.ch03` and ``ch05``.
NumPy only.
"""
from __future__ import annotations

import numpy as np

from course_utils.nets import mlp_forward_numpy
from course_utils.validation import (check_array, check_int, check_lam, check_lam_per_model,
                                     check_mapping, check_names, check_params, check_same_keys)

__all__ = ["X_PLOT", "grid_and_prior", "check_sweep_args", "sweep_result", "best_lambdas",
           "param_distance", "unstack"]

#: The 200-point grid on [−5, 5] on which the chapters draw and score fitted curves.
X_PLOT = np.linspace(-5, 5, 200, dtype=np.float32)


def _check_stacked(stacked, params=None) -> None:
    """A stacked MLP dict: weights (M, in, out), biases (M, 1, out); with ``params``, its keys and layer shapes."""
    check_params(stacked, "stacked", mlp=True)
    if any(len(np.shape(v)) != 3 for v in stacked.values()):
        raise ValueError("stacked must hold stacked weights (M, in, out) and biases (M, 1, out), got shapes "
                         f"{ {k: np.shape(v) for k, v in stacked.items()} }")
    if params is not None:
        check_same_keys(params, {k: (v[0] if k.startswith("w") else v[0].reshape(-1)) for k, v in stacked.items()},
                        "stacked (one model)")


def param_distance(stacked: dict, params: dict) -> float:
    """‖φ − θ‖ between model 0 of a stacked parameter dict (M, ...) and an unstacked one."""
    check_params(params, mlp=True)
    _check_stacked(stacked, params)
    return float(np.sqrt(sum(np.sum((stacked[k][0].reshape(-1) - params[k].reshape(-1)) ** 2)
                             for k in params)))


def unstack(stacked: dict, i: int = 0) -> dict:
    """Model ``i`` of a stacked parameter dict (biases (M, 1, out) back to (out,))."""
    _check_stacked(stacked)
    i = check_int(i, "i", 0, len(next(iter(stacked.values()))) - 1)
    return {k: (v[i].reshape(-1) if k.startswith("b") else v[i]) for k, v in stacked.items()}


def best_lambdas(sweep: dict) -> dict:
    """The λ with the lowest mean test MSE, per penalty and K: ``{penalty: (nK,)}``."""
    check_mapping(sweep, "sweep", 'a λ-sweep result with "lambdas" and "test_mse"')
    missing = [k for k in ("lambdas", "test_mse") if k not in sweep]
    if missing:
        raise ValueError(f"sweep must have the keys 'lambdas' and 'test_mse' (a lambda_sweep result), "
                         f"missing {missing}")
    lambdas = np.asarray(sweep["lambdas"])
    return {p: lambdas[np.nanargmin(np.asarray(v), axis=1)] for p, v in sweep["test_mse"].items()}


def grid_and_prior(params: dict, x_grid, f_prior) -> tuple[np.ndarray, np.ndarray]:
    """The function-space prior's grid (G, 1) and values f*(grid) (G, 1), float32 NumPy.

    Defaults: 41 points on [−5, 5] and f* = the MLP ``params`` itself.
    """
    check_params(params, mlp=True)
    if x_grid is None:
        x_grid = np.linspace(-5, 5, 41, dtype=np.float32).reshape(-1, 1)
    check_array(x_grid, "x_grid", ndim=(1, 2), dtype="real")
    if f_prior is not None:
        check_array(f_prior, "f_prior", ndim=(1, 2), dtype="real")
    x_grid = np.asarray(x_grid, dtype=np.float32).reshape(-1, 1)
    if f_prior is None:
        f_prior = mlp_forward_numpy(params, x_grid)
    f_prior = np.asarray(f_prior, dtype=np.float32).reshape(-1, 1)
    if f_prior.shape != x_grid.shape:
        raise ValueError(f"f_prior must have shape {x_grid.shape} to match x_grid, got {f_prior.shape}")
    return x_grid, f_prior


def check_sweep_args(tasks, lambdas, k_shots, penalties, allowed_penalties, x_eval):
    """``lambda_sweep``'s arguments: returns ``(lambdas (L,) float32, k_shots list, x_eval float32)``."""
    if not all(hasattr(tasks, a) for a in ("x_support", "y_support", "true_function", "n_tasks")):
        raise ValueError(f"tasks must be SinusoidTasks (from sample_sinusoid_tasks), got {type(tasks).__name__}")
    check_lam(lambdas, "lambdas")
    lambdas = np.asarray(lambdas, dtype=np.float32).reshape(-1)
    check_lam_per_model(lambdas, lambdas.size)
    if isinstance(k_shots, (str, bytes)) or not hasattr(k_shots, "__iter__") or not len(k_shots):
        raise ValueError(f"k_shots must be a non-empty sequence of integers >= 1, got {k_shots!r}")
    k_shots = [check_int(k, "k_shots (every entry)", 1) for k in k_shots]
    if max(k_shots) > tasks.x_support.shape[1]:
        raise ValueError(f"k_shots must be <= {tasks.x_support.shape[1]} (support points per task), "
                         f"got {max(k_shots)}")
    if isinstance(allowed_penalties, (str, bytes)) or not hasattr(allowed_penalties, "__iter__"):
        raise ValueError(f"allowed_penalties must be a collection of penalty names, got {allowed_penalties!r}")
    check_names(penalties, "penalties", allowed_penalties)
    if x_eval is not None:
        check_array(x_eval, "x_eval", ndim=1, dtype="real")
    x_eval = np.linspace(-5, 5, 100, dtype=np.float32) if x_eval is None else np.asarray(x_eval, np.float32)
    return lambdas, k_shots, x_eval


def sweep_result(lambdas: np.ndarray, k_shots, per_task: dict, n_tasks: int) -> dict:
    """``lambda_sweep``'s result: mean test MSE over tasks and its standard error, per penalty."""
    check_lam(lambdas, "lambdas")
    lambdas = np.asarray(lambdas)
    n_tasks = check_int(n_tasks, "n_tasks", 1)
    if isinstance(k_shots, (str, bytes)) or not hasattr(k_shots, "__iter__"):
        raise ValueError(f"k_shots must be a sequence of integers >= 1, got {k_shots!r}")
    k_shots = [check_int(k, "k_shots (every entry)", 1) for k in k_shots]
    check_mapping(per_task, "per_task", "a dict {penalty: (nK, n_tasks, L) test MSEs}")
    for p, v in per_task.items():
        check_array(v, f"per_task[{p!r}]", shape=(len(k_shots), n_tasks, lambdas.size), dtype="real")
    mean = {p: v.mean(axis=1) for p, v in per_task.items()}
    sem = {p: v.std(axis=1, ddof=1) / np.sqrt(n_tasks) if n_tasks > 1 else np.zeros_like(mean[p])
           for p, v in per_task.items()}
    return {"lambdas": lambdas, "k_shots": np.array(k_shots), "test_mse": mean, "sem": sem,
            "per_task": per_task}
