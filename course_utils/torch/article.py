"""Chapter 11 in PyTorch: the source article's ``MetaLearner`` and ``TaskLearner`` as ``nn.Module`` s,
run with supplied weights through ``torch.func.functional_call``.

Mirrors :mod:`course_utils.tensorflow.article`. :func:`article_forward` is a ``forward(params, x)``
for the course's ``meta_train`` (parameters in :mod:`course_utils.article`'s layout), so the same
two modules serve the article's pooled loop and the repaired meta-learner.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from course_utils.article import BODY, HEAD
from course_utils.validation import check_article_params
from course_utils.torch.core import to_tensor

__all__ = ["MetaLearner", "TaskLearner", "article_modules", "article_forward"]


class MetaLearner(nn.Module):
    """The shared body: 10 → 10 → 10 with ReLUs (the article's TensorFlow version; its PyTorch
    version drops the last ReLU and calls an ``F`` it never imports)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 10)
        self.fc2 = nn.Linear(10, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc2(torch.relu(self.fc1(x))))


class TaskLearner(nn.Module):
    """The per-task head: 10 → 10 (ReLU) → 1."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 10)
        self.fc2 = nn.Linear(10, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(h)))


_META, _TASK = MetaLearner(), TaskLearner()


def _module_params(params: dict, keys: tuple[str, ...]) -> dict:
    w0, b0, w1, b1 = (params[k] for k in keys)
    return {"fc1.weight": w0.T, "fc1.bias": b0, "fc2.weight": w1.T, "fc2.bias": b1}  # nn.Linear stores (out, in)


def article_modules(params: dict[str, np.ndarray]) -> tuple[MetaLearner, TaskLearner]:
    """A ``MetaLearner`` and a ``TaskLearner`` holding ``params`` (an ordinary pair of modules)."""
    check_article_params(params)
    meta, task = MetaLearner(), TaskLearner()
    for module, keys in ((meta, BODY), (task, HEAD)):
        state = {k: torch.tensor(np.asarray(v, np.float32)) for k, v in _module_params(params, keys).items()}
        module.load_state_dict({k: v.contiguous() for k, v in state.items()})
    return meta, task


def article_forward(params: dict, x: torch.Tensor) -> torch.Tensor:
    """TaskLearner(MetaLearner(x)) with the weights in ``params``: x (..., 10) → (..., 1)."""
    check_article_params(params, x)
    x = to_tensor(x)
    h = functional_call(_META, _module_params(params, BODY), (x,))
    return functional_call(_TASK, _module_params(params, HEAD), (h,))
