"""Chapter 10's learned update rules: reductions to MAML/SGD, the α-gradient formula, parity between
PyTorch and TensorFlow, the frozen θ₀ option and clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import course_utils.tensorflow as cf
import course_utils.torch as ct
from course_utils import sample_sinusoid_tasks
from course_utils.grading import max_abs_diff
from course_utils.learned import (init_meta_lstm, init_meta_sgd, meta_lstm_cell_numpy, meta_sgd_step_numpy,
                                  preprocess_gradient, split_learned)
from course_utils.nets import init_mlp

THETA = init_mlp((1, 40, 40, 1), rng=0)
TASKS = sample_sinusoid_tasks(6, 10, 10, rng=1)


def _meta_sgd_params(seed=3):
    p = init_meta_sgd(THETA, inner_lr=0.01)
    r = np.random.default_rng(seed)
    return {k: (v * r.uniform(0.5, 2.0, v.shape).astype(np.float32) if k.startswith("lr_") else v)
            for k, v in p.items()}


def test_meta_sgd_with_constant_alpha_is_maml():
    p = init_meta_sgd(THETA, inner_lr=0.01)
    lt, gt = ct.make_meta_step("metasgd")(ct.from_numpy(p), *ct.as_task_tensors(*TASKS[:4]))
    lm, gm = ct.make_meta_step("maml", inner_lr=0.01)(ct.from_numpy(THETA), *ct.as_task_tensors(*TASKS[:4]))
    assert abs(lt.item() - lm.item()) < 1e-6
    assert max_abs_diff({k: gt[k] for k in gm}, gm) < 1e-6           # θ's gradient is MAML's (second order)


def test_meta_sgd_alpha_gradient_formula():
    """∂L^q/∂α = −∇L^q(φ) ⊙ ∇L^s(θ) for one task and one step."""
    p = _meta_sgd_params()
    data = [a[:1] for a in ct.as_task_tensors(*TASKS[:4])]
    _, g = ct.make_meta_step("metasgd")(ct.from_numpy(p), *data)
    th = ct.from_numpy(THETA)
    xs, ys, xq, yq = (a[0] for a in data)
    gs = torch.autograd.grad(ct.mse_loss(ct.mlp_forward(th, xs), ys), list(th.values()))
    phi = {k: (th[k] - torch.tensor(p["lr_" + k]) * gk).detach().requires_grad_() for k, gk in zip(th, gs)}
    gq = torch.autograd.grad(ct.mse_loss(ct.mlp_forward(phi, xq), yq), list(phi.values()))
    expected = {k: -(a * b) for k, a, b in zip(th, gq, gs)}
    assert max_abs_diff(expected, {k: g["lr_" + k] for k in th}) < 1e-6


def test_meta_sgd_is_second_order():
    """The θ-gradient changes when the inner gradient is treated as a constant (first_order=True)."""
    p = ct.from_numpy(_meta_sgd_params())
    data = ct.as_task_tensors(*TASKS[:4])
    phi2 = ct.meta_sgd_adapt(p, *data[:2])
    phi1 = ct.meta_sgd_adapt(p, *data[:2], first_order=True)
    loss2 = ct.tasks_forward(phi2, data[2]).sum()
    loss1 = ct.tasks_forward(phi1, data[2]).sum()
    g2 = torch.autograd.grad(loss2, p["w0"])[0]
    g1 = torch.autograd.grad(loss1, p["w0"])[0]
    assert float((g2 - g1).abs().max()) > 1e-4


def test_meta_lstm_reduces_to_sgd():
    """Gates pinned to f = 1, i = α: the LSTM rule is plain SGD, step for step."""
    p = init_meta_lstm(THETA, hidden=4, rng=0)
    p["opt_wf"][:] = 0
    p["opt_wi"][:] = 0
    p["opt_bf"][:] = 40.0
    p["opt_bi"][:] = np.log(0.01 / 0.99)
    lstm = ct.learned_curve("metalstm", p, *TASKS[:4], steps=3)
    sgd = ct.finetune_curve(THETA, TASKS, steps=3, inner_lr=0.01, guard=False).loss
    assert np.abs(lstm - sgd).max() < 1e-5


def test_meta_lstm_gates_and_inner_lr_init():
    p = init_meta_lstm(THETA, hidden=4, inner_lr=0.02, rng=0)
    _, gates = ct.meta_lstm_adapt(ct.from_numpy(p), TASKS.x_support, TASKS.y_support, steps=2, return_gates=True)
    assert gates["input"].shape == (2, 6, 1761) and gates["forget"].shape == (2, 6, 1761)
    assert abs(gates["input"][0].mean() - 0.02) < 0.002 and gates["forget"].min() > 0.95


def test_learn_init_false_freezes_theta():
    p = init_meta_lstm(THETA, hidden=4, inner_lr=0.01, rng=0)
    sample = lambda r: sample_sinusoid_tasks(4, 10, 10, rng=r)[:4]  # noqa: E731
    out, _ = ct.meta_train("metalstm", p, sample, n_iterations=3, steps=2, outer_lr=1e-2, rng=0, progress=False,
                           learn_init=False)
    assert all(np.array_equal(out[k], p[k]) for k in THETA)
    opt = [k for k in p if k.startswith("opt_")]
    assert max_abs_diff({k: out[k] for k in opt}, {k: p[k] for k in opt}) > 0


@pytest.mark.parametrize("method,steps", [("metasgd", 1), ("metalstm", 3)])
def test_parity_meta_gradient_and_curve(method, steps):
    p = _meta_sgd_params() if method == "metasgd" else init_meta_lstm(THETA, hidden=4, inner_lr=0.01, rng=0)
    lt, gt = ct.make_meta_step(method, steps=steps)(ct.from_numpy(p), *ct.as_task_tensors(*TASKS[:4]))
    lf, gf = cf.make_meta_step(method, steps=steps)(cf.from_numpy(p, requires_grad=False),
                                                    *cf.as_task_tensors(*TASKS[:4]))
    assert abs(lt.item() - float(lf)) < 1e-5
    assert max_abs_diff(gt, gf) / max(float(v.abs().max()) for v in gt.values()) < 1e-5
    assert np.abs(ct.learned_curve(method, p, *TASKS[:4], steps=steps)
                  - cf.learned_curve(method, p, *TASKS[:4], steps=steps)).max() < 1e-4


def test_parity_training_runs():
    p = init_meta_sgd(THETA, inner_lr=0.01)
    sample = lambda r: sample_sinusoid_tasks(5, 10, 10, rng=r)[:4]  # noqa: E731
    pt, ht = ct.meta_train("metasgd", p, sample, n_iterations=10, rng=2, progress=False)
    pf, hf = cf.meta_train("metasgd", p, sample, n_iterations=10, rng=2, progress=False)
    assert np.abs(np.array(ht.loss) - np.array(hf.loss)).max() < 1e-4 and max_abs_diff(pt, pf) < 1e-4


def test_preprocessing_matches_numpy_in_both_frameworks():
    x = np.array([1e3, 2.0, 4.6e-5, 4.5e-5, 1e-9, 0.0, -1e-9, -0.3], np.float32)
    ref = preprocess_gradient(x)
    assert ref[0, 1] == 1.0 and ref[5].tolist() == [-1.0, 0.0] and ref[-1, 1] == -1.0
    assert np.abs(ct.preprocess_gradient(torch.tensor(x)).numpy() - ref).max() < 1e-5
    assert np.abs(cf.preprocess_gradient(x).numpy() - ref).max() < 1e-5


def test_numpy_references():
    assert np.allclose(meta_sgd_step_numpy([1.0, 2.0], [0.1, -0.1], [1.0, 1.0]), [0.9, 2.1])
    assert np.allclose(meta_lstm_cell_numpy([1.0], [2.0], 0.5, 0.1), [0.3])


def test_layouts_and_errors():
    p = init_meta_sgd(THETA)
    theta, lrs, opt = split_learned(p)
    assert set(theta) == set(THETA) == set(lrs) and not opt
    with pytest.raises(ValueError, match="inner_lr"):
        init_meta_sgd(THETA, inner_lr=0.0)
    with pytest.raises(ValueError, match="lr_"):
        init_meta_sgd(p)
    with pytest.raises(ValueError, match="hidden"):
        init_meta_lstm(THETA, hidden=0)
    with pytest.raises(ValueError, match="inner_lr"):
        init_meta_lstm(THETA, inner_lr=1.5)
    with pytest.raises(ValueError, match="shape"):
        split_learned({**THETA, "lr_w0": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match="lr_b0"):
        ct.meta_sgd_adapt(ct.from_numpy({k: v for k, v in p.items() if k != "lr_b0"}), TASKS.x_support, TASKS.y_support)
    with pytest.raises(ValueError, match="opt_w1"):
        cf.meta_lstm_adapt(cf.from_numpy(THETA), TASKS.x_support, TASKS.y_support)
    with pytest.raises(ValueError, match="method"):
        ct.learned_curve("maml", p, *TASKS[:4])
    with pytest.raises(ValueError, match="steps"):
        cf.learned_curve("metasgd", p, *TASKS[:4], steps=-1)
    with pytest.raises(ValueError, match="p"):
        ct.preprocess_gradient(torch.ones(2), p=0.0)
    with pytest.raises(ValueError, match="learn_init"):
        ct.make_meta_step("metalstm", learn_init="yes")
