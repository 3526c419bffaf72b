"""Chapter 4: λ·KL objectives, distillation, Learning without Forgetting, sliders and checkers."""
from __future__ import annotations

import importlib

import matplotlib.pyplot as plt
import numpy as np
import pytest
import tensorflow as tf
import torch

from course_utils.chapters import ch04
from course_utils.nets import init_mlp
from course_utils.tensorflow import distill as tfd
from course_utils.torch import distill as td
from course_utils.widgets import set_values


@pytest.fixture(scope="module")
def demo():
    return ch04.make_gaussian_demo(2, seed=0)


def _args(demo):
    return demo.x_labelled, demo.y_labelled, demo.x_unlabelled, demo.p_star.astype(np.float32)


# --------------------------------------------------------------------------- Gaussian part
def test_closed_form_gradient_matches_finite_differences(demo):
    rng = np.random.default_rng(1)
    w, b = rng.standard_normal((2, 3)), rng.standard_normal(3)
    _, gw, gb = ch04.kl_objective_numpy(w, b, *_args(demo), lam=0.7)
    eps = 1e-6
    for idx in np.ndindex(w.shape):
        wp, wm = w.copy(), w.copy()
        wp[idx] += eps
        wm[idx] -= eps
        fd = (ch04.kl_objective_numpy(wp, b, *_args(demo), lam=0.7)[0]
              - ch04.kl_objective_numpy(wm, b, *_args(demo), lam=0.7)[0]) / (2 * eps)
        assert abs(fd - gw[idx]) < 1e-6
    bp = b.copy()
    bp[0] += eps
    bm = b.copy()
    bm[0] -= eps
    fd_b = (ch04.kl_objective_numpy(w, bp, *_args(demo), lam=0.7)[0]
            - ch04.kl_objective_numpy(w, bm, *_args(demo), lam=0.7)[0]) / (2 * eps)
    assert abs(fd_b - gb[0]) < 1e-6


@pytest.mark.parametrize("lam", [0.0, 0.7, 50.0])
def test_torch_tf_closed_form_gradient_parity(demo, lam):
    rng = np.random.default_rng(2)
    params = {"w0": rng.standard_normal((2, 3)).astype(np.float32), "b0": rng.standard_normal(3).astype(np.float32)}
    j_np, gw, gb = ch04.kl_objective_numpy(params["w0"], params["b0"], *_args(demo), lam=lam)
    j_t, g_t = td.kl_regularised_gradient(params, *_args(demo), lam=lam)
    j_tf, g_tf = tfd.kl_regularised_gradient(params, *_args(demo), lam=lam)
    assert np.isclose(j_t, j_np, rtol=1e-5) and np.isclose(j_tf, j_np, rtol=1e-5)
    scale = 1 + lam
    for g in (g_t, g_tf):
        assert np.allclose(g["w0"], gw, atol=1e-5 * scale) and np.allclose(g["b0"], gb, atol=1e-5 * scale)


def test_kl_is_zero_iff_equal_and_positive_otherwise():
    logits = torch.tensor([[1.0, -2.0, 0.5]])
    p = torch.softmax(logits, -1)
    assert abs(float(td.kl_divergence(p, logits))) < 1e-6
    assert float(td.kl_divergence(p, logits.flip(-1))) > 0.1
    assert abs(float(tfd.kl_divergence(p.numpy(), tf.constant(logits.numpy())))) < 1e-6
    # one-hot targets (zeros in p*) are fine: KL = cross-entropy then
    onehot = torch.tensor([[0.0, 1.0, 0.0]])
    ce = torch.nn.functional.cross_entropy(logits, torch.tensor([1]))
    assert torch.isclose(td.kl_divergence(onehot, logits), ce)


