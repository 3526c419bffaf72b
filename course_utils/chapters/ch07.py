"""Chapter 7 (first-order MAML, Reptile, ANIL): framework-free helpers and challenge checkers.

* :func:`reptile_epsilon` - Reptile's outer step size ε, annealed linearly to 0 (Nichol et al. 2018).
* :func:`head_keys` - which parameters form the "head" that ANIL adapts (the last linear layer).
* :class:`PeakMemory` - the peak increase of resident memory while a block of code runs.
* :func:`reptile_k1_prediction` - the exact identity the chapter teaches (Reptile with one SGD step).
* ``check_*`` - the challenge checkers: print pass/fail, return a bool, never raise.

Both :mod:`course_utils.torch.first_order` and :mod:`course_utils.tensorflow.first_order`
import the framework-free functions from here, so there is one source of truth.
"""
from __future__ import annotations

import gc
import threading

import numpy as np

from course_utils.grading import close, report

__all__ = [
    "reptile_epsilon",
    "head_keys",
    "PeakMemory",
    "reptile_k1_prediction",
    "mean_median",
    "compare_methods",
    "format_table",
    "check_hessian_term",
    "check_reptile_k1",
    "check_anil_head",
    "check_reptile_taylor",
]


# --------------------------------------------------------------------------- Reptile's ε
def reptile_epsilon(iteration: int, n_iterations: int, *, epsilon_start: float = 1.0,
                    epsilon_end: float = 0.0) -> float:
    """Reptile's outer step size at ``iteration`` (0-based), annealed linearly.

    ε_i = ε_start + (ε_end - ε_start) · i / n_iterations, as in Nichol et al. (2018), whose
    experiments anneal ε linearly to 0 over training.

    Args:
        iteration: the current meta-iteration, in [0, n_iterations].
        n_iterations: the length of training (>= 1).
        epsilon_start: ε at iteration 0, in (0, 1].
        epsilon_end: ε at the end, in [0, epsilon_start].
    """
    if isinstance(n_iterations, bool) or not isinstance(n_iterations, (int, np.integer)) or n_iterations < 1:
        raise ValueError(f"n_iterations must be an integer >= 1, got {n_iterations!r}")
    if isinstance(iteration, bool) or not isinstance(iteration, (int, np.integer)) \
            or not 0 <= iteration <= n_iterations:
        raise ValueError(f"iteration must be an integer in [0, {n_iterations}], got {iteration!r}")
    if not (np.isfinite(epsilon_start) and 0 < epsilon_start <= 1):
        raise ValueError(f"epsilon_start must be in (0, 1], got {epsilon_start!r}")
    if not (np.isfinite(epsilon_end) and 0 <= epsilon_end <= epsilon_start):
        raise ValueError(f"epsilon_end must be in [0, epsilon_start={epsilon_start}], got {epsilon_end!r}")
    frac = iteration / n_iterations
    return float(epsilon_start + (epsilon_end - epsilon_start) * frac)


# --------------------------------------------------------------------------- ANIL's head
def head_keys(params) -> tuple[str, ...]:
    """The keys of the last linear layer: what ANIL adapts in its inner loop.

    For the course's MLPs (``w0, b0, ..., w{n-1}, b{n-1}``) that is ``("w{n-1}", "b{n-1}")``.
    For any other parameter dict, the last two keys in insertion order, provided they are a
    weight matrix and a bias vector (the chapter 6 conv net lists its linear layer last).

    Raises:
        ValueError: if ``params`` has fewer than two entries or no recognisable last layer.
    """
    keys = list(params)
    if len(keys) < 2:
        raise ValueError(f"params must hold at least one weight and one bias, got keys {keys}")
    ws = [k for k in keys if k.startswith("w") and k[1:].isdigit()]
    if ws and all(f"b{k[1:]}" in params for k in ws):
        last = max(int(k[1:]) for k in ws)
        return (f"w{last}", f"b{last}")
    w, b = keys[-2], keys[-1]
    if len(tuple(params[w].shape)) != 2 or len(tuple(params[b].shape)) != 1:
        raise ValueError("params must end with a linear layer (a 2-D weight then a 1-D bias); "
                         f"the last two keys are {w!r} {tuple(params[w].shape)} and {b!r} {tuple(params[b].shape)}")
    return (w, b)


# --------------------------------------------------------------------------- memory
def _rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _trim() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc), so RSS is a fair baseline."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the baseline is just a little higher
        pass


class PeakMemory:
    """Context manager: the peak *increase* of resident memory (MiB) while its block runs.

    A background thread samples the process's RSS every ``interval`` seconds; before the block
    starts, garbage is collected and freed heap pages are returned to the OS so that the
    baseline is fair. The result (``.peak_mb``) is the increment over that baseline, which is
    what an algorithm adds on top of the data and the kernel. Sampling can miss a very short
    spike, and neither PyTorch nor TensorFlow exposes CPU allocator statistics, so treat values
    below ~1 MiB as "too small to measure".

    Example:
        >>> with PeakMemory() as mem:
        ...     x = np.ones(10_000_000)
        >>> mem.peak_mb > 50
        True
    """

    def __init__(self, interval: float = 0.002):
        if not (interval > 0):
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        self.interval = float(interval)
        self.peak_mb = float("nan")
        self.baseline_mb = float("nan")

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, _rss_bytes())
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        _trim()
        self._base = _rss_bytes()
        self._peak = self._base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._peak = max(self._peak, _rss_bytes())
        self._stop.set()
        self._thread.join()
        self.baseline_mb = self._base / 2**20
        self.peak_mb = max(0.0, (self._peak - self._base) / 2**20)


def mean_median(values) -> tuple[float, float]:
    """(mean, median) of a 1-D array of per-task errors, as Python floats."""
    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0:
        raise ValueError("values must not be empty")
    return float(v.mean()), float(np.median(v))


def compare_methods(fw, params: dict, sample_tasks, *, methods=("maml", "fomaml", "reptile", "anil"),
                    n_iterations: int, reptile_kwargs: dict | None = None, outer_lr: float = 1e-3,
                    eval_fn=None, eval_every: int = 100, progress: bool = True, **step_kwargs) -> dict:
    """Meta-train every method from the SAME initial weights on the SAME task stream.

    Args:
        fw: a framework module, ``course_utils.torch`` or ``course_utils.tensorflow``.
        params: NumPy initial weights shared by all methods.
        sample_tasks: ``sample_tasks(i) -> (x_support, y_support, x_query, y_query)``.
        n_iterations: meta-iterations per method (equal-iteration comparison).
        reptile_kwargs: extra arguments for Reptile only (``reptile_inner_lr``, ``reptile_steps``,
            ``reptile_batch_size``, ``epsilon_start``, ``epsilon_end``).
        step_kwargs: shared arguments (``inner_lr``, ``steps``, ``forward``, ``loss_fn``).

    Returns:
        ``{method: (final_params, history)}`` as returned by ``fw.train_meta_method``.
    """
    out = {}
    for method in methods:
        kw = dict(step_kwargs)
        if method == "reptile":
            kw.update(reptile_kwargs or {})
        out[method] = fw.train_meta_method(method, params, sample_tasks, n_iterations=n_iterations,
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
