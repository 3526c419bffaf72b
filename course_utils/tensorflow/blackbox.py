"""Black-box meta-learners in TensorFlow (chapter 9): the conditional neural process.

Mirrors :mod:`course_utils.torch.blackbox` name for name and signature for signature; see there
and :mod:`course_utils.blackbox` for the maths and the parameter layouts. The registered
``meta_train`` step (``"cnp"``) runs inside the training loop's compiled graph.
"""
from __future__ import annotations

import math

from course_utils.env import configure_tensorflow_env

configure_tensorflow_env()

import tensorflow as tf  # noqa: E402

from course_utils.blackbox import CNP_SIGMA_FLOOR, _check_cnp_tasks, check_cnp_call  # noqa: E402
from course_utils.tensorflow.core import mlp_forward  # noqa: E402
from course_utils.tensorflow.training import register_meta_method  # noqa: E402

__all__ = ["cnp_forward", "cnp_loss"]


def cnp_forward(params: dict, x_context: tf.Tensor, y_context: tf.Tensor,
                x_target: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The CNP's predictive Gaussian (μ, σ) at ``x_target``; see :func:`course_utils.torch.cnp_forward`."""
    enc, dec = check_cnp_call(params, x_context, y_context, x_target)
    r = tf.reduce_mean(mlp_forward(enc, tf.concat([x_context, y_context], -1)), axis=-2, keepdims=True)
    r = tf.broadcast_to(r, tf.concat([tf.shape(x_target)[:-1], tf.shape(r)[-1:]], 0))
    mu, raw = tf.split(mlp_forward(dec, tf.concat([r, x_target], -1)), 2, axis=-1)
    return mu, CNP_SIGMA_FLOOR + (1.0 - CNP_SIGMA_FLOOR) * tf.nn.softplus(raw)


def cnp_loss(params: dict, x_support: tf.Tensor, y_support: tf.Tensor, x_query: tf.Tensor,
             y_query: tf.Tensor) -> tf.Tensor:
    """Mean Gaussian negative log-likelihood of the support and query targets (:func:`course_utils.torch.cnp_loss`)."""
    _check_cnp_tasks(params, x_support, y_support, x_query, y_query)
    x_t, y_t = tf.concat([x_support, x_query], -2), tf.concat([y_support, y_query], -2)
    mu, sigma = cnp_forward(params, x_support, y_support, x_t)
    return tf.reduce_mean(0.5 * math.log(2 * math.pi) + tf.math.log(sigma) + 0.5 * tf.square((y_t - mu) / sigma))


def _cnp_step(*, inner_lr, steps, first_order, forward, loss_fn):
    @tf.function(reduce_retracing=True)
    def step(params, x_support, y_support, x_query, y_query):
        names = list(params)
        with tf.GradientTape() as tape:
            tape.watch([params[k] for k in names])
            loss = cnp_loss(params, x_support, y_support, x_query, y_query)
        return loss, dict(zip(names, tape.gradient(loss, [params[k] for k in names])))
    return step


register_meta_method("cnp", _cnp_step, doc="conditional neural process (black box: no inner loop; "
                                           "inner_lr, steps, forward and loss_fn are ignored)")
