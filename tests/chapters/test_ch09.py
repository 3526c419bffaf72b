"""Chapter 9's checkers accept the right answers and reject the common wrong ones; the memory
widget moves with its slider; the figures draw."""
from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from course_utils.blackbox import init_mann, mann_forward_numpy
from course_utils.chapters import ch09

matplotlib.use("Agg")


def test_read_weights_checker():
    k, m = ch09.READ_TOY["key"], ch09.READ_TOY["memory"]
    cos = m @ k / (np.linalg.norm(m, axis=1) * np.linalg.norm(k))
    assert np.allclose(cos, [1.0, 0.0, np.sqrt(0.5)])
    assert ch09.check_read_weights(np.exp(cos) / np.exp(cos).sum())
    assert not ch09.check_read_weights(cos)
    assert not ch09.check_read_weights(np.exp(m @ k) / np.exp(m @ k).sum())
    assert not ch09.check_read_weights(None)


def test_write_weights_checker():
    t = ch09.WRITE_TOY
    right = t["gate"] * t["previous_read"] + (1 - t["gate"]) * np.eye(4)[1]
    assert ch09.check_write_weights(right)
    assert not ch09.check_write_weights(t["gate"] * t["previous_read"] + (1 - t["gate"]) * np.eye(4)[2])
    assert not ch09.check_write_weights((1 - t["gate"]) * t["previous_read"] + t["gate"] * np.eye(4)[1])
    assert not ch09.check_write_weights("x") and not ch09.check_write_weights(None)


def test_label_inputs_checker():
    y, c = ch09.LABEL_TOY["y"], ch09.LABEL_TOY["n_classes"]
    assert ch09.check_label_inputs(np.vstack([np.zeros((1, c)), np.eye(c)[y][:-1]]))
    assert not ch09.check_label_inputs(np.eye(c)[y])
    assert not ch09.check_label_inputs(np.eye(c)[y][:-1])
    assert not ch09.check_label_inputs(None)


def _trace():
    rng = np.random.default_rng(0)
    x, y = rng.random((2, 8, 6)).astype(np.float32), rng.integers(0, 3, (2, 8))
    logits, trace = mann_forward_numpy(init_mann(0, input_dim=6, n_classes=3, hidden=4, memory_width=3, n_reads=2),
                                       x, y, memory_size=5, return_trace=True)
    return trace, logits, y, np.zeros_like(y)


def test_memory_widget_follows_its_slider():
    trace, logits, y, inst = _trace()
    w = ch09.make_memory_widget(trace, logits, y, inst, episode=1)
    slider = w.children[0]
    assert slider.max == 7
    slider.value = 5
    view = w.result
    assert view["step"] == 5 and view["read"].shape == (2, 5) and np.allclose(view["read"].sum(-1), 1)
    assert np.allclose(view["read"], trace["read_weights"][1, 5]) and view["predicted"] == logits[1, 5].argmax()
    assert abs(view["probs"].sum() - 1) < 1e-9 and view["history"].shape == (8,)
    with pytest.raises(ValueError, match="trace"):
        ch09.memory_step_view({"read_weights": None, "write_weights": None}, logits, y, inst)


def test_figures_draw():
    fig = ch09.plot_instance_accuracy({"MANN": np.array([0.3, 0.5, 0.6]), "LSTM": np.array([0.3, 0.3, 0.3])},
                                      published={1: 36.4, 2: 82.8})
    assert fig.axes[0].get_xlabel() and fig.axes[0].get_legend() is not None
    fig = ch09.plot_mse_against_k([1, 2, 5, 10], {"CNP": [1.5, 0.7, 0.3, 0.2], "MAML": [3.0, 1.8, 1.0, 0.7]})
    assert fig.axes[0].get_yscale() == "log"
    with pytest.raises(ValueError, match="curves"):
        ch09.plot_mse_against_k([1, 2], {"CNP": [1.0]})
    fig = ch09.plot_memory_step(ch09.memory_step_view(*_trace(), step=3))
    assert len(fig.axes) == 3
