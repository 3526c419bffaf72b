"""Chapter 8 (metric-based meta-learning): episode views for the slider, small glue, and the
challenge checkers (print pass/fail, return a bool, never raise).

The maths is in :mod:`course_utils.metric` (NumPy) and :mod:`course_utils.torch.metric` /
:mod:`course_utils.tensorflow.metric`; this module only wires it to figures and exercises.
"""
from __future__ import annotations

import numpy as np

from course_utils import metric
from course_utils.grading import close, report
from course_utils.seed import check_rng
from course_utils.tasks import EpisodeSampler
from course_utils.validation import (check_array, check_bool, check_convnet, check_framework, check_int, check_mapping,
                                     check_str)

__all__ = [
    "Snapshots",
    "pooled_batch",
    "embed_classes",
    "format_rows",
    "episode_view",
    "plot_episode_view",
    "make_episode_widget",
    "PROTO_TOY",
    "COSINE_TOY",
    "check_prototypes",
    "check_linear_head",
    "check_cosine_vs_euclidean",
]


class Snapshots:
    """An ``eval_fn`` for ``meta_train`` that keeps a copy of θ at every evaluation.

    ``meta_train(..., eval_fn=snap, eval_every=100)`` leaves θ after 0, 100, 200, ... iterations
    in ``snap.params`` (a list of NumPy dicts); each call returns ||θ|| (recorded in ``history.eval``).
    """

    def __init__(self) -> None:
        self.params: list[dict[str, np.ndarray]] = []

    def __call__(self, params: dict) -> float:
        self.params.append({k: np.array(v, copy=True) for k, v in params.items()})
        return float(np.sqrt(sum(float((np.asarray(v, np.float64) ** 2).sum()) for v in params.values())))


