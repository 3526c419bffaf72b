"""Chapter 12 (the article's challenges, future directions, FAQ and conclusion): the course-wide
method list with the published figures, the nested character subsets of the data-scarcity study,
per-layer adaptation, the tables and figures, and the challenge checkers (print pass/fail, return a
bool, never raise). NumPy and matplotlib only: the experiments run through the frameworks'
``meta_train`` in the notebook.
"""
from __future__ import annotations

import numpy as np
import matplotlib.pyplot as plt

from course_utils.grading import close, report
from course_utils.validation import check_array, check_float, check_int, check_mapping, check_params, check_str

__all__ = [
    "METHODS",
    "character_subset",
    "layer_change",
    "format_table",
    "plot_scarcity",
    "plot_layer_change",
    "QUADRATIC_TOY",
    "CI_TOY",
    "LAYER_TOY",
    "check_maml_quadratic",
    "check_ci95",
    "check_layer_change",
]

#: Every Omniglot method of the course: ``name -> (label, family, chapter, published 5-way 1-shot
#: accuracy in % or None, course reference number or None)``. The published figures are the papers'
#: own (conv-4-64, tens of thousands of iterations): MAML and first-order MAML from Finn et al. [1],
#: Reptile with transduction from Nichol et al. [2], ProtoNets [9] and Matching Networks [10] from
#: their papers, iMAML (gradient-descent inner loop) from Rajeswaran et al. [18]; Meta-SGD's 99.53 %
#: [11] is marked (*) in the course bibliography (not re-checked). ANIL, ProtoMAML and the pretrained
#: baseline have no published Omniglot 5-way 1-shot figure in the cited papers.
METHODS = {
    "maml": ("MAML (second order)", "optimisation", 6, 98.7, 1),
    "fomaml": ("first-order MAML", "optimisation", 7, 98.3, 1),
    "reptile": ("Reptile", "optimisation", 7, 97.68, 2),
    "anil": ("ANIL (head-only inner loop)", "optimisation", 7, None, 12),
    "imaml": ("iMAML", "optimisation", 5, 99.16, 18),
    "metasgd": ("Meta-SGD", "optimisation", 10, 99.53, 11),
    "protonet": ("Prototypical Networks", "metric", 8, 98.8, 9),
    "matchingnet": ("Matching Networks", "metric", 8, 98.1, 10),
    "protomaml": ("ProtoMAML", "metric + optimisation", 8, None, 19),
    "pretrain": ("pretrained + prototypes", "baseline (no meta-learning)", 8, None, None),
}

#: Challenge 1: MAML on one parameter, support loss ½a(θ − s)², query loss ½b(θ − q)².
QUADRATIC_TOY = {"a": 4.0, "s": 1.0, "b": 2.0, "q": -1.0, "theta": 0.5, "inner_lr": 0.1}
#: Challenge 2: the accuracies of 8 test episodes.
CI_TOY = np.array([0.8, 0.6, 1.0, 0.8, 0.4, 0.8, 1.0, 0.6])
#: Challenge 3: θ and an adapted φ of a two-layer net.
LAYER_TOY = {
    "theta": {"conv_w": np.array([[3.0, -4.0]]), "head_w": np.array([[0.3], [0.4]])},
    "phi": {"conv_w": np.array([[3.1, -4.0]]), "head_w": np.array([[0.5], [0.4]])},
}


def character_subset(characters, n_characters: int, *, seed: int = 0) -> np.ndarray:
    """The first ``n_characters`` of one fixed permutation of ``characters`` (axis 0).

    The subsets are nested (the 10 characters are among the 50, which are among the 200, ...), so
    a larger meta-training set only adds characters, and the same ``seed`` gives the same split.

    Args:
        characters: (n_total, n_per_character, H, W) images, e.g. ``omniglot.subset("trainval")``.
        n_characters: how many to keep, 1 ≤ n ≤ n_total.
        seed: the permutation's seed (≥ 0).
    """
    x = check_array(characters, "characters", ndim=4, dtype="image")
    n = check_int(n_characters, "n_characters", 1, x.shape[0])
    seed = check_int(seed, "seed", 0)
    order = np.random.default_rng(seed).permutation(x.shape[0])
    return np.asarray(x)[np.sort(order[:n])]


