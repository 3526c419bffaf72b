"""Chapter 7 in PyTorch: first-order MAML (FOMAML), Reptile and ANIL.

Mirrors :mod:`course_utils.tensorflow.first_order` name for name.

Two layers, as in the rest of the package:

* reference functions that take and return NumPy (weights dict, task arrays with tasks on the
  leading axis) and loop over tasks in plain Python - easy to read, and directly comparable
  with the TensorFlow versions: :func:`fomaml_meta_gradient`, :func:`anil_meta_gradient`,
  :func:`reptile_direction`, :func:`reptile_update`;
* a vectorised meta-training step, :func:`make_meta_step`, built with ``torch.func`` (``grad``
  inside ``vmap`` over tasks), and the loop :func:`train_meta_method` that the chapter uses to
  compare second-order MAML, FOMAML, Reptile and ANIL on an equal number of meta-iterations.

Parameters are dicts in the layout of :mod:`course_utils.nets` (MLP) or of the chapter 6 conv net.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
from torch.func import grad, grad_and_value, vmap

from course_utils.validation import (batches, check_choice, check_epsilon, check_head, check_lr,
                                  check_positive_int, finish_history)
from course_utils.chapters.ch07 import PeakMemory, head_keys, reptile_epsilon
from course_utils.torch.core import adapt, from_numpy, maml_meta_gradient, mlp_forward, mse_loss
from course_utils.torch.meta import as_task_tensors, make_meta_gradient_fn


def _np(a) -> torch.Tensor:
    """NumPy → tensor as chapter 6 does it (float32; int64 labels; uint8 images scaled to [0, 1])."""
    return as_task_tensors(a)[0]

__all__ = [
    "METHODS",
    "reptile_epsilon",
    "head_keys",
    "anil_adapt",
    "reptile_adapt",
    "fomaml_meta_gradient",
    "anil_meta_gradient",
    "reptile_direction",
    "reptile_update",
    "make_meta_step",
    "train_meta_method",
]

#: The four methods the chapter compares.
METHODS = ("maml", "fomaml", "reptile", "anil")


# --------------------------------------------------------------------------- inner loops
def anil_adapt(params, x_support, y_support, *, inner_lr: float = 0.01, steps: int = 1,
               first_order: bool = False, head=None, forward: Callable = mlp_forward,
               loss_fn: Callable = mse_loss) -> dict:
    """ANIL's inner loop: ``steps`` SGD steps on the head only; the body is shared, unchanged.

    Args:
        params: tensors of one model (e.g. from :func:`course_utils.torch.from_numpy`).
        x_support, y_support: one task's support set, (k, ...) and (k, ...).
        head: keys to adapt; default :func:`head_keys` (the last linear layer).
        first_order: treat the inner gradients as constants.

    Returns:
        A new dict: head entries adapted (differentiable w.r.t. ``params`` unless first order),
        body entries the very same tensors as in ``params``.
    """
    return adapt(params, x_support, y_support, inner_lr=inner_lr, steps=steps, first_order=first_order,
                 forward=forward, loss_fn=loss_fn, only=check_head(params, head))


def reptile_adapt(params, x, y, *, inner_lr: float = 0.02, inner_steps: int = 5,
                  batch_size: int | None = None, forward: Callable = mlp_forward,
                  loss_fn: Callable = mse_loss) -> dict:
    """Reptile's inner loop: ``inner_steps`` plain SGD steps on one task, no graph kept.

    Minibatch j is the j-th consecutive slice of ``batch_size`` points of the task's data
    (cycling; shuffle the data beforehand if its order matters). ``batch_size=None`` uses all
    points at every step.

    Returns:
        φ̃, detached tensors.
    """
    check_positive_int(inner_steps, "inner_steps", 0)
    names = list(params)
    phi = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    for sl in batches(int(x.shape[0]), batch_size, inner_steps):
        loss = loss_fn(forward(phi, x[sl]), y[sl])
        grads = torch.autograd.grad(loss, [phi[k] for k in names])
        phi = {k: (phi[k] - inner_lr * g).detach().requires_grad_(True) for k, g in zip(names, grads)}
    return {k: v.detach() for k, v in phi.items()}


# --------------------------------------------------------------------------- NumPy references
def fomaml_meta_gradient(params: dict[str, np.ndarray], x_support, y_support, x_query, y_query, *,
                         inner_lr: float = 0.01, steps: int = 1, forward: Callable = mlp_forward,
                         loss_fn: Callable = mse_loss) -> tuple[float, dict[str, np.ndarray]]:
    """First-order MAML: the MAML meta-gradient with the inner gradients held constant.

    The same as ``maml_meta_gradient(..., first_order=True)`` (one source of truth): the
    result is the mean over tasks of ∇L_query evaluated at the adapted weights φ.
    """
    return maml_meta_gradient(params, x_support, y_support, x_query, y_query, inner_lr=inner_lr,
                              steps=steps, first_order=True, forward=forward, loss_fn=loss_fn)


def anil_meta_gradient(params: dict[str, np.ndarray], x_support, y_support, x_query, y_query, *,
                       inner_lr: float = 0.01, steps: int = 1, first_order: bool = False, head=None,
                       forward: Callable = mlp_forward, loss_fn: Callable = mse_loss
                       ) -> tuple[float, dict[str, np.ndarray]]:
    """ANIL's meta-loss and meta-gradient (mean over tasks), NumPy in and out.

    Inner loop: :func:`anil_adapt` (head only). Outer gradient: all parameters, through the
    head's inner updates (second order unless ``first_order``). Task arrays have tasks on the
    leading axis, e.g. ``x_support`` (tasks, k_shot, in).
    """
    theta = from_numpy(params)
    losses = []
    for t in range(np.asarray(x_support).shape[0]):
        phi = anil_adapt(theta, _np(x_support[t]), _np(y_support[t]), inner_lr=inner_lr, steps=steps,
                         first_order=first_order, head=head, forward=forward, loss_fn=loss_fn)
        losses.append(loss_fn(forward(phi, _np(x_query[t])), _np(y_query[t])))
    loss = torch.stack(losses).mean()
    grads = torch.autograd.grad(loss, list(theta.values()))
    return float(loss.detach()), {k: g.detach().numpy() for k, g in zip(theta, grads)}


def reptile_direction(params: dict[str, np.ndarray], x, y, *, inner_lr: float = 0.02,
                      inner_steps: int = 5, batch_size: int | None = None,
                      forward: Callable = mlp_forward, loss_fn: Callable = mse_loss
                      ) -> dict[str, np.ndarray]:
    """Reptile's direction mean_i(φ̃_i - θ) over a batch of tasks (x: (tasks, n, ...)), NumPy."""
    theta = from_numpy(params, requires_grad=False)
    total = {k: torch.zeros_like(v) for k, v in theta.items()}
    n_tasks = np.asarray(x).shape[0]
    for t in range(n_tasks):
        phi = reptile_adapt(theta, _np(x[t]), _np(y[t]), inner_lr=inner_lr, inner_steps=inner_steps,
                            batch_size=batch_size, forward=forward, loss_fn=loss_fn)
        total = {k: total[k] + (phi[k] - theta[k]) for k in theta}
    return {k: (v / n_tasks).numpy() for k, v in total.items()}