def pooled_batch(images, batch_size: int, rng, *, rotations: bool = True) -> tuple[np.ndarray, ...]:
    """A batch for the pretrained baseline: random images of all training classes with their
    GLOBAL labels (class 4c + r is character c turned r quarter turns), split in two halves as
    ``(x_support, y_support, x_query, y_query)`` with one "task" on axis 0 (``meta_train("pretrain")``
    pools the halves). ``images``: uint8 (C, n, S, S)."""
    images = np.asarray(check_array(images, "images", ndim=4, dtype="image"))
    batch_size = check_int(batch_size, "batch_size", 2)
    rng = check_rng(rng, allow_none=False)
    rotations = check_bool(rotations, "rotations")
    n_classes = images.shape[0] * (4 if rotations else 1)
    label = rng.integers(0, n_classes, batch_size)
    char, rot = (label // 4, label % 4) if rotations else (label, np.zeros_like(label))
    x = images[char, rng.integers(0, images.shape[1], batch_size)]
    x = np.stack([np.rot90(im, k=int(r)) for im, r in zip(x, rot)])
    h = batch_size // 2
    return x[None, :h], label[None, :h], x[None, h:], label[None, h:]


def embed_classes(fw, params: dict, class_images, bn_stats: dict) -> np.ndarray:
    """Embed every image of ``class_images`` (n_classes, n, S, S) once with ``fw.embed_images``
    (fixed batch-norm statistics ``bn_stats``): (n_classes, n, D) float32."""
    check_framework(fw, "embed_images")
    check_convnet(params, head=False)  # the embedding only: a net without its head is valid
    imgs = np.asarray(check_array(class_images, "class_images", ndim=4, dtype="image"))
    check_mapping(bn_stats, "bn_stats", "a dict of batch-norm statistics (fw.bn_statistics)")
    flat = fw.embed_images(params, imgs.reshape(-1, *imgs.shape[2:]), bn_stats)
    return flat.reshape(imgs.shape[0], imgs.shape[1], -1)


def format_rows(rows: dict[str, dict[str, tuple[float, float]]]) -> str:
    """A text table of accuracies: ``rows[method][setting] = (mean, ci95)`` → "98.1 ± 0.4" cells (%)."""
    check_mapping(rows, "rows", "a dict {method: {setting: (mean, ci95)}}")
    if not rows or not all(isinstance(cells, dict) and cells for cells in rows.values()):
        raise ValueError(f"rows must be a non-empty dict {{method: {{setting: (mean, ci95)}}}}, got {rows!r}"[:200])
    settings = list(next(iter(rows.values())))
    width = max(len(m) for m in rows) + 2
    lines = [" " * width + "".join(f"{s:>16}" for s in settings)]
    for method, cells in rows.items():
        lines.append(f"{method:<{width}}" + "".join(f"{100 * m:>9.1f} ± {100 * c:<4.1f}" for m, c in cells.values()))
    return "\n".join(lines)


# --------------------------------------------------------------------------- the episode slider
def episode_view(embeddings, *, n_way: int = 5, k_shot: int = 1, n_query: int = 3, seed: int = 0) -> dict:
    """One test episode drawn from precomputed ``embeddings`` (n_classes, n, D), classified by the
    nearest prototype. Returns its prototypes, the squared distances (n_query·n_way, n_way) that
    decide each query, the predictions, the accuracy, and a 2-D PCA of supports, queries and
    prototypes (fitted on this episode) for plotting."""
    emb = np.asarray(check_array(embeddings, "embeddings", ndim=3, dtype="real"))
    ep = EpisodeSampler(emb, n_way=n_way, k_shot=k_shot, n_query=n_query).sample(check_int(seed, "seed", 0))
    protos = metric.prototypes(ep.x_support, ep.y_support, n_way)
    dist = metric.squared_distances(ep.x_query, protos)
    pred = dist.argmin(1)
    pts = metric.pca_2d(np.concatenate([ep.x_support, ep.x_query, protos]))
    n_s, n_q = len(ep.y_support), len(ep.y_query)
    return {"n_way": n_way, "k_shot": k_shot, "classes": ep.classes, "y_support": ep.y_support,
            "y_query": ep.y_query, "prototypes": protos, "distances": dist, "predictions": pred,
            "accuracy": float((pred == ep.y_query).mean()), "support_2d": pts[:n_s],
            "query_2d": pts[n_s:n_s + n_q], "prototypes_2d": pts[n_s + n_q:]}


def plot_episode_view(view: dict, *, title: str = "A test episode in the embedding"):
    """Left: the 2-D projection (dots: support, stars: prototypes, crosses: queries, each joined to
    the prototype it is assigned to; red = wrong). Right: the distances that decide each query.
    Returns the Figure (drawn outside pyplot; display it with :func:`course_utils.plots.show_figure`)."""
    import matplotlib

    from course_utils.plots import new_figure

    check_mapping(view, "view", "an episode_view result")
    missing = sorted({"n_way", "k_shot", "y_support", "y_query", "distances", "predictions", "accuracy",
                      "support_2d", "query_2d", "prototypes_2d"} - set(view))
    if missing:
        raise ValueError(f"view must be an episode_view result, missing {missing}")
    check_str(title, "title")

    fig = new_figure((11, 4.2))  # outside pyplot: a slider redraw is never half-drawn
    ax, hx = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 1]})
    colors = matplotlib.colormaps["tab20"](np.linspace(0, 1, max(view["n_way"], 2)))
    for k in range(view["n_way"]):
        s = view["support_2d"][view["y_support"] == k]
        ax.scatter(s[:, 0], s[:, 1], color=colors[k], s=18, alpha=0.6)
        ax.scatter(*view["prototypes_2d"][k], color=colors[k], marker="*", s=260, edgecolor="k", zorder=3)
    for xy, y, p in zip(view["query_2d"], view["y_query"], view["predictions"]):
        c = view["prototypes_2d"][p]
        ax.plot([xy[0], c[0]], [xy[1], c[1]], color="tab:red" if p != y else "0.6", lw=0.8, zorder=1)
        ax.scatter(*xy, color=colors[y], marker="x", s=40, zorder=2)
    ax.scatter([], [], color="0.4", s=18, label="support")
    ax.scatter([], [], color="0.4", marker="*", s=120, label="prototype")
    ax.scatter([], [], color="0.4", marker="x", label="query (line: its nearest prototype)")
    ax.set(title=f"{title}: {view['n_way']}-way {view['k_shot']}-shot, accuracy {view['accuracy']:.0%}",
           xlabel="principal axis 1 (embedding units)", ylabel="principal axis 2 (embedding units)")
    ax.legend(fontsize="small", loc="best")
    im = hx.imshow(view["distances"], aspect="auto", cmap="viridis_r")
    hx.scatter(view["predictions"], np.arange(len(view["predictions"])), marker="o", facecolor="none",
               edgecolor="w", s=30, label="nearest prototype (the prediction)")
    hx.set(title="squared distance from each query to each prototype", xlabel="prototype (class)",
           ylabel="query (sorted by true class)")
    fig.colorbar(im, ax=hx, label="||f(x) − c_k||² (embedding units²)")
    hx.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    return fig


def make_episode_widget(embeddings, *, max_way: int = 20, max_shot: int = 10, n_query: int = 3):
    """Sliders for way, shot and the episode seed; each move draws a new test episode, its
    prototypes and the distances that decide every query. ``.result`` is :func:`episode_view`'s dict."""
    from course_utils.plots import show_figure
    from course_utils.widgets import int_slider, make_interactive

    emb = np.asarray(check_array(embeddings, "embeddings", ndim=3, dtype="real"))
    n_query = check_int(n_query, "n_query", 1, emb.shape[1] - 1)
    max_way = check_int(max_way, "max_way", 2, emb.shape[0])
    max_shot = check_int(max_shot, "max_shot", 1, emb.shape[1] - n_query)

    def show(n_way=5, k_shot=1, seed=0):
        view = episode_view(emb, n_way=n_way, k_shot=k_shot, n_query=n_query, seed=seed)
        show_figure(plot_episode_view(view))
        return view

    return make_interactive(show, n_way=int_slider("way (classes)", value=5, min=2, max=max_way),
                            k_shot=int_slider("shot (examples per class)", value=1, min=1, max=max_shot),
                            seed=int_slider("episode seed", value=0, min=0, max=99))


