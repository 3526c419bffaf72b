"""PyTorch objectives for chapters 3-5: regularised fine-tuning and function-space priors.

Mirrors :mod:`course_utils.tensorflow.objectives` name for name.

Conventions (the same in both frameworks):

* Parameters at rest are NumPy dicts in the layout of :mod:`course_utils.nets`.
* Fine-tuning is vectorised over a leading *model* axis of size M (one model per
  λ value × task × regulariser): a stacked parameter dict has weights (M, fan_in, fan_out) and
  biases (M, 1, fan_out), so ``mlp_forward`` evaluates all M models with batched matmuls. This is
  the same computation as ``torch.func.vmap`` over M independent models, written so that the
  TensorFlow mirror is line for line the same.
* The objective of one model is ``mean_i (f(x_i) - y_i)² + λ·penalty``, the *mean* over the K
  support points (the article's sum Σ_i L equals K times the mean, so its λ is K times ours).
* Adam is the course's one Adam (:func:`course_utils.torch.adam_step`, ``torch.optim.Adam``'s
  arithmetic), the same update as in TensorFlow.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from course_utils.nets import init_mlp, layer_sizes
from course_utils.seed import check_rng
from course_utils.sweeps import check_sweep_args, grid_and_prior, sweep_result
from course_utils.tasks import sample_sinusoid_tasks
from course_utils.torch.core import adam_init, adam_step, from_numpy, mlp_forward, to_numpy, to_tensor
from course_utils.torch.core import num_threads as pin_threads
from course_utils.validation import (check_array, check_bool, check_choice, check_float, check_int, check_lam,
                                     check_lam_per_model, check_names, check_params, check_positive_int,
                                     check_regression_call, check_same_keys, check_trainable, mlp_dims)

__all__ = [
    # --- chapters 3 and 5: pretrained model, regularised fine-tuning, function-space priors
    "PENALTIES",
    "pretrain_sinusoid_mlp",
    "stack_params",
    "l2_penalty",
    "l2sp_penalty",
    "proximal_penalty",
    "function_space_penalty",
    "regularised_objective",
    "finetune",
    "lambda_sweep",
    "last_layer_features",
    "last_layer_closed_form",
]

# =====================================================================================
# Chapters 3 and 5: regularised fine-tuning (weight decay, L2-SP), function-space prior,
# iMAML's proximal term. (Chapter 4's distillation / KL helpers live in distill.py.)
# =====================================================================================

PENALTIES = ("l2", "l2sp", "proximal", "function")
_OPTIMIZERS = ("momentum", "gd", "adam")

# These models are tiny (batched 40×40 matmuls): splitting them over threads only costs
# synchronisation, and on a busy 1-2 core machine (Binder, CI) it is many times slower, so the
# training loops below run under ``num_threads(1)`` (the caller's setting is restored).


def pretrain_sinusoid_mlp(*, sizes: tuple[int, ...] = (1, 40, 40, 1), steps: int = 1500,
                          n_tasks: int = 25, k_shot: int = 10, lr: float = 3e-3,
                          rng: np.random.Generator | int | None = 0
                          ) -> tuple[dict[str, np.ndarray], list[float]]:
    """Pretrain one MLP on many sinusoid source tasks by plain joint regression.

    Every step draws ``n_tasks`` fresh tasks (Finn et al. 2017 distribution) with ``k_shot``
    points each, and takes one full-batch Adam step on the pooled mean squared error. A model
    that cannot tell tasks apart learns the best task-agnostic guess, E[y | x] over tasks
    (about −1.62 cos x for phases U[0, π]): that is the "prior function" f* of chapter 5 and
    the θ₀ that chapter 3 fine-tunes. Deterministic given ``rng``; the weights are initialised
    by :func:`course_utils.nets.init_mlp` and the data drawn in NumPy, so the TensorFlow mirror
    sees the same numbers.

    Args:
        sizes: layer widths (input 1, output 1).
        steps: Adam steps (>= 1).
        n_tasks, k_shot: tasks per step and points per task (>= 1).
        lr: Adam learning rate (finite, > 0).
        rng: generator or seed (weights first, then data).

    Returns:
        ``(params, history)``: the NumPy weights θ₀ and the training loss of every step.
    """
    steps = check_positive_int(steps, "steps")
    n_tasks = check_positive_int(n_tasks, "n_tasks")
    k_shot = check_positive_int(k_shot, "k_shot")
    lr = check_float(lr, "lr", 0.0, low_open=True)
    rng = check_rng(rng)
    theta0 = init_mlp(sizes, rng=rng)
    data = sample_sinusoid_tasks(steps * n_tasks, k_shot, 1, rng=rng)
    xs = to_tensor(data.x_support.reshape(steps, n_tasks * k_shot, 1))
    ys = to_tensor(data.y_support.reshape(steps, n_tasks * k_shot, 1))
    params = from_numpy(theta0)
    names = list(params)
    state = adam_init(params)
    history = []
    with pin_threads(1):
        for t in range(steps):
            loss = torch.mean((mlp_forward(params, xs[t]) - ys[t]) ** 2)
            grads = torch.autograd.grad(loss, [params[k] for k in names])
            adam_step(params, dict(zip(names, grads)), state, lr=lr)
            history.append(float(loss.detach()))
    return to_numpy(params), history


# ------------------------------------------------------------------ stacking and penalties
def stack_params(params: dict[str, np.ndarray], m: int) -> dict[str, torch.Tensor]:
    """Copy a NumPy parameter dict ``m`` times on a new leading model axis.

    Weights become (m, fan_in, fan_out) and biases (m, 1, fan_out), so that
    :func:`course_utils.torch.mlp_forward` maps x (m, n, in) → (m, n, out).
    """
    m = check_positive_int(m, "m")
    check_params(params, mlp=True)
    out = {}
    for k, v in params.items():
        v = to_tensor(v, "float32")
        if k.startswith("b"):
            v = v.reshape(1, -1)
        out[k] = v.unsqueeze(0).repeat(m, *([1] * v.ndim)).contiguous()
    return out


def _sq_norm(tensors) -> torch.Tensor:
    """Σ over parameters of squared entries, per model: stacked tensors → (m,)."""
    return sum(torch.sum(t.reshape(t.shape[0], -1) ** 2, dim=1) for t in tensors)


def l2_penalty(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Weight decay R(θ) = ‖θ‖², per model of a stacked dict: → (m,)."""
    check_params(params, mlp=True)
    return _sq_norm(params.values())


