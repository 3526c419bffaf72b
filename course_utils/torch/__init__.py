"""PyTorch half of the course's mirrored helpers (same names in :mod:`course_utils.tensorflow`).

Submodules: ``core`` (parameters, MLP, losses, the MAML inner loop), ``autodiff`` (chapter 2),
``objectives`` (chapters 3 and 5), ``distill`` (chapter 4), ``meta`` and ``convnet`` (MAML,
chapter 6), ``first_order`` (FOMAML, Reptile, ANIL, chapter 7), ``training`` (the one
``meta_train`` for every method), ``metric`` (ProtoNets, Matching Nets, ProtoMAML, chapter 8),
``learned`` (Meta-SGD, the meta-learner LSTM, chapter 10), ``article`` (the source article's two
models, chapter 11), ``implicit`` (iMAML, chapter 5), ``blackbox`` (the conditional neural process, chapter 9).
Each submodule's ``__all__`` is re-exported here; a test checks that both halves export the same
names with the same signatures.
"""
from course_utils.torch.core import *  # noqa: F401,F403
from course_utils.torch.autodiff import *  # noqa: F401,F403
from course_utils.torch.objectives import *  # noqa: F401,F403
from course_utils.torch.distill import *  # noqa: F401,F403
from course_utils.torch.meta import *  # noqa: F401,F403
from course_utils.torch.convnet import *  # noqa: F401,F403
from course_utils.torch.first_order import *  # noqa: F401,F403
from course_utils.torch.training import *  # noqa: F401,F403
from course_utils.torch.metric import *  # noqa: F401,F403
from course_utils.torch.learned import *  # noqa: F401,F403
from course_utils.torch.article import *  # noqa: F401,F403
from course_utils.torch.implicit import *  # noqa: F401,F403
from course_utils.torch.blackbox import *  # noqa: F401,F403



def _size_thread_pool() -> None:
    """PyTorch's pool from the CPUs this process may use (``course_utils.env.course_threads``), not from
    the machine's cores; a user's ``OMP_NUM_THREADS`` is kept unless ``COURSE_THREADS`` is also set."""
    import os

    import torch

    from course_utils.env import THREADS_ENV, course_threads

    if os.environ.get(THREADS_ENV) or not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(course_threads())


_size_thread_pool()

from course_utils.torch import core as _core  # noqa: E402
from course_utils.torch import autodiff as _autodiff  # noqa: E402
from course_utils.torch import objectives as _objectives  # noqa: E402
from course_utils.torch import distill as _distill  # noqa: E402
from course_utils.torch import meta as _meta  # noqa: E402
from course_utils.torch import convnet as _convnet  # noqa: E402
from course_utils.torch import first_order as _first_order  # noqa: E402
from course_utils.torch import training as _training  # noqa: E402
from course_utils.torch import metric as _metric  # noqa: E402
from course_utils.torch import learned as _learned  # noqa: E402
from course_utils.torch import article as _article  # noqa: E402
from course_utils.torch import implicit as _implicit  # noqa: E402
from course_utils.torch import blackbox as _blackbox  # noqa: E402

_MODULES = (_core, _autodiff, _objectives, _distill, _meta, _convnet, _first_order, _training, _metric, _learned,
            _article, _implicit, _blackbox)
__all__ = [n for _m in _MODULES for n in _m.__all__]
