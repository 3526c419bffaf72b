"""Chapter 6 (MAML): the adaptation slider's pure callback and the challenge checkers.

The slider maths uses PyTorch (imported lazily, so importing this module stays cheap).
"""
from __future__ import annotations

import numpy as np

from course_utils.grading import close, report
from course_utils.validation import check_bool, check_float, check_int, check_params

__all__ = [
    "toy_meta_gradient",
    "adaptation_demo",
    "make_adaptation_widget",
    "check_toy_meta_gradient",
    "check_toy_first_order_gradient",
    "check_two_step_meta_gradient",
    "TOY",
    "TWO_STEP_SETUP",
]

#: The one-parameter toy of challenge 1: model f(x) = θ x, squared error on one support and one
#: query point, one inner step with step size α.
TOY = {"theta": 0.5, "alpha": 0.1, "x_s": 2.0, "y_s": 3.0, "x_q": -1.0, "y_q": -1.5}


def toy_meta_gradient(theta: float, alpha: float, x_s: float, y_s: float, x_q: float, y_q: float, *,
                      first_order: bool = False) -> float:
    """d/dθ of L_q(θ − α L_s'(θ)) for f(x) = θx and L(θ) = (θx − y)², in closed form.

    L_s'(θ) = 2 x_s (θ x_s − y_s), L_s''(θ) = 2 x_s², φ = θ − α L_s'(θ), and the chain rule gives
    (1 − α L_s''(θ)) · L_q'(φ); first order drops the Hessian factor: L_q'(φ).
    """
    theta, x_s, y_s, x_q, y_q = (check_float(v, k) for k, v in
                                 (("theta", theta), ("x_s", x_s), ("y_s", y_s), ("x_q", x_q), ("y_q", y_q)))
    alpha = check_float(alpha, "alpha", 0.0)
    first_order = check_bool(first_order, "first_order")
    phi = theta - alpha * 2 * x_s * (theta * x_s - y_s)
    outer = 2 * x_q * (phi * x_q - y_q)
    return float(outer if first_order else (1 - alpha * 2 * x_s**2) * outer)


def check_toy_meta_gradient(answer) -> bool:
    """Challenge 1: the second-order meta-gradient of the toy :data:`TOY` (a float)."""
    if answer is None:
        return report(False, "Challenge 1", "Set `answer` to a number: apply the chain rule to "
                      "L_q(θ − α L_s'(θ)); do not forget the factor (1 − α L_s''(θ)).")
    expected = toy_meta_gradient(**TOY)
    if close(answer, toy_meta_gradient(**TOY, first_order=True)) and not close(answer, expected):
        return report(False, "Challenge 1", "That is the first-order gradient: multiply by (1 − α L_s''(θ)).")
    return report(close(answer, expected, rtol=1e-3), "Challenge 1",
                  "Compute φ = θ − α·2x_s(θx_s − y_s), then (1 − 2α x_s²) · 2x_q(φx_q − y_q).")


def check_toy_first_order_gradient(answer) -> bool:
    """Challenge 2: the first-order (FOMAML) gradient of the same toy (a float)."""
    if answer is None:
        return report(False, "Challenge 2", "Set `answer` to a number: the query-loss derivative "
                      "at φ, treating φ's dependence on θ as the identity.")
    return report(close(answer, toy_meta_gradient(**TOY, first_order=True), rtol=1e-3), "Challenge 2",
                  "First order keeps only L_q'(φ) = 2x_q(φx_q − y_q) with φ from one inner step.")


#: Challenge 3's fixed setup: MLP weights, tasks and step sizes.
TWO_STEP_SETUP = {"mlp_seed": 0, "task_seed": 1, "n_tasks": 4, "k_shot": 10, "inner_lr": 0.01, "steps": 2}


def _two_step_reference() -> dict[str, np.ndarray]:
    from course_utils.nets import init_mlp
    from course_utils.tasks import sample_sinusoid_tasks
    from course_utils.torch import maml_meta_gradient

    s = TWO_STEP_SETUP
    params = init_mlp(rng=s["mlp_seed"])
    tasks = sample_sinusoid_tasks(s["n_tasks"], s["k_shot"], rng=s["task_seed"])
    _, grads = maml_meta_gradient(params, *tasks[:4], inner_lr=s["inner_lr"], steps=s["steps"])
    return grads


