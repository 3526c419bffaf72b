"""The bad-input harness: one table of public callables with a valid baseline call each.

For every callable of every ``__all__`` the table gives a *baseline*: a valid call on tiny
fixtures (the sinusoid MLP ``init_mlp((1, 8, 1), rng=0)``, two sinusoid tasks of 3 + 3 points,
a 2-block conv net with 4 filters on 3-way 1-shot 12×12 uint8 episodes, ...). The harness then
derives bad values for every parameter from its type hint, its default and the baseline's value
(:func:`variants`) and calls the callable once per bad value, everything else valid:

* ints: ``True``, ``2.5``, ``"3"``, ``-1``, ``None``; step sizes: NaN, inf, −0.1, ``"0.1"``,
  ``None``; other floats: NaN, ``"0.1"``, ``None``; flags: ``"False"``, ``1``, ``None``;
  choices: an unknown string, ``3``; callables: ``3``; generators: ``"rng"``, ``-1``;
* arrays: ``None``, the trailing axis dropped, an extra trailing axis, empty, ``str`` dtype, one
  extra task (for arrays whose leading axis must match another's), float64 (must be accepted
  and give the baseline's result, or be rejected by name); labels: out of range, negative,
  fractional, (n, 1);
* parameter dicts: ``None``, a list, a missing key, a wrong shape; ``**options``: an unknown name.

Each bad value must raise ``ValueError``/``TypeError`` whose message names the parameter; a
*valid variant* (float64 arrays, ``2`` for ``2.0``, an explicit channel axis on images) must give
the baseline's result. Exercise checkers (``check_*`` in a chapter) must instead return
``False`` without raising. Anything else is a failure: ``silent`` (a result instead of an error),
``unclear`` (the right type but the argument not named), ``deep`` (another exception type).

Run it standalone for the table of outcomes: ``python -m tests.core.bad_input_cases [torch|
tensorflow|core|all]`` (TensorFlow is imported *before* ``course_utils`` there, as a learner might).
"""
from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import inspect
import json
import pkgutil
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

# --------------------------------------------------------------------------- the table's shape
#: Names of float parameters that are step sizes or scales: bad values include NaN, inf and −0.1.
STEP_NAMES = {"lr", "inner_lr", "outer_lr", "epsilon", "epsilon_start", "epsilon_end", "temperature", "sigma",
              "radius", "center_scale", "momentum", "beta1", "beta2", "eps", "lam", "scale", "atol", "rtol",
              "interval", "timeout", "deadline", "alpha", "step"}
#: String parameters that must be one of a fixed set of names.
CHOICE_NAMES = {"method", "penalty", "optimizer", "update", "log_level"}

#: Modules whose cases are expected to fail for now (``xfail(strict=False)``), with the reason.
#: Empty: every module of every ``__all__`` passes; add a module only with a tracked reason.
PENDING: dict[str, str] = {}


@dataclass
class Case:
    """One public callable and a valid call of it.

    Attributes:
        target: ``"module:attr"``; for a mirrored framework function ``"FW:attr"`` (the case is
            instantiated for ``course_utils.torch`` and ``course_utils.tensorflow``).
        make: ``make(F) -> kwargs`` of a valid call (``F``: the :class:`Fixtures`); built afresh
            for every call, so a callable that mutates its arguments cannot spoil the next one.
        kinds: parameter → kind, where the automatic one (:func:`kind_of`) is not right.
        skip: parameter → why it is not probed (only for what cannot be bad, e.g. a title).
        linked: array parameters whose leading axis must agree (an extra entry is bad).
        method: call this method of ``kwargs.pop("self")`` instead of ``target`` itself.
        cleanup: ``cleanup(F)`` after every call, undoing a global side effect (a registered method).
        none_ok: parameters for which None is valid although neither default nor hint says so.
        valid: ``{(parameter, variant label): why}``: the explicit allow-list of variants that are
            genuinely valid for this callable (their result is not compared).
        baseline: False where a valid call cannot run here (e.g. a download): bad values are
            still probed, the valid variants are not.
    """

    target: str
    make: Callable[[Any], dict]
    kinds: dict = field(default_factory=dict)
    skip: dict = field(default_factory=dict)
    linked: tuple = ()
    method: str | None = None
    baseline: bool = True
    varargs: str | None = None
    none_ok: tuple = ()
    cleanup: Callable | None = None
    valid: dict = field(default_factory=dict)

    def module(self, fw: str | None) -> str:
        """The module that defines the callable (for PENDING and the report)."""
        mod, _, attr = self.target.partition(":")
        if mod == "FW":
            obj = getattr(importlib.import_module(f"course_utils.{fw}"), attr.split(".")[0])
            src = getattr(obj, "__module__", "")
            return src.replace("course_utils.", "", 1) if src.startswith(f"course_utils.{fw}") else src
        return mod

    def name(self, fw: str | None) -> str:
        mod, _, attr = self.target.partition(":")
        label = f"{fw}.{attr}" if mod == "FW" else f"{mod}.{attr}"
        return f"{label}.{self.method}" if self.method else label


# --------------------------------------------------------------------------- fixtures
class Fixtures:
    """Tiny valid inputs, NumPy (``F.tasks``...) and in the framework ``F.fw`` (``F.t(...)``)."""

    def __init__(self, fw_name: str | None):
        from course_utils import sample_sinusoid_tasks
        from course_utils.nets import init_convnet, init_mlp
        from course_utils.tasks import EpisodeSampler

        self.fw_name = fw_name
        self.fw = importlib.import_module(f"course_utils.{fw_name}") if fw_name else None
        self.mlp = init_mlp((1, 8, 1), rng=0)
        self.sm = init_mlp((2, 3), rng=0)  # softmax regression, 2-D inputs, 3 classes
        tasks = sample_sinusoid_tasks(2, 3, 3, rng=0)
        self.sine = tasks
        self.tasks = tuple(tasks[:4])
        self.conv = init_convnet(0, n_way=3, hidden=4, n_blocks=2)
        rng = np.random.default_rng(0)
        self.class_images = rng.integers(0, 256, size=(4, 4, 12, 12), dtype=np.uint8)
        self.sampler = EpisodeSampler(self.class_images, n_way=3, k_shot=1, n_query=2)
        self.episodes = self.sampler.sample_batch(2, rng=0)
        self.episode = self.sampler.sample(rng=0)
        self.images = self.class_images.reshape(16, 12, 12)
        self.labels = np.repeat(np.arange(4), 4)
        # chapter 4: 2-D points for softmax regression, LwF's two-head MLP on 16-pixel images
        self.x_lab = rng.standard_normal((6, 2)).astype(np.float32)
        self.y_lab = np.array([0, 1, 2, 0, 1, 2])
        self.x_unl = rng.standard_normal((5, 2)).astype(np.float32)
        p = rng.random((5, 3)) + 0.1
        self.p_star = (p / p.sum(1, keepdims=True)).astype(np.float32)
        self.lwf = {**{k: v for k, v in zip(("w0", "b0", "w1", "b1"), init_mlp((16, 6, 5), rng=1).values())},
                    **dict(zip(("w_old", "b_old"), init_mlp((5, 4), rng=2).values())),
                    **dict(zip(("w_new", "b_new"), init_mlp((5, 3), rng=3).values()))}
        self.x_lwf = rng.random((6, 16)).astype(np.float32)
        self.y_lwf = np.array([0, 1, 2, 0, 1, 2])
        self.teacher = {k: v for k, v in self.lwf.items() if not k.endswith("_new")}
        self.img_lwf = rng.integers(0, 256, size=(8, 4, 4), dtype=np.uint8)
        self.lab_lwf = np.array([0, 1, 2, 3, 0, 1, 2, 3])

    # framework conversions
    def t(self, a):
        return self.fw.to_tensor(a)

    def theta(self, params=None):
        return self.fw.from_numpy(self.mlp if params is None else params)

    def sample_batch(self, rng):
        """A meta-batch of two sinusoid tasks (what ``meta_train`` calls every iteration)."""
        from course_utils import sample_sinusoid_tasks

        return tuple(sample_sinusoid_tasks(2, 3, 3, rng=rng)[:4])


# --------------------------------------------------------------------------- the table
def _tasks4(F):
    xs, ys, xq, yq = F.tasks
    return {"x_support": xs, "y_support": ys, "x_query": xq, "y_query": yq}


def _tasks4_t(F):
    return {k: F.t(v) for k, v in _tasks4(F).items()}


TASKS = ("x_support", "y_support", "x_query", "y_query")
CONV = {"forward": "skip_fw", "loss_fn": "skip_fw"}
_LIN = dict(linked=TASKS)


