"""Chapter 10's checkers accept the right answers and reject the common wrong ones; its helpers
validate their input."""
from __future__ import annotations

import numpy as np
import pytest

from course_utils.chapters import ch10
from course_utils.learned import init_meta_sgd
from course_utils.nets import init_mlp


def test_meta_sgd_step_checker():
    t = ch10.SGD_TOY
    assert ch10.check_meta_sgd_step(t["theta"] - t["alpha"] * t["grad"])
    assert not ch10.check_meta_sgd_step(None)
    assert not ch10.check_meta_sgd_step(t["theta"] + t["alpha"] * t["grad"])
    assert not ch10.check_meta_sgd_step(t["theta"] - t["alpha"].mean() * t["grad"])


def test_sgd_gates_checker():
    g = ch10.GATE_TOY
    assert ch10.check_sgd_gates({"forget": 1 - g["alpha"] * g["weight_decay"], "input": g["alpha"]})
    assert not ch10.check_sgd_gates({"forget": 1.0, "input": g["alpha"]})
    assert not ch10.check_sgd_gates({"forget": "a", "input": 1})
    assert not ch10.check_sgd_gates(None)


def test_preprocessing_checker():
    x = ch10.PREPROCESS_TOY
    assert ch10.check_preprocessing(np.array([[np.log(2.0) / 10, 1.0], [-1.0, -3e-5 * np.exp(10)], [-1.0, 0.0]]))
    assert not ch10.check_preprocessing(np.stack([np.log(np.abs(x) + 1e-30) / 10, np.sign(x)], -1))
    assert not ch10.check_preprocessing(None)


def test_step_size_table_and_plots():
    p = init_meta_sgd(init_mlp((1, 4, 1), rng=0), inner_lr=0.01)
    p["lr_w0"][0, 0] = -0.5
    table = ch10.step_size_table(p)
    assert set(table) == {"w0", "b0", "w1", "b1"} and table["w0"]["negative"] == 0.25 and table["w0"]["min"] == -0.5
    assert ch10.plot_step_sizes(p).axes[0].get_title()
    gates = {"forget": np.full((3, 2, 5), 0.99), "input": np.full((3, 2, 5), 0.01)}
    assert len(ch10.plot_gates(gates).axes) == 2
    with pytest.raises(ValueError, match="lr_"):
        ch10.step_size_table(init_mlp((1, 4, 1), rng=0))
    with pytest.raises(ValueError, match="gates"):
        ch10.plot_gates({"forget": np.zeros((3, 2))})
