"""The course's one meta-training API in PyTorch: :func:`meta_train` for every method.

Mirrors :mod:`course_utils.tensorflow.training` name for name. The loop itself is
framework-free (:func:`course_utils.training.run_meta_loop`); this module supplies one
iteration: the method's meta-step (built by a factory registered in :data:`METHODS`), then
Adam on the gradient (:func:`course_utils.torch.adam_step`) or Reptile's interpolation
θ ← θ + ε_i·direction.

Built-in methods: ``"maml"`` (second order; ``first_order=True`` gives FOMAML), ``"fomaml"``,
``"reptile"``, ``"anil"`` and ``"pretrain"`` (the pooled baseline of Finn et al.: no inner loop,
one model trained on all tasks' support and query points). A later chapter adds its own with
:func:`register_meta_method`.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.func import grad, grad_and_value, vmap

from course_utils.env import course_device
from course_utils.nets import check_head
from course_utils.seed import check_rng
from course_utils.training import MetaHistory, MethodRegistry, batches, reptile_epsilon, run_meta_loop
from course_utils.validation import check_inner_loop, check_lr, check_meta_train, check_positive_int
from course_utils.torch.core import adam_init, adam_step, as_task_tensors, mlp_forward, mse_loss, to_numpy
from course_utils.torch.core import num_threads as pin_threads
from course_utils.torch.meta import make_meta_gradient_fn

__all__ = ["METHODS", "register_meta_method", "make_meta_step", "meta_train", "pretrain_baseline"]

#: The methods :func:`meta_train` knows (same names in both frameworks).
METHODS = MethodRegistry()


def register_meta_method(name: str, make_step: Callable, *, update: str = "gradient", doc: str = ""):
    """Make ``meta_train(name, ...)`` available.

    Args:
        name: the method's name.
        make_step: ``make_step(*, inner_lr, steps, first_order, forward, loss_fn, **options)``
            returning ``step(params, x_support, y_support, x_query, y_query) -> (loss, update)``
            on tensors (``params``: a dict of detached tensors; ``update``: a dict like it).
        update: ``"gradient"`` (Adam descends ``update``) or ``"direction"`` (θ ← θ + ε·update).
    """
    return METHODS.register(name, make_step, update=update, doc=doc)


# --------------------------------------------------------------------------- built-in methods
def _maml_step(*, inner_lr, steps, first_order, forward, loss_fn, chunk_size=None):
    return make_meta_gradient_fn(inner_lr=inner_lr, steps=steps, first_order=first_order,
                                 forward=forward, loss_fn=loss_fn, chunk_size=chunk_size)


def _fomaml_step(*, first_order=True, **kw):
    return _maml_step(first_order=True, **kw)


def _anil_step(*, inner_lr, steps, first_order, forward, loss_fn, head=None):
    check_lr(inner_lr, "inner_lr")
    steps = check_positive_int(steps, "steps", 0)

    def task_loss(params, xs, ys, xq, yq):
        keys = check_head(params, head)
        p = params
        for _ in range(steps):
            sub = {k: p[k] for k in keys}
            g = grad(lambda s, p=p: loss_fn(forward({**p, **s}, xs), ys))(sub)
            if first_order:
                g = {k: v.detach() for k, v in g.items()}
            p = {**p, **{k: p[k] - inner_lr * g[k] for k in keys}}
        return loss_fn(forward(p, xq), yq)

    def meta_loss(params, xs, ys, xq, yq):
        return vmap(task_loss, in_dims=(None, 0, 0, 0, 0))(params, xs, ys, xq, yq).mean()

    def step(params, x_support, y_support, x_query, y_query):
        theta = {k: v.detach() for k, v in params.items()}
        g, loss = grad_and_value(meta_loss)(theta, x_support, y_support, x_query, y_query)
        return loss.detach(), {k: v.detach() for k, v in g.items()}

    return step


def _reptile_step(*, inner_lr, steps, first_order, forward, loss_fn, reptile_inner_lr=0.02, reptile_steps=5,
                  reptile_batch_size=None):
    """Reptile's direction mean_i(φ̃_i − θ), support and query concatenated into each task's data;
    ``loss`` is the mean loss of the first inner minibatch before adaptation."""
    check_lr(reptile_inner_lr, "reptile_inner_lr")
    reptile_steps = check_positive_int(reptile_steps, "reptile_steps")

    def task_phi(params, x, y):
        phi = params
        for sl in batches(int(x.shape[0]), reptile_batch_size, reptile_steps):
            g = grad(lambda p, sl=sl: loss_fn(forward(p, x[sl]), y[sl]))(phi)
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


def _pretrain_step(*, inner_lr, steps, first_order, forward, loss_fn):
    """The pooled baseline: the gradient of one loss over every task's support and query points."""
    def pooled_loss(params, x_support, y_support, x_query, y_query):
        x = torch.cat([x_support.flatten(0, 1), x_query.flatten(0, 1)])
        y = torch.cat([y_support.flatten(0, 1), y_query.flatten(0, 1)])
        return loss_fn(forward(params, x), y)

    gv = grad_and_value(pooled_loss)

    def step(params, x_support, y_support, x_query, y_query):
        g, loss = gv({k: v.detach() for k, v in params.items()}, x_support, y_support, x_query, y_query)
        return loss.detach(), g

    return step