def _fw_cases() -> list[Case]:
    """Cases of the mirrored framework halves (``FW:`` = torch and tensorflow)."""
    c = []
    add = lambda target, make, **kw: c.append(Case("FW:" + target, make, **kw))  # noqa: E731
    # ---- core
    _any_shape = "the one converter takes arrays of any shape"
    add("to_tensor", lambda F: {"a": F.tasks[0]}, kinds={"dtype": "choice"},
        valid={("a", v): _any_shape for v in ("trailing axis dropped", "extra trailing axis", "empty")})
    _any_dict = "a generic parameter dict (any names and shapes: MLP, conv net, LwF net) is valid here"
    _generic = {("params", v): _any_dict for v in ("missing key", "wrong shape")}
    add("as_task_tensors", lambda F: {"arrays": F.tasks}, varargs="arrays", kinds={"arrays": "object"})
    add("from_numpy", lambda F: {"params": F.mlp}, valid=_generic)
    add("to_numpy", lambda F: {"params": F.theta()}, valid=_generic)
    add("mlp_forward", lambda F: {"params": F.theta(), "x": F.t(F.tasks[0][0])},
        valid={("x", "extra trailing axis"): "x is (..., in): (3, 1, 1) is a batch of (1, 1) inputs of width 1"})
    add("mse_loss", lambda F: {"pred": F.t(F.tasks[1][0]), "y": F.t(F.tasks[1][0])}, linked=("pred", "y"))
    add("cross_entropy_loss", lambda F: {"logits": F.t(F.p_star[:3] * 3), "y": F.t(np.array([0, 2, 1]))},
        linked=("logits", "y"))
    add("accuracy", lambda F: {"logits": F.t(F.p_star[:3] * 3), "y": F.t(np.array([0, 2, 1]))},
        linked=("logits", "y"))
    add("adapt", lambda F: {"params": F.theta(), "x_support": F.t(F.tasks[0][0]), "y_support": F.t(F.tasks[1][0])},
        linked=("x_support", "y_support"), kinds={"only": "names"})
    add("maml_objective", lambda F: {"params": F.theta(), **_tasks4_t(F)}, **_LIN)
    add("maml_meta_gradient", lambda F: {"params": F.mlp, **_tasks4(F)}, **_LIN)
    add("adam_init", lambda F: {"params": F.theta()}, valid=_generic)

    def _adam(F):
        theta = F.theta()
        return {"params": theta, "grads": F.fw.from_numpy(F.mlp, requires_grad=False), "state": F.fw.adam_init(theta)}
    add("adam_step", _adam, kinds={"state": "object"},
        valid={("grads", "missing key"): "documented: only the keys of grads are updated (the others stay frozen)"})
    add("num_threads", lambda F: {"n": 1}, kinds={"n": "int"})
    # ---- autodiff
    add("hessian_vector_product",
        lambda F: {"loss_fn": lambda p: F.fw.mse_loss(F.fw.mlp_forward(p, F.t(F.tasks[0][0])), F.t(F.tasks[1][0])),
                   "params": F.theta(), "vector": F.mlp}, kinds={"vector": "params"})
    add("meta_gradient_by_hand", lambda F: {"params": F.mlp, **_tasks4(F)}, **_LIN)
    add("list_optimizers", lambda F: {})
    add("mlp_module", lambda F: {"params": F.mlp})
    add("module_to_numpy", lambda F: {"module": F.fw.mlp_module(F.mlp)}, kinds={"module": "object"})
    # ---- objectives
    add("pretrain_sinusoid_mlp", lambda F: {"sizes": (1, 4, 1), "steps": 2, "n_tasks": 2, "k_shot": 2},
        kinds={"sizes": "sizes"})
    add("stack_params", lambda F: {"params": F.mlp, "m": 2})
    add("l2_penalty", lambda F: {"params": F.fw.stack_params(F.mlp, 2)})
    add("l2sp_penalty", lambda F: {"params": F.fw.stack_params(F.mlp, 2), "anchor": F.fw.stack_params(F.mlp, 2)})
    add("proximal_penalty", lambda F: {"params": F.fw.stack_params(F.mlp, 2), "anchor": F.fw.stack_params(F.mlp, 2)})

    def _grid(F):
        g = np.linspace(-5, 5, 5, dtype=np.float32).reshape(-1, 1)
        return g, np.sin(g).astype(np.float32)
    add("function_space_penalty", lambda F: {"params": F.fw.stack_params(F.mlp, 2), "x_grid": _grid(F)[0],
                                             "f_prior": _grid(F)[1]}, linked=("x_grid", "f_prior"))
    add("regularised_objective", lambda F: {"params": F.fw.stack_params(F.mlp, 2), "x_support": F.tasks[0],
                                            "y_support": F.tasks[1], "lam": 0.1,
                                            "anchor": F.fw.stack_params(F.mlp, 2)},
        linked=("x_support", "y_support"), kinds={"anchor": "params", "x_grid": "none_only", "f_prior": "none_only"})
    add("finetune", lambda F: {"params": F.mlp, "x_support": F.tasks[0], "y_support": F.tasks[1], "lam": 0.1,
                               "steps": 2}, linked=("x_support", "y_support"),
        kinds={"anchor": "params_none", "trainable": "names", "x_grid": "none_only", "f_prior": "none_only"})
    add("lambda_sweep", lambda F: {"params": F.mlp, "tasks": F.sine, "lambdas": [0.0, 0.1], "k_shots": (2,),
                                   "steps": 2}, kinds={"tasks": "object", "lambdas": "lams", "k_shots": "ints",
                                                       "penalties": "choices", "x_eval": "none_only"})
    add("last_layer_features", lambda F: {"params": F.mlp, "x": F.tasks[0][0]})
    add("last_layer_closed_form", lambda F: {"params": F.mlp, "x_support": F.tasks[0][0],
                                             "y_support": F.tasks[1][0], "lam": 0.1},
        linked=("x_support", "y_support"), kinds={"x_grid": "none_only", "f_prior": "none_only"})
    # ---- distill
    add("kl_divergence", lambda F: {"p_star": F.p_star, "logits": F.t(F.p_star * 2)}, linked=("p_star", "logits"),
        kinds={"p_star": "probs"})
    add("distillation_kl", lambda F: {"teacher_logits": F.t(F.p_star), "student_logits": F.t(F.p_star * 2)},
        linked=("teacher_logits", "student_logits"))
    add("softmax_regression_logits", lambda F: {"params": F.theta(F.sm), "x": F.x_lab})
    _kl = lambda F: {"x_labelled": F.x_lab, "y_labelled": F.y_lab, "x_unlabelled": F.x_unl,  # noqa: E731
                     "p_star": F.p_star, "lam": 0.5}
    _kl_kw = dict(linked=("x_labelled", "y_labelled"), kinds={"p_star": "probs"})
    add("kl_regularised_loss", lambda F: {"params": F.theta(F.sm), **_kl(F)}, **_kl_kw)
    add("kl_regularised_gradient", lambda F: {"params": F.sm, **_kl(F)}, **_kl_kw)
    add("fit_kl_regularised", lambda F: {"params": F.sm, **_kl(F), "steps": 2}, **_kl_kw)
    add("lwf_forward", lambda F: {"params": F.fw.from_numpy(F.lwf), "x": F.x_lwf})
    add("lwf_loss", lambda F: {"params": F.fw.from_numpy(F.lwf), "x_support": F.x_lwf, "y_support": F.y_lwf,
                               "teacher_old_logits": F.fw.lwf_forward(F.fw.from_numpy(F.teacher), F.x_lwf)[0],
                               "lam": 0.5}, linked=("x_support", "y_support", "teacher_old_logits"),
        kinds={"lam": "lams"})
    add("lwf_finetune", lambda F: {"params": F.lwf, "x_support": F.x_lwf, "y_support": F.y_lwf, "lam": 0.5,
                                   "steps": 2}, linked=("x_support", "y_support"),
        kinds={"lam": "lams", "frozen": "names"})
    add("train_classifier", lambda F: {"params": F.teacher, "images": F.img_lwf, "labels": F.lab_lwf, "epochs": 1,
                                       "batch_size": 4}, linked=("images", "labels"), kinds={"images": "images"},
        valid={("images", "flat images (n, H*W)"): "documented: images (n, 28, 28) or already flat (n, D)"})
    # ---- meta (vectorised MAML)
    add("adapt_tasks", lambda F: {"params": F.theta(), "x_support": F.t(F.tasks[0]), "y_support": F.t(F.tasks[1])},
        linked=("x_support", "y_support"))
    add("tasks_forward", lambda F: {"params_batched": F.fw.adapt_tasks(F.theta(), F.t(F.tasks[0]), F.t(F.tasks[1])),
                                    "x": F.t(F.tasks[2])}, kinds={"params_batched": "params"},
        valid={("x", "extra trailing axis"): "x is (tasks, ..., in): (2, 3, 1, 1) is a batch of (1, 1) inputs "
                                             "of width 1"})
    add("maml_task_losses", lambda F: {"params": F.theta(), **_tasks4_t(F)}, **_LIN)
    add("make_meta_gradient_fn", lambda F: {})
    add("maml_meta_gradient_batched", lambda F: {"params": F.mlp, **_tasks4(F)}, **_LIN)
    add("finetune_curve", lambda F: {"params": F.mlp, "tasks": F.sine, "steps": 2}, kinds={"tasks": "object"})
    add("meta_test", lambda F: {"params": F.mlp, "sample_batch": F.sample_batch, "n_batches": 1, "accuracy": False,
                                "rng": 0})
    # ---- conv net
    add("convnet_forward", lambda F: {"params": F.fw.from_numpy(F.conv), "x": F.episode.x_support},
        kinds={"x": "images"})
    # ---- first order
    _one = lambda F: {"x_support": F.t(F.tasks[0][0]), "y_support": F.t(F.tasks[1][0])}  # noqa: E731
    add("anil_adapt", lambda F: {"params": F.theta(), **_one(F)}, linked=("x_support", "y_support"),
        kinds={"head": "names"})
    add("reptile_adapt", lambda F: {"params": F.theta(), "x": F.t(F.tasks[0][0]), "y": F.t(F.tasks[1][0]),
                                    "inner_steps": 2}, linked=("x", "y"))
    add("fomaml_meta_gradient", lambda F: {"params": F.mlp, **_tasks4(F)}, **_LIN)
    add("anil_meta_gradient", lambda F: {"params": F.mlp, **_tasks4(F)}, **_LIN, kinds={"head": "names"})
    add("reptile_direction", lambda F: {"params": F.mlp, "x": F.tasks[0], "y": F.tasks[1], "inner_steps": 2},
        linked=("x", "y"))
    add("reptile_update", lambda F: {"params": F.mlp, "x": F.tasks[0], "y": F.tasks[1], "inner_steps": 2,
                                     "epsilon": 0.5}, linked=("x", "y"))
    # ---- training
    add("register_meta_method", lambda F: {"name": "bad_input_probe", "make_step": F.fw.METHODS.get("maml").make_step},
        cleanup=lambda F: F.fw.METHODS._methods.pop("bad_input_probe", None))  # leave the registry as it was
    add("make_meta_step", lambda F: {"method": "maml"})
    _mt = lambda F: {"params": F.mlp, "sample_batch": F.sample_batch, "n_iterations": 1,  # noqa: E731
                     "rng": 0, "progress": False, "eval_every": 1}
    add("meta_train", lambda F: {"method": "maml", **_mt(F)}, kinds={"eval_fn": "callable_none"})
    add("pretrain_baseline", lambda F: {"params": F.mlp, "sample_batch": F.sample_batch, "n_iterations": 1,
                                        "rng": 0, "progress": False})
    # ---- metric (chapter 8)
    _emb = lambda F: F.fw.convnet_embed(F.fw.from_numpy(F.conv), F.episode.x_support)  # noqa: E731
    _headless = {("params", "missing key"): "the embedding reads only the conv blocks: a net without its head "
                                            "(the missing key is head_b) is valid"}
    add("convnet_embed", lambda F: {"params": F.fw.from_numpy(F.conv), "x": F.episode.x_support},
        kinds={"x": "images", "bn_stats": "params_none"}, valid=_headless)
    add("bn_statistics", lambda F: {"params": F.conv, "x": F.episode.x_support}, kinds={"x": "images"},
        valid=_headless)
    add("embed_images", lambda F: {"params": F.conv, "images": F.images, "batch_size": 8},
        kinds={"images": "images", "bn_stats": "params_none"}, valid=_headless)
    add("prototypes", lambda F: {"z_support": _emb(F), "y_support": F.t(F.episode.y_support), "n_way": 3},
        linked=("z_support", "y_support"))
    add("protonet_logits", lambda F: {"z_query": _emb(F), "protos": _emb(F)})
    add("matching_logits", lambda F: {"z_query": _emb(F), "z_support": _emb(F), "y_support": F.t(F.episode.y_support),
                                      "n_way": 3}, linked=("z_support", "y_support"))
    add("prototype_head", lambda F: {"protos": _emb(F)})
    add("head_forward", lambda F: {"params": F.fw.prototype_head(_emb(F)), "z": _emb(F)})
    add("metric_episode_loss", lambda F: {"method": "protonet", "params": F.fw.from_numpy(F.conv),
                                          **{k: F.t(getattr(F.episode, k)) for k in TASKS}, "n_way": 3},
        linked=TASKS, kinds={"x_support": "images", "x_query": "images", **CONV}, valid=_headless)
    # ---- learned update rules (chapter 10)
    from course_utils.learned import init_meta_lstm, init_meta_sgd
    _msgd = lambda F: init_meta_sgd(F.mlp)  # noqa: E731
    _mlstm = lambda F: init_meta_lstm(F.mlp, hidden=2, rng=0)  # noqa: E731
    _sup = lambda F: {"x_support": F.t(F.tasks[0]), "y_support": F.t(F.tasks[1])}  # noqa: E731
    add("preprocess_gradient", lambda F: {"x": F.t(F.tasks[0])},
        valid={("x", v): "element-wise: any shape" for v in ("trailing axis dropped", "extra trailing axis", "empty")})
    add("meta_sgd_adapt", lambda F: {"params": F.fw.from_numpy(_msgd(F)), **_sup(F)}, linked=("x_support", "y_support"))
    add("meta_lstm_adapt", lambda F: {"params": F.fw.from_numpy(_mlstm(F)), **_sup(F), "steps": 1},
        linked=("x_support", "y_support"))
    add("learned_curve", lambda F: {"method": "metasgd", "params": _msgd(F), **_tasks4(F), "steps": 1},
        kinds={"method": "choice"}, **_LIN)
    # ---- black-box meta-learners (chapter 9)
    from course_utils.blackbox import init_cnp
    _cnp = lambda F: init_cnp(0, hidden=4, r_dim=3)  # noqa: E731
    _ctx = lambda F: {"x_context": F.t(F.tasks[0]), "y_context": F.t(F.tasks[1]), "x_target": F.t(F.tasks[2])}  # noqa: E731
    add("cnp_forward", lambda F: {"params": F.fw.from_numpy(_cnp(F)), **_ctx(F)},
        linked=("x_context", "y_context", "x_target"))
    add("cnp_loss", lambda F: {"params": F.fw.from_numpy(_cnp(F)), **_tasks4_t(F)}, **_LIN)
    from course_utils.blackbox import init_mann
    _mann = lambda F: init_mann(0, input_dim=6, hidden=3, memory_width=2, n_reads=1)  # noqa: E731
    _seqx = lambda F: np.random.default_rng(0).random((2, 4, 6)).astype(np.float32)  # noqa: E731
    _seqy = lambda F: np.array([[0, 1, 0, 2], [1, 1, 0, 3]])  # noqa: E731
    add("mann_forward", lambda F: {"params": F.fw.from_numpy(_mann(F)), "x": F.t(_seqx(F)), "y": F.t(_seqy(F)),
                                   "memory_size": 3}, linked=("x", "y"))
    add("mann_loss", lambda F: {"params": F.fw.from_numpy(_mann(F)), "x": F.t(_seqx(F)), "y": F.t(_seqy(F)),
                                "memory_size": 3}, linked=("x", "y"))
    # ---- the article's two models (chapter 11)
    from course_utils.article import init_article_nets
    _art = lambda F: init_article_nets(0)  # noqa: E731
    _x10 = lambda F: np.random.default_rng(0).standard_normal((4, 10)).astype(np.float32)  # noqa: E731
    add("article_modules", lambda F: {"params": _art(F)})
    add("article_forward", lambda F: {"params": F.fw.from_numpy(_art(F)), "x": F.t(_x10(F))})
    add("MetaLearner", lambda F: {})
    add("TaskLearner", lambda F: {})
    # ---- implicit MAML (chapter 5)
    _b = lambda F: {k: F.t(np.asarray(v) * 0 + 1) for k, v in F.mlp.items()}  # noqa: E731
    add("conjugate_gradient", lambda F: {"matvec": lambda v: {k: 2 * x for k, x in v.items()}, "b": _b(F), "steps": 2},
        kinds={"b": "params"},
        valid={("b", v): "any dict of tensors is a right-hand side" for v in ("missing key", "wrong shape")})
    add("imaml_adapt", lambda F: {"params": F.fw.from_numpy(F.mlp), **_sup(F), "steps": 1},
        linked=("x_support", "y_support"))
    add("imaml_meta_gradient", lambda F: {"params": F.fw.from_numpy(F.mlp), **_tasks4_t(F), "steps": 1, "cg_steps": 1},
        **_LIN)
    return c


