"""Matplotlib helpers shared by the chapters. Each returns the Axes it drew on."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from course_utils.validation import (check_array, check_bool, check_curves, check_int, check_lam, check_pair,
                                     check_same_length, check_sequence, check_str)

__all__ = ["new_figure", "show_figure", "plot_sinusoid_tasks", "plot_episode", "plot_learning_curves",
           "plot_lambda_sweep",
           "plot_regression_fit"]


def new_figure(figsize=(7, 4)):
    """A matplotlib ``Figure`` outside pyplot's registry, for slider callbacks.

    Slider callbacks run from widget messages, possibly while the kernel's pyplot machinery
    (e.g. the inline backend flushing figures after a cell) is busy; a figure pyplot does not
    know about cannot be closed or redrawn half-way by it (a real-browser test caught half-drawn
    images with pyplot figures).
    """
    from matplotlib.figure import Figure

    return Figure(figsize=check_pair(figsize, "figsize", 0.0, low_open=True))


def show_figure(fig) -> None:
    """Display ``fig`` in IPython/Jupyter (inline PNG); a no-op outside IPython (tests)."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython comes with Jupyter
        return
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise ValueError(f"fig must be a matplotlib Figure (e.g. from new_figure), got {type(fig).__name__}")
    if get_ipython() is not None:
        import matplotlib.pyplot  # noqa: F401 - makes sure the inline PNG formatter is registered

        display(fig)


def _axes(ax, figsize=(6, 4)):
    from matplotlib.axes import Axes

    if ax is not None and not isinstance(ax, Axes):
        raise ValueError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_sinusoid_tasks(tasks, *, n: int = 4, ax=None, grid: np.ndarray | None = None,
                        title: str = "Sinusoid tasks: true curves, support (●) and query (×)"):
    """Draw the first ``n`` tasks of a :class:`course_utils.tasks.SinusoidTasks` batch."""
    if not all(hasattr(tasks, a) for a in ("true_function", "x_support", "amplitude")):
        raise ValueError(f"tasks must be SinusoidTasks (from sample_sinusoid_tasks), got {type(tasks).__name__}")
    n = check_int(n, "n", 1)
    check_str(title, "title")
    if grid is not None:
        check_array(grid, "grid", ndim=1, dtype="real")
    ax = _axes(ax)
    grid = np.linspace(-5, 5, 200) if grid is None else grid
    curves = tasks.true_function(grid)
    for i in range(min(n, tasks.n_tasks)):
        line, = ax.plot(grid, curves[i], lw=1.5,
                        label=f"A={tasks.amplitude[i]:.2f}, φ={tasks.phase[i]:.2f}")
        ax.scatter(tasks.x_support[i, :, 0], tasks.y_support[i, :, 0], color=line.get_color(), s=25)
        ax.scatter(tasks.x_query[i, :, 0], tasks.y_query[i, :, 0], color=line.get_color(), marker="x", s=25)
    ax.set(title=title, xlabel="x", ylabel="y = A sin(x − φ)")
    ax.legend(fontsize="small", loc="upper right")
    return ax


def plot_regression_fit(x_grid, curves: Mapping[str, np.ndarray], *, x_support=None, y_support=None,
                        ax=None, title: str = "Fit", ylabel: str = "y"):
    """Draw named curves over ``x_grid`` plus optional support points."""
    check_array(x_grid, "x_grid", ndim=(1, 2), dtype="real")
    if np.ndim(x_grid) == 2 and np.shape(x_grid)[1] != 1:
        raise ValueError(f"x_grid must be (G,) or (G, 1), got shape {np.shape(x_grid)}")
    curves = check_curves(curves, "curves", int(np.size(x_grid)))
    if (x_support is None) != (y_support is None):
        raise ValueError("x_support and y_support must be given together, got "
                         f"{type(x_support).__name__} and {type(y_support).__name__}")
    if x_support is not None:
        check_array(x_support, "x_support", dtype="real")
        check_array(y_support, "y_support", dtype="real")
        check_same_length({"x_support": np.ravel(x_support), "y_support": np.ravel(y_support)})
    check_str(title, "title"), check_str(ylabel, "ylabel")
    ax = _axes(ax)
    for name, y in curves.items():
        style = "k--" if name.lower().startswith("true") else "-"
        ax.plot(np.ravel(x_grid), np.ravel(y), style, label=name)
    if x_support is not None:
        ax.scatter(np.ravel(x_support), np.ravel(y_support), color="k", zorder=5, label="support")
    ax.set(title=title, xlabel="x", ylabel=ylabel)
    ax.legend(fontsize="small")
    return ax


