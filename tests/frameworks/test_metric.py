"""Metric-based meta-learning (chapter 8): the framework halves against the NumPy float64
references of :mod:`course_utils.metric`, PyTorch against TensorFlow, the linear-layer
equivalence, ProtoMAML's head initialisation, and bad inputs."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import torch

import course_utils.tensorflow as cf
import course_utils.torch as ct
from course_utils import EpisodeSampler, metric
from course_utils.grading import max_abs_diff
from course_utils.nets import init_convnet

N_WAY = 4


@pytest.fixture(scope="module")
def toy():
    g = np.random.default_rng(3)
    return g.normal(size=(8, 5)), np.repeat(np.arange(N_WAY), 2), g.normal(size=(6, 5)), g.integers(0, N_WAY, 6)


@pytest.fixture(scope="module")
def body():
    return {k: v for k, v in init_convnet(0, n_way=5, hidden=8).items() if not k.startswith("head")}


@pytest.fixture(scope="module")
def episode(omniglot):
    sampler = EpisodeSampler(omniglot.subset("trainval"), n_way=6, k_shot=2, n_query=2, rotations=True)
    return sampler.sample_batch(2, 0)[:4]


def _torch(a, grad=False):
    return torch.tensor(a, requires_grad=grad)


def test_prototypes_logits_heads_match_numpy(toy):
    zs, ys, zq, _ = toy
    ref = metric.prototypes(zs, ys, N_WAY)
    assert np.allclose(ref, np.stack([zs[ys == k].mean(0) for k in range(N_WAY)]))
    for fw, conv in ((ct, _torch), (cf, tf.constant)):
        c = fw.prototypes(conv(zs), conv(ys), N_WAY)
        assert max_abs_diff(c, ref) < 1e-12
        assert max_abs_diff(fw.protonet_logits(conv(zq), c), metric.protonet_logits(zq, ref)) < 1e-12
        head = fw.prototype_head(c)
        w, b = metric.prototype_head(ref)
        assert max_abs_diff(head["head_w"], w) < 1e-12 and max_abs_diff(head["head_b"], b) < 1e-12
        assert max_abs_diff(fw.matching_logits(conv(zq), conv(zs), conv(ys), N_WAY, scale=2.0),
                            metric.matching_logits(zq, zs, ys, N_WAY, scale=2.0)) < 1e-10


def test_linear_layer_equivalence(toy):
    zs, ys, zq, _ = toy
    c = metric.prototypes(zs, ys, N_WAY)
    w, b = metric.prototype_head(c)
    lin, dist = zq @ w + b, metric.protonet_logits(zq, c)
    assert np.allclose(lin - dist, (zq ** 2).sum(1, keepdims=True))  # they differ by ||z||², the same for every class
    assert max_abs_diff(metric.log_softmax(lin), metric.log_softmax(dist)) < 1e-12


def test_matching_softmax_is_the_attention_mass(toy):
    zs, ys, zq, _ = toy
    a = np.exp(metric.log_softmax(3.0 * metric.cosine_similarities(zq, zs)))
    mass = np.stack([a[:, ys == k].sum(1) for k in range(N_WAY)], 1)
    assert max_abs_diff(np.exp(metric.log_softmax(metric.matching_logits(zq, zs, ys, N_WAY, scale=3.0))), mass) < 1e-12


def test_protonet_loss_and_gradient_match_closed_form(toy, fw):
    zs, ys, zq, yq = toy
    loss_ref, d_zs, d_zq = metric.protonet_loss_and_grad(zs, ys, zq, yq, N_WAY)
    if fw is ct:
        a, b = _torch(zs, True), _torch(zq, True)
        loss = ct.cross_entropy_loss(ct.protonet_logits(b, ct.prototypes(a, _torch(ys), N_WAY)), _torch(yq))
        ga, gb = torch.autograd.grad(loss, [a, b])
    else:
        a, b = tf.constant(zs), tf.constant(zq)
        with tf.GradientTape() as tape:
            tape.watch([a, b])
            logits = cf.protonet_logits(b, cf.prototypes(a, tf.constant(ys), N_WAY))
            loss = cf.cross_entropy_loss(logits, tf.constant(yq))
        ga, gb = tape.gradient(loss, [a, b])
    assert abs(float(loss.detach() if fw is ct else loss) - loss_ref) < 1e-12
    assert max_abs_diff(ga, d_zs) < 1e-12 and max_abs_diff(gb, d_zq) < 1e-12


def test_matching_gradient_matches_closed_form(toy):
    zs, ys, zq, yq = toy
    loss_ref, d_s = metric.matching_loss_and_grad(zs, ys, zq, yq, N_WAY, scale=2.0)
    s = _torch(2.0 * metric.cosine_similarities(zq, zs), True)
    attn = torch.softmax(s, 1) @ torch.nn.functional.one_hot(_torch(ys), N_WAY).double()
    loss = -torch.log(attn[torch.arange(len(yq)), _torch(yq)]).mean()
    loss.backward()
    assert abs(loss.item() - loss_ref) < 1e-12 and max_abs_diff(s.grad, d_s) < 1e-12


def test_protomaml_inner_loop_matches_closed_form(toy):
    """ProtoMAML's head: initialised from the prototypes, adapted by chapter 6's `adapt`."""
    zs, ys, _, _ = toy
    w0, b0 = metric.prototype_head(metric.prototypes(zs, ys, N_WAY))
    w_ref, b_ref = metric.finetune_head(w0, b0, zs, ys, inner_lr=0.3, steps=4)
    zs_t = _torch(zs, True)  # the head depends on the embedding, so the inner gradients exist
    head_t = ct.adapt(ct.prototype_head(ct.prototypes(zs_t, _torch(ys), N_WAY)), zs_t, _torch(ys),
                      inner_lr=0.3, steps=4, forward=ct.head_forward, loss_fn=ct.cross_entropy_loss)
    head_f = cf.adapt(cf.prototype_head(cf.prototypes(tf.constant(zs), tf.constant(ys), N_WAY)), tf.constant(zs),
                      tf.constant(ys), inner_lr=0.3, steps=4, forward=cf.head_forward, loss_fn=cf.cross_entropy_loss)
    for head in (head_t, head_f):
        assert max_abs_diff(head["head_w"], w_ref) < 1e-10 and max_abs_diff(head["head_b"], b_ref) < 1e-10
    assert max_abs_diff(w_ref, w0) > 1e-3  # the inner loop moved the head


def test_protomaml_without_steps_is_protonet(fw, body, episode):
    p = fw.from_numpy(body, requires_grad=False)
    args = [a[0] for a in fw.as_task_tensors(*episode)]
    l_proto, _ = fw.metric_episode_loss("protonet", p, *args)
    l0, _ = fw.metric_episode_loss("protomaml", p, *args, steps=0)
    l2, _ = fw.metric_episode_loss("protomaml", p, *args, steps=2, inner_lr=0.5)
    f = lambda t: float(t.detach()) if hasattr(t, "detach") else float(t)  # noqa: E731
    assert abs(f(l_proto) - f(l0)) < 1e-5 and abs(f(l2) - f(l_proto)) > 1e-6


def test_embedding_is_convnet_without_head_and_stats_freeze_it(fw, omniglot):
    params = init_convnet(1, n_way=5, hidden=8)
    x = omniglot.subset("test")[:6, 0]
    p = {k: (torch.tensor(v) if fw is ct else tf.constant(v)) for k, v in params.items()}
    z = fw.convnet_embed(p, x)
    assert max_abs_diff(z @ p["head_w"] + p["head_b"] if fw is ct else tf.matmul(z, p["head_w"]) + p["head_b"],
                        fw.convnet_forward(p, x)) < 1e-5
    stats = fw.bn_statistics(params, x)
    assert set(stats) == {f"bn{i}_{s}" for i in range(4) for s in ("mean", "var")}
    assert max_abs_diff(fw.convnet_embed(p, x, stats), z) < 1e-5              # own statistics = batch statistics
    alone = fw.embed_images(params, x[:1], stats)
    assert max_abs_diff(alone, fw.embed_images(params, x, stats)[:1]) < 1e-5  # frozen: independent of the batch


def test_embeddings_and_statistics_agree_across_frameworks(omniglot, body):
    x = omniglot.subset("test")[:10, 0]
    st, sf = ct.bn_statistics(body, x), cf.bn_statistics(body, x)
    assert max_abs_diff(st, sf) < 1e-5
    assert max_abs_diff(ct.embed_images(body, x, st), cf.embed_images(body, x, st)) < 1e-5


@pytest.mark.parametrize("method", ["protonet", "matchingnet", "protomaml"])
def test_meta_steps_agree_across_frameworks(method, body, episode):
    kw = {"scale": 5.0} if method == "matchingnet" else {"inner_lr": 0.5, "steps": 2} if method == "protomaml" else {}
    step_t = ct.make_meta_step(method, forward=ct.convnet_embed, **kw)
    step_f = cf.make_meta_step(method, forward=cf.convnet_embed, **kw)
    lt, gt = step_t(ct.from_numpy(body), *ct.as_task_tensors(*episode))
    lf, gf = step_f(cf.from_numpy(body), *cf.as_task_tensors(*episode))
    assert abs(float(lt) - float(lf)) < 1e-5
    scale = max(float(v.abs().max()) for v in gt.values())
    assert max_abs_diff(gt, gf) < 1e-2 * scale  # TF's float32 conv filter gradients carry more rounding (chapter 8, §4)
    assert set(gt) == set(body)


def test_meta_train_trains_protonet_in_both_frameworks(body, omniglot):
    sampler = EpisodeSampler(omniglot.subset("trainval"), n_way=10, k_shot=1, n_query=1, rotations=True)
    sample = lambda r: sampler.sample_batch(1, r)[:4]  # noqa: E731
    out = {}
    for fw in (ct, cf):
        params, hist = fw.meta_train("protonet", body, sample, n_iterations=8, outer_lr=5e-3, rng=0,
                                     forward=fw.convnet_embed, progress=False)
        assert hist.n_iterations == 8 and np.all(np.isfinite(hist.loss)) and set(params) == set(body)
        out[fw.FRAMEWORK] = hist.loss
    assert abs(out["torch"][0] - out["tensorflow"][0]) < 1e-5


def test_metric_methods_are_registered():
    for fw in (ct, cf):
        assert {"protonet", "matchingnet", "protomaml"} <= set(fw.METHODS.names())
    with pytest.raises(ValueError, match="does not take"):
        ct.make_meta_step("protonet", forward=ct.convnet_embed, bogus=1)


def test_bad_inputs_name_the_argument(fw, body, episode):
    xs, ys, xq, yq = (a[0] for a in episode)
    with pytest.raises(ValueError, match="method"):
        fw.metric_episode_loss("siamese", body, xs, ys, xq, yq)
    with pytest.raises(ValueError, match="y_support"):
        fw.metric_episode_loss("protonet", body, xs, ys[:-1], xq, yq)
    with pytest.raises(ValueError, match="x_support"):
        fw.metric_episode_loss("protonet", body, xs[:, :20], ys, xq, yq)
    with pytest.raises(ValueError, match="scale"):
        fw.matching_logits(*(fw.to_tensor(np.ones((2, 3))),) * 2, fw.to_tensor(np.array([0, 1])), 2, scale=0.0)
    with pytest.raises(ValueError, match="params"):
        fw.convnet_embed({}, xs)


def test_numpy_reference_bad_inputs():
    z, y = np.zeros((4, 3)), np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match="y_support"):
        metric.prototypes(z, y[:3], 2)
    with pytest.raises(ValueError, match="y_support"):
        metric.prototypes(z, y, 3)  # class 2 has no support example
    with pytest.raises(ValueError, match="y_support"):
        metric.prototypes(z, y + 5, 2)
    with pytest.raises(ValueError, match="z_query"):
        metric.matching_logits(np.zeros((2, 4)), z, y, 2)
    with pytest.raises(ValueError, match="method"):
        metric.classify_episodes("knn", z[None], y[None], z[None], 2)
    with pytest.raises(ValueError, match="embeddings"):
        metric.evaluate_embeddings(np.zeros((5, 20)))
    with pytest.raises(ValueError, match="images"):
        metric.rotated_classes(np.zeros((3, 20, 4, 5)))


def test_classify_and_evaluate_on_separable_embeddings():
    g = np.random.default_rng(0)
    centres = 10 * g.normal(size=(12, 1, 4))
    emb = centres + 0.1 * g.normal(size=(12, 20, 4))
    for method in metric.METRIC_METHODS:
        acc = metric.evaluate_embeddings(emb, method, n_way=5, k_shot=2, n_query=5, n_episodes=20, rng=1)
        assert acc.shape == (20,) and acc.mean() > 0.95, method
    same = [metric.evaluate_embeddings(emb, "nearest", n_episodes=7, rng=3, chunk=c) for c in (2, 100)]
    assert np.array_equal(*same)  # chunking does not change the episodes
    m, ci = metric.mean_ci95([0.0, 1.0] * 50)
    assert m == 0.5 and ci == pytest.approx(1.96 * np.std([0.0, 1.0] * 50, ddof=1) / 10)
    rot = metric.rotated_classes(np.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2))
    assert rot.shape == (8, 3, 2, 2) and np.array_equal(rot[5], np.rot90(rot[4], axes=(-2, -1)))
