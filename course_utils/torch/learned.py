"""Learned update rules in PyTorch (chapter 10): Meta-SGD and the meta-learner LSTM.

Mirrors :mod:`course_utils.tensorflow.learned` name for name. Parameter layouts are those of
:mod:`course_utils.learned` (``lr_*`` step sizes, ``opt_*`` optimiser weights). Both inner loops
run on *tiled* weights, one copy of the learner per task (the same trick as chapter 6's
``make_meta_gradient_fn``): the gradient of the sum of the per-task support losses with respect
to the copies is the stack of per-task gradients.

* :func:`meta_sgd_adapt` — φ = θ − α ⊙ ∇L, differentiable in θ and α (second order unless
  ``first_order``).
* :func:`meta_lstm_adapt` — Ravi & Larochelle's rule θ_t = f_t ⊙ θ_{t−1} − i_t ⊙ ∇_t. As in
  their paper, the gradient and loss *inputs* are treated as constants (no second derivatives);
  the meta-gradient flows through θ_t, f_t and i_t.

Both register with ``meta_train`` (``"metasgd"``, ``"metalstm"``).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.func import vmap

from course_utils.learned import final_step, register_learned_methods, split_learned
from course_utils.validation import check_array, check_bool, check_float, check_learned_call, check_params
from course_utils.torch.core import as_task_tensors, mlp_forward, mse_loss, to_tensor
from course_utils.torch.meta import _mlp_forward_tasks
from course_utils.torch.training import register_meta_method

__all__ = ["preprocess_gradient", "meta_sgd_adapt", "meta_lstm_adapt", "learned_curve"]

Params = dict[str, torch.Tensor]


def preprocess_gradient(x: torch.Tensor, p: float = 10.0) -> torch.Tensor:
    """Andrychowicz et al.'s preprocessing (see :func:`course_utils.learned.preprocess_gradient`):
    x (...) → (..., 2) = (log|x|/p, sign x) if |x| ≥ e^{−p}, else (−1, e^{p} x)."""
    check_array(x, "x", dtype="real")
    p = check_float(p, "p", 0.0, low_open=True)
    x = to_tensor(x)
    big = x.abs() >= float(np.exp(-p))
    first = torch.where(big, torch.log(x.abs().clamp_min(float(np.exp(-p)))) / p, torch.full_like(x, -1.0))
    second = torch.where(big, torch.sign(x), float(np.exp(p)) * x)
    return torch.stack([first, second], -1)


def _task_losses_fn(forward: Callable, loss_fn: Callable) -> Callable:
    """``fn(phi_tiled, x, y) -> (tasks,)`` per-task mean losses."""
    if forward is mlp_forward and loss_fn is mse_loss:
        return lambda phi, x, y: ((_mlp_forward_tasks(phi, x) - y) ** 2).mean(dim=tuple(range(1, y.dim())))
    return vmap(lambda p, x, y: loss_fn(forward(p, x), y))


def _check_call(params, x_support, y_support, steps, forward, loss_fn):
    steps = check_learned_call(params, x_support, y_support, steps, forward, loss_fn, mlp_forward)
    xs, ys = as_task_tensors(x_support, y_support)
    return steps, xs, ys


def _tile(theta: Params, n: int) -> Params:
    return {k: v.expand(n, *v.shape) if v.requires_grad else v.expand(n, *v.shape).clone().requires_grad_()
            for k, v in theta.items()}


def _meta_sgd_trajectory(params, xs, ys, steps, first_order, task_losses):
    theta, lrs, _ = split_learned(params)
    missing = sorted(set(theta) - set(lrs))
    if missing:
        raise ValueError(f"Meta-SGD needs a step size for every weight: params lacks {['lr_' + k for k in missing]} "
                         f"(build them with course_utils.learned.init_meta_sgd)")
    phi = _tile(theta, xs.shape[0])
    yield phi, None
    for _ in range(steps):
        g = torch.autograd.grad(task_losses(phi, xs, ys).sum(), list(phi.values()), create_graph=not first_order)
        phi = {k: phi[k] - lrs[k] * gk for k, gk in zip(phi, g)}
        yield phi, None


def meta_sgd_adapt(params: Params, x_support, y_support, *, steps: int = 1, first_order: bool = False,
                   forward: Callable = mlp_forward, loss_fn: Callable = mse_loss) -> Params:
    """Meta-SGD's inner loop for every task: ``steps`` times φ ← φ − α ⊙ ∇L_support(φ).

    Args:
        params: θ and its step sizes α (``lr_*`` keys, :func:`course_utils.learned.init_meta_sgd`).
        x_support, y_support: (tasks, k_shot, ...) support sets.
        steps: inner steps (>= 0; the paper uses 1).
        first_order: treat the inner gradients as constants.
        forward, loss_fn: the learner and its mean loss.

    Returns:
        ``{name: (tasks, *shape)}``, the adapted learner weights (no ``lr_*`` keys), differentiable
        in θ and α.
    """
    steps, xs, ys = _check_call(params, x_support, y_support, steps, forward, loss_fn)
    first_order = check_bool(first_order, "first_order")
    with torch.enable_grad():
        phi, _ = final_step(_meta_sgd_trajectory(params, xs, ys, steps, first_order,
                                                           _task_losses_fn(forward, loss_fn)))
    return phi


def _meta_lstm_trajectory(params, xs, ys, steps, p, task_losses):
    theta, _, opt = split_learned(params)
    need = ("opt_w1", "opt_b1", "opt_wf", "opt_bf", "opt_wi", "opt_bi")
    missing = [k for k in need if k not in opt]
    if missing:
        raise ValueError(f"the meta-learner LSTM needs the weights {list(need)}; params lacks {missing} "
                         f"(build them with course_utils.learned.init_meta_lstm)")
    names, shapes = list(theta), [tuple(v.shape) for v in theta.values()]
    sizes = [int(np.prod(s)) for s in shapes]
    n, hidden = xs.shape[0], opt["opt_w1"].shape[1] // 4
    unflat = lambda c: {k: v.reshape(n, *s) for k, v, s in zip(names, torch.split(c, sizes, 1), shapes)}  # noqa: E731
    c = torch.cat([theta[k].reshape(-1) for k in names]).expand(n, -1)          # (tasks, P): θ₀ for every task
    h1 = c1 = torch.zeros(n, c.shape[1], hidden)
    f = i = torch.zeros(n, c.shape[1])
    yield unflat(c), None
    for _ in range(steps):
        leaf = c.detach().requires_grad_()                                         # gradient inputs are constants
        losses = task_losses(unflat(leaf), xs, ys)
        g = torch.autograd.grad(losses.sum(), leaf)[0]
        pl = preprocess_gradient(losses.detach())[:, None, :].expand(n, g.shape[1], 2)
        x = torch.cat([preprocess_gradient(g), pl], -1)
        z = torch.cat([x, h1], -1) @ opt["opt_w1"] + opt["opt_b1"]
        zi, zf, zg, zo = z.chunk(4, -1)
        c1 = torch.sigmoid(zf) * c1 + torch.sigmoid(zi) * torch.tanh(zg)
        h1 = torch.sigmoid(zo) * torch.tanh(c1)
        f = torch.sigmoid((torch.cat([h1, c[..., None], f[..., None]], -1) @ opt["opt_wf"])[..., 0] + opt["opt_bf"])
        i = torch.sigmoid((torch.cat([h1, c[..., None], i[..., None]], -1) @ opt["opt_wi"])[..., 0] + opt["opt_bi"])
        c = f * c - i * g
        yield unflat(c), (f, i)


def meta_lstm_adapt(params: Params, x_support, y_support, *, steps: int = 5, forward: Callable = mlp_forward,
                    loss_fn: Callable = mse_loss, p: float = 10.0, return_gates: bool = False):
    """The meta-learner LSTM's inner loop for every task (Ravi & Larochelle 2017).

    Per step t, for every coordinate j of the learner (shared LSTM weights): inputs
    (preprocess(∇_j), preprocess(L)) → an LSTM of width H → gates
    f_t = σ(w_f·[h_t, θ_{t−1}, f_{t−1}] + b_f), i_t = σ(w_i·[h_t, θ_{t−1}, i_{t−1}] + b_i) →
    θ_t = f_t ⊙ θ_{t−1} − i_t ⊙ ∇_t. The learner starts from θ₀ (the non-``opt_`` keys).

    Args:
        params: θ₀ and the ``opt_*`` weights (:func:`course_utils.learned.init_meta_lstm`).
        x_support, y_support: (tasks, k_shot, ...) support sets.
        steps: inner steps (>= 0).
        forward, loss_fn: the learner and its mean loss.
        p: the preprocessing cut-off (> 0).
        return_gates: also return the gates.

    Returns:
        the adapted learner weights ``{name: (tasks, *shape)}``; with ``return_gates`` also
        ``{"forget": (steps, tasks, P), "input": (steps, tasks, P)}`` as NumPy arrays
        (P = number of learner weights, in the order of ``params``).
    """
    steps, xs, ys = _check_call(params, x_support, y_support, steps, forward, loss_fn)
    p = check_float(p, "p", 0.0, low_open=True)
    return_gates = check_bool(return_gates, "return_gates")
    with torch.enable_grad():
        trajectory = list(_meta_lstm_trajectory(params, xs, ys, steps, p, _task_losses_fn(forward, loss_fn)))
    phi = trajectory[-1][0]
    gates = [g for _, g in trajectory[1:]]
    if not return_gates:
        return phi
    stack = lambda j: np.stack([g[j].detach().cpu().numpy() for g in gates]) if gates else np.zeros((0, xs.shape[0], 0))  # noqa: E731
    return phi, {"forget": stack(0), "input": stack(1)}


def learned_curve(method: str, params: dict, x_support, y_support, x_query, y_query, *, steps: int = 5,
                  forward: Callable = mlp_forward, loss_fn: Callable = mse_loss) -> np.ndarray:
    """Per-task query loss after 0, 1, ..., ``steps`` inner steps of ``method``.

    Args:
        method: ``"metasgd"`` or ``"metalstm"``.
        params: NumPy or tensor dict in that method's layout.
        x_support, y_support, x_query, y_query: (tasks, n, ...) arrays.
        steps: inner steps (>= 0).

    Returns:
        (steps + 1, tasks) float64 array (row s: after s steps).
    """
    if method not in ("metasgd", "metalstm"):
        raise ValueError(f"method must be one of ['metasgd', 'metalstm'], got {method!r}")
    check_params(params)
    params = {k: (v.detach() if isinstance(v, torch.Tensor) else to_tensor(np.asarray(v, np.float32)))
              for k, v in params.items()}
    check_learned_call(params, x_support, y_support, steps, forward, loss_fn, mlp_forward, x_query=x_query,
                       y_query=y_query)
    steps, xs, ys = _check_call(params, x_support, y_support, steps, forward, loss_fn)
    xq, yq = as_task_tensors(x_query, y_query)
    task_losses = _task_losses_fn(forward, loss_fn)
    chunks = []
    for s in range(0, xs.shape[0], _CHUNK):  # chunks of tasks: the LSTM's state is (tasks, P, H)
        sl = slice(s, s + _CHUNK)
        traj = (_meta_sgd_trajectory(params, xs[sl], ys[sl], steps, False, task_losses) if method == "metasgd"
                else _meta_lstm_trajectory(params, xs[sl], ys[sl], steps, 10.0, task_losses))
        rows = []
        with torch.enable_grad():
            for phi, _ in traj:
                rows.append(task_losses({k: v.detach() for k, v in phi.items()}, xq[sl], yq[sl]).detach().cpu().numpy())
        chunks.append(np.stack(rows))
    return np.concatenate(chunks, 1).astype(np.float64)


_CHUNK = 100  # tasks evaluated at once by learned_curve


# --------------------------------------------------------------------------- meta_train methods
def _step(trajectory_of):
    def make_step(*, inner_lr, steps, first_order, forward, loss_fn):
        task_losses = _task_losses_fn(forward, loss_fn)

        def step(params, x_support, y_support, x_query, y_query):
            with torch.enable_grad():
                leaves = {k: v.detach().requires_grad_() for k, v in params.items()}
                phi, _ = final_step(trajectory_of(leaves, x_support, y_support, steps, first_order, task_losses))
                loss = task_losses(phi, x_query, y_query).mean()
                grads = torch.autograd.grad(loss, list(leaves.values()))
            return loss.detach(), dict(zip(leaves, grads))
        return step
    return make_step


register_learned_methods(register_meta_method, _step, _meta_sgd_trajectory, _meta_lstm_trajectory)