def test_distillation_gradient_is_T_times_difference():
    rng = np.random.default_rng(3)
    v = rng.standard_normal((4, 5)).astype(np.float32)
    z = torch.tensor(rng.standard_normal((4, 5)).astype(np.float32), requires_grad=True)
    for temperature in (1.0, 4.0):
        (g,) = torch.autograd.grad(td.distillation_kl(v, z, temperature=temperature), [z])
        expected = temperature * (torch.softmax(z / temperature, -1)
                                  - torch.softmax(torch.tensor(v) / temperature, -1)) / 4
        assert torch.allclose(g, expected, atol=1e-6)
        zt = tf.Variable(z.detach().numpy())
        with tf.GradientTape() as tape:
            loss = tfd.distillation_kl(v, zt, temperature=temperature)
        assert np.allclose(tape.gradient(loss, zt).numpy(), expected.detach().numpy(), atol=1e-6)


def test_fits_agree_and_large_lambda_reaches_bayes(demo):
    zero = {"w0": np.zeros((2, 3), np.float32), "b0": np.zeros(3, np.float32)}
    w_np, b_np = ch04.fit_softmax_kl(*_args(demo), [0.0, 10.0], steps=60)
    for i, lam in enumerate((0.0, 10.0)):
        f_t, h_t = td.fit_kl_regularised(zero, *_args(demo), lam=lam, steps=60)
        f_tf, h_tf = tfd.fit_kl_regularised(zero, *_args(demo), lam=lam, steps=60)
        assert h_t[-1] < h_t[0]
        assert np.allclose(f_t["w0"], w_np[i], atol=1e-4) and np.allclose(f_tf["w0"], f_t["w0"], atol=1e-5)
    r0, r1 = ch04.gaussian_view(0.0, 1, draw=False), ch04.gaussian_view(100.0, 1, draw=False)
    assert r1["agreement_with_bayes"] > 0.95 > r0["agreement_with_bayes"]
    assert r1["kl_to_true_posterior"] < 0.01 < r0["kl_to_true_posterior"]


def test_gaussian_sweep_exact_vs_wrong_teacher():
    lams = [0.0, 0.3, 100.0]
    exact = ch04.gaussian_sweep(lams, n_tasks=6)
    wrong = ch04.gaussian_sweep(lams, n_tasks=6, teacher_angle=0.6)
    assert exact["accuracy"][-1] > exact["accuracy"][0] + 0.02
    assert wrong["accuracy"][1] > wrong["accuracy"][-1]
    assert exact["kl"][-1] < 0.01


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="lam"):
        ch04.gaussian_view(-1.0, 2, draw=False)
    with pytest.raises(ValueError, match="k_shot"):
        ch04.make_gaussian_demo(0)
    with pytest.raises(ValueError, match="lams"):
        ch04.fit_softmax_kl(np.zeros((2, 2)), np.zeros(2, int), np.zeros((2, 2)), np.full((2, 3), 1 / 3), [np.nan])
    with pytest.raises(ValueError, match="temperature"):
        td.distillation_kl(np.zeros((1, 2)), torch.zeros(1, 2), temperature=0.0)
    with pytest.raises(ValueError, match="temperature"):
        tfd.distillation_kl(np.zeros((1, 2)), tf.zeros((1, 2)), temperature=-1.0)
    with pytest.raises(ValueError, match="n_bins"):
        ch04.expected_calibration_error(np.full((3, 2), 0.5), np.zeros(3, int), n_bins=0)


