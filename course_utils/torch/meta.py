"""MAML vectorised over the tasks of a meta-batch, in PyTorch (chapter 6; reused by chapter 7).

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
* ``sample_batch(rng)`` (for training loops) returns ``(x_support, y_support, x_query, y_query)``
  for one meta-batch, e.g. ``lambda rng: sample_sinusoid_tasks(25, 10, 10, rng=rng)[:4]`` or
  ``lambda rng: sampler.sample_batch(8, rng)[:4]``.
"""
from __future__ import annotations

import contextlib
import time
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch
from torch.func import grad, grad_and_value, vmap

from course_utils.validation import (check_lr, check_maml_args, check_positive_int, meta_test_summary,
                                  progress_range)
from course_utils.seed import check_rng
from course_utils.torch.core import from_numpy, mlp_forward, mse_loss, to_numpy

__all__ = [
    "as_task_tensors",
    "adapt_tasks",
    "tasks_forward",
    "maml_task_losses",
    "make_meta_gradient_fn",
    "maml_meta_gradient_batched",
    "MAMLTrainer",
    "meta_train",
    "pretrain_baseline",
    "FinetuneCurve",
    "finetune_curve",
    "meta_test",
]

Params = dict[str, torch.Tensor]


# --------------------------------------------------------------------------- threads
@contextlib.contextmanager
def _threads(num_threads: int | None):
    """Run a block with ``torch.set_num_threads(num_threads)`` and restore the setting afterwards.

    The course's meta-learning work is thousands of tiny kernels (40-unit layers, 28×28 images).
    On the 1-2 shared cores of a laptop, Binder or CI, multi-threaded kernels then wait on each
    other whenever another process holds a core: measured here under load, one sinusoid
    meta-gradient took 1.8 ms on one thread and 340 ms on two. ``None`` leaves the setting alone.
    """
    if num_threads is None:
        yield
        return
    if isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer)) or num_threads < 1:
        raise ValueError(f"num_threads must be None or an integer >= 1, got {num_threads!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(int(num_threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------- inputs
def _tensor(a) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a
    a = np.asarray(a)
    if a.dtype == np.uint8:
        return torch.from_numpy(a.astype(np.float32) / 255.0)
    if np.issubdtype(a.dtype, np.floating):
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    if np.issubdtype(a.dtype, np.integer):
        return torch.from_numpy(a.astype(np.int64))
    raise ValueError(f"task arrays must be float, integer or uint8 images, got dtype {a.dtype}")


def as_task_tensors(*arrays) -> tuple[torch.Tensor, ...]:
    """NumPy task arrays → tensors: float → float32, integer labels → int64, uint8 images → [0, 1].

    Also accepts a single object with ``x_support, y_support, x_query, y_query`` attributes
    (``SinusoidTasks``, ``Episode``) and returns those four tensors.
    """
    if len(arrays) == 1 and hasattr(arrays[0], "x_support"):
        t = arrays[0]
        arrays = (t.x_support, t.y_support, t.x_query, t.y_query)
    return tuple(_tensor(a) for a in arrays)


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
    check_maml_args(inner_lr, steps)
    xs, ys = as_task_tensors(x_support, y_support)
    fn = lambda p, x, y: _adapt_one(p, x, y, inner_lr, steps, first_order, forward, loss_fn)  # noqa: E731
    return vmap(fn, in_dims=(None, 0, 0))(params, xs, ys)


def tasks_forward(params_batched: Params, x, *, forward: Callable = mlp_forward) -> torch.Tensor:
    """Evaluate per-task parameters on per-task inputs: ``{name: (tasks, ...)}``, x (tasks, n, ...)
    → (tasks, n, out)."""
    return vmap(forward)(params_batched, _tensor(x))


def _task_loss(params, xs, ys, xq, yq, inner_lr, steps, first_order, forward, loss_fn):
    phi = _adapt_one(params, xs, ys, inner_lr, steps, first_order, forward, loss_fn)
    return loss_fn(forward(phi, xq), yq)


def maml_task_losses(params: Params, x_support, y_support, x_query, y_query, *, inner_lr: float = 0.01,
                     steps: int = 1, first_order: bool = False, forward: Callable = mlp_forward,
                     loss_fn: Callable = mse_loss) -> torch.Tensor:
    """Query loss of every task after its inner loop, shape (tasks,); its mean is the MAML
    objective (:func:`course_utils.torch.core.maml_objective` computes the same with a loop)."""
    check_maml_args(inner_lr, steps)
    xs, ys, xq, yq = as_task_tensors(x_support, y_support, x_query, y_query)
    fn = lambda p, a, b, c, d: _task_loss(p, a, b, c, d, inner_lr, steps, first_order, forward, loss_fn)  # noqa: E731
    return vmap(fn, in_dims=(None, 0, 0, 0, 0))(params, xs, ys, xq, yq)


# --------------------------------------------------------------------------- meta-gradient
def make_meta_gradient_fn(*, inner_lr: float = 0.01, steps: int = 1, first_order: bool = False,
                          forward: Callable = mlp_forward, loss_fn: Callable = mse_loss,
                          chunk_size: int | None = None) -> Callable:
    """Build ``fn(params, x_support, y_support, x_query, y_query) -> (meta_loss, grads)``.

    ``meta_loss`` is the mean query loss over the tasks (a 0-d tensor) and ``grads`` a dict of
    its gradients with respect to ``params`` (``torch.func.grad_and_value`` of a ``vmap`` ped
    per-task objective). With ``chunk_size`` the tasks are processed in chunks of that many and
    the chunk gradients are accumulated (weighted by chunk size): the same result with less
    peak memory.
    """
    check_maml_args(inner_lr, steps, chunk_size)

    def meta_loss(params, xs, ys, xq, yq):
        return maml_task_losses(params, xs, ys, xq, yq, inner_lr=inner_lr, steps=steps,
                                first_order=first_order, forward=forward, loss_fn=loss_fn).mean()

    gv = grad_and_value(meta_loss)

    def fn(params: Params, x_support, y_support, x_query, y_query):
        params = {k: (v.detach() if isinstance(v, torch.Tensor) else _tensor(v)) for k, v in params.items()}
        xs, ys, xq, yq = as_task_tensors(x_support, y_support, x_query, y_query)
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


# --------------------------------------------------------------------------- training
class MAMLTrainer:
    """Meta-train an initialisation with Adam on vectorised MAML meta-gradients.

    Args:
        params: initial weights θ₀ (NumPy dict; copied).
        inner_lr, steps, first_order, forward, loss_fn, chunk_size: see :func:`make_meta_gradient_fn`.
        outer_lr: Adam's step size β for the meta-update (> 0).

    ``step(x_support, y_support, x_query, y_query)`` does one meta-update and returns the
    meta-loss before it; ``numpy_params()`` returns the current θ.
    """

    def __init__(self, params: dict[str, np.ndarray], *, inner_lr: float = 0.01, outer_lr: float = 1e-3,
                 steps: int = 1, first_order: bool = False, forward: Callable = mlp_forward,
                 loss_fn: Callable = mse_loss, chunk_size: int | None = None):
        check_lr(outer_lr, "outer_lr")
        self.params = from_numpy(params)
        self.optimizer = torch.optim.Adam(list(self.params.values()), lr=outer_lr, eps=1e-8)
        self._grad_fn = make_meta_gradient_fn(inner_lr=inner_lr, steps=steps, first_order=first_order,
                                              forward=forward, loss_fn=loss_fn, chunk_size=chunk_size)

    def step(self, x_support, y_support, x_query, y_query) -> float:
        loss, grads = self._grad_fn(self.params, x_support, y_support, x_query, y_query)
        for k, p in self.params.items():
            p.grad = grads[k]
        self.optimizer.step()
        return float(loss)

    def numpy_params(self) -> dict[str, np.ndarray]:
        return to_numpy(self.params)


def meta_train(params: dict[str, np.ndarray], sample_batch: Callable, *, n_iterations: int = 1000,
               inner_lr: float = 0.01, outer_lr: float = 1e-3, steps: int = 1, first_order: bool = False,
               forward: Callable = mlp_forward, loss_fn: Callable = mse_loss, chunk_size: int | None = None,
               rng: np.random.Generator | int | None = None, progress: bool = True,
               desc: str = "MAML (torch)", num_threads: int | None = 1) -> tuple[dict[str, np.ndarray], dict]:
    """Meta-train from ``params`` for ``n_iterations`` meta-batches drawn by ``sample_batch(rng)``.

    ``num_threads``: PyTorch threads during training (restored afterwards; see the module notes:
    one thread is fastest for these small kernels on shared cores; ``None`` keeps the setting).

    Returns:
        ``(params, history)``: the meta-learned θ (NumPy) and ``{"meta_loss": list[float]
        (one per iteration, before its update), "seconds": float, "iterations_per_second": float}``.
    """
    n_iterations = check_positive_int(n_iterations, "n_iterations")
    rng = check_rng(rng)
    trainer = MAMLTrainer(params, inner_lr=inner_lr, outer_lr=outer_lr, steps=steps, first_order=first_order,
                          forward=forward, loss_fn=loss_fn, chunk_size=chunk_size)
    losses = []
    t0 = time.perf_counter()
    with _threads(num_threads):
        for _ in progress_range(n_iterations, desc, progress):
            losses.append(trainer.step(*sample_batch(rng)))
    seconds = time.perf_counter() - t0
    return trainer.numpy_params(), {"meta_loss": losses, "seconds": seconds,
                                    "iterations_per_second": n_iterations / seconds}


def pretrain_baseline(params: dict[str, np.ndarray], sample_batch: Callable, *, n_iterations: int = 1000,
                      lr: float = 1e-3, forward: Callable = mlp_forward, loss_fn: Callable = mse_loss,
                      rng: np.random.Generator | int | None = None, progress: bool = True,
                      desc: str = "pretrain (torch)", num_threads: int | None = 1) -> tuple[dict[str, np.ndarray], dict]:
    """The "pretrained on all tasks" baseline of Finn et al. (2017): one model trained with Adam
    on the pooled support and query data of every task in each batch (no inner loop).

    Returns ``(params, {"loss": list[float], "seconds": float})``.
    """
    n_iterations = check_positive_int(n_iterations, "n_iterations")
    rng = check_rng(rng)
    theta = from_numpy(params)
    opt = torch.optim.Adam(list(theta.values()), lr=lr, eps=1e-8)
    losses = []
    t0 = time.perf_counter()
    with _threads(num_threads):
        for _ in progress_range(n_iterations, desc, progress):
            xs, ys, xq, yq = as_task_tensors(*sample_batch(rng))
            x = torch.cat([xs.flatten(0, 1), xq.flatten(0, 1)])
            y = torch.cat([ys.flatten(0, 1), yq.flatten(0, 1)])
            loss = loss_fn(forward(theta, x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    return to_numpy(theta), {"loss": losses, "seconds": time.perf_counter() - t0}


# --------------------------------------------------------------------------- evaluation
class FinetuneCurve(NamedTuple):
    """Result of :func:`finetune_curve`.

    ``loss`` (steps + 1, tasks): query loss after 0, 1, ..., steps adaptation steps;
    ``accuracy`` (steps + 1, tasks) or None; ``guarded`` (tasks,) bool: the divergence guard
    rejected at least one step of that task.
    """

    loss: np.ndarray
    accuracy: np.ndarray | None
    guarded: np.ndarray


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
    """
    check_maml_args(inner_lr, steps, chunk_size)
    xs, ys, xq, yq = as_task_tensors(tasks) if hasattr(tasks, "x_support") else as_task_tensors(*tasks)
    theta = {k: (v.detach() if isinstance(v, torch.Tensor) else _tensor(v)) for k, v in params.items()}
    per_loss = lambda p, x, y: loss_fn(forward(p, x), y)  # noqa: E731
    v_loss = vmap(per_loss)
    v_grad = vmap(grad_and_value(per_loss))
    v_acc = vmap(lambda p, x, y: (forward(p, x).argmax(-1) == y).float().mean())
    n = xs.shape[0]
    size = n if chunk_size is None else chunk_size
    losses, accs, guarded = [], [], []
    with torch.no_grad(), _threads(num_threads):
        for s in range(0, n, size):
            sl = slice(s, min(s + size, n))
            m = sl.stop - sl.start
            phi = {k: v.unsqueeze(0).expand(m, *v.shape).clone() for k, v in theta.items()}
            lr = torch.full((m,), float(inner_lr))
            hit = torch.zeros(m, dtype=torch.bool)
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
    return FinetuneCurve(torch.cat(losses, 1).numpy(), torch.cat(accs, 1).numpy() if accuracy else None,
                         torch.cat(guarded).numpy())


def meta_test(params: dict, sample_batch: Callable, *, n_batches: int = 10, inner_lr: float = 0.4,
              steps: int = 1, forward: Callable = mlp_forward, loss_fn: Callable = mse_loss,
              accuracy: bool = True, chunk_size: int | None = None,
              rng: np.random.Generator | int | None = None, num_threads: int | None = 1) -> dict:
    """Adapt to ``n_batches`` fresh meta-batches with ``steps`` plain SGD steps (no guard) and
    report the query metrics after adaptation.

    Returns ``{"loss": mean, "accuracy": mean or None, "accuracy_ci95": half-width of the 95 %
    confidence interval over tasks or None, "n_tasks": int}``.
    """
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
