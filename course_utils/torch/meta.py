"""MAML vectorised over the tasks of a meta-batch, fine-tuning curves and meta-testing, in PyTorch.

Mirrors :mod:`course_utils.tensorflow.meta` name for name. The per-task reference
implementation is :func:`course_utils.torch.core.maml_objective` (a Python loop over tasks with
``torch.autograd.grad(create_graph=True)``); here the same maths is written with
``torch.func``: ``grad`` for the inner step, ``vmap`` over the tasks, and ``grad_and_value`` for
the meta-gradient, which therefore contains the Hessian-vector terms unless ``first_order=True``.

Conventions shared by every function:

* ``params``: a parameter dict (``w0``, ``b0``, ... for the MLP; see
  :mod:`course_utils.torch.convnet` for the conv net). Functions that say "NumPy" take and return
  NumPy dicts; the others take tensors.
* Task batches: ``x_support`` (tasks, k_shot, ...), ``y_support`` (tasks, k_shot, ...),
  ``x_query`` (tasks, n_query, ...), ``y_query`` (tasks, n_query, ...), as produced by
  :func:`course_utils.sample_sinusoid_tasks` or ``EpisodeSampler.sample_batch``. NumPy arrays are
  accepted; ``uint8`` images (ink = 255) are scaled to float32 in [0, 1].
* ``forward(params, x)`` maps one task's inputs to outputs; ``loss_fn(pred, y)`` is a *mean*
  over examples (every task of a batch has the same number of examples).
* ``sample_batch(rng)`` (for :func:`meta_test` and ``meta_train``) returns ``(x_support, y_support, x_query, y_query)``
  for one meta-batch, e.g. ``lambda rng: sample_sinusoid_tasks(25, 10, 10, rng=rng)[:4]`` or
  ``lambda rng: sampler.sample_batch(8, rng)[:4]``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.func import grad, grad_and_value, vmap

from course_utils.env import course_device
from course_utils.seed import check_rng
from course_utils.training import FinetuneCurve, meta_test_summary
from course_utils.validation import (check_bool, check_callable, check_inner_loop, check_meta_call,
                                     check_optional_int, check_params, check_positive_int,
                                     check_task_tuple, check_tasks_forward)
from course_utils.torch.core import as_task_tensors, from_numpy, mlp_forward, mse_loss, to_tensor
from course_utils.torch.core import num_threads as pin_threads

__all__ = [
    "adapt_tasks",
    "tasks_forward",
    "maml_task_losses",
    "make_meta_gradient_fn",
    "maml_meta_gradient_batched",
    "finetune_curve",
    "meta_test",
]

Params = dict[str, torch.Tensor]


def _meta_call(params, arrays: dict, inner_lr, steps, first_order, forward, loss_fn) -> tuple:
    """:func:`course_utils.validation.check_meta_call` with this framework's MLP and MSE."""
    return check_meta_call(params, arrays, inner_lr=inner_lr, steps=steps, first_order=first_order, forward=forward,
                           loss_fn=loss_fn, mlp_forward=mlp_forward, mse_loss=mse_loss)


# --------------------------------------------------------------------------- the inner loop
def _adapt_one(params: Params, x_support, y_support, inner_lr, steps, first_order, forward, loss_fn) -> Params:
    """One task's inner loop with torch.func.grad (called under vmap)."""
    def support_loss(p):
        return loss_fn(forward(p, x_support), y_support)

    phi = params
    for _ in range(steps):
        g = grad(support_loss)(phi)
        if first_order:
            g = {k: v.detach() for k, v in g.items()}
        phi = {k: phi[k] - inner_lr * g[k] for k in phi}
    return phi


def adapt_tasks(params: Params, x_support, y_support, *, inner_lr: float = 0.01, steps: int = 1,
                first_order: bool = False, forward: Callable = mlp_forward,
                loss_fn: Callable = mse_loss) -> Params:
    """The MAML inner loop for every task of a batch at once (``vmap`` over tasks).

    Args:
        params: shared initial parameters θ (tensors).
        x_support, y_support: (tasks, k_shot, ...) support sets.
        inner_lr: α, the inner SGD step size (>= 0).
        steps: inner SGD steps (>= 0).
        first_order: treat the inner gradients as constants (FOMAML): the result's
            derivative with respect to θ is then the identity.
        forward, loss_fn: the model and the (mean) loss of one task.

    Returns:
        Adapted parameters φ_t with a leading task axis: ``{name: (tasks, *shape)}``,
        differentiable with respect to ``params``.
    """
    inner_lr, steps, first_order, x_support, y_support = _meta_call(
        params, {"x_support": x_support, "y_support": y_support}, inner_lr, steps, first_order, forward, loss_fn)
    xs, ys = as_task_tensors(x_support, y_support)
    fn = lambda p, x, y: _adapt_one(p, x, y, inner_lr, steps, first_order, forward, loss_fn)  # noqa: E731
    return vmap(fn, in_dims=(None, 0, 0))(params, xs, ys)


