"""Environment helpers: TensorFlow logging variables, memory and version reports."""
from __future__ import annotations

import gc
import math
import os
import platform
import resource
import sys
import threading

from course_utils.validation import check_choice, check_float, check_str

__all__ = ["configure_tensorflow_env", "peak_memory_mb", "PeakMemory", "environment_report", "course_scale",
           "course_device", "usable_cpus", "course_threads", "THREADS_ENV", "THREAD_VARIABLES"]

#: Environment variable that sets how many threads PyTorch and TensorFlow use (a whole number >= 1).
THREADS_ENV = "COURSE_THREADS"
#: Every variable that sets a thread count the course's frameworks or BLAS read.
THREAD_VARIABLES = (THREADS_ENV, "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
#: Environment variable naming where the cgroup file system is mounted (default ``/sys/fs/cgroup``).
CGROUP_ENV = "COURSE_CGROUP_ROOT"


def _cgroup_cpu_limit(cgroup_root: str) -> float | None:
    """CPUs allowed by the cgroup's CPU quota (v2 ``cpu.max``, else v1 ``cpu.cfs_quota_us``), or None."""
    try:
        with open(os.path.join(cgroup_root, "cpu.max")) as f:
            quota, period = f.read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        with open(os.path.join(cgroup_root, "cpu", "cpu.cfs_quota_us")) as f:
            quota = int(f.read())
        with open(os.path.join(cgroup_root, "cpu", "cpu.cfs_period_us")) as f:
            period = int(f.read())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


def usable_cpus(*, cgroup_root: str | None = None) -> int:
    """CPUs this process may really use: its CPU affinity, capped by the cgroup's CPU quota.

    ``os.cpu_count()`` counts the machine's cores; on Binder (1 CPU of quota on a many-core node),
    in a container or under ``taskset`` the process may use far fewer, and a thread pool sized
    from the core count then oversubscribes them (each of its many threads waits on the others).

    Args:
        cgroup_root: where the cgroup file system is mounted; ``None``: ``$COURSE_CGROUP_ROOT``,
            else ``/sys/fs/cgroup`` (a test points it at files holding a simulated quota).

    Returns:
        A whole number >= 1: ``ceil(quota / period)`` if a quota is set, at most the affinity count.
    """
    if cgroup_root is None:
        cgroup_root = os.environ.get(CGROUP_ENV) or "/sys/fs/cgroup"
    check_str(cgroup_root, "cgroup_root")
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):   # macOS has no affinity call
        cpus = os.cpu_count() or 1
    limit = _cgroup_cpu_limit(cgroup_root)
    if limit is not None:
        cpus = min(cpus, max(1, math.ceil(limit)))
    return max(1, cpus)


def course_threads() -> int:
    """Threads for PyTorch's and TensorFlow's pools: ``$COURSE_THREADS`` if set, else :func:`usable_cpus`.

    ``import course_utils.torch`` calls ``torch.set_num_threads`` with it, and
    ``import course_utils.tensorflow`` sizes TensorFlow's intra- and inter-op pools with it
    (before TensorFlow starts; a value the user set in ``TF_NUM_INTRAOP_THREADS`` is kept).

    Raises:
        ValueError: ``COURSE_THREADS`` is not a whole number >= 1.
    """
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return usable_cpus()
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{THREADS_ENV} must be a whole number >= 1, got {value!r}")
    return int(value)


#: TensorFlow's ``TF_CPP_MIN_LOG_LEVEL`` values: all, no INFO, no WARNING, no ERROR.
LOG_LEVELS = ("0", "1", "2", "3")


def configure_tensorflow_env(log_level: str = "2") -> None:
    """Set TensorFlow's environment variables before TensorFlow is imported.

    ``TF_ENABLE_ONEDNN_OPTS=0`` makes CPU results reproducible (oneDNN reorders float sums),
    ``TF_CPP_MIN_LOG_LEVEL`` hides TensorFlow's C++ start-up chatter, and
    ``TF_NUM_INTRAOP_THREADS``/``TF_NUM_INTEROP_THREADS`` size its thread pools with
    :func:`course_threads`. Values already set by the user are kept. Calling this after TensorFlow
    was imported has no effect on TensorFlow.
    """
    check_choice(log_level, "log_level", LOG_LEVELS)
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", log_level)
    threads = str(course_threads())   # pools sized from the CPUs this process may use, not the machine's
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", threads)
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", threads)


def peak_memory_mb() -> float:
    """Peak resident memory of this process in MiB (``ru_maxrss``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def environment_report() -> dict:
    """Versions, threads and memory of the running kernel, as a dict of strings and numbers."""
    report = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpu_count": os.cpu_count(),
    }
    import numpy as np

    report["numpy"] = np.__version__
    try:
        import torch

        report["torch"] = torch.__version__
        report["torch_threads"] = torch.get_num_threads()
        report["torch_cuda"] = bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover - the course pins torch
        report["torch"] = None
    try:
        import tensorflow as tf

        report["tensorflow"] = tf.__version__
        report["tf_eager"] = bool(tf.executing_eagerly())
    except ImportError:  # pragma: no cover
        report["tensorflow"] = None
    try:
        import psutil

        vm = psutil.virtual_memory()
        report["memory_total_gb"] = round(vm.total / 2**30, 1)
        report["memory_available_gb"] = round(vm.available / 2**30, 1)
    except ImportError:  # pragma: no cover
        pass
    report["peak_memory_mb"] = round(peak_memory_mb(), 1)
    return report


SCALES = ("quick", "paper")


def course_scale() -> str:
    """The run scale from ``$COURSE_SCALE``: ``"quick"`` (default, minutes on a laptop CPU) or
    ``"paper"`` (the papers' full schedules; hours)."""
    scale = os.environ.get("COURSE_SCALE", "quick").strip().lower() or "quick"
    if scale not in SCALES:
        raise ValueError(f"COURSE_SCALE must be one of {SCALES}, got {scale!r}")
    return scale


DEVICES = ("auto", "cpu", "cuda")


def _cuda_visible() -> bool:
    """Whether PyTorch sees a CUDA GPU (imports torch only when asked)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - the course pins torch
        return False
    return bool(torch.cuda.is_available())


def course_device() -> str:
    """Where the course's PyTorch training runs: ``"cpu"`` or ``"cuda"``, from ``$COURSE_DEVICE``.

    ``auto`` (the default): ``"cuda"`` when ``COURSE_SCALE=paper`` and PyTorch sees a GPU,
    ``"cpu"`` otherwise, so the default course never needs a GPU and runs (and is tested) on the
    CPU. ``cpu`` forces the CPU; ``cuda`` asks for the GPU and raises a ``ValueError`` when there
    is none. The TensorFlow half follows the same setting in ``meta_train``, ``finetune_curve``
    and ``meta_test``: pinned to the CPU for ``"cpu"``, placing its operations itself (on the GPU
    it sees) for ``"cuda"``. Each chapter's setup prints it.
    """
    device = os.environ.get("COURSE_DEVICE", "auto").strip().lower() or "auto"
    if device not in DEVICES:
        raise ValueError(f"COURSE_DEVICE must be one of {DEVICES}, got {device!r}")
    if device == "auto":
        return "cuda" if course_scale() == "paper" and _cuda_visible() else "cpu"
    if device == "cuda" and not _cuda_visible():
        raise ValueError("COURSE_DEVICE=cuda, but PyTorch sees no CUDA GPU; use COURSE_DEVICE=auto or cpu")
    return device


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
        self.interval = check_float(interval, "interval", 0.0, low_open=True)
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