register_meta_method("maml", _maml_step, doc="MAML, second order (first_order=True: FOMAML); option chunk_size")
register_meta_method("fomaml", _fomaml_step, doc="first-order MAML; option chunk_size")
register_meta_method("reptile", _reptile_step, update="direction",
                     doc="Reptile; options reptile_inner_lr, reptile_steps, reptile_batch_size, epsilon_start/end")
register_meta_method("anil", _anil_step, doc="ANIL, inner loop on the head only; option head")
register_meta_method("pretrain", _pretrain_step, doc="pooled pretraining on all tasks (no inner loop)")


def make_meta_step(method: str, *, inner_lr: float = 0.01, steps: int = 1, first_order: bool = False,
                   forward: Callable = mlp_forward, loss_fn: Callable = mse_loss, **options) -> Callable:
    """The meta-step of ``method`` (see :data:`METHODS`):
    ``step(params, x_support, y_support, x_query, y_query) -> (loss, update)`` on tensors.

    ``update`` is the meta-gradient (descend it) for gradient methods and the direction
    mean_i(φ̃_i − θ) (ascend it) for Reptile. ``options`` are the method's own (e.g. ``head``
    for ANIL, ``reptile_batch_size`` for Reptile).
    """
    m = METHODS.get(method)
    check_inner_loop(inner_lr, steps, first_order, forward, loss_fn)
    return m.build(inner_lr=inner_lr, steps=steps, first_order=first_order, forward=forward, loss_fn=loss_fn,
                   **options)


