"""Chapter 12's checkers accept the right answers and reject the common wrong ones; its helpers
compute what they say and validate their input."""
from __future__ import annotations

import numpy as np
import pytest

from course_utils.chapters import ch12


def test_maml_quadratic_checker():
    t = ch12.QUADRATIC_TOY
    phi = t["theta"] - t["inner_lr"] * t["a"] * (t["theta"] - t["s"])
    g1 = t["b"] * (phi - t["q"])
    g2 = (1 - t["inner_lr"] * t["a"]) * g1
    assert ch12.check_maml_quadratic({"second_order": g2, "first_order": g1})
    assert not ch12.check_maml_quadratic({"second_order": g1, "first_order": g2})
    assert not ch12.check_maml_quadratic({"second_order": t["b"] * (t["theta"] - t["q"]), "first_order": g1})
    assert not ch12.check_maml_quadratic({"second_order": "x", "first_order": 1})
    assert not ch12.check_maml_quadratic(None)


def test_ci95_checker_matches_the_course_interval():
    from course_utils import metric
    v = ch12.CI_TOY
    assert ch12.check_ci95(metric.mean_ci95(v))
    assert not ch12.check_ci95((v.mean(), 1.96 * v.std(ddof=1)))
    assert not ch12.check_ci95((v.mean(), 1.96 * v.std(ddof=0) / np.sqrt(v.size)))
    assert not ch12.check_ci95(None)


def test_layer_change_and_its_checker():
    t = ch12.LAYER_TOY
    change = ch12.layer_change(t["theta"], t["phi"])
    assert change == pytest.approx({"conv_w": 0.1 / 5.0, "head_w": 0.2 / 0.5})
    assert ch12.check_layer_change(change)
    assert not ch12.check_layer_change({k: float(np.linalg.norm(t["phi"][k] - t["theta"][k])) for k in t["phi"]})
    assert not ch12.check_layer_change(None)
    stacked = {k: np.stack([t["theta"][k], t["phi"][k]]) for k in t["theta"]}   # two tasks: no change, the toy change
    assert ch12.layer_change(t["theta"], stacked) == pytest.approx({k: v / 2 for k, v in change.items()})
    with pytest.raises(ValueError, match="all zeros"):
        ch12.layer_change({"w": np.zeros(2)}, {"w": np.ones(2)})
    with pytest.raises(ValueError, match="phi"):
        ch12.layer_change({"w": np.ones(2)}, {"w": np.ones(3)})


def test_character_subsets_are_nested_and_fixed():
    chars = (np.arange(800) % 251).astype(np.uint8).reshape(100, 2, 2, 2)   # character i starts with 8i mod 251
    small, large = ch12.character_subset(chars, 10, seed=3), ch12.character_subset(chars, 50, seed=3)
    ids = lambda x: {int(c[0, 0, 0]) for c in x}  # noqa: E731
    assert small.shape == (10, 2, 2, 2) and ids(small) <= ids(large)
    assert np.array_equal(small, ch12.character_subset(chars, 10, seed=3))
    with pytest.raises(ValueError, match="n_characters"):
        ch12.character_subset(chars, 101)


def test_methods_table_and_figures():
    assert {"maml", "protonet", "imaml", "metasgd", "pretrain"} <= set(ch12.METHODS)
    assert all(len(v) == 5 for v in ch12.METHODS.values())
    text = ch12.format_table([{"a": 1.234, "b": None}], [("a", "A", ".1f"), ("b", "B", "")])
    assert "1.2" in text and "—" in text
    fig = ch12.plot_scarcity([10, 50], {"m": [(0.5, 0.01), (0.6, 0.02)]})
    assert fig.axes[0].get_title() and fig.axes[0].get_xlabel()
    with pytest.raises(ValueError, match="results"):
        ch12.plot_scarcity([10, 50], {"m": [(0.5, 0.01)]})
    assert ch12.plot_layer_change({"m": {"a": 0.1, "b": 0.2}}).axes[0].get_ylabel()
