"""Chapter 7: first-order MAML, Reptile and ANIL, in both frameworks.

Proves: FOMAML drops exactly MAML's Hessian term (second order ≠ first order); ANIL adapts only
the head and its meta-gradient differs from MAML's; Reptile with one SGD step is ε·α times the
joint-training gradient step (Nichol et al. 2018, §5); the vectorised training steps equal the
per-task references; PyTorch and TensorFlow agree to float32 tolerance.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import course_utils.tensorflow as cf
import course_utils.torch as ct
from course_utils import sample_sinusoid_tasks
from course_utils.chapters import ch07
from course_utils.env import PeakMemory
from course_utils.nets import head_keys, init_mlp
from course_utils.training import MetaHistory, reptile_epsilon

ATOL = 2e-5


def _maxdiff(a: dict, b: dict) -> float:
    assert set(a) == set(b)
    return max(float(np.abs(np.asarray(a[k]) - np.asarray(b[k])).max()) for k in a)


def _norm(a: dict) -> float:
    return float(np.sqrt(sum(float(np.sum(np.asarray(v) ** 2)) for v in a.values())))


@pytest.fixture(scope="module")
def mlp():
    return init_mlp((1, 40, 40, 1), rng=0)


@pytest.fixture(scope="module")
def tasks():
    t = sample_sinusoid_tasks(6, 10, 10, rng=1)
    return t.x_support, t.y_support, t.x_query, t.y_query


@pytest.fixture(scope="module")
def conv():
    """A small conv net (8 filters, 2 blocks) and one batch of 3 tiny 3-way 1-shot 'episodes'."""
    params = ct.init_convnet(0, n_way=3, hidden=8, n_blocks=2)
    rng = np.random.default_rng(3)
    xs = rng.random((3, 3, 28, 28), dtype=np.float32)
    xq = rng.random((3, 6, 28, 28), dtype=np.float32)
    ys = np.tile(np.arange(3), (3, 1)).astype(np.int64)
    yq = np.tile(np.repeat(np.arange(3), 2), (3, 1)).astype(np.int64)
    return params, (xs, ys, xq, yq)


# --------------------------------------------------------------------------- second vs first order
def test_fomaml_is_core_first_order_and_differs_from_maml(mlp, tasks):
    l1, g_fo = ct.fomaml_meta_gradient(mlp, *tasks)
    l2, g_core = ct.maml_meta_gradient(mlp, *tasks, first_order=True)
    assert l1 == pytest.approx(l2) and _maxdiff(g_fo, g_core) < 1e-7
    _, g_so = ct.maml_meta_gradient(mlp, *tasks)
    # Same loss (the forward pass is identical), different gradient: the Hessian term matters.
    assert _maxdiff(g_so, g_fo) > 1e-2 * _norm(g_so) / np.sqrt(len(g_so))


def test_maml_minus_fomaml_is_the_hessian_term(mlp, tasks):
    """For one task and one step: g_MAML - g_FOMAML = -α H_support(θ) ∇L_query(φ), exactly."""
    xs, ys, xq, yq = (a[:1] for a in tasks)
    alpha = 0.01
    _, g_so = ct.maml_meta_gradient(mlp, xs, ys, xq, yq, inner_lr=alpha)
    _, g_fo = ct.fomaml_meta_gradient(mlp, xs, ys, xq, yq, inner_lr=alpha)
    names = list(mlp)
    flat = torch.cat([torch.tensor(mlp[k]).ravel() for k in names])
    shapes = [mlp[k].shape for k in names]

    def unflat(v):
        out, i = {}, 0
        for k, s in zip(names, shapes):
            n = int(np.prod(s))
            out[k] = v[i:i + n].reshape(s)
            i += n
        return out

    def loss(v, x, y):
        return ct.mse_loss(ct.mlp_forward(unflat(v), torch.tensor(x[0])), torch.tensor(y[0]))

    g_s = torch.autograd.functional.jacobian(lambda v: loss(v, xs, ys), flat)
    phi = flat - alpha * g_s
    g_q = torch.autograd.functional.jacobian(lambda v: loss(v, xq, yq), phi)
    _, hvp = torch.autograd.functional.hvp(lambda v: loss(v, xs, ys), flat, g_q)
    predicted = {k: v.numpy() for k, v in unflat(-alpha * hvp).items()}
    diff = {k: g_so[k] - g_fo[k] for k in names}
    assert _norm(predicted) > 1e-4
    assert _maxdiff(diff, predicted) < 1e-5


# --------------------------------------------------------------------------- ANIL
def test_anil_adapts_only_the_head(mlp, tasks):
    theta = ct.from_numpy(mlp)
    xs, ys = torch.tensor(tasks[0][0]), torch.tensor(tasks[1][0])
    phi = ct.anil_adapt(theta, xs, ys, inner_lr=0.1, steps=2)
    for k in ("w0", "b0", "w1", "b1"):
        assert phi[k] is theta[k]
    for k in ("w2", "b2"):
        assert not torch.allclose(phi[k], theta[k])


def test_anil_meta_gradient_differs_from_maml_and_reaches_the_body(mlp, tasks):
    _, g_anil = ct.anil_meta_gradient(mlp, *tasks)
    _, g_maml = ct.maml_meta_gradient(mlp, *tasks)
    _, g_anil_fo = ct.anil_meta_gradient(mlp, *tasks, first_order=True)
    assert _maxdiff(g_anil, g_maml) > 1e-3
    assert _maxdiff(g_anil, g_anil_fo) > 1e-5  # second order through the head's update
    assert _norm({k: g_anil[k] for k in ("w0", "w1")}) > 1e-3  # the body still learns


def test_anil_with_zero_steps_is_plain_query_loss(mlp, tasks):
    l0, g0 = ct.anil_meta_gradient(mlp, *tasks, steps=0)
    l1, g1 = ct.maml_meta_gradient(mlp, *tasks, steps=0)
    assert l0 == pytest.approx(l1) and _maxdiff(g0, g1) < 1e-6


def test_head_keys(mlp, conv):
    assert head_keys(mlp) == ("w2", "b2")
    assert head_keys(conv[0]) == ("head_w", "head_b")
    with pytest.raises(ValueError, match="params"):
        head_keys({"w0": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="head"):
        ct.anil_meta_gradient(mlp, *(a[:1] for a in sample_sinusoid_tasks(1, 5, rng=0)[:4]), head=("nope",))


# --------------------------------------------------------------------------- Reptile
def test_reptile_one_step_is_joint_training(fw, mlp, tasks):
    """k = 1 full-batch SGD step: θ + ε·mean(φ̃ - θ) = θ - ε·α·∇L_joint(θ) (Nichol et al. §5)."""
    xs, ys, xq, yq = tasks
    x, y = np.concatenate([xs, xq], 1), np.concatenate([ys, yq], 1)
    eps, alpha = 0.7, 0.05
    new = fw.reptile_update(mlp, x, y, epsilon=eps, inner_lr=alpha, inner_steps=1)
    _, g_joint = fw.maml_meta_gradient(mlp, x, y, x, y, steps=0)  # gradient of the mean task loss
    expected = ch07.reptile_k1_prediction(mlp, g_joint, inner_lr=alpha, epsilon=eps)
    assert _maxdiff(new, expected) < 1e-6
    assert _maxdiff(new, mlp) > 1e-4


def test_reptile_with_more_steps_is_not_joint_training(mlp, tasks):
    xs, ys, xq, yq = tasks
    x, y = np.concatenate([xs, xq], 1), np.concatenate([ys, yq], 1)
    _, g_joint = ct.maml_meta_gradient(mlp, x, y, x, y, steps=0)
    d = ct.reptile_direction(mlp, x, y, inner_lr=0.05, inner_steps=4, batch_size=10)
    joint = {k: -4 * 0.05 * g_joint[k] for k in g_joint}  # four steps of joint training, to first order
    assert _maxdiff(d, joint) > 1e-4


def test_reptile_epsilon_schedule():
    assert reptile_epsilon(0, 100) == 1.0
    assert reptile_epsilon(50, 100) == pytest.approx(0.5)
    assert reptile_epsilon(100, 100, epsilon_start=0.5, epsilon_end=0.1) == pytest.approx(0.1)
    vals = [reptile_epsilon(i, 10, epsilon_start=0.8) for i in range(11)]
    assert np.allclose(np.diff(vals), -0.08)
    for bad in [dict(iteration=11, n_iterations=10), dict(iteration=0, n_iterations=0),
                dict(iteration=0, n_iterations=10, epsilon_start=1.5),
                dict(iteration=0, n_iterations=10, epsilon_start=0.5, epsilon_end=0.6)]:
        with pytest.raises(ValueError, match="iteration|n_iterations|epsilon"):
            reptile_epsilon(**bad)


def test_reptile_update_validates_epsilon(mlp, tasks):
    with pytest.raises(ValueError, match="epsilon"):
        ct.reptile_update(mlp, tasks[0], tasks[1], epsilon=0.0)
    with pytest.raises(ValueError, match="batch_size"):
        ct.reptile_direction(mlp, tasks[0], tasks[1], batch_size=11)


# --------------------------------------------------------------------------- vectorised steps
def test_vectorised_steps_match_references(fw, mlp, tasks):
    xs, ys, xq, yq = tasks
    conv = (lambda a: torch.tensor(a)) if fw is ct else (lambda a: __import__("tensorflow").constant(a))
    theta = {k: conv(v) for k, v in mlp.items()}
    batch = [conv(a) for a in tasks]
    refs = {"maml": fw.maml_meta_gradient(mlp, *tasks),
            "fomaml": fw.fomaml_meta_gradient(mlp, *tasks),
            "anil": fw.anil_meta_gradient(mlp, *tasks)}
    for method, (ref_loss, ref_grad) in refs.items():
        loss, g = fw.make_meta_step(method)(theta, *batch)
        assert float(loss) == pytest.approx(ref_loss, rel=1e-5)
        assert _maxdiff({k: np.asarray(v) for k, v in g.items()}, ref_grad) < ATOL, method
    x, y = np.concatenate([xs, xq], 1), np.concatenate([ys, yq], 1)
    _, d = fw.make_meta_step("reptile", reptile_steps=3, reptile_batch_size=10)(theta, *batch)
    ref = fw.reptile_direction(mlp, x, y, inner_steps=3, batch_size=10)
    assert _maxdiff({k: np.asarray(v) for k, v in d.items()}, ref) < 1e-6


def test_make_meta_step_validates():
    with pytest.raises(ValueError, match="method"):
        ct.make_meta_step("no_such_method")
    with pytest.raises(ValueError, match="method"):
        cf.make_meta_step("no_such_method")
    with pytest.raises(ValueError, match="inner_lr"):
        ct.make_meta_step("anil", inner_lr=-1.0)
    with pytest.raises(ValueError, match="reptile_steps"):
        cf.make_meta_step("reptile", reptile_steps=0)


# --------------------------------------------------------------------------- parity
def test_parity_reference_functions(mlp, tasks):
    xs, ys, xq, yq = tasks
    for name, kw in [("fomaml_meta_gradient", {}), ("anil_meta_gradient", {}),
                     ("anil_meta_gradient", {"first_order": True, "steps": 2})]:
        (l1, g1), (l2, g2) = getattr(ct, name)(mlp, *tasks, **kw), getattr(cf, name)(mlp, *tasks, **kw)
        assert l1 == pytest.approx(l2, rel=1e-5)
        assert _maxdiff(g1, g2) < ATOL, name
    x, y = np.concatenate([xs, xq], 1), np.concatenate([ys, yq], 1)
    kw = dict(epsilon=0.3, inner_lr=0.02, inner_steps=5, batch_size=10)
    assert _maxdiff(ct.reptile_update(mlp, x, y, **kw), cf.reptile_update(mlp, x, y, **kw)) < 1e-6


def test_parity_on_the_conv_net(conv):
    params, batch = conv
    kw = dict(inner_lr=0.4, forward=ct.convnet_forward, loss_fn=ct.cross_entropy_loss)
    kw_tf = dict(inner_lr=0.4, forward=cf.convnet_forward, loss_fn=cf.cross_entropy_loss)
    (l1, g1), (l2, g2) = ct.anil_meta_gradient(params, *batch, **kw), cf.anil_meta_gradient(params, *batch, **kw_tf)
    assert l1 == pytest.approx(l2, rel=1e-4) and _maxdiff(g1, g2) < 1e-4
    assert set(g1) == set(params) and _norm({k: g1[k] for k in params if k.startswith("conv")}) > 0
    x, y = np.concatenate([batch[0], batch[2]], 1), np.concatenate([batch[1], batch[3]], 1)
    r1 = ct.reptile_update(params, x, y, epsilon=1.0, inner_lr=0.1, inner_steps=3, batch_size=3,
                           forward=ct.convnet_forward, loss_fn=ct.cross_entropy_loss)
    r2 = cf.reptile_update(params, x, y, epsilon=1.0, inner_lr=0.1, inner_steps=3, batch_size=3,
                           forward=cf.convnet_forward, loss_fn=cf.cross_entropy_loss)
    assert _maxdiff(r1, r2) < 1e-4 and _maxdiff(r1, params) > 1e-4
    # the compiled TF step (graph loop over tasks for the conv net) equals the reference
    import tensorflow as tf

    _, d = cf.make_meta_step("reptile", reptile_inner_lr=0.1, reptile_steps=3, reptile_batch_size=3,
                             forward=cf.convnet_forward, loss_fn=cf.cross_entropy_loss)(
        {k: tf.constant(v) for k, v in params.items()}, *[tf.constant(a) for a in batch])
    assert _maxdiff({k: params[k] + d[k].numpy() for k in params}, r2) < 1e-5


# --------------------------------------------------------------------------- training loop
@pytest.mark.parametrize("method", ["maml", "reptile"])
def test_meta_train_learns(fw, method, mlp):
    test = sample_sinusoid_tasks(50, 10, 10, rng=99)[:4]

    def query_mse_after_one_step(p):  # first-order evaluation is fine for a number
        return ct.maml_meta_gradient(p, *test, inner_lr=0.01, first_order=True)[0]

    sample = lambda rng: sample_sinusoid_tasks(10, 10, 10, rng=rng)[:4]  # noqa: E731
    options = {"reptile_batch_size": 10} if method == "reptile" else {}
    params, hist = fw.meta_train(method, mlp, sample, n_iterations=40, outer_lr=3e-3, rng=1000,
                                 eval_fn=query_mse_after_one_step, eval_every=20, progress=False, **options)
    assert isinstance(hist, MetaHistory) and (hist.method, hist.framework) == (method, fw.FRAMEWORK)
    assert hist.eval_iterations == [0, 20, 40]
    assert hist.eval[-1] < 0.9 * hist.eval[0]
    assert len(hist.loss) == 40 and hist.seconds_per_iteration > 0 and hist.n_iterations == 40
    assert np.isfinite(hist.peak_memory_mb) and hist.peak_memory_mb >= 0
    assert set(params) == set(mlp) and all(v.dtype == np.float32 for v in params.values())


def test_meta_train_validates(mlp):
    sample = lambda rng: sample_sinusoid_tasks(2, 5, rng=rng)[:4]  # noqa: E731
    with pytest.raises(ValueError, match="n_iterations"):
        ct.meta_train("maml", mlp, sample, n_iterations=0)
    with pytest.raises(ValueError, match="epsilon_start"):
        cf.meta_train("reptile", mlp, sample, n_iterations=5, epsilon_start=2.0)
    with pytest.raises(ValueError, match="num_threads"):
        ct.meta_train("maml", mlp, sample, n_iterations=5, num_threads=0)
    with pytest.raises(ValueError, match="option"):
        ct.meta_train("maml", mlp, sample, n_iterations=5, reptile_steps=3)


def test_meta_train_restores_torch_threads(mlp):
    before = torch.get_num_threads()
    ct.meta_train("fomaml", mlp, lambda rng: sample_sinusoid_tasks(2, 5, rng=rng)[:4], n_iterations=2,
                  progress=False, num_threads=1)
    assert torch.get_num_threads() == before


def test_a_new_method_plugs_into_meta_train(fw, mlp):
    """A later chapter registers its own method; meta_train then runs it like the built-in ones."""
    def make_step(*, inner_lr, steps, first_order, forward, loss_fn, scale=1.0):
        def step(params, xs, ys, xq, yq):  # descend a constant "gradient": θ moves by Adam's lr per step
            return 0.0, {k: scale * (v * 0 + 1) for k, v in params.items()}
        return step

    fw.register_meta_method("constant_push", make_step)
    try:
        params, hist = fw.meta_train("constant_push", mlp, lambda rng: sample_sinusoid_tasks(2, 5, rng=rng)[:4],
                                     n_iterations=3, outer_lr=0.1, progress=False, scale=2.0)
        assert hist.method == "constant_push" and len(hist.loss) == 3
        assert np.allclose(params["b0"], mlp["b0"] - 0.3, atol=1e-5)  # Adam's steps on a constant gradient
    finally:
        fw.METHODS._methods.pop("constant_push")


# --------------------------------------------------------------------------- helpers and checkers
def test_peak_memory_sees_an_allocation():
    with PeakMemory(interval=0.001) as mem:
        a = np.ones(20_000_000)  # 160 MB
        a[::4096] += 1
        del a
    assert mem.peak_mb > 100
    with pytest.raises(ValueError, match="interval"):
        PeakMemory(interval=0)


def test_mean_median():
    assert ch07.mean_median([1, 2, 9]) == (4.0, 2.0)
    with pytest.raises(ValueError):
        ch07.mean_median([])
