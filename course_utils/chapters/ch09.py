"""Chapter 9 (black-box meta-learning): exercise checkers, toy data, the chapter's figures and the
memory widget (a slider over the position in an Omniglot sequence)."""
from __future__ import annotations

import numpy as np
import matplotlib.pyplot as plt

from course_utils.blackbox import content_read_weights, least_used_weights
from course_utils.grading import _numpy, close, report
from course_utils.validation import check_array, check_int, check_labels, check_mapping, check_str

__all__ = ["READ_TOY", "WRITE_TOY", "LABEL_TOY", "memory_step_view", "plot_memory_step", "make_memory_widget",
           "plot_instance_accuracy", "plot_mse_against_k", "check_read_weights", "check_write_weights",
           "check_label_inputs"]

#: Challenge 1: one key and a memory of three rows.
READ_TOY = {"key": np.array([1.0, 1.0, 0.0]),
            "memory": np.array([[2.0, 2.0, 0.0], [0.0, 0.0, 3.0], [2.0, 0.0, 0.0]])}
#: Challenge 2: usage before the step, the previous read weights and the write gate σ(α) of one head.
WRITE_TOY = {"usage": np.array([0.9, 0.05, 1.4, 0.3]), "previous_read": np.array([0.1, 0.0, 0.8, 0.1]),
             "gate": 0.25}
#: Challenge 3: an episode's labels with 3 classes; the controller's label inputs are asked for.
LABEL_TOY = {"y": np.array([2, 0, 2, 1, 0]), "n_classes": 3}


# --------------------------------------------------------------------------- the memory at one step
def memory_step_view(trace: dict, logits, y, instance, *, episode: int = 0, step: int = 0) -> dict:
    """What the MANN did at one step of one episode: its read weights over the memory rows (per
    head), the write weights, its prediction and whether it was right.

    Args:
        trace: the trace of ``mann_forward(..., return_trace=True)`` (arrays (episodes, T, R, N) and
            (episodes, T, N)), NumPy or tensors.
        logits: (episodes, T, n_classes). y, instance: (episodes, T) labels and 0-based instances.
        episode, step: which episode and which time step.

    Returns:
        dict with ``read`` and ``write`` (R, N), ``probs`` (n_classes,), ``label``, ``predicted``,
        ``instance`` (1-based), ``correct``, ``step`` and ``history`` (T,) the correctness of every step.
    """
    check_mapping(trace, "trace")
    if trace.get("read_weights") is None or trace.get("write_weights") is None:
        raise ValueError("trace must hold 'read_weights' and 'write_weights' (a MANN with read heads, "
                         "mann_forward(..., return_trace=True))")
    read, write = (_numpy(trace[k]) for k in ("read_weights", "write_weights"))
    logits = _numpy(check_array(logits, "logits", ndim=3, dtype="real"))
    y = _numpy(check_labels(y, "y", n_classes=logits.shape[-1]), cast=False)
    instance = _numpy(check_array(instance, "instance", ndim=2, dtype="int"), cast=False)
    check_labels(instance, "instance", n_classes=logits.shape[1])
    if read.ndim != 4 or read.shape[:2] != logits.shape[:2] or write.shape != read.shape:
        raise ValueError(f"trace's read and write weights must be (episodes, T, R, N) matching the logits "
                         f"{logits.shape[:2]} + (R, N), got {read.shape} and {write.shape}")
    if y.shape != logits.shape[:2] or instance.shape != y.shape:
        raise ValueError(f"y and instance must have shape {logits.shape[:2]}, got {y.shape} and {instance.shape}")
    episode = check_int(episode, "episode", 0, logits.shape[0] - 1)
    step = check_int(step, "step", 0, logits.shape[1] - 1)
    z = logits[episode, step] - logits[episode, step].max()
    probs = np.exp(z) / np.exp(z).sum()
    pred = logits[episode].argmax(-1)
    return {"read": read[episode, step], "write": write[episode, step], "probs": probs,
            "label": int(y[episode, step]), "predicted": int(pred[step]), "instance": int(instance[episode, step]) + 1,
            "correct": bool(pred[step] == y[episode, step]), "step": step, "history": pred == y[episode]}