def meta_train(method: str, params: dict[str, np.ndarray], sample_batch: Callable, *, n_iterations: int = 1000,
               inner_lr: float = 0.01, outer_lr: float = 1e-3, steps: int = 1, first_order: bool = False,
               forward: Callable = mlp_forward, loss_fn: Callable = mse_loss,
               rng: np.random.Generator | int | None = None, eval_fn: Callable | None = None,
               eval_every: int = 100, epsilon_start: float = 1.0, epsilon_end: float = 0.0,
               progress: bool = True, desc: str | None = None, num_threads: int | None = 1,
               block_size: int | None = None, **options) -> tuple[dict[str, np.ndarray], MetaHistory]:
    """Meta-train ``params`` with ``method`` on ``n_iterations`` meta-batches from ``sample_batch``.

    Args:
        method: a name in :data:`METHODS` (``"maml"``, ``"fomaml"``, ``"reptile"``, ``"anil"``,
            ``"pretrain"``, or one a chapter registered).
        params: initial weights θ₀ (NumPy dict; not modified).
        sample_batch: ``sample_batch(rng) -> (x_support, y_support, x_query, y_query, ...)``,
            NumPy arrays with tasks on axis 0 (extra items are ignored), e.g.
            ``lambda rng: sample_sinusoid_tasks(25, 10, 10, rng=rng)[:4]``. It must draw only
            from ``rng``: batches are sampled a block at a time (see ``block_size``).
        inner_lr, steps, first_order, forward, loss_fn: the inner loop (α, its SGD steps, whether
            its gradients are constants) and the model.
        outer_lr: Adam's step size for gradient methods (> 0).
        rng: generator or seed that ``sample_batch`` draws from (same seed → same task stream).
        eval_fn: ``eval_fn(params_numpy) -> float`` every ``eval_every`` iterations and at the end.
        epsilon_start, epsilon_end: Reptile's ε schedule (:func:`course_utils.training.reptile_epsilon`).
        num_threads: PyTorch threads during training (restored afterwards; None keeps the setting).
        block_size: meta-iterations sampled and converted to tensors at once (None: as many as
            fit in a few MB, :func:`course_utils.training.auto_block_size`; 1: one at a time).
            The same task stream either way, hence the same losses and weights.
        options: the method's own options (see :func:`make_meta_step`).

    Tensors live on :func:`course_utils.env.course_device` (the CPU unless ``COURSE_SCALE=paper``
    finds a GPU, or ``COURSE_DEVICE`` says otherwise). One iteration: the meta-step, then the
    course's Adam (``torch._foreach_*``) or Reptile's interpolation; losses stay tensors until the
    end of their block.

    Returns:
        ``(params, history)``: the meta-learned θ (NumPy) and a :class:`~course_utils.training.MetaHistory`.
    """
    m = METHODS.get(method)
    check_meta_train(params, sample_batch, inner_lr=inner_lr, steps=steps, first_order=first_order, forward=forward,
                     loss_fn=loss_fn, epsilon_start=epsilon_start, epsilon_end=epsilon_end)
    n_iterations = check_positive_int(n_iterations, "n_iterations")
    rng = check_rng(rng)
    if m.update == "gradient":
        check_lr(outer_lr, "outer_lr")
    else:
        reptile_epsilon(0, n_iterations, epsilon_start=epsilon_start, epsilon_end=epsilon_end)
    step = make_meta_step(method, inner_lr=inner_lr, steps=steps, first_order=first_order, forward=forward,
                          loss_fn=loss_fn, **options)
    device = torch.device(course_device())
    theta = {k: torch.tensor(np.asarray(v, np.float32), device=device) for k, v in params.items()}
    state = adam_init(theta) if m.update == "gradient" else None

    def run(i, xs, ys, xq, yq):
        loss, update = step(theta, xs, ys, xq, yq)
        if state is not None:
            adam_step(theta, update, state, lr=outer_lr)
        else:
            eps = reptile_epsilon(i, n_iterations, epsilon_start=epsilon_start, epsilon_end=epsilon_end)
            with torch.no_grad():
                torch._foreach_add_([theta[k] for k in update], [update[k] for k in update], alpha=eps)
        return loss

    def iterate(i, block):
        xs, ys, xq, yq = (a.to(device) for a in as_task_tensors(*tuple(block)[:4]))
        if block_size == 1:
            return run(i, xs, ys, xq, yq)
        losses = [run(i + j, xs[j], ys[j], xq[j], yq[j]) for j in range(xs.shape[0])]
        return torch.stack([torch.as_tensor(v, dtype=torch.float32, device=device) for v in losses]).cpu()

    with pin_threads(num_threads):
        hist = run_meta_loop(iterate, lambda r: tuple(sample_batch(r))[:4], n_iterations=n_iterations, rng=rng,
                             get_params=lambda: to_numpy(theta), method=method, framework="torch",
                             eval_fn=eval_fn, eval_every=eval_every, progress=progress, desc=desc,
                             block_size=block_size)
    return to_numpy(theta), hist


def pretrain_baseline(params: dict[str, np.ndarray], sample_batch: Callable, *, n_iterations: int = 1000,
                      lr: float = 1e-3, forward: Callable = mlp_forward, loss_fn: Callable = mse_loss,
                      rng: np.random.Generator | int | None = None, progress: bool = True,
                      desc: str | None = None, num_threads: int | None = 1
                      ) -> tuple[dict[str, np.ndarray], MetaHistory]:
    """The "pretrained on all tasks" baseline of Finn et al. (2017): ``meta_train("pretrain", ...)``,
    one model trained with Adam (step ``lr``) on the pooled support and query points of each batch."""
    check_lr(lr, "lr")
    return meta_train("pretrain", params, sample_batch, n_iterations=n_iterations, outer_lr=lr, steps=0,
                      forward=forward, loss_fn=loss_fn, rng=rng, progress=progress, desc=desc,
                      num_threads=num_threads)