def tasks_forward(params_batched: Params, x, *, forward: Callable = mlp_forward) -> torch.Tensor:
    """Evaluate per-task parameters on per-task inputs: ``{name: (tasks, ...)}``, x (tasks, n, ...)
    → (tasks, n, out)."""
    check_tasks_forward(params_batched, x, forward, mlp_forward)
    return vmap(forward)(params_batched, to_tensor(x))


def _task_loss(params, xs, ys, xq, yq, inner_lr, steps, first_order, forward, loss_fn):
    phi = _adapt_one(params, xs, ys, inner_lr, steps, first_order, forward, loss_fn)
    return loss_fn(forward(phi, xq), yq)


def maml_task_losses(params: Params, x_support, y_support, x_query, y_query, *, inner_lr: float = 0.01,
                     steps: int = 1, first_order: bool = False, forward: Callable = mlp_forward,
                     loss_fn: Callable = mse_loss) -> torch.Tensor:
    """Query loss of every task after its inner loop, shape (tasks,); its mean is the MAML
    objective (:func:`course_utils.torch.core.maml_objective` computes the same with a loop)."""
    inner_lr, steps, first_order, *arrays = _meta_call(
        params, {"x_support": x_support, "y_support": y_support, "x_query": x_query, "y_query": y_query},
        inner_lr, steps, first_order, forward, loss_fn)
    xs, ys, xq, yq = as_task_tensors(*arrays)
    fn = lambda p, a, b, c, d: _task_loss(p, a, b, c, d, inner_lr, steps, first_order, forward, loss_fn)  # noqa: E731
    return vmap(fn, in_dims=(None, 0, 0, 0, 0))(params, xs, ys, xq, yq)


# --------------------------------------------------------------------------- meta-gradient
def _mlp_forward_tasks(params_batched: Params, x: torch.Tensor) -> torch.Tensor:
    """The MLP with one weight set per task: w_i (tasks, in, out), b_i (tasks, out), x (tasks, n, in)."""
    n = sum(1 for k in params_batched if k.startswith("w"))
    h = x
    for i in range(n):
        h = torch.baddbmm(params_batched[f"b{i}"].unsqueeze(1), h, params_batched[f"w{i}"])
        if i < n - 1:
            h = torch.relu(h)
    return h


def _mlp_meta_gradient(params: Params, xs, ys, xq, yq, inner_lr, steps, first_order):
    """MAML's meta-gradient for the MLP with tiled weights φ₀ = expand(θ): the gradient of the
    SUM of the per-task support losses with respect to the copies is the stack of per-task
    gradients; the outer ``autograd.grad`` differentiates through the inner steps. Returns
    ``(grads, meta_loss)`` like ``grad_and_value``."""
    with torch.enable_grad():
        theta = {k: v.detach().requires_grad_() for k, v in params.items()}
        n = xs.shape[0]
        phi = {k: v.expand(n, *v.shape) for k, v in theta.items()}
        for _ in range(steps):
            support = n * mse_loss(_mlp_forward_tasks(phi, xs), ys)  # sum over tasks of the task means
            g = torch.autograd.grad(support, list(phi.values()), create_graph=not first_order)
            phi = {k: phi[k] - inner_lr * gk for k, gk in zip(phi, g)}
        loss = mse_loss(_mlp_forward_tasks(phi, xq), yq)  # mean over tasks of the task means
        grads = torch.autograd.grad(loss, list(theta.values()))
    return dict(zip(theta, grads)), loss.detach()


