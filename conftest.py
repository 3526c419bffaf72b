"""Root pytest configuration, shared by tests/ and the nbval run over notebooks/.

A checkout that sits beside the course's offline data folder (``../shared/data/omniglot``, as on
the course's CI machines) uses it unless ``COURSE_DATA_DIR`` is already set. Notebook kernels
started by nbval inherit this environment.
"""
import os
from pathlib import Path

_offline = Path(__file__).resolve().parent.parent / "shared" / "data" / "omniglot"
if "COURSE_DATA_DIR" not in os.environ and (_offline / "omniglot28.npz").is_file():
    os.environ["COURSE_DATA_DIR"] = str(_offline)
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
