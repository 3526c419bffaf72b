"""Chapter 7 (first-order MAML, Reptile, ANIL): framework-free helpers and challenge checkers.

* :func:`reptile_k1_prediction` - the exact identity the chapter teaches (Reptile with one SGD step).
* ``check_*`` - the challenge checkers: print pass/fail, return a bool, never raise.

Reptile's ε schedule is :func:`course_utils.training.reptile_epsilon`, ANIL's head
:func:`course_utils.nets.head_keys`, the memory probe :class:`course_utils.env.PeakMemory`.
"""
from __future__ import annotations

import numpy as np

from course_utils.grading import close, report
from course_utils.nets import head_keys
from course_utils.validation import check_int

__all__ = [
    "reptile_k1_prediction",
    "mean_median",
    "compare_methods",
    "format_table",
    "check_hessian_term",
    "check_reptile_k1",
    "check_anil_head",
    "check_reptile_taylor",
]


def mean_median(values) -> tuple[float, float]:
    """(mean, median) of a 1-D array of per-task errors, as Python floats."""
    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0:
        raise ValueError("values must not be empty")
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
    rng = check_int(rng, "rng", 0)  # an int seed, not a generator: each method re-seeds from it
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
    return {k: np.asarray(params[k], np.float32) - epsilon * inner_lr * np.asarray(joint_gradient[k], np.float32)
            for k in params}


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


def check_reptile_k1(answer: dict | None, expected: dict) -> bool:
    """Challenge 2: the learner computes Reptile's k = 1 update by hand; ``expected`` is the package's."""
    name = "Challenge 2 (Reptile with one step)"
    if answer is None:
        return report(False, name, "Compute θ - ε·α·g with g the joint-training gradient "
                                   "(maml_meta_gradient with steps=0) and pass the dict.")
    if not isinstance(answer, dict) or set(answer) != set(expected):
        return report(False, name, f"answer must be a dict with keys {sorted(expected)}.")
    ok = all(close(answer[k], expected[k], rtol=1e-4, atol=1e-6) for k in expected)
    return report(ok, name, "Check the sign (Reptile moves θ TOWARDS φ̃, i.e. down the gradient) "
                            "and the factor ε·α.")


def check_anil_head(answer, params: dict) -> bool:
    """Challenge 3: which parameters does ANIL adapt in the inner loop? (a list/tuple of keys)."""
    name = "Challenge 3 (what ANIL adapts)"
    if answer is None:
        return report(False, name, "Set answer to the list of parameter names ANIL updates in its inner loop.")
    try:
        ok = sorted(answer) == sorted(head_keys(params))
    except TypeError:
        ok = False
    return report(ok, name, "ANIL ('almost no inner loop') adapts only the final linear layer: "
                            "its weight and its bias.")


def check_reptile_taylor(answer) -> bool:
    """Challenge 4: the sign of the second Taylor term of Reptile's expected update.

    For two inner steps on minibatches A then B, E[g_Reptile] ≈ E[ḡ_A + ḡ_B] - α/2·∇E[ḡ_A·ḡ_B]
    (Nichol et al. 2018, §5.2): Reptile *increases* the inner product between gradients on
    different minibatches. The learner answers "increase" or "decrease".
    """
    name = "Challenge 4 (what the second term does)"
    if answer is None:
        return report(False, name, "Answer 'increase' or 'decrease': what does a step along "
                                   "-α/2·∇(g_A·g_B) do to the inner product g_A·g_B?")
    ok = str(answer).strip().lower() in {"increase", "increases", "up", "maximise", "maximize"}
    return report(ok, name, "Reptile descends E[g_Reptile]; that vector contains -α/2·∇(g_A·g_B), and "
                            "descending along minus a gradient means climbing that quantity.")
