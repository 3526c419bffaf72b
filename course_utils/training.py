"""The course's one meta-training loop, written once and framework-free.

Every method (MAML, FOMAML, Reptile, ANIL, the pooled "pretrained" baseline, and what later
chapters add) is a *meta-step*: ``step(params, x_support, y_support, x_query, y_query) ->
(loss, update)`` built by a factory registered in a :class:`MethodRegistry`. Each framework
(:mod:`course_utils.torch.training`, :mod:`course_utils.tensorflow.training`) supplies how to
run one iteration (its meta-step, then Adam on the gradient or Reptile's interpolation) and
calls :func:`run_meta_loop` here, which samples the batches, evaluates, times and records the
same :class:`MetaHistory` in both frameworks.

Also here, because both halves need them: :func:`reptile_epsilon` (Reptile's ε schedule),
:class:`FinetuneCurve` (the result of ``finetune_curve``), :func:`progress_range`,
:func:`batches` and :func:`meta_test_summary`. NumPy only.
"""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from course_utils.env import PeakMemory
from course_utils.validation import check_choice, check_float, check_int, check_positive_int

__all__ = [
    "UPDATE_RULES",
    "MetaMethod",
    "MethodRegistry",
    "MetaHistory",
    "FinetuneCurve",
    "run_meta_loop",
    "reptile_epsilon",
    "progress_range",
    "batches",
    "meta_test_summary",
]

#: How a method's ``update`` moves θ: ``"gradient"`` — descend it with Adam at ``outer_lr``;
#: ``"direction"`` — θ ← θ + ε_i·update with ε_i from :func:`reptile_epsilon` (Reptile).
UPDATE_RULES = ("gradient", "direction")


@dataclass(frozen=True)
class MetaMethod:
    """A meta-learning method that plugs into ``meta_train``.

    Attributes:
        name: the ``method=`` string, e.g. ``"maml"``.
        make_step: ``make_step(*, inner_lr, steps, first_order, forward, loss_fn, **options)``
            returning ``step(params, x_support, y_support, x_query, y_query) -> (loss, update)``
            with tensors of its framework; ``update`` is a dict keyed like ``params``.
        update: one of :data:`UPDATE_RULES`.
        doc: one line for error messages and listings.
    """

    name: str
    make_step: Callable
    update: str = "gradient"
    doc: str = ""

    def build(self, **kwargs) -> Callable:
        """``make_step(**kwargs)``, after checking that the method takes every option given."""
        params = inspect.signature(self.make_step).parameters
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            unknown = sorted(set(kwargs) - set(params))
            if unknown:
                own = sorted(set(params) - {"inner_lr", "steps", "first_order", "forward", "loss_fn"})
                raise ValueError(f"method {self.name!r} does not take the option(s) {unknown}; "
                                 f"its own options are {own}")
        return self.make_step(**kwargs)


class MethodRegistry:
    """The methods ``meta_train`` knows, by name (one registry per framework, same names in both)."""

    def __init__(self) -> None:
        self._methods: dict[str, MetaMethod] = {}

    def register(self, name: str, make_step: Callable, *, update: str = "gradient", doc: str = "") -> MetaMethod:
        """Add (or replace) method ``name``; later chapters call this for their own methods."""
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"name must be an identifier-like str, got {name!r}")
        if not callable(make_step):
            raise ValueError(f"make_step must be callable, got {make_step!r}")
        check_choice(update, "update", UPDATE_RULES)
        method = MetaMethod(name, make_step, update, doc)
        self._methods[name] = method
        return method

    def get(self, name) -> MetaMethod:
        """The method called ``name``; a ``ValueError`` lists the known ones otherwise."""
        check_choice(name, "method", self.names())
        return self._methods[name]

    def names(self) -> tuple[str, ...]:
        return tuple(self._methods)

    def __contains__(self, name) -> bool:
        return name in self._methods


@dataclass
class MetaHistory:
    """What ``meta_train`` records, identical in both frameworks.

    Attributes:
        method, framework: what ran.
        loss: the meta-loss of every iteration, measured before its update (``n_iterations``).
        eval_iterations, eval: ``eval_fn(params)`` every ``eval_every`` iterations and at the end.
        seconds: wall-clock of the training iterations (sampling, step, update; no evaluation).
        seconds_per_iteration: mean over iterations 2..n (the first one traces/compiles).
        trace_seconds: the first iteration's time.
        peak_memory_mb: peak increase of resident memory during training.
    """

    method: str
    framework: str
    loss: list[float] = field(default_factory=list)
    eval_iterations: list[int] = field(default_factory=list)
    eval: list[float] = field(default_factory=list)
    seconds: float = 0.0
    seconds_per_iteration: float = 0.0
    trace_seconds: float = 0.0
    peak_memory_mb: float = 0.0

    @property
    def n_iterations(self) -> int:
        return len(self.loss)

    @property
    def iterations_per_second(self) -> float:
        return self.n_iterations / self.seconds if self.seconds > 0 else float("inf")


