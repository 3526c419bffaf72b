"""Chapter 4 (L + λ·D(p_θ, p*)): pure slider callbacks, sweeps and challenge checkers.

Part 1, 2-D Gaussians (NumPy, closed-form gradient): softmax regression fitted on K labelled
points per class plus ``λ·KL(p* ‖ p_θ)`` on unlabelled points, where p* is the task's exact
posterior (:meth:`course_utils.tasks.GaussianTask.posterior`).

Part 2, Omniglot (PyTorch engine from :mod:`course_utils.torch.distill`): Learning without
Forgetting - a few-shot student that shares a teacher's features, with new-task accuracy,
old-task retention and calibration (ECE) as functions of λ and the temperature T.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import matplotlib.pyplot as plt
import numpy as np

from course_utils.grading import close, report
from course_utils.plots import new_figure, show_figure
from course_utils.tasks import GaussianTask, GaussianTaskFamily
from course_utils.validation import (check_array, check_bool, check_float, check_instance, check_int, check_kl_data,
                                     check_labels, check_lr, check_numbers, check_positive_int, check_probabilities)
from course_utils.widgets import float_slider, int_slider, lambda_slider, make_interactive

__all__ = [
    "softmax",
    "kl_objective_numpy",
    "fit_softmax_kl",
    "GaussianDemo",
    "make_gaussian_demo",
    "shifted_teacher",
    "gaussian_view",
    "gaussian_widget",
    "gaussian_sweep",
    "expected_calibration_error",
    "LwFSetup",
    "lwf_student",
    "lwf_evaluate",
    "lwf_view",
    "lwf_widget",
    "lwf_sweep",
    "check_kl_gradient",
    "check_soft_targets",
    "check_ece",
    "check_large_lambda_limit",
]

READOUT_CLASS = "l2l-readout"


def _check_lams(lams, name: str = "lams") -> np.ndarray:
    """One λ or a 1-D array of them, every entry finite and >= 0, as float64 (L,)."""
    if isinstance(lams, np.ndarray) and lams.ndim == 0:
        lams = lams.item()
    if isinstance(lams, (int, float, np.integer, np.floating)) and not isinstance(lams, (bool, np.bool_)):
        return np.array([check_float(lams, name, 0.0)])
    return np.asarray(check_numbers(lams, name, low=0.0, nonempty=True), dtype=np.float64)


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax over the last axis (numerically stable)."""
    z = np.asarray(check_array(z, "z", min_ndim=1, dtype="real"), dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _xlogx(p):
    return np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)


# --------------------------------------------------------------------------- part 1: Gaussians
def kl_objective_numpy(w: np.ndarray, b: np.ndarray, x_labelled, y_labelled, x_unlabelled, p_star,
                       lam: float = 0.0) -> tuple[float, np.ndarray, np.ndarray]:
    """J = mean CE + λ·mean KL(p* ‖ p_θ) and its closed-form gradient, for p_θ = softmax(xW + b).

    ∇_W J = X_lᵀ(P_l − Y)/n + λ·X_uᵀ(P_u − P*)/m and ∇_b J = mean(P_l − Y) + λ·mean(P_u − P*).

    Shapes: ``w`` (d, C), ``b`` (C,), ``x_labelled`` (n, d), ``y_labelled`` (n,),
    ``x_unlabelled`` (m, d), ``p_star`` (m, C). Returns ``(J, grad_w, grad_b)`` in float64.
    """
    lam = check_float(lam, "lam", 0.0)
    check_array(w, "w", ndim=2, dtype="real")
    d, c = np.shape(w)
    check_array(b, "b", shape=(c,), dtype="real")
    check_kl_data(x_labelled, y_labelled, x_unlabelled, p_star, d=d, c=c)
    w, b = np.asarray(w, np.float64), np.asarray(b, np.float64)
    xl, xu = np.asarray(x_labelled, np.float64), np.asarray(x_unlabelled, np.float64)
    ps = np.asarray(p_star, np.float64)
    y = np.eye(w.shape[1])[np.asarray(y_labelled)]
    log_pl = _log_softmax(xl @ w + b)
    log_pu = _log_softmax(xu @ w + b)
    ce = -(y * log_pl).sum(1).mean()
    kl = (_xlogx(ps) - ps * log_pu).sum(1).mean()
    rl, ru = np.exp(log_pl) - y, np.exp(log_pu) - ps
    grad_w = xl.T @ rl / len(xl) + lam * xu.T @ ru / len(xu)
    grad_b = rl.mean(0) + lam * ru.mean(0)
    return float(ce + lam * kl), grad_w, grad_b


