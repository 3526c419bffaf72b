"""Learned update rules (chapter 10), the framework-free part: parameter layouts and references.

Two learned inner loops plug into the course's one ``meta_train`` (``method="metasgd"`` and
``method="metalstm"``; see :mod:`course_utils.torch.learned` and
:mod:`course_utils.tensorflow.learned`, mirrored). Their parameters are ordinary parameter dicts:

* **Meta-SGD** (Li et al. 2017): the learner's weights θ (e.g. ``w0, b0, ...``) plus one step
  size per weight, ``"lr_" + name`` with the shape of ``name``: φ = θ − α ⊙ ∇L(θ).
* **Meta-learner LSTM** (Ravi & Larochelle 2017): the learner's initial weights θ₀ plus the
  optimiser's weights ``opt_*``: a coordinate-wise LSTM (one small LSTM shared by every
  coordinate of θ) whose hidden state feeds a second cell with the learner's weights *as its cell
  state*: θ_t = f_t ⊙ θ_{t−1} − i_t ⊙ ∇_t, the forget gate f a learned weight decay and the input
  gate i a learned step size.

NumPy references here (used by tests and exercises): :func:`preprocess_gradient` (Andrychowicz
et al. 2016), :func:`meta_sgd_step_numpy` and :func:`meta_lstm_cell_numpy`.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from course_utils.seed import check_rng
from course_utils.validation import check_array, check_bool, check_float, check_pair, check_params, check_positive_int

__all__ = [
    "LR_PREFIX",
    "OPT_PREFIX",
    "META_LSTM_INPUTS",
    "init_meta_sgd",
    "init_meta_lstm",
    "split_learned",
    "preprocess_gradient",
    "meta_sgd_step_numpy",
    "meta_lstm_cell_numpy",
]

#: Prefix of Meta-SGD's per-weight step sizes: ``params["lr_w0"]`` is α for ``params["w0"]``.
LR_PREFIX = "lr_"
#: Prefix of the meta-learner LSTM's own weights.
OPT_PREFIX = "opt_"
#: Features per coordinate fed to the meta-learner LSTM: the preprocessed gradient (2) and loss (2).
META_LSTM_INPUTS = 4


def init_meta_sgd(params: dict[str, np.ndarray], *, inner_lr: float = 0.01) -> dict[str, np.ndarray]:
    """θ and a step size α = ``inner_lr`` for every weight (Meta-SGD's parameters).

    Args:
        params: the learner's weights θ (not modified; no key may start with ``"lr_"``).
        inner_lr: the initial step size of every coordinate (> 0). With α = ``inner_lr``
            everywhere, Meta-SGD's first inner step is exactly MAML's.

    Returns:
        ``{**params, "lr_" + k: full_like(params[k], inner_lr)}``, float32.
    """
    check_params(params)
    inner_lr = check_float(inner_lr, "inner_lr", 0.0, low_open=True)
    _check_plain(params)
    out = {k: np.asarray(v, np.float32) for k, v in params.items()}
    out.update({LR_PREFIX + k: np.full(np.shape(v), inner_lr, np.float32) for k, v in params.items()})
    return out


def init_meta_lstm(params: dict[str, np.ndarray], *, hidden: int = 20, forget_bias: tuple[float, float] = (4.0, 6.0),
                   input_bias: tuple[float, float] = (-5.0, -4.0), inner_lr: float | None = None, scale: float = 0.01,
                   rng: np.random.Generator | int | None = None) -> dict[str, np.ndarray]:
    """θ₀ and the meta-learner LSTM's weights, initialised as Ravi & Larochelle's code does.

    The LSTM's weights are U(−scale, scale); the forget-gate bias U(``forget_bias``) makes
    f ≈ σ(5) ≈ 0.993 (almost no weight decay) and the input-gate bias U(``input_bias``) makes
    i ≈ σ(−4.5) ≈ 0.011: before meta-training the learned rule is close to plain SGD with step
    size 0.011. ``inner_lr`` (in (0, 1)), if given, replaces the random input-gate bias by
    log(α/(1 − α)), so that i starts at α: a warm start at the SGD of a given MAML solution.

    Keys added (H = ``hidden``): ``opt_w1`` (4 + H, 4H) and ``opt_b1`` (4H,), the coordinate-wise
    LSTM over the 4 preprocessed inputs; ``opt_wf``/``opt_wi`` (H + 2, 1) and ``opt_bf``/``opt_bi``
    (1,), the gates of the cell whose state is θ (their inputs: the LSTM's hidden state, θ_{t−1}
    and the gate's previous value).
    """
    check_params(params)
    _check_plain(params)
    hidden = check_positive_int(hidden, "hidden")
    scale = check_float(scale, "scale", 0.0)
    fb = _ordered_pair(forget_bias, "forget_bias")
    ib = _ordered_pair(input_bias, "input_bias")
    if inner_lr is not None:
        inner_lr = check_float(inner_lr, "inner_lr", 0.0, 1.0, low_open=True, high_open=True)
    rng = check_rng(rng)
    u = lambda *shape: rng.uniform(-scale, scale, size=shape).astype(np.float32)  # noqa: E731
    out = {k: np.asarray(v, np.float32) for k, v in params.items()}
    out.update({
        "opt_w1": u(META_LSTM_INPUTS + hidden, 4 * hidden),
        "opt_b1": np.zeros(4 * hidden, np.float32),
        "opt_wf": u(hidden + 2, 1),
        "opt_bf": rng.uniform(*fb, size=(1,)).astype(np.float32),
        "opt_wi": u(hidden + 2, 1),
        "opt_bi": rng.uniform(*ib, size=(1,)).astype(np.float32),
    })
    out["opt_b1"][hidden:2 * hidden] = 1.0  # the usual forget bias of the first LSTM
    if inner_lr is not None:
        out["opt_bi"][:] = np.log(inner_lr / (1 - inner_lr))
    return out


def split_learned(params: dict) -> tuple[dict, dict, dict]:
    """``(theta, step_sizes, optimiser)``: the learner's weights, Meta-SGD's ``lr_*`` (keyed by the
    weight they belong to) and the LSTM's ``opt_*`` weights. Works on arrays and tensors."""
    check_params(params)
    theta = {k: v for k, v in params.items() if not k.startswith((LR_PREFIX, OPT_PREFIX))}
    lrs = {k[len(LR_PREFIX):]: v for k, v in params.items() if k.startswith(LR_PREFIX)}
    opt = {k: v for k, v in params.items() if k.startswith(OPT_PREFIX)}
    if not theta:
        raise ValueError(f"params must hold the learner's weights besides lr_*/opt_* keys, got {sorted(params)}")
    stray = sorted(set(lrs) - set(theta))
    if stray:
        raise ValueError(f"params has step sizes for weights it does not have: {['lr_' + k for k in stray]}")
    for k, v in lrs.items():
        if tuple(np.shape(v)) != tuple(np.shape(theta[k])):
            raise ValueError(f"params['lr_{k}'] must have the shape of params[{k!r}] {tuple(np.shape(theta[k]))}, "
                             f"got {tuple(np.shape(v))}")
    return theta, lrs, opt


def preprocess_gradient(x, p: float = 10.0) -> np.ndarray:
    """Andrychowicz et al. (2016, appendix A)'s preprocessing of a gradient or loss value.

    x ↦ (log|x| / p, sign x) if |x| ≥ e^{−p}, else (−1, e^{p} x): two features of similar scale
    whatever the magnitude of x, so one small network can read gradients from 1e-8 to 1e3.

    Args:
        x: any real array.
        p: the cut-off exponent (> 0; 10 in the paper).

    Returns:
        ``x.shape + (2,)`` float array.
    """
    x = np.asarray(check_array(x, "x", dtype="real"), np.float64)
    p = check_float(p, "p", 0.0, low_open=True)
    big = np.abs(x) >= np.exp(-p)
    with np.errstate(divide="ignore"):
        first = np.where(big, np.log(np.abs(x)) / p, -1.0)
    second = np.where(big, np.sign(x), np.exp(p) * x)
    return np.stack([first, second], -1)


def meta_sgd_step_numpy(theta, alpha, grad) -> np.ndarray:
    """One Meta-SGD inner step φ = θ − α ⊙ ∇ (arrays of one shape)."""
    theta, alpha, grad = (np.asarray(check_array(a, n, dtype="real"), np.float64)
                          for a, n in ((theta, "theta"), (alpha, "alpha"), (grad, "grad")))
    if not theta.shape == alpha.shape == grad.shape:
        raise ValueError(f"theta, alpha and grad must have one shape, got {theta.shape}, {alpha.shape}, {grad.shape}")
    return theta - alpha * grad


def meta_lstm_cell_numpy(theta_prev, grad, forget, input_gate) -> np.ndarray:
    """The update of Ravi & Larochelle's cell: θ_t = f ⊙ θ_{t−1} + i ⊙ (−∇); with f = 1 and
    i = α it is one step of SGD with step size α. ``grad`` has the shape of ``theta_prev``; each
    gate is a number or an array of that shape."""
    arrays = [np.asarray(check_array(a, n, dtype="real"), np.float64) for a, n in
              ((theta_prev, "theta_prev"), (grad, "grad"), (forget, "forget"), (input_gate, "input_gate"))]
    theta_prev, grad, forget, input_gate = arrays
    for a, n in ((grad, "grad"), (forget, "forget"), (input_gate, "input_gate")):
        if a.shape != theta_prev.shape and not (n != "grad" and a.ndim == 0):
            raise ValueError(f"{n} must have the shape of theta_prev {theta_prev.shape}"
                             f"{'' if n == 'grad' else ' or be a number'}, got {a.shape}")
    return forget * theta_prev - input_gate * grad


def _check_plain(params: dict) -> None:
    bad = [k for k in params if not isinstance(k, str) or k.startswith((LR_PREFIX, OPT_PREFIX))]
    if bad:
        raise ValueError(f"params must be the learner's weights only (no key starting with 'lr_' or 'opt_'), "
                         f"got {bad}")


def final_step(trajectory) -> tuple:
    """The last ``(phi, gates)`` of an inner-loop trajectory (a generator of per-step pairs)."""
    return deque(trajectory, maxlen=1)[0]


def _ordered_pair(value, name: str) -> tuple[float, float]:
    low, high = check_pair(value, name)
    if low > high:
        raise ValueError(f"{name} must be a pair (low, high) with low <= high, got {value!r}")
    return low, high


def _only_optimiser(step):
    """The step with the gradient of the ``opt_*`` weights only: Adam then leaves θ₀ as it is."""
    def frozen(params, *data):
        loss, grads = step(params, *data)
        return loss, {k: v for k, v in grads.items() if k.startswith(OPT_PREFIX)}
    return frozen


def register_learned_methods(register, build_step, sgd_trajectory, lstm_trajectory) -> None:
    """Register ``"metasgd"`` and ``"metalstm"`` with one framework's ``meta_train`` (called once by
    each of :mod:`course_utils.torch.learned` and :mod:`course_utils.tensorflow.learned`).

    Args:
        register: that framework's ``register_meta_method``.
        build_step: ``build_step(trajectory)`` → a ``make_step(*, inner_lr, steps, first_order,
            forward, loss_fn)`` whose step differentiates the query loss at the end of
            ``trajectory(params, xs, ys, steps, first_order, task_losses)``.
        sgd_trajectory, lstm_trajectory: the framework's inner loops (the LSTM's takes ``p``
            where the other takes ``first_order``).
    """
    def make_metasgd(*, inner_lr, steps, first_order, forward, loss_fn):
        return build_step(sgd_trajectory)(inner_lr=inner_lr, steps=steps, first_order=first_order,
                                          forward=forward, loss_fn=loss_fn)

    def make_metalstm(*, inner_lr, steps, first_order, forward, loss_fn, p=10.0, learn_init=True):
        p = check_float(p, "p", 0.0, low_open=True)
        learn_init = check_bool(learn_init, "learn_init")
        traj = lambda params, xs, ys, n, _first_order, losses: lstm_trajectory(params, xs, ys, n, p, losses)  # noqa: E731
        step = build_step(traj)(inner_lr=inner_lr, steps=steps, first_order=first_order, forward=forward,
                                loss_fn=loss_fn)
        return step if learn_init else _only_optimiser(step)

    register("metasgd", make_metasgd, doc="Meta-SGD: θ and per-weight step sizes lr_* meta-learned (inner_lr unused)")
    register("metalstm", make_metalstm,
             doc="meta-learner LSTM (Ravi & Larochelle): θ₀ and the opt_* update rule; options p, learn_init")