def make_meta_gradient_fn(*, inner_lr: float = 0.01, steps: int = 1, first_order: bool = False,
                          forward: Callable = mlp_forward, loss_fn: Callable = mse_loss,
                          chunk_size: int | None = None) -> Callable:
    """Build ``fn(params, x_support, y_support, x_query, y_query) -> (meta_loss, grads)``.

    ``meta_loss`` is the mean query loss over the tasks (a 0-d tensor) and ``grads`` a dict of
    its gradients with respect to ``params`` (``torch.func.grad_and_value`` of a ``vmap`` ped
    per-task objective). With ``chunk_size`` the tasks are processed in chunks of that many and
    the chunk gradients are accumulated (weighted by chunk size): the same result with less
    peak memory. For the course's MLP with the MSE loss (``forward=mlp_forward``,
    ``loss_fn=mse_loss``, the sinusoid experiment) the same maths runs on *tiled* weights instead,
    as in :func:`course_utils.tensorflow.make_meta_gradient_fn`: one weight copy per task, all
    tasks in batched matmuls (``torch.baddbmm``), ``torch.autograd.grad(create_graph=True)`` for
    the inner step. The result is equal to float32 tolerance and about twice as fast on a CPU,
    where ``vmap``'s per-call overhead dominates such small networks.
    """
    inner_lr, steps, first_order = check_inner_loop(inner_lr, steps, first_order, forward, loss_fn)
    check_optional_int(chunk_size, "chunk_size")

    def meta_loss(params, xs, ys, xq, yq):
        return maml_task_losses(params, xs, ys, xq, yq, inner_lr=inner_lr, steps=steps,
                                first_order=first_order, forward=forward, loss_fn=loss_fn).mean()

    if forward is mlp_forward and loss_fn is mse_loss:  # the course's MLP: batched matmuls, no vmap
        def gv(params, xs, ys, xq, yq):
            return _mlp_meta_gradient(params, xs, ys, xq, yq, inner_lr, steps, first_order)
    else:
        gv = grad_and_value(meta_loss)

    def fn(params: Params, x_support, y_support, x_query, y_query):
        params = {k: (v.detach() if isinstance(v, torch.Tensor) else to_tensor(v)) for k, v in params.items()}
        arrays = _meta_call(params, dict(zip(("x_support", "y_support", "x_query", "y_query"),
                                             (x_support, y_support, x_query, y_query))),
                            inner_lr, steps, first_order, forward, loss_fn)[3:]
        xs, ys, xq, yq = as_task_tensors(*arrays)
        n = xs.shape[0]
        if chunk_size is None or chunk_size >= n:
            g, loss = gv(params, xs, ys, xq, yq)
            return loss, g
        total, acc = 0.0, None
        for s in range(0, n, chunk_size):
            sl = slice(s, min(s + chunk_size, n))
            w = (sl.stop - sl.start) / n
            g, loss = gv(params, xs[sl], ys[sl], xq[sl], yq[sl])
            total = total + w * loss
            acc = {k: w * v for k, v in g.items()} if acc is None else {k: acc[k] + w * g[k] for k in acc}
        return total, acc

    return fn


def maml_meta_gradient_batched(params: dict[str, np.ndarray], x_support, y_support, x_query, y_query, *,
                               inner_lr: float = 0.01, steps: int = 1, first_order: bool = False,
                               forward: Callable = mlp_forward, loss_fn: Callable = mse_loss,
                               chunk_size: int | None = None) -> tuple[float, dict[str, np.ndarray]]:
    """NumPy in, NumPy out: the vectorised twin of :func:`course_utils.torch.core.maml_meta_gradient`
    (same arguments, same result to float32 tolerance)."""
    fn = make_meta_gradient_fn(inner_lr=inner_lr, steps=steps, first_order=first_order, forward=forward,
                               loss_fn=loss_fn, chunk_size=chunk_size)
    loss, g = fn(from_numpy(params, requires_grad=False), x_support, y_support, x_query, y_query)
    return float(loss), {k: v.detach().numpy() for k, v in g.items()}