def l2sp_penalty(params: dict[str, torch.Tensor], anchor: dict[str, torch.Tensor]) -> torch.Tensor:
    """L2-SP (Li, Grandvalet & Davoine 2018) R(θ) = ‖θ − θ₀‖², per model: → (m,).

    ``anchor`` must have the keys and shapes of ``params``.
    """
    check_params(params, mlp=True)
    check_same_keys(params, anchor, "anchor")
    return _sq_norm(params[k] - anchor[k] for k in params)


def proximal_penalty(params: dict[str, torch.Tensor], anchor: dict[str, torch.Tensor]) -> torch.Tensor:
    """iMAML's proximal term ½‖φ − θ‖² (Rajeswaran et al. 2019), per model: → (m,).

    Multiplied by λ this is λ/2 ‖φ − θ‖²: the same as L2-SP with λ halved.
    """
    return 0.5 * l2sp_penalty(params, anchor)


def _check_grid(x_grid, f_prior) -> None:
    """The function-space prior's grid and values: both (G, 1) numbers."""
    if x_grid is None or f_prior is None:
        raise ValueError("x_grid and f_prior (both (G, 1)) are needed for the function-space penalty, "
                         f"got {type(x_grid).__name__} and {type(f_prior).__name__}")
    check_array(x_grid, "x_grid", ndim=2, last=1, dtype="real")
    check_array(f_prior, "f_prior", ndim=2, last=1, dtype="real")
    if tuple(x_grid.shape) != tuple(f_prior.shape):
        raise ValueError(f"x_grid and f_prior must both be (G, 1), got {tuple(x_grid.shape)} "
                         f"and {tuple(f_prior.shape)}")