def _core_cases() -> list[Case]:
    """Cases of the framework-free package and the chapters."""
    c = []
    add = lambda target, make, **kw: c.append(Case(target, make, **kw))  # noqa: E731
    T = "course_utils.tasks:"
    add(T + "sample_sinusoid_tasks", lambda F: {"n_tasks": 2, "k_shot": 3, "rng": 0})
    add(T + "EpisodeSampler", lambda F: {"images": F.class_images, "n_way": 3, "k_shot": 1, "n_query": 2},
        kinds={"images": "samples", "labels": "class_ids"})
    add(T + "EpisodeSampler", lambda F: {"self": F.sampler, "n_episodes": 2, "rng": 0}, method="sample_batch")
    add(T + "sample_episode", lambda F: {"images": F.images, "labels": F.labels, "n_way": 3, "k_shot": 1,
                                         "n_query": 2, "rng": 0}, linked=("images", "labels"),
        kinds={"images": "samples", "labels": "class_ids"})
    add(T + "GaussianTask", lambda F: {"means": np.array([[0.0, 1.0], [1.0, 0.0]]), "sigma": 1.0,
                                       "priors": np.array([0.5, 0.5])}, linked=("means", "priors"),
        kinds={"priors": "probs"})
    add(T + "GaussianTask", lambda F: {"self": _gtask(), "n": 4, "rng": 0}, method="sample")
    add(T + "GaussianTask", lambda F: {"self": _gtask(), "x": np.zeros((3, 2))}, method="posterior")
    add(T + "GaussianTaskFamily", lambda F: {"n_classes": 3})
    add(T + "GaussianTaskFamily", lambda F: {"self": _gfam(), "n_tasks": 2, "rng": 0}, method="sample_tasks")
    N = "course_utils.nets:"
    add(N + "init_mlp", lambda F: {"sizes": (1, 8, 1), "rng": 0}, kinds={"sizes": "sizes"})
    add(N + "mlp_forward_numpy", lambda F: {"params": F.mlp, "x": F.tasks[0][0]},
        valid={("x", "extra trailing axis"): "x is (..., in): (3, 1, 1) is a batch of (1, 1) inputs of width 1"})
    add(N + "layer_sizes", lambda F: {"params": F.mlp})
    add(N + "init_convnet", lambda F: {"rng": 0, "n_way": 3, "hidden": 4, "n_blocks": 2})
    add(N + "head_keys", lambda F: {"params": F.mlp})
    add(N + "check_head", lambda F: {"params": F.mlp, "head": ("w1", "b1")}, kinds={"head": "names"},
        none_ok=("head",))
    S = "course_utils.seed:"
    add(S + "set_seed", lambda F: {"seed": 0, "frameworks": ()}, kinds={"frameworks": "choices"},
        cleanup=_restore_hash_seed)
    add(S + "check_rng", lambda F: {"rng": 0}, skip={"name": "the name used in messages"})
    G = "course_utils.grading:"
    add(G + "report", lambda F: {"passed": True, "name": "x"}, kinds={"hint": "str"})
    add(G + "close", lambda F: {"answer": [1.0], "expected": [1.0]}, kinds={"answer": "checker", "expected": "checker"})
    add(G + "max_abs_diff", lambda F: {"a": F.mlp, "b": F.mlp}, kinds={"a": "params", "b": "params"})
    W = "course_utils.sweeps:"
    _sweep = lambda F: {"lambdas": np.array([0.0, 0.1], np.float32), "k_shots": [2],  # noqa: E731
                        "per_task": {"l2": np.ones((1, 2, 2))}, "n_tasks": 2}
    add(W + "grid_and_prior", lambda F: {"params": F.mlp, "x_grid": None, "f_prior": None},
        kinds={"x_grid": "none_only", "f_prior": "none_only"})
    add(W + "check_sweep_args", lambda F: {"tasks": F.sine, "lambdas": [0.0, 0.1], "k_shots": [2],
                                           "penalties": ["l2"], "allowed_penalties": ("l2", "l2sp"), "x_eval": None},
        kinds={"tasks": "object", "lambdas": "lams", "k_shots": "ints", "penalties": "choices",
               "allowed_penalties": "collection", "x_eval": "none_only"})
    add(W + "sweep_result", _sweep, kinds={"k_shots": "ints", "per_task": "object", "lambdas": "lams"})
    add(W + "best_lambdas", lambda F: {"sweep": {"lambdas": np.array([0.0, 0.1]),
                                                 "test_mse": {"l2": np.ones((1, 2))}}}, kinds={"sweep": "object"})
    add(W + "param_distance", lambda F: {"stacked": _stacked(F), "params": F.mlp}, kinds={"stacked": "params"})
    add(W + "unstack", lambda F: {"stacked": _stacked(F), "i": 1}, kinds={"stacked": "params"})
    P = "course_utils.plots:"
    add(P + "new_figure", lambda F: {"figsize": (3, 2)}, kinds={"figsize": "pair"})
    add(P + "show_figure", lambda F: {"fig": _fig()}, kinds={"fig": "object"})
    add(P + "plot_sinusoid_tasks", lambda F: {"tasks": F.sine, "n": 2}, kinds={"tasks": "object", "ax": "ax",
                                                                               "grid": "none_only"})
    add(P + "plot_episode", lambda F: {"episode": F.episode}, kinds={"episode": "object", "fig": "fig"})
    add(P + "plot_learning_curves", lambda F: {"histories": {"a": [1.0, 0.5]}},
        kinds={"histories": "curves", "ax": "ax"})
    add(P + "plot_lambda_sweep", lambda F: {"lambdas": [0.0, 0.1], "curves": {"a": [1.0, 0.5]}},
        kinds={"lambdas": "lams", "curves": "curves", "ax": "ax"})
    add(P + "plot_regression_fit", lambda F: {"x_grid": np.linspace(-1, 1, 3), "curves": {"a": np.zeros(3)}},
        kinds={"curves": "curves", "ax": "ax", "x_support": "none_only", "y_support": "none_only"},
        valid={("x_grid", "extra trailing axis"): "x_grid may be (G,) or (G, 1) (documented)"})
    D = "course_utils.widgets:"
    add(D + "lambda_grid", lambda F: {"min_exp": -2, "max_exp": 0, "per_decade": 1},
        kinds={"min_exp": "int_signed", "max_exp": "int_signed"})
    add(D + "lambda_slider", lambda F: {"min_exp": -2, "max_exp": 0, "per_decade": 1},
        kinds={"min_exp": "int_signed", "max_exp": "int_signed", "value": "float"})
    add(D + "int_slider", lambda F: {"description": "k", "value": 2, "min": 1, "max": 5},
        kinds={"min": "int_signed", "max": "int_signed", "value": "int_signed"})
    add(D + "float_slider", lambda F: {"description": "x", "value": 0.5, "min": 0.0, "max": 1.0},
        kinds={"value": "float", "min": "float", "max": "float"})
    add(D + "make_interactive", lambda F: {"fn": lambda k: {"k": k}, "controls": {"k": (1, 3)}},
        kinds={"controls": "kwargs"})
    add(D + "set_values", lambda F: {"w": _interactive(), "values": {"k": 2}}, kinds={"w": "object",
                                                                                   "values": "kwargs"})
    A = "course_utils.data:"
    add(A + "synthetic_omniglot", lambda F: {"n_chars": 3, "image_size": 8})
    add(A + "load_omniglot", lambda F: {"synthetic": True, "download": False, "image_size": 8},
        kinds={"data_dir": "path_none"})
    add(A + "data_dir", lambda F: {})
    add(A + "download_file", lambda F: {"url": "http://127.0.0.1:9/none.zip", "dest": "/nonexistent/x.zip",
                                        "md5": "0" * 32, "timeout": 0.1, "deadline": 0.2},
        kinds={"url": "str", "dest": "path", "md5": "str", "size": "int"}, baseline=False)
    add(A + "read_zip_characters", lambda F: {"zip_path": "/nonexistent/x.zip"}, kinds={"zip_path": "path"},
        baseline=False)
    add("course_utils.data.glyphs:typeset_digits", lambda F: {"image_size": 8})
    # ---- the shared training loop's helpers, env, framework-free metric helpers (other owners)
    R = "course_utils.training:"
    add(R + "reptile_epsilon", lambda F: {"iteration": 1, "n_iterations": 4})
    add(R + "batches", lambda F: {"n": 4, "batch_size": 2, "steps": 3})
    add(R + "stack_batches", lambda F: {"batches": [F.tasks, F.tasks]}, kinds={"batches": "object"})
    add(R + "auto_block_size", lambda F: {"batch": F.tasks, "n_iterations": 4}, kinds={"batch": "object"})
    add(R + "progress_range", lambda F: {"n": 2, "desc": "x", "enabled": False})
    add(R + "meta_test_summary", lambda F: {"loss": [np.array([1.0, 2.0]), np.array([3.0])],
                                            "acc": [np.array([0.5, 1.0]), np.array([0.0])], "accuracy": True},
        kinds={"loss": "object", "acc": "object"})
    add(R + "MetaMethod", lambda F: {"name": "m", "make_step": lambda **kw: None})
    add(R + "MethodRegistry", lambda F: {"self": _registry(), "name": "m", "make_step": lambda **kw: None},
        method="register")
    add(R + "MetaHistory", lambda F: {"method": "maml", "framework": "torch"},
        kinds={"method": "str", "framework": "str", "loss": "floats", "eval_iterations": "ints",
               "eval": "floats", "seconds": "float", "seconds_per_iteration": "float",
               "trace_seconds": "float", "peak_memory_mb": "float"})
    add(R + "run_meta_loop", lambda F: {"iterate": lambda i, batch: 0.0,
                                        "sample_batch": F.sample_batch, "n_iterations": 2,
                                        "rng": np.random.default_rng(0), "get_params": lambda: {},
                                        "method": "maml", "framework": "torch", "progress": False},
        kinds={"rng": "generator", "method": "str", "framework": "str", "eval_fn": "callable_none"})
    E = "course_utils.env:"
    add(E + "configure_tensorflow_env", lambda F: {"log_level": "2"})
    add(E + "peak_memory_mb", lambda F: {})
    add(E + "environment_report", lambda F: {})
    add(E + "course_scale", lambda F: {})
    add(E + "course_device", lambda F: {})
    add(E + "course_threads", lambda F: {})
    add(E + "usable_cpus", lambda F: {"cgroup_root": "/sys/fs/cgroup"}, kinds={"cgroup_root": "str"})
    add(E + "PeakMemory", lambda F: {"interval": 0.01})
    A = "course_utils.article:"
    add(A + "init_article_nets", lambda F: {"rng": 0})
    T = "course_utils.tasks:"
    add(T + "feature_map", lambda F: {"x": np.zeros((3, 10))})
    add(T + "sample_feature_tasks", lambda F: {"n_tasks": 2, "k_shot": 3, "k_query": 2, "rng": 0},
        none_ok=("k_query",))
    L = "course_utils.learned:"
    _any_learner = {("params", v): "any learner's parameter dict (an MLP, a conv net) is valid"
                    for v in ("missing key", "wrong shape")}
    add(L + "init_meta_sgd", lambda F: {"params": F.mlp, "inner_lr": 0.01}, valid=_any_learner)
    add(L + "init_meta_lstm", lambda F: {"params": F.mlp, "hidden": 2, "rng": 0}, valid=_any_learner,
        kinds={"forget_bias": "object", "input_bias": "object", "inner_lr": "float"}, none_ok=("inner_lr",))
    add(L + "split_learned", lambda F: {"params": importlib.import_module("course_utils.learned").init_meta_sgd(F.mlp)},
        valid={("params", "missing key"): "a step size may be absent from the split (meta_sgd_adapt then names it)"})
    add(L + "preprocess_gradient", lambda F: {"x": F.tasks[0]},
        valid={("x", v): "element-wise: any shape" for v in ("trailing axis dropped", "extra trailing axis", "empty")})
    _three = lambda F: np.array([0.5, -1.0, 2.0])  # noqa: E731
    add(L + "meta_sgd_step_numpy", lambda F: {"theta": _three(F), "alpha": _three(F), "grad": _three(F)},
        linked=("theta", "alpha", "grad"))
    BB = "course_utils.blackbox:"
    from course_utils.blackbox import SequenceSampler
    _cnp0 = lambda F: importlib.import_module("course_utils.blackbox").init_cnp(0, hidden=4, r_dim=3)  # noqa: E731
    _ctx0 = lambda F: {"x_context": F.tasks[0], "y_context": F.tasks[1], "x_target": F.tasks[2]}  # noqa: E731
    add(BB + "init_cnp", lambda F: {"rng": 0, "hidden": 4, "r_dim": 3})
    add(BB + "split_cnp", lambda F: {"params": _cnp0(F)})
    add(BB + "check_cnp_call", lambda F: {"params": _cnp0(F), **_ctx0(F)},
        linked=("x_context", "y_context", "x_target"))
    add(BB + "cnp_forward_numpy", lambda F: {"params": _cnp0(F), **_ctx0(F)},
        linked=("x_context", "y_context", "x_target"))
    add(BB + "cnp_nll_numpy", lambda F: {"mu": F.tasks[1], "sigma": np.ones_like(F.tasks[1]), "y": F.tasks[1]},
        linked=("mu", "sigma", "y"))
    add(BB + "tile_context", lambda F: {"x_support": F.tasks[0], "y_support": F.tasks[1], "k": 1},
        linked=("x_support", "y_support"))
    add(BB + "SequenceSampler", lambda F: {"images": F.class_images, "n_classes": 2, "instances": 2, "size": 6},
        kinds={"images": "images"})
    add(BB + "SequenceSampler", lambda F: {"self": SequenceSampler(F.class_images, n_classes=2, instances=2, size=6),
                                           "n_episodes": 2, "rng": 0}, method="sample_batch")
    _seq = lambda F: SequenceSampler(F.class_images, n_classes=2, instances=2, size=6).sample_batch(2, rng=0)  # noqa: E731
    add(BB + "instance_accuracy", lambda F: {"logits": np.random.default_rng(0).random((2, 4, 2)), "y": _seq(F).y,
                                             "instance": _seq(F).instance}, linked=("logits", "y", "instance"))
    _mann0 = lambda F: importlib.import_module("course_utils.blackbox").init_mann(  # noqa: E731
        0, input_dim=6, hidden=3, memory_width=2, n_reads=1)
    _sx = lambda F: np.random.default_rng(0).random((2, 4, 6)).astype(np.float32)  # noqa: E731
    _sy = lambda F: np.array([[0, 1, 0, 2], [1, 1, 0, 3]])  # noqa: E731
    add(BB + "init_mann", lambda F: {"rng": 0, "input_dim": 6, "hidden": 3, "memory_width": 2, "n_reads": 1})
    add(BB + "mann_sizes", lambda F: {"params": _mann0(F)})
    add(BB + "mann_forward_numpy", lambda F: {"params": _mann0(F), "x": _sx(F), "y": _sy(F), "memory_size": 3},
        linked=("x", "y"))
    add(BB + "content_read_weights", lambda F: {"keys": np.ones((2, 1, 3)), "memory": np.eye(3)[None].repeat(2, 0)},
        linked=("keys", "memory"))
    add(BB + "least_used_weights", lambda F: {"usage": np.array([0.5, 0.1, 0.9]), "n": 1},
        valid={("usage", "extra trailing axis"): "usage is (..., N): (3, 1) is three usage vectors of one row"})
    add(BB + "load_pretrained_sequence_model", lambda F: {"model": "lstm", "seed": 0})
    IM = "course_utils.implicit:"
    _spd = lambda F: np.array([[4.0, 1.0], [1.0, 3.0]])  # noqa: E731
    add(IM + "conjugate_gradient_numpy", lambda F: {"a": _spd(F), "b": np.array([1.0, 2.0])})
    _lin = lambda F: {"features": np.ones((3, 2)) + np.eye(3, 2), "y": np.arange(3.0)}  # noqa: E731
    add(IM + "linear_proximal_solution", lambda F: {**_lin(F), "theta": np.zeros(2), "lam": 1.0},
        linked=("features", "y"))
    add(IM + "linear_implicit_gradient", lambda F: {**_lin(F), "features_query": np.eye(2), "y_query": np.ones(2),
                                                   "theta": np.zeros(2), "lam": 1.0},
        linked=("features", "y"))
    add(L + "meta_lstm_cell_numpy", lambda F: {"theta_prev": _three(F), "grad": _three(F), "forget": _three(F),
                                               "input_gate": _three(F)},
        valid={(g, "trailing axis dropped"): "documented: a gate may be one number" for g in ("forget", "input_gate")})
    M = "course_utils.metric:"
    z = lambda F: np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32)  # noqa: E731
    ys = lambda F: np.array([0, 1, 2, 0, 1, 2])  # noqa: E731
    add(M + "check_episode", lambda F: {"z_support": z(F), "y_support": ys(F), "n_way": 3},
        linked=("z_support", "y_support"), kinds={"z_query": "none_only"})
    add(M + "prototypes", lambda F: {"z_support": z(F), "y_support": ys(F), "n_way": 3},
        linked=("z_support", "y_support"))
    add(M + "squared_distances", lambda F: {"a": z(F), "b": z(F)[:3]})
    add(M + "protonet_logits", lambda F: {"z_query": z(F), "protos": z(F)[:3]})
    add(M + "prototype_head", lambda F: {"protos": z(F)[:3]},
        valid={("protos", "extra trailing axis"): "protos is (..., n_way, D): (3, 3, 1) is 3 episodes of 3 "
                                                  "prototypes of dimension 1"})
    add(M + "cosine_similarities", lambda F: {"a": z(F), "b": z(F)[:3]})
    add(M + "matching_logits", lambda F: {"z_query": z(F), "z_support": z(F), "y_support": ys(F), "n_way": 3},
        linked=("z_support", "y_support"))
    add(M + "log_softmax", lambda F: {"logits": z(F)}, kinds={"axis": "int_signed"},
        valid={("logits", v): "log_softmax takes logits of any rank >= 1 (along axis)"
               for v in ("trailing axis dropped", "extra trailing axis")})
    add(M + "protonet_loss_and_grad", lambda F: {"z_support": z(F), "y_support": ys(F), "z_query": z(F),
                                                 "y_query": ys(F), "n_way": 3}, linked=TASKS[:2])
    add(M + "matching_loss_and_grad", lambda F: {"z_support": z(F), "y_support": ys(F), "z_query": z(F),
                                                 "y_query": ys(F), "n_way": 3}, linked=TASKS[:2])
    add(M + "finetune_head", lambda F: {"head_w": z(F)[:3].T.copy(), "head_b": np.zeros(3, np.float32),
                                        "z_support": z(F), "y_support": ys(F), "inner_lr": 0.1, "steps": 2},
        linked=("z_support", "y_support"))
    add(M + "rotated_classes", lambda F: {"images": F.class_images}, kinds={"images": "images"})
    add(M + "classify_episodes", lambda F: {"method": "protonet", "z_support": z(F), "y_support": ys(F),
                                            "z_query": z(F), "n_way": 3}, linked=("z_support", "y_support"))
    add(M + "evaluate_embeddings", lambda F: {"embeddings": np.random.default_rng(0).standard_normal((4, 4, 3)),
                                              "n_way": 3, "k_shot": 1, "n_query": 2, "n_episodes": 3, "rng": 0},
        kinds={"method_options": "kwargs"})
    add(M + "mean_ci95", lambda F: {"values": [0.5, 0.7, 0.6]}, kinds={"values": "floats"})
    add(M + "pca_2d", lambda F: {"points": z(F)})
    c += _chapter_cases()
    return c


