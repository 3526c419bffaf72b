"""Time one second-order MAML meta-gradient on the sinusoid benchmark, for every implementation.

Setup (Finn et al. 2017, §5.1): 1-40-40-1 ReLU MLP, 25 tasks per meta-batch, K = 10 support and
10 query points per task, one inner step with α = 0.01, second order. Each variant runs in its own
subprocess (so its peak memory is its own), computes the meta-gradient of the same batch from the
same weights, checks it against the per-task PyTorch loop, and reports the median wall time.

Variants:
  torch loop          course_utils.torch.maml_objective: Python loop over tasks, autograd.grad(create_graph=True)
  torch.func vmap     course_utils.torch.make_meta_gradient_fn with a generic forward: grad + vmap over tasks
  torch tiled         course_utils.torch.make_meta_gradient_fn() (the course's MLP): tiled weights, baddbmm
  torch.compile vmap   the vmap function under torch.compile (cold compile time reported apart)
  torch.compile tiled  the tiled function under torch.compile (ditto)
  tf eager loop       course_utils.tensorflow.maml_objective under an outer GradientTape, eager
  tf.function loop    the same loop compiled with tf.function
  tf eager tiled      course_utils.tensorflow.make_meta_gradient_fn() run eagerly: tiled weights, batched matmuls
  tf.function tiled   course_utils.tensorflow.make_meta_gradient_fn() (a tf.function)

For the variants meta_train uses (torch.func vmap, torch tiled, tf.function tiled) the same
subprocess also times the training loop, meta_train("maml", ...) with that meta-gradient
(sampling, meta-gradient, Adam, bookkeeping), interleaved with the bare step, and reports
loop_over_step: the median over 7 rounds of (training run's ms per iteration) / (mean ms of
the bare step timed just before and just after it).

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
VARIANTS = ["torch loop", "torch.func vmap", "torch tiled", "torch.compile vmap", "torch.compile tiled",
            "tf eager loop", "tf.function loop", "tf eager tiled", "tf.function tiled"]
GRAD_TOLERANCE = 1e-4  # a variant whose meta-gradient is further from the loop's is wrong, not fast
LOOP_VARIANTS = {"torch.func vmap", "torch tiled", "tf.function tiled"}  # what meta_train runs
LOOP_ITERATIONS = 300  # per timed training run (plus one traced/compiled run before)
LOOP_ROUNDS = 7  # loop ÷ step is the median over rounds of (bare steps, a training run, bare steps)
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
    rss_import, compile_s, fw, loop_kw = None, None, None, {}

    def generic_mlp(p, x):  # the MLP, but not ct.mlp_forward itself: make_meta_gradient_fn then uses vmap
        return ct.mlp_forward(p, x)
    if name.startswith("torch"):
        theta = ct.from_numpy(params)
        data = ct.as_task_tensors(*tasks)
        forward = generic_mlp if name.endswith("vmap") else ct.mlp_forward
        loop_kw = {"forward": forward}
        if name == "torch loop":
            def step():
                loss = ct.maml_objective(theta, *data)
                return dict(zip(theta, torch.autograd.grad(loss, list(theta.values()))))
        else:
            fn = ct.make_meta_gradient_fn(forward=forward)
            if name.startswith("torch.compile"):
                fn = torch.compile(fn)
                t0 = time.perf_counter()
                fn(theta, *data)
                compile_s = time.perf_counter() - t0
            step = lambda: fn(theta, *data)[1]  # noqa: E731
        to_np = lambda g: {k: v.detach().numpy() for k, v in g.items()}  # noqa: E731
        fw = ct
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
        fw = ctf
    rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for _ in range(5):  # warm-up (tracing, allocator)
        grads = to_np(step())
    err = max_abs_diff(grads, reference)
    n_calls = max(10, int(repeats * SLOW.get(name, 1.0)))
    loop = name in LOOP_VARIANTS

    def time_steps(n):
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            to_np(step())
            out.append(time.perf_counter() - t0)
        return out

    def time_loop():  # meta_train with the same meta-gradient: ms per iteration after the first
        sample = lambda r: sample_sinusoid_tasks(25, 10, 10, rng=r)[:4]  # noqa: E731
        _, hist = fw.meta_train("maml", params, sample, n_iterations=LOOP_ITERATIONS, rng=1, progress=False,
                                **loop_kw)
        return hist.seconds_per_iteration

    times, loop_times, ratios = [], [], []
    if loop:
        time_loop()  # trace / warm up

        def chunk():  # the bare step, as many calls as a training run has iterations, no conversion
            t0 = time.perf_counter()
            for _ in range(LOOP_ITERATIONS // 2):
                step()
            return (time.perf_counter() - t0) / (LOOP_ITERATIONS // 2)

        for _ in range(LOOP_ROUNDS):  # step, loop, step: a change of machine load hits both alike
            before, per_iteration, after = chunk(), time_loop(), chunk()
            loop_times.append(per_iteration)
            ratios.append(per_iteration / (0.5 * (before + after)))
    times += time_steps(n_calls)
    row = {"variant": name, "median_s": float(np.median(times)), "p10_s": float(np.percentile(times, 10)),
           "repeats": len(times), "max_abs_grad_diff_vs_torch_loop": err,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "rss_before_timing_mb": rss_import, "cold_compile_s": compile_s,
           "loop_median_s_per_iteration": float(np.median(loop_times)) if loop else None,
           "loop_iterations_per_run": LOOP_ITERATIONS if loop else None,
           "loop_over_step_per_round": ratios if loop else None,
           "loop_over_step": float(np.median(ratios)) if loop else None}
    return row


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
        if out.returncode and name.startswith("torch.compile"):  # optional: needs a working C++ toolchain
            print(f"  {name} failed (left out):\n{out.stderr[-1500:]}", file=sys.stderr)
            continue
        if out.returncode:
            sys.exit(f"{name} failed:\n{out.stderr[-3000:]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"  {name}: {rows[-1]['median_s'] * 1e3:.3g} ms", file=sys.stderr)
    by = {r["variant"]: r for r in rows}
    for r in rows:
        base = by["torch loop"] if r["variant"].startswith("torch") else by["tf eager loop"]
        r["speedup_vs_framework_baseline"] = base["median_s"] / r["median_s"]
        r["correct"] = r["max_abs_grad_diff_vs_torch_loop"] < GRAD_TOLERANCE
    import numpy as np
    import torch

    from course_utils import configure_tensorflow_env

    configure_tensorflow_env()
    import tensorflow as tf

    valid = [r for r in rows if r["correct"]]  # fastest among the variants whose gradient is right
    best_t = min((r for r in valid if r["variant"].startswith("torch")), key=lambda r: r["median_s"])
    best_f = min((r for r in valid if r["variant"].startswith("tf")), key=lambda r: r["median_s"])
    loops = {r["variant"]: r["loop_over_step"] for r in rows if r["loop_over_step"] is not None}
    targets = {
        "fastest_torch": {"variant": best_t["variant"], "target": 10.0,
                          "speedup_vs_torch_loop": best_t["speedup_vs_framework_baseline"]},
        "fastest_tf": {"variant": best_f["variant"], "target": 100.0,
                       "speedup_vs_tf_eager_loop": best_f["speedup_vs_framework_baseline"]},
        "training_loop_over_step": {"per_variant": loops, "worst": max(loops.values()), "target": 1.25},
    }
    result = {
        "benchmark": "MAML sinusoid meta-gradient: 1-40-40-1 MLP, 25 tasks, K=10 support + 10 query, "
                     "1 inner step, alpha=0.01, second order; and meta_train's loop around it",
        "machine": {"platform": platform.platform(terse=True), "cpu_count": os.cpu_count(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "tensorflow": tf.__version__, "numpy": np.__version__,
                    "torch_threads": args.torch_threads or "default",
                    "loadavg_1min": os.getloadavg()[0]},
        "results": rows,
        "targets": targets,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| implementation | median ms / meta-gradient | speed-up vs its framework's loop "
          "| meta_train ms / iteration | loop ÷ step | peak RSS (MB) | max grad diff vs torch loop |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        loop = "–" if r["loop_over_step"] is None else f"{r['loop_median_s_per_iteration'] * 1e3:.3g}"
        ratio = "–" if r["loop_over_step"] is None else f"{r['loop_over_step']:.2f}"
        cold = "" if r["cold_compile_s"] is None else f" (cold compile {r['cold_compile_s']:.0f} s)"
        cold += "" if r["correct"] else " **wrong gradient**"
        print(f"| {r['variant']}{cold} | {r['median_s'] * 1e3:.3g} | {r['speedup_vs_framework_baseline']:.3g}× | "
              f"{loop} | {ratio} | {r['peak_rss_mb']:.0f} | {r['max_abs_grad_diff_vs_torch_loop']:.1e} |")
    print(f"\nJSON: {args.out}")
    print(f"fastest PyTorch: {best_t['variant']} ({best_t['speedup_vs_framework_baseline']:.3g}× the loop; "
          "target >= 10×)")
    print(f"fastest TensorFlow: {best_f['variant']} ({best_f['speedup_vs_framework_baseline']:.3g}× eager; "
          "target >= 100×)")
    each = ", ".join(f"{k} {v:.2f}" for k, v in loops.items())
    print(f"training loop ÷ its step: worst {max(loops.values()):.2f} ({each}; target <= 1.25)")


if __name__ == "__main__":
    main()