def reptile_update(params: dict[str, np.ndarray], x, y, *, epsilon: float, inner_lr: float = 0.02,
                   inner_steps: int = 5, batch_size: int | None = None,
                   forward: Callable = mlp_forward, loss_fn: Callable = mse_loss
                   ) -> dict[str, np.ndarray]:
    """One (batched) Reptile meta-update θ ← θ + ε · mean_i(φ̃_i - θ), NumPy in and out.

    Args:
        epsilon: the outer step size ε in (0, 1] (see :func:`reptile_epsilon` for its schedule).
    """
    check_epsilon(epsilon)
    d = reptile_direction(params, x, y, inner_lr=inner_lr, inner_steps=inner_steps,
                          batch_size=batch_size, forward=forward, loss_fn=loss_fn)
    return {k: (np.asarray(params[k], np.float32) + np.float32(epsilon) * d[k]).astype(np.float32)
            for k in params}


# --------------------------------------------------------------------------- vectorised step
def make_meta_step(method: str, *, inner_lr: float = 0.01, steps: int = 1,
                   reptile_inner_lr: float = 0.02, reptile_steps: int = 5,
                   reptile_batch_size: int | None = None, head=None,
                   forward: Callable = mlp_forward, loss_fn: Callable = mse_loss) -> Callable:
    """A vectorised (``vmap`` over tasks) meta-step for one of :data:`METHODS`.

    Returns ``step(params, x_support, y_support, x_query, y_query) -> (loss, update)`` where
    ``params`` is a dict of tensors, task tensors have tasks on the leading axis and:

    * ``"maml"`` / ``"fomaml"`` / ``"anil"``: ``loss`` is the mean query loss after adaptation
      and ``update`` the meta-gradient (a dict; descend it with any optimiser). MAML and FOMAML
      are chapter 6's :func:`course_utils.torch.make_meta_gradient_fn` (second order, resp.
      ``first_order=True``). ANIL adapts only ``head`` (default: the last linear layer) and is
      second order through the head's updates.
    * ``"reptile"``: support and query are concatenated into the task's data (tasks, 2k, ...);
      ``update`` is the Reptile direction mean_i(φ̃_i - θ) (ascend it: θ ← θ + ε·update) and
      ``loss`` the mean loss of the first inner minibatch before adaptation.
    """
    check_choice(method, "method", METHODS)
    check_lr(inner_lr, "inner_lr")
    check_positive_int(steps, "steps", 0)
    if method == "reptile":
        check_lr(reptile_inner_lr, "reptile_inner_lr")
        check_positive_int(reptile_steps, "reptile_steps", 1)

        def task_phi(params, x, y):
            phi = params
            for sl in batches(int(x.shape[0]), reptile_batch_size, reptile_steps):
                g = grad(lambda p: loss_fn(forward(p, x[sl]), y[sl]))(phi)
                phi = {k: phi[k] - reptile_inner_lr * g[k] for k in phi}
            first = batches(int(x.shape[0]), reptile_batch_size, 1)[0]
            return phi, loss_fn(forward(params, x[first]), y[first])

        def step(params, x_support, y_support, x_query, y_query):
            x = torch.cat([x_support, x_query], dim=1)
            y = torch.cat([y_support, y_query], dim=1)
            theta = {k: v.detach() for k, v in params.items()}
            phi, losses = vmap(task_phi, in_dims=(None, 0, 0))(theta, x, y)
            return losses.mean().detach(), {k: (phi[k].mean(0) - theta[k]).detach() for k in theta}

        return step

    if method in ("maml", "fomaml"):  # chapter 6's vectorised MAML: one source of truth
        return make_meta_gradient_fn(inner_lr=inner_lr, steps=steps, first_order=method == "fomaml",
                                     forward=forward, loss_fn=loss_fn)

    def task_loss(params, xs, ys, xq, yq):
        keys = check_head(params, head)
        p = params
        for _ in range(steps):
            sub = {k: p[k] for k in keys}
            g = grad(lambda s: loss_fn(forward({**p, **s}, xs), ys))(sub)
            p = {**p, **{k: p[k] - inner_lr * g[k] for k in keys}}
        return loss_fn(forward(p, xq), yq)

    def meta_loss(params, xs, ys, xq, yq):
        return vmap(task_loss, in_dims=(None, 0, 0, 0, 0))(params, xs, ys, xq, yq).mean()

    def step(params, x_support, y_support, x_query, y_query):
        theta = {k: v.detach() for k, v in params.items()}
        g, loss = grad_and_value(meta_loss)(theta, x_support, y_support, x_query, y_query)
        return loss.detach(), {k: v.detach() for k, v in g.items()}

    return step


