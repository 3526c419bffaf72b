"""Chapters 1 and 2: the episode explorer, the task-family baseline, autodiff helpers, checkers."""
from __future__ import annotations

import math

import numpy as np
import pytest

from course_utils import sample_sinusoid_tasks
from course_utils.chapters import ch01, ch02
from course_utils.widgets import set_values


# --------------------------------------------------------------------------- chapter 1
@pytest.fixture(scope="module")
def omniglot_background(omniglot):
    return omniglot.subset("background")


def test_draw_episode_on_real_omniglot(omniglot_background):
    out = ch01.draw_episode(omniglot_background, n_way=5, k_shot=2, n_query=3, seed=4, show=False)
    assert out["n_support_images"] == 10 and out["n_query_images"] == 15
    assert out["support_shape"] == (10, 28, 28) and out["query_shape"] == (15, 28, 28)
    assert len(set(out["classes"])) == 5 and all(0 <= c < 964 for c in out["classes"])
    assert out["support_labels"] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert out["chance_accuracy"] == pytest.approx(0.2)
    assert out["disjoint"]
    again = ch01.draw_episode(omniglot_background, 5, 2, 3, 4, show=False)
    other = ch01.draw_episode(omniglot_background, 5, 2, 3, 5, show=False)
    assert again == out and other["classes"] != out["classes"]


def test_episode_explorer_sliders_redraw(omniglot_background):
    w = ch01.episode_explorer(omniglot_background, n_way=5, k_shot=1, n_query=5, seed=0)
    assert w.result["n_way"] == 5 and w.result["n_support_images"] == 5
    res = set_values(w, n_way=20, k_shot=5, n_query=10, seed=3)
    assert (res["n_support_images"], res["n_query_images"]) == (100, 200)
    assert res["query_shape"] == (200, 28, 28) and res["chance_accuracy"] == pytest.approx(0.05)
    res2 = set_values(w, seed=4)
    assert res2["classes"] != res["classes"]
    sliders = {c._kwarg: c for c in w.kwargs_widgets}
    assert sliders["k_shot"].max + sliders["n_query"].max <= 20  # never more than 20 drawings


def test_episode_mosaic_layout():
    images = np.zeros((6, 20, 28, 28), np.uint8)
    images[:, :, 5:10, 5:10] = 255
    ep = ch01.EpisodeSampler(images, n_way=3, k_shot=2, n_query=4).sample(0)
    m = ch01.episode_mosaic(ep, max_query=3)
    assert m.shape == (3 * 32, 2 * 32 + 12 + 3 * 32)
    assert m.max() == 1.0 and m.min() == 0.0
    assert m.sum() == pytest.approx(3 * 5 * 25)  # 3 rows x (2 support + 3 query) squares of 25 px
    with pytest.raises(ValueError, match="max_query"):
        ch01.episode_mosaic(ep, max_query=-1)


def test_draw_episode_bad_input():
    images = np.zeros((6, 20, 28, 28), np.uint8)
    with pytest.raises(ValueError, match="k_shot \\+ n_query"):
        ch01.draw_episode(images, 3, 15, 10, 0, show=False)
    with pytest.raises(ValueError, match="n_way"):
        ch01.draw_episode(images, 7, 1, 1, 0, show=False)
    with pytest.raises(ValueError, match="images"):
        ch01.episode_explorer(images[0])
    with pytest.raises(ValueError, match="n_way"):
        ch01.episode_explorer(images, n_way=7)
    with pytest.raises(ValueError, match="show"):
        ch01.draw_episode(images, 3, 1, 1, 0, show="no")


def test_family_fit_recovers_tasks_and_validates():
    t = sample_sinusoid_tasks(10, 10, rng=0)
    for i in range(10):
        a, p = ch01.family_fit(t.x_support[i], t.y_support[i], n_grid=721)
        assert a == pytest.approx(float(t.amplitude[i]), abs=0.02)
        assert p == pytest.approx(float(t.phase[i]), abs=0.01)
    with pytest.raises(ValueError, match="n_grid"):
        ch01.family_fit(t.x_support[0], t.y_support[0], n_grid=1)
    with pytest.raises(ValueError, match="same number"):
        ch01.family_fit(t.x_support[0], t.y_support[0][:3])
    with pytest.raises(ValueError, match="phase_range"):
        ch01.family_fit(t.x_support[0], t.y_support[0], phase_range=(1.0, 0.0))


def test_check_episode_counts(capsys):
    assert ch01.check_episode_counts(lambda n, k, q: (n * k, n * q))
    assert not ch01.check_episode_counts(lambda n, k, q: (k, q))
    assert not ch01.check_episode_counts(lambda n, k, q: (n * k, q))
    assert not ch01.check_episode_counts(None)
    assert not ch01.check_episode_counts(lambda n: n)  # a broken answer is a hint, not an error
    out = capsys.readouterr().out
    assert "✅" in out and "❌" in out


