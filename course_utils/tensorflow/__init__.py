"""TensorFlow half of the course's mirrored helpers (same names in :mod:`course_utils.torch`).

Submodules: ``core`` (parameters, MLP, losses, the MAML inner loop), ``autodiff`` (chapter 2),
``objectives`` (chapters 3 and 5), ``distill`` (chapter 4), ``meta`` and ``convnet`` (MAML,
chapter 6), ``first_order`` (FOMAML, Reptile, ANIL, chapter 7), ``training`` (the one
``meta_train`` for every method), ``metric`` (ProtoNets, Matching Nets, ProtoMAML, chapter 8),
``learned`` (Meta-SGD, the meta-learner LSTM, chapter 10), ``article`` (the source article's two
models, chapter 11), ``implicit`` (iMAML, chapter 5), ``blackbox`` (the conditional neural process, chapter 9).
Each submodule's ``__all__`` is re-exported here; a test checks that both halves export the same
names with the same signatures.
"""
from course_utils.env import configure_tensorflow_env

configure_tensorflow_env()  # before TensorFlow is imported

from course_utils.tensorflow.core import *  # noqa: E402,F401,F403
from course_utils.tensorflow.autodiff import *  # noqa: E402,F401,F403
from course_utils.tensorflow.objectives import *  # noqa: E402,F401,F403
from course_utils.tensorflow.distill import *  # noqa: E402,F401,F403
from course_utils.tensorflow.meta import *  # noqa: E402,F401,F403
from course_utils.tensorflow.convnet import *  # noqa: E402,F401,F403
from course_utils.tensorflow.first_order import *  # noqa: E402,F401,F403
from course_utils.tensorflow.training import *  # noqa: E402,F401,F403
from course_utils.tensorflow.metric import *  # noqa: E402,F401,F403
from course_utils.tensorflow.learned import *  # noqa: E402,F401,F403
from course_utils.tensorflow.article import *  # noqa: E402,F401,F403
from course_utils.tensorflow.implicit import *  # noqa: E402,F401,F403
from course_utils.tensorflow.blackbox import *  # noqa: E402,F401,F403

from course_utils.tensorflow import core as _core  # noqa: E402
from course_utils.tensorflow import autodiff as _autodiff  # noqa: E402
from course_utils.tensorflow import objectives as _objectives  # noqa: E402
from course_utils.tensorflow import distill as _distill  # noqa: E402
from course_utils.tensorflow import meta as _meta  # noqa: E402
from course_utils.tensorflow import convnet as _convnet  # noqa: E402
from course_utils.tensorflow import first_order as _first_order  # noqa: E402
from course_utils.tensorflow import training as _training  # noqa: E402
from course_utils.tensorflow import metric as _metric  # noqa: E402
from course_utils.tensorflow import learned as _learned  # noqa: E402
from course_utils.tensorflow import article as _article  # noqa: E402
from course_utils.tensorflow import implicit as _implicit  # noqa: E402
from course_utils.tensorflow import blackbox as _blackbox  # noqa: E402

_MODULES = (_core, _autodiff, _objectives, _distill, _meta, _convnet, _first_order, _training, _metric, _learned,
            _article, _implicit, _blackbox)
__all__ = [n for _m in _MODULES for n in _m.__all__]
