"""Chapters 3 and 5: regularised fine-tuning, function-space priors, sliders and checkers."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import course_utils.tensorflow as cutf
import course_utils.torch as cut
from course_utils import sample_sinusoid_tasks
from course_utils.chapters import ch03, ch05
from course_utils.grading import max_abs_diff
from course_utils.nets import mlp_forward_numpy
from course_utils.sweeps import best_lambdas
from course_utils.widgets import set_values

SIZES = (1, 16, 16, 1)


@pytest.fixture(scope="module")
def theta0():
    """A quickly pretrained small net (deterministic)."""
    params, _ = cut.pretrain_sinusoid_mlp(sizes=SIZES, steps=150, rng=0)
    return params


@pytest.fixture(scope="module")
def big_theta0():
    """The chapters' 1-40-40-1 net, briefly pretrained (for the sliders)."""
    params, _ = cut.pretrain_sinusoid_mlp(steps=300, rng=0)
    return params


@pytest.fixture(scope="module")
def demo_task():
    return sample_sinusoid_tasks(1, 20, 1, rng=5)


def _data(m=3, k=4, seed=1):
    t = sample_sinusoid_tasks(m, k, 1, rng=seed)
    return t.x_support, t.y_support


# ------------------------------------------------------------------ pretraining
def test_pretrain_is_deterministic_and_learns():
    a, ha = cut.pretrain_sinusoid_mlp(sizes=SIZES, steps=200, rng=3)
    b, hb = cut.pretrain_sinusoid_mlp(sizes=SIZES, steps=200, rng=3)
    c, _ = cut.pretrain_sinusoid_mlp(sizes=SIZES, steps=200, rng=4)
    assert max_abs_diff(a, b) == 0 and ha == hb
    assert max_abs_diff(a, c) > 1e-3
    assert np.mean(ha[-30:]) < 0.9 * np.mean(ha[:30])


def test_pretrain_parity_torch_tensorflow():
    a, ha = cut.pretrain_sinusoid_mlp(sizes=SIZES, steps=15, rng=2)
    b, hb = cutf.pretrain_sinusoid_mlp(sizes=SIZES, steps=15, rng=2)
    assert max_abs_diff(a, b) < 1e-5
    np.testing.assert_allclose(ha, hb, rtol=1e-5)


@pytest.mark.parametrize("kwargs, match", [({"steps": 0}, "steps"), ({"lr": 0.0}, "lr"),
                                           ({"n_tasks": -1}, "n_tasks")])
