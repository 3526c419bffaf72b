"""Chapter 5's implicit MAML: CG solves SPD systems, the implicit gradient is the exact one on a linear
model, the batched meta-gradient equals a per-task loop, PyTorch and TensorFlow agree, ``meta_train("imaml")``
runs in both, memory does not grow with the inner steps, and bad input gets clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import course_utils.tensorflow as cf
import course_utils.torch as ct
from course_utils import sample_sinusoid_tasks
from course_utils.grading import max_abs_diff
from course_utils.implicit import conjugate_gradient_numpy, linear_implicit_gradient, linear_proximal_solution
from course_utils.nets import init_mlp

THETA = init_mlp((1, 40, 40, 1), rng=0)
TASKS = sample_sinusoid_tasks(4, 10, 10, rng=1)
KW = dict(lam=0.5, inner_lr=0.01, steps=5, cg_steps=3)


def _spd(n, seed):
    m = np.random.default_rng(seed).normal(size=(n, n))
    return m @ m.T + 0.5 * np.eye(n)


def _linear_problem(seed=0, tasks=2, d=3):
    r = np.random.default_rng(seed)
    fs, fq = (r.normal(size=(tasks, n, d)).astype(np.float32) for n in (7, 9))
    ys, yq = (r.normal(size=(tasks, n, 1)).astype(np.float32) for n in (7, 9))
    lin = {"w0": r.normal(size=(d, 1)).astype(np.float32), "b0": r.normal(size=(1,)).astype(np.float32)}
    return lin, fs, ys, fq, yq


def _aug(f):
    return np.concatenate([f, np.ones((f.shape[0], 1))], 1).astype(np.float64)


@pytest.mark.parametrize("n", [2, 5, 8])
def test_numpy_cg_is_exact_after_n_steps(n):
    a, b = _spd(n, n), np.random.default_rng(n + 1).normal(size=n)
    assert np.allclose(conjugate_gradient_numpy(a, b), np.linalg.solve(a, b), atol=1e-8)
    if n > 2:  # fewer steps: not yet the solution, but a smaller residual than x = 0
        x = conjugate_gradient_numpy(a, b, steps=1)
        assert 1e-6 < np.linalg.norm(a @ x - b) < np.linalg.norm(b)


def test_framework_cg_solves_batched_spd_systems(fw):
    mats = [_spd(4, s) for s in (1, 2, 3)]
    b = np.random.default_rng(9).normal(size=(3, 4)).astype(np.float32)
    if fw is ct:
        a_t = torch.tensor(np.stack(mats), dtype=torch.float32)
        matvec = lambda v: {"x": torch.einsum("tij,tj->ti", a_t, v["x"])}  # noqa: E731
        x = ct.conjugate_gradient(matvec, {"x": torch.tensor(b)}, steps=4, batch_dims=1)["x"].numpy()
    else:
        import tensorflow as tf
        a_t = tf.constant(np.stack(mats), tf.float32)
        matvec = lambda v: {"x": tf.einsum("tij,tj->ti", a_t, v["x"])}  # noqa: E731
        x = cf.conjugate_gradient(matvec, {"x": tf.constant(b)}, steps=4, batch_dims=1)["x"].numpy()
    ref = np.stack([np.linalg.solve(m, bi) for m, bi in zip(mats, b)])
    assert np.abs(x - ref).max() < 1e-3 * np.abs(ref).max()


def test_linear_closed_form_gradient_matches_finite_differences():
    lin, fs, ys, fq, yq = _linear_problem()
    th = np.concatenate([lin["w0"][:, 0], lin["b0"]]).astype(np.float64)
    loss = lambda t: np.mean((_aug(fq[0]) @ linear_proximal_solution(_aug(fs[0]), ys[0, :, 0], t, 1.5)  # noqa: E731
                              - yq[0, :, 0]) ** 2)
    fd = np.array([(loss(th + 1e-6 * e) - loss(th - 1e-6 * e)) / 2e-6 for e in np.eye(4)])
    _, g = linear_implicit_gradient(_aug(fs[0]), ys[0, :, 0], _aug(fq[0]), yq[0, :, 0], th, 1.5)
    assert np.abs(g - fd).max() < 1e-6


def test_implicit_gradient_equals_exact_gradient_on_a_linear_model(fw):
    lin, fs, ys, fq, yq = _linear_problem()
    th = np.concatenate([lin["w0"][:, 0], lin["b0"]]).astype(np.float64)
    exact = np.mean([linear_implicit_gradient(_aug(fs[t]), ys[t, :, 0], _aug(fq[t]), yq[t, :, 0], th, 1.5)[1]
                     for t in range(2)], 0)
    loss, g = fw.imaml_meta_gradient(lin, fs, ys, fq, yq, lam=1.5, inner_lr=0.1, steps=200, cg_steps=4)
    got = np.concatenate([np.asarray(g["w0"])[:, 0], np.asarray(g["b0"])])
    assert np.abs(got - exact).max() < 1e-4
    ref_loss = np.mean([linear_implicit_gradient(_aug(fs[t]), ys[t, :, 0], _aug(fq[t]), yq[t, :, 0], th, 1.5)[0]
                        for t in range(2)])
    assert abs(float(loss) - ref_loss) < 1e-4


def test_batched_meta_gradient_equals_a_loop_over_tasks():
    _, g_all = ct.imaml_meta_gradient(THETA, *TASKS[:4], **KW)
    per_task = [ct.imaml_meta_gradient(THETA, *(a[t:t + 1] for a in TASKS[:4]), **KW)[1] for t in range(4)]
    mean = {k: sum(g[k] for g in per_task) / 4 for k in g_all}
    assert max_abs_diff(g_all, mean) < 1e-5


def test_adapt_is_the_proximal_gradient_step():
    phi = ct.imaml_adapt(THETA, TASKS.x_support, TASKS.y_support, lam=0.5, inner_lr=0.01, steps=1)
    g = ct.adapt_tasks(ct.from_numpy(THETA), TASKS.x_support, TASKS.y_support, inner_lr=0.01, steps=1)
    # one step from φ = θ: the proximal term is zero there, so it is MAML's SGD step
    assert max_abs_diff(phi, {k: v.detach() for k, v in g.items()}) < 1e-6
    assert all(not v.requires_grad for v in phi.values())


def test_torch_tensorflow_parity():
    lt, gt = ct.imaml_meta_gradient(THETA, *TASKS[:4], **KW)
    lf, gf = cf.imaml_meta_gradient(THETA, *TASKS[:4], **KW)
    scale = max(float(v.abs().max()) for v in gt.values())
    assert abs(float(lt) - float(lf)) < 1e-5 and max_abs_diff(gt, gf) < 1e-4 * scale
    inner = dict(lam=0.5, inner_lr=0.01, steps=5)
    assert max_abs_diff(ct.imaml_adapt(THETA, *TASKS[:2], **inner), cf.imaml_adapt(THETA, *TASKS[:2], **inner)) < 1e-5


def test_meta_train_imaml_runs_in_both_frameworks():
    sample = lambda r: sample_sinusoid_tasks(3, 5, 5, rng=r)[:4]  # noqa: E731
    kw = dict(n_iterations=3, steps=2, lam=1.0, cg_steps=2, rng=4, progress=False)
    pt, ht = ct.meta_train("imaml", THETA, sample, **kw)
    pf, hf = cf.meta_train("imaml", THETA, sample, **kw)
    assert len(ht.loss) == len(hf.loss) == 3 and np.all(np.isfinite(ht.loss))
    assert np.abs(np.array(ht.loss) - np.array(hf.loss)).max() < 1e-3
    assert max_abs_diff(pt, pf) < 1e-4 and max_abs_diff(pt, THETA) > 0


def test_memory_does_not_grow_with_inner_steps():
    from course_utils.chapters.ch05 import saved_tensors_peak
    p, data = ct.from_numpy(THETA, requires_grad=False), ct.as_task_tensors(*TASKS[:4])
    imaml = [saved_tensors_peak(ct.imaml_meta_gradient, p, *data, lam=0.5, steps=s, cg_steps=2)[1] for s in (1, 8)]
    maml = [saved_tensors_peak(ct.make_meta_gradient_fn(steps=s), p, *data)[1] for s in (1, 8)]
    assert imaml[0] == imaml[1] > 0
    assert maml[1] > 5 * maml[0]


@pytest.mark.parametrize("bad, name", [({"lam": 0.0}, "lam"), ({"lam": float("nan")}, "lam"),
                                       ({"inner_lr": -1.0}, "inner_lr"), ({"cg_steps": 0}, "cg_steps"),
                                       ({"steps": -1}, "steps")])
def test_clear_errors(fw, bad, name):
    with pytest.raises(ValueError, match=name):
        fw.imaml_meta_gradient(THETA, *TASKS[:4], **{**KW, **bad})
    if name != "cg_steps":
        with pytest.raises(ValueError, match=name):
            fw.meta_train("imaml", THETA, lambda r: TASKS[:4], n_iterations=1, progress=False,
                          **{**KW, **bad})


def test_cg_errors():
    with pytest.raises(ValueError, match="matvec"):
        ct.conjugate_gradient(3, {"x": torch.ones(2)})
    with pytest.raises(ValueError, match="batch_dims"):
        ct.conjugate_gradient(lambda v: v, {"x": torch.ones(2)}, batch_dims=2)
    with pytest.raises(ValueError, match="symmetric"):
        conjugate_gradient_numpy(np.array([[1.0, 2.0], [0.0, 1.0]]), np.ones(2))
    with pytest.raises(ValueError, match="positive definite"):
        conjugate_gradient_numpy(-np.eye(2), np.ones(2))
