"""Chapter 9's black-box meta-learners: the CNP against its NumPy reference in both frameworks,
gradient and training parity, the exact context tiling, and clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import course_utils.tensorflow as cf
import course_utils.torch as ct
from course_utils import sample_sinusoid_tasks
from course_utils.blackbox import cnp_forward_numpy, cnp_nll_numpy, init_cnp, split_cnp, tile_context
from course_utils.grading import max_abs_diff

CNP = init_cnp(0, hidden=32, r_dim=16)
TASKS = sample_sinusoid_tasks(4, 10, 6, rng=1)


def _grads_torch(p, *data):
    t = ct.from_numpy(p)
    loss = ct.cnp_loss(t, *ct.as_task_tensors(*data))
    return loss.item(), dict(zip(t, torch.autograd.grad(loss, list(t.values()))))


def test_forward_matches_numpy_in_both_frameworks():
    mu_n, s_n = cnp_forward_numpy(CNP, TASKS.x_support, TASKS.y_support, TASKS.x_query)
    mu_t, s_t = ct.cnp_forward(ct.from_numpy(CNP), *ct.as_task_tensors(TASKS.x_support, TASKS.y_support, TASKS.x_query))
    mu_f, s_f = cf.cnp_forward(cf.from_numpy(CNP), *cf.as_task_tensors(TASKS.x_support, TASKS.y_support, TASKS.x_query))
    assert mu_n.shape == (4, 6, 1) and s_n.shape == (4, 6, 1) and (s_n >= 0.1).all()
    for mu, s in ((mu_t.detach().numpy(), s_t.detach().numpy()), (mu_f.numpy(), s_f.numpy())):
        assert np.abs(mu - mu_n).max() < 1e-5 and np.abs(s - s_n).max() < 1e-5
    x_t = np.concatenate([TASKS.x_support, TASKS.x_query], 1)
    y_t = np.concatenate([TASKS.y_support, TASKS.y_query], 1)
    ref = cnp_nll_numpy(*cnp_forward_numpy(CNP, TASKS.x_support, TASKS.y_support, x_t), y_t)
    loss_t, _ = _grads_torch(CNP, *TASKS[:4])
    loss_f = float(cf.cnp_loss(cf.from_numpy(CNP), *cf.as_task_tensors(*TASKS[:4])))
    assert abs(loss_t - ref) < 1e-5 and abs(loss_f - ref) < 1e-5


def test_representation_is_permutation_invariant_and_a_mean():
    perm = np.random.default_rng(0).permutation(10)
    a = cnp_forward_numpy(CNP, TASKS.x_support, TASKS.y_support, TASKS.x_query)[0]
    b = cnp_forward_numpy(CNP, TASKS.x_support[:, perm], TASKS.y_support[:, perm], TASKS.x_query)[0]
    assert np.abs(a - b).max() < 1e-10
    # tiling k points to the full length gives exactly the prediction from the k points
    for k in (1, 2, 5, 10):
        xs, ys = tile_context(TASKS.x_support, TASKS.y_support, k)
        assert xs.shape == TASKS.x_support.shape and np.array_equal(xs[:, k % 10], TASKS.x_support[:, 0])
        tiled = cnp_forward_numpy(CNP, xs, ys, TASKS.x_query)[0]
        plain = cnp_forward_numpy(CNP, TASKS.x_support[:, :k], TASKS.y_support[:, :k], TASKS.x_query)[0]
        assert np.abs(tiled - plain).max() < 1e-10
    with pytest.raises(ValueError, match="k must divide"):
        tile_context(TASKS.x_support, TASKS.y_support, 3)


def test_gradients_agree_between_frameworks_and_the_context_matters():
    _, gt = _grads_torch(CNP, *TASKS[:4])
    p = cf.from_numpy(CNP, requires_grad=False)
    _, gf = cf.make_meta_step("cnp")(p, *cf.as_task_tensors(*TASKS[:4]))
    scale = max(float(v.abs().max()) for v in gt.values())
    assert max_abs_diff(gt, gf) < 1e-4 * scale
    assert all(float(v.abs().max()) > 0 for v in gt.values()), "every weight gets a gradient"
    # the prediction depends on the context: other support points, other μ
    other = sample_sinusoid_tasks(4, 10, 6, rng=2)
    mu_a = cnp_forward_numpy(CNP, TASKS.x_support, TASKS.y_support, TASKS.x_query)[0]
    mu_b = cnp_forward_numpy(CNP, other.x_support, other.y_support, TASKS.x_query)[0]
    assert np.abs(mu_a - mu_b).max() > 1e-3


def test_meta_train_learns_and_frameworks_agree():
    sample = lambda r: sample_sinusoid_tasks(8, 10, 10, rng=r)[:4]  # noqa: E731
    pt, ht = ct.meta_train("cnp", CNP, sample, n_iterations=60, outer_lr=1e-3, rng=5, progress=False)
    pf, hf = cf.meta_train("cnp", CNP, sample, n_iterations=60, outer_lr=1e-3, rng=5, progress=False)
    assert np.mean(ht.loss[-10:]) < np.mean(ht.loss[:10])
    assert np.abs(np.array(ht.loss) - np.array(hf.loss)).max() < 1e-3 * np.mean(ht.loss)
    assert max_abs_diff(pt, pf) < 1e-3


def test_split_and_bad_inputs_name_the_argument():
    enc, dec = split_cnp(CNP)
    assert set(enc) == {"w0", "b0", "w1", "b1", "w2", "b2"} and dec["w0"].shape == (17, 32)
    with pytest.raises(ValueError, match="params"):
        split_cnp({"w0": np.zeros((1, 2))})
    with pytest.raises(ValueError, match="y_context"):
        cnp_forward_numpy(CNP, TASKS.x_support, TASKS.y_support[..., 0], TASKS.x_query)
    with pytest.raises(ValueError, match="x_target"):
        ct.cnp_forward(ct.from_numpy(CNP), *ct.as_task_tensors(TASKS.x_support, TASKS.y_support, TASKS.x_query[:2]))
    with pytest.raises(ValueError, match="depth"):
        init_cnp(0, depth=1)


# --------------------------------------------------------------------------- MANN and the LSTM baseline
from course_utils.blackbox import (content_read_weights, init_mann, least_used_weights, mann_forward_numpy,  # noqa: E402
                                   mann_sizes)

MANN = init_mann(0, input_dim=16, hidden=8, memory_width=4, n_reads=2)
_R = np.random.default_rng(0)
SEQ_X = _R.random((3, 12, 16)).astype(np.float32)
SEQ_Y = _R.integers(0, 5, (3, 12))


def test_read_weights_and_least_used_by_hand():
    key = np.array([[1.0, 0.0]])
    memory = np.array([[2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    w = content_read_weights(key, memory)
    e = np.exp([1.0, 0.0, -1.0])
    assert np.allclose(w, e / e.sum())                               # softmax of the cosines 1, 0, −1
    assert np.array_equal(least_used_weights(np.array([0.5, 0.1, 0.1, 0.9]), 1), [0, 1, 0, 0])
    assert np.array_equal(least_used_weights(np.array([0.5, 0.1, 0.1, 0.9]), 2), [0, 1, 1, 0])


def test_mann_matches_numpy_in_both_frameworks_with_and_without_memory():
    for p in (MANN, init_mann(1, input_dim=16, hidden=8, n_reads=0)):
        ref, tr = mann_forward_numpy(p, SEQ_X, SEQ_Y, memory_size=6, return_trace=True)
        out_t, tr_t = ct.mann_forward(ct.from_numpy(p), torch.tensor(SEQ_X), torch.tensor(SEQ_Y), memory_size=6,
                                      return_trace=True)
        out_f, tr_f = cf.mann_forward(cf.from_numpy(p), *cf.as_task_tensors(SEQ_X, SEQ_Y), memory_size=6,
                                      return_trace=True)
        assert np.abs(out_t.detach().numpy() - ref).max() < 1e-5 and np.abs(out_f.numpy() - ref).max() < 1e-5
        if mann_sizes(p)["n_reads"]:
            assert tr["read_weights"].shape == (3, 12, 2, 6) and np.allclose(tr["read_weights"].sum(-1), 1)
            assert np.abs(tr_t["read_weights"].numpy() - tr["read_weights"]).max() < 1e-5
            assert np.abs(tr_f["write_weights"].numpy() - tr["write_weights"]).max() < 1e-5
        else:
            assert tr["read_weights"] is None and tr_t["read_weights"] is None


def test_mann_is_causal_and_reads_the_previous_label():
    """Step t's prediction depends on labels before t only: changing label t changes steps > t."""
    y2 = SEQ_Y.copy()
    y2[:, 5] = (y2[:, 5] + 1) % 5
    a, b = mann_forward_numpy(MANN, SEQ_X, SEQ_Y, memory_size=6), mann_forward_numpy(MANN, SEQ_X, y2, memory_size=6)
    assert np.abs(a[:, :6] - b[:, :6]).max() == 0 and np.abs(a[:, 6] - b[:, 6]).max() > 1e-6