# --------------------------------------------------------------------------- evaluation
def finetune_curve(params: dict, tasks, *, steps: int = 10, inner_lr: float = 0.01, guard: bool = True,
                   forward: Callable = mlp_forward, loss_fn: Callable = mse_loss, accuracy: bool = False,
                   chunk_size: int | None = None, num_threads: int | None = 1) -> FinetuneCurve:
    """Fine-tune a copy of ``params`` on each task's support set with plain SGD and record the
    query loss after every step (vectorised over tasks; no meta-gradient, no graph kept).

    The divergence guard (``guard=True``): a step that would lift the task's support loss above
    its value *before* fine-tuning (or make it non-finite) is rejected, and that task's step
    size is halved for the following steps. Ordinary oscillation below the starting loss is left
    alone, so plain SGD with step ``inner_lr`` is what runs on almost every task; the guard only
    stops the rare task (large amplitude, hence large gradients) whose repeated α steps blow up.
    It reads only the support set, so it is a legitimate part of the learner. ``guarded`` says
    which tasks it touched.

    Args:
        params: initial weights (NumPy dict or tensors).
        tasks: an object with ``x_support, y_support, x_query, y_query`` (tasks on axis 0)
            or a tuple of those four arrays.
        steps: adaptation steps (>= 0). inner_lr: SGD step size (>= 0).
        accuracy: also record arg-max accuracy (classification).
        chunk_size: process this many tasks at a time (memory).
        num_threads: PyTorch threads during the call (restored afterwards; None keeps the setting).

    Runs on :func:`course_utils.env.course_device`; returns NumPy arrays.
    """
    inner_lr, steps, _, *arrays = _meta_call(params, check_task_tuple(tasks), inner_lr, steps, False, forward,
                                             loss_fn)
    tasks = tuple(arrays)
    check_optional_int(chunk_size, "chunk_size")
    check_bool(guard, "guard")
    check_bool(accuracy, "accuracy")
    device = torch.device(course_device())
    data = as_task_tensors(*tasks)
    xs, ys, xq, yq = (a.to(device) for a in data)
    theta = {k: (v.detach() if isinstance(v, torch.Tensor) else to_tensor(v)).to(device) for k, v in params.items()}
    per_loss = lambda p, x, y: loss_fn(forward(p, x), y)  # noqa: E731
    v_loss = vmap(per_loss)
    v_grad = vmap(grad_and_value(per_loss))
    v_acc = vmap(lambda p, x, y: (forward(p, x).argmax(-1) == y).float().mean())
    n = xs.shape[0]
    size = n if chunk_size is None else chunk_size
    losses, accs, guarded = [], [], []
    with torch.no_grad(), pin_threads(num_threads):
        for s in range(0, n, size):
            sl = slice(s, min(s + size, n))
            m = sl.stop - sl.start
            phi = {k: v.unsqueeze(0).expand(m, *v.shape).clone() for k, v in theta.items()}
            lr = torch.full((m,), float(inner_lr), device=device)
            hit = torch.zeros(m, dtype=torch.bool, device=device)
            c_loss = [v_loss(phi, xq[sl], yq[sl])]
            c_acc = [v_acc(phi, xq[sl], yq[sl])] if accuracy else []
            start = v_loss(phi, xs[sl], ys[sl])
            for _ in range(steps):
                g, _ = v_grad(phi, xs[sl], ys[sl])
                cand = {k: phi[k] - lr.view(-1, *([1] * (phi[k].dim() - 1))) * g[k] for k in phi}
                if guard:
                    new = v_loss(cand, xs[sl], ys[sl])
                    ok = torch.isfinite(new) & (new <= start)
                    phi = {k: torch.where(ok.view(-1, *([1] * (phi[k].dim() - 1))), cand[k], phi[k]) for k in phi}
                    lr = torch.where(ok, lr, lr / 2)
                    hit |= ~ok
                else:
                    phi = cand
                c_loss.append(v_loss(phi, xq[sl], yq[sl]))
                if accuracy:
                    c_acc.append(v_acc(phi, xq[sl], yq[sl]))
            losses.append(torch.stack(c_loss))
            if accuracy:
                accs.append(torch.stack(c_acc))
            guarded.append(hit)
    return FinetuneCurve(torch.cat(losses, 1).cpu().numpy(), torch.cat(accs, 1).cpu().numpy() if accuracy else None,
                         torch.cat(guarded).cpu().numpy())


def meta_test(params: dict, sample_batch: Callable, *, n_batches: int = 10, inner_lr: float = 0.4,
              steps: int = 1, forward: Callable = mlp_forward, loss_fn: Callable = mse_loss,
              accuracy: bool = True, chunk_size: int | None = None,
              rng: np.random.Generator | int | None = None, num_threads: int | None = 1) -> dict:
    """Adapt to ``n_batches`` fresh meta-batches with ``steps`` plain SGD steps (no guard) and
    report the query metrics after adaptation.

    Returns ``{"loss": mean, "accuracy": mean or None, "accuracy_ci95": half-width of the 95 %
    confidence interval over tasks or None, "n_tasks": int}``.
    """
    check_params(params)
    check_callable(sample_batch, "sample_batch")
    check_positive_int(n_batches, "n_batches")
    rng = check_rng(rng)
    loss, acc = [], []
    for _ in range(n_batches):
        curve = finetune_curve(params, tuple(sample_batch(rng))[:4], steps=steps, inner_lr=inner_lr, guard=False,
                               forward=forward, loss_fn=loss_fn, accuracy=accuracy, chunk_size=chunk_size,
                               num_threads=num_threads)
        loss.append(curve.loss[-1])
        if accuracy:
            acc.append(curve.accuracy[-1])
    return meta_test_summary(loss, acc, accuracy)