def test_pretrain_rejects_bad_input(fw, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fw.pretrain_sinusoid_mlp(sizes=SIZES, **kwargs)


# ------------------------------------------------------------------ penalties and gradients
def test_penalty_values(theta0):
    p = cut.stack_params(theta0, 2)
    moved = {k: v + 0.5 for k, v in p.items()}
    n = sum(v.size for v in theta0.values())
    np.testing.assert_allclose(cut.l2sp_penalty(p, p).numpy(), 0.0)
    np.testing.assert_allclose(cut.l2sp_penalty(moved, p).numpy(), 0.25 * n, rtol=1e-5)
    np.testing.assert_allclose(cut.proximal_penalty(moved, p).numpy(), 0.125 * n, rtol=1e-5)
    np.testing.assert_allclose(cut.l2_penalty(p).numpy()[0], sum(np.sum(v ** 2) for v in theta0.values()), rtol=1e-5)
    grid = torch.linspace(-5, 5, 11).reshape(-1, 1)
    prior = torch.as_tensor(mlp_forward_numpy(theta0, grid.numpy()))
    assert float(cut.function_space_penalty(p, grid, prior).abs().max()) < 1e-10
    np.testing.assert_allclose(cut.function_space_penalty(p, grid, prior + 2.0).numpy(), 4.0, rtol=1e-5)


def test_penalties_parity(theta0):
    pt = {k: v + 0.3 for k, v in cut.stack_params(theta0, 2).items()}
    tf_p = {k: cutf.stack_params(theta0, 2)[k] + 0.3 for k in theta0}
    for name in ("l2", "l2sp", "proximal"):
        args_pt = (pt,) if name == "l2" else (pt, cut.stack_params(theta0, 2))
        args_tf = (tf_p,) if name == "l2" else (tf_p, cutf.stack_params(theta0, 2))
        a = getattr(cut, f"{name}_penalty")(*args_pt).numpy()
        b = getattr(cutf, f"{name}_penalty")(*args_tf).numpy()
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_penalty_gradients_match_formulas(theta0):
    lam = 0.37
    anchor = cut.stack_params(theta0, 1)
    theta = {k: (v * 1.1 + 0.05).requires_grad_(True) for k, v in cut.stack_params(theta0, 1).items()}
    g = torch.autograd.grad(lam * cut.l2sp_penalty(theta, anchor).sum(), list(theta.values()))
    for (k, v), gk in zip(theta.items(), g):
        torch.testing.assert_close(gk, 2 * lam * (v - anchor[k]).detach())
    g = torch.autograd.grad(lam * cut.l2_penalty(theta).sum(), list(theta.values()))
    for v, gk in zip(theta.values(), g):
        torch.testing.assert_close(gk, 2 * lam * v.detach())
    # function space, last layer: ∇_u λ mean_g (H_g u − f*)² = (2λ/G) H_gᵀ(H_g u − f*)
    grid = np.linspace(-5, 5, 9, dtype=np.float32).reshape(-1, 1)
    prior = torch.as_tensor(np.sin(grid))
    g = torch.autograd.grad(lam * cut.function_space_penalty(theta, torch.as_tensor(grid), prior).sum(),
                            [theta["w2"], theta["b2"]])
    moved = {k: v[0].detach().numpy().reshape(theta0[k].shape) for k, v in theta.items()}
    h = cut.last_layer_features(moved, grid).double()
    u = torch.cat([theta["w2"][0], theta["b2"][0].reshape(1, 1)]).detach().double()
    formula = 2 * lam / 9 * h.T @ (h @ u - prior.double())
    torch.testing.assert_close(torch.cat([g[0][0], g[1][0].reshape(1, 1)]).double(), formula, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ fine-tuning
# Adam divides by √v: on coordinates whose gradient is ~0 (dead ReLUs seen through the grid of the
# function penalty) float32 rounding decides the step, so that one pairing is not bit-comparable.
@pytest.mark.parametrize("penalty, optimizer", [(p, o) for p in ("l2", "l2sp", "proximal", "function")
                                                for o in ("momentum", "gd", "adam")
                                                if (p, o) != ("function", "adam")])
def test_finetune_parity(theta0, penalty, optimizer):
    xs, ys = _data(m=3)
    lam = np.array([0.0, 0.1, 3.0], dtype=np.float32)
    a, ha = cut.finetune(theta0, xs, ys, lam, penalty=penalty, steps=20, optimizer=optimizer, return_history=True)
    b, hb = cutf.finetune(theta0, xs, ys, lam, penalty=penalty, steps=20, optimizer=optimizer, return_history=True)
    assert max_abs_diff(a, b) < 1e-5
    np.testing.assert_allclose(ha, hb, rtol=1e-4, atol=1e-6)
    assert np.all(ha[-1] < ha[0])  # the objective fell for every model


def test_finetune_lambda_limits(theta0):
    xs, ys = _data(m=1)
    free = cut.finetune(theta0, xs, ys, 0.0, penalty="l2sp", steps=50)
    same = cut.finetune(theta0, xs, ys, 0.0, penalty="l2", steps=50)
    assert max_abs_diff(free, same) == 0  # λ = 0: the regulariser is gone
    anchored = cut.finetune(theta0, xs, ys, 1e4, penalty="l2sp", steps=50)
    dist = lambda p: np.sqrt(sum(np.sum((p[k][0].reshape(-1) - theta0[k].reshape(-1)) ** 2) for k in theta0))
    assert dist(anchored) < 0.01 * dist(free)
    decayed = cut.finetune(theta0, xs, ys, 1e4, penalty="l2", steps=100)
    assert sum(np.sum(v ** 2) for v in decayed.values()) < 0.1 * sum(np.sum(v ** 2) for v in theta0.values())


def test_finetune_models_are_independent(theta0):
    xs, ys = _data(m=4)
    lam = np.array([0.0, 0.01, 1.0, 10.0], dtype=np.float32)
    batch = cut.finetune(theta0, xs, ys, lam, steps=30)
    alone = cut.finetune(theta0, xs[2:3], ys[2:3], lam[2:3], steps=30)
    assert max_abs_diff({k: v[2] for k, v in batch.items()}, {k: v[0] for k, v in alone.items()}) < 1e-6


def test_finetune_trainable_freezes_the_rest(theta0):
    xs, ys = _data(m=2)
    out = cut.finetune(theta0, xs, ys, 0.1, trainable=("w2", "b2"), steps=10)
    for k in ("w0", "b0", "w1", "b1"):
        assert np.array_equal(out[k][0].reshape(-1), theta0[k].reshape(-1))
    assert not np.array_equal(out["w2"][0], theta0["w2"])


def test_finetune_rejects_bad_input(fw, theta0):
    xs, ys = _data(m=2)
    with pytest.raises(ValueError, match="penalty"):
        fw.finetune(theta0, xs, ys, 0.1, penalty="l1")
    with pytest.raises(ValueError, match="lam"):
        fw.finetune(theta0, xs, ys, -0.1)
    with pytest.raises(ValueError, match="lam"):
        fw.finetune(theta0, xs, ys, [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="x_support"):
        fw.finetune(theta0, xs[..., 0], ys, 0.1)
    with pytest.raises(ValueError, match="trainable"):
        fw.finetune(theta0, xs, ys, 0.1, trainable=("w9",))
    with pytest.raises(ValueError, match="optimizer"):
        fw.finetune(theta0, xs, ys, 0.1, optimizer="sgd")
    with pytest.raises(ValueError, match="steps"):
        fw.finetune(theta0, xs, ys, 0.1, steps=-1)
    with pytest.raises(ValueError, match="lr"):
        fw.finetune(theta0, xs, ys, 0.1, lr=float("inf"))
    with pytest.raises(ValueError, match="momentum"):
        fw.finetune(theta0, xs, ys, 0.1, momentum=1.0)
    with pytest.raises(ValueError, match="return_history"):
        fw.finetune(theta0, xs, ys, 0.1, return_history="yes")
    with pytest.raises(ValueError, match="keys of params"):  # an anchor with other parameters than θ₀
        fw.finetune(theta0, xs, ys, 0.1, anchor={"w0": theta0["w0"]})


# ------------------------------------------------------------------ closed form
@pytest.mark.parametrize("penalty", ["l2", "l2sp", "proximal"])
def test_closed_form_matches_converged_solver(theta0, penalty):
    xs, ys = _data(m=1, k=6)
    exact = cut.last_layer_closed_form(theta0, xs[0], ys[0], 0.5, penalty=penalty)
    it = cut.finetune(theta0, xs, ys, 0.5, penalty=penalty, trainable=("w2", "b2"), steps=1500, lr=0.01)
    assert max_abs_diff(it["w2"][0], exact["w2"]) < 1e-4
    assert max_abs_diff(it["b2"][0].reshape(-1), exact["b2"]) < 1e-4
    exact_tf = cutf.last_layer_closed_form(theta0, xs[0], ys[0], 0.5, penalty=penalty)
    assert max_abs_diff(exact, exact_tf) < 1e-5


def test_closed_form_function_space_is_the_minimiser(theta0):
    xs, ys = _data(m=1, k=5)
    grid = ch05.GRID
    exact = cut.last_layer_closed_form(theta0, xs[0], ys[0], 1.0, penalty="function", x_grid=grid)
    it = cut.finetune(theta0, xs, ys, 1.0, penalty="function", x_grid=grid, trainable=("w2", "b2"), steps=500)
    prior = torch.as_tensor(mlp_forward_numpy(theta0, grid))
    obj = lambda p: float(cut.regularised_objective(cut.stack_params({k: np.asarray(v).reshape(theta0[k].shape)
                                                                       for k, v in p.items()}, 1),
                                                     torch.as_tensor(xs), torch.as_tensor(ys), 1.0, penalty="function",
                                                     x_grid=torch.as_tensor(grid), f_prior=prior)[0])
    assert obj(exact) <= obj({k: v[0] for k, v in it.items()}) + 1e-5


# ------------------------------------------------------------------ sweeps
def test_lambda_sweep_shapes_and_parity(theta0):
    tasks = sample_sinusoid_tasks(3, 6, 1, rng=9)
    lams = [0.0, 0.1, 10.0]
    a = cut.lambda_sweep(theta0, tasks, lams, k_shots=(2, 6), penalties=("l2", "l2sp"), steps=30)
    b = cutf.lambda_sweep(theta0, tasks, lams, k_shots=(2, 6), penalties=("l2", "l2sp"), steps=30)
    assert a["test_mse"]["l2"].shape == (2, 3) and a["per_task"]["l2sp"].shape == (2, 3, 3)
    for p in ("l2", "l2sp"):
        np.testing.assert_allclose(a["test_mse"][p], b["test_mse"][p], rtol=1e-4)
        np.testing.assert_allclose(a["test_mse"][p][:, 0], a["test_mse"]["l2"][:, 0])  # λ = 0 is shared
    # the sweep equals fine-tuning one model by hand
    one = cut.finetune(theta0, tasks.x_support[1:2, :2], tasks.y_support[1:2, :2], 0.1, penalty="l2sp", steps=30)
    x = np.linspace(-5, 5, 100, dtype=np.float32)
    pred = mlp_forward_numpy({k: v[0].reshape(theta0[k].shape) for k, v in one.items()}, x[:, None])[:, 0]
    np.testing.assert_allclose(a["per_task"]["l2sp"][0, 1, 1], np.mean((pred - tasks.true_function(x)[1]) ** 2),
                               rtol=1e-4)


def test_lambda_sweep_rejects_bad_input(fw, theta0):
    tasks = sample_sinusoid_tasks(2, 4, 1, rng=0)
    with pytest.raises(ValueError, match="k_shots"):
        fw.lambda_sweep(theta0, tasks, [0.1], k_shots=(5,))
    with pytest.raises(ValueError, match="lam"):
        fw.lambda_sweep(theta0, tasks, [-1.0])
    with pytest.raises(ValueError, match="penalties"):
        fw.lambda_sweep(theta0, tasks, [0.1], k_shots=(2,), penalties=("l3",))


def test_best_lambdas_and_plots():
    sweep = {"lambdas": np.array([0.0, 0.1, 1.0]), "k_shots": np.array([1, 10]),
             "test_mse": {"function": np.array([[3.0, 2.0, 1.0], [0.5, 0.7, 2.0]]),
                          "proximal": np.array([[3.0, 1.0, 2.0], [1.0, 0.5, 2.0]])}}
    best = best_lambdas(sweep)
    assert ch03.best_lambdas is best_lambdas  # chapter 3's notebook name for the one implementation
    np.testing.assert_array_equal(best["function"], [1.0, 0.0])
    np.testing.assert_array_equal(best["proximal"], [0.1, 0.1])
    ax = ch05.plot_best_lambda(sweep["k_shots"], best)
    assert len(ax.lines) == 2 and np.all(np.isfinite(ax.lines[0].get_ydata()))
    ax = ch03.plot_sweep(sweep)
    assert len(ax.lines) == 4 and ax.get_xlabel().startswith("λ")


# ------------------------------------------------------------------ sliders (headless)
def _lines_drawn(fig):
    return sum(len(ax.lines) for ax in fig.axes)


def test_transfer_explorer_extremes(big_theta0, demo_task):
    w = ch03.transfer_explorer(big_theta0, demo_task)
    lam_w = next(c for c in w.kwargs_widgets if c._kwarg == "lam")
    assert "l2l-lambda" in lam_w._dom_classes and "l2l-readout" in w.out._dom_classes
    values = [v for _, v in lam_w.options]
    assert values[0] == 0.0 and values[-1] == pytest.approx(100.0)
    results = {}
    for lam, k in ((0.0, 5), (values[-1], 5), (0.1, 1), (0.0, 1), (values[-1], 20)):
        plt.close("all")
        r = set_values(w, lam=lam, k_shot=k)
        assert r["lam"] == lam and r["k_shot"] == k
        assert all(np.isfinite(r[p][m]) for p in ("l2", "l2sp") for m in ("train_mse", "test_mse", "dist"))
        assert _lines_drawn(r["figure"]) >= 4  # true, pretrained and the two fits
        assert "λ = " in r["figure"].axes[0].get_title()
        results[(lam, k)] = r
    r0, rmax = results[(0.0, 5)], results[(values[-1], 5)]
    assert r0["l2"]["test_mse"] == pytest.approx(r0["l2sp"]["test_mse"])      # λ = 0: same problem
    assert rmax["l2sp"]["dist"] < 0.1 * r0["l2sp"]["dist"]                    # L2-SP stays at θ₀
    assert rmax["l2"]["dist"] > r0["l2"]["dist"]                              # weight decay leaves θ₀ for 0
    assert rmax["l2sp"]["train_mse"] > r0["l2sp"]["train_mse"]                # and fits the points worse


def test_transfer_view_rejects_bad_input(big_theta0, demo_task):
    with pytest.raises(ValueError, match="k_shot"):
        ch03.transfer_view(0.1, 0, params=big_theta0, task=demo_task, draw=False)
    with pytest.raises(ValueError, match="k_shot"):
        ch03.transfer_view(0.1, 21, params=big_theta0, task=demo_task, draw=False)
    with pytest.raises(ValueError, match="lam"):
        ch03.transfer_view(-1.0, 3, params=big_theta0, task=demo_task, draw=False)


def test_meta_regression_explorer_extremes(big_theta0, demo_task):
    best = {"function": np.array([1.0, 0.1, 0.0]), "proximal": np.array([10.0, 1.0, 0.1])}
    w = ch05.meta_regression_explorer(big_theta0, demo_task, best=best, k_grid=(1, 5, 20))
    lam_w = next(c for c in w.kwargs_widgets if c._kwarg == "lam")
    lam_max = lam_w.options[-1][1]
    results = {}
    for lam, k in ((0.0, 1), (lam_max, 1), (0.1, 20), (0.0, 20)):
        plt.close("all")
        r = set_values(w, lam=lam, k_shot=k)
        assert all(np.isfinite(v) for p in ("function", "proximal") for v in r[p].values())
        assert len(r["figure"].axes) == 2 and _lines_drawn(r["figure"]) >= 6
        results[(lam, k)] = r
    r0, rmax = results[(0.0, 1)], results[(lam_max, 1)]
    assert r0["function"]["test_mse"] == pytest.approx(r0["proximal"]["test_mse"])
    assert rmax["function"]["d_prior"] < 0.1 * r0["function"]["d_prior"]      # pulled onto f*
    assert rmax["proximal"]["dist"] < 0.3 * r0["proximal"]["dist"]            # pulled towards θ


# ------------------------------------------------------------------ checkers
def test_ch03_checkers(big_theta0, demo_task, capsys):
    assert ch03.check_l2sp_gradient(lambda t, t0, lam: 2 * lam * (t - t0))
    assert not ch03.check_l2sp_gradient(lambda t, t0, lam: lam * (t - t0))
    assert not ch03.check_l2sp_gradient(lambda t, t0, lam: None)
    assert not ch03.check_l2sp_gradient(None)
    ridge = lambda h, y, lam, u0: np.linalg.solve(h.T @ h / len(h) + lam * np.eye(h.shape[1]),
                                                  h.T @ y / len(h) + lam * u0)
    assert ch03.check_ridge_solution(ridge)
    assert not ch03.check_ridge_solution(lambda h, y, lam, u0: np.linalg.lstsq(h, y, rcond=None)[0])
    assert not ch03.check_ridge_solution(lambda h, y, lam, u0: 1 / 0)
    y = demo_task.true_function(ch03.X_PLOT)[0]
    good = {"l2": float(np.mean(y ** 2)),
            "l2sp": float(np.mean((mlp_forward_numpy(big_theta0, ch03.X_PLOT[:, None])[:, 0] - y) ** 2))}
    assert ch03.check_infinite_lambda(good, params=big_theta0, task=demo_task)
    assert not ch03.check_infinite_lambda({"l2": good["l2sp"], "l2sp": good["l2"]}, params=big_theta0, task=demo_task)
    assert not ch03.check_infinite_lambda(None, params=big_theta0, task=demo_task)
    assert not ch03.check_infinite_lambda({"l2": 1.0}, params=big_theta0, task=demo_task)
    out = capsys.readouterr().out
    assert "✅" in out and "❌" in out


def test_ch05_checkers(capsys):
    assert ch05.check_function_penalty_gradient(lambda p, w, f, lam: 2 * lam / len(p) * p.T @ (p @ w - f))
    assert not ch05.check_function_penalty_gradient(lambda p, w, f, lam: 2 * lam * p.T @ (p @ w - f))
    assert not ch05.check_function_penalty_gradient(None)
    assert ch05.check_function_metric(lambda p: p.T @ p / len(p))
    assert not ch05.check_function_metric(lambda p: p.T @ p)
    assert not ch05.check_function_metric(lambda p: None)
    sweep = {"lambdas": np.array([0.0, 0.1, 1.0]), "k_shots": np.array([1, 10]),
             "test_mse": {"function": np.array([[3.0, 2.0, 1.0], [0.5, 0.2, 2.0]])}}
    assert ch05.check_sum_convention([1.0, 1.0], sweep=sweep)
    assert not ch05.check_sum_convention([1.0, 0.1], sweep=sweep)
    assert not ch05.check_sum_convention(None, sweep=sweep)
    assert "❌" in capsys.readouterr().out
    assert not ch05.check_sum_convention([1.0, 0.01], sweep=sweep)                   # divided by K
    assert "divided by K" in capsys.readouterr().out
    assert not ch05.check_sum_convention([1.0, 0.1], sweep=sweep)                    # the mean convention
    out = capsys.readouterr().out
    assert "mean convention" in out and "best_lambdas" not in out, "the hint is not the solution code"


def test_objectives_are_reexported():  # names and signatures of both halves: tests/frameworks/test_mirror.py
    for name in ("pretrain_sinusoid_mlp", "finetune", "lambda_sweep", "last_layer_closed_form",
                 "function_space_penalty", "proximal_penalty"):
        assert callable(getattr(cut, name)) and callable(getattr(cutf, name))
