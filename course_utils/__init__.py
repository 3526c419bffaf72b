"""Helpers for the *Learning to Learn* course.

Framework-free code (task generators, data loading, plots, widgets) lives in NumPy at the top
level. Framework code is mirrored with the same names in :mod:`course_utils.torch` and
:mod:`course_utils.tensorflow` (import those explicitly; importing this package never imports
a deep-learning framework).
"""
from course_utils.env import configure_tensorflow_env, course_device, course_scale, environment_report, peak_memory_mb
from course_utils.seed import set_seed
from course_utils.data import load_omniglot
from course_utils.tasks import (
    SinusoidTasks,
    sample_sinusoid_tasks,
    EpisodeSampler,
    sample_episode,
    GaussianTaskFamily,
)

__version__ = "0.1.0"

__all__ = [
    "configure_tensorflow_env",
    "peak_memory_mb",
    "environment_report",
    "course_device",
    "course_scale",
    "set_seed",
    "load_omniglot",
    "SinusoidTasks",
    "sample_sinusoid_tasks",
    "EpisodeSampler",
    "sample_episode",
    "GaussianTaskFamily",
]