def test_mann_gradients_and_training_agree_between_frameworks():
    data_t = (torch.tensor(SEQ_X), torch.tensor(SEQ_Y)) * 2
    lt, gt = ct.make_meta_step("mann", memory_size=6)(ct.from_numpy(MANN), *data_t)
    lf, gf = cf.make_meta_step("mann", memory_size=6)(cf.from_numpy(MANN, requires_grad=False),
                                                      *cf.as_task_tensors(SEQ_X, SEQ_Y, SEQ_X, SEQ_Y))
    scale = max(float(v.abs().max()) for v in gt.values())
    assert abs(float(lt) - float(lf)) < 1e-5 and max_abs_diff(gt, gf) < 1e-4 * scale
    assert all(float(v.abs().max()) > 0 for v in gt.values()), "every weight, the memory's included, gets a gradient"
    sample = lambda r: (SEQ_X, r.integers(0, 5, (3, 12))) * 2  # noqa: E731
    pt, ht = ct.meta_train("mann", MANN, sample, n_iterations=20, outer_lr=1e-2, rng=2, progress=False, memory_size=6)
    pf, hf = cf.meta_train("mann", MANN, sample, n_iterations=20, outer_lr=1e-2, rng=2, progress=False, memory_size=6)
    assert np.abs(np.array(ht.loss) - np.array(hf.loss)).max() < 1e-3 * np.mean(ht.loss)
    assert max_abs_diff(pt, pf) < 1e-3


