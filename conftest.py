"""Root pytest configuration, shared by tests/ and the nbval run over notebooks/.

A checkout that sits beside the course's offline data folder (``../shared/data/omniglot``, as on
the course's CI machines) uses it unless ``COURSE_DATA_DIR`` is already set. Notebook kernels
started by nbval inherit this environment.

One thread per framework: ``make test`` runs two pytest workers (pytest-xdist) on the 2-core
machine, each driving a kernel or running unit tests, so each process keeps PyTorch, TensorFlow
and BLAS to one thread (set here before any of them is imported; a variable already set wins).
The second pass of ``make test`` and a plain ``pytest`` get the same setting, so a notebook prints
the same numbers in every run.

The notebook machinery (hidden-solution checks inside nbval's run, executed copies, ordering,
the execution count) is the plugin :mod:`tests.harness.plugin`.
"""
import os
from pathlib import Path

_offline = Path(__file__).resolve().parent.parent / "shared" / "data" / "omniglot"
if "COURSE_DATA_DIR" not in os.environ and (_offline / "omniglot28.npz").is_file():
    os.environ["COURSE_DATA_DIR"] = str(_offline)
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The variables of course_utils.env.THREAD_VARIABLES (not imported here: nothing of the course may load yet).
for _var in ("COURSE_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
             "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
    os.environ.setdefault(_var, "1")

pytest_plugins = ["tests.harness.plugin"]
