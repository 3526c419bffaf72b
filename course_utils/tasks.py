"""Task generators for meta-learning, in NumPy, with explicit randomness.

* :func:`sample_sinusoid_tasks` - the sinusoid regression family of Finn et al. (2017, §5.1).
* :class:`EpisodeSampler` / :func:`sample_episode` - N-way K-shot episodes over labelled images.
* :class:`GaussianTaskFamily` - 2-D Gaussian classification tasks whose Bayes posterior is exact.

Every generator takes a ``np.random.Generator`` (or an int seed) and validates its arguments:
a bad value raises ``ValueError`` naming the argument and the allowed range.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from course_utils.validation import (check_array, check_bool, check_float, check_int, check_probabilities,
                                     check_same_length)
from course_utils.seed import check_rng

__all__ = [
    "SinusoidTasks",
    "sample_sinusoid_tasks",
    "FeatureTasks",
    "FEATURE_DIM",
    "feature_map",
    "sample_feature_tasks",
    "Episode",
    "EpisodeSampler",
    "sample_episode",
    "GaussianTask",
    "GaussianTaskFamily",
]

AMPLITUDE_RANGE = (0.1, 5.0)
PHASE_RANGE = (0.0, float(np.pi))
X_RANGE = (-5.0, 5.0)


def _check_range(value, name: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high) of numbers, got {value!r}") from None
    if not (np.isfinite(low) and np.isfinite(high) and low <= high):
        raise ValueError(f"{name} must be finite with low <= high, got {value!r}")
    return low, high


# --------------------------------------------------------------------------- sinusoids
class SinusoidTasks(NamedTuple):
    """A batch of sinusoid tasks y = A sin(x - φ) with support and query sets.

    Shapes: ``x_support``/``y_support`` (tasks, k_shot, 1); ``x_query``/``y_query``
    (tasks, k_query, 1); ``amplitude``/``phase`` (tasks,). All arrays are float32.
    """

    x_support: np.ndarray
    y_support: np.ndarray
    x_query: np.ndarray
    y_query: np.ndarray
    amplitude: np.ndarray
    phase: np.ndarray

    @property
    def n_tasks(self) -> int:
        return self.amplitude.shape[0]

    def true_function(self, x: np.ndarray) -> np.ndarray:
        """Evaluate every task's true curve on ``x`` of shape (n,) → (tasks, n)."""
        x = np.asarray(x, dtype=np.float32).reshape(1, -1)
        return (self.amplitude[:, None] * np.sin(x - self.phase[:, None])).astype(np.float32)

    def task(self, i: int) -> "SinusoidTasks":
        """The i-th task as a batch of one (keeps the leading axis)."""
        return SinusoidTasks(*(a[i:i + 1] for a in self))


def sample_sinusoid_tasks(n_tasks: int = 25, k_shot: int = 10, k_query: int | None = None, *,
                          rng: np.random.Generator | int | None = None,
                          amplitude_range: tuple[float, float] = AMPLITUDE_RANGE,
                          phase_range: tuple[float, float] = PHASE_RANGE,
                          x_range: tuple[float, float] = X_RANGE) -> SinusoidTasks:
    """Sample ``n_tasks`` sinusoid regression tasks at once (Finn et al. 2017, §5.1).

    Amplitude ~ U[0.1, 5], phase ~ U[0, π], inputs x ~ U[-5, 5], y = A sin(x - φ), no noise.

    Args:
        n_tasks: tasks in the batch (>= 1).
        k_shot: support points per task (>= 1).
        k_query: query points per task (>= 1); defaults to ``k_shot``.
        rng: a ``np.random.Generator`` or an int seed.
        amplitude_range, phase_range, x_range: (low, high) of the uniform distributions.

    Returns:
        :class:`SinusoidTasks` with support (n_tasks, k_shot, 1) and query (n_tasks, k_query, 1).
    """
    n_tasks = check_int(n_tasks, "n_tasks", 1)
    k_shot = check_int(k_shot, "k_shot", 1)
    k_query = k_shot if k_query is None else check_int(k_query, "k_query", 1)
    a_lo, a_hi = _check_range(amplitude_range, "amplitude_range")
    p_lo, p_hi = _check_range(phase_range, "phase_range")
    x_lo, x_hi = _check_range(x_range, "x_range")
    rng = check_rng(rng)
    amplitude = rng.uniform(a_lo, a_hi, size=n_tasks)
    phase = rng.uniform(p_lo, p_hi, size=n_tasks)
    x = rng.uniform(x_lo, x_hi, size=(n_tasks, k_shot + k_query, 1))
    y = amplitude[:, None, None] * np.sin(x - phase[:, None, None])
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    return SinusoidTasks(f32(x[:, :k_shot]), f32(y[:, :k_shot]), f32(x[:, k_shot:]),
                         f32(y[:, k_shot:]), f32(amplitude), f32(phase))


