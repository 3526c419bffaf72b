"""TensorFlow objectives for chapters 3-5: regularised fine-tuning and function-space priors.

Mirrors :mod:`course_utils.torch.objectives` name for name, with the same conventions: NumPy
weights at rest; M models fine-tuned at once on a leading model axis (weights (M, in, out),
biases (M, 1, out)); objective mean_i (f(x_i) − y_i)² + λ·penalty; the same optimisers (Adam is
the course's one Adam, :func:`course_utils.tensorflow.adam_step`), so both frameworks produce the
same numbers to float32 tolerance. Gradients come from ``tf.GradientTape``; the fine-tuning step
is a ``tf.function``.
"""
from __future__ import annotations

from typing import Sequence

from course_utils.env import configure_tensorflow_env

configure_tensorflow_env()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from course_utils.nets import init_mlp, layer_sizes  # noqa: E402
from course_utils.seed import check_rng  # noqa: E402
from course_utils.sweeps import check_sweep_args, grid_and_prior, sweep_result  # noqa: E402
from course_utils.tasks import sample_sinusoid_tasks  # noqa: E402
from course_utils.tensorflow.core import (adam_init, adam_step, from_numpy, mlp_forward,  # noqa: E402
                                          to_numpy, to_tensor)
from course_utils.validation import (check_array, check_bool, check_choice, check_float, check_int,  # noqa: E402
                                     check_lam, check_lam_per_model, check_names, check_params, check_positive_int,
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


def pretrain_sinusoid_mlp(*, sizes: tuple[int, ...] = (1, 40, 40, 1), steps: int = 1500,
                          n_tasks: int = 25, k_shot: int = 10, lr: float = 3e-3,
                          rng: np.random.Generator | int | None = 0
                          ) -> tuple[dict[str, np.ndarray], list[float]]:
    """Pretrain one MLP on many sinusoid source tasks by plain joint regression.

    Mirrors :func:`course_utils.torch.pretrain_sinusoid_mlp`: same initial weights, same data,
    same Adam updates (``steps``, ``n_tasks``, ``k_shot`` >= 1; ``lr`` finite and > 0).
    Returns ``(params, history)`` (NumPy weights θ₀, loss per step).
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
    var = from_numpy(theta0)
    names = list(var)
    state = adam_init(var)  # tf.Variables, created outside the tf.function

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(mlp_forward(var, x) - y))
        grads = tape.gradient(loss, [var[k] for k in names])
        adam_step(var, dict(zip(names, grads)), state, lr=lr)
        return loss

    history = [float(step(xs[t], ys[t])) for t in range(steps)]
    return to_numpy(var), history


# ------------------------------------------------------------------ stacking and penalties
def stack_params(params: dict[str, np.ndarray], m: int) -> dict[str, tf.Tensor]:
    """Copy a NumPy parameter dict ``m`` times on a new leading model axis.

    Weights become (m, fan_in, fan_out) and biases (m, 1, fan_out), so that
    :func:`course_utils.tensorflow.mlp_forward` maps x (m, n, in) → (m, n, out).
    """
    m = check_positive_int(m, "m")
    check_params(params, mlp=True)
    out = {}
    for k, v in params.items():
        v = np.asarray(v, dtype=np.float32)
        if k.startswith("b"):
            v = v.reshape(1, -1)
        out[k] = to_tensor(np.broadcast_to(v[None], (m,) + v.shape))
    return out


def _sq_norm(tensors) -> tf.Tensor:
    return tf.add_n([tf.reduce_sum(tf.reshape(tf.square(t), [tf.shape(t)[0], -1]), axis=1)
                     for t in tensors])


def l2_penalty(params: dict) -> tf.Tensor:
    """Weight decay R(θ) = ‖θ‖², per model of a stacked dict: → (m,)."""
    check_params(params, mlp=True)
    return _sq_norm(list(params.values()))


def l2sp_penalty(params: dict, anchor: dict) -> tf.Tensor:
    """L2-SP (Li, Grandvalet & Davoine 2018) R(θ) = ‖θ − θ₀‖², per model: → (m,).

    ``anchor`` must have the keys and shapes of ``params``.
    """
    check_params(params, mlp=True)
    check_same_keys(params, anchor, "anchor")
    return _sq_norm([params[k] - anchor[k] for k in params])


def proximal_penalty(params: dict, anchor: dict) -> tf.Tensor:
    """iMAML's proximal term ½‖φ − θ‖² (Rajeswaran et al. 2019), per model: → (m,)."""
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
    m = tf.shape(next(iter(params.values())))[0]
    grid = tf.broadcast_to(x_grid[None], tf.concat([[m], tf.shape(x_grid)], axis=0))
    pred = mlp_forward(params, grid)
    return tf.reduce_mean(tf.square(pred - f_prior[None]), axis=[1, 2])


def function_space_penalty(params: dict, x_grid, f_prior) -> tf.Tensor:
    """D(f_φ, f*) = mean over a grid of (f_φ(x_g) − f*(x_g))², per model: → (m,).

    ``x_grid`` and ``f_prior`` are (G, 1), shared by all models.
    """
    check_params(params, mlp=True)
    _check_grid(x_grid, f_prior)
    return _function_space_penalty(params, to_tensor(x_grid, "float32"), to_tensor(f_prior, "float32"))


def _objective(params, x_support, y_support, lam, penalty, anchor, x_grid, f_prior):
    """:func:`regularised_objective` without the argument checks (runs inside the tf.function)."""
    data = tf.reduce_mean(tf.square(mlp_forward(params, x_support) - y_support), axis=[1, 2])
    if penalty == "l2":
        reg = _sq_norm(list(params.values()))
    elif penalty == "l2sp":
        reg = _sq_norm([params[k] - anchor[k] for k in params])
    elif penalty == "proximal":
        reg = 0.5 * _sq_norm([params[k] - anchor[k] for k in params])
    else:
        reg = _function_space_penalty(params, x_grid, f_prior)
    return data + lam * reg


def regularised_objective(params, x_support, y_support, lam, *, penalty: str = "l2sp",
                          anchor=None, x_grid=None, f_prior=None) -> tf.Tensor:
    """Per-model objective mean_i (f(x_i) − y_i)² + λ·penalty: stacked params, x (m, K, 1) → (m,).

    Mirrors the PyTorch function (``lam`` >= 0, a number or (m,); ``anchor`` for ``l2sp``/
    ``proximal``; ``x_grid``/``f_prior`` (G, 1) for ``function``).
    """
    check_choice(penalty, "penalty", PENALTIES)
    x_support, y_support = check_regression_call(params, x_support, y_support, x_grid=x_grid, f_prior=f_prior)
    if tf.executing_eagerly() or not isinstance(lam, tf.Tensor):  # a symbolic λ has no value to check
        check_lam(lam, "lam", x_support.shape[0])
    if penalty in ("l2sp", "proximal"):
        if anchor is None:
            raise ValueError(f"anchor (the stacked θ₀) is needed for penalty {penalty!r}, got None")
        check_same_keys(params, anchor, "anchor")
    if penalty == "function":
        _check_grid(x_grid, f_prior)
        x_grid, f_prior = to_tensor(x_grid, "float32"), to_tensor(f_prior, "float32")
    if not isinstance(lam, (int, float, tf.Tensor, tf.Variable)):  # a NumPy array or list: one λ per model
        lam = to_tensor(lam, "float32")
    return _objective(params, to_tensor(x_support, "float32"), to_tensor(y_support, "float32"), lam,
                      penalty, anchor, x_grid, f_prior)


def _grid_and_prior(params, x_grid, f_prior):
    x_grid, f_prior = grid_and_prior(params, x_grid, f_prior)
    return to_tensor(x_grid), to_tensor(f_prior)


@tf.function(reduce_retracing=True)
def _objective_and_grads(theta, trainable, x, y, lam, anchor, grid, prior, penalty):
    with tf.GradientTape() as tape:
        tape.watch([theta[k] for k in trainable])
        obj = _objective(theta, x, y, lam, penalty, anchor, grid, prior)
        scaled = tf.reduce_sum(obj / (1.0 + lam))
    grads = tape.gradient(scaled, [theta[k] for k in trainable])
    return obj, dict(zip(trainable, grads))


def finetune(params: dict[str, np.ndarray], x_support, y_support, lam, *, penalty: str = "l2sp",
             anchor: dict[str, np.ndarray] | None = None, x_grid=None, f_prior=None,
             steps: int = 100, lr: float = 0.005, optimizer: str = "momentum", momentum: float = 0.9,
             trainable: Sequence[str] | None = None, return_history: bool = False):
    """Fine-tune M copies of ``params`` at once, model m on task m with weight ``lam[m]``.

    Mirrors :func:`course_utils.torch.finetune` (same arguments, same checks, same optimiser,
    same result to float32 tolerance; with Adam, coordinates whose gradient is ~0 make the
    comparison fragile): ``steps`` full-batch steps on J/(1 + λ) with
    J = mean_i (f_θ(x_i) − y_i)² + λ·penalty(θ). Returns stacked NumPy weights (M, ...), and the
    (steps, M) history of J with ``return_history``.
    """
    x_support, y_support = check_regression_call(params, x_support, y_support, x_grid=x_grid, f_prior=f_prior)
    check_choice(penalty, "penalty", PENALTIES)
    check_choice(optimizer, "optimizer", _OPTIMIZERS)
    steps = check_int(steps, "steps", 0)
    lr = check_float(lr, "lr", 0.0, low_open=True)
    momentum = check_float(momentum, "momentum", 0.0, 1.0, high_open=True)
    return_history = check_bool(return_history, "return_history")
    x, y = to_tensor(x_support, "float32"), to_tensor(y_support, "float32")
    if len(x.shape) != 3 or x.shape != y.shape:
        raise ValueError(f"x_support and y_support must both be (M, K, 1), got {tuple(x.shape)} "
                         f"and {tuple(y.shape)}")
    m = int(x.shape[0])
    lam_t = to_tensor(check_lam_per_model(check_lam(lam, "lam", m), m))
    trainable = check_trainable(params, None if trainable is None else check_names(trainable, "trainable", params))
    theta = stack_params(params, m)
    if anchor is not None:
        check_same_keys(params, anchor, "anchor")
    anchor_t = stack_params(params if anchor is None else anchor, m)
    grid_t, prior_t = (_grid_and_prior(params, x_grid, f_prior) if penalty == "function"
                       else (tf.zeros((1, 1)), tf.zeros((1, 1))))
    live = {k: tf.Variable(theta[k], trainable=False) for k in trainable}
    state = adam_init(live) if optimizer == "adam" else None
    velocity = {k: tf.zeros_like(theta[k]) for k in trainable} if optimizer == "momentum" else {}
    history = []
    for _ in range(steps):
        current = {**theta, **{k: v.value() for k, v in live.items()}}
        obj, grads = _objective_and_grads(current, tuple(trainable), x, y, lam_t, anchor_t, grid_t,
                                          prior_t, penalty)
        if optimizer == "adam":
            adam_step(live, grads, state, lr=lr)
        elif optimizer == "momentum":
            for k in trainable:
                velocity[k] = momentum * velocity[k] + grads[k]
                live[k].assign_sub(lr * velocity[k])
        else:
            for k in trainable:
                live[k].assign_sub(lr * grads[k])
        if return_history:
            history.append(obj.numpy().copy())
    out = to_numpy({**theta, **live})
    if return_history:
        return out, np.array(history, dtype=np.float32).reshape(steps, m)
    return out


def lambda_sweep(params: dict[str, np.ndarray], tasks, lambdas, *, k_shots: Sequence[int] = (5,),
                 penalties: Sequence[str] = ("l2", "l2sp"), x_eval=None, steps: int = 100,
                 lr: float = 0.005, optimizer: str = "momentum", progress: bool = False,
                 **penalty_kwargs) -> dict:
    """Test MSE against λ for several penalties and support sizes K, all models in one batch.

    Mirrors :func:`course_utils.torch.lambda_sweep` (same arguments and checks); returns
    ``{"lambdas", "k_shots", "test_mse": {penalty: (nK, L)}, "sem": {penalty: (nK, L)},
    "per_task": {penalty: (nK, T, L)}}``.
    """
    lambdas, k_shots, x_eval = check_sweep_args(tasks, lambdas, k_shots, penalties, PENALTIES, x_eval)
    check_params(params, mlp=True)
    steps = check_int(steps, "steps", 0)
    lr = check_float(lr, "lr", 0.0, low_open=True)
    check_choice(optimizer, "optimizer", _OPTIMIZERS)
    progress = check_bool(progress, "progress")
    y_eval = tasks.true_function(x_eval)
    n_t, n_l = tasks.n_tasks, lambdas.size
    per_task = {p: np.zeros((len(k_shots), n_t, n_l), dtype=np.float64) for p in penalties}
    x_e = to_tensor(np.broadcast_to(x_eval.reshape(1, -1, 1), (n_t * n_l, x_eval.size, 1)))
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(k_shots) * len(penalties), desc="λ sweep", leave=False)
    for ik, k in enumerate(k_shots):
        xs = np.repeat(tasks.x_support[:, :k], n_l, axis=0)
        ys = np.repeat(tasks.y_support[:, :k], n_l, axis=0)
        lam = np.tile(lambdas, n_t)
        for p in penalties:
            fitted = finetune(params, xs, ys, lam, penalty=p, steps=steps, lr=lr, optimizer=optimizer,
                              **penalty_kwargs)
            pred = mlp_forward({k_: to_tensor(v) for k_, v in fitted.items()}, x_e).numpy()[..., 0]
            per_task[p][ik] = np.mean((pred.reshape(n_t, n_l, -1) - y_eval[:, None, :]) ** 2, axis=-1)
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    return sweep_result(lambdas, k_shots, per_task, n_t)


