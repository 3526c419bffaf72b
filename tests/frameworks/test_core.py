"""The framework-free MLP weights and the mirrored core helpers agree across frameworks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import course_utils.tensorflow as ctf
import course_utils.torch as cpt
from course_utils import sample_sinusoid_tasks
from course_utils.nets import init_mlp, layer_sizes, mlp_forward_numpy


def test_init_mlp_layout_and_bounds():
    p = init_mlp((1, 40, 40, 1), rng=0)
    assert list(p) == ["w0", "b0", "w1", "b1", "w2", "b2"]
    assert p["w1"].shape == (40, 40) and p["b2"].shape == (1,) and p["w0"].dtype == np.float32
    assert np.abs(p["w1"]).max() <= 1 / np.sqrt(40)
    assert layer_sizes(p) == (1, 40, 40, 1)
    with pytest.raises(ValueError, match="sizes"):
        init_mlp((3,))
    with pytest.raises(ValueError, match="sizes"):
        init_mlp((3, 0))


def test_mirrored_names():
    core = {"from_numpy", "to_numpy", "mlp_forward", "mse_loss", "cross_entropy_loss", "accuracy",
            "adapt", "maml_objective", "maml_meta_gradient"}
    assert core <= set(cpt.__all__) and core <= set(ctf.__all__)
    assert set(cpt.__all__) == set(ctf.__all__), "course_utils.torch and .tensorflow must mirror each other"


def test_forward_and_roundtrip_agree():
    p = init_mlp((1, 40, 40, 1), rng=1)
    x = np.linspace(-5, 5, 17, dtype=np.float32)[:, None]
    ref = mlp_forward_numpy(p, x)
    out_t = cpt.mlp_forward(cpt.from_numpy(p), torch.as_tensor(x))
    out_f = ctf.mlp_forward(ctf.from_numpy(p), x)
    np.testing.assert_allclose(out_t.detach().numpy(), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(out_f), ref, rtol=1e-5, atol=1e-6)
    for k, v in cpt.to_numpy(cpt.from_numpy(p)).items():
        np.testing.assert_array_equal(v, p[k])
    for k, v in ctf.to_numpy(ctf.from_numpy(p)).items():
        np.testing.assert_array_equal(v, p[k])


@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("steps", [1, 2])
def test_meta_gradient_parity(first_order, steps):
    p = init_mlp((1, 40, 40, 1), rng=2)
    b = sample_sinusoid_tasks(4, 10, rng=3)
    lt, gt = cpt.maml_meta_gradient(p, *b[:4], inner_lr=0.01, steps=steps, first_order=first_order)
    lf, gf = ctf.maml_meta_gradient(p, *b[:4], inner_lr=0.01, steps=steps, first_order=first_order)
    assert np.isclose(lt, lf, rtol=1e-5)
    for k in p:
        np.testing.assert_allclose(gt[k], gf[k], rtol=1e-4, atol=2e-5)


def test_second_order_differs_from_first_order():
    p = init_mlp((1, 40, 40, 1), rng=2)
    b = sample_sinusoid_tasks(4, 10, rng=3)
    _, g2 = cpt.maml_meta_gradient(p, *b[:4], inner_lr=0.05)
    _, g1 = cpt.maml_meta_gradient(p, *b[:4], inner_lr=0.05, first_order=True)
    diff = max(np.abs(g2[k] - g1[k]).max() for k in p)
    scale = max(np.abs(g2[k]).max() for k in p)
    assert diff > 1e-3 * scale and diff > 1e-4


def test_second_order_matches_exact_hessian_for_linear_regression():
    # Linear model f(x) = x w + b with MSE: the Hessian is constant, so the exact MAML
    # meta-gradient is (I - α H_s) ∇L_q(φ) with φ = θ - α ∇L_s(θ), written out in float64.
    rng = np.random.default_rng(0)
    p = {"w0": rng.normal(size=(3, 1)).astype(np.float32), "b0": rng.normal(size=(1,)).astype(np.float32)}
    xs, ys = rng.normal(size=(1, 8, 3)).astype(np.float32), rng.normal(size=(1, 8, 1)).astype(np.float32)
    xq, yq = rng.normal(size=(1, 6, 3)).astype(np.float32), rng.normal(size=(1, 6, 1)).astype(np.float32)
    alpha = 0.3
    A_s = np.hstack([xs[0], np.ones((8, 1))]).astype(np.float64)
    A_q = np.hstack([xq[0], np.ones((6, 1))]).astype(np.float64)
    theta = np.concatenate([p["w0"][:, 0], p["b0"]]).astype(np.float64)
    grad_s = 2 / 8 * A_s.T @ (A_s @ theta - ys[0, :, 0])
    H_s = 2 / 8 * A_s.T @ A_s
    phi = theta - alpha * grad_s
    grad_q = 2 / 6 * A_q.T @ (A_q @ phi - yq[0, :, 0])
    exact = (np.eye(4) - alpha * H_s) @ grad_q
    for module in (cpt, ctf):
        _, g = module.maml_meta_gradient(p, xs, ys, xq, yq, inner_lr=alpha)
        got = np.concatenate([g["w0"][:, 0], g["b0"]])
        np.testing.assert_allclose(got, exact, rtol=1e-4, atol=1e-5)
        _, g1 = module.maml_meta_gradient(p, xs, ys, xq, yq, inner_lr=alpha, first_order=True)
        np.testing.assert_allclose(np.concatenate([g1["w0"][:, 0], g1["b0"]]), grad_q, rtol=1e-4, atol=1e-5)
        assert not np.allclose(np.concatenate([g1["w0"][:, 0], g1["b0"]]), exact, rtol=1e-2)


def test_adapt_rejects_negative_steps():
    p = init_mlp((1, 4, 1), rng=0)
    with pytest.raises(ValueError, match="steps"):
        cpt.adapt(cpt.from_numpy(p), None, None, steps=-1)
    with pytest.raises(ValueError, match="steps"):
        ctf.adapt(ctf.from_numpy(p), None, None, steps=-1)