def _function_space_penalty(params, x_grid, f_prior):
    m = next(iter(params.values())).shape[0]
    pred = mlp_forward(params, x_grid.unsqueeze(0).expand(m, -1, -1))
    return torch.mean((pred - f_prior.unsqueeze(0)) ** 2, dim=(1, 2))


def function_space_penalty(params: dict[str, torch.Tensor], x_grid: torch.Tensor,
                           f_prior: torch.Tensor) -> torch.Tensor:
    """D(f_φ, f*) = mean over a grid of (f_φ(x_g) − f*(x_g))², per model: → (m,).

    Args:
        params: stacked parameters (m models).
        x_grid: (G, 1) grid points, shared by all models.
        f_prior: (G, 1) values of the prior function f* on the grid.
    """
    check_params(params, mlp=True)
    _check_grid(x_grid, f_prior)
    return _function_space_penalty(params, to_tensor(x_grid, "float32"), to_tensor(f_prior, "float32"))


def _objective(params, x_support, y_support, lam, penalty, anchor, x_grid, f_prior):
    """:func:`regularised_objective` without the argument checks (the fine-tuning loop's hot path)."""
    data = torch.mean((mlp_forward(params, x_support) - y_support) ** 2, dim=(1, 2))
    if penalty == "l2":
        reg = _sq_norm(params.values())
    elif penalty == "l2sp":
        reg = _sq_norm(params[k] - anchor[k] for k in params)
    elif penalty == "proximal":
        reg = 0.5 * _sq_norm(params[k] - anchor[k] for k in params)
    else:
        reg = _function_space_penalty(params, x_grid, f_prior)
    return data + lam * reg


def regularised_objective(params, x_support, y_support, lam, *, penalty: str = "l2sp",
                          anchor=None, x_grid=None, f_prior=None) -> torch.Tensor:
    """Per-model objective mean_i (f(x_i) − y_i)² + λ·penalty: stacked params, x (m, K, 1) → (m,).

    ``lam`` is a number or an (m,) tensor/array, every entry >= 0. ``anchor`` (stacked) is θ₀ for
    ``l2sp``/``proximal``; ``x_grid``/``f_prior`` (G, 1) are needed for ``function``.
    """
    check_choice(penalty, "penalty", PENALTIES)
    x_support, y_support = check_regression_call(params, x_support, y_support, x_grid=x_grid, f_prior=f_prior)
    check_lam(lam, "lam", x_support.shape[0])
    if penalty in ("l2sp", "proximal"):
        if anchor is None:
            raise ValueError(f"anchor (the stacked θ₀) is needed for penalty {penalty!r}, got None")
        check_same_keys(params, anchor, "anchor")
    if penalty == "function":
        _check_grid(x_grid, f_prior)
        x_grid, f_prior = to_tensor(x_grid, "float32"), to_tensor(f_prior, "float32")
    if not isinstance(lam, (int, float, torch.Tensor)):  # a NumPy array or list: one λ per model
        lam = to_tensor(lam, "float32")
    return _objective(params, to_tensor(x_support, "float32"), to_tensor(y_support, "float32"), lam,
                      penalty, anchor, x_grid, f_prior)