def train_meta_method(method: str, params: dict[str, np.ndarray], sample_tasks: Callable, *,
                      n_iterations: int = 1000, outer_lr: float = 1e-3, epsilon_start: float = 1.0,
                      epsilon_end: float = 0.0, eval_fn: Callable | None = None, eval_every: int = 100,
                      progress: bool = True, num_threads: int | None = 1,
                      **step_kwargs) -> tuple[dict[str, np.ndarray], dict]:
    """Meta-train with one of :data:`METHODS` and measure its cost.

    Args:
        method: ``"maml"``, ``"fomaml"``, ``"anil"`` (Adam on the meta-gradient, ``outer_lr``) or
            ``"reptile"`` (θ ← θ + ε_i·direction with ε_i from :func:`reptile_epsilon`).
        params: NumPy initial weights (not modified).
        sample_tasks: ``sample_tasks(i) -> (x_support, y_support, x_query, y_query)`` NumPy
            arrays with tasks on the leading axis, for meta-iteration ``i``.
        n_iterations: meta-iterations (>= 1).
        eval_fn: optional ``eval_fn(params_numpy) -> float``, called every ``eval_every``
            iterations and at the end (its time is not counted).
        num_threads: PyTorch intra-op threads during training (restored afterwards; None leaves
            the setting alone). The per-task tensors here are tiny, so extra threads only add
            synchronisation; on a busy 1-2-core machine (Binder, a shared CI box) two OpenMP
            threads fighting for the cores made a sinusoid MAML step ~30x slower (7 ms with one
            thread, 250 ms with two, measured while writing this chapter).
        step_kwargs: passed to :func:`make_meta_step`.

    Returns:
        ``(params, history)``: final NumPy weights and a dict with ``loss`` (per iteration),
        ``eval_iterations``/``eval`` (the ``eval_fn`` curve), ``seconds_per_iteration`` (meta-step
        and update time only, excluding task sampling, evaluation and the first iteration, whose
        time is ``trace_seconds``), ``peak_memory_mb`` (peak RSS
        increase during training, see :class:`course_utils.chapters.ch07.PeakMemory`).
    """
    check_choice(method, "method", METHODS)
    n_iterations = check_positive_int(n_iterations, "n_iterations")
    eval_every = check_positive_int(eval_every, "eval_every")
    if method != "reptile":
        check_lr(outer_lr, "outer_lr")
    else:
        reptile_epsilon(0, n_iterations, epsilon_start=epsilon_start, epsilon_end=epsilon_end)
    step = make_meta_step(method, **step_kwargs)
    theta = {k: torch.tensor(np.asarray(v, np.float32)) for k, v in params.items()}
    opt_params = [torch.nn.Parameter(v.clone()) for v in theta.values()] if method != "reptile" else []
    opt = torch.optim.Adam(opt_params, lr=outer_lr) if opt_params else None
    names = list(theta)
    hist = {"loss": [], "eval_iterations": [], "eval": []}
    if num_threads is not None:
        check_positive_int(num_threads, "num_threads")
    old_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        final, hist = _train_loop(method, step, theta, names, opt, opt_params, hist, sample_tasks,
                                  n_iterations, epsilon_start, epsilon_end, eval_fn, eval_every, progress)
    finally:
        torch.set_num_threads(old_threads)
    return final, hist


