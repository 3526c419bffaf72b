"""The fast meta-training loop (tasks sampled a block at a time, a compiled graph loop per block in
TensorFlow) gives exactly what the straightforward loop (one sample, one step per iteration)
gives: the same task stream, losses, evaluations and weights, for every registered method and
both frameworks. Also: the device setting (``COURSE_DEVICE``) and the tiled PyTorch MLP path.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

import course_utils.tensorflow as cf
import course_utils.torch as ct
from course_utils import sample_sinusoid_tasks
from course_utils.env import course_device
from course_utils.grading import max_abs_diff
from course_utils.nets import init_convnet, init_mlp

BUILT_IN = ("maml", "fomaml", "reptile", "anil", "pretrain")


@pytest.fixture(scope="module")
def mlp():
    return init_mlp((1, 16, 16, 1), rng=0)


def _sample(rng):
    return sample_sinusoid_tasks(4, 5, 5, rng=rng)[:4]


def _train(fw, method, params, sample, block_size, **kw):
    seen = []

    def eval_fn(p):  # also records which weights the loop showed it
        seen.append({k: v.copy() for k, v in p.items()})
        return float(sum(np.abs(v).sum() for v in p.values()))

    out, hist = fw.meta_train(method, params, sample, n_iterations=11, rng=5, eval_fn=eval_fn, eval_every=4,
                              progress=False, block_size=block_size, **kw)
    return out, hist, seen


def _assert_same(a, b):
    (pa, ha, sa), (pb, hb, sb) = a, b
    assert ha.loss == hb.loss  # bit for bit: same batches, same steps
    assert max_abs_diff(pa, pb) == 0.0
    assert ha.eval_iterations == hb.eval_iterations == [0, 4, 8, 11] and ha.eval == hb.eval
    assert all(max_abs_diff(x, y) == 0.0 for x, y in zip(sa, sb))


def test_every_built_in_method_is_registered_in_both_frameworks():
    assert set(BUILT_IN) <= set(ct.METHODS.names()) and ct.METHODS.names() == cf.METHODS.names()


@pytest.mark.parametrize("method", BUILT_IN)
@pytest.mark.parametrize("block_size", [None, 3])
def test_blocks_equal_one_iteration_at_a_time(fw, method, block_size, mlp):
    kw = {"outer_lr": 1e-2} if method != "reptile" else {"reptile_steps": 2}
    ref = _train(fw, method, mlp, _sample, 1, **kw)
    fast = _train(fw, method, mlp, _sample, block_size, **kw)
    _assert_same(ref, fast)
    assert max_abs_diff(ref[0], mlp) > 1e-4  # it trained


def test_the_task_stream_is_the_one_of_sample_batch(fw, mlp):
    """Block sampling draws the same batches, in the same order, as one call per iteration."""
    drawn = []

    def sample(rng):
        batch = _sample(rng)
        drawn.append(batch[0][0, 0, 0])
        return batch

    fw.meta_train("maml", mlp, sample, n_iterations=9, rng=3, progress=False)  # blocks
    rng = np.random.default_rng(3)
    assert drawn == [_sample(rng)[0][0, 0, 0] for _ in range(9)]  # and not one batch more


def test_a_registered_method_with_the_documented_contract_runs_in_blocks(fw, mlp):
    """A chapter's own step (plain Python returning a float loss) works in blocks and per iteration."""
    def make_step(*, inner_lr, steps, first_order, forward, loss_fn, push=1.0):
        def step(params, xs, ys, xq, yq):
            loss = loss_fn(forward(params, xq), yq)
            return loss, {k: push * (v * 0 + 1) for k, v in params.items()}
        return step

    fw.register_meta_method("block_push", make_step)
    try:
        ref = _train(fw, "block_push", mlp, _sample, 1, outer_lr=0.1, push=2.0)
        fast = _train(fw, "block_push", mlp, _sample, None, outer_lr=0.1, push=2.0)
        _assert_same(ref, fast)
        assert np.allclose(fast[0]["b0"], mlp["b0"] - 1.1, atol=1e-4)  # 11 Adam steps of 0.1
    finally:
        fw.METHODS._methods.pop("block_push")


@pytest.fixture(scope="module")
def episodes():
    """Tiny 3-way 1-shot image episodes (uint8, as EpisodeSampler gives them) and a small conv net."""
    def sample(rng):
        x = rng.integers(0, 256, size=(2, 6, 28, 28), dtype=np.uint8)
        y = np.tile(np.arange(3), (2, 2))
        return x[:, :3], y[:, :3], x[:, 3:], y[:, 3:]
    return init_convnet(0, n_way=3, hidden=4, n_blocks=2), sample


def test_the_conv_net_and_uint8_images_train_the_same_in_blocks(fw, episodes):
    params, sample = episodes
    kw = dict(forward=fw.convnet_forward, loss_fn=fw.cross_entropy_loss, inner_lr=0.4, outer_lr=1e-2)
    _assert_same(_train(fw, "maml", params, sample, 1, **kw), _train(fw, "maml", params, sample, 4, **kw))


@pytest.mark.parametrize("method", ["protonet", "matchingnet", "protomaml"])
def test_chapter_8_methods_run_in_blocks(fw, method, episodes):
    """Methods a later chapter registers (chapter 8's metric module) train the same in blocks."""
    metric = importlib.import_module(f"{fw.__name__}.metric")  # a broken module fails here, never skips
    assert method in fw.METHODS, f"{method} is not registered in {fw.__name__}"
    params, sample = episodes
    body = {k: v for k, v in params.items() if not k.startswith("head")}
    kw = dict(forward=metric.convnet_embed, outer_lr=1e-2, n_way=3)
    _assert_same(_train(fw, method, body, sample, 1, **kw), _train(fw, method, body, sample, None, **kw))


def test_torch_tiled_mlp_meta_gradient_equals_vmap(mlp):
    """The MLP's batched-matmul meta-gradient is the vmap one (any steps, first or second order)."""
    tasks = sample_sinusoid_tasks(5, 6, 7, rng=2)[:4]
    theta = ct.from_numpy(mlp, requires_grad=False)
    generic = lambda p, x: ct.mlp_forward(p, x)  # noqa: E731  (not mlp_forward itself: the vmap path)
    for steps in (0, 1, 3):
        for first_order in (False, True):
            kw = dict(inner_lr=0.05, steps=steps, first_order=first_order)
            l1, g1 = ct.make_meta_gradient_fn(**kw)(theta, *tasks)
            l2, g2 = ct.make_meta_gradient_fn(forward=generic, **kw)(theta, *tasks)
            assert abs(float(l1) - float(l2)) < 1e-6
            assert max_abs_diff({k: v.numpy() for k, v in g1.items()}, {k: v.numpy() for k, v in g2.items()}) < 1e-5
    with torch.no_grad():  # works inside no_grad too
        _, g = ct.make_meta_gradient_fn()(theta, *tasks)
    assert all(torch.isfinite(v).all() for v in g.values())


def test_course_device_setting(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.delenv("COURSE_SCALE", raising=False)
    assert course_device() == "cpu"  # the default course never needs a GPU
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    monkeypatch.setenv("COURSE_SCALE", "paper")
    assert course_device() == "cpu"
    monkeypatch.setenv("COURSE_DEVICE", "auto")
    assert course_device() == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("COURSE_DEVICE", "tpu")
    with pytest.raises(ValueError, match="COURSE_DEVICE must be one of"):
        course_device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("COURSE_DEVICE", "cuda")
        with pytest.raises(ValueError, match="no CUDA GPU"):
            course_device()