# --------------------------------------------------------------------------- 10-input feature tasks
FEATURE_DIM = 10
_FEATURE_SEED = 2017  # the family's shared feature map is fixed, like a class split


class FeatureTasks(NamedTuple):
    """A batch of 10-input regression tasks y = w_τ · relu(B x) (chapter 11).

    Shapes: ``x_support`` (tasks, k_shot, 10), ``y_support`` (tasks, k_shot, 1), ``x_query``
    (tasks, k_query, 10), ``y_query`` (tasks, k_query, 1), ``weights`` (tasks, 10): w_τ. float32.
    """

    x_support: np.ndarray
    y_support: np.ndarray
    x_query: np.ndarray
    y_query: np.ndarray
    weights: np.ndarray


def feature_map(x: np.ndarray) -> np.ndarray:
    """The family's shared features relu(B x), B (10, 10) fixed (seed 2017, entries N(0, 1/10)):
    x (..., 10) → (..., 10)."""
    x = np.asarray(check_array(x, "x", min_ndim=1, last=FEATURE_DIM, dtype="real"), np.float64)
    b = np.random.default_rng(_FEATURE_SEED).normal(0.0, 1.0 / np.sqrt(FEATURE_DIM), (FEATURE_DIM, FEATURE_DIM))
    return np.maximum(x @ b.T, 0.0)


def sample_feature_tasks(n_tasks: int = 25, k_shot: int = 20, k_query: int | None = None, *,
                         rng: np.random.Generator | int | None = None, noise: float = 0.0) -> FeatureTasks:
    """Sample tasks of a family that fits the source article's 10-unit layers.

    Every task shares the features g(x) = relu(B x) (:func:`feature_map`) and has its own linear
    read-out: y = w_τ · g(x) + noise, w_τ ~ N(0, I), x ~ N(0, I₁₀). Averaged over tasks the answer
    is 0 for every x, so one model trained on all tasks pooled learns (almost) nothing; the
    *features* are what the tasks have in common, and a learner that meta-learns them can fit a
    new task's w_τ from a few points.

    Args:
        n_tasks, k_shot, k_query: tasks, support points and query points per task (>= 1;
            ``k_query`` defaults to ``k_shot``).
        rng: generator or seed.
        noise: standard deviation of Gaussian label noise (>= 0).
    """
    n_tasks = check_int(n_tasks, "n_tasks", 1)
    k_shot = check_int(k_shot, "k_shot", 1)
    k_query = k_shot if k_query is None else check_int(k_query, "k_query", 1)
    noise = check_float(noise, "noise", 0.0)
    rng = check_rng(rng)
    w = rng.normal(size=(n_tasks, FEATURE_DIM))
    x = rng.normal(size=(n_tasks, k_shot + k_query, FEATURE_DIM))
    y = np.einsum("tnd,td->tn", feature_map(x), w)[..., None] + noise * rng.normal(size=(n_tasks, k_shot + k_query, 1))
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    return FeatureTasks(f32(x[:, :k_shot]), f32(y[:, :k_shot]), f32(x[:, k_shot:]), f32(y[:, k_shot:]), f32(w))


# --------------------------------------------------------------------------- episodes
class Episode(NamedTuple):
    """An N-way K-shot episode.

    Shapes (one episode): ``x_support`` (n_way*k_shot, *image), ``y_support`` (n_way*k_shot,),
    ``x_query`` (n_way*n_query, *image), ``y_query`` (n_way*n_query,), ``classes`` (n_way,) the
    original class ids, ``rotations`` (n_way,) in quarter turns. A batch of episodes has one more
    leading axis on every array. Labels are remapped to 0..n_way-1, sorted by label.
    """

    x_support: np.ndarray
    y_support: np.ndarray
    x_query: np.ndarray
    y_query: np.ndarray
    classes: np.ndarray
    rotations: np.ndarray


