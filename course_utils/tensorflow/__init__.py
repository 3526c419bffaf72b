"""TensorFlow half of the course's mirrored helpers (same names in :mod:`course_utils.torch`).

Submodules: ``core`` (parameters, MLP, losses, the MAML inner loop), ``autodiff`` (chapter 2),
``objectives`` (chapters 3 and 5), ``distill`` (chapter 4), ``meta`` and ``convnet`` (MAML, chapter 6), ``first_order``
(FOMAML, Reptile, ANIL, chapter 7). Each submodule's ``__all__`` is re-exported here.
"""
from course_utils.tensorflow.core import *  # noqa: F401,F403
from course_utils.tensorflow.core import __all__ as _core_all

__all__ = list(_core_all)
for _name in ("autodiff", "objectives", "distill", "meta", "convnet", "first_order"):
    try:
        _mod = __import__(f"course_utils.tensorflow.{_name}", fromlist=["__all__"])
    except ModuleNotFoundError as _e:  # submodule not written yet
        if _e.name != f"course_utils.tensorflow.{_name}":
            raise
        continue
    globals().update({k: getattr(_mod, k) for k in _mod.__all__})
    __all__ += list(_mod.__all__)
