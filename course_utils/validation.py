"""Framework-free argument validators and helpers shared by the mirrored PyTorch/TensorFlow modules.

Private to the package: :mod:`course_utils.torch` and :mod:`course_utils.tensorflow` (and the
NumPy modules at the top level) import these so that both halves raise the same ``ValueError``
with the same message, naming the offending argument. NumPy only: importing this module never
imports a deep-learning framework.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


# --------------------------------------------------------------------------- scalar validators
def check_int(value, name: str, low: int, high: int | None = None) -> int:
    """An integer in ``[low, high]`` (or ``>= low``); two messages: not an integer / out of range."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return int(value)


def check_bool(value, name: str) -> bool:
    """A real boolean (``True``/``False`` or a NumPy bool); the string ``'False'`` is rejected."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_path(value, name: str) -> Path:
    """A non-empty ``str`` or ``os.PathLike``, as an expanded :class:`~pathlib.Path`."""
    if not isinstance(value, (str, os.PathLike)) or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"{name} must be a non-empty str or os.PathLike, got {value!r}")
    return Path(value).expanduser()


def check_positive_int(value, name: str, low: int = 1) -> int:
    """An integer ``>= low`` (bools rejected), as a Python ``int``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_steps(steps) -> None:
    """A number of inner steps ``>= 0`` (no type check, as the reference loops have always done)."""
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")


def check_lr(value, name: str) -> float:
    """A finite step size ``> 0``, as a Python ``float``."""
    if not (isinstance(value, (int, float, np.floating)) and np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_choice(value, name: str, allowed):
    """``value`` itself when it is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def check_nonnegative(value, name: str) -> None:
    """Every entry of ``value`` (a number, array or framework tensor) is finite and ``>= 0``."""
    arr = value
    if hasattr(arr, "detach"):  # a PyTorch tensor: drop its graph before reading it
        arr = arr.detach()
    if hasattr(arr, "numpy"):  # a PyTorch or TensorFlow tensor
        arr = arr.numpy()
    arr = np.asarray(arr, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")


def check_temperature(temperature) -> None:
    """A distillation temperature: finite and ``> 0``."""
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be finite and > 0, got {temperature!r}")


def check_epsilon(epsilon) -> None:
    """Reptile's outer step size ε in (0, 1]."""
    if not (np.isfinite(epsilon) and 0 < epsilon <= 1):
        raise ValueError(f"epsilon must be in (0, 1], got {epsilon!r}")


def check_epochs_batch_size(epochs, batch_size) -> None:
    """Minibatch training's ``epochs >= 1`` and ``batch_size >= 1``."""
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs}, {batch_size}")


def check_maml_args(inner_lr, steps, chunk_size=None) -> None:
    """The MAML inner loop's ``inner_lr >= 0``, ``steps >= 0`` and optional ``chunk_size >= 1``."""
    if not (isinstance(inner_lr, (int, float, np.floating)) and np.isfinite(inner_lr) and inner_lr >= 0):
        raise ValueError(f"inner_lr must be a finite number >= 0, got {inner_lr!r}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer))
                                   or chunk_size < 1):
        raise ValueError(f"chunk_size must be None or an integer >= 1, got {chunk_size!r}")


def check_task_batch(inner_lr, x_support, y_support, x_query, y_query) -> list[np.ndarray]:
    """``inner_lr >= 0`` and four task arrays (float32) sharing a leading tasks axis."""
    if not inner_lr >= 0:
        raise ValueError(f"inner_lr must be >= 0, got {inner_lr}")
    arrays = [np.asarray(a, dtype=np.float32) for a in (x_support, y_support, x_query, y_query)]
    if any(a.ndim < 2 for a in arrays) or len({a.shape[0] for a in arrays}) != 1:
        raise ValueError("x_support, y_support, x_query, y_query must share a leading tasks axis, "
                         f"got shapes {[a.shape for a in arrays]}")
    return arrays


# --------------------------------------------------------------------------- parameter dicts
def check_same_keys(params: dict, vector: dict) -> None:
    """``vector`` has exactly the keys of ``params``, each with the same shape."""
    if set(params) != set(vector):
        raise ValueError(f"vector must have the keys of params {sorted(params)}, got {sorted(vector)}")
    for k in params:
        if tuple(params[k].shape) != tuple(np.shape(vector[k])):
            raise ValueError(f"vector[{k!r}] must have shape {tuple(params[k].shape)}, "
                             f"got {tuple(np.shape(vector[k]))}")