def layer_change(theta: dict, phi: dict) -> dict[str, float]:
    """Relative change ‖φ_l − θ_l‖ / ‖θ_l‖ of every weight tensor ``l`` after adaptation.

    ``phi`` holds either one adapted copy (the shapes of ``theta``) or one per task (a leading task
    axis); with tasks the change is averaged over them. Raghu et al. [12] found that MAML's inner
    loop changes the head and hardly the body: feature reuse rather than rapid learning.
    """
    check_params(theta, "theta")
    check_params(phi, "phi")
    if set(theta) != set(phi):
        raise ValueError(f"phi must have the keys of theta {sorted(theta)}, got {sorted(phi)}")
    out = {}
    for k, t in theta.items():
        t, p = np.asarray(t, np.float64), np.asarray(phi[k], np.float64)
        if p.shape == t.shape:
            p = p[None]
        if p.shape[1:] != t.shape:
            raise ValueError(f"phi[{k!r}] must have the shape of theta[{k!r}], {t.shape}, or (tasks, *{t.shape}), "
                             f"got {p.shape}")
        norm = np.linalg.norm(t)
        if norm == 0:
            raise ValueError(f"theta[{k!r}] is all zeros: its relative change is undefined")
        out[k] = float(np.mean([np.linalg.norm(d) for d in (p - t)]) / norm)
    return out


def format_table(rows: list, columns: list) -> str:
    """A plain-text table: one line per row dict, ``columns`` as ``(key, header, format)``; a
    missing or None value prints as "—"."""
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"rows must be a list of dicts, got {type(rows).__name__}")
    if not isinstance(columns, list) or not all(isinstance(c, tuple) and len(c) == 3 for c in columns):
        raise ValueError("columns must be a list of (key, header, format) tuples")
    cells = [[h for _, h, _ in columns]]
    for r in rows:
        cells.append([("—" if r.get(k) is None else format(r[k], f)) for k, _, f in columns])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def plot_scarcity(n_characters, results: dict, *, chance: float = 0.2,
                  title: str = "Test accuracy against meta-training characters") -> plt.Figure:
    """Accuracy (with its 95 % interval) against the number of meta-training characters, one line per
    method: ``results = {label: [(mean, ci95) per entry of n_characters]}``."""
    n = np.asarray(check_array(n_characters, "n_characters", ndim=1, dtype="real"))
    chance = check_float(chance, "chance", 0.0, 1.0)
    check_mapping(results, "results", "a dict {label: [(mean, ci95), ...]}")
    check_str(title, "title")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, values in results.items():
        v = np.asarray(check_array(values, f"results[{label!r}]", ndim=2, dtype="real"))
        if v.shape != (n.size, 2):
            raise ValueError(f"results[{label!r}] must be {n.size} (mean, ci95) pairs, got shape {v.shape}")
        ax.errorbar(n, 100 * v[:, 0], yerr=100 * v[:, 1], marker="o", capsize=3, label=label)
    ax.axhline(100 * chance, color="grey", ls=":", label="chance")
    ax.set(xscale="log", xticks=n, xticklabels=[str(int(x)) for x in n], title=title,
           xlabel="meta-training characters (×4 rotations = classes)", ylabel="5-way 1-shot test accuracy (%)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def plot_layer_change(changes: dict, *, title: str = "What one inner step changes, per weight tensor"
                      ) -> plt.Figure:
    """Bars of the relative change per weight tensor (``{label: layer_change(...)}``, same keys)."""
    check_mapping(changes, "changes", "a dict {label: {layer: relative change}}")
    check_str(title, "title")
    labels = list(changes)
    if not labels:
        raise ValueError("changes must hold at least one {layer: value} dict")
    layers = list(changes[labels[0]])
    fig, ax = plt.subplots(figsize=(9, 3.8))
    width = 0.8 / len(labels)
    for i, label in enumerate(labels):
        ax.bar(np.arange(len(layers)) + i * width, [changes[label][k] for k in layers], width, label=label)
    ax.set(xticks=np.arange(len(layers)) + 0.4 - width / 2, yscale="log", title=title,
           ylabel="‖φ − θ‖ / ‖θ‖ (log scale)", xlabel="weight tensor")
    ax.set_xticklabels(layers, rotation=45, ha="right")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def check_maml_quadratic(answer) -> bool:
    """Challenge 1: ``{"second_order": g2, "first_order": g1}``, the two meta-gradients at θ."""
    name = "MAML on a quadratic"
    if not isinstance(answer, dict) or set(answer) != {"second_order", "first_order"}:
        return report(False, name, 'Set answer to {"second_order": number, "first_order": number}.')
    t = QUADRATIC_TOY
    phi = t["theta"] - t["inner_lr"] * t["a"] * (t["theta"] - t["s"])
    g_query = t["b"] * (phi - t["q"])
    second, first = (1 - t["inner_lr"] * t["a"]) * g_query, g_query
    try:
        got = {k: float(v) for k, v in answer.items()}
    except (TypeError, ValueError):
        return report(False, name, "Both meta-gradients must be numbers.")
    if close(got["second_order"], first) and close(got["first_order"], second):
        return report(False, name, "Swapped: the second-order one carries the factor dφ/dθ = 1 − αa.")
    if close(got["second_order"], t["b"] * (t["theta"] - t["q"])):
        return report(False, name, "Differentiate the query loss at the adapted φ, not at θ.")
    ok = close(got["second_order"], second) and close(got["first_order"], first)
    return report(ok, name, "φ = θ − αa(θ − s); first order: b(φ − q); second order: (1 − αa)·b(φ − q).")