def test_distill_bad_inputs_raise(fw):
    mod = importlib.import_module(f"{fw.__name__}.distill")
    zero = {"w0": np.zeros((2, 3), np.float32), "b0": np.zeros(3, np.float32)}
    x, y = np.zeros((4, 2), np.float32), np.arange(4) % 3
    p = np.full((4, 3), 1 / 3, np.float32)
    with pytest.raises(ValueError, match="lr"):
        mod.fit_kl_regularised(zero, x, y, x, p, lr=0.0)
    with pytest.raises(ValueError, match="steps"):
        mod.fit_kl_regularised(zero, x, y, x, p, steps=-1)
    with pytest.raises(ValueError, match="lam"):
        mod.fit_kl_regularised(zero, x, y, x, p, lam=-0.5)
    net = {"w0": np.zeros((4, 3), np.float32), "b0": np.zeros(3, np.float32),
           "w1": np.zeros((3, 2), np.float32), "b1": np.zeros(2, np.float32),
           "w_old": np.zeros((2, 2), np.float32), "b_old": np.zeros(2, np.float32)}
    imgs = np.zeros((6, 2, 2), np.uint8)
    with pytest.raises(ValueError, match="labels"):
        mod.train_classifier(net, imgs, np.zeros(5, int))
    with pytest.raises(ValueError, match="batch_size"):
        mod.train_classifier(net, imgs, np.zeros(6, int), batch_size=0)
    with pytest.raises(ValueError, match="frozen"):
        mod.lwf_finetune(net, np.zeros((2, 4), np.float32), np.zeros(2, int), frozen=("w9",))
    with pytest.raises(ValueError, match="frozen"):
        mod.lwf_finetune(net, np.zeros((2, 4), np.float32), np.zeros(2, int), frozen="w0")
    assert {"adam_init", "adam_step"}.isdisjoint(mod.__all__)  # the one public Adam is core's


# --------------------------------------------------------------------------- widgets
def test_gaussian_widget_headless_extremes():
    w = ch04.gaussian_widget(seed=0, k_shot=2)
    assert "l2l-readout" in w.out._dom_classes
    lam_slider = w.kwargs_widgets[0]
    assert lam_slider.description == "λ"
    seen = set()
    for lam, k in [(0.0, 1), (max(v for _, v in lam_slider.options), 1), (0.1, 10), (1.0, 2)]:
        plt.close("all")
        r = set_values(w, lam=lam, k_shot=k)
        assert all(np.isfinite(r[key]) for key in ("accuracy", "kl_to_true_posterior", "objective", "ece"))
        assert r["lam"] == lam and r["k_shot"] == k
        seen.add(r["readout"])
    assert len(seen) == 4  # every position changes the readout
    # every slider position gives a different readout, and the figure is drawn
    readouts = []
    for lam in [v for _, v in lam_slider.options]:
        plt.close("all")
        r = ch04.gaussian_view(lam, 2)
        readouts.append(r["readout"])
        ax = r["figure"].axes[0]
        assert ax.collections and "λ" in ax.get_title()
    assert len(set(readouts)) == len(readouts)


# --------------------------------------------------------------------------- LwF
@pytest.fixture(scope="module")
def tiny_setup():
    rng = np.random.default_rng(0)
    d, h0, h1, c_old = 784, 16, 8, 6
    teacher = init_mlp((d, h0, h1), rng=1)
    head = init_mlp((h1, c_old), rng=2)
    teacher.update(w_old=head["w0"], b_old=head["b0"])
    x_old_img = rng.integers(0, 256, (60, 28, 28), dtype=np.uint8)
    y_old = np.arange(60) % c_old
    teacher, _ = td.train_classifier(teacher, x_old_img, y_old, epochs=3, batch_size=32, lr=1e-2, rng=0)
    x = lambda *s: rng.random(s).astype(np.float32)  # noqa: E731
    return ch04.LwFSetup(teacher=teacher, x_support=x(2, 3, d), y_support=np.tile(np.arange(3), (2, 1)),
                         x_query=x(2, 6, d), y_query=np.tile(np.repeat(np.arange(3), 2), (2, 1)),
                         x_old=(x_old_img.reshape(60, -1) / 255).astype(np.float32), y_old=y_old, steps=5, lr=0.1)


