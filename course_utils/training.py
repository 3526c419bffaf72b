"""The course's one meta-training loop, written once and framework-free.

Every method (MAML, FOMAML, Reptile, ANIL, the pooled "pretrained" baseline, and what later
chapters add) is a *meta-step*: ``step(params, x_support, y_support, x_query, y_query) ->
(loss, update)`` built by a factory registered in a :class:`MethodRegistry`. Each framework
(:mod:`course_utils.torch.training`, :mod:`course_utils.tensorflow.training`) supplies how to
run one iteration (its meta-step, then Adam on the gradient or Reptile's interpolation) and
calls :func:`run_meta_loop` here, which samples the batches, evaluates, times and records the
same :class:`MetaHistory` in both frameworks.

Speed: the loop samples the batches of many iterations at once (a *block*, :func:`stack_batches`;
``sample_batch`` is still called once per iteration, in order, so the task stream and every result
are those of the one-at-a-time loop), the framework converts a block to tensors once and runs it
(TensorFlow: in one compiled graph loop), and the losses come back once per block. An iteration
then costs about what its meta-gradient costs (``benchmarks/maml_sine.py`` measures the ratio).

Also here, because both halves need them: :func:`reptile_epsilon` (Reptile's ε schedule),
:class:`FinetuneCurve` (the result of ``finetune_curve``), :func:`progress_range`,
:func:`batches`, :func:`auto_block_size` and :func:`meta_test_summary`. NumPy only.
"""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from course_utils.env import PeakMemory
from course_utils.validation import (check_arrays_list, check_bool, check_callable, check_choice, check_float,
                                     check_generator, check_int, check_numbers, check_optional_callable,
                                     check_positive_int, check_str)

__all__ = [
    "UPDATE_RULES",
    "MetaMethod",
    "MethodRegistry",
    "MetaHistory",
    "FinetuneCurve",
    "run_meta_loop",
    "stack_batches",
    "auto_block_size",
    "reptile_epsilon",
    "progress_range",
    "batches",
    "meta_test_summary",
]

#: How a method's ``update`` moves θ: ``"gradient"`` — descend it with Adam at ``outer_lr``;
#: ``"direction"`` — θ ← θ + ε_i·update with ε_i from :func:`reptile_epsilon` (Reptile).
UPDATE_RULES = ("gradient", "direction")


def _check_method_name(name) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be an identifier-like str, got {name!r}")
    return name


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

    def __post_init__(self) -> None:
        _check_method_name(self.name)
        check_callable(self.make_step, "make_step")
        check_choice(self.update, "update", UPDATE_RULES)
        check_str(self.doc, "doc")

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
        method = MetaMethod(name, make_step, update, doc)  # validates every field
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

    def __post_init__(self) -> None:
        check_str(self.method, "method")
        check_str(self.framework, "framework")
        self.loss = check_numbers(self.loss, "loss")
        self.eval_iterations = check_numbers(self.eval_iterations, "eval_iterations", integer=True, low=0)
        self.eval = check_numbers(self.eval, "eval")
        for name in ("seconds", "seconds_per_iteration", "trace_seconds", "peak_memory_mb"):
            setattr(self, name, check_float(getattr(self, name), name, 0.0))

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


#: A block of meta-iterations holds at most this many bytes of task data (as float32): the
#: sinusoid batches of chapter 6 (4 KB each) go 500 at a time, Omniglot's (0.5 MB) 16 at a time.
BLOCK_BYTES = 8 * 2**20
#: The longest block (the progress bar and ``eval_fn`` see the loop at least this often).
MAX_BLOCK = 500


def stack_batches(batches) -> tuple[np.ndarray, ...]:
    """``n`` batches (tuples of arrays with the same shapes) → one block: item ``j`` of every
    batch stacked on a new leading axis of length ``n`` (the iteration axis)."""
    if isinstance(batches, (str, bytes, dict)) or not hasattr(batches, "__iter__"):
        raise ValueError(f"batches must be a list of batches (tuples of arrays), got {type(batches).__name__}")
    batches = [tuple(b) for b in batches]
    if not batches:
        raise ValueError("batches must hold at least one batch")
    try:
        return tuple(np.stack([np.asarray(b[j]) for b in batches]) for j in range(len(batches[0])))
    except ValueError as e:
        raise ValueError("every batch of a block must have the same arrays with the same shapes "
                         f"(use block_size=1 for batches whose shapes change): {e}") from None


