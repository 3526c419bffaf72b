"""Chapter 7 (first-order MAML, Reptile, ANIL): framework-free helpers and challenge checkers.

* :func:`reptile_k1_prediction` - the exact identity the chapter teaches (Reptile with one SGD step).
* ``check_*`` - the challenge checkers: print pass/fail, return a bool, never raise.

Reptile's ε schedule is :func:`course_utils.training.reptile_epsilon`, ANIL's head
:func:`course_utils.nets.head_keys`, the memory probe :class:`course_utils.env.PeakMemory`.
"""
from __future__ import annotations

import numpy as np

from course_utils.grading import close, report
from course_utils.nets import head_keys, init_convnet
from course_utils.validation import (check_bool, check_callable, check_choice, check_float, check_framework,
                                     check_int, check_lr, check_mapping, check_names, check_optional_callable,
                                     check_params, check_positive_int, check_same_keys, check_task_arrays,
                                     check_values, mlp_dims)

__all__ = [
    "reptile_k1_prediction",
    "mean_median",
    "compare_methods",
    "format_table",
    "seed_summary",
    "separated",
    "taylor_coefficients",
    "TAYLOR_TOY",
    "check_hessian_term",
    "check_reptile_two_steps",
    "check_anil_share",
    "check_reptile_taylor",
]


def mean_median(values) -> tuple[float, float]:
    """(mean, median) of a 1-D array of per-task errors, as Python floats."""
    v = check_values(values, "values")
    return float(v.mean()), float(np.median(v))


def compare_methods(fw, params: dict, sample_batch, *, methods=("maml", "fomaml", "reptile", "anil"),
                    n_iterations: int, rng: int = 0, reptile_kwargs: dict | None = None, outer_lr: float = 1e-3,
                    eval_fn=None, eval_every: int = 100, progress: bool = True, **shared) -> dict:
    """Meta-train every method from the SAME initial weights on the SAME task stream.

    Args:
        fw: a framework module, ``course_utils.torch`` or ``course_utils.tensorflow``.
        params: NumPy initial weights shared by all methods.
        sample_batch: ``sample_batch(rng) -> (x_support, y_support, x_query, y_query)``.
        n_iterations: meta-iterations per method (equal-iteration comparison).
        rng: the integer seed of the task stream; every method draws from a fresh generator
            seeded with it, so all of them see the same batches.
        reptile_kwargs: extra arguments for Reptile only (``reptile_inner_lr``, ``reptile_steps``,
            ``reptile_batch_size``, ``epsilon_start``, ``epsilon_end``).
        shared: arguments for every method (``inner_lr``, ``steps``, ``forward``, ``loss_fn``).

    Returns:
        ``{method: (final_params, history)}`` as returned by ``fw.meta_train``.
    """
    check_framework(fw, "meta_train", "METHODS")
    check_params(params)
    check_callable(sample_batch, "sample_batch")
    methods = check_names(methods, "methods", fw.METHODS.names())
    n_iterations = check_positive_int(n_iterations, "n_iterations")
    rng = check_int(rng, "rng", 0)  # an int seed, not a generator: each method re-seeds from it
    if reptile_kwargs is not None:
        check_mapping(reptile_kwargs, "reptile_kwargs", "a dict of Reptile's own options or None")
    outer_lr = check_lr(outer_lr, "outer_lr")
    check_optional_callable(eval_fn, "eval_fn")
    progress = check_bool(progress, "progress")
    out = {}
    for method in methods:
        kw = dict(shared)
        if method == "reptile":
            kw.update(reptile_kwargs or {})
        out[method] = fw.meta_train(method, params, sample_batch, n_iterations=n_iterations, rng=rng,
                                    outer_lr=outer_lr, eval_fn=eval_fn, eval_every=eval_every,
                                    progress=progress, **kw)
    return out


