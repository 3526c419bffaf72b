"""Chapter 0 (start here): the pure callback behind the first slider."""
from __future__ import annotations

import numpy as np

from course_utils.plots import new_figure, plot_sinusoid_tasks, show_figure
from course_utils.tasks import sample_sinusoid_tasks
from course_utils.validation import check_bool, check_int

__all__ = ["show_sinusoid_family"]


def show_sinusoid_family(n_tasks: int = 4, k_shot: int = 5, seed: int = 0, *, draw: bool = True) -> dict:
    """Draw ``n_tasks`` sinusoid tasks with ``k_shot`` support points each; return what was drawn.

    Returns:
        ``{"n_tasks", "k_shot", "amplitudes", "phases", "n_points"}`` (rounded numbers).
    """
    seed = check_int(seed, "seed", 0)
    draw = check_bool(draw, "draw")
    tasks = sample_sinusoid_tasks(n_tasks, k_shot, k_shot, rng=seed)
    if draw:
        fig = new_figure((7, 4))
        ax = fig.subplots()
        plot_sinusoid_tasks(tasks, n=n_tasks, ax=ax,
                            title=f"{n_tasks} tasks from p(T), {k_shot} support points each (seed {seed})")
        show_figure(fig)
    return {
        "n_tasks": n_tasks,
        "k_shot": k_shot,
        "amplitudes": np.round(tasks.amplitude, 3).tolist(),
        "phases": np.round(tasks.phase, 3).tolist(),
        "n_points": int(tasks.x_support.size + tasks.x_query.size),
    }