def test_teacher_training_parity_and_progress():
    rng = np.random.default_rng(4)
    p = init_mlp((784, 16, 8), rng=1)
    head = init_mlp((8, 4), rng=2)
    p.update(w_old=head["w0"], b_old=head["b0"])
    imgs = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)
    labels = np.arange(64) % 4
    a, ha = td.train_classifier(p, imgs, labels, epochs=4, batch_size=16, lr=1e-2, rng=0)
    b, hb = tfd.train_classifier(p, imgs, labels, epochs=4, batch_size=16, lr=1e-2, rng=0)
    assert ha[-1] < ha[0]
    assert np.allclose(ha, hb, atol=1e-4)
    assert all(np.allclose(a[k], b[k], atol=1e-4) for k in a)


def test_lwf_loss_gradient_and_finetune_parity(tiny_setup):
    s = tiny_setup
    student = ch04.lwf_student(s, 2)
    student["w_new"] = (0.1 * np.random.default_rng(5).standard_normal(student["w_new"].shape)).astype(np.float32)
    v = td.lwf_forward(td.from_numpy(s.teacher, requires_grad=False), torch.as_tensor(s.x_support))[0].numpy()
    lam = np.float32([0.0, 2.0])
    th_t, th_tf = td.from_numpy(student), tfd.from_numpy(student)
    l_t = td.lwf_loss(th_t, s.x_support, s.y_support, v, lam=lam, temperature=3.0)
    g_t = torch.autograd.grad(l_t.sum(), list(th_t.values()))
    with tf.GradientTape() as tape:
        l_tf = tfd.lwf_loss(th_tf, s.x_support, s.y_support, v, lam=lam, temperature=3.0)
        total = tf.reduce_sum(l_tf)
    g_tf = tape.gradient(total, list(th_tf.values()))
    assert np.allclose(l_t.detach().numpy(), l_tf.numpy(), atol=1e-5)
    for a, b in zip(g_t, g_tf):
        assert np.allclose(a.numpy(), b.numpy(), atol=1e-5)
    # at the start the old head equals the teacher's: the KL term is zero, so λ does not change the loss
    l_0 = td.lwf_loss(th_t, s.x_support, s.y_support, v, lam=0.0, temperature=3.0)
    assert torch.allclose(l_t.detach(), l_0.detach(), atol=1e-6)
    f_t, h_t = td.lwf_finetune(student, s.x_support, s.y_support, lam=lam, steps=8, lr=0.1)
    f_tf, h_tf = tfd.lwf_finetune(student, s.x_support, s.y_support, lam=lam, steps=8, lr=0.1)
    assert np.allclose(h_t, h_tf, atol=1e-5)
    assert all(np.allclose(f_t[k], f_tf[k], atol=1e-5) for k in f_t)
    assert np.array_equal(f_t["w0"], student["w0"])  # frozen first layer
    assert h_t[-1, 0] < h_t[0, 0]


def test_lwf_per_copy_equals_single_runs(tiny_setup):
    s = tiny_setup
    batched, _ = td.lwf_finetune(ch04.lwf_student(s, 2), s.x_support, s.y_support,
                                 lam=np.float32([0.0, 5.0]), steps=4)
    for i, lam in enumerate((0.0, 5.0)):
        single = {k: (v if k in ("w0", "b0") else v[i]) for k, v in ch04.lwf_student(s, 2).items()}
        out, _ = td.lwf_finetune(single, s.x_support[i], s.y_support[i], lam=lam, steps=4)
        assert np.allclose(out["w1"], batched["w1"][i], atol=1e-6)


def test_lwf_view_and_widget_extremes(tiny_setup):
    w = ch04.lwf_widget(tiny_setup)
    assert "l2l-readout" in w.out._dom_classes
    readouts = set()
    for lam, temp in [(0.0, 0.5), (100.0, 8.0), (1.0, 2.0)]:
        plt.close("all")
        r = set_values(w, lam=lam, temperature=temp)
        for key in ("new_accuracy", "old_accuracy", "ece", "confidence"):
            assert np.isfinite(r[key])
        readouts.add(r["readout"])
    assert len(readouts) == 3
    plt.close("all")
    fig = ch04.lwf_view(0.0, 2.0, setup=tiny_setup)["figure"]
    assert len(fig.axes) == 2 and fig.axes[0].patches
    sweep = ch04.lwf_sweep(tiny_setup, [0.0, 1.0, 100.0])
    assert sweep["new_accuracy"].shape == (3,) and np.all(np.isfinite(sweep["ece"]))


