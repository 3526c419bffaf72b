"""Chapter 5's iMAML checkers accept the right answers and reject the common wrong ones; the memory
probe counts what autograd saves; the memory/time figure validates its input."""
from __future__ import annotations

import numpy as np
import pytest

from course_utils.chapters import ch05


def test_cg_checker():
    a, b = ch05.CG_TOY["a"], ch05.CG_TOY["b"]
    x1 = (b @ b) / (b @ a @ b) * b
    x2 = np.linalg.solve(a, b)
    assert ch05.check_cg_two_steps({"x1": x1, "x2": x2})
    assert not ch05.check_cg_two_steps({"x1": x2, "x2": x2})     # x₁ is not yet the solution
    assert not ch05.check_cg_two_steps({"x1": x1, "x2": x1})
    assert not ch05.check_cg_two_steps({"x1": "a", "x2": x2})
    assert not ch05.check_cg_two_steps(None)


def test_implicit_gradient_checker():
    q = ch05.QUAD_TOY
    phi = (q["a"] * q["c"] + q["lam"] * q["theta"]) / (q["a"] + q["lam"])
    # finite differences of θ ↦ L_q(φ*(θ)), independently of the formula
    loss = lambda th: 0.5 * ((q["a"] * q["c"] + q["lam"] * th) / (q["a"] + q["lam"]) - q["d"]) ** 2  # noqa: E731
    fd = (loss(q["theta"] + 1e-6) - loss(q["theta"] - 1e-6)) / 2e-6
    assert ch05.check_implicit_gradient_1d(fd)
    assert not ch05.check_implicit_gradient_1d(phi - q["d"])          # the Jacobian forgotten
    assert not ch05.check_implicit_gradient_1d(None)
    assert not ch05.check_implicit_gradient_1d([1.0, 2.0])


def test_memory_counts_checker():
    m = ch05.MEMORY_TOY
    assert ch05.check_memory_counts({"maml_iterates": m["steps"], "imaml_iterates": 1, "imaml_hvps": m["cg_steps"]})
    assert ch05.check_memory_counts({"maml_iterates": m["steps"] + 1, "imaml_iterates": 1, "imaml_hvps": m["cg_steps"]})
    assert not ch05.check_memory_counts({"maml_iterates": 1, "imaml_iterates": 1, "imaml_hvps": m["cg_steps"]})
    assert not ch05.check_memory_counts({"maml_iterates": m["steps"], "imaml_iterates": m["steps"],
                                         "imaml_hvps": m["cg_steps"]})
    assert not ch05.check_memory_counts({"maml_iterates": m["steps"], "imaml_iterates": 1, "imaml_hvps": 1})
    assert not ch05.check_memory_counts(None)


def test_saved_tensors_peak_counts_live_saved_storage():
    import torch
    x = torch.ones(1000, requires_grad=True)

    def chain(n):
        y = x
        for _ in range(n):
            y = torch.sin(y)          # sin saves its input: one new 4,000-byte storage per step
        return y.sum()

    _, one = ch05.saved_tensors_peak(chain, 1)
    _, five = ch05.saved_tensors_peak(chain, 5)
    assert one == 4000 and five == 5 * 4000

    def freed(n):                     # each graph is dropped before the next: the peak stays one step's
        for _ in range(n):
            torch.autograd.grad(torch.sin(x).sum(), x)
    assert ch05.saved_tensors_peak(freed, 5)[1] == 4000


def test_plot_memory_time_validates():
    fig = ch05.plot_memory_time([1, 2], {"a": np.array([1.0, 2.0])}, {"a": np.array([0.1, 0.2])})
    assert len(fig.axes) == 2 and fig.axes[0].get_xlabel().startswith("inner steps")
    with pytest.raises(ValueError, match="memory_mb"):
        ch05.plot_memory_time([1, 2], {"a": np.array([1.0])}, {"a": np.array([0.1, 0.2])})
