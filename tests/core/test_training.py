"""The framework-free training loop, its history, the method registry, Reptile's ε and grading."""
from __future__ import annotations

import numpy as np
import pytest

from course_utils.grading import max_abs_diff
from course_utils.training import (MAX_BLOCK, FinetuneCurve, MetaHistory, MethodRegistry, auto_block_size,
                                   batches, meta_test_summary, reptile_epsilon, run_meta_loop, stack_batches)


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


def _toy_loop(block_size, n_iterations=23, eval_every=5):
    """A toy 'training': θ accumulates the batches; the loss of iteration i is θ before its update."""
    theta = {"w": 0.0}
    calls = []

    def iterate(i, batch):
        calls.append(i)
        if block_size == 1:
            loss, theta["w"] = theta["w"], theta["w"] + float(batch[0])
            return loss
        losses = []
        for v in np.asarray(batch[0]):  # the block: one row per iteration
            losses.append(theta["w"])
            theta["w"] += float(v)
        return np.array(losses)

    hist = run_meta_loop(iterate, lambda r: (r.normal(), r.integers(10, size=3)), n_iterations=n_iterations,
                         rng=np.random.default_rng(7), get_params=lambda: dict(theta), method="toy",
                         framework="numpy", eval_fn=lambda p: p["w"], eval_every=eval_every, progress=False,
                         block_size=block_size)
    return hist, theta, calls


@pytest.mark.parametrize("block_size", [None, 4, 100])
def test_blocks_give_the_same_history_as_one_iteration_at_a_time(block_size):
    ref, theta_ref, calls_ref = _toy_loop(1)
    hist, theta, calls = _toy_loop(block_size)
    assert calls_ref == list(range(23))
    assert hist.loss == ref.loss and theta == theta_ref  # same task stream, same results
    assert hist.eval_iterations == ref.eval_iterations == [0, 5, 10, 15, 20, 23] and hist.eval == ref.eval
    assert calls[:2] == [0, 1]  # iteration 0 runs alone (tracing), then blocks that stop at evaluations
    assert set(range(0, 23, 5)) <= set(calls) and len(calls) < len(calls_ref)
    if block_size == 4:
        assert calls == [0, 1, 5, 9, 10, 14, 15, 19, 20]
    assert hist.n_iterations == 23 and hist.seconds >= hist.trace_seconds >= 0


def test_block_helpers_validate():
    block = stack_batches([(np.zeros((2, 3)), 1.0), (np.ones((2, 3)), 2.0)])
    assert block[0].shape == (2, 2, 3) and block[1].tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="same shapes"):
        stack_batches([(np.zeros(2),), (np.zeros(3),)])
    with pytest.raises(ValueError, match="at least one"):
        stack_batches([])
    sine = (np.zeros((25, 10, 1), np.float32),) * 4  # chapter 6's meta-batch: 4 KB
    omniglot = (np.zeros((8, 5, 28, 28), np.uint8), np.zeros((8, 5)), np.zeros((8, 15, 28, 28), np.uint8),
                np.zeros((8, 15)))
    assert auto_block_size(sine, 10_000) == MAX_BLOCK and auto_block_size(sine, 7) == 7
    assert 1 < auto_block_size(omniglot, 10_000) < 50
    with pytest.raises(ValueError, match="block_size"):
        run_meta_loop(lambda i, b: 0.0, lambda r: (0,), n_iterations=3, rng=np.random.default_rng(0),
                      get_params=dict, method="toy", framework="x", block_size=0, progress=False)
    with pytest.raises(ValueError, match="2 losses for a block of 1"):
        run_meta_loop(lambda i, b: [0.0, 0.0], lambda r: (0,), n_iterations=3, rng=np.random.default_rng(0),
                      get_params=dict, method="toy", framework="x", block_size=None, progress=False)


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
