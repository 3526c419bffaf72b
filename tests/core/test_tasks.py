"""Unit and property tests of the task generators (sinusoids, episodes, Gaussian tasks)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_utils.tasks import (EpisodeSampler, GaussianTaskFamily, sample_episode,
                                sample_sinusoid_tasks)

# ----------------------------------------------------------------- sinusoids


@settings(max_examples=40, deadline=None)
@given(n_tasks=st.integers(1, 30), k_shot=st.integers(1, 20), k_query=st.integers(1, 20),
       seed=st.integers(0, 2**32 - 1))
def test_sinusoid_shapes_ranges_and_truth(n_tasks, k_shot, k_query, seed):
    b = sample_sinusoid_tasks(n_tasks, k_shot, k_query, rng=seed)
    assert b.x_support.shape == b.y_support.shape == (n_tasks, k_shot, 1)
    assert b.x_query.shape == b.y_query.shape == (n_tasks, k_query, 1)
    assert all(a.dtype == np.float32 for a in b)
    assert np.all((b.amplitude >= 0.1) & (b.amplitude <= 5.0))
    assert np.all((b.phase >= 0) & (b.phase <= np.pi + 1e-6))
    assert np.all(np.abs(b.x_support) <= 5.0) and np.all(np.abs(b.x_query) <= 5.0)
    expected = b.amplitude[:, None, None] * np.sin(b.x_support - b.phase[:, None, None])
    np.testing.assert_allclose(b.y_support, expected, atol=1e-5)
    np.testing.assert_allclose(b.true_function(b.x_query[:, :, 0].ravel()).shape, (n_tasks, n_tasks * k_query))


def test_sinusoid_distribution_matches_finn_et_al():
    b = sample_sinusoid_tasks(20000, 1, rng=0)
    assert abs(b.amplitude.mean() - 2.55) < 0.05  # U[0.1, 5]
    assert abs(b.phase.mean() - np.pi / 2) < 0.05  # U[0, π]
    assert abs(b.x_support.mean()) < 0.1 and abs(b.x_support.std() - 10 / np.sqrt(12)) < 0.05


def test_sinusoid_determinism_and_generator_state():
    a, b = sample_sinusoid_tasks(5, 3, rng=7), sample_sinusoid_tasks(5, 3, rng=7)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    rng = np.random.default_rng(7)
    first, second = sample_sinusoid_tasks(5, 3, rng=rng), sample_sinusoid_tasks(5, 3, rng=rng)
    assert not np.array_equal(first.x_support, second.x_support)


@pytest.mark.parametrize("kwargs, name", [
    (dict(n_tasks=0), "n_tasks"), (dict(n_tasks=2.5), "n_tasks"), (dict(k_shot=0), "k_shot"),
    (dict(k_query=0), "k_query"), (dict(amplitude_range=(5, 0.1)), "amplitude_range"),
    (dict(phase_range=(0, np.inf)), "phase_range"), (dict(x_range="wide"), "x_range"),
    (dict(rng="seed"), "rng"), (dict(rng=-1), "rng"), (dict(n_tasks=True), "n_tasks"),
])
def test_sinusoid_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name):
        sample_sinusoid_tasks(**kwargs)


# ----------------------------------------------------------------- episodes

def _grouped(n_classes=12, per_class=20, size=6):
    # Each image encodes (class, example) so tests can recover where it came from.
    img = np.zeros((n_classes, per_class, size, size), dtype=np.int32)
    for c in range(n_classes):
        for e in range(per_class):
            img[c, e, 0, 0] = c
            img[c, e, 0, 1] = e
    return img


@settings(max_examples=40, deadline=None)
@given(n_way=st.integers(1, 12), k_shot=st.integers(1, 8), n_query=st.integers(1, 8),
       seed=st.integers(0, 10_000))
def test_episode_properties_grouped(n_way, k_shot, n_query, seed):
    images = _grouped()
    ep = EpisodeSampler(images, n_way=n_way, k_shot=k_shot, n_query=n_query).sample(seed)
    assert ep.x_support.shape == (n_way * k_shot, 6, 6)
    assert ep.x_query.shape == (n_way * n_query, 6, 6)
    np.testing.assert_array_equal(ep.y_support, np.repeat(np.arange(n_way), k_shot))
    np.testing.assert_array_equal(ep.y_query, np.repeat(np.arange(n_way), n_query))
    assert len(set(ep.classes.tolist())) == n_way  # classes without replacement
    for label, cls in enumerate(ep.classes):  # labels remap consistently to the original class
        assert np.all(ep.x_support[ep.y_support == label][:, 0, 0] == cls)
        assert np.all(ep.x_query[ep.y_query == label][:, 0, 0] == cls)
    support_ids = {(int(a), int(b)) for a, b in ep.x_support[:, 0, :2]}
    query_ids = {(int(a), int(b)) for a, b in ep.x_query[:, 0, :2]}
    assert len(support_ids) == n_way * k_shot and len(query_ids) == n_way * n_query
    assert support_ids.isdisjoint(query_ids)  # support and query are different images


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n_way=st.integers(2, 7))
def test_episode_flat_labels_equal_grouped(seed, n_way):
    grouped = _grouped(n_classes=9, per_class=7)
    flat = grouped.reshape(-1, 6, 6)
    labels = np.repeat(np.arange(100, 109), 7)  # arbitrary class ids
    rng_perm = np.random.default_rng(seed)
    perm = rng_perm.permutation(len(labels))  # shuffled input order
    ep = EpisodeSampler(flat[perm], labels[perm], n_way=n_way, k_shot=2, n_query=3).sample(seed)
    assert set(ep.classes.tolist()) <= set(range(100, 109))
    for label, cls in enumerate(ep.classes):
        assert np.all(ep.x_support[ep.y_support == label][:, 0, 0] == cls - 100)
        assert np.all(ep.x_query[ep.y_query == label][:, 0, 0] == cls - 100)


def test_rotations_are_new_classes():
    images = np.zeros((3, 20, 5, 5), dtype=np.uint8)
    images[:, :, 0, 0] = 255  # a mark in the top-left corner shows the rotation
    sampler = EpisodeSampler(images, n_way=12, k_shot=1, n_query=1, rotations=True)
    assert sampler.n_classes == 12
    ep = sampler.sample(0)
    pairs = set(zip(ep.classes.tolist(), ep.rotations.tolist()))
    assert len(pairs) == 12  # every (class, rotation) drawn exactly once
    corner = {0: (0, 0), 1: (4, 0), 2: (4, 4), 3: (0, 4)}  # np.rot90 counter-clockwise
    for label, r in enumerate(ep.rotations):
        img = ep.x_support[ep.y_support == label][0]
        assert img[corner[int(r)]] == 255 and img.sum() == 255


def test_episode_batch_and_determinism():
    images = _grouped()
    sampler = EpisodeSampler(images, n_way=5, k_shot=1, n_query=2)
    batch = sampler.sample_batch(4, rng=3)
    assert batch.x_support.shape == (4, 5, 6, 6) and batch.y_query.shape == (4, 10)
    again = sampler.sample_batch(4, rng=3)
    np.testing.assert_array_equal(batch.x_query, again.x_query)
    ep = sample_episode(images, n_way=5, k_shot=1, n_query=2, rng=3)
    assert ep.x_support.shape == (5, 6, 6)


def test_episode_keeps_uint8():
    images = np.zeros((6, 20, 4, 4), dtype=np.uint8)
    ep = sample_episode(images, n_way=3, k_shot=2, n_query=2, rng=0)
    assert ep.x_support.dtype == np.uint8


@pytest.mark.parametrize("kwargs, name", [
    (dict(n_way=0), "n_way"), (dict(n_way=13), "n_way"), (dict(k_shot=0), "k_shot"),
    (dict(n_query=0), "n_query"), (dict(k_shot=15, n_query=10), "k_shot \\+ n_query"),
    (dict(n_way=2.0), "n_way"),
])
def test_episode_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name):
        EpisodeSampler(_grouped(), **kwargs)


def test_episode_bad_labels_and_images():
    with pytest.raises(ValueError, match="labels"):
        EpisodeSampler(np.zeros((10, 4, 4)), np.zeros(9, dtype=int))
    with pytest.raises(ValueError, match="labels"):
        EpisodeSampler(np.zeros((10, 4, 4)), np.zeros(10, dtype=float))
    with pytest.raises(ValueError, match="images"):
        EpisodeSampler(np.zeros((10, 4)))
    with pytest.raises(ValueError, match="n_episodes"):
        EpisodeSampler(_grouped(), n_way=2, k_shot=1, n_query=1).sample_batch(0)


# ----------------------------------------------------------------- Gaussian tasks

@settings(max_examples=25, deadline=None)
@given(n_classes=st.integers(2, 6), seed=st.integers(0, 10_000))
def test_gaussian_posterior_is_exact_bayes(n_classes, seed):
    fam = GaussianTaskFamily(n_classes, radius=1.2, sigma=0.8)
    task = fam.sample_task(seed)
    x = np.random.default_rng(seed).normal(size=(50, 2)) * 3
    post = task.posterior(x)
    assert post.shape == (50, n_classes)
    np.testing.assert_allclose(post.sum(1), 1.0, atol=1e-12)
    # Bayes' rule written out independently with explicit Gaussian densities.
    dens = np.stack([np.exp(-((x - m) ** 2).sum(1) / (2 * 0.8**2)) / (2 * np.pi * 0.8**2)
                     for m in task.means], axis=1) * task.priors
    np.testing.assert_allclose(post, dens / dens.sum(1, keepdims=True), rtol=1e-6, atol=1e-12)


def test_gaussian_bayes_classifier_is_best_possible():
    task = GaussianTaskFamily(2, radius=1.0, sigma=1.0).sample_task(0)
    x, y = task.sample(20000, rng=1)
    bayes = (task.bayes_predict(x) == y).mean()
    # For two classes 2r apart with noise σ, the Bayes accuracy is Φ(r/σ) = Φ(1) ≈ 0.841.
    assert abs(bayes - 0.8413) < 0.01
    # Any other linear rule does worse: shift the Bayes boundary along the line of the means.
    d = task.means[1] - task.means[0]
    mid = task.means.mean(0)
    shifted = (((x - mid - 0.5 * d / np.linalg.norm(d)) @ d) > 0).astype(int)
    assert (shifted == y).mean() < bayes - 0.01
    xs, ys = task.sample_per_class(3, rng=0)
    assert xs.shape == (6, 2) and np.bincount(ys).tolist() == [3, 3]


@pytest.mark.parametrize("kwargs, name", [
    (dict(n_classes=1), "n_classes"), (dict(n_classes=11), "n_classes"), (dict(radius=0), "radius"),
    (dict(sigma=-1), "sigma"), (dict(center_scale=np.nan), "center_scale"),
])
def test_gaussian_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        GaussianTaskFamily(**kwargs)
