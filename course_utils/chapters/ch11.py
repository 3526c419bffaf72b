"""Chapter 11 (the article's code, repaired): why the printed code fails, and exercise checkers."""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from course_utils.article import BODY, HEAD, init_article_nets
from course_utils.grading import close, report
from course_utils.tasks import feature_map

__all__ = ["article_failures", "BROADCAST_TOY", "POOLED_TOY", "check_broadcast_loss",
           "check_pooled_optimum", "check_adapted_counts"]


class Failure(NamedTuple):
    """One reason the article's sample cannot run (or runs wrongly), shown by a snippet of ours."""

    problem: str
    outcome: str


# Small snippets written for the course that fail the way the article's sample does.
_SNIPPETS = [
    ("F.relu is called but F (torch.nn.functional) is never imported",
     "import torch\nx = torch.zeros(2, 10)\ny = F.relu(x)"),
    ("the optimiser is built from meta_learner, which is never created",
     "import torch\nopt = torch.optim.Adam(meta_learner.parameters())"),
    ("the loop reads batches from data_loader, which is never defined",
     "for batch in data_loader:\n    pass"),
    ("the MetaLearner's 10 outputs are compared with 1 label: MSELoss broadcasts (a warning, a wrong loss)",
     "import torch\nloss = torch.nn.MSELoss()(torch.zeros(4, 10), torch.zeros(4, 1))"),
]


def article_failures() -> list[Failure]:
    """Run each snippet in a fresh namespace and report what happens (the exception or warning)."""
    out = []
    for problem, code in _SNIPPETS:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                exec(compile(code, "<article-like snippet>", "exec"), {})  # noqa: S102 - our own snippets
                outcome = (f"runs, with {caught[0].category.__name__}: {str(caught[0].message)[:95]}..."
                           if caught else "runs")
            except Exception as e:  # noqa: BLE001 - the point is to show the error
                outcome = f"{type(e).__name__}: {e}"
        out.append(Failure(problem, outcome))
    return out


#: Challenge 1: outputs (4, 10) and labels (4, 1) as the article's loss would compare them.
BROADCAST_TOY = {"outputs": np.arange(40, dtype=np.float64).reshape(4, 10) / 10, "labels": np.ones((4, 1))}
#: Challenge 2: the mean read-out μ of a shifted task family and a point x.
POOLED_TOY = {"mu": np.linspace(-1, 1, 10), "x": np.linspace(0.5, -0.4, 10)}


def check_broadcast_loss(answer) -> bool:
    """Challenge 1: the number ``nn.MSELoss()(outputs, labels)`` returns for :data:`BROADCAST_TOY`."""
    name = "Challenge 1 (what the broadcast loss computes)"
    if answer is None:
        return report(False, name, "Set answer to one number.")
    o, y = BROADCAST_TOY["outputs"], BROADCAST_TOY["labels"]
    if close(answer, ((o[:, :1] - y) ** 2).mean()):
        return report(False, name, "That compares only the first output; the label is broadcast across all 10.")
    return report(close(answer, ((o - y) ** 2).mean()), name,
                  "The (4, 1) labels are broadcast to (4, 10): the mean is over all 40 squared differences.")


def check_pooled_optimum(answer) -> bool:
    """Challenge 2: the prediction at ``POOLED_TOY["x"]`` of the model that minimises the pooled squared
    loss over tasks y = w·g(x) with w ~ N(μ, I)."""
    name = "Challenge 2 (what pooled training learns)"
    if answer is None:
        return report(False, name, "Set answer to one number: the best single prediction at x.")
    t = POOLED_TOY
    expected = float(feature_map(t["x"]) @ t["mu"])
    if close(answer, 0.0) and not close(expected, 0.0):
        return report(False, name, "0 is right only when the mean read-out μ is 0; here it is not.")
    return report(close(answer, expected), name,
                  "The pooled optimum is the mean over tasks of w·g(x), i.e. μ·g(x) with g = feature_map.")


def check_adapted_counts(answer) -> bool:
    """Challenge 3: how many numbers the inner loop changes with the ANIL split (TaskLearner only)
    and with the MAML split (both models): ``{"anil": n1, "maml": n2}``."""
    name = "Challenge 3 (what the inner loop adapts)"
    if not isinstance(answer, dict) or not {"anil", "maml"} <= set(answer):
        return report(False, name, 'Set answer to a dict {"anil": n1, "maml": n2} of two integers.')
    p = init_article_nets(0)
    head = sum(int(np.size(p[k])) for k in HEAD)
    full = head + sum(int(np.size(p[k])) for k in BODY)
    ok = close(answer["anil"], head) and close(answer["maml"], full)
    return report(ok, name, "Count weights and biases: a 10→10 layer has 110 numbers, a 10→1 layer 11.")
