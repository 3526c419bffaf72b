"""The framework-free MLP weights and the mirrored core helpers agree across frameworks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import course_utils.tensorflow as ctf
import course_utils.torch as cpt
from course_utils import sample_sinusoid_tasks
from course_utils.grading import max_abs_diff
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


# --------------------------------------------------------------------------- one Adam, one converter, one thread pin
def test_the_one_adam_equals_torch_optim_adam_in_both_frameworks():
    """The hand-written Adam (both halves) takes torch.optim.Adam's steps, frozen keys untouched."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    start = {"a": rng.normal(size=(3, 4)).astype(np.float32), "b": rng.normal(size=(4,)).astype(np.float32),
             "frozen": np.ones(2, np.float32)}
    reference = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in start.items() if k != "frozen"}
    opt = torch.optim.Adam(list(reference.values()), lr=3e-2, betas=(0.8, 0.99), eps=1e-6)
    p_t = {k: torch.tensor(v) for k, v in start.items()}
    p_f = {k: tf.Variable(v) for k, v in start.items()}
    s_t, s_f = cpt.adam_init(p_t), ctf.adam_init(p_f)
    for _ in range(25):
        g = {k: rng.normal(size=v.shape).astype(np.float32) for k, v in start.items() if k != "frozen"}
        for k, p in reference.items():
            p.grad = torch.tensor(g[k])
        opt.step()
        cpt.adam_step(p_t, {k: torch.tensor(v) for k, v in g.items()}, s_t, lr=3e-2, beta1=0.8, beta2=0.99, eps=1e-6)
        ctf.adam_step(p_f, {k: tf.constant(v) for k, v in g.items()}, s_f, lr=3e-2, beta1=0.8, beta2=0.99, eps=1e-6)
    ref = {k: v.detach().numpy() for k, v in reference.items()}
    assert max_abs_diff({k: p_t[k] for k in ref}, ref) < 1e-6
    assert max_abs_diff({k: p_f[k].numpy() for k in ref}, ref) < 1e-6
    assert max_abs_diff(ref, {k: start[k] for k in ref}) > 0.1  # it moved
    assert np.all(p_t["frozen"].numpy() == 1) and np.all(p_f["frozen"].numpy() == 1)


def test_adam_rejects_bad_settings(fw):
    p = fw.from_numpy({"w": np.zeros(2, np.float32)})
    state = fw.adam_init(p)
    g = {"w": p["w"] * 0}
    for kwargs, name in [({"lr": 0.0}, "lr"), ({"lr": float("nan")}, "lr"), ({"beta1": 1.0}, "beta1"),
                         ({"beta2": -0.1}, "beta2"), ({"eps": -1.0}, "eps")]:
        with pytest.raises(ValueError, match=name):
            fw.adam_step(p, g, state, **kwargs)


def test_to_tensor_is_the_one_converter(fw):
    f = fw.to_tensor(np.array([1.5, 2.0], np.float64))
    i = fw.to_tensor(np.array([1, 2], np.int32))
    u = fw.to_tensor(np.array([[0, 255]], np.uint8))
    assert "float32" in str(f.dtype) and "int64" in str(i.dtype)
    assert np.allclose(np.asarray(u), [[0.0, 1.0]])
    assert fw.to_tensor(f) is f  # tensors pass through
    assert "float32" in str(fw.to_tensor(i, "float32").dtype)
    with pytest.raises(ValueError, match="dtype"):
        fw.to_tensor(np.array(["a"]))
    xs, ys, xq, yq = fw.as_task_tensors(sample_sinusoid_tasks(2, 3, rng=0))
    assert tuple(xs.shape) == (2, 3, 1) and tuple(yq.shape)[0] == 2


def test_num_threads_restores_and_validates():
    before = torch.get_num_threads()
    with cpt.num_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    for mod in (cpt, ctf):
        with pytest.raises(ValueError, match="num_threads"):
            with mod.num_threads(0):
                pass
