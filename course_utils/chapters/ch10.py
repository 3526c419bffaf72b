"""Chapter 10 (learned update rules): exercise checkers, toy data and the chapter's two figures."""
from __future__ import annotations

import numpy as np
import matplotlib.pyplot as plt

from course_utils.grading import close, report
from course_utils.learned import LR_PREFIX, meta_lstm_cell_numpy, meta_sgd_step_numpy, preprocess_gradient
from course_utils.validation import check_array, check_params, check_str

__all__ = ["SGD_TOY", "GATE_TOY", "PREPROCESS_TOY", "step_size_table", "plot_step_sizes", "plot_gates",
           "check_meta_sgd_step", "check_sgd_gates", "check_preprocessing"]

#: Challenge 1: one Meta-SGD step on a 3-weight learner.
SGD_TOY = {"theta": np.array([0.5, -1.0, 2.0]), "alpha": np.array([0.1, 0.01, -0.2]),
           "grad": np.array([2.0, -3.0, 0.5])}
#: Challenge 2: the SGD-with-weight-decay step the LSTM cell must reproduce.
GATE_TOY = {"alpha": 0.05, "weight_decay": 0.1}
#: Challenge 3: values to preprocess with p = 10.
PREPROCESS_TOY = np.array([2.0, -3e-5, 0.0])


def step_size_table(params: dict) -> dict[str, dict[str, float]]:
    """Per weight of a Meta-SGD parameter dict: the mean, smallest and largest step size α and the
    fraction of coordinates whose α is negative (the paper lets α take any sign)."""
    check_params(params)
    lrs = {k[len(LR_PREFIX):]: np.asarray(v, np.float64) for k, v in params.items() if k.startswith(LR_PREFIX)}
    if not lrs:
        raise ValueError(f"params must hold Meta-SGD step sizes (keys starting with 'lr_'), got {sorted(params)}")
    return {k: {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max()),
                "negative": float((v < 0).mean())} for k, v in lrs.items()}


def plot_step_sizes(params: dict, *, title: str = "Meta-SGD: learned step sizes per weight") -> plt.Figure:
    """A box plot of the learned α of every weight tensor of a Meta-SGD parameter dict."""
    table = step_size_table(params)
    check_str(title, "title")
    names = list(table)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.boxplot([np.asarray(params[LR_PREFIX + k]).ravel() for k in names], showfliers=False)
    ax.set_xticks(range(1, len(names) + 1), names)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xlabel("weight tensor (w: weights, b: biases; 0 = first layer)")
    ax.set_ylabel("learned step size α")
    ax.set_title(title)
    ax.plot([], [], color="orange", label="median over the tensor's coordinates")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def plot_gates(gates: dict, *, title: str = "Meta-learner LSTM: gates across inner steps") -> plt.Figure:
    """Mean input gate i_t (a learned step size) and forget gate f_t (1 − a learned weight decay)
    over tasks and coordinates, against the inner step t; ``gates`` as returned by
    ``meta_lstm_adapt(..., return_gates=True)`` (arrays (steps, tasks, P))."""
    if not isinstance(gates, dict) or not {"forget", "input"} <= set(gates):
        raise ValueError(f"gates must be a dict with 'forget' and 'input' arrays, got {type(gates).__name__}")
    f = check_array(gates["forget"], "gates['forget']", ndim=3, dtype="real")
    i = check_array(gates["input"], "gates['input']", ndim=3, dtype="real")
    check_str(title, "title")
    steps = np.arange(1, np.shape(f)[0] + 1)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.2))
    panels = ((a1, np.asarray(i), "input gate i_t (step size)"), (a2, 1 - np.asarray(f), "1 − forget gate f_t (decay)"))
    for ax, g, name in panels:
        m = g.mean((1, 2))
        lo, hi = np.percentile(g.reshape(len(steps), -1), [10, 90], axis=1)
        ax.plot(steps, m, "o-", label="mean over tasks and weights")
        ax.fill_between(steps, lo, hi, alpha=0.25, label="10th–90th percentile")
        ax.set_xlabel("inner step t")
        ax.set_ylabel(name)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def check_meta_sgd_step(answer) -> bool:
    """Challenge 1: φ = θ − α ⊙ ∇ for :data:`SGD_TOY` (an array of 3 numbers)."""
    name = "Challenge 1 (one Meta-SGD step)"
    if answer is None:
        return report(False, name, "Set answer to the 3 adapted weights φ (an array).")
    t = SGD_TOY
    expected = meta_sgd_step_numpy(t["theta"], t["alpha"], t["grad"])
    if close(answer, t["theta"] - t["alpha"].mean() * t["grad"]):
        return report(False, name, "α is a vector: each weight has its own step size (element-wise product).")
    if close(answer, t["theta"] + t["alpha"] * t["grad"]):
        return report(False, name, "A gradient step goes against the gradient: θ − α ⊙ ∇.")
    return report(close(answer, expected), name, "φ_j = θ_j − α_j ∇_j for each of the 3 weights.")


def check_sgd_gates(answer) -> bool:
    """Challenge 2: the gate values {"forget": f, "input": i} for which the LSTM cell's update
    θ_t = f θ_{t−1} − i ∇ is one step of SGD with weight decay, θ_t = θ_{t−1} − α(∇ + λ θ_{t−1}),
    with α and λ from :data:`GATE_TOY`."""
    name = "Challenge 2 (weight decay as a forget gate)"
    if not isinstance(answer, dict) or not {"forget", "input"} <= set(answer):
        return report(False, name, 'Set answer to a dict {"forget": f, "input": i} of two numbers.')
    try:
        f, i = float(answer["forget"]), float(answer["input"])
    except (TypeError, ValueError):
        return report(False, name, "Both gate values must be numbers.")
    alpha, lam = GATE_TOY["alpha"], GATE_TOY["weight_decay"]
    rng = np.random.default_rng(0)
    theta, grad = rng.normal(size=5), rng.normal(size=5)
    ok = close(meta_lstm_cell_numpy(theta, grad, f, i), theta - alpha * (grad + lam * theta))
    if not ok and close(f, 1.0) and close(i, alpha):
        return report(False, name, "That is plain SGD; the decay term −αλθ_{t−1} must come from the forget gate.")
    return report(ok, name, "Expand θ − α(∇ + λθ) and collect the terms in θ_{t−1} (forget gate) "
                            "and in −∇ (input gate).")


def check_preprocessing(answer) -> bool:
    """Challenge 3: :func:`course_utils.learned.preprocess_gradient` of :data:`PREPROCESS_TOY`
    with p = 10, by hand (a (3, 2) array)."""
    name = "Challenge 3 (gradient preprocessing)"
    if answer is None:
        return report(False, name, "Set answer to a (3, 2) array: one row (first, second) per value.")
    expected = preprocess_gradient(PREPROCESS_TOY, 10.0)
    return report(close(answer, expected, atol=1e-4), name,
                  "|x| ≥ e^(−10) ≈ 4.5e-5 gives (log|x| / 10, sign x); smaller values give (−1, e^10 · x).")