# ------------------------------------------------------------------ exact last-layer solution
def last_layer_features(params: dict[str, np.ndarray], x) -> tf.Tensor:
    """Features of the last layer with a constant 1 appended: x (n, 1) → (n, hidden + 1)."""
    check_params(params, mlp=True)
    check_array(x, "x", ndim=2, last=mlp_dims(params)[0], dtype="real")
    n = len(layer_sizes(params)) - 1
    h = to_tensor(x, "float32")
    for i in range(n - 1):
        h = tf.nn.relu(tf.matmul(h, params[f"w{i}"]) + params[f"b{i}"])
    return tf.concat([h, tf.ones_like(h[:, :1])], axis=1)


def last_layer_closed_form(params: dict[str, np.ndarray], x_support, y_support, lam: float, *,
                           penalty: str = "l2sp", x_grid=None, f_prior=None) -> dict[str, np.ndarray]:
    """Exact minimiser when only the last layer is trained (mirrors the PyTorch function):
    solve (HᵀH/K + λM) u = Hᵀy/K + λt in float64 (the solution nearest u₀ where singular).
    Returns ``params`` with the new last layer."""
    check_choice(penalty, "penalty", PENALTIES)
    x_support, y_support = check_regression_call(params, x_support, y_support, tasks_axis=False,
                                                 x_grid=x_grid, f_prior=f_prior)
    lam = check_float(lam, "lam", 0.0)
    last = len(layer_sizes(params)) - 2
    h = tf.cast(last_layer_features(params, x_support), tf.float64)
    # float64 on purpose (the solve is done in double precision); to_tensor's float32 would round y
    y = tf.constant(np.asarray(y_support, dtype=np.float64).reshape(-1, 1))
    k, d = h.shape
    if y.shape[0] != k:
        raise ValueError(f"x_support and y_support must hold the same number of points, got {k} and {y.shape[0]}")
    u0 = tf.cast(tf.concat([to_tensor(params[f"w{last}"]), tf.reshape(to_tensor(params[f"b{last}"]), (1, -1))],
                           axis=0), tf.float64)
    if penalty == "function":
        grid, prior = _grid_and_prior(params, x_grid, f_prior)
        hg = tf.cast(last_layer_features(params, grid), tf.float64)
        prior = tf.matmul(hg, u0) if f_prior is None else tf.cast(prior, tf.float64)
        metric = tf.matmul(hg, hg, transpose_a=True) / hg.shape[0]
        target = tf.matmul(hg, prior, transpose_a=True) / hg.shape[0]
    else:
        scale = 0.5 if penalty == "proximal" else 1.0
        metric = scale * tf.eye(d, dtype=tf.float64)
        target = tf.matmul(metric, tf.zeros_like(u0) if penalty == "l2" else u0)
    a = tf.matmul(h, h, transpose_a=True) / k + lam * metric
    rhs = tf.matmul(h, y - tf.matmul(h, u0), transpose_a=True) / k + lam * (target - tf.matmul(metric, u0))
    u = u0 + tf.matmul(tf.linalg.pinv(a, rcond=1e-10), rhs)  # the minimiser nearest u₀
    u = u.numpy()
    out = {kk: np.array(v, copy=True) for kk, v in params.items()}
    out[f"w{last}"] = u[:-1].astype(np.float32)
    out[f"b{last}"] = u[-1].astype(np.float32).reshape(-1)
    return out
