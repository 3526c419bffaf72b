"""How far the MANN and the LSTM baseline get on Santoro et al.'s Omniglot sequences in a budget.

Trains ``meta_train("mann", ...)`` twice from the same seed and task stream, once with memory
(``n_reads`` read heads) and once without (``n_reads=0``: the plain LSTM over (image, previous
label) pairs), then scores both on fresh sequences of the *test* characters: accuracy by instance
(1st, 2nd, ... presentation of a class in its episode). This is the measurement behind chapter
9's budget: a study script, not a timed test.

Protocol (Santoro et al. 2016): 5 classes × 10 drawings per episode, shuffled into 50 steps,
labels drawn anew per episode and shown one step late; images 20 × 20; training characters
(Vinyals train + val, 1,200) × 4 rotations; test characters (423) without rotations.

Usage: python benchmarks/mann_omniglot.py [--framework torch|tensorflow] [--iterations N]
       [--hidden H] [--memory-size N] [--memory-width W] [--reads R] [--batch B] [--lr LR]
       [--test-episodes E] [--out PATH]
Writes JSON (default benchmarks/results/mann_omniglot.json) and prints one line per model.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from course_utils import load_omniglot, set_seed  # noqa: E402
from course_utils.blackbox import SequenceSampler, init_mann, instance_accuracy  # noqa: E402


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--framework", choices=("torch", "tensorflow"), default="torch")
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--memory-size", type=int, default=64)
    ap.add_argument("--memory-width", type=int, default=40)
    ap.add_argument("--reads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--test-episodes", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mann_omniglot.json"))
    args = ap.parse_args(argv)

    if args.framework == "torch":
        import torch

        import course_utils.torch as fw
        torch.set_num_threads(1)
        to_t = torch.as_tensor
    else:
        import tensorflow as tf

        import course_utils.tensorflow as fw
        to_t = tf.constant
    set_seed(args.seed)
    omniglot = load_omniglot()
    train = SequenceSampler(omniglot.subset("trainval"), rotations=True)
    test = SequenceSampler(omniglot.subset("test"), rotations=False)

    def sample(rng):
        b = train.sample_batch(args.batch, rng)
        return b.x, b.y, b.x, b.y

    batches = [test.sample_batch(100, rng=10_000 + i) for i in range(max(1, args.test_episodes // 100))]
    report = {"args": vars(args), "python": platform.python_version(), "models": {}}
    for name, reads in (("mann", args.reads), ("lstm", 0)):
        p0 = init_mann(args.seed, input_dim=train.size ** 2, hidden=args.hidden, memory_width=args.memory_width,
                       n_reads=reads)
        params, hist = fw.meta_train("mann", p0, sample, n_iterations=args.iterations, outer_lr=args.lr,
                                     rng=args.seed + 1, progress=False, memory_size=args.memory_size)
        accs = []
        for b in batches:
            logits = fw.mann_forward(fw.from_numpy(params, requires_grad=False), to_t(b.x), to_t(b.y),
                                     memory_size=args.memory_size)
            logits = logits.detach().numpy() if hasattr(logits, "detach") else logits.numpy()
            accs.append(instance_accuracy(logits, b.y, b.instance, max_instance=10))
        acc = np.mean(accs, 0)
        report["models"][name] = {
            "seconds": hist.seconds, "ms_per_iteration": 1e3 * hist.seconds_per_iteration,
            "loss_first_50": float(np.mean(hist.loss[:50])), "loss_last_50": float(np.mean(hist.loss[-50:])),
            "accuracy_by_instance": [round(100 * float(a), 2) for a in acc]}
        print(f"{name}: {args.iterations} iterations in {hist.seconds:.0f} s ({1e3 * hist.seconds_per_iteration:.0f}"
              f" ms/it); accuracy at instance 1/2/3/5/10: "
              + " / ".join(f"{100 * acc[i]:.1f}" for i in (0, 1, 2, 4, 9)) + " %", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