def test_mann_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="n_reads"):
        init_mann(0, n_reads=-1)
    with pytest.raises(ValueError, match="params"):
        mann_sizes({k: v for k, v in MANN.items() if k != "out_w"})
    with pytest.raises(ValueError, match="y"):
        mann_forward_numpy(MANN, SEQ_X, SEQ_Y[:, :5])
    with pytest.raises(ValueError, match="memory_size"):
        ct.mann_forward(ct.from_numpy(MANN), torch.tensor(SEQ_X), torch.tensor(SEQ_Y), memory_size=1)


# --------------------------------------------------------------------------- the shipped weights (chapter 9)
def test_shipped_weights_have_the_schedules_layout_and_bind():
    from course_utils import load_omniglot
    from course_utils.blackbox import (PRETRAINED_SCHEDULE, SequenceSampler, instance_accuracy,
                                       load_pretrained_sequence_model, pretrained_seeds)
    s = PRETRAINED_SCHEDULE
    assert len(pretrained_seeds()) >= 3, "a ranking needs several seeds"
    for model, reads in (("mann", s["n_reads"]), ("lstm", 0)):
        p = load_pretrained_sequence_model(model, seed=pretrained_seeds()[0])
        layout = init_mann(0, input_dim=400, hidden=s["hidden"], memory_width=s["memory_width"], n_reads=reads)
        assert {k: v.shape for k, v in p.items()} == {k: v.shape for k, v in layout.items()}
        assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in p.values())
    test = SequenceSampler(load_omniglot().subset("test")).sample_batch(40, rng=1)
    p = load_pretrained_sequence_model("mann", seed=0)
    acc = instance_accuracy(mann_forward_numpy(p, test.x, test.y, memory_size=s["memory_size"]), test.y, test.instance)
    assert acc[1] > 0.4 and acc[9] > 0.5, "trained weights bind images to labels (chance: 20 %)"
    with pytest.raises(ValueError, match="model"):
        load_pretrained_sequence_model("gru")
    with pytest.raises(ValueError, match="seed"):
        load_pretrained_sequence_model("mann", seed=max(pretrained_seeds()) + 1)
