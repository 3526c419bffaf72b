"""set_seed seeds every generator; environment helpers report sensible values."""
from __future__ import annotations

import os
import random
import subprocess
import sys

import numpy as np
import pytest

from course_utils import course_scale, environment_report, peak_memory_mb, set_seed
from course_utils.seed import check_rng


def _draw():
    import tensorflow as tf
    import torch

    return (random.random(), float(np.random.rand()), float(torch.rand(1)),
            float(tf.random.uniform([])), float(tf.keras.initializers.GlorotUniform()((1, 1))[0, 0]))


def test_set_seed_makes_every_framework_repeat():
    rng_a = set_seed(123)
    a = _draw() + (rng_a.random(),)
    rng_b = set_seed(123)
    b = _draw() + (rng_b.random(),)
    assert a == b
    set_seed(124)
    c = _draw()
    assert all(x != y for x, y in zip(a[:4], c[:4]))


def test_two_processes_print_the_same_numbers():
    code = ("from course_utils import set_seed; import torch, numpy as np, tensorflow as tf; "
            "set_seed(5); print(float(torch.randn(1)), float(np.random.randn()), float(tf.random.normal([])))")
    outs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            for _ in range(2)]
    assert outs[0] == outs[1] and outs[0].strip()


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, "0", True])
def test_set_seed_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="seed"):
        set_seed(bad)


def test_set_seed_rejects_unknown_framework():
    with pytest.raises(ValueError, match="frameworks"):
        set_seed(0, frameworks=("jax",))


def test_check_rng():
    g = np.random.default_rng(0)
    assert check_rng(g) is g
    assert check_rng(3).random() == np.random.default_rng(3).random()
    with pytest.raises(ValueError, match="my_rng"):
        check_rng(-3, "my_rng")


def test_environment_report_and_memory():
    rep = environment_report()
    assert rep["torch"].startswith("2.13") and rep["tensorflow"].startswith("2.21")
    assert rep["tf_eager"] is True  # TensorFlow 2 runs eagerly by default
    assert 50 < peak_memory_mb() < 24 * 1024


def test_course_scale(monkeypatch):
    monkeypatch.delenv("COURSE_SCALE", raising=False)
    assert course_scale() == "quick"
    monkeypatch.setenv("COURSE_SCALE", "Paper")
    assert course_scale() == "paper"
    monkeypatch.setenv("COURSE_SCALE", "huge")
    with pytest.raises(ValueError, match="COURSE_SCALE"):
        course_scale()


def test_usable_cpus_follow_the_cgroup_quota_and_affinity(tmp_path, monkeypatch):
    """Thread pools are sized from the CPUs the process may use: its affinity, capped by a CPU quota."""
    from course_utils.env import THREADS_ENV, course_threads, usable_cpus

    monkeypatch.delenv("COURSE_CGROUP_ROOT", raising=False)
    affinity = len(os.sched_getaffinity(0))
    v2 = tmp_path / "v2"
    v2.mkdir()
    for text, expected in (("max 100000", affinity), ("100000 100000", 1), ("50000 100000", 1),
                           ("150000 100000", min(affinity, 2))):
        (v2 / "cpu.max").write_text(text + "\n")
        assert usable_cpus(cgroup_root=str(v2)) == expected, text
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    for quota, expected in (("-1", affinity), ("100000", 1), ("250000", min(affinity, 3))):
        (v1 / "cpu" / "cpu.cfs_quota_us").write_text(quota + "\n")
        assert usable_cpus(cgroup_root=str(v1)) == expected, quota
    assert usable_cpus(cgroup_root=str(tmp_path / "none")) == affinity          # no cgroup files: the affinity
    monkeypatch.setenv("COURSE_CGROUP_ROOT", str(v2))
    (v2 / "cpu.max").write_text("100000 100000\n")
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert usable_cpus() == 1 and course_threads() == 1
    monkeypatch.setenv(THREADS_ENV, "3")
    assert course_threads() == 3                                                  # the user's setting wins
    from course_utils.env import THREAD_VARIABLES
    assert all(os.environ.get(v) for v in THREAD_VARIABLES if v != THREADS_ENV)   # the root conftest sets each
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(THREADS_ENV, bad)
        with pytest.raises(ValueError, match="COURSE_THREADS"):
            course_threads()
