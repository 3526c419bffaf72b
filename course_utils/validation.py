"""The course's shared argument validators: one place that says what is wrong with an argument.

Every public function of :mod:`course_utils`, :mod:`course_utils.torch` and
:mod:`course_utils.tensorflow` checks its arguments through these, so both halves raise the same
``ValueError`` with the same message, naming the argument, its allowed range and what was given.
The bottom of the package: NumPy only, and it imports nothing else from :mod:`course_utils`.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


# --------------------------------------------------------------------------- scalar validators
def check_int(value, name: str, low: int, high: int | None = None) -> int:
    """An integer (bools rejected) in ``[low, high]`` (or ``>= low``), as a Python ``int``."""
    allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer {allowed}, got {value!r}")
    if value < low or (high is not None and value > high):
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


def check_float(value, name: str, low: float | None = None, high: float | None = None, *,
                low_open: bool = False, high_open: bool = False) -> float:
    """A finite real number (bools rejected) in the given range, as a Python ``float``.

    ``low``/``high`` bound it (``None``: unbounded); ``low_open``/``high_open`` exclude the bound.
    """
    lo_b, hi_b = ("(" if low_open else "["), (")" if high_open else "]")
    allowed = (f"in {lo_b}{low}, {high}{hi_b}" if low is not None and high is not None
               else f"{'>' if low_open else '>='} {low}" if low is not None
               else f"{'<' if high_open else '<='} {high}" if high is not None else "finite")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a finite number {allowed}, got {value!r}")
    v = float(value)
    bad = (not np.isfinite(v)
           or (low is not None and (v < low or (low_open and v == low)))
           or (high is not None and (v > high or (high_open and v == high))))
    if bad:
        raise ValueError(f"{name} must be a finite number {allowed}, got {value!r}")
    return v


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
def check_same_keys(params: dict, vector: dict, name: str = "vector") -> None:
    """``vector`` (called ``name`` in messages) has exactly the keys of ``params``, each with the same shape."""
    if not isinstance(vector, dict):
        raise ValueError(f"{name} must be a dict with the keys of params {sorted(params)}, got {type(vector).__name__}")
    if set(params) != set(vector):
        raise ValueError(f"{name} must have the keys of params {sorted(params)}, got {sorted(vector)}")
    for k in params:
        if tuple(params[k].shape) != tuple(np.shape(vector[k])):
            raise ValueError(f"{name}[{k!r}] must have shape {tuple(params[k].shape)}, "
                             f"got {tuple(np.shape(vector[k]))}")


def check_trainable(params: dict, trainable) -> list[str]:
    """The names to train: all of ``params`` when ``trainable`` is None, else those (all known)."""
    trainable = list(params) if trainable is None else list(trainable)
    unknown = set(trainable) - set(params)
    if unknown:
        raise ValueError(f"trainable must name parameters among {sorted(params)}, got {sorted(unknown)}")
    return trainable


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


# --------------------------------------------------------------------------- names, callables, types
def check_names(value, name: str, allowed) -> tuple[str, ...]:
    """A collection of names (not a bare string), every one among ``allowed``; returned as a tuple.

    E.g. the weights that ``lwf_finetune`` keeps ``frozen`` must be keys of its ``params``.
    """
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise ValueError(f"{name} must be a collection of names among {sorted(allowed)}, got {value!r}")
    names = tuple(value)
    unknown = sorted(set(names) - set(allowed))
    if unknown:
        raise ValueError(f"{name} must name entries among {sorted(allowed)}, got unknown {unknown}")
    return names


def check_callable(value, name: str):
    """``value`` itself when it can be called (a forward pass, a loss function, ...)."""
    if not callable(value):
        raise ValueError(f"{name} must be callable, got {value!r}")
    return value


def check_instance(value, name: str, types, what: str):
    """``value`` itself when it is an instance of ``types``; ``what`` describes them in the message."""
    if not isinstance(value, types):
        raise ValueError(f"{name} must be {what}, got {type(value).__name__}")
    return value


def check_images_labels(images, labels) -> tuple[np.ndarray, np.ndarray]:
    """A labelled image set: images flattened to (n, D) and integer labels of shape (n,).

    Returns ``(flat_images, labels)`` as NumPy arrays (the images keep their dtype).
    """
    flat = np.asarray(images)
    if flat.ndim < 2 or len(flat) == 0:
        raise ValueError(f"images must be a non-empty array (n, ...) of n images, got shape {flat.shape}")
    flat = flat.reshape(len(flat), -1)
    labels = np.asarray(labels)
    if labels.shape != (len(flat),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers of shape ({len(flat)},) (one per image), "
                         f"got {labels.dtype} of shape {labels.shape}")
    return flat, labels


def check_interval(value, name: str) -> tuple[float, float]:
    """A ``(low, high)`` pair of finite numbers with ``low <= high``, as Python floats."""
    try:
        low, high = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair of finite numbers, got {value!r}") from None
    low = check_float(low, f"{name}[0]")
    high = check_float(high, f"{name}[1]", low)
    return low, high