def _chapter_cases() -> list[Case]:
    c = []
    add = lambda target, make, **kw: c.append(Case("course_utils.chapters." + target, make, **kw))  # noqa: E731
    chk = {"answer": "checker", "fn": "checker"}
    add("ch00:show_sinusoid_family", lambda F: {"n_tasks": 2, "k_shot": 2, "draw": False})
    add("ch01:episode_mosaic", lambda F: {"episode": F.episode}, kinds={"episode": "object"})
    add("ch01:draw_episode", lambda F: {"images": F.class_images, "n_way": 3, "k_shot": 1, "n_query": 2,
                                        "show": False}, kinds={"images": "images"})
    add("ch01:episode_explorer", lambda F: {"images": F.class_images, "n_way": 3, "k_shot": 1, "n_query": 2,
                                            "max_way": 4}, kinds={"images": "images"})
    add("ch01:family_fit", lambda F: {"x_support": F.tasks[0][0, :, 0], "y_support": F.tasks[1][0, :, 0],
                                      "n_grid": 11}, linked=("x_support", "y_support"),
        valid={(k, "extra trailing axis"): "documented: one task's points (k,) or (k, 1)"
               for k in ("x_support", "y_support")})
    for n in ("check_episode_counts", "check_mean_task_function", "check_recover_task"):
        add(f"ch01:{n}", lambda F: {"fn": None}, kinds=chk)
    add("ch02:linear_meta_gradient", lambda F: {"params": init_linear(), **_tasks4(F)}, **_LIN)
    add("ch02:mlp_loss_and_grad", lambda F: {"params": F.mlp, "x": F.tasks[0][0], "y": F.tasks[1][0]},
        linked=("x", "y"))
    add("ch02:maml_loss_numpy", lambda F: {"params": F.mlp, **_tasks4(F)}, **_LIN)
    add("ch02:directional_derivative", lambda F: {"fn": lambda p: float(np.sum(p["w0"] ** 2)), "params": F.mlp,
                                                  "direction": F.mlp}, kinds={"direction": "params"})
    add("ch02:scalar_meta_gradient_problem", lambda F: {})
    for n in ("check_hvp", "check_scalar_meta_gradient", "check_retrace_count"):
        add(f"ch02:{n}", lambda F, n=n: {"fn" if n == "check_hvp" else "answer": None}, kinds=chk)
    add("ch03:transfer_view", lambda F: {"lam": 0.1, "k_shot": 2, "params": F.mlp, "task": F.sine.task(0),
                                         "steps": 2, "draw": False}, kinds={"task": "object"})
    add("ch03:transfer_explorer", lambda F: {"params": F.mlp, "task": F.sine.task(0), "k_shot": 2, "steps": 2},
        kinds={"task": "object"})
    add("ch03:plot_sweep", lambda F: {"sweep": _sweep_result()}, kinds={"sweep": "object", "ax": "ax",
                                                                       "labels": "none_only"})
    for n in ("check_l2sp_gradient", "check_ridge_solution"):
        add(f"ch03:{n}", lambda F: {"fn": None}, kinds=chk)
    add("ch03:check_infinite_lambda", lambda F: {"answer": None, "params": F.mlp, "task": F.sine.task(0)},
        kinds={**chk, "task": "object"})
    add("ch04:softmax", lambda F: {"z": F.p_star},
        valid={("z", v): "softmax is over the last axis of logits of any rank >= 1"
               for v in ("trailing axis dropped", "extra trailing axis")})
    add("ch04:kl_objective_numpy", lambda F: {"w": F.sm["w0"], "b": F.sm["b0"], "x_labelled": F.x_lab,
                                              "y_labelled": F.y_lab, "x_unlabelled": F.x_unl, "p_star": F.p_star,
                                              "lam": 0.5}, linked=("x_labelled", "y_labelled"),
        kinds={"p_star": "probs"})
    add("ch04:fit_softmax_kl", lambda F: {"x_labelled": F.x_lab, "y_labelled": F.y_lab, "x_unlabelled": F.x_unl,
                                          "p_star": F.p_star, "lams": [0.0, 1.0], "steps": 2},
        linked=("x_labelled", "y_labelled"), kinds={"p_star": "probs", "lams": "lams"})
    add("ch04:make_gaussian_demo", lambda F: {"k_shot": 2, "n_unlabelled": 5, "n_test": 5})
    add("ch04:shifted_teacher", lambda F: {"task": _gtask(), "angle": 0.3}, kinds={"task": "object"})
    add("ch04:gaussian_view", lambda F: {"lam": 0.1, "steps": 2, "draw": False})
    add("ch04:gaussian_widget", lambda F: {})
    add("ch04:gaussian_sweep", lambda F: {"lams": [0.0, 1.0], "n_tasks": 2, "steps": 2}, kinds={"lams": "lams"})
    add("ch04:expected_calibration_error", lambda F: {"probs": F.p_star, "labels": np.array([0, 1, 2, 0, 1])},
        linked=("probs", "labels"), kinds={"probs": "probs"})
    add("ch04:lwf_student", lambda F: {"setup": _lwf_setup(F), "copies": 2}, kinds={"setup": "object"})
    add("ch04:lwf_evaluate", lambda F: {"setup": _lwf_setup(F), "lams": [0.0, 1.0]},
        kinds={"setup": "object", "lams": "lams"})
    add("ch04:lwf_view", lambda F: {"setup": _lwf_setup(F), "draw": False}, kinds={"setup": "object"})
    add("ch04:lwf_widget", lambda F: {"setup": _lwf_setup(F)}, kinds={"setup": "object"})
    add("ch04:lwf_sweep", lambda F: {"setup": _lwf_setup(F), "lams": [0.0, 1.0]},
        kinds={"setup": "object", "lams": "lams"})
    for n in ("check_kl_gradient", "check_soft_targets", "check_ece"):
        add(f"ch04:{n}", lambda F: {"answer": None}, kinds=chk)
    add("ch04:check_large_lambda_limit", lambda F: {"answer": None, "demo": _gauss_demo_full()},
        kinds={**chk, "demo": "object"})
    add("ch05:meta_regression_view", lambda F: {"lam": 0.1, "k_shot": 2, "params": F.mlp, "task": F.sine.task(0),
                                                "steps": 2, "draw": False},
        kinds={"task": "object", "best": "none_only", "k_grid": "none_only"})
    add("ch05:meta_regression_explorer", lambda F: {"params": F.mlp, "task": F.sine.task(0), "k_shot": 2,
                                                    "steps": 2},
        kinds={"task": "object", "best": "none_only", "k_grid": "none_only"})
    add("ch05:plot_best_lambda", lambda F: {"k_shots": [2, 3], "best": {"function": np.array([0.1, 0.2])}},
        kinds={"k_shots": "ints", "best": "object", "ax": "ax", "current": "none_only"})
    for n in ("check_function_penalty_gradient", "check_function_metric"):
        add(f"ch05:{n}", lambda F: {"fn": None}, kinds=chk)
    add("ch05:check_sum_convention", lambda F: {"answer": None, "sweep": _sweep_result(), "penalty": "l2"},
        kinds={**chk, "sweep": "object"})
    add("ch06:toy_meta_gradient", lambda F: {"theta": 0.5, "alpha": 0.1, "x_s": 2.0, "y_s": 3.0, "x_q": -1.0,
                                             "y_q": -1.5})
    add("ch06:adaptation_demo", lambda F: {"maml_params": F.mlp, "pretrained_params": F.mlp, "k_shot": 2,
                                           "draw": False}, kinds={"maml_params": "params",
                                                                  "pretrained_params": "params"})
    add("ch06:make_adaptation_widget", lambda F: {"maml_params": F.mlp, "pretrained_params": F.mlp},
        kinds={"maml_params": "params", "pretrained_params": "params"})
    for n in ("check_toy_meta_gradient", "check_toy_first_order_gradient", "check_two_step_meta_gradient"):
        add(f"ch06:{n}", lambda F: {"answer": None}, kinds=chk)
    add("ch07:reptile_k1_prediction", lambda F: {"params": F.mlp, "joint_gradient": F.mlp, "inner_lr": 0.1,
                                                 "epsilon": 0.5}, kinds={"joint_gradient": "params"})
    add("ch07:mean_median", lambda F: {"values": [1.0, 2.0, 4.0]}, kinds={"values": "floats"})
    add("ch07:compare_methods", lambda F: {"fw": importlib.import_module("course_utils.torch"), "params": F.mlp,
                                           "sample_batch": F.sample_batch, "methods": ("maml",), "n_iterations": 1,
                                           "progress": False},
        kinds={"fw": "object", "methods": "choices", "reptile_kwargs": "none_only", "eval_fn": "callable_none",
               "shared": "kwargs"})
    add("ch07:format_table", lambda F: {"rows": [{"a": 1.0}], "columns": [("a", "A", ".2f")]},
        kinds={"rows": "object", "columns": "object"})
    for n in ("check_hessian_term", "check_reptile_taylor"):
        add(f"ch07:{n}", lambda F: {"answer": None}, kinds=chk)
    add("ch07:seed_summary", lambda F: {"values": [1.0, 2.0, 4.0]}, kinds={"values": "floats"})
    add("ch07:separated", lambda F: {"a": [1.0, 1.1, 0.9], "b": [2.0, 2.1, 1.9]}, kinds={"a": "floats", "b": "floats"})
    add("ch07:taylor_coefficients", lambda F: {"method": "reptile", "k": 2})
    add("ch07:check_reptile_two_steps", lambda F: {"answer": None, "fw": importlib.import_module("course_utils.torch"),
                                                   "params": F.mlp, "x": F.tasks[0], "y": F.tasks[1]},
        kinds={**chk, "fw": "object"}, linked=("x", "y"))
    add("ch07:check_anil_share", lambda F: {"answer": None}, kinds=chk)
    add("ch08:Snapshots", lambda F: {})
    add("ch08:pooled_batch", lambda F: {"images": F.class_images, "batch_size": 2, "rng": 0},
        kinds={"images": "images", "rng": "rng"})
    add("ch08:embed_classes", lambda F: {"fw": importlib.import_module("course_utils.torch"), "params": F.conv,
                                         "class_images": F.class_images,
                                         "bn_stats": importlib.import_module("course_utils.torch").bn_statistics(
                                             F.conv, F.images)},
        kinds={"fw": "object", "class_images": "images", "bn_stats": "params"},
        valid={("params", "missing key"): "the embedding reads only the conv blocks: a net without its head "
                                          "(the missing key is head_b) is valid"})
    add("ch08:format_rows", lambda F: {"rows": {"protonet": {"5-way": (0.9, 0.01)}}}, kinds={"rows": "object"})
    add("ch08:episode_view", lambda F: {"embeddings": np.random.default_rng(0).standard_normal((4, 4, 3)),
                                        "n_way": 3, "k_shot": 1, "n_query": 2})
    add("ch08:plot_episode_view", lambda F: {"view": _ch08_view()}, kinds={"view": "object"})
    add("ch08:make_episode_widget", lambda F: {"embeddings": np.random.default_rng(0).standard_normal((6, 4, 3)),
                                               "max_way": 6, "max_shot": 1, "n_query": 2})
    for n in ("check_prototypes", "check_linear_head", "check_cosine_vs_euclidean"):
        add(f"ch08:{n}", lambda F: {"answer": None}, kinds=chk)
    _tr, _lg, _y9, _i9 = _ch09_trace()
    _view9 = lambda F: {"trace": _tr, "logits": _lg, "y": _y9, "instance": _i9}  # noqa: E731
    add("ch09:memory_step_view", lambda F: {**_view9(F), "episode": 1, "step": 2}, kinds={"trace": "object"},
        linked=("logits", "y", "instance"))
    add("ch09:plot_memory_step", lambda F: {"view": _ch09_step()}, kinds={"view": "object"})
    add("ch09:make_memory_widget", lambda F: {**_view9(F), "episode": 1}, kinds={"trace": "object"},
        linked=("logits", "y", "instance"))
    add("ch09:plot_instance_accuracy", lambda F: {"curves": {"MANN": np.array([0.3, 0.5])}, "published": {1: 36.4}},
        kinds={"curves": "object", "published": "object"})
    add("ch09:plot_mse_against_k", lambda F: {"ks": np.array([1.0, 5.0]), "curves": {"CNP": np.array([1.0, 0.3])}},
        kinds={"curves": "object"})
    for n in ("check_read_weights", "check_write_weights", "check_label_inputs"):
        add(f"ch09:{n}", lambda F: {"answer": None}, kinds=chk)
    from course_utils.learned import init_meta_sgd
    _lrs_only = {("params", v): "only the lr_* step sizes are read: any subset of them, any learner" for v in
                 ("missing key", "wrong shape")}
    add("ch10:step_size_table", lambda F: {"params": init_meta_sgd(F.mlp)}, valid=_lrs_only)
    add("ch10:plot_step_sizes", lambda F: {"params": init_meta_sgd(F.mlp)}, valid=_lrs_only)
    add("ch10:plot_gates", lambda F: {"gates": {"forget": np.full((2, 2, 3), 0.99), "input": np.full((2, 2, 3), 0.01)}},
        kinds={"gates": "object"})
    for n in ("check_meta_sgd_step", "check_sgd_gates", "check_preprocessing"):
        add(f"ch10:{n}", lambda F: {"answer": None}, kinds=chk)
    add("ch11:article_failures", lambda F: {})
    for n in ("check_broadcast_loss", "check_pooled_optimum", "check_adapted_counts"):
        add(f"ch11:{n}", lambda F: {"answer": None}, kinds=chk)
    add("ch12:character_subset", lambda F: {"characters": F.class_images, "n_characters": 2, "seed": 0},
        kinds={"characters": "images"})
    _w = lambda: {"w": np.ones((2, 2)), "b": np.full(2, 0.5)}  # noqa: E731
    add("ch12:layer_change", lambda F: {"theta": _w(), "phi": _w()}, kinds={"theta": "params", "phi": "params"})
    add("ch12:format_table", lambda F: {"rows": [{"a": 1.0}], "columns": [("a", "A", ".1f")]},
        kinds={"rows": "object", "columns": "object"})
    add("ch12:plot_scarcity", lambda F: {"n_characters": np.array([10.0, 50.0]),
                                         "results": {"m": np.array([[0.5, 0.01], [0.6, 0.01]])}},
        kinds={"results": "object"})
    add("ch12:plot_layer_change", lambda F: {"changes": {"m": {"a": 0.1, "b": 0.2}}}, kinds={"changes": "object"})
    for n in ("check_maml_quadratic", "check_ci95", "check_layer_change"):
        add(f"ch12:{n}", lambda F: {"answer": None}, kinds=chk)
    for n in ("check_cg_two_steps", "check_implicit_gradient_1d", "check_memory_counts"):
        add(f"ch05:{n}", lambda F: {"answer": None}, kinds=chk)
    add("ch05:saved_tensors_peak", lambda F: {"fn": lambda: 1})
    add("ch05:plot_memory_time", lambda F: {"steps": [1, 2], "memory_mb": {"a": np.array([1.0, 2.0])},
                                            "seconds": {"a": np.array([0.1, 0.2])}},
        kinds={"memory_mb": "object", "seconds": "object"})
    return c