def format_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """A plain-text table: ``columns`` are ``(key, header, format)`` e.g. ``("mse1", "MSE@1", ".3g")``.

    Missing or None values print as "-".
    """
    if isinstance(rows, (str, bytes, dict)) or not isinstance(rows, (list, tuple)) \
            or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"rows must be a list of dicts {{key: value}}, got {rows!r}"[:200])
    if isinstance(columns, (str, bytes, dict)) or not isinstance(columns, (list, tuple)) \
            or not all(isinstance(c, (list, tuple)) and len(c) == 3 for c in columns):
        raise ValueError(f"columns must be a list of (key, header, format) triples, got {columns!r}"[:200])
    if not columns:
        raise ValueError("columns must not be empty")
    cells = [[h for _, h, _ in columns]]
    for r in rows:
        cells.append(["-" if r.get(k) is None else format(r[k], f) for k, _, f in columns])
    widths = [max(len(row[j]) for row in cells) for j in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --------------------------------------------------------------------------- the k = 1 identity
def reptile_k1_prediction(params: dict, joint_gradient: dict, *, inner_lr: float,
                          epsilon: float) -> dict:
    """What Reptile with ONE full-batch SGD step must return: θ - ε·α·∇L_joint(θ).

    With one step, φ̃_i - θ = -α ∇L_i(θ); averaging over the tasks of a meta-batch gives
    -α times the gradient of the mean task loss ("joint training"), so
    θ + ε·mean_i(φ̃_i - θ) = θ - ε α ∇L_joint(θ)  (Nichol et al. 2018, §5).
    """
    check_params(params)
    check_same_keys(params, joint_gradient, "joint_gradient")
    inner_lr = check_float(inner_lr, "inner_lr", 0.0)
    epsilon = check_float(epsilon, "epsilon", 0.0, 1.0, low_open=True)
    return {k: np.asarray(params[k], np.float32) - epsilon * inner_lr * np.asarray(joint_gradient[k], np.float32)
            for k in params}


# --------------------------------------------------------------------------- several seeds
def seed_summary(values) -> tuple[float, float]:
    """(mean, standard deviation with ddof=1) of one method's results over seeds (>= 2 values)."""
    return _seed_summary(values, "values")


def _seed_summary(values, name: str) -> tuple[float, float]:
    v = check_values(values, name, 2)  # the results of at least 2 seeds
    return float(v.mean()), float(v.std(ddof=1))


def separated(a, b) -> bool:
    """True when two methods' mean ± sd intervals over seeds do not overlap (the only case ranked)."""
    (ma, sa), (mb, sb) = _seed_summary(a, "a"), _seed_summary(b, "b")
    return abs(ma - mb) > sa + sb


def taylor_coefficients(method: str, k: int = 2) -> tuple[float, float]:
    """Nichol et al. (2018), section 5: E[g] ≈ c_grad·AvgGrad + c_inner·α·AvgGradInner for k inner steps.

    AvgGrad = E[∇L(θ)] (joint training); AvgGradInner = E[H̄_j ḡ_i] = ½∇E[ḡ_i·ḡ_j] for minibatches
    i ≠ j of one task. For MAML and FOMAML the k-th minibatch is the query batch. Returns
    ``(c_grad, c_inner)``: MAML (1, −2(k−1)), FOMAML (1, −(k−1)), Reptile (k, −k(k−1)/2).
    """
    check_choice(method, "method", ("maml", "fomaml", "reptile"))
    k = check_int(k, "k", 1)
    return {"maml": (1.0, -2.0 * (k - 1)), "fomaml": (1.0, -(k - 1.0)),
            "reptile": (float(k), -k * (k - 1) / 2.0)}[method]


# --------------------------------------------------------------------------- checkers
def check_hessian_term(answer) -> bool:
    """Challenge 1: the MAML meta-gradient for one inner SGD step from θ is (I - α H_s) ∇L_q(φ).

    The learner names the matrix FOMAML replaces by the identity: any of "I - alpha H",
    "I - αH", "(I - alpha * hessian)", ... (case and spaces ignored).
    """
    name = "Challenge 1 (the dropped factor)"
    if answer is None:
        return report(False, name, "Set answer to the factor that multiplies ∇L_query(φ) in MAML's "
                                   "meta-gradient, e.g. a string like 'I - alpha H'.")
    s = str(answer).lower().replace(" ", "").replace("*", "").replace("α", "alpha").replace("(", "").replace(")", "")
    s = s.replace("hessian", "h").replace("∇²l", "h").replace("nabla^2l", "h")
    ok = s in {"i-alphah", "i-alphahs", "i-alphah_s", "i-alphah_support", "1-alphah"}
    return report(ok, name, "Differentiate φ = θ - α∇L_s(θ) with respect to θ: dφ/dθ = ? "
                            "(write it with I, alpha and H).")


def check_reptile_two_steps(answer: dict | None, *, fw, params: dict, x, y, inner_lr: float = 0.02,
                            epsilon: float = 0.5) -> bool:
    """Challenge 2: Reptile's update with k = 2 full-batch SGD steps per task, computed by hand.

    ``fw`` is the framework module whose ``reptile_update`` gives the reference (computed here, so
    the learner never sees it); ``x, y``: every task's data, (tasks, points, 1).
    """
    name = "Challenge 2 (Reptile with two steps)"
    check_framework(fw, "reptile_update")
    check_params(params, mlp=True)
    check_task_arrays({"x": x, "y": y}, x_dim=mlp_dims(params)[0], y_dim=mlp_dims(params)[1])
    inner_lr = check_float(inner_lr, "inner_lr", 0.0)
    epsilon = check_float(epsilon, "epsilon", 0.0, 1.0, low_open=True)
    if answer is None:
        return report(False, name, "Adapt every task with two SGD steps, average φ̃_i − θ over tasks, scale by ε, "
                                   "add θ; pass the dict.")
    expected = fw.reptile_update(params, x, y, epsilon=epsilon, inner_lr=inner_lr, inner_steps=2)
    if not isinstance(answer, dict) or set(answer) != set(expected):
        return report(False, name, f"answer must be a dict with keys {sorted(expected)}.")
    if all(close(answer[k], expected[k], rtol=1e-4, atol=1e-6) for k in expected):
        return report(True, name)
    one = fw.reptile_update(params, x, y, epsilon=epsilon, inner_lr=inner_lr, inner_steps=1)
    if all(close(answer[k], one[k], rtol=1e-4, atol=1e-6) for k in one):
        return report(False, name, "That is the one-step update (joint training): take the second step from the "
                                   "task's adapted weights, with that task's gradient there.")
    return report(False, name, "Check the second step's gradient (at φ_i after one step, per task), the "
                               "sign (towards φ̃) and the factor ε.")


def _anil_share(n_way: int, hidden: int) -> float:
    params = init_convnet(0, n_way=n_way, hidden=hidden)
    head = head_keys(params)
    return sum(params[k].size for k in head) / sum(v.size for v in params.values())


def check_anil_share(answer, *, n_way: int = 20, hidden: int = 64) -> bool:
    """Challenge 3: the share of the conv net's parameters that ANIL's inner loop adapts.

    For the 4-block conv net of chapter 6 with ``hidden`` filters and an ``n_way`` head (a number in
    (0, 1), relative tolerance 1e-3).
    """
    name = "Challenge 3 (what ANIL adapts)"
    n_way = check_int(n_way, "n_way", 2)
    hidden = check_positive_int(hidden, "hidden")
    if answer is None:
        return report(False, name, "Pass a number in (0, 1): adapted parameters / all parameters.")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return report(False, name, f"expected a number, got {answer!r}")
    ref = _anil_share(n_way, hidden)
    if close(value, ref, rtol=1e-3, atol=0):
        return report(True, name)
    if close(value, 100 * ref, rtol=1e-3, atol=0):
        return report(False, name, "That is a percentage: give the share as a fraction.")
    if close(value, _anil_share(5, 32), rtol=1e-3, atol=0):
        return report(False, name, f"That is the 5-way, 32-filter net: use n_way = {n_way} and hidden = {hidden}.")
    return report(False, name, "Count only the final linear layer (its weight and bias, head_keys) and divide "
                               "by the size of every parameter array.")


#: Challenge 4: two minibatch losses of one task, L_j(θ) = a_j/2 · (θ − c_j)², a step size and a point θ.
TAYLOR_TOY = {"theta": 0.5, "inner_lr": 0.1, "a": (2.0, 1.0), "c": (1.0, -1.0)}


def _taylor_correction() -> float:
    t = TAYLOR_TOY
    (a_a, a_b), (c_a, c_b), theta, alpha = t["a"], t["c"], t["theta"], t["inner_lr"]
    g_a, g_b = a_a * (theta - c_a), a_b * (theta - c_b)
    return -alpha / 2 * (a_b * g_a + a_a * g_b)   # mean over the orders (A, B) and (B, A)


def check_reptile_taylor(answer) -> bool:
    """Challenge 4: g_Rep − (ḡ_A + ḡ_B) for k = 2 steps on :data:`TAYLOR_TOY`, averaged over both orders.

    For quadratics the Taylor expansion is exact: the answer is −(α/2)·d/dθ(ḡ_A ḡ_B), whose sign
    says which way Reptile moves the inner product of the two minibatch gradients.
    """
    name = "Challenge 4 (the Taylor term)"
    if answer is None:
        return report(False, name, "Pass a number: the average over both orders of g_Rep minus ḡ_A + ḡ_B.")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return report(False, name, f"expected a number, got {answer!r}")
    ref = _taylor_correction()
    if close(value, ref, rtol=1e-6, atol=1e-9):
        return report(True, name)
    if close(value, -ref, rtol=1e-6, atol=1e-9):
        return report(False, name, "Right size, wrong sign: g_Rep = (θ − φ̃)/α, so a step that lowers the loss "
                                   "enters with a plus sign.")
    if close(value, 2 * ref, rtol=1e-6, atol=1e-9):
        return report(False, name, "Average over the two orders (A then B, B then A), not the sum.")
    return report(False, name, "Take two SGD steps (A then B): g_1 = ḡ_A, g_2 = ∇L_B(θ − α g_1); "
                               "g_Rep = g_1 + g_2. Do the same in the other order and average.")