def auto_block_size(batch, n_iterations: int) -> int:
    """How many iterations to sample at once: as many as fit in :data:`BLOCK_BYTES` (counted as
    float32), at most :data:`MAX_BLOCK` and ``n_iterations``, at least 1."""
    if isinstance(batch, (str, bytes, dict)) or not isinstance(batch, (tuple, list)):
        raise ValueError(f"batch must be a tuple of arrays (what sample_batch returns), got {type(batch).__name__}")
    n_iterations = check_positive_int(n_iterations, "n_iterations")
    n_values = sum(int(np.asarray(a).size) for a in batch)
    return int(max(1, min(MAX_BLOCK, n_iterations, BLOCK_BYTES // max(1, 4 * n_values))))


def _block_ends(n_iterations: int, block_size: int, eval_every: int | None) -> list[int]:
    """End points of the blocks: the first block is iteration 0 alone (it traces/compiles and is
    timed apart), then blocks of ``block_size`` that never cross an evaluation point."""
    stops = {1, n_iterations}
    if eval_every is not None:
        stops |= set(range(eval_every, n_iterations, eval_every))
    ends, start = [], 0
    for stop in sorted(stops):
        while start < stop:
            start = min(stop, start + block_size) if start else 1
            ends.append(start)
    return ends


def run_meta_loop(iterate: Callable, sample_batch: Callable, *, n_iterations: int, rng: np.random.Generator,
                  get_params: Callable, method: str, framework: str, eval_fn: Callable | None = None,
                  eval_every: int = 100, progress: bool = True, desc: str | None = None,
                  block_size: int | None = 1) -> MetaHistory:
    """The meta-training loop shared by every method and both frameworks.

    Args:
        iterate: with ``block_size=1``, ``iterate(i, batch) -> loss`` runs meta-iteration ``i``
            (0-based) on ``batch``, the tuple ``sample_batch(rng)`` returned, and returns its
            meta-loss (a float or 0-d tensor). Otherwise ``iterate(i, block) -> losses`` runs
            iterations ``i, ..., i + n - 1`` on ``block`` (:func:`stack_batches` of the ``n``
            batches, iteration axis first) and returns their ``n`` losses (one host sync per block).
        sample_batch: ``sample_batch(rng) -> (x_support, y_support, x_query, y_query, ...)``.
            A block calls it ``n`` times in a row, so the task stream (and every result) is the
            same as with one call per iteration; it must draw only from ``rng``.
        n_iterations: meta-iterations (>= 1).
        rng: the generator ``sample_batch`` draws from.
        get_params: returns the current θ as a NumPy dict (for ``eval_fn``).
        eval_fn: optional ``eval_fn(params) -> float``; its time is not counted.
        eval_every: evaluate every this many iterations (and at the end).
        progress, desc: a ``tqdm.auto`` bar and its label.
        block_size: iterations sampled and run per ``iterate`` call; 1: one at a time (the
            straightforward loop); None: :func:`auto_block_size`. Iteration 0 always runs alone
            (its time, tracing or compiling included, is ``trace_seconds``).
    """
    check_callable(iterate, "iterate")
    check_callable(sample_batch, "sample_batch")
    n_iterations = check_positive_int(n_iterations, "n_iterations")
    check_generator(rng, "rng")
    check_callable(get_params, "get_params")
    check_str(method, "method")
    check_str(framework, "framework")
    check_optional_callable(eval_fn, "eval_fn")
    eval_every = check_positive_int(eval_every, "eval_every")
    progress = check_bool(progress, "progress")
    check_str(desc, "desc", allow_none=True)
    blocked = block_size != 1
    if block_size is not None:
        block_size = check_positive_int(block_size, "block_size")
    hist = MetaHistory(method=method, framework=framework)
    seconds, start = 0.0, 0
    bar = _bar(n_iterations, desc or f"{method} ({framework})", progress)
    with PeakMemory(interval=0.02) as mem:
        ends = None
        while start < n_iterations:
            if eval_fn is not None and start % eval_every == 0:
                hist.eval_iterations.append(start)
                hist.eval.append(float(eval_fn(get_params())))
            t0 = time.perf_counter()
            if not blocked:
                hist.loss.append(float(iterate(start, sample_batch(rng))))
                stop = start + 1
            else:
                first = [sample_batch(rng)] if ends is None else []
                if ends is None:
                    size = auto_block_size(first[0], n_iterations) if block_size is None else block_size
                    ends = iter(_block_ends(n_iterations, size, eval_every if eval_fn is not None else None))
                stop = next(ends)
                block = stack_batches(first + [sample_batch(rng) for _ in range(stop - start - len(first))])
                losses = [float(v) for v in np.asarray(iterate(start, block), dtype=np.float64).reshape(-1)]
                if len(losses) != stop - start:
                    raise ValueError(f"iterate returned {len(losses)} losses for a block of {stop - start}")
                hist.loss.extend(losses)
            dt = time.perf_counter() - t0
            if start == 0:
                hist.trace_seconds = dt
            seconds += dt
            bar.update(stop - start)
            start = stop
    bar.close()
    if eval_fn is not None:
        hist.eval_iterations.append(n_iterations)
        hist.eval.append(float(eval_fn(get_params())))
    hist.seconds = seconds
    hist.seconds_per_iteration = (seconds - hist.trace_seconds) / max(1, n_iterations - 1) \
        if n_iterations > 1 else seconds
    hist.peak_memory_mb = mem.peak_mb
    return hist


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(n: int, desc: str, enabled: bool):
    """A ``tqdm.auto`` bar over ``n`` iterations (or a silent stand-in)."""
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=n, desc=desc, leave=False)


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
    n = check_int(n, "n", 0)
    check_str(desc, "desc")
    enabled = check_bool(enabled, "enabled")
    if not enabled:
        return range(n)
    from tqdm.auto import trange

    return trange(n, desc=desc, leave=False)


def batches(n: int, batch_size: int | None, steps: int) -> list[slice]:
    """Minibatch j of an inner loop: consecutive slices of the task's ``n`` points, cycling."""
    n = check_positive_int(n, "n")
    steps = check_int(steps, "steps", 0)
    b = n if batch_size is None else check_int(batch_size, "batch_size", 1, n)
    per_epoch = max(1, n // b)
    return [slice((j % per_epoch) * b, (j % per_epoch) * b + b) for j in range(steps)]


def meta_test_summary(loss: list, acc: list, accuracy: bool) -> dict:
    """``meta_test``'s result from per-batch query losses (and accuracies): means over all tasks."""
    accuracy = check_bool(accuracy, "accuracy")
    loss = np.concatenate(check_arrays_list(loss, "loss"))
    out = {"loss": float(loss.mean()), "accuracy": None, "accuracy_ci95": None, "n_tasks": int(loss.size)}
    if accuracy:
        acc = np.concatenate(check_arrays_list(acc, "acc"))
        out["accuracy"] = float(acc.mean())
        out["accuracy_ci95"] = float(1.96 * acc.std(ddof=1) / np.sqrt(acc.size)) if acc.size > 1 else 0.0
    return out
