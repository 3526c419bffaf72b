"""Chapter 6: vectorised MAML (torch.func / tiled tf.function), the conv net, and their parity.

Every check compares against an independent reference: the per-task loops in ``core``, a
finite-difference derivative in float64, or the other framework.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import course_utils.tensorflow as ctf
import course_utils.torch as ct
from course_utils import EpisodeSampler, sample_sinusoid_tasks
from course_utils.chapters import ch06
from course_utils.grading import max_abs_diff as max_diff
from course_utils.nets import head_keys, init_mlp

torch.set_num_threads(1)


def _eagerly(fn, *args, **kwargs):
    """Run ``fn`` with every ``tf.function`` executed eagerly (the un-compiled code path)."""
    import tensorflow as tf

    tf.config.run_functions_eagerly(True)
    try:
        return fn(*args, **kwargs)
    finally:
        tf.config.run_functions_eagerly(False)


@pytest.fixture(scope="module")
def sine():
    return init_mlp(rng=0), sample_sinusoid_tasks(6, 10, 10, rng=1)[:4]


@pytest.fixture(scope="module")
def omni(omniglot):
    """Three real-Omniglot 5-way 1-shot episodes (2 queries per class) and a small conv net."""
    images = omniglot.subset("background")[:60]
    episodes = EpisodeSampler(images, n_way=5, k_shot=1, n_query=2, rotations=True).sample_batch(3, rng=0)
    return ct.init_convnet(0, hidden=16), episodes[:4]


# --------------------------------------------------------------------------- sinusoid MLP
@pytest.mark.parametrize("first_order", [False, True])
def test_vectorised_meta_gradients_match_the_loop(sine, first_order):
    params, tasks = sine
    loss_ref, g_ref = ct.maml_meta_gradient(params, *tasks, first_order=first_order)
    for name, (loss, g) in {
        "torch vmap": ct.maml_meta_gradient_batched(params, *tasks, first_order=first_order),
        "torch vmap chunked": ct.maml_meta_gradient_batched(params, *tasks, first_order=first_order, chunk_size=4),
        "tf loop": ctf.maml_meta_gradient(params, *tasks, first_order=first_order),
        "tf tiled eager": _eagerly(ctf.maml_meta_gradient_batched, params, *tasks, first_order=first_order),
        "tf tiled tf.function": ctf.maml_meta_gradient_batched(params, *tasks, first_order=first_order),
        "tf chunked": ctf.maml_meta_gradient_batched(params, *tasks, first_order=first_order, chunk_size=4),
    }.items():
        assert loss == pytest.approx(loss_ref, rel=1e-5), name
        assert max_diff(g, g_ref) < 2e-5, name


def test_second_order_is_the_exact_gradient_and_first_order_is_not(sine):
    """Central finite differences of the MAML objective (float64) along a random direction."""
    params, tasks = sine
    p64 = {k: torch.tensor(v, dtype=torch.float64) for k, v in params.items()}
    data = [torch.tensor(a, dtype=torch.float64) for a in tasks]
    rng = np.random.default_rng(3)
    direction = {k: torch.tensor(rng.standard_normal(v.shape)) for k, v in params.items()}
    objective = lambda p: float(ct.maml_task_losses(p, *data, inner_lr=0.1).mean())  # noqa: E731
    eps = 1e-7  # small enough that no ReLU changes side (1e-4 crosses kinks here)
    plus = objective({k: p64[k] + eps * direction[k] for k in p64})
    minus = objective({k: p64[k] - eps * direction[k] for k in p64})
    numeric = (plus - minus) / (2 * eps)
    directional = {}
    for first_order in (False, True):
        _, g = ct.make_meta_gradient_fn(inner_lr=0.1, first_order=first_order)(p64, *data)
        directional[first_order] = float(sum((g[k] * direction[k]).sum() for k in g))
    assert directional[False] == pytest.approx(numeric, rel=1e-6)
    assert abs(directional[True] - numeric) > 1e-3 * abs(numeric)  # the Hessian term matters


def test_first_order_differs_from_second_order(sine, fw):
    params, tasks = sine
    _, g2 = fw.maml_meta_gradient_batched(params, *tasks)
    _, g1 = fw.maml_meta_gradient_batched(params, *tasks, first_order=True)
    assert max_diff(g1, g2) > 1e-2
    # First order = the mean over tasks of the query gradient at the adapted weights.
    adapted = fw.adapt_tasks(fw.from_numpy(params), tasks[0], tasks[1])
    phi = {k: np.asarray(v) for k, v in fw.to_numpy(adapted).items()}
    ref = {k: np.zeros_like(v) for k, v in params.items()}
    for t in range(tasks[0].shape[0]):
        _, g = ct.maml_meta_gradient({k: v[t] for k, v in phi.items()}, tasks[2][t:t + 1], tasks[3][t:t + 1],
                                     tasks[2][t:t + 1], tasks[3][t:t + 1], steps=0)
        ref = {k: ref[k] + g[k] / tasks[0].shape[0] for k in ref}
    assert max_diff(g1, ref) < 2e-5


def test_multi_step_parity_between_frameworks(sine):
    params, tasks = sine
    _, gt = ct.maml_meta_gradient_batched(params, *tasks, steps=3, inner_lr=0.02)
    _, gf = ctf.maml_meta_gradient_batched(params, *tasks, steps=3, inner_lr=0.02)
    _, gl = ct.maml_meta_gradient(params, *tasks, steps=3, inner_lr=0.02)
    assert max_diff(gt, gl) < 2e-5 and max_diff(gf, gl) < 2e-5


def test_adapt_tasks_matches_per_task_adapt(sine):
    params, tasks = sine
    for mod in (ct, ctf):
        phi = mod.to_numpy(mod.adapt_tasks(mod.from_numpy(params), tasks[0], tasks[1], steps=2))
        for t in range(tasks[0].shape[0]):
            ref = ct.to_numpy(ct.adapt(ct.from_numpy(params), torch.tensor(tasks[0][t]), torch.tensor(tasks[1][t]),
                                       steps=2))
            assert max_diff({k: v[t] for k, v in phi.items()}, ref) < 1e-5


def test_meta_train_takes_the_same_first_steps_in_both_frameworks(sine):
    params, tasks = sine
    pt, ht = ct.meta_train("maml", params, lambda rng: tasks, n_iterations=3, outer_lr=1e-2, progress=False)
    pf, hf = ctf.meta_train("maml", params, lambda rng: tasks, n_iterations=3, outer_lr=1e-2, progress=False)
    assert ht.loss == pytest.approx(hf.loss, rel=1e-5)
    assert max_diff(pt, pf) < 1e-5
    assert max_diff(pt, params) > 1e-3  # it moved


def test_meta_train_lowers_the_meta_loss():
    params = init_mlp(rng=0)
    sample = lambda rng: sample_sinusoid_tasks(10, 10, rng=rng)[:4]  # noqa: E731
    _, hist = ct.meta_train("maml", params, sample, n_iterations=300, outer_lr=3e-3, rng=0, progress=False)
    assert np.mean(hist.loss[-50:]) < 0.7 * np.mean(hist.loss[:50])
    assert torch.get_num_threads() == 1  # restored to what the test set


def test_finetune_curve_guard_and_parity(sine):
    params, _ = sine
    tasks = sample_sinusoid_tasks(20, 5, 20, rng=4)
    # A step size large enough that plain SGD blows up on most tasks.
    bad = ct.finetune_curve(params, tasks, steps=8, inner_lr=0.3, guard=False)
    good = ct.finetune_curve(params, tasks, steps=8, inner_lr=0.3, guard=True)
    assert not np.all(np.isfinite(bad.loss[-1]) & (bad.loss[-1] < 1e3))
    assert np.all(np.isfinite(good.loss)) and good.guarded.any()
    support = ct.finetune_curve(params, (tasks.x_support, tasks.y_support, tasks.x_support, tasks.y_support),
                                steps=8, inner_lr=0.3).loss
    assert np.all(support <= support[0] * (1 + 1e-6))  # never above where it started
    tf_good = ctf.finetune_curve(params, tasks, steps=8, inner_lr=0.3)
    np.testing.assert_allclose(tf_good.loss, good.loss, rtol=1e-4, atol=1e-4)
    assert np.array_equal(tf_good.guarded, good.guarded)
    # With a small step, the guard is inert and the curve is plain SGD (the core adapt loop).
    plain = ct.finetune_curve(params, tasks, steps=3, inner_lr=0.001)
    assert not plain.guarded.any()
    phi = ct.adapt(ct.from_numpy(params), torch.tensor(tasks.x_support[0]), torch.tensor(tasks.y_support[0]),
                   steps=3, inner_lr=0.001)
    pred = ct.mlp_forward(phi, torch.tensor(tasks.x_query[0]))
    ref = float(ct.mse_loss(pred, torch.tensor(tasks.y_query[0])).detach())
    assert plain.loss[3, 0] == pytest.approx(ref, rel=1e-5)


# --------------------------------------------------------------------------- conv net
def test_convnet_init_is_shared_and_shapes(omni):
    params, _ = omni
    assert max_diff(params, ctf.init_convnet(0, hidden=16)) == 0
    assert params["conv0_w"].shape == (16, 1, 3, 3) and params["head_w"].shape == (16, 5)
    assert head_keys(params) == ("head_w", "head_b")
    with pytest.raises(ValueError, match="n_way"):
        ct.init_convnet(0, n_way=1)


def test_convnet_forward_parity(omni):
    params, (xs, ys, xq, yq) = omni
    x = xq[0].astype(np.float32) / 255
    out_t = ct.convnet_forward(ct.from_numpy(params), torch.tensor(x)).detach().numpy()
    out_f = ctf.convnet_forward(ctf.from_numpy(params), x).numpy()
    assert out_t.shape == (10, 5)
    np.testing.assert_allclose(out_t, out_f, atol=1e-5)
    # Channel-last input with one channel gives the same logits.
    np.testing.assert_allclose(ct.convnet_forward(ct.from_numpy(params), torch.tensor(x[..., None])).detach().numpy(),
                               out_t, atol=1e-6)


@pytest.mark.parametrize("first_order", [False, True])
def test_convnet_meta_gradient_parity(omni, first_order):
    params, (xs, ys, xq, yq) = omni
    kw = dict(inner_lr=0.4, first_order=first_order, loss_fn=ct.cross_entropy_loss, forward=ct.convnet_forward)
    loss_l, g_l = ct.maml_meta_gradient(params, xs.astype(np.float32) / 255, ys, xq.astype(np.float32) / 255, yq, **kw)
    loss_v, g_v = ct.maml_meta_gradient_batched(params, xs, ys, xq, yq, **kw)  # uint8 is scaled inside
    kw.update(loss_fn=ctf.cross_entropy_loss, forward=ctf.convnet_forward)
    loss_f, g_f = ctf.maml_meta_gradient_batched(params, xs, ys, xq, yq, **kw)
    assert loss_v == pytest.approx(loss_l, rel=1e-5) and loss_f == pytest.approx(loss_l, rel=1e-5)
    scale = max(float(np.abs(g).max()) for g in g_l.values())
    assert max_diff(g_v, g_l) < 1e-4 * scale and max_diff(g_f, g_l) < 1e-4 * scale


def test_convnet_second_order_differs(omni):
    params, batch = omni
    kw = dict(inner_lr=0.4, loss_fn=ct.cross_entropy_loss, forward=ct.convnet_forward)
    _, g2 = ct.maml_meta_gradient_batched(params, *batch, **kw)
    _, g1 = ct.maml_meta_gradient_batched(params, *batch, first_order=True, **kw)
    assert max_diff(g1, g2) > 1e-3


def test_meta_test_reports_accuracy(omni):
    params, batch = omni
    out = ct.meta_test(params, lambda rng: batch, n_batches=2, inner_lr=0.4, forward=ct.convnet_forward,
                       loss_fn=ct.cross_entropy_loss, rng=0)
    assert out["n_tasks"] == 6 and 0 <= out["accuracy"] <= 1 and out["accuracy_ci95"] >= 0
    out_f = ctf.meta_test(params, lambda rng: batch, n_batches=1, inner_lr=0.4, forward=ctf.convnet_forward,
                          loss_fn=ctf.cross_entropy_loss, rng=0)
    curve = ct.finetune_curve(params, batch, steps=1, inner_lr=0.4, guard=False, forward=ct.convnet_forward,
                              loss_fn=ct.cross_entropy_loss, accuracy=True)
    assert out_f["accuracy"] == pytest.approx(float(curve.accuracy[-1].mean()))
    assert out_f["loss"] == pytest.approx(float(curve.loss[-1].mean()), rel=1e-4)


# --------------------------------------------------------------------------- validation
def test_bad_arguments_raise(sine, fw):
    params, tasks = sine
    with pytest.raises(ValueError, match="inner_lr"):
        fw.make_meta_gradient_fn(inner_lr=-1.0)
    with pytest.raises(ValueError, match="steps"):
        fw.maml_task_losses(fw.from_numpy(params), *tasks, steps=-1)
    with pytest.raises(ValueError, match="chunk_size"):
        fw.make_meta_gradient_fn(chunk_size=0)
    with pytest.raises(ValueError, match="outer_lr"):
        fw.meta_train("maml", params, lambda rng: tasks, outer_lr=0.0)
    with pytest.raises(ValueError, match="n_iterations"):
        fw.meta_train("maml", params, lambda rng: tasks, n_iterations=0)
    with pytest.raises(ValueError, match="method"):
        fw.meta_train("no_such_method", params, lambda rng: tasks)


# --------------------------------------------------------------------------- chapter 6 helpers
def test_ch06_checkers_accept_solutions_and_reject_wrong_answers(capsys):
    t = ch06.TOY
    assert ch06.check_toy_meta_gradient(ch06.toy_meta_gradient(**t))
    assert not ch06.check_toy_meta_gradient(ch06.toy_meta_gradient(**t, first_order=True))
    assert not ch06.check_toy_meta_gradient(None)
    assert ch06.check_toy_first_order_gradient(ch06.toy_meta_gradient(**t, first_order=True))
    assert not ch06.check_toy_first_order_gradient(ch06.toy_meta_gradient(**t))
    # The closed form agrees with autograd on the toy.
    theta = torch.tensor(t["theta"], dtype=torch.float64, requires_grad=True)
    inner = torch.autograd.grad((theta * t["x_s"] - t["y_s"]) ** 2, theta, create_graph=True)[0]
    phi = theta - t["alpha"] * inner
    (g,) = torch.autograd.grad((phi * t["x_q"] - t["y_q"]) ** 2, theta)
    assert float(g) == pytest.approx(ch06.toy_meta_gradient(**t))
    # Challenge 3: the real two-step meta-gradient passes, one step and first order fail.
    s = ch06.TWO_STEP_SETUP
    params = init_mlp(rng=s["mlp_seed"])
    tasks = sample_sinusoid_tasks(s["n_tasks"], s["k_shot"], rng=s["task_seed"])[:4]
    _, two = ct.maml_meta_gradient_batched(params, *tasks, steps=2, inner_lr=s["inner_lr"])
    _, one = ct.maml_meta_gradient_batched(params, *tasks, steps=1, inner_lr=s["inner_lr"])
    _, fo = ct.maml_meta_gradient_batched(params, *tasks, steps=2, inner_lr=s["inner_lr"], first_order=True)
    assert ch06.check_two_step_meta_gradient(two)
    assert not ch06.check_two_step_meta_gradient(one)
    assert not ch06.check_two_step_meta_gradient(fo)
    assert not ch06.check_two_step_meta_gradient(None) and not ch06.check_two_step_meta_gradient([1, 2])
    assert "❌" in capsys.readouterr().out


def test_adaptation_widget_sliders_change_the_result():
    from course_utils.widgets import set_values

    maml, pre = init_mlp(rng=0), init_mlp(rng=1)
    w = ch06.make_adaptation_widget(maml, pre)
    r0 = w.result
    assert set(r0) >= {"mse_maml", "mse_pretrained", "maml", "pretrained"}
    r1 = set_values(w, steps=5, k_shot=10)
    assert r1["mse_maml"] != r0["mse_maml"]
    r2 = ch06.adaptation_demo(maml, pre, k_shot=10, steps=5, task_seed=0, draw=False)
    assert r2["mse_maml"] == pytest.approx(r1["mse_maml"])
    with pytest.raises(ValueError, match="k_shot"):
        ch06.adaptation_demo(maml, pre, k_shot=0, draw=False)