def test_check_mean_task_function():
    rng = np.random.default_rng(0)
    amp = rng.uniform(1.0, 3.0, 20000)
    phase = rng.uniform(0.0, math.pi / 2, 20000)
    monte_carlo = lambda x: (amp[:, None] * np.sin(np.asarray(x)[None] - phase[:, None])).mean(0)  # noqa: E731
    assert ch01.check_mean_task_function(monte_carlo)
    assert ch01.check_mean_task_function(lambda x: (4 / math.pi) * (np.sin(x) - np.cos(x)))
    assert not ch01.check_mean_task_function(lambda x: np.zeros_like(x))
    assert not ch01.check_mean_task_function(lambda x: -(2 / math.pi) * 2.55 * np.cos(x))  # the course's family
    assert not ch01.check_mean_task_function(lambda x: 2.55 * np.sin(x))
    assert not ch01.check_mean_task_function(None)


def test_check_recover_task():
    def recover(x, y):
        feats = np.stack([np.sin(x), np.cos(x)], 1)
        (a, b), *_ = np.linalg.lstsq(feats, y, rcond=None)
        return math.hypot(a, b), math.atan2(-b, a)

    assert ch01.check_recover_task(recover)
    assert not ch01.check_recover_task(lambda x, y: (float(np.abs(y).max()), 0.0))
    assert not ch01.check_recover_task(None)


