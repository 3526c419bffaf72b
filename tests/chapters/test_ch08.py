"""Chapter 8: the challenge checkers (hidden solutions pass, wrong answers and None fail), the
episode slider driven headlessly, the glue helpers, and bad inputs raising a named ValueError."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from course_utils import metric
from course_utils.chapters import ch08
from course_utils.data.glyphs import typeset_digits
from course_utils.tasks import EpisodeSampler
from course_utils.widgets import set_values

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "08_metric_based.ipynb"


def _solutions() -> list[str]:
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    md = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    return [block for cell in md if "<details>" in cell for block in re.findall(r"```python\n(.*?)```", cell, re.S)]


def test_hidden_solutions_pass_their_checkers(capsys):
    blocks = _solutions()
    assert len(blocks) >= 3
    for block in blocks:
        env = {"np": np, "ch08": ch08}
        env.update({n: getattr(ch08, n) for n in ch08.__all__ if n.startswith("check_")})
        exec(block, env)  # each block ends with its checker call
        assert "✅" in capsys.readouterr().out, block


def test_checkers_reject_wrong_answers_and_none():
    t = ch08.PROTO_TOY
    protos = metric.prototypes(t["z_support"], t["y_support"], 3)
    w, b = metric.prototype_head(protos)
    assert ch08.check_prototypes(protos)
    for wrong in (None, t["z_support"].mean(0), protos[::-1], protos.T, "abc"):
        assert not ch08.check_prototypes(wrong)
    assert ch08.check_linear_head((w, b)) and ch08.check_linear_head({"head_w": w, "head_b": b})
    for wrong in (None, (w / 2, b), (w, -b), (w.T, b), w, "x"):
        assert not ch08.check_linear_head(wrong)
    assert ch08.check_cosine_vs_euclidean({"euclidean": 0, "cosine": 1})
    for wrong in (None, {"euclidean": 1, "cosine": 0}, {"euclidean": 0, "cosine": 0},
                  {"euclidean": "a", "cosine": 1}, [0, 1]):
        assert not ch08.check_cosine_vs_euclidean(wrong)


def test_cosine_toy_really_disagrees():
    t = ch08.COSINE_TOY
    c = metric.prototypes(t["z_support"], t["y_support"], 3)
    q = t["z_query"][None]
    assert metric.squared_distances(q, c).argmin() != metric.cosine_similarities(q, c).argmax()


def test_episode_widget_draws_new_episodes():
    emb = np.random.default_rng(0).normal(size=(30, 20, 6)).astype(np.float32)
    w = ch08.make_episode_widget(emb)
    assert w.result["distances"].shape == (5 * 3, 5) and w.result["prototypes"].shape == (5, 6)
    r = set_values(w, n_way=12, k_shot=4)
    assert r["distances"].shape == (12 * 3, 12) and r["support_2d"].shape == (48, 2)
    assert np.array_equal(r["predictions"], r["distances"].argmin(1))
    assert 0 <= r["accuracy"] <= 1
    first = set_values(w, seed=1)["classes"]
    assert not np.array_equal(set_values(w, seed=2)["classes"], first)
    assert np.array_equal(set_values(w, seed=1)["classes"], first)


def test_episode_view_bad_inputs_name_the_argument():
    emb = np.zeros((10, 20, 4))
    with pytest.raises(ValueError, match="n_way"):
        ch08.episode_view(emb, n_way=11)
    with pytest.raises(ValueError, match="k_shot"):
        ch08.episode_view(emb, k_shot=18, n_query=3)
    with pytest.raises(ValueError, match="max_way"):
        ch08.make_episode_widget(emb, max_way=50)


def test_snapshots_and_pooled_batch():
    snap = ch08.Snapshots()
    p = {"a": np.ones(3), "b": np.zeros(2)}
    assert snap(p) == pytest.approx(np.sqrt(3))
    p["a"][:] = 5
    assert snap.params[0]["a"][0] == 1  # a copy
    images = np.arange(3 * 20 * 4 * 4, dtype=np.uint8).reshape(3, 20, 4, 4)
    xs, ys, xq, yq = ch08.pooled_batch(images, 10, 0)
    assert xs.shape == (1, 5, 4, 4) and ys.shape == (1, 5) and xq.shape == (1, 5, 4, 4)
    assert ys.max() < 12 and xs.dtype == np.uint8
    lab, x = int(ys[0, 0]), xs[0, 0]
    assert any(np.array_equal(x, np.rot90(images[lab // 4, j], lab % 4)) for j in range(20))
    with pytest.raises(ValueError, match="batch_size"):
        ch08.pooled_batch(images, 1, 0)


def test_format_rows():
    text = ch08.format_rows({"A": {"5-way 1-shot": (0.9, 0.01)}, "Bee": {"5-way 1-shot": (0.5, 0.02)}})
    assert "90.0 ± 1.0" in text and "Bee" in text


def test_typeset_digits():
    d = typeset_digits()
    assert d.shape == (10, 20, 28, 28) and d.dtype == np.uint8 and d.max() == 255
    assert len({im.tobytes() for im in d[3]}) == 20  # twenty different typefaces
    with pytest.raises(ValueError, match="image_size"):
        typeset_digits(4)


def test_bad_episodes_raise_named_errors(omniglot):
    test = omniglot.subset("test")
    with pytest.raises(ValueError, match="n_way"):
        EpisodeSampler(test, n_way=4 * len(test) + 1, rotations=True)
    with pytest.raises(ValueError, match="k_shot \\+ n_query"):
        EpisodeSampler(test, n_way=5, k_shot=10, n_query=11)
    emb = np.zeros((len(test), 20, 3))
    with pytest.raises(ValueError, match="n_way"):
        metric.evaluate_embeddings(emb, n_way=len(test) + 1)
    with pytest.raises(ValueError, match="k_shot \\+ n_query"):
        metric.evaluate_embeddings(emb, k_shot=6, n_query=15)
