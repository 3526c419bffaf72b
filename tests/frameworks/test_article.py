"""Chapter 11: the article's two classes in both frameworks, run with supplied weights, agree; the
repaired (ANIL) split beats pooled training on the 10-input family; clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import course_utils.tensorflow as cf
import course_utils.torch as ct
from course_utils.article import BODY, HEAD, init_article_nets
from course_utils.grading import max_abs_diff
from course_utils.tasks import FEATURE_DIM, feature_map, sample_feature_tasks

P = init_article_nets(0)
T = sample_feature_tasks(4, 20, 20, rng=1)


def test_modules_and_functional_calls_agree_across_frameworks():
    x = T.x_support[0]
    meta, task = ct.article_modules(P)
    yt = ct.article_forward(ct.from_numpy(P), torch.tensor(x))
    assert max_abs_diff(task(meta(torch.tensor(x))), yt) < 1e-6
    mk, tk = cf.article_modules(P)
    yf = cf.article_forward(cf.from_numpy(P, requires_grad=False), x)
    assert max_abs_diff(tk(mk(x)), yf) < 1e-6
    assert max_abs_diff(yt, yf) < 1e-5 and tuple(yt.shape) == (20, 1)


def test_anil_meta_gradient_parity():
    kw = dict(inner_lr=0.1, steps=3, head=HEAD)
    lt, gt = ct.make_meta_step("anil", forward=ct.article_forward, loss_fn=ct.mse_loss, **kw)(
        ct.from_numpy(P), *ct.as_task_tensors(*T[:4]))
    lf, gf = cf.make_meta_step("anil", forward=cf.article_forward, loss_fn=cf.mse_loss, **kw)(
        cf.from_numpy(P, requires_grad=False), *cf.as_task_tensors(*T[:4]))
    assert abs(lt.item() - float(lf)) < 1e-5
    assert max_abs_diff(gt, gf) / max(float(v.abs().max()) for v in gt.values()) < 1e-5
    assert all(float(gt[k].abs().max()) > 0 for k in BODY)  # the body gets a meta-gradient through the head's steps


def test_repaired_beats_pooled():
    sample = lambda r: sample_feature_tasks(8, 20, 20, rng=r)[:4]  # noqa: E731
    kw = dict(forward=ct.article_forward, loss_fn=ct.mse_loss)
    anil, _ = ct.meta_train("anil", P, sample, n_iterations=150, outer_lr=1e-2, inner_lr=0.1, steps=5, head=HEAD,
                            rng=3, progress=False, **kw)
    pooled, _ = ct.meta_train("pretrain", P, sample, n_iterations=150, outer_lr=1e-2, steps=0, rng=3, progress=False,
                              **kw)
    test = ct.as_task_tensors(*sample_feature_tasks(100, 20, 30, rng=9)[:4])
    step = ct.make_meta_step("anil", inner_lr=0.1, steps=5, head=HEAD, **kw)
    score = lambda p: step(ct.from_numpy(p), *test)[0].item()  # noqa: E731
    assert score(pooled) > 1.3 * score(anil)


def test_feature_family():
    t = sample_feature_tasks(3, 5, 7, rng=0)
    assert t.x_support.shape == (3, 5, FEATURE_DIM) and t.y_query.shape == (3, 7, 1) and t.weights.shape == (3, 10)
    y = np.einsum("tnd,td->tn", feature_map(t.x_support), t.weights)[..., None]
    assert np.allclose(y, t.y_support, atol=1e-5)
    assert np.array_equal(sample_feature_tasks(2, 3, rng=5).x_support, sample_feature_tasks(2, 3, rng=5).x_support)
    with pytest.raises(ValueError, match="k_shot"):
        sample_feature_tasks(2, 0)
    with pytest.raises(ValueError, match="noise"):
        sample_feature_tasks(2, 3, noise=-1.0)
    with pytest.raises(ValueError, match="x"):
        feature_map(np.zeros((2, 9)))


def test_clear_errors():
    with pytest.raises(ValueError, match="params"):
        ct.article_forward({k: v for k, v in P.items() if k != "head_b1"}, torch.zeros(2, 10))
    with pytest.raises(ValueError, match="x"):
        cf.article_forward(cf.from_numpy(P, requires_grad=False), np.zeros((2, 9), np.float32))
    with pytest.raises(ValueError, match="params"):
        cf.article_modules({"w0": np.zeros((10, 10), np.float32)})