# --------------------------------------------------------------------------- chapter 2
def test_list_optimizers_reads_the_installed_frameworks():
    import tensorflow as tf
    import torch

    import course_utils.tensorflow as ctf
    import course_utils.torch as ct

    pt, tfo = ct.list_optimizers(), ctf.list_optimizers()
    assert {"SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "LBFGS", "Rprop"} <= set(pt)
    assert {"SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Ftrl"} <= set(tfo)
    assert "Optimizer" not in pt and "Optimizer" not in tfo
    assert all(issubclass(getattr(torch.optim, n), torch.optim.Optimizer) for n in pt)
    assert all(isinstance(getattr(tf.keras.optimizers, n), type) for n in tfo)
    assert "LossScaleOptimizer" not in tfo
    assert "LossScaleOptimizer" in ctf.list_optimizers(include_wrappers=True)
    assert pt == sorted(pt, key=str.lower)
    # the article's claim "TensorFlow has more optimizers" does not hold for the pinned versions
    assert len(tfo) <= len(pt)


def test_hessian_vector_product_bad_input():
    import torch

    import course_utils.tensorflow as ctf
    import course_utils.torch as ct

    p = {"w0": np.ones((2, 2), np.float32)}
    for mod, conv in ((ct, lambda a: torch.tensor(a)), (ctf, lambda a: a)):
        params = mod.from_numpy(p)
        with pytest.raises(ValueError, match="vector"):
            mod.hessian_vector_product(lambda q: (q["w0"] ** 2).sum(), params, {"b0": conv(np.ones(2))})
        with pytest.raises(ValueError, match="shape"):
            mod.hessian_vector_product(lambda q: (q["w0"] ** 2).sum(), params, {"w0": conv(np.ones(3))})
        with pytest.raises(ValueError, match="loss_fn"):
            mod.hessian_vector_product(None, params, {"w0": conv(np.ones((2, 2)))})


def test_hessian_vector_product_quadratic(fw):
    """For L = Σ θ³ / 3 + ½ θᵀAθ, H v = (A + diag(2θ)) v exactly."""
    rng = np.random.default_rng(1)
    m = rng.standard_normal((3, 3)).astype(np.float32)
    a = (m @ m.T).astype(np.float32)
    theta = rng.standard_normal(3).astype(np.float32)
    v = rng.standard_normal(3).astype(np.float32)
    if fw.__name__ == "course_utils.torch":
        import torch

        at = torch.tensor(a)
        loss = lambda p: 0.5 * p["t"] @ at @ p["t"] + (p["t"] ** 3).sum() / 3  # noqa: E731
        vec = {"t": torch.tensor(v)}
    else:
        import tensorflow as tf

        at = tf.constant(a)
        loss = lambda p: 0.5 * tf.tensordot(p["t"], tf.linalg.matvec(at, p["t"]), 1) + tf.reduce_sum(p["t"] ** 3) / 3  # noqa: E731
        vec = {"t": v}
    hv = fw.hessian_vector_product(loss, fw.from_numpy({"t": theta}), vec)["t"]
    np.testing.assert_allclose(np.asarray(hv), (a + np.diag(2 * theta)) @ v, rtol=1e-5, atol=1e-5)


def test_meta_gradient_by_hand_bad_input(fw):
    t = sample_sinusoid_tasks(2, 5, rng=0)
    p = {"w0": np.ones((1, 1), np.float32), "b0": np.zeros(1, np.float32)}
    with pytest.raises(ValueError, match="inner_lr"):
        fw.meta_gradient_by_hand(p, *t[:4], inner_lr=-1.0)
    with pytest.raises(ValueError, match="tasks axis"):
        fw.meta_gradient_by_hand(p, t.x_support, t.y_support, t.x_query[:1], t.y_query[:1])


def test_numpy_references_validate():
    t = sample_sinusoid_tasks(2, 5, rng=0)
    with pytest.raises(ValueError, match="linear model"):
        ch02.linear_meta_gradient({"w0": np.ones((1, 1)), "b0": np.ones(1), "w1": np.ones((1, 1)),
                                   "b1": np.ones(1)}, *t[:4])
    with pytest.raises(ValueError, match="steps"):
        ch02.maml_loss_numpy({"w0": np.ones((1, 1)), "b0": np.ones(1)}, *t[:4], steps=-1)
    with pytest.raises(ValueError, match="tasks"):
        ch02.linear_meta_gradient({"w0": np.ones((1, 1)), "b0": np.ones(1)}, t.x_support[0], *t[1:4])
    with pytest.raises(ValueError, match="eps"):
        ch02.directional_derivative(lambda p: 0.0, {"a": np.ones(1)}, {"a": np.ones(1)}, eps=0)


def test_check_hvp():
    import torch
    from torch.func import grad, jvp

    def hvp_forward_over_reverse(f, theta, v):
        return jvp(grad(f), (theta,), (v,))[1]

    def hvp_double_backward(f, theta, v):
        theta = theta.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(f(theta), theta, create_graph=True)
        return torch.autograd.grad(g @ v, theta)[0]

    assert ch02.check_hvp(hvp_forward_over_reverse)
    assert ch02.check_hvp(hvp_double_backward)
    assert not ch02.check_hvp(lambda f, theta, v: grad(f)(theta))  # the gradient, not H v
    assert not ch02.check_hvp(lambda f, theta, v: v)
    assert not ch02.check_hvp(None)


def test_check_scalar_meta_gradient():
    p = ch02.scalar_meta_gradient_problem()
    w, a = p["w"], p["inner_lr"]
    xs, ys = np.array(p["x_support"]), np.array(p["y_support"])
    xq, yq = np.array(p["x_query"]), np.array(p["y_query"])
    phi = w - a * np.mean(2 * xs * (w * xs - ys))
    g_q = np.mean(2 * xq * (phi * xq - yq))
    exact = (1 - a * np.mean(2 * xs ** 2)) * g_q
    assert ch02.check_scalar_meta_gradient(exact)
    assert not ch02.check_scalar_meta_gradient(g_q)  # first order
    assert not ch02.check_scalar_meta_gradient(0.0)
    assert not ch02.check_scalar_meta_gradient("six")
    assert not ch02.check_scalar_meta_gradient(None)


def test_check_retrace_count():
    # 1 and 2 are new Python values (2 traces), 1 again reuses; a float32 scalar tensor traces
    # once for both values; a (2,)-shaped tensor traces; the Python float 3.0 traces: 5.
    assert ch02.check_retrace_count(5)
    assert not ch02.check_retrace_count(7)
    assert not ch02.check_retrace_count(1)
    assert not ch02.check_retrace_count("5")
    assert not ch02.check_retrace_count(None)


def test_mlp_module_round_trip_and_forward(fw):
    """mlp_module holds the NumPy weights (transposed for nn.Linear) and computes mlp_forward_numpy."""
    from course_utils.nets import init_mlp, mlp_forward_numpy

    p = init_mlp((2, 7, 5, 3), rng=4)
    net = fw.mlp_module(p)
    x = np.random.default_rng(0).standard_normal((6, 2)).astype(np.float32)
    if fw.__name__ == "course_utils.torch":
        import torch

        out = net(torch.from_numpy(x)).detach().numpy()
        assert net[0].weight.shape == (7, 2)  # nn.Linear stores (out, in)
    else:
        out = net(x).numpy()
    np.testing.assert_allclose(out, mlp_forward_numpy(p, x), rtol=1e-5, atol=1e-6)
    back = fw.module_to_numpy(net)
    assert set(back) == set(p) and all(np.array_equal(back[k], p[k]) for k in p)
    with pytest.raises(ValueError, match="params"):
        fw.mlp_module({"w0": p["w0"]})


def test_weights_copy_across_frameworks_through_modules():
    import torch

    import course_utils.tensorflow as ctf
    import course_utils.torch as ct
    from course_utils.nets import init_mlp

    p = init_mlp((1, 40, 40, 1), rng=8)
    net = ct.mlp_module(p)
    with torch.no_grad():
        for prm in net.parameters():
            prm.add_(0.1)  # train-like change on the PyTorch side
    keras_model = ctf.mlp_module(ct.module_to_numpy(net))
    x = np.linspace(-5, 5, 11, dtype=np.float32)[:, None]
    np.testing.assert_allclose(keras_model(x).numpy(), net(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="Linear"):
        ct.module_to_numpy(torch.nn.ReLU())
    with pytest.raises(ValueError, match="Module"):
        ct.module_to_numpy(object())
    with pytest.raises(ValueError, match="Dense"):
        ctf.module_to_numpy(object())