class EpisodeSampler:
    """Draw N-way K-shot episodes from a labelled image array.

    Args:
        images: either (n_images, *image) with ``labels`` (n_images,), or grouped by class as
            (n_classes, n_per_class, *image) with ``labels=None``.
        labels: integer class of each image, or None for grouped input.
        n_way: classes per episode (>= 1, at most the number of classes, ×4 with rotations).
        k_shot: support examples per class (>= 1).
        n_query: query examples per class (>= 1); k_shot + n_query must not exceed the
            smallest class.
        rotations: if True, each class rotated by 0/90/180/270 degrees counts as its own class
            (as in MAML and Prototypical Networks on Omniglot).

    Support and query examples of an episode are always distinct images. Images keep their
    dtype (keep Omniglot as uint8 to save memory, convert batches to float when training).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray | None = None, *, n_way: int = 5,
                 k_shot: int = 1, n_query: int = 15, rotations: bool = False):
        check_array(images, "images", min_ndim=2, dtype="number")
        images = np.asarray(images)
        rotations = check_bool(rotations, "rotations")
        if labels is None:
            if images.ndim < 3:
                raise ValueError("images must be (n_classes, n_per_class, *image) when labels is None, "
                                 f"got shape {images.shape}")
            self._grouped = images
            self._index = None
            counts = np.full(images.shape[0], images.shape[1])
            self.class_ids = np.arange(images.shape[0])
            self.image_shape = images.shape[2:]
        else:
            check_array(labels, "labels", dtype="number")
            labels = np.asarray(labels)
            if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
                raise ValueError(f"labels must have shape ({images.shape[0]},) to match images, "
                                 f"got {labels.shape}")
            if not np.issubdtype(labels.dtype, np.integer):
                raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
            self._grouped = None
            self._images = images
            self.class_ids, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
            order = np.argsort(inverse, kind="stable")
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            self._index = [order[s:s + c] for s, c in zip(starts, counts)]
            self.image_shape = images.shape[1:]
        n_classes = len(self.class_ids) * (4 if rotations else 1)
        self.n_way = check_int(n_way, "n_way", 1, n_classes)
        self.k_shot = check_int(k_shot, "k_shot", 1)
        self.n_query = check_int(n_query, "n_query", 1)
        smallest = int(counts.min())
        if self.k_shot + self.n_query > smallest:
            raise ValueError(f"k_shot + n_query must be <= {smallest} (the smallest class), "
                             f"got {self.k_shot} + {self.n_query}")
        if rotations and len(self.image_shape) < 2:
            raise ValueError("rotations=True needs images with at least 2 spatial axes")
        self.rotations = bool(rotations)
        self.n_classes = n_classes

    def _examples(self, cls: int, picks: np.ndarray) -> np.ndarray:
        if self._grouped is not None:
            return self._grouped[cls, picks]
        return self._images[self._index[cls][picks]]

    def sample(self, rng: np.random.Generator | int | None = None) -> Episode:
        """One episode; see :class:`Episode` for shapes."""
        rng = check_rng(rng)
        n, k, q = self.n_way, self.k_shot, self.n_query
        chosen = rng.choice(self.n_classes, size=n, replace=False)
        cls, rot = (chosen // 4, chosen % 4) if self.rotations else (chosen, np.zeros(n, dtype=int))
        support, query = [], []
        for c, r in zip(cls, rot):
            size = self._grouped.shape[1] if self._grouped is not None else len(self._index[c])
            picks = rng.choice(size, size=k + q, replace=False)
            x = self._examples(c, picks)
            if r:
                x = np.rot90(x, k=int(r), axes=(-2, -1))
            support.append(x[:k])
            query.append(x[k:])
        y_s = np.repeat(np.arange(n), k)
        y_q = np.repeat(np.arange(n), q)
        return Episode(np.ascontiguousarray(np.concatenate(support)), y_s,
                       np.ascontiguousarray(np.concatenate(query)), y_q,
                       self.class_ids[cls], rot.astype(np.int64))

    def sample_batch(self, n_episodes: int, rng: np.random.Generator | int | None = None) -> Episode:
        """``n_episodes`` episodes stacked on a new leading axis."""
        n_episodes = check_int(n_episodes, "n_episodes", 1)
        rng = check_rng(rng)
        eps = [self.sample(rng) for _ in range(n_episodes)]
        return Episode(*(np.stack(parts) for parts in zip(*eps)))


def sample_episode(images: np.ndarray, labels: np.ndarray | None = None, *, n_way: int = 5,
                   k_shot: int = 1, n_query: int = 15, rotations: bool = False,
                   rng: np.random.Generator | int | None = None) -> Episode:
    """One N-way K-shot episode; a shortcut for ``EpisodeSampler(...).sample(rng)``."""
    return EpisodeSampler(images, labels, n_way=n_way, k_shot=k_shot, n_query=n_query,
                          rotations=rotations).sample(rng)


# --------------------------------------------------------------------------- Gaussians
@dataclass(frozen=True)
class GaussianTask:
    """A classification task: class c has prior ``priors[c]`` and density N(means[c], sigma² I).

    ``means`` (n_classes, 2), ``priors`` (n_classes,), ``sigma`` a positive float.
    """

    means: np.ndarray
    sigma: float
    priors: np.ndarray

    def __post_init__(self):
        check_array(self.means, "means", ndim=2, last=2, dtype="real")
        if not np.all(np.isfinite(np.asarray(self.means, dtype=float))):
            raise ValueError(f"means must be finite, got {self.means!r}")
        check_float(self.sigma, "sigma", 0.0, low_open=True)
        check_probabilities(self.priors, "priors")
        check_array(self.priors, "priors", ndim=1)
        check_same_length({"means": self.means, "priors": self.priors}, 0, "number of classes (leading axis)")
        total = float(np.sum(self.priors))
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"priors must sum to 1 (one probability per class), got a sum of {total}")

    @property
    def n_classes(self) -> int:
        return self.means.shape[0]

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` labelled points: x (n, 2) float32, y (n,) int64."""
        n = check_int(n, "n", 1)
        rng = check_rng(rng)
        y = rng.choice(self.n_classes, size=n, p=self.priors)
        x = self.means[y] + self.sigma * rng.standard_normal((n, self.means.shape[1]))
        return x.astype(np.float32), y.astype(np.int64)

    def sample_per_class(self, k: int, rng: np.random.Generator | int | None = None):
        """Draw ``k`` points of each class (a K-shot support set): x (C*k, 2), y (C*k,)."""
        k = check_int(k, "k", 1)
        rng = check_rng(rng)
        y = np.repeat(np.arange(self.n_classes), k)
        x = self.means[y] + self.sigma * rng.standard_normal((y.size, self.means.shape[1]))
        return x.astype(np.float32), y.astype(np.int64)

    def log_posterior(self, x: np.ndarray) -> np.ndarray:
        """Exact log p*(y | x) for x (n, 2) → (n, n_classes), by Bayes' rule."""
        check_array(x, "x", ndim=2, last=self.means.shape[1], dtype="real")
        x = np.asarray(x, dtype=np.float64)
        sq = ((x[:, None, :] - self.means[None]) ** 2).sum(-1)
        logits = -sq / (2 * self.sigma**2) + np.log(self.priors)[None]
        logits -= logits.max(axis=1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))

    def posterior(self, x: np.ndarray) -> np.ndarray:
        """Exact p*(y | x), shape (n, n_classes); rows sum to one."""
        return np.exp(self.log_posterior(x))

    def bayes_predict(self, x: np.ndarray) -> np.ndarray:
        """The Bayes-optimal label for each row of x, shape (n,)."""
        return self.log_posterior(x).argmax(axis=1)