# --------------------------------------------------------------------------- challenges
#: Challenge 1 and 2: a 3-way 2-shot episode with 2-D embeddings.
PROTO_TOY = {"z_support": np.array([[1.0, 2.0], [3.0, 0.0], [-1.0, -1.0], [-2.0, 0.0], [0.5, 4.0], [1.5, 3.0]]),
             "y_support": np.array([0, 0, 1, 1, 2, 2]), "n_way": 3}

#: Challenge 3: a 3-way 2-shot episode and one query on which the two distances disagree.
COSINE_TOY = {"z_support": np.array([[0.4, 0.1], [0.6, -0.1], [1.5, 2.5], [2.5, 1.5], [-1.2, 0.4], [-0.8, 0.6]]),
              "y_support": np.array([0, 0, 1, 1, 2, 2]), "n_way": 3, "z_query": np.array([1.2, 1.0])}


def check_prototypes(answer) -> bool:
    """Challenge 1: the prototypes (3, 2) of :data:`PROTO_TOY`, class k in row k."""
    name = "Challenge 1 (prototypes by hand)"
    if answer is None:
        return report(False, name, "Set answer to a (3, 2) array: row k is the mean of the support "
                                   "embeddings of class k.")
    t = PROTO_TOY
    expected = metric.prototypes(t["z_support"], t["y_support"], t["n_way"])
    if close(answer, t["z_support"].mean(0)):
        return report(False, name, "That is the mean of ALL support embeddings; average each class separately.")
    return report(close(answer, expected), name, "Row k must be the mean of the z_support rows whose label is k "
                                                   "(shape (n_way, D) = (3, 2)).")


def _head_parts(answer):
    if isinstance(answer, dict) and {"head_w", "head_b"} <= set(answer):
        return answer["head_w"], answer["head_b"]
    if isinstance(answer, (tuple, list)) and len(answer) == 2:
        return answer[0], answer[1]
    return None


def check_linear_head(answer) -> bool:
    """Challenge 2: the linear layer (W (2, 3), b (3,)) whose softmax equals the ProtoNet's on
    :data:`PROTO_TOY`; a tuple ``(W, b)`` or a dict with ``head_w``/``head_b``."""
    name = "Challenge 2 (the equivalent linear layer)"
    parts = None if answer is None else _head_parts(answer)
    if parts is None:
        return report(False, name, "Set answer to (W, b): W of shape (D, n_way) = (2, 3), b of shape (3,).")
    t = PROTO_TOY
    w, b = metric.prototype_head(metric.prototypes(t["z_support"], t["y_support"], t["n_way"]))
    if close(parts[0], w / 2):
        return report(False, name, "Expand -||z - c||²: the cross term is 2 c·z, so W needs a factor 2.")
    if close(parts[0], w) and close(parts[1], -b):
        return report(False, name, "W is right; the bias is MINUS the squared norm of each prototype.")
    return report(close(parts[0], w) and close(parts[1], b), name,
                  "Expand -||z - c_k||² = 2 c_k·z - ||c_k||² - ||z||² and drop the term that is the same for every k.")


def check_cosine_vs_euclidean(answer) -> bool:
    """Challenge 3: the class that the query of :data:`COSINE_TOY` gets from the nearest prototype in
    squared Euclidean distance and from the most cosine-similar prototype:
    ``{"euclidean": k1, "cosine": k2}``."""
    name = "Challenge 3 (cosine versus squared Euclidean)"
    if not isinstance(answer, dict) or not {"euclidean", "cosine"} <= set(answer):
        return report(False, name, 'Set answer to {"euclidean": class, "cosine": class} (integers 0..2).')
    t = COSINE_TOY
    c = metric.prototypes(t["z_support"], t["y_support"], t["n_way"])
    q = t["z_query"][None]
    expected = {"euclidean": int(metric.squared_distances(q, c).argmin()),
                "cosine": int(metric.cosine_similarities(q, c).argmax())}
    try:
        got = {k: int(answer[k]) for k in expected}
    except (TypeError, ValueError):
        return report(False, name, "Both entries must be class indices (integers 0..2).")
    if got == {"euclidean": expected["cosine"], "cosine": expected["euclidean"]}:
        return report(False, name, "You swapped them: cosine ignores the prototypes' lengths, Euclidean does not.")
    return report(got == expected, name, "Compute the prototypes first, then ||q - c_k||² and q·c_k / (||q|| ||c_k||).")