def check_ci95(answer) -> bool:
    """Challenge 2: ``(mean, half_width)`` of the normal 95 % interval of :data:`CI_TOY`."""
    name = "95 % confidence interval"
    try:
        mean, half = (float(v) for v in answer)
    except (TypeError, ValueError):
        return report(False, name, "Set answer to a pair (mean, half_width) of numbers.")
    v = CI_TOY
    expected = 1.96 * v.std(ddof=1) / np.sqrt(v.size)
    if close(half, 1.96 * v.std(ddof=1)):
        return report(False, name, "That is the spread of one episode: divide by √n for the mean's interval.")
    if close(half, 1.96 * v.std(ddof=0) / np.sqrt(v.size)):
        return report(False, name, "Use the sample standard deviation (ddof=1): the mean was estimated too.")
    ok = close(mean, v.mean()) and close(half, expected)
    return report(ok, name, "mean ± 1.96·s/√n with s the sample standard deviation of the 8 accuracies.")


def check_layer_change(answer) -> bool:
    """Challenge 3: ``{layer: ‖φ − θ‖/‖θ‖}`` for :data:`LAYER_TOY`."""
    name = "relative change per layer"
    t = LAYER_TOY
    if not isinstance(answer, dict) or set(answer) != set(t["theta"]):
        return report(False, name, f"Set answer to a dict with the keys {sorted(t['theta'])}.")
    try:
        got = {k: float(v) for k, v in answer.items()}
    except (TypeError, ValueError):
        return report(False, name, "Every value must be a number.")
    absolute = {k: float(np.linalg.norm(t["phi"][k] - t["theta"][k])) for k in t["theta"]}
    expected = layer_change(t["theta"], t["phi"])
    if all(close(got[k], absolute[k]) for k in got):
        return report(False, name, "Those are absolute changes: divide by ‖θ_l‖ to compare layers of different scale.")
    ok = all(close(got[k], expected[k]) for k in got)
    return report(ok, name, "‖φ_l − θ_l‖ / ‖θ_l‖ with the Frobenius norm of each tensor.")