# helpers building baseline objects
_HASH_SEED = __import__("os").environ.get("PYTHONHASHSEED")


def _restore_hash_seed(F):
    """set_seed sets PYTHONHASHSEED for child processes: put back what the test session had."""
    import os

    if _HASH_SEED is None:
        os.environ.pop("PYTHONHASHSEED", None)
    else:
        os.environ["PYTHONHASHSEED"] = _HASH_SEED

def _gtask():
    from course_utils.tasks import GaussianTask

    return GaussianTask(means=np.array([[0.0, 1.0], [1.0, 0.0]]), sigma=1.0, priors=np.array([0.5, 0.5]))


def _gfam():
    from course_utils.tasks import GaussianTaskFamily

    return GaussianTaskFamily(3)


def _stacked(F):
    return {k: np.stack([v, v]) if k.startswith("w") else np.stack([v, v])[:, None, :] for k, v in F.mlp.items()}


def _fig():
    from course_utils.plots import new_figure

    return new_figure((2, 2))


def _interactive():
    from course_utils.widgets import make_interactive

    return make_interactive(lambda k: {"k": k}, k=(1, 3))


def _registry():
    from course_utils.training import MethodRegistry

    return MethodRegistry()


def init_linear():
    from course_utils.nets import init_mlp

    return init_mlp((1, 1), rng=0)


