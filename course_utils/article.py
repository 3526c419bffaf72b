"""Chapter 11: the source article's two models, framework-free.

The article (§4) defines a ``MetaLearner`` (two 10-unit layers) and a ``TaskLearner`` (10 units,
then one output) in both frameworks. Here both live in one parameter dict in the course's layout
(weights (in, out), float32), so the PyTorch ``nn.Module`` s and the Keras models of
:mod:`course_utils.torch.article` / :mod:`course_utils.tensorflow.article` start from the same
numbers:

* ``body_w0, body_b0, body_w1, body_b1`` — the ``MetaLearner``: x (…, 10) → relu → relu → h (…, 10);
* ``head_w0, head_b0, head_w1, head_b1`` — the ``TaskLearner``: h → relu → y (…, 1).
"""
from __future__ import annotations

import numpy as np

from course_utils.nets import init_mlp
from course_utils.seed import check_rng

__all__ = ["BODY", "HEAD", "init_article_nets"]

#: The ``MetaLearner``'s parameters (meta-learned in the outer loop in the repaired design).
BODY = ("body_w0", "body_b0", "body_w1", "body_b1")
#: The ``TaskLearner``'s parameters (adapted per task in the inner loop: ANIL's head).
HEAD = ("head_w0", "head_b0", "head_w1", "head_b1")


def init_article_nets(rng: np.random.Generator | int | None = None) -> dict[str, np.ndarray]:
    """The article's layer sizes, initialised as ``nn.Linear`` does (U(±1/√fan_in)).

    Returns:
        ``{"body_w0": (10, 10), "body_b0": (10,), "body_w1": (10, 10), "body_b1": (10,),
        "head_w0": (10, 10), "head_b0": (10,), "head_w1": (10, 1), "head_b1": (1,)}``.
    """
    rng = check_rng(rng)
    body = init_mlp((10, 10, 10), rng=rng)
    head = init_mlp((10, 10, 1), rng=rng)
    return {**{f"body_{k}": v for k, v in body.items()}, **{f"head_{k}": v for k, v in head.items()}}