def finetune(params: dict[str, np.ndarray], x_support, y_support, lam, *, penalty: str = "l2sp",
             anchor: dict[str, np.ndarray] | None = None, x_grid=None, f_prior=None,
             steps: int = 100, lr: float = 0.005, optimizer: str = "momentum", momentum: float = 0.9,
             trainable: Sequence[str] | None = None, return_history: bool = False):
    """Fine-tune M copies of ``params`` at once, model m on task m with weight ``lam[m]``.

    Full-batch ``steps`` of gradient descent with heavy-ball momentum (``"momentum"``, the
    default: v ← βv + g, θ ← θ − lr·v), plain gradient descent (``"gd"``) or Adam (``"adam"``) on

        J_m(θ) = mean_i (f_θ(x_i) − y_i)² + λ_m·penalty(θ),

    starting from ``params``. The gradient step uses J/(1 + λ), which has the same minimiser but
    a curvature bounded for every λ, so one learning rate is stable from λ = 0 to λ = 10⁴.
    (With Adam, λ‖θ‖² is *not* weight decay: Adam rescales each coordinate, so the penalty's
    gradient on weights the data barely touch moves them at full speed whatever λ is.)

    Args:
        params: NumPy start weights θ₀ (unstacked).
        x_support, y_support: (M, K, 1) arrays; M models, K points each.
        lam: scalar or (M,) non-negative weights λ.
        penalty: ``"l2"`` ‖θ‖², ``"l2sp"`` ‖θ − θ₀‖², ``"proximal"`` ½‖θ − θ₀‖², or
            ``"function"`` mean_g (f_θ(x_g) − f*(x_g))².
        anchor: the θ₀ of ``l2sp``/``proximal`` (default: ``params``).
        x_grid, f_prior: (G, 1) grid and prior values f*(x_g) for ``"function"``; by default
            41 points on [−5, 5] and f* = f_{params} (the pretrained model's prediction).
        steps: optimiser steps (>= 0). lr: step size (finite, > 0).
        optimizer: ``"momentum"``, ``"gd"`` or ``"adam"``. momentum: β in [0, 1).
        trainable: names of the parameters to update (default all; e.g. ``("w2", "b2")``
            fine-tunes only the last layer).
        return_history: also return the (steps, M) objective values.

    Returns:
        Stacked NumPy weights (M, ...) (biases (M, 1, out)); with ``return_history`` also the
        history array.
    """
    x_support, y_support = check_regression_call(params, x_support, y_support, x_grid=x_grid, f_prior=f_prior)
    check_choice(penalty, "penalty", PENALTIES)
    check_choice(optimizer, "optimizer", _OPTIMIZERS)
    steps = check_int(steps, "steps", 0)
    lr = check_float(lr, "lr", 0.0, low_open=True)
    momentum = check_float(momentum, "momentum", 0.0, 1.0, high_open=True)
    return_history = check_bool(return_history, "return_history")
    x, y = to_tensor(x_support, "float32"), to_tensor(y_support, "float32")
    if x.ndim != 3 or x.shape != y.shape:
        raise ValueError(f"x_support and y_support must both be (M, K, 1), got {tuple(x.shape)} "
                         f"and {tuple(y.shape)}")
    m = x.shape[0]
    lam_t = to_tensor(check_lam_per_model(check_lam(lam, "lam", m), m))
    trainable = check_trainable(params, None if trainable is None else check_names(trainable, "trainable", params))
    theta = stack_params(params, m)
    if anchor is not None:
        check_same_keys(params, anchor, "anchor")
    anchor_t = stack_params(params if anchor is None else anchor, m)
    grid_t = prior_t = None
    if penalty == "function":
        grid_t, prior_t = _grid_and_prior(params, x_grid, f_prior)
    live = {k: theta[k].requires_grad_(True) for k in trainable}
    state = adam_init(live) if optimizer == "adam" else None
    velocity = {k: torch.zeros_like(v) for k, v in live.items()} if optimizer == "momentum" else {}
    history = []
    with pin_threads(1):
        for _ in range(steps):
            obj = _objective(theta, x, y, lam_t, penalty, anchor_t, grid_t, prior_t)
            # Models are independent, so the gradient of the sum is every model's own gradient.
            # Dividing by 1 + λ keeps the minimiser and bounds the curvature for every λ.
            grads = dict(zip(trainable, torch.autograd.grad((obj / (1.0 + lam_t)).sum(),
                                                            [live[k] for k in trainable])))
            if optimizer == "adam":
                adam_step(live, grads, state, lr=lr)
            else:
                with torch.no_grad():
                    for k in trainable:
                        if optimizer == "momentum":
                            velocity[k] = momentum * velocity[k] + grads[k]
                            live[k].sub_(lr * velocity[k])
                        else:
                            live[k].sub_(lr * grads[k])
            if return_history:
                history.append(obj.detach().numpy().copy())
    out = to_numpy(theta)
    if return_history:
        return out, np.array(history, dtype=np.float32).reshape(steps, m)
    return out


