"""One call seeds every random number generator the course uses."""
from __future__ import annotations

import os
import random

import numpy as np

from course_utils.env import configure_tensorflow_env
from course_utils.validation import check_bool, check_int, check_names

__all__ = ["set_seed", "check_rng"]


def set_seed(seed: int = 0, *, frameworks: tuple[str, ...] = ("torch", "tensorflow"),
             deterministic: bool = True) -> np.random.Generator:
    """Seed Python, NumPy, PyTorch and TensorFlow, and return a fresh NumPy generator.

    Args:
        seed: a non-negative integer below 2**32.
        frameworks: which frameworks to seed (imported here if installed).
        deterministic: also ask the frameworks for deterministic kernels
            (``torch.use_deterministic_algorithms``, ``tf.config.experimental.enable_op_determinism``).

    Returns:
        ``np.random.default_rng(seed)``: pass it to the course's task generators.
    """
    seed = check_int(seed, "seed", 0, 2**32 - 1)
    check_bool(deterministic, "deterministic")
    frameworks = check_names(frameworks, "frameworks", ("torch", "tensorflow"))
    seed = int(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)  # affects subprocesses only; documented for learners
    random.seed(seed)
    np.random.seed(seed)
    if "torch" in frameworks:
        try:
            import torch
        except ImportError:  # pragma: no cover
            pass
        else:
            torch.manual_seed(seed)
            if deterministic:
                torch.use_deterministic_algorithms(True, warn_only=True)
    if "tensorflow" in frameworks:
        configure_tensorflow_env()
        try:
            import tensorflow as tf
        except ImportError:  # pragma: no cover
            pass
        else:
            tf.keras.utils.set_random_seed(seed)  # Python, NumPy and TF in one call
            if deterministic:
                tf.config.experimental.enable_op_determinism()
    return np.random.default_rng(seed)


def check_rng(rng: np.random.Generator | int | None, name: str = "rng", *,
              allow_none: bool = True) -> np.random.Generator:
    """Turn a seed or generator into a ``np.random.Generator`` (None means a fresh, unseeded one,
    unless ``allow_none`` is False: then None is rejected)."""
    allow_none = check_bool(allow_none, "allow_none")
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None and allow_none:
        return np.random.default_rng()
    try:
        return np.random.default_rng(check_int(rng, name, 0))
    except ValueError:
        raise ValueError(f"{name} must be a np.random.Generator or a non-negative int seed, got {rng!r}") from None
