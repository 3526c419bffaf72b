"""Black-box (model-based) meta-learning (chapter 9), the framework-free part.

A black-box meta-learner is one network that *reads* a task's support set and predicts for new
inputs: no inner gradient loop, the "learning" happens in its forward pass. Two of them plug into
the course's one ``meta_train`` (see :mod:`course_utils.torch.blackbox` and
:mod:`course_utils.tensorflow.blackbox`, mirrored):

* **Conditional neural process** (CNP, Garnelo et al. 2018), ``method="cnp"``: an encoder maps
  every support pair (x_i, y_i) to r_i, the mean r = mean_i r_i summarises the task, and a decoder
  maps (r, x) to a Gaussian N(μ(x), σ(x)²) over y. Parameters: ``enc_w0, enc_b0, ...`` and
  ``dec_w0, dec_b0, ...`` (two MLPs in :mod:`course_utils.nets`' layout).

* **Memory-augmented neural network** (MANN, Santoro et al. 2016), ``method="mann"``: an LSTM
  controller reads image t with the label of image t − 1 and writes keys into an external memory
  (least-recently-used writes) and reads it back by cosine similarity. With ``n_reads=0`` the
  same layout is the plain LSTM baseline (no memory). Parameters: ``lstm_w, lstm_b`` (gates
  i, f, g, o), ``key_w, key_b`` and ``gate_w, gate_b`` (one key and one write gate σ(α) per
  read head), ``out_w, out_b``.
* **Sequence learners on Omniglot** (Santoro et al. 2016's protocol): :class:`SequenceSampler`
  draws episodes of ``n_classes`` characters × ``instances`` drawings in a random order, with
  labels assigned at random per episode; the learner sees image t with the label of image t − 1
  and must name image t. :func:`instance_accuracy` scores it by presentation (1st, 2nd, ...).

Here: the parameter layouts, NumPy reference forwards (the tests hold both frameworks to them)
and :func:`tile_context`, which lets a fixed-shape training batch carry 1, 2, 5 or 10 context
points exactly.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dataclasses import dataclass

from course_utils.nets import init_mlp, mlp_forward_numpy
from course_utils.seed import check_rng
from course_utils.validation import (check_array, check_bool, check_choice, check_float, check_int, check_labels,
                                     check_params, check_positive_int, check_same_float_dtype, check_task_arrays)
from course_utils.validation import _shape

__all__ = [
    "CNP_SIGMA_FLOOR",
    "init_cnp",
    "split_cnp",
    "cnp_forward_numpy",
    "cnp_nll_numpy",
    "tile_context",
    "check_cnp_call",
    "SequenceBatch",
    "SequenceSampler",
    "instance_accuracy",
    "init_mann",
    "mann_sizes",
    "content_read_weights",
    "least_used_weights",
    "mann_forward_numpy",
    "PRETRAINED_SCHEDULE",
    "pretrained_path",
    "pretrained_seeds",
    "load_pretrained_sequence_model",
]

#: σ(x) = floor + (1 − floor) · softplus(raw): the lower bound Garnelo et al.'s code uses (0.1), so that
#: the likelihood cannot grow without bound by shrinking σ on a few points.
CNP_SIGMA_FLOOR = 0.1


def init_cnp(rng: np.random.Generator | int | None = None, *, x_dim: int = 1, y_dim: int = 1, hidden: int = 128,
             r_dim: int = 128, depth: int = 3) -> dict[str, np.ndarray]:
    """A CNP's weights in NumPy (identical in both frameworks for the same ``rng``).

    Args:
        rng: generator or seed.
        x_dim, y_dim: sizes of an input and an output (1 and 1 for the sinusoids).
        hidden: width of the hidden layers; r_dim: size of the task representation r.
        depth: linear layers per MLP (>= 2; the paper's 1-D regression: 3 in the encoder, 3 in the decoder).

    Returns:
        ``enc_*``: an MLP (x_dim + y_dim) → hidden → ... → r_dim; ``dec_*``: an MLP
        (r_dim + x_dim) → hidden → ... → 2·y_dim (the mean μ and the raw scale of σ), float32.
    """
    rng = check_rng(rng)
    x_dim, y_dim = check_positive_int(x_dim, "x_dim"), check_positive_int(y_dim, "y_dim")
    hidden, r_dim = check_positive_int(hidden, "hidden"), check_positive_int(r_dim, "r_dim")
    depth = check_int(depth, "depth", 2)
    enc = init_mlp((x_dim + y_dim,) + (hidden,) * (depth - 1) + (r_dim,), rng=rng)
    dec = init_mlp((r_dim + x_dim,) + (hidden,) * (depth - 1) + (2 * y_dim,), rng=rng)
    return {**{"enc_" + k: v for k, v in enc.items()}, **{"dec_" + k: v for k, v in dec.items()}}


def split_cnp(params: dict) -> tuple[dict, dict]:
    """The encoder's and the decoder's weights of a CNP dict, each in the plain MLP layout (``w0, b0, ...``)."""
    check_params(params)
    enc = {k[4:]: v for k, v in params.items() if k.startswith("enc_")}
    dec = {k[4:]: v for k, v in params.items() if k.startswith("dec_")}
    if not enc or not dec or len(enc) + len(dec) != len(params):
        raise ValueError("params must hold a CNP's weights (keys enc_w0, enc_b0, ..., dec_w0, ...), "
                         f"got {sorted(params)}")
    check_params(enc, "params (the enc_* weights)", mlp=True)
    check_params(dec, "params (the dec_* weights)", mlp=True)
    return enc, dec


def check_cnp_call(params: dict, x_context, y_context, x_target) -> tuple[dict, dict]:
    """Validate a CNP call (both frameworks and NumPy use it); returns :func:`split_cnp`'s two dicts.

    ``x_context`` (..., n_c, x_dim), ``y_context`` (..., n_c, y_dim) and ``x_target`` (..., n_t, x_dim)
    must have the same rank (>= 2), the same leading task axes and the trailing sizes of ``params``.
    """
    enc, dec = split_cnp(params)
    for a, n in ((x_context, "x_context"), (y_context, "y_context"), (x_target, "x_target")):
        check_array(a, n, min_ndim=2, dtype="real")
    check_same_float_dtype(params=enc["w0"], x_context=x_context, y_context=y_context, x_target=x_target)
    x_dim, y_dim = _cnp_dims(enc, dec)
    xc, yc, xt = _shape(x_context), _shape(y_context), _shape(x_target)
    for shp, n, d in ((xc, "x_context", x_dim), (yc, "y_context", y_dim), (xt, "x_target", x_dim)):
        if shp[-1] not in (d, None):
            raise ValueError(f"{n} must have a trailing axis of size {d} (the CNP's {n[0]}_dim), got shape {shp}")
    if len(xc) != len(yc) or xc[:-1] != yc[:-1]:
        raise ValueError(f"x_context and y_context must have the same tasks and points axes, got {xc} and {yc}")
    if len(xt) != len(xc) or xt[:-2] != xc[:-2]:
        raise ValueError(f"x_target must have the task axes of x_context {xc[:-2]}, got shape {xt}")
    return enc, dec


def _cnp_dims(enc: dict, dec: dict) -> tuple[int, int]:
    d_in, r_dim = _shape(enc["w0"])[-2], _shape(enc[f"w{len(enc) // 2 - 1}"])[-1]
    y_dim = _shape(dec[f"b{len(dec) // 2 - 1}"])[-1] // 2
    x_dim = _shape(dec["w0"])[-2] - r_dim
    if x_dim < 1 or y_dim < 1 or d_in != x_dim + y_dim:
        raise ValueError(f"params must be a CNP whose encoder reads x_dim + y_dim inputs and whose decoder reads "
                         f"r_dim + x_dim; got enc_w0 {_shape(enc['w0'])}, dec_w0 {_shape(dec['w0'])}")
    return x_dim, y_dim


def _check_cnp_tasks(params: dict, x_support, y_support, x_query, y_query) -> None:
    """A CNP loss's task arrays: (tasks, k, x_dim), (tasks, k, y_dim), (tasks, q, x_dim), (tasks, q, y_dim)."""
    enc, dec = split_cnp(params)
    x_dim, y_dim = _cnp_dims(enc, dec)
    arrays = {"x_support": x_support, "y_support": y_support, "x_query": x_query, "y_query": y_query}
    for k, v in arrays.items():
        check_array(v, k, ndim=3, dtype="real")
    check_task_arrays(arrays, x_dim=x_dim, y_dim=y_dim)
    check_same_float_dtype(params=enc["w0"], **arrays)


def _softplus(z):
    return np.logaddexp(0.0, z)


def cnp_forward_numpy(params: dict, x_context, y_context, x_target) -> tuple[np.ndarray, np.ndarray]:
    """The CNP's prediction in NumPy (float64), the reference both frameworks are tested against.

    Args:
        params: :func:`init_cnp` weights.
        x_context (..., n_c, x_dim), y_context (..., n_c, y_dim): the support pairs of each task.
        x_target (..., n_t, x_dim): where to predict (leading task axes as in the context).

    Returns:
        μ and σ, each (..., n_t, y_dim).
    """
    enc, dec = check_cnp_call(params, x_context, y_context, x_target)
    xc, yc, xt = (np.asarray(a, np.float64) for a in (x_context, y_context, x_target))
    enc = {k: np.asarray(v, np.float64) for k, v in enc.items()}
    dec = {k: np.asarray(v, np.float64) for k, v in dec.items()}
    r = mlp_forward_numpy(enc, np.concatenate([xc, yc], -1)).mean(-2, keepdims=True)       # (..., 1, r_dim)
    r = np.broadcast_to(r, xt.shape[:-1] + r.shape[-1:])
    out = mlp_forward_numpy(dec, np.concatenate([r, xt], -1))
    mu, raw = np.split(out, 2, axis=-1)
    return mu, CNP_SIGMA_FLOOR + (1.0 - CNP_SIGMA_FLOOR) * _softplus(raw)


def cnp_nll_numpy(mu, sigma, y) -> float:
    """Mean Gaussian negative log-likelihood −log N(y | μ, σ²) over every target value."""
    for a, n in ((mu, "mu"), (sigma, "sigma"), (y, "y")):
        check_array(a, n, dtype="real")
    mu, sigma, y = (np.asarray(a, np.float64) for a in (mu, sigma, y))
    if not (mu.shape == sigma.shape == y.shape):
        raise ValueError(f"mu, sigma and y must have the same shape, got {mu.shape}, {sigma.shape} and {y.shape}")
    if not np.all(sigma > 0):
        raise ValueError("sigma must be > 0 everywhere")
    return float(np.mean(0.5 * np.log(2 * np.pi) + np.log(sigma) + 0.5 * ((y - mu) / sigma) ** 2))


def tile_context(x_support, y_support, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the first ``k`` support points of every task and repeat them to the original length.

    A fixed-shape batch (what the compiled training loops stack into blocks) can then carry any
    ``k`` that divides the support size: the mean of the repeated points' representations is
    *exactly* the mean over the ``k`` distinct points (the CNP's r), and the mean squared error
    over them is exactly the error over the ``k`` points (MAML's support loss).

    Args:
        x_support, y_support: (tasks, K, x_dim) and (tasks, K, y_dim) arrays.
        k: context points to keep, 1 <= k <= K, and k must divide K.

    Returns:
        the two arrays with the same shapes, point j being original point j mod k.
    """
    xs = np.asarray(check_array(x_support, "x_support", ndim=3))
    ys = np.asarray(check_array(y_support, "y_support", ndim=3))
    size = xs.shape[1]
    if ys.shape[:2] != xs.shape[:2]:
        raise ValueError(f"y_support must have the tasks and points axes of x_support {xs.shape[:2]}, got {ys.shape}")
    k = check_int(k, "k", 1, size)
    if size % k:
        raise ValueError(f"k must divide the number of support points {size}, got {k}")
    idx = np.arange(size) % k
    return xs[:, idx], ys[:, idx]


# --------------------------------------------------------------------------- Omniglot sequences
@dataclass(frozen=True)
class SequenceBatch:
    """Episodes as sequences: ``x`` (episodes, T, size²) float32 images in [0, 1] (ink = 1),
    ``y`` (episodes, T) int64 labels in 0..n_classes−1, ``instance`` (episodes, T) int64: image t
    is the ``instance[e, t] + 1``-th presentation of its class in the episode."""

    x: np.ndarray
    y: np.ndarray
    instance: np.ndarray


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """(n, H, W) uint8 → (n, size, size) float32 in [0, 1], Pillow's bilinear filter (antialiased)."""
    from PIL import Image

    if images.shape[-1] == size and images.shape[-2] == size:
        return images.astype(np.float32) / 255.0
    out = np.empty((len(images), size, size), np.float32)
    for i, im in enumerate(images):
        out[i] = np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR), np.float32) / 255.0
    return out


class SequenceSampler:
    """Santoro et al.'s one-shot sequences: ``n_classes`` characters, ``instances`` drawings each,
    shuffled into one sequence of T = n_classes · instances images, labels drawn anew per episode.

    Args:
        images: (n_characters, n_drawers, H, W) uint8, ink = 255 (``load_omniglot().subset(...)``).
        n_classes: classes per episode (>= 2). instances: drawings per class (>= 1, <= n_drawers).
        size: images are resized to size × size (the paper: 20), then flattened.
        rotations: each character rotated by 0/90/180/270 degrees is its own class (augmentation).
    """

    def __init__(self, images, *, n_classes: int = 5, instances: int = 10, size: int = 20, rotations: bool = False):
        check_array(images, "images", ndim=4, dtype="image")
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (ink = 255), got dtype {images.dtype}")
        self.rotations = check_bool(rotations, "rotations")
        n_chars, n_drawers = images.shape[:2]
        self.n_classes = check_int(n_classes, "n_classes", 2, n_chars * (4 if self.rotations else 1))
        self.instances = check_int(instances, "instances", 1, n_drawers)
        self.size = check_int(size, "size", 4, 105)
        flat = _resize(images.reshape(-1, *images.shape[2:]), self.size)
        self._images = flat.reshape(n_chars, n_drawers, self.size, self.size)
        self.n_pool = n_chars * (4 if self.rotations else 1)
        self.length = self.n_classes * self.instances

    def sample_batch(self, n_episodes: int, rng: np.random.Generator | int | None = None) -> SequenceBatch:
        """``n_episodes`` sequences; see :class:`SequenceBatch`."""
        n_episodes = check_int(n_episodes, "n_episodes", 1)
        rng = check_rng(rng)
        c, k, t_len = self.n_classes, self.instances, self.length
        xs, ys, inst = [], [], []
        for _ in range(n_episodes):
            chosen = rng.choice(self.n_pool, size=c, replace=False)
            labels = rng.permutation(c)
            order = rng.permutation(t_len)                    # position → (class slot, instance)
            slot, which = order // k, order % k
            x = np.empty((t_len, self.size, self.size), np.float32)
            for j, ch in enumerate(chosen):
                char, rot = (ch // 4, ch % 4) if self.rotations else (ch, 0)
                drawn = self._images[char, rng.choice(self._images.shape[1], size=k, replace=False)]
                if rot:
                    drawn = np.rot90(drawn, k=int(rot), axes=(-2, -1))
                x[slot == j] = drawn[which[slot == j]]
            seen = np.zeros(c, np.int64)
            n_th = np.empty(t_len, np.int64)
            for t, j in enumerate(slot):
                n_th[t], seen[j] = seen[j], seen[j] + 1
            xs.append(x.reshape(t_len, -1))
            ys.append(labels[slot])
            inst.append(n_th)
        return SequenceBatch(np.stack(xs), np.stack(ys).astype(np.int64), np.stack(inst))


def instance_accuracy(logits, y, instance, *, max_instance: int | None = None) -> np.ndarray:
    """Accuracy by presentation: entry i is the accuracy on images that are the (i + 1)-th
    instance of their class in their episode (Santoro et al.'s Table 1 columns).

    Args:
        logits: (episodes, T, n_classes) scores (any framework's tensor or an array).
        y, instance: (episodes, T) labels and 0-based instance indices (:class:`SequenceBatch`).
        max_instance: number of entries (default: the largest instance + 1).

    Returns:
        (max_instance,) float64 array (NaN where no image has that instance).
    """
    logits, y, instance = (np.asarray(a) for a in (check_array(logits, "logits", ndim=3, dtype="real"),
                                                   check_array(y, "y", ndim=2, dtype="int"),
                                                   check_array(instance, "instance", ndim=2, dtype="int")))
    if y.shape != logits.shape[:2] or instance.shape != y.shape:
        raise ValueError(f"y and instance must have shape {logits.shape[:2]} (the logits' episodes and steps), "
                         f"got {y.shape} and {instance.shape}")
    check_labels(y, "y", n_classes=logits.shape[-1])
    check_labels(instance, "instance", n_classes=logits.shape[1])
    n = int(instance.max()) + 1 if max_instance is None else check_int(max_instance, "max_instance", 1)
    hit = logits.argmax(-1) == y
    return np.array([hit[instance == i].mean() if (instance == i).any() else np.nan for i in range(n)])


# --------------------------------------------------------------------------- MANN (and the LSTM)
def init_mann(rng: np.random.Generator | int | None = None, *, input_dim: int = 400, n_classes: int = 5,
              hidden: int = 200, memory_width: int = 40, n_reads: int = 4) -> dict[str, np.ndarray]:
    """A MANN's weights in NumPy (identical in both frameworks for the same ``rng``).

    Args:
        rng: generator or seed.
        input_dim: size of a flattened image (20 × 20 = 400 in the paper). n_classes: labels per episode.
        hidden: the LSTM controller's width. memory_width: W, the size of a memory row (and a key).
        n_reads: R, read heads (>= 0). ``n_reads=0``: no memory at all, i.e. the plain LSTM
            baseline over (image, previous label) pairs.

    Returns:
        float32 arrays: ``lstm_w`` (input_dim + n_classes + R·W + hidden, 4·hidden), ``lstm_b`` (forget
        gate bias 1), and with R >= 1 ``key_w`` (hidden, R·W), ``key_b``, ``gate_w`` (hidden, R),
        ``gate_b``; ``out_w`` (hidden + R·W, n_classes), ``out_b``. Uniform ±1/√fan_in, as :func:`init_mlp`.
    """
    rng = check_rng(rng)
    d, c = check_positive_int(input_dim, "input_dim"), check_int(n_classes, "n_classes", 2)
    h, w = check_positive_int(hidden, "hidden"), check_positive_int(memory_width, "memory_width")
    r = check_int(n_reads, "n_reads", 0)

    def uni(fan_in, shape):
        return rng.uniform(-1 / np.sqrt(fan_in), 1 / np.sqrt(fan_in), size=shape).astype(np.float32)

    fan = d + c + r * w + h
    p = {"lstm_w": uni(fan, (fan, 4 * h)), "lstm_b": np.zeros(4 * h, np.float32)}
    p["lstm_b"][h:2 * h] = 1.0                                   # forget gate open at the start
    if r:
        p.update(key_w=uni(h, (h, r * w)), key_b=np.zeros(r * w, np.float32),
                 gate_w=uni(h, (h, r)), gate_b=np.zeros(r, np.float32))
    p.update(out_w=uni(h + r * w, (h + r * w, c)), out_b=np.zeros(c, np.float32))
    return p


def mann_sizes(params: dict) -> dict[str, int]:
    """``input_dim, n_classes, hidden, memory_width, n_reads`` of an :func:`init_mann` dict (checked)."""
    check_params(params, keys=("lstm_w", "lstm_b", "out_w", "out_b"))
    four_h = _shape(params["lstm_w"])[-1]
    h, c = four_h // 4, _shape(params["out_b"])[-1]
    has_mem = "key_w" in params
    if has_mem:
        check_params(params, keys=("key_w", "key_b", "gate_w", "gate_b"))
        r = _shape(params["gate_b"])[-1]
        w = _shape(params["key_b"])[-1] // max(r, 1)
    else:
        r, w = 0, 0
    d = _shape(params["lstm_w"])[0] - c - r * w - h
    ok = (four_h == 4 * h and _shape(params["lstm_b"]) == (four_h,) and d >= 1
          and _shape(params["out_w"]) == (h + r * w, c)
          and (not has_mem or (r >= 1 and _shape(params["key_w"]) == (h, r * w)
                               and _shape(params["gate_w"]) == (h, r))))
    if not ok:
        raise ValueError("params must be an init_mann layout (lstm_w (input + classes + R·W + hidden, 4·hidden), "
                         "key_w (hidden, R·W), gate_w (hidden, R), out_w (hidden + R·W, classes)); got shapes "
                         + ", ".join(f"{k} {_shape(v)}" for k, v in params.items()))
    return {"input_dim": d, "n_classes": c, "hidden": h, "memory_width": w, "n_reads": r}


def content_read_weights(keys, memory) -> np.ndarray:
    """Santoro et al.'s read weights: softmax over memory rows of the cosine similarity with each key.

    Args:
        keys: (..., R, W) one key per read head. memory: (..., N, W) the memory rows.

    Returns:
        (..., R, N): each head's weights over the N rows (each row of the result sums to 1).
    """
    k = np.asarray(check_array(keys, "keys", min_ndim=2, dtype="real"), np.float64)
    m = np.asarray(check_array(memory, "memory", min_ndim=2, dtype="real"), np.float64)
    if k.shape[-1] != m.shape[-1] or k.shape[:-2] != m.shape[:-2]:
        raise ValueError(f"keys (..., R, W) and memory (..., N, W) must share W and the leading axes, "
                         f"got {k.shape} and {m.shape}")
    cos = (k / (np.linalg.norm(k, axis=-1, keepdims=True) + _EPS)) @ np.swapaxes(
        m / (np.linalg.norm(m, axis=-1, keepdims=True) + _EPS), -1, -2)
    e = np.exp(cos - cos.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def least_used_weights(usage, n: int = 1) -> np.ndarray:
    """w^lu: 1 at the ``n`` memory rows with the smallest usage, 0 elsewhere (ties: the lower index).

    Args:
        usage: (..., N) usage weights w^u. n: how many rows (the paper: the number of read heads).
    """
    u = np.asarray(check_array(usage, "usage", min_ndim=1, dtype="real"), np.float64)
    n = check_int(n, "n", 1, u.shape[-1])
    idx = np.argsort(u, axis=-1, kind="stable")[..., :n]
    out = np.zeros_like(u)
    np.put_along_axis(out, idx, 1.0, axis=-1)
    return out


#: Added to norms in the cosine similarity (both frameworks use the same).
_EPS = 1e-8
#: The memory's starting value in every row (a constant: a zero row has no direction).
MEMORY_INIT = 1e-6


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def mann_forward_numpy(params: dict, x, y, *, memory_size: int = 128, gamma: float = 0.95,
                       return_trace: bool = False):
    """The MANN (or, with no read heads, the LSTM) over whole sequences in NumPy (float64): the
    reference both frameworks are tested against. One time step t, per episode:

    1. controller input [x_t, onehot(y_{t−1}) (zeros at t = 0), r_{t−1}] → LSTM → h_t;
    2. per head: key k_t = tanh(key_w h_t + key_b), gate σ(α_t) = σ(gate_w h_t + gate_b);
    3. write weights w^w_t = σ(α_t) w^r_{t−1} + (1 − σ(α_t)) w^lu_{t−1}; the least-used row(s) are
       zeroed, then M_t = M_{t−1} + Σ_heads w^w_t ⊗ k_t;
    4. read weights w^r_t = softmax_i cos(k_t, M_t(i)), read r_t = Σ_i w^r_t(i) M_t(i);
    5. usage w^u_t = γ w^u_{t−1} + Σ_heads (w^r_t + w^w_t); w^lu_t = the R least-used rows;
    6. logits_t = out_w [h_t, r_t] + out_b.

    Args:
        params: :func:`init_mann` weights. x: (episodes, T, input_dim) images. y: (episodes, T) labels.
        memory_size: N rows. gamma: usage decay in [0, 1]. return_trace: also return the read and
            write weights, (episodes, T, R, N) each, and the usage (episodes, T, N).

    Returns:
        logits (episodes, T, n_classes), or (logits, trace dict) with ``return_trace``.
    """
    sz = mann_sizes(params)
    _check_sequences(sz, x, y)
    y = np.asarray(y)
    n_rows = check_int(memory_size, "memory_size", max(sz["n_reads"], 1))
    gamma = check_float(gamma, "gamma", 0.0, 1.0)
    return_trace = check_bool(return_trace, "return_trace")
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    x = np.asarray(x, np.float64)
    b, t_len = y.shape
    h_dim, c, r, w = sz["hidden"], sz["n_classes"], sz["n_reads"], sz["memory_width"]
    onehot = np.eye(c)[y]
    h, cell = np.zeros((b, h_dim)), np.zeros((b, h_dim))
    mem, reads = np.full((b, n_rows, w), MEMORY_INIT), np.zeros((b, r * w))
    w_read, usage = np.zeros((b, r, n_rows)), np.zeros((b, n_rows))
    w_lu = least_used_weights(usage, max(r, 1)) if r else None
    logits, trace = [], {"read_weights": [], "write_weights": [], "usage": []}
    for t in range(t_len):
        y_prev = onehot[:, t - 1] if t else np.zeros((b, c))
        z = np.concatenate([x[:, t], y_prev, reads, h], -1) @ p["lstm_w"] + p["lstm_b"]
        i, f, g, o = np.split(z, 4, axis=-1)
        cell = _sigmoid(f) * cell + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(cell)
        if r:
            keys = np.tanh(h @ p["key_w"] + p["key_b"]).reshape(b, r, w)
            alpha = _sigmoid(h @ p["gate_w"] + p["gate_b"])[..., None]                  # (b, R, 1)
            w_write = alpha * w_read + (1 - alpha) * w_lu[:, None, :]
            mem = mem * (1 - w_lu)[..., None] + np.swapaxes(w_write, 1, 2) @ keys
            w_read = content_read_weights(keys, mem)
            reads = (w_read @ mem).reshape(b, r * w)
            usage = gamma * usage + w_read.sum(1) + w_write.sum(1)
            w_lu = least_used_weights(usage, r)
            for k, v in (("read_weights", w_read), ("write_weights", w_write), ("usage", usage)):
                trace[k].append(v)
        logits.append(np.concatenate([h, reads], -1) @ p["out_w"] + p["out_b"])
    out = np.stack(logits, 1)
    if not return_trace:
        return out
    return out, {k: (np.stack(v, 1) if v else None) for k, v in trace.items()}


def _check_sequences(sizes: dict, x, y, params: dict | None = None):
    """x (episodes, T, input_dim) real, y (episodes, T) labels in [0, n_classes); x's dtype that of ``params``."""
    check_array(x, "x", ndim=3, dtype="real", last=sizes["input_dim"])
    if params is not None:
        check_same_float_dtype(params=params["lstm_w"], x=x)
    check_labels(y, "y", n_classes=sizes["n_classes"])
    check_array(y, "y", ndim=2, dtype="label")
    if tuple(_shape(y)) != tuple(_shape(x))[:2]:
        raise ValueError(f"y must have shape (episodes, T) = {tuple(_shape(x))[:2]} to match x, got {tuple(_shape(y))}")


# --------------------------------------------------------------------------- shipped weights
#: The schedule ``benchmarks/train_mann.py`` trains chapter 9's shipped MANN and LSTM with
#: (PyTorch, Adam, one stage per (step size, iterations) pair, batches of 16 sequences).
PRETRAINED_SCHEDULE = {"hidden": 100, "memory_size": 64, "memory_width": 40, "n_reads": 1, "batch": 16,
                       "stages": [(1e-2, 4000), (2e-3, 2000)], "eval_every": 1000}


def pretrained_path() -> Path:
    """Where the package keeps the weights ``benchmarks/train_mann.py`` trained (float16, npz)."""
    return Path(__file__).resolve().parent / "weights" / "ch09_sequence_models.npz"


def pretrained_seeds() -> list[int]:
    """The training seeds whose weights the package ships (empty when the file is missing)."""
    path = pretrained_path()
    if not path.exists():
        return []
    with np.load(path) as z:
        return sorted({int(k.split("/")[0][4:]) for k in z.files})


def load_pretrained_sequence_model(model: str = "mann", *, seed: int = 0) -> dict[str, np.ndarray]:
    """The shipped weights of the MANN or the LSTM baseline trained with :data:`PRETRAINED_SCHEDULE`.

    Args:
        model: ``"mann"`` (one read head) or ``"lstm"`` (no memory), both :func:`init_mann` layouts.
        seed: the training seed (initial weights and task stream), one of :func:`pretrained_seeds`.

    Returns:
        float32 NumPy weights (stored in float16 to keep the package small).
    """
    model = check_choice(model, "model", ("mann", "lstm"))
    seeds = pretrained_seeds()
    if not seeds:
        raise FileNotFoundError(f"{pretrained_path()} is missing: run `python benchmarks/train_mann.py` and "
                                "`python benchmarks/train_mann.py --merge` to train the weights")
    seed = check_int(seed, "seed", min(seeds), max(seeds))
    prefix = f"seed{seed}/{model}/"
    with np.load(pretrained_path()) as z:
        params = {k[len(prefix):]: z[k].astype(np.float32) for k in z.files if k.startswith(prefix)}
    if not params:
        raise ValueError(f"seed must be one of the shipped seeds {seeds}, got {seed}")
    return params