def _sweep_result():
    return {"lambdas": np.array([0.0, 0.1], np.float32), "k_shots": np.array([2]),
            "test_mse": {"l2": np.ones((1, 2)), "function": np.ones((1, 2))},
            "sem": {"l2": np.zeros((1, 2)), "function": np.zeros((1, 2))},
            "per_task": {"l2": np.ones((1, 2, 2)), "function": np.ones((1, 2, 2))}}


def _gauss_demo_full():
    from course_utils.chapters import ch04

    return ch04.make_gaussian_demo(2, seed=0)


def _lwf_setup(F):
    from course_utils.chapters.ch04 import LwFSetup

    return LwFSetup(teacher=F.teacher, x_support=F.x_lwf[None], y_support=F.y_lwf[None], x_query=F.x_lwf[None],
                    y_query=F.y_lwf[None], x_old=F.x_lwf, y_old=np.array([0, 1, 2, 3, 0, 1]), steps=2)


def _ch09_trace():
    from course_utils.blackbox import init_mann, mann_forward_numpy

    rng = np.random.default_rng(0)
    x, y = rng.random((2, 4, 6)).astype(np.float32), np.array([[0, 1, 0, 2], [1, 1, 0, 3]])
    logits, trace = mann_forward_numpy(init_mann(0, input_dim=6, hidden=3, memory_width=2, n_reads=1), x, y,
                                       memory_size=3, return_trace=True)
    return trace, logits, y, np.array([[0, 0, 1, 0], [0, 1, 0, 0]])


def _ch09_step():
    from course_utils.chapters.ch09 import memory_step_view

    return memory_step_view(*_ch09_trace(), episode=1, step=2)


def _ch08_view():
    from course_utils.chapters.ch08 import episode_view

    return episode_view(np.random.default_rng(0).standard_normal((4, 4, 3)), n_way=3, k_shot=1, n_query=2)


