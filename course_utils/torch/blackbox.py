"""Black-box meta-learners in PyTorch (chapter 9): the conditional neural process and the MANN.

Mirrors :mod:`course_utils.tensorflow.blackbox` name for name; parameter layouts and NumPy
references are in :mod:`course_utils.blackbox`. The CNP registers with ``meta_train`` as
``"cnp"``: its meta-step is the gradient of the Gaussian negative log-likelihood of each task's
targets (support and query points, as in Garnelo et al.) given its support set, averaged over the
batch. No inner loop: ``inner_lr`` and ``steps`` are ignored.

The MANN (and, with no read heads, the LSTM baseline) registers as ``"mann"``: a batch is
``(x, y, x, y)`` of Omniglot sequences (:class:`course_utils.blackbox.SequenceSampler`); the
sequence is its own support and query set (each step is predicted, then its label is shown), and
the loss is the cross-entropy over every step.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from course_utils.blackbox import (_EPS, CNP_SIGMA_FLOOR, MEMORY_INIT, _check_cnp_tasks, _check_sequences,
                                   check_cnp_call, mann_sizes)
from course_utils.validation import check_bool, check_float, check_int
from course_utils.torch.core import mlp_forward
from course_utils.torch.training import register_meta_method

__all__ = ["cnp_forward", "cnp_loss", "mann_forward", "mann_loss"]

Params = dict[str, torch.Tensor]


def cnp_forward(params: Params, x_context: torch.Tensor, y_context: torch.Tensor,
                x_target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The CNP's predictive Gaussian at ``x_target`` given the context pairs.

    Args:
        params: CNP weights (:func:`course_utils.blackbox.init_cnp`), tensors.
        x_context (..., n_c, x_dim), y_context (..., n_c, y_dim): each task's support set.
        x_target (..., n_t, x_dim): inputs to predict at (same leading task axes).

    Returns:
        μ and σ, each (..., n_t, y_dim); σ >= ``CNP_SIGMA_FLOOR``.
    """
    enc, dec = check_cnp_call(params, x_context, y_context, x_target)
    r = mlp_forward(enc, torch.cat([x_context, y_context], -1)).mean(-2, keepdim=True)   # (..., 1, r_dim)
    r = r.expand(*x_target.shape[:-1], r.shape[-1])
    mu, raw = mlp_forward(dec, torch.cat([r, x_target], -1)).chunk(2, dim=-1)
    return mu, CNP_SIGMA_FLOOR + (1.0 - CNP_SIGMA_FLOOR) * F.softplus(raw)


def cnp_loss(params: Params, x_support: torch.Tensor, y_support: torch.Tensor, x_query: torch.Tensor,
             y_query: torch.Tensor) -> torch.Tensor:
    """Mean Gaussian negative log-likelihood of every task's support and query targets given its support set.

    Shapes: (tasks, K, x_dim), (tasks, K, y_dim), (tasks, Q, x_dim), (tasks, Q, y_dim); returns a scalar.
    """
    _check_cnp_tasks(params, x_support, y_support, x_query, y_query)
    x_t, y_t = torch.cat([x_support, x_query], -2), torch.cat([y_support, y_query], -2)
    mu, sigma = cnp_forward(params, x_support, y_support, x_t)
    return (0.5 * math.log(2 * math.pi) + torch.log(sigma) + 0.5 * ((y_t - mu) / sigma) ** 2).mean()


def _cnp_step(*, inner_lr, steps, first_order, forward, loss_fn):
    def step(params, x_support, y_support, x_query, y_query):
        theta = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        loss = cnp_loss(theta, x_support, y_support, x_query, y_query)
        grads = torch.autograd.grad(loss, list(theta.values()))
        return loss.detach(), dict(zip(theta, grads))
    return step