def test_lwf_k1_is_finite(tiny_setup):
    s = tiny_setup
    one_shot = ch04.LwFSetup(teacher=s.teacher, x_support=s.x_support[:, :3], y_support=s.y_support[:, :3],
                             x_query=s.x_query, y_query=s.y_query, x_old=s.x_old, y_old=s.y_old, steps=3)
    r = ch04.lwf_view(100.0, 8.0, setup=one_shot, draw=False)
    assert all(np.isfinite(r[k]) for k in ("new_accuracy", "old_accuracy", "ece"))


# --------------------------------------------------------------------------- calibration and checkers
def test_ece_known_values():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    labels = np.array([0, 1, 0, 0])
    # bin 0.9: accuracy 0.5, confidence 0.9 (weight 1/2); bin 0.6: accuracy 1, confidence 0.6 (weight 1/2)
    assert np.isclose(ch04.expected_calibration_error(probs, labels), 0.5 * 0.4 + 0.5 * 0.4)
    perfect = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert ch04.expected_calibration_error(perfect, np.array([0, 1])) == 0.0


def test_checkers_accept_solutions_and_reject_wrong(capsys):
    def grad_kl(w, b, x, p_star):
        r = ch04.softmax(x @ w + b) - p_star
        return x.T @ r / len(x), r.mean(0)

    def grad_wrong(w, b, x, p_star):
        r = p_star - ch04.softmax(x @ w + b)
        return x.T @ r / len(x), r.mean(0)

    assert ch04.check_kl_gradient(grad_kl) and not ch04.check_kl_gradient(grad_wrong)
    assert not ch04.check_kl_gradient(None) and not ch04.check_kl_gradient(lambda *a: 1 / 0)
    assert ch04.check_soft_targets(lambda z, t: ch04.softmax(z / t))
    assert not ch04.check_soft_targets(lambda z, t: ch04.softmax(z * t)) and not ch04.check_soft_targets(None)

    def ece(probs, labels, n_bins):
        conf, correct = probs.max(1), probs.argmax(1) == labels
        bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
        return sum((bins == k).mean() * abs(correct[bins == k].mean() - conf[bins == k].mean())
                   for k in range(n_bins) if (bins == k).any())

    assert ch04.check_ece(ece)
    assert not ch04.check_ece(lambda p, y, n: abs((p.argmax(1) == y).mean() - p.max(1).mean()))
    assert not ch04.check_ece(None)
    demo = ch04.make_gaussian_demo(2, seed=0)
    p = demo.task.posterior(demo.x_labelled)
    limit = float(-np.mean(np.log(p[np.arange(len(demo.y_labelled)), demo.y_labelled])))
    assert ch04.check_large_lambda_limit(limit, demo=demo)
    assert not ch04.check_large_lambda_limit(np.log(3), demo=demo)          # the uniform prediction
    assert not ch04.check_large_lambda_limit(limit + 0.01, demo=demo)
    assert not ch04.check_large_lambda_limit("b", demo=demo) and not ch04.check_large_lambda_limit(None, demo=demo)
    w, b = ch04.fit_softmax_kl(demo.x_labelled, demo.y_labelled, demo.x_unlabelled, demo.p_star, [1e4],
                               steps=300, lr=0.5)
    q = ch04.softmax(demo.x_labelled @ w[0] + b[0])
    fitted = float(-np.mean(np.log(q[np.arange(len(demo.y_labelled)), demo.y_labelled])))
    assert abs(fitted - limit) < 0.01 * limit, "a large-λ fit reaches the checker's limit"
    out = capsys.readouterr().out
    assert "✅" in out and "❌" in out