#: Public names that are not callables to probe, and why (an explicit allow-list).
NOT_PROBED = {
    # record types: NamedTuples/dataclasses that the package itself fills (their producers validate)
    "SinusoidTasks": "record type (NamedTuple) returned by sample_sinusoid_tasks",
    "FeatureTasks": "record type (NamedTuple) returned by sample_feature_tasks",
    "Failure": "record type (NamedTuple) returned by chapter 11's article_failures",
    "Episode": "record type (NamedTuple) returned by EpisodeSampler",
    "FinetuneCurve": "record type (NamedTuple) returned by finetune_curve",
    "Omniglot": "record type returned by load_omniglot",
    "GaussianDemo": "record type returned by make_gaussian_demo",
    "LwFSetup": "record type of chapter 4 (a plain container of arrays)",
    "SequenceBatch": "record type (dataclass) returned by SequenceSampler.sample_batch",
    "MEMORY_INIT": "a constant", "CNP_SIGMA_FLOOR": "a constant", "PRETRAINED_SCHEDULE": "a constant",
    "pretrained_path": "takes no arguments", "pretrained_seeds": "takes no arguments",
    # exceptions and warnings: raised by the package, not called by learners
    "DamagedFileError": "exception class", "DamagedFileWarning": "warning class",
    "SyntheticDataWarning": "warning class",
    # aliases of framework-free functions re-exported by a framework or chapter module
    "init_convnet": "re-export of course_utils.nets.init_convnet (probed there)",
    "new_figure": "re-export of course_utils.plots.new_figure (probed there)",
    "show_figure": "re-export of course_utils.plots.show_figure (probed there)",
    "best_lambdas": "re-export of course_utils.sweeps.best_lambdas (probed there)",
}

# --------------------------------------------------------------------------- which modules
PACKAGE = "course_utils"
#: The mirrored framework halves: ``course_utils.torch`` and ``course_utils.tensorflow``.
FRAMEWORKS = ("torch", "tensorflow")

#: Modules with an ``__all__`` that get no bad-input test of their own, and why (an explicit
#: allow-list). Each only re-exports public names of probed modules (test_bad_input checks that);
#: their ``__all__`` is still checked for cases (:func:`public_modules`).
RE_EXPORTS = {
    "course_utils": "top-level course_utils names are re-exports of the submodules' (probed there)",
    "course_utils.torch": "the PyTorch half's __all__ is its submodules' (probed there)",
    "course_utils.tensorflow": "the TensorFlow half's __all__ is its submodules' (probed there)",
}


def _defines_all(path: str) -> bool:
    """Whether the source at ``path`` assigns ``__all__`` at module level."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=path)
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else [])
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return True
    return False


def public_modules(package: str = PACKAGE) -> list[str]:
    """Every module of ``package`` (the package itself, its submodules and subpackages, recursively)
    that defines ``__all__``, sorted. Found on disk (``pkgutil.iter_modules`` on the package paths,
    ``ast`` on the sources): nothing is imported, so listing the modules of ``course_utils.tensorflow``
    does not import TensorFlow."""
    found = []

    def visit(spec):
        if spec.origin and spec.origin.endswith(".py") and _defines_all(spec.origin):
            found.append(spec.name)
        for info in pkgutil.iter_modules(spec.submodule_search_locations or []):
            visit(info.module_finder.find_spec(f"{spec.name}.{info.name}"))

    visit(importlib.util.find_spec(package))
    return sorted(found)


def probed_modules() -> list[str]:
    """The modules that get a bad-input test each, named as the rows name them (``Case.module``):
    every :func:`public_modules` module but :data:`RE_EXPORTS`; a framework submodule as
    ``torch.core``, for both halves whichever half it was found in (so a submodule missing from
    one half has no probes there and fails)."""
    halves = tuple(f"{PACKAGE}.{fw}." for fw in FRAMEWORKS)
    public = [m for m in public_modules() if m not in RE_EXPORTS]
    fw_subs = sorted({m.split(".", 2)[2] for m in public if m.startswith(halves)})
    return [m for m in public if not m.startswith(halves)] + [f"{fw}.{m}" for fw in FRAMEWORKS for m in fw_subs]


def all_cases() -> list[Case]:
    return _core_cases() + _fw_cases()


# --------------------------------------------------------------------------- bad values
_MISSING = object()


def _is_tensor(v) -> bool:
    return type(v).__module__.startswith(("torch", "tensorflow")) and hasattr(v, "shape") and hasattr(v, "dtype")


def _np(v):
    if hasattr(v, "detach"):
        v = v.detach()
    if hasattr(v, "numpy"):
        v = v.numpy()
    return np.asarray(v)


def _like(template, arr):
    """``arr`` (NumPy) as the same kind of object as ``template`` (array, torch or TF tensor)."""
    if not _is_tensor(template):
        return arr
    mod = type(template).__module__
    if mod.startswith("torch"):
        import torch

        return torch.as_tensor(arr) if arr.dtype.kind != "U" else arr
    import tensorflow as tf

    return tf.constant(arr) if arr.dtype.kind != "U" else arr


def kind_of(name: str, param: inspect.Parameter, value) -> str:
    """The kind of a parameter, from its type hint, its default and the baseline's value."""
    ann = str(param.annotation)
    if isinstance(value, (bool, np.bool_)) or ann == "bool":
        return "bool"
    if isinstance(value, (int, np.integer)) or ann.startswith("int"):
        return "int"
    if isinstance(value, (float, np.floating)) or ann.startswith("float"):
        return "step" if name in STEP_NAMES else "float"
    if isinstance(value, str) or ann.startswith("str"):
        return "choice" if name in CHOICE_NAMES else "str"
    if isinstance(value, np.random.Generator) or "Generator" in ann:
        return "rng"
    if isinstance(value, dict) and value and all(hasattr(v, "shape") for v in value.values()):
        return "params"
    if isinstance(value, np.ndarray) or _is_tensor(value):
        arr = _np(value)
        if arr.dtype == np.uint8:
            return "images"
        return "labels" if arr.dtype.kind in "iu" else "array"
    if callable(value) or "Callable" in ann:
        return "callable"
    return "object"


def variants(kind: str, name: str, value, none_ok: bool, linked: bool):
    """``[(label, bad_value, equivalent)]``: ``equivalent`` is ``_MISSING`` for a value that must be
    rejected, else a valid value whose call must give the same result (a valid variant)."""
    out = []
    bad = lambda label, v: out.append((label, v, _MISSING))  # noqa: E731
    ok = lambda label, v, eq: out.append((label, v, eq))  # noqa: E731
    if not none_ok and kind not in ("checker", "kwargs", "skip_fw"):
        bad("None", None)
    if kind in ("int", "int_signed"):
        bad("True", True), bad("2.5", 2.5), bad("'3'", "3")
        if kind == "int":
            bad("-1", -1)
    elif kind == "step":
        bad("nan", float("nan")), bad("inf", float("inf")), bad("-0.1", -0.1), bad("'0.1'", "0.1"), bad("True", True)
        if isinstance(value, float) and value.is_integer():
            ok(f"int {int(value)}", int(value), value)
    elif kind == "float":
        bad("nan", float("nan")), bad("'0.1'", "0.1"), bad("True", True)
    elif kind == "bool":
        bad("'False'", "False"), bad("1", 1)
    elif kind == "choice":
        bad("unknown name", "no_such_choice"), bad("3", 3)
    elif kind == "str":
        bad("3", 3)
    elif kind in ("callable", "callable_none"):
        bad("3", 3)
    elif kind in ("rng", "generator"):
        bad("'rng'", "rng"), bad("-1", -1), bad("2.5", 2.5)
        if kind == "generator":
            bad("0", 0)
    elif kind in ("params", "params_none"):
        if value is not None and isinstance(value, dict) and value:
            keys = list(value)
            bad("missing key", {k: value[k] for k in keys[:-1]})
            first = value[keys[0]]
            bad("wrong shape", {**value, keys[0]: first[..., :-1] if np.ndim(_np(first)) else first})
            bad("a list", list(value.values()))
        bad("3", 3)
    elif kind in ("array", "labels", "images", "probs"):
        arr = _np(value)
        if arr.ndim >= 1:
            bad("trailing axis dropped", _like(value, arr[..., 0]))
            bad("empty", _like(value, arr[:0]))
        if kind == "images":
            ok("channel axis", _like(value, arr[..., None]), value)
            if arr.ndim == 3:  # the issue's abort: a conv net fed flat images (n, H·W)
                bad("flat images (n, H*W)", _like(value, arr.reshape(len(arr), -1)))
        else:
            bad("extra trailing axis", _like(value, arr[..., None]))
        bad("str dtype", arr.astype(str))
        if linked and arr.ndim >= 1:
            bad("extra leading entry", _like(value, np.concatenate([arr, arr[:1]])))
        if kind in ("array", "probs") and arr.dtype == np.float32:
            ok("float64", _like(value, arr.astype(np.float64)), value)
        if kind == "labels":
            for label, v in (("label 99", 99), ("label -1", -1)):
                a = arr.copy()
                a.flat[0] = v
                bad(label, _like(value, a))
            bad("fractional labels", _like(value, arr + 0.5))
        if kind == "probs":
            bad("negative probabilities", _like(value, arr - 1.0))
    elif kind == "samples":  # any array of examples: images, or embeddings (any shape per example)
        arr = _np(value)
        bad("empty", arr[:0]), bad("str dtype", arr.astype(str))
        if linked:
            bad("extra leading entry", np.concatenate([arr, arr[:1]]))
    elif kind == "class_ids":
        if value is not None:
            arr = _np(value)
            bad("fractional labels", arr + 0.5), bad("extra trailing axis", arr[..., None])
        bad("str", "abc")
    elif kind in ("names", "choices"):
        bad("a bare string", "w0"), bad("unknown name", ("no_such_name",)), bad("3", 3)
    elif kind == "ints":
        bad("[2.5]", [2.5]), bad("[True]", [True]), bad("[-1]", [-1]), bad("3", 3)
    elif kind in ("floats", "lams"):
        bad("[nan]", [float("nan")]), bad("['a']", ["a"]), bad("3 (not a sequence)", object())
        if kind == "lams":
            bad("[-1]", [-1.0])
    elif kind == "sizes":
        bad("(1,)", (1,)), bad("(1, 0)", (1, 0)), bad("(1, 2.5)", (1, 2.5)), bad("'18'", "18")
    elif kind == "pair":
        bad("(1,)", (1,)), bad("(nan, 1)", (float("nan"), 1)), bad("'ab'", "ab")
    elif kind == "curves":
        bad("a list", [[1.0, 0.5]]), bad("{'a': 'x'}", {"a": "xy"})
    elif kind == "collection":
        bad("3", 3)
    elif kind in ("ax", "fig"):
        bad("3", 3)
    elif kind == "checker":
        for label, v in (("None", None), ("3", 3), ("'x'", "x"), ("nan", float("nan")), ("[]", []),
                         ("a function", lambda *a, **k: None)):
            bad(label, v)
    elif kind in ("path", "path_none"):
        bad("3", 3), bad("''", "")
    elif kind == "kwargs":
        bad("unknown keyword", {**(value or {}), "no_such_option": 1})
    elif kind == "none_only":
        bad("3", 3) if value is None else None
    elif kind == "object":
        bad("3", 3)
    elif kind == "any":
        pass
    return out