def _grid_and_prior(params, x_grid, f_prior):
    x_grid, f_prior = grid_and_prior(params, x_grid, f_prior)
    return to_tensor(x_grid), to_tensor(f_prior)


def lambda_sweep(params: dict[str, np.ndarray], tasks, lambdas, *, k_shots: Sequence[int] = (5,),
                 penalties: Sequence[str] = ("l2", "l2sp"), x_eval=None, steps: int = 100,
                 lr: float = 0.005, optimizer: str = "momentum", progress: bool = False,
                 **penalty_kwargs) -> dict:
    """Test MSE against λ for several penalties and support sizes K, all models in one batch.

    For every K, every penalty, every task and every λ, fine-tune ``params`` on the task's first K
    support points (:func:`finetune`) and measure the MSE against the task's true function on
    ``x_eval`` (default 100 points on [−5, 5]).

    Args:
        params: NumPy start weights θ₀.
        tasks: :class:`course_utils.tasks.SinusoidTasks` with at least max(k_shots) support points.
        lambdas: (L,) non-negative λ values.
        k_shots: support sizes K.
        penalties: names from :data:`PENALTIES`.
        steps, lr, optimizer: :func:`finetune`'s schedule.
        progress: show a ``tqdm.auto`` bar over (K, penalty) batches.
        **penalty_kwargs: passed to :func:`finetune` (``x_grid``, ``f_prior``, ``anchor``).

    Returns:
        ``{"lambdas": (L,), "k_shots": (nK,), "test_mse": {penalty: (nK, L)}, "sem": {penalty:
        (nK, L)}, "per_task": {penalty: (nK, T, L)}}`` (NumPy, mean over tasks and its standard error).
    """
    lambdas, k_shots, x_eval = check_sweep_args(tasks, lambdas, k_shots, penalties, PENALTIES, x_eval)
    check_params(params, mlp=True)
    steps = check_int(steps, "steps", 0)
    lr = check_float(lr, "lr", 0.0, low_open=True)
    check_choice(optimizer, "optimizer", _OPTIMIZERS)
    progress = check_bool(progress, "progress")
    y_eval = tasks.true_function(x_eval)  # (T, E)
    n_t, n_l = tasks.n_tasks, lambdas.size
    per_task = {p: np.zeros((len(k_shots), n_t, n_l), dtype=np.float64) for p in penalties}
    x_e = to_tensor(np.broadcast_to(x_eval.reshape(1, -1, 1), (n_t * n_l, x_eval.size, 1)))
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(k_shots) * len(penalties), desc="λ sweep", leave=False)
    with pin_threads(1):
        for ik, k in enumerate(k_shots):
            xs = np.repeat(tasks.x_support[:, :k], n_l, axis=0)  # model index = task * L + λ index
            ys = np.repeat(tasks.y_support[:, :k], n_l, axis=0)
            lam = np.tile(lambdas, n_t)
            for p in penalties:
                fitted = finetune(params, xs, ys, lam, penalty=p, steps=steps, lr=lr, optimizer=optimizer,
                                  **penalty_kwargs)
                with torch.no_grad():
                    pred = mlp_forward({k_: to_tensor(v) for k_, v in fitted.items()}, x_e).numpy()[..., 0]
                mse = np.mean((pred.reshape(n_t, n_l, -1) - y_eval[:, None, :]) ** 2, axis=-1)
                per_task[p][ik] = mse
                if bar is not None:
                    bar.update()
    if bar is not None:
        bar.close()
    return sweep_result(lambdas, k_shots, per_task, n_t)