def fit_softmax_kl(x_labelled, y_labelled, x_unlabelled, p_star, lams, *, steps: int = 300,
                   lr: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Gradient descent on J for many λ (and optionally many tasks) at once, from W = 0, b = 0.

    Each λ steps by ``lr / (1 + λ)`` (J's curvature grows with λ; the minimiser does not change).

    Args:
        x_labelled: (..., n, d); y_labelled: ints (..., n); x_unlabelled: (..., m, d);
            p_star: (..., m, C). Leading axes ``...`` (e.g. tasks) are optional and shared.
        lams: one λ or an array (L,) of λ >= 0.
        steps: gradient steps (>= 0). A fixed budget: with λ = 0 and separable points the
            cross-entropy has no minimiser, so the number of steps acts as a regulariser.
        lr: the base step size (finite, > 0).

    Returns:
        ``(w, b)`` of shapes (..., L, d, C) and (..., L, C), float64.
    """
    check_kl_data(x_labelled, y_labelled, x_unlabelled, p_star, batched=True)
    lams = _check_lams(lams)
    steps = check_int(steps, "steps", 0)
    lr = check_lr(lr, "lr")
    xl = np.asarray(x_labelled, np.float64)[..., None, :, :]      # (..., 1, n, d)
    xu = np.asarray(x_unlabelled, np.float64)[..., None, :, :]    # (..., 1, m, d)
    ps = np.asarray(p_star, np.float64)[..., None, :, :]          # (..., 1, m, C)
    c = ps.shape[-1]
    y = np.eye(c)[np.asarray(y_labelled)][..., None, :, :]        # (..., 1, n, C)
    batch = xl.shape[:-3]
    w = np.zeros(batch + (lams.size, xl.shape[-1], c))
    b = np.zeros(batch + (lams.size, c))
    lam_b = lams[:, None]
    step = lr / (1.0 + lam_b)
    xl_t, xu_t = np.swapaxes(xl, -1, -2), np.swapaxes(xu, -1, -2)
    n, m = xl.shape[-2], xu.shape[-2]
    for _ in range(steps):
        rl = softmax(xl @ w + b[..., None, :]) - y                 # (..., L, n, C)
        ru = softmax(xu @ w + b[..., None, :]) - ps                # (..., L, m, C)
        gw = xl_t @ rl / n + lam_b[:, :, None] * (xu_t @ ru) / m
        gb = rl.mean(-2) + lam_b * ru.mean(-2)
        w -= step[:, :, None] * gw
        b -= step * gb
    return w, b


@dataclass(frozen=True)
class GaussianDemo:
    """One 2-D task with K labelled points per class, m unlabelled points and a test set.

    ``teacher`` is the task whose posterior serves as p* (the task itself unless shifted).
    """

    task: GaussianTask
    teacher: GaussianTask
    x_labelled: np.ndarray
    y_labelled: np.ndarray
    x_unlabelled: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def p_star(self) -> np.ndarray:
        """p*(y|x) of the teacher on the unlabelled points, (m, C)."""
        return self.teacher.posterior(self.x_unlabelled)


def shifted_teacher(task: GaussianTask, angle: float) -> GaussianTask:
    """A wrong p*: the task with its class means rotated by ``angle`` radians (finite) about their centre."""
    check_instance(task, "task", GaussianTask, "a GaussianTask")
    angle = check_float(angle, "angle")
    centre = task.means.mean(0)
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return GaussianTask(means=centre + (task.means - centre) @ rot.T, sigma=task.sigma, priors=task.priors)


def make_gaussian_demo(k_shot: int = 2, *, seed: int = 0, n_classes: int = 3, n_unlabelled: int = 200,
                       n_test: int = 2000, teacher_angle: float = 0.0) -> GaussianDemo:
    """The task of ``seed`` (the same for every K), K labelled points per class, unlabelled and test points.

    Args:
        k_shot: labelled points per class (1..50). seed: picks the task and the points.
        n_classes: 2..10. n_unlabelled, n_test: >= 1. teacher_angle: rotate p*'s means (0 = exact p*).
    """
    # Validated before the cache: lru_cache would serve seed=True from a cached seed=1.
    return _gaussian_demo(check_int(k_shot, "k_shot", 1, 50), check_int(seed, "seed", 0),
                          check_int(n_classes, "n_classes", 2, 10), check_positive_int(n_unlabelled, "n_unlabelled"),
                          check_positive_int(n_test, "n_test"), check_float(teacher_angle, "teacher_angle"))


@lru_cache(maxsize=64)
def _gaussian_demo(k_shot: int, seed: int, n_classes: int, n_unlabelled: int, n_test: int,
                   teacher_angle: float) -> GaussianDemo:
    family = GaussianTaskFamily(n_classes, radius=1.5, sigma=1.0)
    task = family.sample_task(np.random.default_rng([seed, 0]))
    x_l, y_l = task.sample_per_class(int(k_shot), np.random.default_rng([seed, 1, int(k_shot)]))
    x_u, _ = task.sample(n_unlabelled, np.random.default_rng([seed, 2]))
    x_t, y_t = task.sample(n_test, np.random.default_rng([seed, 3]))
    teacher = task if teacher_angle == 0 else shifted_teacher(task, teacher_angle)
    return GaussianDemo(task, teacher, x_l, y_l, x_u, x_t, y_t)


def _gaussian_metrics(demo: GaussianDemo, w, b) -> list[dict]:
    """Test metrics for fitted weights w (L, d, C), b (L, C): one dict per λ."""
    p = softmax(demo.x_test @ w + b[:, None])                     # (L, n, C)
    p_true = demo.task.posterior(demo.x_test)
    bayes = p_true.argmax(1)
    pred = p.argmax(-1)
    kl = (_xlogx(p_true)[None] - p_true[None] * np.log(np.clip(p, 1e-300, None))).sum(-1).mean(-1)
    bayes_acc = float((bayes == demo.y_test).mean())
    return [{"accuracy": float((pred[i] == demo.y_test).mean()), "bayes_accuracy": bayes_acc,
             "agreement_with_bayes": float((pred[i] == bayes).mean()),
             "kl_to_true_posterior": float(kl[i]), "ece": expected_calibration_error(p[i], demo.y_test)}
            for i in range(len(w))]


def gaussian_view(lam: float = 0.0, k_shot: int = 2, *, seed: int = 0, teacher_angle: float = 0.0,
                  steps: int = 300, draw: bool = True) -> dict:
    """Fit p_θ with λ·KL(p* ‖ p_θ); print a readout and draw the decision regions (slider callback).

    Returns a dict: ``lam``, ``k_shot``, ``accuracy`` (test), ``bayes_accuracy``,
    ``agreement_with_bayes``, ``kl_to_true_posterior`` (test mean, nats), ``ece``,
    ``objective`` (final J), ``readout`` (the printed line), ``w`` (2, C), ``b`` (C,); with
    ``draw`` also ``figure`` (the matplotlib Figure shown, drawn outside pyplot).
    ``lam`` >= 0, ``k_shot`` in [1, 50], ``steps`` >= 0.
    """
    lam = check_float(lam, "lam", 0.0)
    k_shot = check_int(k_shot, "k_shot", 1, 50)
    steps = check_int(steps, "steps", 0)
    draw = check_bool(draw, "draw")
    teacher_angle = check_float(teacher_angle, "teacher_angle")
    demo = make_gaussian_demo(int(k_shot), seed=seed, teacher_angle=float(teacher_angle))
    w, b = fit_softmax_kl(demo.x_labelled, demo.y_labelled, demo.x_unlabelled, demo.p_star, [lam],
                          steps=steps)
    out = _gaussian_metrics(demo, w, b)[0]
    w, b = w[0], b[0]
    out["objective"] = kl_objective_numpy(w, b, demo.x_labelled, demo.y_labelled, demo.x_unlabelled,
                                          demo.p_star, lam)[0]
    out.update(lam=lam, k_shot=int(k_shot), w=w, b=b)
    out["readout"] = (f"λ = {lam:.4g}, K = {int(k_shot)}: test accuracy {out['accuracy']:.3f} "
                      f"(Bayes {out['bayes_accuracy']:.3f}), agreement with Bayes "
                      f"{out['agreement_with_bayes']:.3f}, KL(p* ‖ p_θ) = {out['kl_to_true_posterior']:.4f} nats, "
                      f"J(θ) = {out['objective']:.4f}")
    if draw:
        print(out["readout"])
        fig = new_figure((6, 5))  # outside pyplot: a slider redraw is never half-drawn
        _draw_regions(demo, w, b, lam, ax=fig.add_subplot())
        show_figure(fig)
        out["figure"] = fig
    return out


def _draw_regions(demo: GaussianDemo, w, b, lam, ax=None):
    ax = ax or plt.subplots(figsize=(6, 5))[1]
    pts = np.concatenate([demo.x_test, demo.x_labelled])
    lo, hi = pts.min(0) - 0.5, pts.max(0) + 0.5
    g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], 120), np.linspace(lo[1], hi[1], 120))
    grid = np.stack([g0.ravel(), g1.ravel()], 1)
    c = demo.task.n_classes
    pred = (grid @ w + b).argmax(1).reshape(g0.shape)
    ax.contourf(g0, g1, pred, levels=np.arange(c + 1) - 0.5, cmap="Pastel1", alpha=0.8)
    bayes = demo.task.bayes_predict(grid).reshape(g0.shape)
    ax.contour(g0, g1, bayes, levels=np.arange(c) + 0.5, colors="k", linestyles="--", linewidths=1)
    ax.plot([], [], "k--", label="Bayes boundary (exact p*)")
    ax.scatter(*demo.x_unlabelled.T, s=4, c="grey", alpha=0.5, label="unlabelled (KL term)")
    for k in range(c):
        ax.scatter(*demo.x_labelled[demo.y_labelled == k].T, s=70, edgecolor="k", label=f"labelled, class {k}")
    ax.set(title=f"Decision regions of p_θ at λ = {lam:.4g} (K = {int(len(demo.y_labelled) // c)})",
           xlabel="x₁ (a.u.)", ylabel="x₂ (a.u.)", xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]))
    ax.legend(fontsize="x-small", loc="upper right")
    return ax


def gaussian_widget(*, seed: int = 0, k_shot: int = 2, lam: float = 0.0):
    """λ slider (log scale, 0 reachable, up to 100) and K slider over :func:`gaussian_view`.

    The interactive's output area (printed readout + figure) carries the CSS class
    ``l2l-readout``; ``w.result`` is the callback's dict. ``k_shot`` starts in [1, 10], ``lam`` >= 0.
    """
    seed = check_int(seed, "seed", 0)
    k_shot = check_int(k_shot, "k_shot", 1, 10)
    lam = check_float(lam, "lam", 0.0)

    def decision_regions(lam, k_shot):
        return gaussian_view(lam, k_shot, seed=seed)

    w = make_interactive(decision_regions,
                         lam=lambda_slider(description="λ", value=lam, min_exp=-3, max_exp=2),
                         k_shot=int_slider("K (labelled per class)", value=k_shot, min=1, max=10))
    w.out.add_class(READOUT_CLASS)
    return w


def gaussian_sweep(lams, *, k_shot: int = 2, n_tasks: int = 20, teacher_angle: float = 0.0,
                   steps: int = 300, seed: int = 0) -> dict:
    """Mean test accuracy, KL(p_true ‖ p_θ) and ECE against λ over ``n_tasks`` tasks (vectorised over λ).

    Returns ``{"lams", "accuracy", "kl", "ece", "bayes_accuracy"}``: arrays (L,) and a float.
    """
    lams = _check_lams(lams)
    k_shot = check_int(k_shot, "k_shot", 1, 50)
    n_tasks = check_positive_int(n_tasks, "n_tasks")
    seed = check_int(seed, "seed", 0)
    demos = [make_gaussian_demo(k_shot, seed=seed + t, teacher_angle=teacher_angle) for t in range(n_tasks)]
    stack = lambda f: np.stack([f(d) for d in demos])  # noqa: E731
    w, b = fit_softmax_kl(stack(lambda d: d.x_labelled), stack(lambda d: d.y_labelled),
                          stack(lambda d: d.x_unlabelled), stack(lambda d: d.p_star), lams, steps=steps)
    ms = [_gaussian_metrics(d, w[t], b[t]) for t, d in enumerate(demos)]
    get = lambda key: np.mean([[m[key] for m in row] for row in ms], 0)  # noqa: E731
    return {"lams": lams, "accuracy": get("accuracy"), "kl": get("kl_to_true_posterior"),
            "ece": get("ece"), "bayes_accuracy": float(np.mean([row[0]["bayes_accuracy"] for row in ms]))}


# --------------------------------------------------------------------------- calibration
def expected_calibration_error(probs, labels, *, n_bins: int = 10) -> float:
    """ECE: Σ_bins (n_bin/n)·|accuracy_bin − mean confidence_bin| over equal-width confidence bins.

    Args:
        probs: predicted probabilities (n, C). labels: ints (n,). n_bins: >= 1.
    """
    check_array(probs, "probs", ndim=2, dtype="real")
    probs = np.asarray(check_probabilities(probs, "probs"), dtype=np.float64)
    check_array(labels, "labels", dtype="label", nonempty=False)
    labels = np.asarray(labels)
    if labels.shape != probs.shape[:1]:
        raise ValueError(f"probs must be (n, C) and labels (n,), got {probs.shape} and {labels.shape}")
    check_labels(labels, "labels", probs.shape[1])
    n_bins = check_positive_int(n_bins, "n_bins")
    conf = probs.max(1)
    correct = probs.argmax(1) == labels
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for k in range(n_bins):
        sel = bins == k
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


# --------------------------------------------------------------------------- part 2: LwF on Omniglot
@dataclass(frozen=True)
class LwFSetup:
    """Everything an LwF run needs; images flattened to float32 in [0, 1].

    ``teacher``: NumPy params (``w0, b0, w1, b1, w_old, b_old``). ``x_support`` (E, n, D),
    ``y_support`` (E, n), ``x_query`` (E, q, D), ``y_query`` (E, q): E new-task episodes.
    ``x_old`` (m, D), ``y_old`` (m,): held-out drawings of the teacher's classes (retention).
    ``steps``, ``lr``: the fine-tuning budget of :func:`course_utils.torch.distill.lwf_finetune`.
    """

    teacher: dict
    x_support: np.ndarray
    y_support: np.ndarray
    x_query: np.ndarray
    y_query: np.ndarray
    x_old: np.ndarray
    y_old: np.ndarray
    steps: int = 30
    lr: float = 0.1

    @property
    def n_way(self) -> int:
        return int(self.y_support.max()) + 1


def _check_setup(setup) -> LwFSetup:
    return check_instance(setup, "setup", LwFSetup, "an LwFSetup")


def lwf_student(setup: LwFSetup, copies: int) -> dict:
    """Teacher weights (the frozen first layer shared) plus a zero new head, ``copies`` (>= 1) times."""
    _check_setup(setup)
    copies = check_positive_int(copies, "copies")
    h1 = setup.teacher["w1"].shape[1]
    params = {k: (v if k in ("w0", "b0") else np.repeat(v[None], copies, 0)) for k, v in setup.teacher.items()}
    params["w_new"] = np.zeros((copies, h1, setup.n_way), np.float32)
    params["b_new"] = np.zeros((copies, setup.n_way), np.float32)
    return params


def lwf_evaluate(setup: LwFSetup, lams, *, temperature: float = 2.0) -> dict:
    """Run LwF for every λ in ``lams`` on every episode at once (PyTorch, batched copies).

    Returns ``{"lams", "new_accuracy", "old_accuracy", "ece", "confidence", "teacher_old_accuracy",
    "probs", "labels"}``: arrays (L,) averaged over episodes (ECE pooled over all query images of
    that λ), ``probs`` (L, E·q, N) and ``labels`` (E·q,).
    """
    import torch

    from course_utils.torch import distill as td
    from course_utils.torch.core import from_numpy, to_tensor

    _check_setup(setup)
    lams = _check_lams(lams).astype(np.float32)
    temperature = check_float(temperature, "temperature", 0.0, low_open=True)
    e, L = setup.x_support.shape[0], lams.size
    tile = lambda a: np.repeat(a[None], L, 0).reshape((L * e,) + a.shape[1:])  # noqa: E731
    params, _ = td.lwf_finetune(lwf_student(setup, L * e), tile(setup.x_support), tile(setup.y_support),
                                lam=np.repeat(lams, e), temperature=temperature, steps=setup.steps,
                                lr=setup.lr)
    theta = from_numpy(params, requires_grad=False)
    x_old = to_tensor(setup.x_old, "float32")
    old_correct = []
    with torch.no_grad():
        _, new = td.lwf_forward(theta, to_tensor(tile(setup.x_query), "float32"))
        for start in range(0, L * e, 8):  # old-task logits are (copies, m, C_old): chunk to bound memory
            chunk = {k: (v if k in ("w0", "b0") else v[start:start + 8]) for k, v in theta.items()}
            old_correct.append((td.lwf_forward(chunk, x_old)[0].argmax(-1).numpy() == setup.y_old).mean(-1))
        t_old, _ = td.lwf_forward(from_numpy(setup.teacher, requires_grad=False), x_old)
    probs = torch.softmax(new, -1).numpy().reshape(L, -1, setup.n_way)
    labels = setup.y_query.reshape(-1)
    old_acc = np.concatenate(old_correct).reshape(L, e).mean(1)
    return {"lams": lams.astype(np.float64),
            "new_accuracy": (probs.argmax(-1) == labels).mean(1),
            "old_accuracy": old_acc,
            "ece": np.array([expected_calibration_error(p, labels) for p in probs]),
            "confidence": probs.max(-1).mean(1),
            "teacher_old_accuracy": float((t_old.argmax(-1).numpy() == setup.y_old).mean()),
            "probs": probs, "labels": labels}


def _reliability(ax, probs, labels, n_bins=10):
    conf, correct = probs.max(1), probs.argmax(1) == labels
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    centres = (np.arange(n_bins) + 0.5) / n_bins
    accs = np.array([correct[bins == k].mean() if (bins == k).any() else np.nan for k in range(n_bins)])
    ax.bar(centres, np.nan_to_num(accs), width=1 / n_bins, edgecolor="k", alpha=0.7, label="accuracy in bin")
    ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    ax.set(xlabel="confidence (max probability)", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize="small", loc="upper left")


def lwf_view(lam: float = 1.0, temperature: float = 2.0, *, setup: LwFSetup, draw: bool = True) -> dict:
    """One LwF run at (λ, T) on every episode of ``setup``: readout, bars and a reliability diagram.

    Returns a dict with ``lam``, ``temperature``, ``new_accuracy``, ``old_accuracy``,
    ``teacher_old_accuracy``, ``ece``, ``confidence`` (floats) and ``readout``. ``lam`` >= 0, T > 0.
    """
    _check_setup(setup)
    lam = check_float(lam, "lam", 0.0)
    temperature = check_float(temperature, "temperature", 0.0, low_open=True)
    draw = check_bool(draw, "draw")
    r = lwf_evaluate(setup, [lam], temperature=float(temperature))
    out = {k: float(r[k][0]) for k in ("new_accuracy", "old_accuracy", "ece", "confidence")}
    out.update(lam=lam, temperature=float(temperature), teacher_old_accuracy=r["teacher_old_accuracy"])
    out["readout"] = (f"λ = {lam:.4g}, T = {float(temperature):.3g}: new-task accuracy {out['new_accuracy']:.3f}, "
                      f"old-task accuracy {out['old_accuracy']:.3f} (teacher {out['teacher_old_accuracy']:.3f}), "
                      f"ECE {out['ece']:.4f}, mean confidence {out['confidence']:.3f}")
    if draw:
        print(out["readout"])
        fig = new_figure((10, 3.8))  # outside pyplot: a slider redraw is never half-drawn
        a0, a1 = fig.subplots(1, 2)
        names = ["new task\n(query)", "old task\n(student)", "old task\n(teacher)"]
        vals = [out["new_accuracy"], out["old_accuracy"], out["teacher_old_accuracy"]]
        a0.bar(names, vals, color=["C0", "C1", "C7"])
        a0.axhline(1 / setup.n_way, color="k", ls=":", label=f"chance, new task (1/{setup.n_way})")
        a0.set(ylim=(0, 1), ylabel="accuracy", title=f"LwF at λ = {lam:.4g}, T = {float(temperature):.3g}")
        a0.legend(fontsize="small")
        _reliability(a1, r["probs"][0], r["labels"])
        a1.set_title(f"Reliability, new task (ECE = {out['ece']:.3f})")
        fig.tight_layout()
        show_figure(fig)
        out["figure"] = fig
    return out


def lwf_widget(setup: LwFSetup, *, lam: float = 1.0, temperature: float = 2.0):
    """λ and temperature sliders over :func:`lwf_view`; output area has CSS class ``l2l-readout``.

    Starting values: ``lam`` >= 0 and ``temperature`` > 0.
    """
    _check_setup(setup)
    lam = check_float(lam, "lam", 0.0)
    temperature = check_float(temperature, "temperature", 0.0, low_open=True)

    def lwf_regions(lam, temperature):
        return lwf_view(lam, temperature, setup=setup)

    w = make_interactive(lwf_regions,
                         lam=lambda_slider(description="λ (LwF)", value=lam, min_exp=-2, max_exp=2, per_decade=2),
                         temperature=float_slider("temperature T", value=temperature, min=0.5, max=8.0, step=0.5))
    w.out.add_class(READOUT_CLASS)
    return w


def lwf_sweep(setup: LwFSetup, lams, *, temperature: float = 2.0) -> dict:
    """:func:`lwf_evaluate` without the per-image arrays (for the sweep plot)."""
    r = lwf_evaluate(setup, lams, temperature=temperature)
    return {k: v for k, v in r.items() if k not in ("probs", "labels")}


# --------------------------------------------------------------------------- challenges
def check_kl_gradient(answer) -> bool:
    """Exercise 1: ``answer(W, b, X, P_star)`` returns (∂KL/∂W, ∂KL/∂b) of mean KL(p* ‖ softmax(XW + b))."""
    name = "closed-form gradient of the KL term"
    if answer is None:
        return report(False, name, "Define grad_kl(W, b, X, P_star) returning (dW, db); hint: the "
                                   "residual is softmax(XW + b) − P_star.")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((11, 2))
    w, b = rng.standard_normal((2, 3)), rng.standard_normal(3)
    ps = softmax(rng.standard_normal((11, 3)))
    resid = softmax(x @ w + b) - ps
    gw_ref, gb_ref = x.T @ resid / len(x), resid.mean(0)
    try:
        dw, db = answer(w.copy(), b.copy(), x.copy(), ps.copy())
    except Exception as e:  # the learner's code may fail in any way
        return report(False, name, f"your function raised {type(e).__name__}: {e}")
    ok = close(dw, gw_ref, rtol=1e-5, atol=1e-8) and close(db, gb_ref, rtol=1e-5, atol=1e-8)
    return report(ok, name, "Compare with Xᵀ(P − P*)/m and the column means of (P − P*).")


def check_soft_targets(answer) -> bool:
    """Exercise 2: ``answer(logits, T)`` returns softmax(logits / T) row-wise (Hinton's soft targets)."""
    name = "temperature-softened targets"
    if answer is None:
        return report(False, name, "Define soften(logits, T) = softmax(logits / T) over the last axis.")
    z = np.array([[2.0, 1.0, -1.0], [0.0, 5.0, 0.5]])
    try:
        ok = all(close(answer(z.copy(), t), softmax(z / t), rtol=1e-5) for t in (0.5, 1.0, 4.0, 100.0))
    except Exception as e:
        return report(False, name, f"your function raised {type(e).__name__}: {e}")
    return report(ok, name, "Divide the logits by T before the softmax; rows must sum to 1.")


def check_ece(answer) -> bool:
    """Exercise 3: ``answer(probs, labels, n_bins)`` computes the expected calibration error."""
    name = "expected calibration error"
    if answer is None:
        return report(False, name, "Define ece(probs, labels, n_bins): bin the max probability, "
                                   "weight |accuracy − confidence| by the bin's share of points.")
    rng = np.random.default_rng(3)
    probs = softmax(2 * rng.standard_normal((500, 5)))
    # confident rows are always right (under-confident bins), the rest are guesses (over-confident)
    labels = np.where(probs.max(1) > 0.6, probs.argmax(1), rng.integers(0, 5, 500))
    try:
        ok = all(close(answer(probs.copy(), labels.copy(), n), expected_calibration_error(probs, labels, n_bins=n),
                       rtol=1e-6, atol=1e-9) for n in (1, 10, 15))
    except Exception as e:
        return report(False, name, f"your function raised {type(e).__name__}: {e}")
    return report(ok, name, "Use equal-width bins on [0, 1] (confidence 1.0 goes in the last bin).")


def _large_lambda_loss(demo: GaussianDemo) -> float:
    """Exercise 4's answer: the labelled cross-entropy that the fit tends to as λ → ∞.

    With exact p* that softmax regression can represent, λ·KL dominates and p_θ → p*, so
    L(θ) → mean_i −log p*(y_i | x_i) on the labelled points.
    """
    p = demo.teacher.posterior(demo.x_labelled)
    return float(-np.mean(np.log(p[np.arange(len(demo.y_labelled)), demo.y_labelled])))


def check_large_lambda_limit(answer, *, demo: GaussianDemo) -> bool:
    """Exercise 4: the number L(θ) (mean cross-entropy on the labelled points) tends to as λ → ∞."""
    check_instance(demo, "demo", GaussianDemo, "a GaussianDemo (ch04.make_gaussian_demo)")
    name = "the λ → ∞ limit"
    if answer is None:
        return report(False, name, "Pass a number: the labelled-data loss L(θ) of the fit as λ → ∞.")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return report(False, name, f"expected a number, got {answer!r}")
    ref = _large_lambda_loss(demo)
    if close(value, ref, rtol=1e-3):
        return report(True, name)
    n_classes = demo.teacher.means.shape[0]
    if close(value, np.log(n_classes), rtol=1e-3):
        return report(False, name, "log C is the loss of the uniform prediction: does KL(p* ‖ p_θ) push p_θ "
                                   "towards uniform?")
    return report(False, name, "When λ dominates, which p_θ minimises the KL term, and what is −log of it "
                               "at the labelled points' labels?")