class GaussianTaskFamily:
    """A distribution over 2-D Gaussian classification tasks with an exact Bayes posterior.

    Each task draws ``n_classes`` class means uniformly on a circle of radius ``radius``
    around a random centre (centre ~ N(0, center_scale² I)), a random rotation, shared
    isotropic noise ``sigma`` and equal priors. Because the covariances are shared, the true
    posterior p*(y|x) is a softmax of functions linear in x: logistic regression can represent it.

    Args:
        n_classes: classes per task (2..10).
        radius: distance of each mean from the task centre (> 0).
        sigma: within-class standard deviation (> 0).
        center_scale: spread of task centres (>= 0).
    """

    def __init__(self, n_classes: int = 2, *, radius: float = 1.5, sigma: float = 1.0,
                 center_scale: float = 1.0):
        self.n_classes = check_int(n_classes, "n_classes", 2, 10)
        radius = check_float(radius, "radius", 0.0, low_open=True)
        sigma = check_float(sigma, "sigma", 0.0, low_open=True)
        center_scale = check_float(center_scale, "center_scale", 0.0)
        self.radius, self.sigma, self.center_scale = float(radius), float(sigma), float(center_scale)

    def sample_task(self, rng: np.random.Generator | int | None = None) -> GaussianTask:
        """One task of the family."""
        rng = check_rng(rng)
        centre = self.center_scale * rng.standard_normal(2)
        angle0 = rng.uniform(0, 2 * np.pi)
        angles = angle0 + 2 * np.pi * np.arange(self.n_classes) / self.n_classes
        means = centre + self.radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        priors = np.full(self.n_classes, 1.0 / self.n_classes)
        return GaussianTask(means=means, sigma=self.sigma, priors=priors)

    def sample_tasks(self, n_tasks: int, rng: np.random.Generator | int | None = None) -> list[GaussianTask]:
        """``n_tasks`` independent tasks."""
        n_tasks = check_int(n_tasks, "n_tasks", 1)
        rng = check_rng(rng)
        return [self.sample_task(rng) for _ in range(n_tasks)]
