"""The framework-free training loop, its history, the method registry, Reptile's ε and grading."""
from __future__ import annotations

import numpy as np
import pytest

from course_utils.grading import max_abs_diff
from course_utils.training import (FinetuneCurve, MetaHistory, MethodRegistry, batches, meta_test_summary,
                                   reptile_epsilon, run_meta_loop)


def test_run_meta_loop_records_a_history():
    seen = []

    def iterate(i, batch):
        seen.append((i, batch))
        return 10.0 - i

    rng = np.random.default_rng(0)
    hist = run_meta_loop(iterate, lambda r: r.integers(100), n_iterations=5, rng=rng, get_params=lambda: {"w": 1},
                         method="toy", framework="numpy", eval_fn=lambda p: p["w"] * 2.0, eval_every=2,
                         progress=False)
    assert isinstance(hist, MetaHistory) and hist.loss == [10.0, 9.0, 8.0, 7.0, 6.0]
    assert [i for i, _ in seen] == list(range(5))
    assert [b for _, b in seen] == list(np.random.default_rng(0).integers(100, size=5))  # one draw per iteration
    assert hist.eval_iterations == [0, 2, 4, 5] and hist.eval == [2.0] * 4
    assert hist.n_iterations == 5 and hist.seconds >= hist.trace_seconds >= 0 and hist.iterations_per_second > 0
    with pytest.raises(ValueError, match="n_iterations"):
        run_meta_loop(iterate, lambda r: 0, n_iterations=0, rng=rng, get_params=dict, method="toy", framework="x")


def test_registry_checks_names_updates_and_options():
    reg = MethodRegistry()

    def make(*, inner_lr, steps, first_order, forward, loss_fn, head=None):
        return ("built", head)

    reg.register("toy", make)
    assert reg.names() == ("toy",) and "toy" in reg
    assert reg.get("toy").build(inner_lr=0.1, steps=1, first_order=False, forward=None, loss_fn=None,
                                head=("w",)) == ("built", ("w",))
    with pytest.raises(ValueError, match=r"does not take the option\(s\) \['heads'\].*\['head'\]"):
        reg.get("toy").build(inner_lr=0.1, steps=1, first_order=False, forward=None, loss_fn=None, heads=1)
    with pytest.raises(ValueError, match="method must be one of"):
        reg.get("nope")
    with pytest.raises(ValueError, match="update"):
        reg.register("bad", make, update="sideways")
    with pytest.raises(ValueError, match="make_step"):
        reg.register("bad", 3)


def test_reptile_epsilon_schedule_and_errors():
    assert reptile_epsilon(0, 10) == 1.0 and reptile_epsilon(10, 10) == 0.0
    assert reptile_epsilon(5, 10, epsilon_start=0.5, epsilon_end=0.1) == pytest.approx(0.3)
    for kwargs, name in [(dict(iteration=-1, n_iterations=3), "iteration"),
                         (dict(iteration=0, n_iterations=True), "n_iterations"),
                         (dict(iteration=0, n_iterations=3, epsilon_start=float("nan")), "epsilon_start"),
                         (dict(iteration=0, n_iterations=3, epsilon_start=0.0), "epsilon_start"),
                         (dict(iteration=0, n_iterations=3, epsilon_end=-0.1), "epsilon_end")]:
        with pytest.raises(ValueError, match=name):
            reptile_epsilon(**kwargs)


def test_batches_cycle_and_validate():
    assert batches(6, 2, 4) == [slice(0, 2), slice(2, 4), slice(4, 6), slice(0, 2)]
    assert batches(5, None, 2) == [slice(0, 5)] * 2
    with pytest.raises(ValueError, match="batch_size"):
        batches(5, 6, 1)


def test_meta_test_summary_and_finetune_curve_type():
    out = meta_test_summary([np.array([1.0, 3.0])], [np.array([1.0, 0.0])], True)
    assert out["loss"] == 2.0 and out["accuracy"] == 0.5 and out["n_tasks"] == 2 and out["accuracy_ci95"] > 0
    curve = FinetuneCurve(np.zeros((2, 3)), None, np.zeros(3, bool))
    assert curve.loss.shape == (2, 3) and curve.accuracy is None


def test_max_abs_diff():
    assert max_abs_diff({"a": np.array([1.0, 2.0])}, {"a": np.array([1.5, 2.0])}) == 0.5
    assert max_abs_diff(np.zeros(3), np.ones(3)) == 1.0
    with pytest.raises(ValueError, match="same keys"):
        max_abs_diff({"a": 1}, {"b": 1})
    with pytest.raises(ValueError, match="same shape"):
        max_abs_diff(np.zeros(2), np.zeros(3))