# ------------------------------------------------------------------ exact last-layer solution
def last_layer_features(params: dict[str, np.ndarray], x) -> torch.Tensor:
    """Features of the last layer with a constant 1 appended: x (n, 1) → (n, hidden + 1)."""
    check_params(params, mlp=True)
    check_array(x, "x", ndim=2, last=mlp_dims(params)[0], dtype="real")
    n = len(layer_sizes(params)) - 1
    h = to_tensor(x, "float32")
    for i in range(n - 1):
        h = torch.relu(h @ to_tensor(params[f"w{i}"]) + to_tensor(params[f"b{i}"]))
    return torch.cat([h, torch.ones_like(h[:, :1])], dim=1)


def last_layer_closed_form(params: dict[str, np.ndarray], x_support, y_support, lam: float, *,
                           penalty: str = "l2sp", x_grid=None, f_prior=None) -> dict[str, np.ndarray]:
    """Exact minimiser when only the last layer u = (w_last, b_last) is trained.

    With features H (K, d) (:func:`last_layer_features`) the objective (1/K)‖Hu − y‖² + λ·R(u)
    is a quadratic, minimised by solving (HᵀH/K + λM) u = Hᵀy/K + λt in float64, where

    * ``l2``: M = I, t = 0 (ridge regression);
    * ``l2sp``: M = I, t = u₀ the pretrained last layer; ``proximal``: M = I/2, t = u₀/2;
    * ``function``: M = H_gᵀH_g/G on the grid and t = H_gᵀf*/G (a *generalised* ridge).

    Where the system is singular (λ = 0 with K < d, dead ReLU features) the solution nearest
    u₀ is returned: the one gradient descent started at u₀ converges to.

    Args:
        params: NumPy weights θ₀ (their hidden layers stay fixed).
        x_support, y_support: (K, 1).
        lam: λ ≥ 0.

    Returns:
        ``params`` with the last layer replaced by the solution (NumPy, unstacked).
    """
    check_choice(penalty, "penalty", PENALTIES)
    x_support, y_support = check_regression_call(params, x_support, y_support, tasks_axis=False,
                                                 x_grid=x_grid, f_prior=f_prior)
    lam = check_float(lam, "lam", 0.0)
    last = len(layer_sizes(params)) - 2
    h = last_layer_features(params, x_support).double()
    # float64 on purpose (the solve is done in double precision); to_tensor's float32 would round y
    y = torch.from_numpy(np.array(y_support, dtype=np.float64)).reshape(-1, 1)
    k, d = h.shape
    if y.shape[0] != k:
        raise ValueError(f"x_support and y_support must hold the same number of points, got {k} and {y.shape[0]}")
    u0 = torch.cat([to_tensor(params[f"w{last}"]), to_tensor(params[f"b{last}"]).reshape(1, -1)]).double()
    if penalty == "function":
        grid, prior = _grid_and_prior(params, x_grid, f_prior)
        hg = last_layer_features(params, grid).double()
        # The default prior f* = f_θ₀ is H_g u₀ exactly: compute it in float64 too.
        prior = hg @ u0 if f_prior is None else prior.double()
        metric = hg.T @ hg / hg.shape[0]
        target = hg.T @ prior / hg.shape[0]
    else:
        scale = 0.5 if penalty == "proximal" else 1.0
        metric = scale * torch.eye(d, dtype=torch.float64)
        target = metric @ (torch.zeros_like(u0) if penalty == "l2" else u0)
    # Solve for the step δ = u − u₀: where the system is singular, the minimum-norm δ is the
    # minimiser nearest u₀, which is also where gradient descent started at u₀ converges.
    a = h.T @ h / k + lam * metric
    rhs = h.T @ (y - h @ u0) / k + lam * (target - metric @ u0)
    u = u0 + torch.linalg.pinv(a, rtol=1e-10, hermitian=True) @ rhs
    out = {kk: np.array(v, copy=True) for kk, v in params.items()}
    out[f"w{last}"] = u[:-1].float().numpy()
    out[f"b{last}"] = u[-1].float().numpy().reshape(-1)
    return out