def mann_forward(params: Params, x: torch.Tensor, y: torch.Tensor, *, memory_size: int = 128, gamma: float = 0.95,
                 return_trace: bool = False):
    """The MANN over whole sequences, batched over episodes (see
    :func:`course_utils.blackbox.mann_forward_numpy` for the six steps of one time step).

    Args:
        params: :func:`course_utils.blackbox.init_mann` weights as tensors (``n_reads=0``: the LSTM).
        x: (episodes, T, input_dim) images; y: (episodes, T) int64 labels (label t is fed at t + 1).
        memory_size: N memory rows. gamma: usage decay. return_trace: also return the read and write
            weights (episodes, T, R, N) and the usage (episodes, T, N), detached.

    Returns:
        logits (episodes, T, n_classes), or (logits, trace) with ``return_trace``.
    """
    sz = mann_sizes(params)
    _check_sequences(sz, x, y, params)
    n_rows = check_int(memory_size, "memory_size", max(sz["n_reads"], 1))
    gamma = check_float(gamma, "gamma", 0.0, 1.0)
    return_trace = check_bool(return_trace, "return_trace")
    b, t_len = y.shape
    h_dim, c, r, w = sz["hidden"], sz["n_classes"], sz["n_reads"], sz["memory_width"]
    onehot = F.one_hot(y, c).to(x.dtype)
    y_prev = torch.cat([torch.zeros_like(onehot[:, :1]), onehot[:, :-1]], 1)
    w_x = params["lstm_w"][: x.shape[-1] + c]                       # the inputs known in advance: one matmul
    z_in = torch.cat([x, y_prev], -1) @ w_x + params["lstm_b"]
    w_rec = params["lstm_w"][x.shape[-1] + c:]                       # reads and h
    h = cell = x.new_zeros(b, h_dim)
    mem, reads = x.new_full((b, n_rows, w), MEMORY_INIT), x.new_zeros(b, r * w)
    w_read, usage = x.new_zeros(b, r, n_rows), x.new_zeros(b, n_rows)
    w_lu = _least_used(usage, r) if r else None
    outs, trace = [], {"read_weights": [], "write_weights": [], "usage": []}
    for t in range(t_len):
        gates = z_in[:, t] + torch.cat([reads, h], -1) @ w_rec
        i, f, g, o = gates.chunk(4, -1)
        cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(cell)
        if r:
            keys = torch.tanh(h @ params["key_w"] + params["key_b"]).view(b, r, w)
            alpha = torch.sigmoid(h @ params["gate_w"] + params["gate_b"]).unsqueeze(-1)
            w_write = alpha * w_read + (1 - alpha) * w_lu.unsqueeze(1)
            mem = mem * (1 - w_lu).unsqueeze(-1) + w_write.transpose(1, 2) @ keys
            k_n = keys / (keys.norm(dim=-1, keepdim=True) + _EPS)
            m_n = mem / (mem.norm(dim=-1, keepdim=True) + _EPS)
            w_read = torch.softmax(k_n @ m_n.transpose(1, 2), -1)
            reads = (w_read @ mem).reshape(b, r * w)
            usage = gamma * usage + (w_read.sum(1) + w_write.sum(1)).detach()
            w_lu = _least_used(usage, r)
            if return_trace:
                for k, v in (("read_weights", w_read), ("write_weights", w_write), ("usage", usage)):
                    trace[k].append(v.detach())
        outs.append(torch.cat([h, reads], -1))
    logits = torch.stack(outs, 1) @ params["out_w"] + params["out_b"]
    if not return_trace:
        return logits
    return logits, {k: (torch.stack(v, 1) if v else None) for k, v in trace.items()}


def _least_used(usage: torch.Tensor, n: int) -> torch.Tensor:
    idx = torch.argsort(usage, dim=-1, stable=True)[..., :n]
    return torch.zeros_like(usage).scatter_(-1, idx, 1.0)


def mann_loss(params: Params, x: torch.Tensor, y: torch.Tensor, *, memory_size: int = 128,
              gamma: float = 0.95) -> torch.Tensor:
    """Mean cross-entropy over every step of every sequence (Santoro et al.'s training loss)."""
    logits = mann_forward(params, x, y, memory_size=memory_size, gamma=gamma)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def _mann_step(*, inner_lr, steps, first_order, forward, loss_fn, memory_size=128, gamma=0.95):
    def step(params, x_support, y_support, x_query, y_query):
        theta = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        loss = mann_loss(theta, x_support, y_support, memory_size=memory_size, gamma=gamma)
        grads = torch.autograd.grad(loss, list(theta.values()))
        return loss.detach(), dict(zip(theta, grads))
    return step


register_meta_method("mann", _mann_step, doc="memory-augmented network over (x, y, x, y) sequence batches "
                                             "(no read heads: the LSTM baseline); options memory_size, gamma")
register_meta_method("cnp", _cnp_step, doc="conditional neural process (black box: no inner loop; "
                                           "inner_lr, steps, forward and loss_fn are ignored)")