def _train_loop(method, step, theta, names, opt, opt_params, hist, sample_tasks, n_iterations,
                epsilon_start, epsilon_end, eval_fn, eval_every, progress):
    from tqdm.auto import trange

    seconds, trace = 0.0, 0.0
    with PeakMemory() as mem:
        for i in trange(n_iterations, desc=method, disable=not progress, leave=False):
            if eval_fn is not None and i % eval_every == 0:
                hist["eval_iterations"].append(i)
                hist["eval"].append(float(eval_fn({k: v.numpy().copy() for k, v in theta.items()})))
            batch = as_task_tensors(*sample_tasks(i))
            t0 = time.perf_counter()
            loss, update = step(theta, *batch)
            if method == "reptile":
                eps = reptile_epsilon(i, n_iterations, epsilon_start=epsilon_start, epsilon_end=epsilon_end)
                theta = {k: theta[k] + eps * update[k] for k in names}
            else:
                for p, k in zip(opt_params, names):
                    p.grad = update[k]
                opt.step()
                theta = {k: p.detach().clone() for k, p in zip(names, opt_params)}
            dt = time.perf_counter() - t0
            if i == 0:
                trace = dt
            else:
                seconds += dt
            hist["loss"].append(float(loss))
    final = {k: v.numpy().astype(np.float32) for k, v in theta.items()}
    return finish_history(hist, final, eval_fn, n_iterations, seconds, trace, mem.peak_mb)
