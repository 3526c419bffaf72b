"""Train the weights chapter 9 evaluates: the MANN and the LSTM baseline on Santoro et al.'s
Omniglot sequences, several seeds, the same schedule for both models.

A MANN sits on a loss plateau first and only starts to bind images to labels after about 800
meta-iterations at Adam 1e-2 (``benchmarks/results/mann_study.md``); getting far takes thousands,
far more than a chapter's 2-minute budget on a laptop CPU. So this script trains both models with the package's own
``meta_train("mann", ...)`` (PyTorch, one thread, the same task stream and initial-weight seed for
the two models of a seed) and stores the final weights in float16 in
``course_utils/weights/ch09_sequence_models.npz``; chapter 9 loads them, evaluates them on fresh
test sequences and trains from scratch only briefly. Deterministic: the same seeds give the same
file (PyTorch on the CPU, one thread).

Usage: python benchmarks/train_mann.py [--seeds 0 1 2] [--out-dir DIR]   (about 10 CPU minutes a seed)
       python benchmarks/train_mann.py --merge   (collects the per-seed files into the package file)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from course_utils import load_omniglot, set_seed  # noqa: E402
from course_utils.blackbox import (PRETRAINED_SCHEDULE, SequenceSampler, init_mann,  # noqa: E402
                                   instance_accuracy, pretrained_path)

RESULTS = ROOT / "benchmarks" / "results"


def train_seed(seed: int, out_dir: Path) -> dict:
    import torch

    import course_utils.torch as ct
    torch.set_num_threads(1)
    s = PRETRAINED_SCHEDULE
    set_seed(seed)
    omniglot = load_omniglot()
    train = SequenceSampler(omniglot.subset("trainval"), rotations=True)
    test = SequenceSampler(omniglot.subset("test"), rotations=False)
    probe = test.sample_batch(200, rng=10_000)

    def sample(rng):
        b = train.sample_batch(s["batch"], rng)
        return b.x, b.y, b.x, b.y

    out, log = {}, {}
    for name, reads in (("mann", s["n_reads"]), ("lstm", 0)):
        params = init_mann(seed, input_dim=train.size ** 2, hidden=s["hidden"], memory_width=s["memory_width"],
                           n_reads=reads)
        curve, seconds, state = [], 0.0, {"stage": 0}

        def probe_accuracy(p, curve=curve, state=state):
            logits = ct.mann_forward(ct.from_numpy(p, requires_grad=False), torch.as_tensor(probe.x),
                                     torch.as_tensor(probe.y), memory_size=s["memory_size"]).numpy()
            acc = instance_accuracy(logits, probe.y, probe.instance, max_instance=10)
            curve.append({"stage": state["stage"], "accuracy_by_instance": [round(100 * float(a), 1) for a in acc]})
            return float(acc[1])

        for stage, (lr, n) in enumerate(s["stages"]):
            state["stage"] = stage
            params, hist = ct.meta_train("mann", params, sample, n_iterations=n, outer_lr=lr,
                                         rng=1000 * seed + 10 * stage + 1, progress=False,
                                         memory_size=s["memory_size"], eval_fn=probe_accuracy,
                                         eval_every=s["eval_every"])
            seconds += hist.seconds
            print(f"seed {seed} {name} stage {stage}: {n} its at lr {lr:g} in {hist.seconds:.0f} s, loss "
                  f"{np.mean(hist.loss[:20]):.3f} -> {np.mean(hist.loss[-50:]):.3f}; probe {curve[-1]}", flush=True)
        for k, v in params.items():
            out[f"seed{seed}/{name}/{k}"] = v.astype(np.float16)
        log[name] = {"seconds": seconds, "probe_curve": curve}
    np.savez_compressed(out_dir / f"seed{seed}.npz", **out)
    (out_dir / f"seed{seed}.json").write_text(json.dumps(log, indent=1))
    return log


def merge(out_dir: Path) -> None:
    arrays, logs = {}, {}
    for f in sorted(out_dir.glob("seed*.npz")):
        with np.load(f) as z:
            arrays.update({k: z[k] for k in z.files})
        logs[f.stem] = json.loads(f.with_suffix(".json").read_text())
    target = pretrained_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(target, **arrays)
    (RESULTS / "mann_pretrained.json").write_text(json.dumps({"schedule": PRETRAINED_SCHEDULE, "runs": logs},
                                                             indent=1))
    print(f"wrote {target} ({target.stat().st_size / 1e6:.2f} MB) from {sorted(logs)}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out-dir", default=str(RESULTS / "mann_pretrained_runs"))
    ap.add_argument("--merge", action="store_true")
    args = ap.parse_args(argv)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.merge:
        merge(out_dir)
        return
    t0 = time.time()
    for seed in args.seeds:
        train_seed(seed, out_dir)
    print(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
