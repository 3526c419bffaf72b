"""Chapter 11 in TensorFlow: the source article's ``MetaLearner`` and ``TaskLearner`` as Keras 3
models, run with supplied weights through ``Model.stateless_call``.

Mirrors :mod:`course_utils.torch.article` name for name; Keras' ``Dense`` kernels are (in, out), the
course's layout, so no transposes are needed.
"""
from __future__ import annotations

from course_utils.env import configure_tensorflow_env

configure_tensorflow_env()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from course_utils.article import BODY, HEAD  # noqa: E402
from course_utils.validation import check_article_params  # noqa: E402

__all__ = ["MetaLearner", "TaskLearner", "article_modules", "article_forward"]


class MetaLearner(keras.Model):
    """The shared body: 10 → 10 → 10 with ReLUs."""

    def __init__(self):
        super().__init__()
        self.dense1 = keras.layers.Dense(10, activation="relu")
        self.dense2 = keras.layers.Dense(10, activation="relu")

    def call(self, x):
        return self.dense2(self.dense1(x))


class TaskLearner(keras.Model):
    """The per-task head: 10 → 10 (ReLU) → 1."""

    def __init__(self):
        super().__init__()
        self.dense1 = keras.layers.Dense(10, activation="relu")
        self.dense2 = keras.layers.Dense(1)

    def call(self, h):
        return self.dense2(self.dense1(h))


def _built(model):
    model(np.zeros((1, 10), np.float32))  # creates the variables: kernel, bias of each Dense, in order
    return model


_META, _TASK = _built(MetaLearner()), _built(TaskLearner())


def article_modules(params: dict[str, np.ndarray]) -> tuple[MetaLearner, TaskLearner]:
    """A ``MetaLearner`` and a ``TaskLearner`` holding ``params`` (ordinary Keras models)."""
    check_article_params(params)
    meta, task = _built(MetaLearner()), _built(TaskLearner())
    for model, keys in ((meta, BODY), (task, HEAD)):
        for var, k in zip(model.trainable_variables, keys):
            var.assign(np.asarray(params[k], np.float32))
    return meta, task


def article_forward(params: dict, x) -> tf.Tensor:
    """TaskLearner(MetaLearner(x)) with the weights in ``params``: x (..., 10) → (..., 1)."""
    check_article_params(params, x)
    h, _ = _META.stateless_call([params[k] for k in BODY], [], x)
    y, _ = _TASK.stateless_call([params[k] for k in HEAD], [], h)
    return y
