"""Chapter 1 (background): the Omniglot episode explorer, a task-family baseline, challenge checkers.

Framework-free (NumPy + matplotlib). The explorer's maths is the pure function
:func:`draw_episode`; :func:`episode_explorer` only wires sliders to it, so tests can set the
sliders with :func:`course_utils.widgets.set_values` and read the returned dict.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from course_utils.grading import close, report
from course_utils.tasks import AMPLITUDE_RANGE, PHASE_RANGE, EpisodeSampler, sample_sinusoid_tasks
from course_utils.validation import (check_array, check_bool, check_float, check_int, check_interval, check_points,
                                     check_positive_int, check_record)

__all__ = [
    "episode_mosaic",
    "draw_episode",
    "episode_explorer",
    "family_fit",
    "check_episode_counts",
    "CHALLENGE_FAMILY",
    "check_mean_task_function",
    "check_recover_task",
]


# --------------------------------------------------------------------------- episode explorer
def episode_mosaic(episode, *, max_query: int = 5, gap: int = 4) -> np.ndarray:
    """One image holding an episode: a row per class, its support images, a gap, its query images.

    Args:
        episode: a :class:`course_utils.tasks.Episode` with images (n, H, W).
        max_query: at most this many query images per class are placed (>= 0).
        gap: pixels between images (>= 0); the support/query boundary gets three gaps.

    Returns:
        float32 array (rows, cols) in [0, 1] (ink = 1), NaN-free; paper and gaps are 0.
    """
    check_record(episode, "episode", ("x_support", "y_support", "x_query", "y_query"), "an Episode")
    max_query = check_int(max_query, "max_query", 0)
    gap = check_int(gap, "gap", 0)
    y_s, y_q = np.asarray(episode.y_support), np.asarray(episode.y_query)
    xs, xq = np.asarray(episode.x_support), np.asarray(episode.x_query)
    n_way = int(y_s.max()) + 1
    k = int((y_s == 0).sum())
    q = min(max_query, int((y_q == 0).sum()))
    h, w = xs.shape[-2:]
    scale = 255.0 if xs.dtype == np.uint8 else 1.0
    cols_px = k * (w + gap) + (3 * gap if q else 0) + q * (w + gap)
    out = np.zeros((n_way * (h + gap), cols_px), dtype=np.float32)
    for c in range(n_way):
        row = c * (h + gap)
        imgs = list(xs[y_s == c][:k])
        for j, img in enumerate(imgs):
            out[row:row + h, j * (w + gap):j * (w + gap) + w] = img / scale
        start = k * (w + gap) + 3 * gap
        for j, img in enumerate(xq[y_q == c][:q]):
            out[row:row + h, start + j * (w + gap):start + j * (w + gap) + w] = img / scale
    return out


def draw_episode(images: np.ndarray, n_way: int = 5, k_shot: int = 1, n_query: int = 5,
                 seed: int = 0, *, show: bool = True, max_query_shown: int = 5) -> dict:
    """Draw one real N-way K-shot episode and (optionally) show it. The explorer's callback.

    Args:
        images: characters grouped by class, uint8 (n_classes, n_per_class, H, W), ink high
            (e.g. ``load_omniglot().subset("background")``).
        n_way: classes in the episode (1..n_classes).
        k_shot: support images per class (>= 1).
        n_query: query images per class (>= 1); k_shot + n_query <= n_per_class.
        seed: the episode's random seed (>= 0): the same seed gives the same episode.
        show: draw the episode with matplotlib (displayed inline in Jupyter).
        max_query_shown: query images per class drawn (all are counted).

    Returns:
        dict with ``n_way, k_shot, n_query``, ``n_support_images`` (N·K), ``n_query_images``
        (N·Q), ``support_shape``, ``query_shape``, ``classes`` (the character ids drawn),
        ``support_labels`` / ``query_labels`` (lists), ``chance_accuracy`` (1/N) and
        ``disjoint`` (True when no query image equals a support image of its class, pixel for
        pixel; Omniglot's one duplicated drawing, Braille character01, could make it False).
    """
    check_array(images, "images", ndim=4, dtype="image")
    seed = check_int(seed, "seed", 0)
    show = check_bool(show, "show")
    max_query_shown = check_int(max_query_shown, "max_query_shown", 0)
    sampler = EpisodeSampler(images, n_way=n_way, k_shot=k_shot, n_query=n_query)
    ep = sampler.sample(np.random.default_rng(seed))
    flat_s = ep.x_support.reshape(len(ep.x_support), -1)
    flat_q = ep.x_query.reshape(len(ep.x_query), -1)
    # support and query are drawn without replacement; check it on the pixels the learner sees
    disjoint = not any(np.array_equal(a, b) for c in range(n_way)
                       for a in flat_s[ep.y_support == c] for b in flat_q[ep.y_query == c])
    result = {
        "n_way": int(n_way), "k_shot": int(k_shot), "n_query": int(n_query),
        "n_support_images": int(ep.x_support.shape[0]), "n_query_images": int(ep.x_query.shape[0]),
        "support_shape": tuple(ep.x_support.shape), "query_shape": tuple(ep.x_query.shape),
        "classes": [int(c) for c in ep.classes],
        "support_labels": ep.y_support.tolist(), "query_labels": ep.y_query.tolist(),
        "chance_accuracy": 1.0 / n_way, "disjoint": bool(disjoint),
    }
    if show:
        from course_utils.plots import new_figure, show_figure

        shown = min(max_query_shown, n_query)
        mosaic = episode_mosaic(ep, max_query=max_query_shown)
        h, w, gap = ep.x_support.shape[-2], ep.x_support.shape[-1], 4
        fig = new_figure((max(6.0, 1.6 + mosaic.shape[1] / 45), max(2.5, 0.6 + mosaic.shape[0] / 45)))
        ax = fig.subplots()
        ax.imshow(mosaic, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        boundary = k_shot * (w + gap) + gap / 2
        ax.axvline(boundary, color="C3", lw=1.5)
        ax.set_xticks([boundary / 2, boundary + 1.5 * gap + shown * (w + gap) / 2],
                      [f"support: {k_shot} per class", f"query: {shown} of {n_query} per class shown"],
                      fontsize="small")
        ax.set_yticks([c * (h + gap) + h / 2 for c in range(n_way)],
                      [f"label {c} (char {cid})" for c, cid in enumerate(result["classes"])],
                      fontsize=7 if n_way > 10 else "small")
        ax.set_title(f"{n_way}-way {k_shot}-shot Omniglot episode: {n_way * k_shot} support, "
                     f"{n_way * n_query} query images; chance = {1 / n_way:.3g}", fontsize="medium")
        ax.set_xlabel("28 × 28 px images (ink dark)")
        fig.tight_layout()
        show_figure(fig)
    return result


def episode_explorer(images: np.ndarray, *, n_way: int = 5, k_shot: int = 1, n_query: int = 5,
                     seed: int = 0, max_way: int = 20):
    """Sliders for N, K, the number of query images and the seed, redrawing a real episode.

    Returns ``ipywidgets.interactive`` (``.result`` is :func:`draw_episode`'s dict).
    K and Q both go up to 10, so K + Q never exceeds Omniglot's 20 drawings per character.
    The starting values must lie on the sliders: ``2 <= n_way <= max_way``, ``k_shot`` and
    ``n_query`` in [1, n_per_class // 2], ``seed`` in [0, 99].
    """
    from course_utils.widgets import int_slider, make_interactive

    images = np.asarray(check_array(images, "images", ndim=4, dtype="image"))
    max_way = min(check_int(max_way, "max_way", 2), images.shape[0])
    half = images.shape[1] // 2
    n_way = check_int(n_way, "n_way", 2, max_way)
    k_shot = check_int(k_shot, "k_shot", 1, half)
    n_query = check_int(n_query, "n_query", 1, half)
    seed = check_int(seed, "seed", 0, 99)
    return make_interactive(
        lambda n_way, k_shot, n_query, seed: draw_episode(images, n_way, k_shot, n_query, seed),
        n_way=int_slider("N (ways)", value=n_way, min=2, max=max_way),
        k_shot=int_slider("K (shots)", value=k_shot, min=1, max=half),
        n_query=int_slider("query per class", value=n_query, min=1, max=half),
        seed=int_slider("seed", value=seed, min=0, max=99),
    )


# --------------------------------------------------------------------------- sinusoid baseline
def family_fit(x_support: np.ndarray, y_support: np.ndarray, *, n_grid: int = 201,
               amplitude_range: tuple[float, float] = AMPLITUDE_RANGE,
               phase_range: tuple[float, float] = PHASE_RANGE) -> tuple[float, float]:
    """The learner that knows the task family: the (amplitude, phase) in p(T) with least support MSE.

    It searches only inside p(T) (y = A sin(x - φ), A and φ in their ranges): φ on a grid of
    ``n_grid`` points, and for each φ the least-squares amplitude (clipped to its range). This is
    what a perfect meta-learner could have learned about the family: the chapter's lower bound.

    Args:
        x_support, y_support: (k,) or (k, 1) arrays of one task.
        n_grid: phase grid points (>= 2).
        amplitude_range, phase_range: the family's (low, high) ranges, low <= high.

    Returns:
        ``(amplitude, phase)`` as floats.
    """
    n_grid = check_int(n_grid, "n_grid", 2)
    amplitude_range = check_interval(amplitude_range, "amplitude_range")
    phase_range = check_interval(phase_range, "phase_range")
    x = check_points(x_support, "x_support")
    y = check_points(y_support, "y_support")
    if x.shape != y.shape:
        raise ValueError(f"x_support and y_support must hold the same number (>= 1) of points, "
                         f"got {x.size} and {y.size}")
    phases = np.linspace(*phase_range, n_grid)
    s = np.sin(x[None, :] - phases[:, None])               # (phases, k)
    # for a fixed phase the best amplitude is a 1-D least-squares fit, clipped to the range
    best_a = np.clip((s @ y) / np.maximum((s * s).sum(1), 1e-12), *amplitude_range)
    err = ((best_a[:, None] * s - y[None]) ** 2).mean(1)
    i = int(err.argmin())
    return float(best_a[i]), float(phases[i])


# --------------------------------------------------------------------------- challenges
def check_episode_counts(fn: Callable | None) -> bool:
    """Challenge 1: ``fn(n_way, k_shot, n_query) -> (support images, query images)`` of an episode."""
    name = "episode sizes"
    if fn is None:
        return report(False, name, "Define episode_sizes(n_way, k_shot, n_query) and pass it in.")
    cases = [(5, 1, 15), (5, 5, 15), (20, 1, 5), (20, 5, 15), (3, 2, 1)]
    try:
        got = [tuple(int(v) for v in fn(*c)) for c in cases]
    except Exception as exc:  # noqa: BLE001 - a learner's bug becomes a hint
        return report(False, name, f"calling it raised {type(exc).__name__}: {exc}")
    expected = [(n * k, n * q) for n, k, q in cases]
    for case, g, e in zip(cases, got, expected):
        if g != e:
            per_class = g in [(c[1], c[2]) for c in cases]
            hint = "Support and query are counted per class: multiply by N." if per_class else ""
            return report(False, name, f"for (N, K, Q) = {case} expected {e}, got {g}. {hint}")
    return report(True, name)


#: Challenge 2's task family: not the course's sinusoids (whose mean task the chapter derives), but
#: y = A sin(x − φ) with A ~ U[1, 3] and φ ~ U[0, π/2].
CHALLENGE_FAMILY = {"amplitude_range": (1.0, 3.0), "phase_range": (0.0, float(np.pi / 2))}


def _mean_task_curve(x: np.ndarray, amplitude_range=AMPLITUDE_RANGE, phase_range=PHASE_RANGE) -> np.ndarray:
    a_lo, a_hi = amplitude_range
    p_lo, p_hi = phase_range
    mean_a = (a_lo + a_hi) / 2
    # (1/(p_hi-p_lo)) ∫ sin(x - φ) dφ = (cos(x - p_hi) - cos(x - p_lo)) / (p_hi - p_lo)
    return mean_a * (np.cos(x - p_hi) - np.cos(x - p_lo)) / (p_hi - p_lo)


def check_mean_task_function(fn: Callable | None, *, atol: float = 0.05) -> bool:
    """Challenge 2: ``fn(x) -> E_T[A sin(x − φ)]`` for :data:`CHALLENGE_FAMILY`, x (n,) → (n,).

    The exact answer is E[A]·(cos(x − π/2) − cos x)/(π/2) = (4/π)(sin x − cos x); a Monte-Carlo
    average over 10,000+ tasks passes (tolerance ``atol``). The course's own family (φ ∈ [0, π],
    whose mean the chapter derives) is recognised and answered with a hint.
    """
    atol = check_float(atol, "atol", 0.0, low_open=True)
    name = "mean task function"
    if fn is None:
        return report(False, name, "Define mean_task(x) returning the average curve of the challenge's family.")
    x = np.linspace(-5, 5, 41)
    try:
        got = np.asarray(fn(x), dtype=float).ravel()
    except Exception as exc:  # noqa: BLE001
        return report(False, name, f"calling it raised {type(exc).__name__}: {exc}")
    expected = _mean_task_curve(x, **CHALLENGE_FAMILY)
    if got.shape != expected.shape:
        return report(False, name, f"expected {expected.size} values for {x.size} inputs, got {got.size}")
    if np.allclose(got, 0, atol=atol):
        return report(False, name, "Not zero: the phases only range over a quarter turn, so the curves do not cancel.")
    if np.allclose(got, _mean_task_curve(x), atol=atol):
        return report(False, name, "That is the mean of the course's family (A ~ U[0.1, 5], φ ~ U[0, π]); "
                                   "the challenge asks for A ~ U[1, 3], φ ~ U[0, π/2].")
    if not np.allclose(got, expected, atol=atol):
        worst = float(np.abs(got - expected).max())
        return report(False, name, f"largest error {worst:.3g} (allowed {atol}). Average A·sin(x − φ) "
                                   "over A ~ U[1, 3] and φ ~ U[0, π/2] (independent).")
    return report(True, name)


def check_recover_task(fn: Callable | None, *, k_shot: int = 3, atol: float = 1e-3) -> bool:
    """Challenge 3: ``fn(x_support, y_support) -> (amplitude, phase)`` from K noiseless points.

    Tested on 20 random tasks with ``k_shot`` points each; amplitude and phase must match
    to ``atol`` (the family is linear in (A cos φ, A sin φ), so least squares recovers it exactly).
    """
    k_shot = check_positive_int(k_shot, "k_shot")
    atol = check_float(atol, "atol", 0.0, low_open=True)
    name = "recover a task"
    if fn is None:
        return report(False, name, "Define recover(x_support, y_support) returning (amplitude, phase).")
    tasks = sample_sinusoid_tasks(20, k_shot, 1, rng=12345)
    for i in range(tasks.n_tasks):
        try:
            a, p = (float(v) for v in fn(tasks.x_support[i, :, 0], tasks.y_support[i, :, 0]))
        except Exception as exc:  # noqa: BLE001
            return report(False, name, f"calling it raised {type(exc).__name__}: {exc}")
        true = (float(tasks.amplitude[i]), float(tasks.phase[i]))
        if not close([a, p], true, rtol=0, atol=atol):
            return report(False, name, f"task {i}: expected (A, φ) ≈ ({true[0]:.4g}, {true[1]:.4g}), got "
                                       f"({a:.4g}, {p:.4g}). Hint: A sin(x − φ) = (A cos φ) sin x − (A sin φ) cos x.")
    return report(True, name)