def plot_memory_step(view: dict, *, title: str = "The MANN at one step of an Omniglot sequence") -> plt.Figure:
    """Three panels for :func:`memory_step_view`'s dict: read and write weights over the memory
    rows, the predicted label probabilities, and which steps so far were right."""
    check_mapping(view, "view")
    check_str(title, "title")
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    rows = np.arange(view["read"].shape[-1])
    axes[0].bar(rows - 0.2, view["read"].sum(0), width=0.4, label="read weights w^r (summed over heads)")
    axes[0].bar(rows + 0.2, view["write"].sum(0), width=0.4, label="write weights w^w")
    axes[0].set(xlabel="memory row", ylabel="weight", title=f"step {view['step']}: memory access")
    axes[0].legend(fontsize="small")
    labels = np.arange(len(view["probs"]))
    axes[1].bar(labels, view["probs"], color=["tab:green" if i == view["label"] else "tab:grey" for i in labels],
                label="true label (green)")
    axes[1].set(xlabel="label", ylabel="predicted probability", ylim=(0, 1),
                title=f"instance {view['instance']} of its class: {'right' if view['correct'] else 'wrong'}")
    axes[1].legend(fontsize="small")
    hist = np.asarray(view["history"], float)
    axes[2].plot(np.arange(view["step"] + 1), hist[: view["step"] + 1], "o", ms=3, label="1 = right, 0 = wrong")
    axes[2].set(xlabel="step", ylabel="correct", xlim=(-1, len(hist)), ylim=(-0.2, 1.2), title="the episode so far")
    axes[2].legend(fontsize="small", loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def make_memory_widget(trace: dict, logits, y, instance, *, episode: int = 0):
    """A slider over the position in one sequence; each position shows :func:`plot_memory_step`.
    ``.result`` is :func:`memory_step_view`'s dict."""
    from course_utils.plots import show_figure
    from course_utils.widgets import int_slider, make_interactive

    first = memory_step_view(trace, logits, y, instance, episode=episode, step=0)
    n_steps = len(first["history"])

    def show(step=0):
        view = memory_step_view(trace, logits, y, instance, episode=episode, step=step)
        show_figure(plot_memory_step(view))
        return view

    return make_interactive(show, step=int_slider("position in the sequence", value=0, min=0, max=n_steps - 1))


# --------------------------------------------------------------------------- figures
def plot_instance_accuracy(curves: dict, *, published: dict | None = None,
                           title: str = "Accuracy by instance on test characters") -> plt.Figure:
    """Accuracy (%) against the instance number (1 = first presentation of a class) for each model.

    Args:
        curves: model name → (instances,) accuracies in [0, 1].
        published: optional {instance (1-based): accuracy in %} quoted from a paper (drawn as crosses).
    """
    check_mapping(curves, "curves")
    check_str(title, "title")
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for name, acc in curves.items():
        acc = np.asarray(check_array(acc, f"curves[{name!r}]", ndim=1, dtype="real"), float)
        ax.plot(np.arange(1, len(acc) + 1), 100 * acc, "o-", label=str(name))
    if published:
        check_mapping(published, "published")
        ax.plot(list(published), list(published.values()), "kx", ms=8, label="MANN, Santoro et al. (published)")
    ax.axhline(20, color="grey", lw=0.8, ls="--", label="chance (5 classes)")
    ax.set(xlabel="instance of the class in its episode", ylabel="accuracy (%)", ylim=(0, 100), title=title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def plot_mse_against_k(ks, curves: dict, *, title: str = "Mean squared error against the support size K",
                       ylabel: str = "query MSE (mean over test tasks)") -> plt.Figure:
    """Query MSE against K for each learner (log scale), e.g. the CNP, MAML and the pretrained baseline."""
    ks = np.asarray(check_array(ks, "ks", ndim=1, dtype="real"), float)
    check_mapping(curves, "curves")
    check_str(title, "title")
    check_str(ylabel, "ylabel")
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for name, mse in curves.items():
        mse = np.asarray(check_array(mse, f"curves[{name!r}]", ndim=1, dtype="real"), float)
        if mse.shape != ks.shape:
            raise ValueError(f"curves[{name!r}] must have one value per K ({len(ks)}), got {mse.shape}")
        ax.plot(ks, mse, "o-", label=str(name))
    ax.set(xlabel="support points K", ylabel=ylabel, title=title, yscale="log")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- challenges
def check_read_weights(answer) -> bool:
    """Challenge 1: the read weights of :data:`READ_TOY`'s key over its three memory rows."""
    name = "Challenge 1 (content-based read weights)"
    if answer is None:
        return report(False, name, "Set answer to the 3 read weights (an array that sums to 1).")
    key, memory = READ_TOY["key"], READ_TOY["memory"]
    expected = content_read_weights(key[None], memory)[0]
    dots = memory @ key
    if close(answer, np.exp(dots) / np.exp(dots).sum()):
        return report(False, name, "Use the cosine similarity (divide by both norms), not the dot product.")
    cos = dots / (np.linalg.norm(memory, axis=1) * np.linalg.norm(key))
    if close(answer, cos):
        return report(False, name, "The cosines are the scores; the weights are their softmax.")
    return report(close(answer, expected), name, "w(i) = softmax_i cos(k, M(i)): three weights that sum to 1.")


def check_write_weights(answer) -> bool:
    """Challenge 2: the write weights w^w = σ(α) w^r_{t−1} + (1 − σ(α)) w^lu_{t−1} for :data:`WRITE_TOY`
    (one head, so w^lu marks the one least-used row)."""
    name = "Challenge 2 (least-used write weights)"
    if answer is None:
        return report(False, name, "Set answer to the 4 write weights (an array).")
    t = WRITE_TOY
    lu = least_used_weights(t["usage"], 1)
    expected = t["gate"] * t["previous_read"] + (1 - t["gate"]) * lu
    most = np.eye(4)[np.argmax(t["usage"])]
    if close(answer, t["gate"] * t["previous_read"] + (1 - t["gate"]) * most):
        return report(False, name, "w^lu marks the *least* used row (smallest usage), not the most used.")
    if close(answer, (1 - t["gate"]) * t["previous_read"] + t["gate"] * lu):
        return report(False, name, "σ(α) weighs the previous read weights; 1 − σ(α) the least-used row.")
    return report(close(answer, expected), name, "Mix the previous read weights and the least-used row by the gate.")


def check_label_inputs(answer) -> bool:
    """Challenge 3: the (T, n_classes) label inputs the controller receives for :data:`LABEL_TOY`'s
    labels: one-hot of the previous step's label, zeros at the first step."""
    name = "Challenge 3 (labels one step late)"
    if answer is None:
        return report(False, name, "Set answer to a (5, 3) array: one row of label inputs per step.")
    y, c = LABEL_TOY["y"], LABEL_TOY["n_classes"]
    onehot = np.eye(c)[y]
    expected = np.vstack([np.zeros((1, c)), onehot[:-1]])
    if close(answer, onehot):
        return report(False, name, "Step t's own label is what must be predicted; its input is step t − 1's.")
    if np.shape(answer) == (4, c):
        return report(False, name, "There is one row per step, five in all: the first row is all zeros.")
    return report(close(answer, expected), name, "Row t is onehot(y[t − 1]); row 0 is zeros.")