class FinetuneCurve(NamedTuple):
    """Result of ``finetune_curve`` (both frameworks).

    ``loss`` (steps + 1, tasks): query loss after 0, 1, ..., steps adaptation steps;
    ``accuracy`` (steps + 1, tasks) or None; ``guarded`` (tasks,) bool: the divergence guard
    rejected at least one step of that task.
    """

    loss: np.ndarray
    accuracy: np.ndarray | None
    guarded: np.ndarray


def run_meta_loop(iterate: Callable, sample_batch: Callable, *, n_iterations: int, rng: np.random.Generator,
                  get_params: Callable, method: str, framework: str, eval_fn: Callable | None = None,
                  eval_every: int = 100, progress: bool = True, desc: str | None = None) -> MetaHistory:
    """The meta-training loop shared by every method and both frameworks.

    Args:
        iterate: ``iterate(i, batch) -> loss`` runs meta-iteration ``i`` (0-based) on ``batch``,
            the tuple ``sample_batch(rng)`` returned (converted by the framework), and returns
            its meta-loss (a float or 0-d tensor).
        sample_batch: ``sample_batch(rng) -> (x_support, y_support, x_query, y_query, ...)``.
        n_iterations: meta-iterations (>= 1).
        rng: the generator ``sample_batch`` draws from.
        get_params: returns the current θ as a NumPy dict (for ``eval_fn``).
        eval_fn: optional ``eval_fn(params) -> float``; its time is not counted.
        eval_every: evaluate every this many iterations (and at the end).
        progress, desc: a ``tqdm.auto`` bar and its label.
    """
    n_iterations = check_positive_int(n_iterations, "n_iterations")
    eval_every = check_positive_int(eval_every, "eval_every")
    hist = MetaHistory(method=method, framework=framework)
    seconds = 0.0
    with PeakMemory() as mem:
        for i in progress_range(n_iterations, desc or f"{method} ({framework})", progress):
            if eval_fn is not None and i % eval_every == 0:
                hist.eval_iterations.append(i)
                hist.eval.append(float(eval_fn(get_params())))
            t0 = time.perf_counter()
            loss = iterate(i, sample_batch(rng))
            hist.loss.append(float(loss))
            dt = time.perf_counter() - t0
            if i == 0:
                hist.trace_seconds = dt
            seconds += dt
    if eval_fn is not None:
        hist.eval_iterations.append(n_iterations)
        hist.eval.append(float(eval_fn(get_params())))
    hist.seconds = seconds
    hist.seconds_per_iteration = (seconds - hist.trace_seconds) / max(1, n_iterations - 1) \
        if n_iterations > 1 else seconds
    hist.peak_memory_mb = mem.peak_mb
    return hist


def reptile_epsilon(iteration: int, n_iterations: int, *, epsilon_start: float = 1.0,
                    epsilon_end: float = 0.0) -> float:
    """Reptile's outer step size at ``iteration`` (0-based), annealed linearly.

    ε_i = ε_start + (ε_end − ε_start) · i / n_iterations, as in Nichol et al. (2018), whose
    experiments anneal ε linearly to 0 over training.

    Args:
        iteration: the current meta-iteration, in [0, n_iterations].
        n_iterations: the length of training (>= 1).
        epsilon_start: ε at iteration 0, in (0, 1].
        epsilon_end: ε at the end, in [0, epsilon_start].
    """
    n_iterations = check_positive_int(n_iterations, "n_iterations")
    iteration = check_int(iteration, "iteration", 0, n_iterations)
    check_float(epsilon_start, "epsilon_start", 0.0, 1.0, low_open=True)
    check_float(epsilon_end, "epsilon_end", 0.0, float(epsilon_start))
    return float(epsilon_start + (epsilon_end - epsilon_start) * iteration / n_iterations)


def progress_range(n: int, desc: str, enabled: bool):
    """``range(n)``, or a ``tqdm.auto`` progress bar over it when ``enabled``."""
    if not enabled:
        return range(n)
    from tqdm.auto import trange

    return trange(n, desc=desc, leave=False)


def batches(n: int, batch_size: int | None, steps: int) -> list[slice]:
    """Minibatch j of an inner loop: consecutive slices of the task's ``n`` points, cycling."""
    b = n if batch_size is None else check_int(batch_size, "batch_size", 1, n)
    per_epoch = max(1, n // b)
    return [slice((j % per_epoch) * b, (j % per_epoch) * b + b) for j in range(steps)]


def meta_test_summary(loss: list, acc: list, accuracy: bool) -> dict:
    """``meta_test``'s result from per-batch query losses (and accuracies): means over all tasks."""
    loss = np.concatenate(loss)
    out = {"loss": float(loss.mean()), "accuracy": None, "accuracy_ci95": None, "n_tasks": int(loss.size)}
    if accuracy:
        acc = np.concatenate(acc)
        out["accuracy"] = float(acc.mean())
        out["accuracy_ci95"] = float(1.96 * acc.std(ddof=1) / np.sqrt(acc.size)) if acc.size > 1 else 0.0
    return out
