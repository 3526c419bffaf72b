"""Slider factories work headlessly; plot helpers draw labelled figures."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from course_utils import plots, sample_sinusoid_tasks, sample_episode
from course_utils.widgets import (float_slider, int_slider, lambda_grid, lambda_slider,
                                  make_interactive, set_values)


def test_lambda_grid_and_slider_reach_zero_and_max():
    grid = lambda_grid(-3, 1, per_decade=2)
    assert grid[0] == 0 and np.isclose(grid[1], 1e-3) and np.isclose(grid[-1], 10)
    assert np.all(np.diff(grid) > 0)
    s = lambda_slider(min_exp=-3, max_exp=1, per_decade=2, value=0.012)
    assert np.isclose(s.value, 10 ** -2)  # nearest grid point
    values = [v for _, v in s.options]
    assert values[0] == 0.0 and np.isclose(values[-1], 10)
    with pytest.raises(ValueError, match="min_exp"):
        lambda_grid(1, 1)
    with pytest.raises(ValueError, match="per_decade"):
        lambda_grid(-1, 1, per_decade=0)


def test_interactive_result_follows_sliders():
    calls = []

    def callback(lam, k):
        calls.append((lam, k))
        return {"penalty": lam * k}

    w = make_interactive(callback, lam=lambda_slider(), k=int_slider("K", value=2, min=1, max=5))
    assert w.result == {"penalty": 0.0}  # filled at creation
    res = set_values(w, lam=1.0, k=4)
    assert res == {"penalty": 4.0} and w.result == res
    w.children[1].value = 5  # setting .value directly re-runs the callback too
    assert w.result == {"penalty": 5.0}
    with pytest.raises(ValueError, match="unknown control"):
        set_values(w, mu=1)


def test_only_the_given_controls_become_controls():
    """Neither a default nor an annotation turns a parameter into a control (ipywidgets 8 made one
    from ``draw=True``; ipywidgets 7, Colab's, made a text box holding ``'bool'`` from the
    annotation under ``from __future__ import annotations``, which this module uses)."""
    seen = []

    def view(lam: float, k_shot: int, draw: bool = True, title: str = "fit"):
        seen.append((lam, k_shot, draw, title))
        return {"draw": draw, "title": title, "k": k_shot}

    w = make_interactive(view, lam=lambda_slider(value=0.1), k_shot=int_slider("K", value=3, min=1, max=9))
    assert [c._kwarg for c in w.kwargs_widgets] == ["lam", "k_shot"]
    assert w.result == {"draw": True, "title": "fit", "k": 3} and seen[-1][2] is True
    assert set_values(w, k_shot=5)["k"] == 5
    assert w.children[0].description.startswith("λ") and w.children[1].description == "K"
    with pytest.raises(ValueError, match="at least one control"):
        make_interactive(view)
    with pytest.raises(ValueError, match="unknown"):
        make_interactive(view, mu=lambda_slider())


def test_a_chapter_widget_has_only_its_sliders():
    """A chapter factory (one that needs no data): its controls are exactly its two sliders."""
    from course_utils.chapters import ch04

    w = ch04.gaussian_widget(seed=0, k_shot=2)
    assert [c._kwarg for c in w.kwargs_widgets] == ["lam", "k_shot"] and w.result is not None


def test_float_slider():
    s = float_slider("T", value=2.0, min=0.5, max=10.0)
    assert s.value == 2.0 and s.continuous_update is False


def _labelled(ax):
    return ax.get_title() and ax.get_xlabel() and ax.get_ylabel()


def test_plot_helpers_draw_labelled_figures():
    tasks = sample_sinusoid_tasks(5, 10, rng=0)
    ax = plots.plot_sinusoid_tasks(tasks, n=3)
    assert _labelled(ax) and len(ax.lines) == 3 and len(ax.collections) == 6
    ax = plots.plot_learning_curves({"a": [3, 2, 1], "b": [3, 3, 2]}, logy=True)
    assert _labelled(ax) and ax.get_legend() is not None
    ax = plots.plot_lambda_sweep([0, 1e-3, 1e-2, 1e-1], {"L2": [1, 0.5, 0.4, 0.9], "L2-SP": [1, 0.4, 0.3, 0.6]})
    assert _labelled(ax) and ax.get_xscale() == "symlog" and len(ax.lines) == 2
    ax = plots.plot_regression_fit(np.linspace(-5, 5, 10), {"true": np.zeros(10), "fit": np.ones(10)},
                                   x_support=[0.0], y_support=[1.0])
    assert _labelled(ax)
    images = np.random.default_rng(0).integers(0, 255, size=(6, 20, 8, 8), dtype=np.uint8)
    ep = sample_episode(images, n_way=3, k_shot=2, n_query=4, rng=0)
    axes = plots.plot_episode(ep, max_query=3)
    assert axes.shape == (3, 5)
    assert axes[0, 0].get_title() == "support" and axes[0, 4].get_title() == "query"
    plt.close("all")