def probes(case: Case, F) -> list[tuple[str, str, str, Any, Any]]:
    """Every (parameter, kind, label, bad value, equivalent) of one case."""
    target = resolve(case, F)
    sig = inspect.signature(target)
    base = case.make(F)
    out = []
    for name, p in sig.parameters.items():
        if name == "self" or name in case.skip:
            continue
        value = base.get(name, p.default)
        if p.kind is p.VAR_KEYWORD:
            kind = case.kinds.get(name, "kwargs")
            value = base.get(name, {})
        elif p.kind is p.VAR_POSITIONAL:
            if case.varargs != name:
                continue
            kind = case.kinds.get(name, "object")
        else:
            if value is inspect.Parameter.empty:
                continue
            kind = case.kinds.get(name) or kind_of(name, p, value)
        if kind == "skip_fw":
            continue
        none_ok = ((p.default is None or "None" in str(p.annotation) or kind.endswith("_none")
                    or kind == "none_only" or name in case.none_ok) and kind != "checker")
        for label, bad, eq in variants(kind, name, value, none_ok, name in case.linked):
            out.append((name, kind, label, bad, eq))
    return out


def resolve(case: Case, F):
    mod, _, attr = case.target.partition(":")
    module = F.fw if mod == "FW" else importlib.import_module(mod)
    obj = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    return getattr(obj, case.method) if case.method else obj


def call(case: Case, F, kwargs: dict):
    try:
        return _call(case, F, kwargs)
    finally:
        if case.cleanup is not None:
            case.cleanup(F)


def _call(case: Case, F, kwargs: dict):
    kwargs = dict(kwargs)
    target = resolve(case, F)
    if case.method:
        target = getattr(kwargs.pop("self"), case.method)
    args = ()
    if case.varargs:  # a bad value that is not a sequence is passed as the one positional argument
        v = kwargs.pop(case.varargs)
        args = tuple(v) if isinstance(v, (tuple, list)) else (v,)
    extra = {}
    for name, p in inspect.signature(target).parameters.items():
        if p.kind is p.VAR_KEYWORD and name in kwargs:
            extra = kwargs.pop(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = target(*args, **kwargs, **extra)
        if hasattr(result, "__enter__") and hasattr(result, "__exit__") and not hasattr(result, "shape"):
            with result:  # a context manager (num_threads, PeakMemory) checks its arguments on entry
                pass
        return result


# --------------------------------------------------------------------------- comparing results
_VOLATILE = ("seconds", "memory", "peak")


def same(a, b) -> bool:
    """``a`` equals ``b`` to float32 tolerance (arrays, tensors, dicts, sequences, dataclasses)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(same(a[k], b[k]) for k in a)
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and all(same(getattr(a, f.name), getattr(b, f.name))
                                          for f in dataclasses.fields(a)
                                          if not any(v in f.name for v in _VOLATILE))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, (np.ndarray, np.generic, int, float)) or _is_tensor(a):
        try:
            x, y = _np(a), _np(b)
            if x.dtype.kind in "fciu" and y.dtype.kind in "fciu":
                return x.shape == y.shape and bool(np.allclose(x, y, rtol=1e-5, atol=1e-6, equal_nan=True))
            return x.shape == y.shape and bool(np.all(x == y))
        except Exception:  # noqa: BLE001 - anything that cannot be compared is different
            return False
    return type(a) is type(b)


def _has_nan(v) -> bool:
    try:
        if isinstance(v, dict):
            return any(_has_nan(x) for x in v.values())
        if isinstance(v, (tuple, list)):
            return any(_has_nan(x) for x in v)
        arr = _np(v)
        return arr.dtype.kind == "f" and not np.all(np.isfinite(arr))
    except Exception:  # noqa: BLE001
        return False


# --------------------------------------------------------------------------- running
def _names_param(msg: str, name: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", msg) is not None


def run_case(case: Case, F, prefix: str = "", skip=frozenset(), on_start=None):
    """Probe one case, yielding ``{key, function, param, value, outcome, detail}`` per bad value
    (outcome ``clear``, ``accepted``, ``silent``, ``unclear``, ``deep``, or ``baseline`` when the
    valid call fails). ``skip``: keys already done; ``on_start(row)`` runs before each call (so a
    parent process can tell which call killed a child)."""
    fname = case.name(F.fw_name)
    try:
        todo = probes(case, F)
    except Exception as exc:  # noqa: BLE001 - e.g. a renamed function: this case fails, not the run
        yield {"key": f"{prefix}baseline", "function": fname, "param": "-", "value": "baseline",
               "outcome": "baseline", "detail": f"{type(exc).__name__}: {exc}"[:300]}
        return
    if not todo:  # nothing to probe (no parameters): the valid call is other tests' business
        return
    baseline = _MISSING
    if case.baseline and not all(f"{prefix}{i}" in skip for i in range(len(todo))):
        row = {"key": f"{prefix}baseline", "function": fname, "param": "-", "value": "baseline"}
        if on_start:
            on_start(row)
        try:
            baseline = call(case, F, case.make(F))
        except Exception as exc:  # noqa: BLE001
            yield {**row, "outcome": "baseline", "detail": f"{type(exc).__name__}: {exc}"[:300]}
            return
    for i, (name, kind, label, bad, eq) in enumerate(todo):
        key = f"{prefix}{i}"
        if key in skip:
            continue
        checker = kind == "checker"  # an exercise checker's answer: must give False, never raise
        row = {"key": key, "function": fname, "param": name, "value": label}
        if (name, label) in case.valid:
            yield {**row, "outcome": "accepted", "detail": "allow-listed: " + case.valid[name, label]}
            continue
        if on_start:
            on_start(row)
        kwargs = case.make(F)
        kwargs[name] = bad
        try:
            res = call(case, F, kwargs)
        except (ValueError, TypeError) as exc:
            msg = str(exc)
            clear = _names_param(msg, name if kind != "kwargs" else "no_such_option")
            row.update(outcome="clear" if clear and not checker else "unclear" if not checker else "deep",
                       detail=f"{type(exc).__name__}: {msg}"[:300])
        except Exception as exc:  # noqa: BLE001
            row.update(outcome="deep", detail=f"{type(exc).__name__}: {exc}"[:300])
        else:
            if checker:
                row.update(outcome="clear" if res is False else "silent", detail=f"returned {res!r}"[:100])
            elif eq is not _MISSING:
                if baseline is _MISSING:
                    row.update(outcome="accepted", detail="not compared (no baseline)")
                else:
                    # every valid variant stands for the baseline's own value: same result expected
                    equal = same(res, baseline)
                    row.update(outcome="accepted" if equal else "silent",
                               detail="" if equal else "valid variant gave a different result")
            else:
                row.update(outcome="silent", detail="NaN/inf result" if _has_nan(res) else "returned a result")
        yield row


def run_all(group: str, skip=frozenset(), on_start=None, on_row=None) -> list[dict]:
    """Run every case of a group: ``core`` (framework-free and chapters), ``torch``, ``tensorflow``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    F = Fixtures(None if group == "core" else group)
    cases = _core_cases() if group == "core" else _fw_cases()
    rows = []
    for ci, case in enumerate(cases):
        module = case.module(F.fw_name)
        start = None if on_start is None else (lambda row, m=module: on_start({**row, "module": m}))
        for r in run_case(case, F, f"{group}:{ci}:", skip, start):
            r = {**r, "module": module}
            rows.append(r)
            if on_row:
                on_row(r)
        plt.close("all")
    return rows


def run_in_subprocess(group: str, path, timeout: float = 600, restarts: int = 5) -> list[dict]:
    """Run a group in a child process (TensorFlow imported before ``course_utils``); a child killed
    by a signal (a C++ ``Check failed`` abort) records an ``abort`` row for the call it was making
    and is restarted after it, so one abort cannot hide the other results."""
    import os
    import subprocess

    path = Path(path)
    path.unlink(missing_ok=True)
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for _ in range(restarts + 1):
        proc = subprocess.run([sys.executable, "-m", "tests.core.bad_input_cases", group, str(path)], cwd=repo,
                              env=env, timeout=timeout, capture_output=True, text=True)
        if proc.returncode == 0:
            break
        rows, started = _read_jsonl(path)
        if not started:  # died before any call: report it as it is
            raise RuntimeError(f"the {group} bad-input run failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
        with open(path, "a") as f:
            f.write(json.dumps({**started, "outcome": "abort",
                                "detail": f"process died (rc {proc.returncode}): {proc.stderr.strip()[-200:]}"}) + "\n")
    return _read_jsonl(path)[0]


def _read_jsonl(path):
    """Rows of a run file, and the last call started without a row (None if every one finished)."""
    rows, pending = [], None
    try:
        lines = open(path).read().splitlines()
    except FileNotFoundError:
        return [], None
    for line in lines:
        rec = json.loads(line)
        if "start" in rec:
            pending = rec["start"]
        else:
            rows.append(rec)
            if pending is not None and pending["key"] == rec["key"]:
                pending = None
    return rows, pending


def summary(rows: list[dict]) -> dict:
    """Counts per module: calls, clear errors, accepted variants, silent, unclear, deep, baseline."""
    table: dict[str, dict[str, int]] = {}
    for r in rows:
        t = table.setdefault(r["module"], {"calls": 0})
        t["calls"] += 1
        t[r["outcome"]] = t.get(r["outcome"], 0) + 1
    return table


def main(argv=None) -> None:
    """``python -m tests.core.bad_input_cases GROUP [OUT.jsonl]``: print the table, or append rows to
    OUT (resuming after the rows already there, as :func:`run_in_subprocess` needs)."""
    argv = sys.argv[1:] if argv is None else argv
    group = argv[0] if argv else "core"
    out = argv[1] if len(argv) > 1 else None
    if group == "tensorflow":
        import tensorflow  # noqa: F401 - imported before course_utils on purpose (the issue's abort)
    if out is None:
        rows = run_all(group)
        for mod, t in summary(rows).items():
            print(mod, t)
        for r in rows:
            if r["outcome"] not in ("clear", "accepted"):
                print(r["module"], r["function"], r["param"], r["value"], r["outcome"], r["detail"][:160])
        return
    done, _ = _read_jsonl(out)
    with open(out, "a") as f:
        def write(rec):
            f.write(json.dumps(rec) + "\n")
            f.flush()
        run_all(group, skip={r["key"] for r in done}, on_start=lambda row: write({"start": row}), on_row=write)


if __name__ == "__main__":
    main()
