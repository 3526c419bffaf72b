"""PyTorch and TensorFlow give the same numbers from the same NumPy weights (chapter 2).

Outputs, gradients and the second-order MAML meta-gradient must agree to float32 tolerance;
the second-order meta-gradient must also match float64 references (exact for a linear model,
a finite difference for a ReLU MLP), and a first-order meta-gradient must NOT match, so this
parity check can fail.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import course_utils.tensorflow as ctf
import course_utils.torch as ct
from course_utils import sample_sinusoid_tasks
from course_utils.chapters import ch02
from course_utils.grading import max_abs_diff
from course_utils.nets import init_mlp, mlp_forward_numpy

import tensorflow as tf  # noqa: E402  (after course_utils.tensorflow set the env variables)

RTOL, ATOL = 1e-4, 1e-5  # float32; measured differences are ~1e-7 (see chapter 2)
INNER_LR = 0.01


@pytest.fixture(scope="module")
def params():
    return init_mlp((1, 40, 40, 1), rng=0)


@pytest.fixture(scope="module")
def tasks():
    return sample_sinusoid_tasks(4, 10, 10, rng=1)


def assert_params_close(a, b, rtol=RTOL, atol=ATOL):
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=atol, err_msg=k)


def params_close(a, b, rtol=RTOL, atol=ATOL) -> bool:
    return all(np.allclose(a[k], b[k], rtol=rtol, atol=atol) for k in a)


def test_outputs_match(params, tasks):
    x = tasks.x_query.reshape(-1, 1)
    out_t = ct.mlp_forward(ct.from_numpy(params), torch.from_numpy(x)).detach().numpy()
    out_f = ctf.mlp_forward(ctf.from_numpy(params), tf.constant(x)).numpy()
    np.testing.assert_allclose(out_t, out_f, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out_t, mlp_forward_numpy(params, x), rtol=1e-5, atol=1e-6)


def test_gradients_match_each_other_and_numpy_backprop(params, tasks):
    x, y = tasks.x_support[0], tasks.y_support[0]
    pt = ct.from_numpy(params)
    loss_t = ct.mse_loss(ct.mlp_forward(pt, torch.from_numpy(x)), torch.from_numpy(y))
    g_t = dict(zip(pt, (g.numpy() for g in torch.autograd.grad(loss_t, list(pt.values())))))
    pf = ctf.from_numpy(params)
    with tf.GradientTape() as tape:
        loss_f = ctf.mse_loss(ctf.mlp_forward(pf, tf.constant(x)), tf.constant(y))
    g_f = dict(zip(pf, (g.numpy() for g in tape.gradient(loss_f, list(pf.values())))))
    loss_np, g_np = ch02.mlp_loss_and_grad(params, x, y)
    assert float(loss_t.detach()) == pytest.approx(float(loss_f), rel=1e-5)
    assert float(loss_t.detach()) == pytest.approx(loss_np, rel=1e-5)
    assert_params_close(g_t, g_f)
    assert_params_close(g_t, g_np)


@pytest.mark.parametrize("steps", [1, 2])
def test_second_order_meta_gradient_parity(params, tasks, steps):
    lt, gt = ct.maml_meta_gradient(params, *tasks[:4], inner_lr=INNER_LR, steps=steps)
    lf, gf = ctf.maml_meta_gradient(params, *tasks[:4], inner_lr=INNER_LR, steps=steps)
    assert lt == pytest.approx(lf, rel=1e-5)
    assert_params_close(gt, gf)


@pytest.mark.parametrize("torch_first_order,tf_first_order", [
    (False, False), (True, True), (False, True), (True, False)])
def test_parity_detects_a_first_order_side(params, tasks, torch_first_order, tf_first_order):
    """Same order on both sides → parity holds; one side first-order → the parity check fails."""
    _, gt = ct.maml_meta_gradient(params, *tasks[:4], inner_lr=INNER_LR, first_order=torch_first_order)
    _, gf = ctf.maml_meta_gradient(params, *tasks[:4], inner_lr=INNER_LR, first_order=tf_first_order)
    if torch_first_order == tf_first_order:
        assert_params_close(gt, gf)
    else:
        assert not params_close(gt, gf)
        with pytest.raises(AssertionError):
            assert_params_close(gt, gf)
        # far outside the tolerance, not a rounding accident
        assert max_abs_diff(gt, gf) > 1000 * ATOL


def test_second_order_is_exact_for_a_linear_model(fw, tasks):
    """For f(x) = xW + b with MSE the Hessian is known: the exact meta-gradient is written by hand."""
    lin = init_mlp((1, 1), rng=3)
    for first_order in (False, True):
        loss_ref, ref = ch02.linear_meta_gradient(lin, *tasks[:4], inner_lr=0.05, first_order=first_order)
        loss, got = fw.maml_meta_gradient(lin, *tasks[:4], inner_lr=0.05, first_order=first_order)
        assert loss == pytest.approx(loss_ref, rel=1e-5)
        assert_params_close(got, ref)
    # and the Hessian term matters: the exact second-order and first-order answers differ
    _, so = ch02.linear_meta_gradient(lin, *tasks[:4], inner_lr=0.05)
    _, fo = ch02.linear_meta_gradient(lin, *tasks[:4], inner_lr=0.05, first_order=True)
    assert max_abs_diff(so, fo) > 0.1


def test_second_order_matches_float64_finite_difference(fw, params, tasks):
    """The MLP meta-gradient projected on random directions equals a float64 finite difference of
    the one-step MAML objective (NumPy backprop); the first-order gradient does not."""
    _, so = fw.maml_meta_gradient(params, *tasks[:4], inner_lr=INNER_LR)
    _, fo = fw.maml_meta_gradient(params, *tasks[:4], inner_lr=INNER_LR, first_order=True)
    objective = lambda p: ch02.maml_loss_numpy(p, *tasks[:4], inner_lr=INNER_LR)  # noqa: E731
    rng = np.random.default_rng(11)
    for _ in range(3):
        v = {k: rng.standard_normal(a.shape) for k, a in params.items()}
        fd = ch02.directional_derivative(objective, params, v, eps=1e-6)
        dot = lambda g, v=v: sum(float((np.asarray(g[k], np.float64) * v[k]).sum()) for k in g)  # noqa: E731
        assert dot(so) == pytest.approx(fd, rel=1e-3, abs=1e-4)
        assert abs(dot(fo) - fd) > 10 * (1e-3 * abs(fd) + 1e-4)


def test_meta_gradient_by_hand_matches_autodiff(fw, params, tasks):
    """(I - αH)∇L_q(φ) from an explicit Hessian-vector product equals autodiff through the step."""
    l_auto, g_auto = fw.maml_meta_gradient(params, *tasks[:4], inner_lr=INNER_LR)
    l_hand, g_hand = fw.meta_gradient_by_hand(params, *tasks[:4], inner_lr=INNER_LR)
    assert l_hand == pytest.approx(l_auto, rel=1e-5)
    assert_params_close(g_hand, g_auto)


def test_meta_gradient_by_hand_parity(params, tasks):
    _, gt = ct.meta_gradient_by_hand(params, *tasks[:4], inner_lr=INNER_LR)
    _, gf = ctf.meta_gradient_by_hand(params, *tasks[:4], inner_lr=INNER_LR)
    assert_params_close(gt, gf)


def test_hessian_vector_product_parity_and_exactness():
    """HVP of the MLP support loss agrees across frameworks and with the full Hessian."""
    small = init_mlp((1, 6, 1), rng=5)
    t = sample_sinusoid_tasks(1, 10, rng=2)
    x, y = t.x_support[0], t.y_support[0]
    rng = np.random.default_rng(0)
    v = {k: rng.standard_normal(a.shape).astype(np.float32) for k, a in small.items()}
    hv_t = ct.hessian_vector_product(
        lambda p: ct.mse_loss(ct.mlp_forward(p, torch.from_numpy(x)), torch.from_numpy(y)),
        ct.from_numpy(small), {k: torch.from_numpy(a) for k, a in v.items()})
    hv_f = ctf.hessian_vector_product(
        lambda p: ctf.mse_loss(ctf.mlp_forward(p, tf.constant(x)), tf.constant(y)), ctf.from_numpy(small), v)
    hv_t = {k: a.numpy() for k, a in hv_t.items()}
    hv_f = {k: a.numpy() for k, a in hv_f.items()}
    assert_params_close(hv_t, hv_f)
    # full Hessian in float64 with torch.autograd.functional.hessian on the flattened parameters
    names = list(small)
    shapes = [small[k].shape for k in names]
    sizes = [int(np.prod(s)) for s in shapes]
    x64, y64 = torch.from_numpy(x).double(), torch.from_numpy(y).double()

    def flat_loss(flat):
        parts = torch.split(flat, sizes)
        p = {k: part.reshape(s) for k, part, s in zip(names, parts, shapes)}
        return ct.mse_loss(ct.mlp_forward(p, x64), y64)

    theta = torch.cat([torch.from_numpy(small[k].astype(np.float64)).ravel() for k in names])
    hess = torch.autograd.functional.hessian(flat_loss, theta).numpy()
    expected = hess @ np.concatenate([v[k].astype(np.float64).ravel() for k in names])
    got = np.concatenate([hv_t[k].ravel() for k in names])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert np.abs(expected).max() > 1e-2  # a real, non-zero curvature


def test_copying_weights_across_frameworks_round_trips(params):
    back = ctf.to_numpy(ctf.from_numpy(ct.to_numpy(ct.from_numpy(params))))
    for k in params:
        np.testing.assert_array_equal(back[k], params[k])