def plot_episode(episode, *, max_query: int = 5, title: str | None = None, fig=None):
    """Show one N-way K-shot episode as an image grid: a row per class, support then query.

    ``episode`` is a :class:`course_utils.tasks.Episode` with images (n, H, W) (ink = high).
    """
    if not all(hasattr(episode, a) for a in ("x_support", "y_support", "x_query", "y_query")):
        raise ValueError(f"episode must be an Episode (from sample_episode), got {type(episode).__name__}")
    max_query = check_int(max_query, "max_query", 1)
    check_str(title, "title", allow_none=True)
    from matplotlib.figure import FigureBase

    if fig is not None and not isinstance(fig, FigureBase):
        raise ValueError(f"fig must be a matplotlib Figure or None, got {type(fig).__name__}")
    y_s, y_q = np.asarray(episode.y_support), np.asarray(episode.y_query)
    n_way = int(y_s.max()) + 1
    k = int((y_s == 0).sum())
    q = min(max_query, int((y_q == 0).sum()))
    cols = k + q
    fig = fig or plt.figure(figsize=(1.1 * cols + 0.5, 1.1 * n_way + 0.6))
    axes = fig.subplots(n_way, cols, squeeze=False)
    for c in range(n_way):
        imgs = list(np.asarray(episode.x_support)[y_s == c][:k]) + list(np.asarray(episode.x_query)[y_q == c][:q])
        for j, img in enumerate(imgs):
            ax = axes[c, j]
            ax.imshow(np.squeeze(img), cmap="gray_r")
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_title("support" if j < k else "query", fontsize="small")
            if j == 0:
                ax.set_ylabel(f"class {c}", fontsize="small")
    fig.suptitle(title or f"{n_way}-way {k}-shot episode ({q} query images per class shown)")
    fig.tight_layout()
    return axes


def plot_learning_curves(histories: Mapping[str, Sequence[float]], *, ax=None, xlabel: str = "step",
                         ylabel: str = "loss", title: str = "Learning curves", logy: bool = False):
    """One line per named history (e.g. ``{"MAML": [...], "pretrained": [...]}``)."""
    histories = check_curves(histories, "histories")
    for k, v in (("xlabel", xlabel), ("ylabel", ylabel), ("title", title)):
        check_str(v, k)
    logy = check_bool(logy, "logy")
    ax = _axes(ax)
    for name, values in histories.items():
        ax.plot(np.arange(len(values)), values, label=name)
    if logy:
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if len(histories) > 1:
        ax.legend()
    return ax


def plot_lambda_sweep(lambdas: Sequence[float], curves: Mapping[str, Sequence[float]], *, ax=None,
                      ylabel: str = "test MSE", title: str = "λ sweep", mark_best: bool = True):
    """Metric against λ on a symlog x-axis (so λ = 0 shows), one line per named curve."""
    check_lam(lambdas, "lambdas")
    lambdas = check_sequence(lambdas, "lambdas", low=0.0)
    curves = check_curves(curves, "curves", lambdas.size)
    check_str(ylabel, "ylabel"), check_str(title, "title")
    mark_best = check_bool(mark_best, "mark_best")
    ax = _axes(ax)
    positive = lambdas[lambdas > 0]
    for name, values in curves.items():
        values = np.asarray(values, dtype=float)
        line, = ax.plot(lambdas, values, marker="o", ms=3, label=name)
        if mark_best:
            i = int(np.nanargmin(values))
            ax.scatter([lambdas[i]], [values[i]], color=line.get_color(), s=80, facecolors="none")
    ax.set_xscale("symlog", linthresh=float(positive.min()) if positive.size else 1e-4)
    ax.set(title=title, xlabel="λ (symlog scale; 0 at the left)", ylabel=ylabel)
    if len(curves) > 1:
        ax.legend(fontsize="small")
    return ax