def check_two_step_meta_gradient(answer) -> bool:
    """Challenge 3: the two-inner-step, second-order meta-gradient (dict name → array) for
    :data:`TWO_STEP_SETUP`, written with ``torch.func`` (or any other way)."""
    if answer is None:
        return report(False, "Challenge 3", "Set `answer` to a dict {name: array} of meta-gradients "
                      "(w0, b0, w1, b1, w2, b2).")
    if not isinstance(answer, dict):
        return report(False, "Challenge 3", f"`answer` must be a dict of arrays, got {type(answer).__name__}.")
    expected = _two_step_reference()
    missing = sorted(set(expected) - set(answer))
    if missing:
        return report(False, "Challenge 3", f"missing gradients for {missing}.")
    to_np = lambda v: v.detach().numpy() if hasattr(v, "detach") else np.asarray(v)  # noqa: E731
    ok = all(close(to_np(answer[k]), expected[k], rtol=1e-3, atol=1e-5) for k in expected)
    return report(ok, "Challenge 3", "Two inner steps, each φ ← φ − α ∇L_support(φ), keep the graph "
                  "(no detach), then the mean query loss over the 4 tasks.")


# --------------------------------------------------------------------------- slider
def _check_models(maml_params, pretrained_params) -> None:
    check_params(maml_params, "maml_params", mlp=True)
    check_params(pretrained_params, "pretrained_params", mlp=True)


def adaptation_demo(maml_params: dict, pretrained_params: dict, *, k_shot: int = 5, steps: int = 1,
                    task_seed: int = 0, inner_lr: float = 0.01, draw: bool = True) -> dict:
    """Adapt both models to a new sinusoid task from ``k_shot`` points with ``steps`` SGD steps.

    Pure apart from the optional figure. Returns ``{"mse_maml": float, "mse_pretrained": float,
    "x": (200,), "maml": (200,), "pretrained": (200,), "true": (200,)}`` (MSE on the 200-point grid).
    """
    _check_models(maml_params, pretrained_params)
    k_shot = check_int(k_shot, "k_shot", 1, 50)
    steps = check_int(steps, "steps", 0, 100)
    task_seed = check_int(task_seed, "task_seed", 0)
    inner_lr = check_float(inner_lr, "inner_lr", 0.0)
    check_bool(draw, "draw")
    import torch

    from course_utils.tasks import sample_sinusoid_tasks
    from course_utils.torch import from_numpy, mlp_forward, mse_loss

    task = sample_sinusoid_tasks(1, k_shot, 1, rng=task_seed)
    x = np.linspace(-5, 5, 200, dtype=np.float32)
    true = task.true_function(x)[0]
    xs, ys = torch.tensor(task.x_support[0]), torch.tensor(task.y_support[0])
    out = {"x": x, "true": true}
    for name, params in (("maml", maml_params), ("pretrained", pretrained_params)):
        p = from_numpy(params)
        for _ in range(steps):
            g = torch.autograd.grad(mse_loss(mlp_forward(p, xs), ys), list(p.values()))
            with torch.no_grad():
                p = {k: (v - inner_lr * gi).requires_grad_() for (k, v), gi in zip(p.items(), g)}
        with torch.no_grad():
            curve = mlp_forward(p, torch.tensor(x[:, None]))[:, 0].numpy()
        out[name] = curve
        out[f"mse_{name}"] = float(np.mean((curve - true) ** 2))
    if draw:
        from course_utils.plots import new_figure, show_figure

        fig = new_figure((7, 4))
        ax = fig.subplots()
        ax.plot(x, true, "k--", label="true function")
        ax.plot(x, out["maml"], label=f"MAML, {steps} step(s) (MSE {out['mse_maml']:.3g})")
        ax.plot(x, out["pretrained"], label=f"pretrained, {steps} step(s) (MSE {out['mse_pretrained']:.3g})")
        ax.scatter(task.x_support[0, :, 0], task.y_support[0, :, 0], color="k", zorder=5,
                   label=f"{k_shot} support points")
        ax.set(title=f"Adapting to a new task (seed {task_seed}) with K = {k_shot}, α = {inner_lr}",
               xlabel="x", ylabel="y", ylim=(-6, 6))
        ax.legend(fontsize="small", loc="lower right")
        show_figure(fig)
    return out


def make_adaptation_widget(maml_params: dict, pretrained_params: dict, *, inner_lr: float = 0.01):
    """Sliders for K (1-20), adaptation steps (0-10) and the task seed, redrawing
    :func:`adaptation_demo`; returns ``ipywidgets.interactive`` (``.result`` holds the dict)."""
    from course_utils.widgets import int_slider, make_interactive

    _check_models(maml_params, pretrained_params)
    inner_lr = check_float(inner_lr, "inner_lr", 0.0)

    def show(k_shot, steps, task_seed):
        return adaptation_demo(maml_params, pretrained_params, k_shot=k_shot, steps=steps,
                               task_seed=task_seed, inner_lr=inner_lr)

    return make_interactive(show, k_shot=int_slider("K (support points)", value=5, min=1, max=20),
                            steps=int_slider("adaptation steps", value=1, min=0, max=10),
                            task_seed=int_slider("task seed", value=0, min=0, max=99))