def check_trainable(params: dict, trainable) -> list[str]:
    """The names to train: all of ``params`` when ``trainable`` is None, else those (all known)."""
    trainable = list(params) if trainable is None else list(trainable)
    unknown = set(trainable) - set(params)
    if unknown:
        raise ValueError(f"trainable must name parameters among {sorted(params)}, got {sorted(unknown)}")
    return trainable


def check_head(params, head) -> tuple[str, ...]:
    """ANIL's head: ``head`` (default :func:`course_utils.chapters.ch07.head_keys`), all keys of ``params``."""
    from course_utils.chapters.ch07 import head_keys  # lazily: `import course_utils` loads no chapter module

    keys = head_keys(params) if head is None else tuple(head)
    missing = [k for k in keys if k not in params]
    if not keys or missing:
        raise ValueError(f"head must name parameters of the model, unknown: {missing or keys}")
    return keys


# --------------------------------------------------------------------------- chapters 3 and 5
def check_lam_per_model(lam, m: int) -> np.ndarray:
    """λ as an (m,) float32 array: a scalar is repeated; every entry finite and ``>= 0``."""
    lam = np.asarray(lam, dtype=np.float64)
    if lam.ndim == 0:
        lam = np.full(m, float(lam))
    if lam.shape != (m,):
        raise ValueError(f"lam must be a scalar or have shape ({m},) (one λ per model), got {lam.shape}")
    if not np.all(np.isfinite(lam)) or np.any(lam < 0):
        raise ValueError(f"lam must be finite and >= 0, got {lam}")
    return lam.astype(np.float32)


def grid_and_prior(params: dict, x_grid, f_prior) -> tuple[np.ndarray, np.ndarray]:
    """The function-space prior's grid (G, 1) and values f*(grid) (G, 1), float32 NumPy.

    Defaults: 41 points on [−5, 5] and f* = the MLP ``params`` itself.
    """
    from course_utils.nets import mlp_forward_numpy

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


# --------------------------------------------------------------------------- training loops
def progress_range(n: int, desc: str, enabled: bool):
    """``range(n)``, or a ``tqdm.auto`` progress bar over it when ``enabled``."""
    if not enabled:
        return range(n)
    from tqdm.auto import trange

    return trange(n, desc=desc, leave=False)


def batches(n: int, batch_size: int | None, steps: int) -> list[slice]:
    """Minibatch j of the inner loop: consecutive slices of the task's data, cycling."""
    b = n if batch_size is None else batch_size
    if not 1 <= b <= n:
        raise ValueError(f"batch_size must be in [1, {n}] (the points per task), got {batch_size!r}")
    per_epoch = max(1, n // b)
    return [slice((j % per_epoch) * b, (j % per_epoch) * b + b) for j in range(steps)]


def finish_history(hist: dict, final: dict, eval_fn, n_iterations: int, seconds: float, trace: float,
                   peak_mb: float) -> tuple[dict, dict]:
    """Close ``train_meta_method``'s history: final evaluation, timings and peak memory."""
    if eval_fn is not None:
        hist["eval_iterations"].append(n_iterations)
        hist["eval"].append(float(eval_fn(final)))
    hist["seconds_per_iteration"] = seconds / max(1, n_iterations - 1)
    hist["trace_seconds"] = trace
    hist["peak_memory_mb"] = peak_mb
    return final, hist


def meta_test_summary(loss: list, acc: list, accuracy: bool) -> dict:
    """``meta_test``'s result from per-batch query losses (and accuracies): means over all tasks."""
    loss = np.concatenate(loss)
    out = {"loss": float(loss.mean()), "accuracy": None, "accuracy_ci95": None, "n_tasks": int(loss.size)}
    if accuracy:
        acc = np.concatenate(acc)
        out["accuracy"] = float(acc.mean())
        out["accuracy_ci95"] = float(1.96 * acc.std(ddof=1) / np.sqrt(acc.size)) if acc.size > 1 else 0.0
    return out
