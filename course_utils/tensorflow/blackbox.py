"""Black-box meta-learners in TensorFlow (chapter 9): the conditional neural process and the MANN.

Mirrors :mod:`course_utils.torch.blackbox` name for name and signature for signature; see there
and :mod:`course_utils.blackbox` for the maths and the parameter layouts. The registered
``meta_train`` steps (``"cnp"``, ``"mann"``) run inside the training loop's compiled graph (the
MANN's loop over time steps is unrolled there).
"""
from __future__ import annotations

import math

from course_utils.env import configure_tensorflow_env

configure_tensorflow_env()

import tensorflow as tf  # noqa: E402

from course_utils.blackbox import (_EPS, CNP_SIGMA_FLOOR, MEMORY_INIT, _check_cnp_tasks,  # noqa: E402
                                   _check_sequences, check_cnp_call, mann_sizes)
from course_utils.validation import check_bool, check_float, check_int  # noqa: E402
from course_utils.tensorflow.core import mlp_forward  # noqa: E402
from course_utils.tensorflow.training import register_meta_method  # noqa: E402

__all__ = ["cnp_forward", "cnp_loss", "mann_forward", "mann_loss"]


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


def mann_forward(params: dict, x: tf.Tensor, y: tf.Tensor, *, memory_size: int = 128, gamma: float = 0.95,
                 return_trace: bool = False):
    """The MANN over whole sequences; see :func:`course_utils.torch.mann_forward`."""
    sz = mann_sizes(params)
    _check_sequences(sz, x, y, params)
    n_rows = check_int(memory_size, "memory_size", max(sz["n_reads"], 1))
    gamma = check_float(gamma, "gamma", 0.0, 1.0)
    return_trace = check_bool(return_trace, "return_trace")
    b, t_len = int(y.shape[0]), int(y.shape[1])
    h_dim, c, r, w = sz["hidden"], sz["n_classes"], sz["n_reads"], sz["memory_width"]
    d = int(x.shape[-1])
    onehot = tf.one_hot(y, c, dtype=x.dtype)
    y_prev = tf.concat([tf.zeros_like(onehot[:, :1]), onehot[:, :-1]], 1)
    z_in = tf.matmul(tf.concat([x, y_prev], -1), params["lstm_w"][: d + c]) + params["lstm_b"]
    w_rec = params["lstm_w"][d + c:]
    h = cell = tf.zeros((b, h_dim), x.dtype)
    mem, reads = tf.fill((b, n_rows, w), tf.cast(MEMORY_INIT, x.dtype)), tf.zeros((b, r * w), x.dtype)
    w_read, usage = tf.zeros((b, r, n_rows), x.dtype), tf.zeros((b, n_rows), x.dtype)
    w_lu = _least_used(usage, r) if r else None
    outs, trace = [], {"read_weights": [], "write_weights": [], "usage": []}
    for t in range(t_len):
        gates = z_in[:, t] + tf.matmul(tf.concat([reads, h], -1), w_rec)
        i, f, g, o = tf.split(gates, 4, axis=-1)
        cell = tf.sigmoid(f) * cell + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(cell)
        if r:
            keys = tf.reshape(tf.tanh(tf.matmul(h, params["key_w"]) + params["key_b"]), (b, r, w))
            alpha = tf.sigmoid(tf.matmul(h, params["gate_w"]) + params["gate_b"])[..., None]
            w_write = alpha * w_read + (1 - alpha) * w_lu[:, None, :]
            mem = mem * (1 - w_lu)[..., None] + tf.matmul(w_write, keys, transpose_a=True)
            k_n = keys / (tf.norm(keys, axis=-1, keepdims=True) + _EPS)
            m_n = mem / (tf.norm(mem, axis=-1, keepdims=True) + _EPS)
            w_read = tf.nn.softmax(tf.matmul(k_n, m_n, transpose_b=True), -1)
            reads = tf.reshape(tf.matmul(w_read, mem), (b, r * w))
            usage = gamma * usage + tf.stop_gradient(tf.reduce_sum(w_read, 1) + tf.reduce_sum(w_write, 1))
            w_lu = _least_used(usage, r)
            if return_trace:
                for k, v in (("read_weights", w_read), ("write_weights", w_write), ("usage", usage)):
                    trace[k].append(tf.stop_gradient(v))
        outs.append(tf.concat([h, reads], -1))
    logits = tf.matmul(tf.stack(outs, 1), params["out_w"]) + params["out_b"]
    if not return_trace:
        return logits
    return logits, {k: (tf.stack(v, 1) if v else None) for k, v in trace.items()}


def _least_used(usage: tf.Tensor, n: int) -> tf.Tensor:
    idx = tf.argsort(usage, axis=-1, stable=True)[..., :n]
    return tf.reduce_sum(tf.one_hot(idx, int(usage.shape[-1]), dtype=usage.dtype), axis=-2)


def mann_loss(params: dict, x: tf.Tensor, y: tf.Tensor, *, memory_size: int = 128,
              gamma: float = 0.95) -> tf.Tensor:
    """Mean cross-entropy over every step of every sequence; see :func:`course_utils.torch.mann_loss`."""
    logits = mann_forward(params, x, y, memory_size=memory_size, gamma=gamma)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))


def _mann_step(*, inner_lr, steps, first_order, forward, loss_fn, memory_size=128, gamma=0.95):
    @tf.function(reduce_retracing=True)
    def step(params, x_support, y_support, x_query, y_query):
        names = list(params)
        with tf.GradientTape() as tape:
            tape.watch([params[k] for k in names])
            loss = mann_loss(params, x_support, y_support, memory_size=memory_size, gamma=gamma)
        return loss, dict(zip(names, tape.gradient(loss, [params[k] for k in names])))
    return step


register_meta_method("mann", _mann_step, doc="memory-augmented network over (x, y, x, y) sequence batches "
                                             "(no read heads: the LSTM baseline); options memory_size, gamma")
register_meta_method("cnp", _cnp_step, doc="conditional neural process (black box: no inner loop; "
                                           "inner_lr, steps, forward and loss_fn are ignored)")
