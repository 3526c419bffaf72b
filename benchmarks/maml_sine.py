"""Time one second-order MAML meta-gradient on the sinusoid benchmark, for every implementation.

Setup (Finn et al. 2017, §5.1): 1-40-40-1 ReLU MLP, 25 tasks per meta-batch, K = 10 support and
10 query points per task, one inner step with α = 0.01, second order. Each variant runs in its own
subprocess (so its peak memory is its own), computes the meta-gradient of the same batch from the
same weights, checks it against the per-task PyTorch loop, and reports the median wall time.

Variants:
  torch loop          course_utils.torch.maml_objective: Python loop over tasks, autograd.grad(create_graph=True)
  torch.func vmap     course_utils.torch.make_meta_gradient_fn: grad + vmap over tasks
  tf eager loop       course_utils.tensorflow.maml_objective under an outer GradientTape, eager
  tf.function loop    the same loop compiled with tf.function
  tf eager tiled      course_utils.tensorflow.make_meta_gradient_fn() run eagerly: tiled weights, batched matmuls
  tf.function tiled   course_utils.tensorflow.make_meta_gradient_fn() (a tf.function)

Usage: python benchmarks/maml_sine.py [--repeats N] [--torch-threads T] [--out PATH]
PyTorch runs on one thread by default (see course_utils.torch.meta: on 1-2 shared cores its
multi-threaded kernels wait on each other); pass --torch-threads 0 to keep PyTorch's default.
Writes JSON to benchmarks/results/maml_sine.json and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = ["torch loop", "torch.func vmap", "tf eager loop", "tf.function loop", "tf eager tiled",
            "tf.function tiled"]
SLOW = {"tf eager loop": 0.3, "torch loop": 0.5}  # fraction of --repeats for the slow ones


def run_variant(name: str, repeats: int, torch_threads: int) -> dict:
    """Body of one subprocess: build the variant, warm it up, time it, check its gradient."""
    import resource

    import numpy as np

    from course_utils import sample_sinusoid_tasks
    from course_utils.grading import max_abs_diff
    from course_utils.nets import init_mlp

    params = init_mlp((1, 40, 40, 1), rng=0)
    tasks = sample_sinusoid_tasks(25, 10, 10, rng=1)[:4]
    import torch

    if torch_threads:
        torch.set_num_threads(torch_threads)
    import course_utils.torch as ct

    _, reference = ct.maml_meta_gradient(params, *tasks)
    rss_import = None
    if name.startswith("torch"):
        theta = ct.from_numpy(params)
        data = ct.as_task_tensors(*tasks)
        if name == "torch loop":
            def step():
                loss = ct.maml_objective(theta, *data)
                return dict(zip(theta, torch.autograd.grad(loss, list(theta.values()))))
        else:
            fn = ct.make_meta_gradient_fn()
            step = lambda: fn(theta, *data)[1]  # noqa: E731
        to_np = lambda g: {k: v.detach().numpy() for k, v in g.items()}  # noqa: E731
    else:
        import tensorflow as tf

        import course_utils.tensorflow as ctf

        theta = ctf.from_numpy(params)
        data = ctf.as_task_tensors(*tasks)
        if name in ("tf eager loop", "tf.function loop"):
            def loop_step(*d):
                with tf.GradientTape() as tape:
                    loss = ctf.maml_objective(theta, *d)
                return dict(zip(theta, tape.gradient(loss, list(theta.values()))))
            compiled = tf.function(loop_step) if name == "tf.function loop" else loop_step
            step = lambda: compiled(*data)  # noqa: E731
        else:
            fn = ctf.make_meta_gradient_fn()
            tf.config.run_functions_eagerly(name != "tf.function tiled")  # this process runs one variant
            step = lambda: fn(theta, *data)[1]  # noqa: E731
        to_np = lambda g: {k: v.numpy() for k, v in g.items()}  # noqa: E731
    rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for _ in range(5):  # warm-up (tracing, allocator)
        grads = to_np(step())
    err = max_abs_diff(grads, reference)
    times = []
    for _ in range(max(10, int(repeats * SLOW.get(name, 1.0)))):
        t0 = time.perf_counter()
        to_np(step())
        times.append(time.perf_counter() - t0)
    return {"variant": name, "median_s": float(np.median(times)), "p10_s": float(np.percentile(times, 10)),
            "repeats": len(times), "max_abs_grad_diff_vs_torch_loop": err,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_before_timing_mb": rss_import}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=100)
    ap.add_argument("--torch-threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "maml_sine.json")
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.repeats < 10:
        ap.error("--repeats must be >= 10")
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.repeats, args.torch_threads)))
        return
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0", TF_CPP_MIN_LOG_LEVEL="2")
    rows = []
    for name in VARIANTS:
        out = subprocess.run([sys.executable, __file__, "--variant", name, "--repeats", str(args.repeats),
                              "--torch-threads", str(args.torch_threads)], capture_output=True, text=True, env=env)
        if out.returncode:
            sys.exit(f"{name} failed:\n{out.stderr[-3000:]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"  {name}: {rows[-1]['median_s'] * 1e3:.3g} ms", file=sys.stderr)
    by = {r["variant"]: r for r in rows}
    for r in rows:
        base = by["torch loop"] if r["variant"].startswith("torch") else by["tf eager loop"]
        r["speedup_vs_framework_baseline"] = base["median_s"] / r["median_s"]
    import numpy as np
    import torch

    from course_utils import configure_tensorflow_env

    configure_tensorflow_env()
    import tensorflow as tf

    result = {
        "benchmark": "MAML sinusoid meta-gradient: 1-40-40-1 MLP, 25 tasks, K=10 support + 10 query, "
                     "1 inner step, alpha=0.01, second order",
        "machine": {"platform": platform.platform(terse=True), "cpu_count": os.cpu_count(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "tensorflow": tf.__version__, "numpy": np.__version__,
                    "torch_threads": args.torch_threads or "default",
                    "loadavg_1min": os.getloadavg()[0]},
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| implementation | median ms / meta-iteration | speed-up vs its framework's loop | peak RSS (MB) "
          "| max grad diff vs torch loop |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['variant']} | {r['median_s'] * 1e3:.3g} | {r['speedup_vs_framework_baseline']:.3g}× | "
              f"{r['peak_rss_mb']:.0f} | {r['max_abs_grad_diff_vs_torch_loop']:.1e} |")
    print(f"\nJSON: {args.out}")
    best_t = min((r for r in rows if r["variant"].startswith("torch")), key=lambda r: r["median_s"])
    best_f = min((r for r in rows if r["variant"].startswith("tf")), key=lambda r: r["median_s"])
    print(f"fastest PyTorch: {best_t['variant']} "
          f"({best_t['speedup_vs_framework_baseline']:.3g}× the loop; target >= 4×)")
    print(f"fastest TensorFlow: {best_f['variant']} "
          f"({best_f['speedup_vs_framework_baseline']:.3g}× eager; target >= 50×)")


if __name__ == "__main__":
    main()
