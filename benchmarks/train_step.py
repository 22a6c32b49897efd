"""Throughput of the hierarchy SimCLR training step on this CPU.

Runs the package's own training step (`train.make_train_loop` on a
`train.build_state` state, OneDeviceStrategy on /cpu:0) on the real hierarchy
dataset at the paper's settings and prints
  (a) views per second (2 views per item) at `--batch` items per step,
  (b) the step's FLOP/s as a fraction of this machine's dense float32 matmul
      peak, measured in the same process (`benchmarks.common.matmul_peak_flops`),
  (c) the input-pipeline overhead: the real `input_pipeline.train_input_fn`
      stream against the same loop fed from `--cache` batches of that stream
      held in memory (`.take(k).cache().repeat()`).
Targets: >= 50% of matmul peak, <= 5% pipeline overhead.

FLOP convention: 2 FLOPs per multiply-add; a training step counts 3x the
forward FLOPs (backward ~ 2x forward) of every conv and dense layer
(`models.forward_flops`; biases, activations, pooling not counted) for the 2B
views, plus 3x the NT-Xent similarity matmuls (2 x 2B x 2B x d).

Timing: the two feeds run in alternating repeats, one loop call of `--steps`
steps each, so ratios come from neighbouring measurements. Wall times are
the best of the repeats, as for the matmul peak (re-measured between
repeats); the overhead is the median of the per-repeat ratios. Another
process may share the CPUs, so the load average is printed and every number
is also given in process CPU seconds (all threads): CPU time per step hardly
changes with the load, and "step FLOPs per CPU-second / matmul FLOPs per
CPU-second" is what the wall-clock fraction becomes on an idle machine when
the step and the matmul both keep every core busy. On a busy machine the wall
fraction is unreliable either way (both times grow with the load, the
matmul's by more: it splits its work statically over its threads and waits
for a preempted one). `--steps 1 --repeats 200` finds idle moments for (a);
(c) needs long calls (in short ones the pipeline prefetches while the other
feed is timed).

    python benchmarks/train_step.py [--batch 256] [--steps 35] [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402

from benchmarks.common import matmul_peak_flops  # noqa: E402
from simclr_controlled import input_pipeline, models, train  # noqa: E402
from simclr_controlled.config import Config  # noqa: E402
from simclr_controlled.datasets import get_dataset  # noqa: E402

FEEDS = ("pipeline", "cached")


def step_flops(config: Config, input_shape: tuple[int, int, int]) -> dict[str, int]:
    """FLOPs of one training step by part (convention: module docstring)."""
    views = 2 * config.train_batch_size
    widths = config.head_widths or models.DEFAULT_HEAD_WIDTHS[config.model]
    network = 3 * views * models.forward_flops(config.model, input_shape, config.width_multiplier,
                                               config.head_widths)
    nt_xent = 3 * 2 * views * views * widths[-1]
    return {"network": network, "nt_xent": nt_xent, "total": network + nt_xent}


def matmul_cpu_flops(n: int = 2048, repeats: int = 10) -> float:
    """The matmul of `matmul_peak_flops`, in FLOPs per process CPU second (best run)."""
    return matmul_peak_flops(n, repeats, clock=time.process_time)


def make_feeds(config: Config, dataset, strategy, total_steps: int, cache: int) -> dict:
    """Distributed iterators: the real pipeline, and `cache` of its batches repeated."""
    input_fn = input_pipeline.train_input_fn(
        dataset.images, dataset.train_idx, global_batch_size=config.train_batch_size,
        seed=config.seed, augment_fn=train.augment_fn(config), start_step=0,
        total_steps=total_steps)
    cached = lambda ctx: input_fn(ctx).take(cache).cache().repeat()  # noqa: E731
    return {"pipeline": iter(strategy.distribute_datasets_from_function(input_fn)),
            "cached": iter(strategy.distribute_datasets_from_function(cached))}


def time_call(loop, iterator, steps: int) -> tuple[float, float]:
    """(wall, CPU) seconds of one loop call of `steps` steps, results fetched."""
    n = tf.constant(steps, tf.int64)
    c, t = time.process_time(), time.perf_counter()
    loop(iterator, n).numpy()
    return time.perf_counter() - t, time.process_time() - c


def median_overhead(times: dict) -> float:
    """Median over repeats of pipeline time / cached time - 1."""
    return statistics.median(p / c - 1.0 for p, c in zip(times["pipeline"], times["cached"]))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=256, help="items per step (2 views each)")
    parser.add_argument("--steps", type=int, default=35,
                        help="steps per loop call (35 = one epoch at batch 256)")
    parser.add_argument("--repeats", type=int, default=5, help="timed loop calls per feed")
    parser.add_argument("--cache", type=int, default=8,
                        help="pipeline batches held in memory for the cached feed")
    parser.add_argument("--intra_op", type=int, default=0,
                        help="TF intra-op threads (0: TF's default, one per core)")
    parser.add_argument("--inter_op", type=int, default=0,
                        help="TF inter-op threads (0: TF's default)")
    args = parser.parse_args(argv)
    for name in ("batch", "steps", "repeats", "cache"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: must be a positive integer, got {getattr(args, name)}")
    for name in ("intra_op", "inter_op"):
        if getattr(args, name) < 0:
            parser.error(f"--{name}: must be >= 0 (0: TF's default), got {getattr(args, name)}")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.intra_op:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op)
    if args.inter_op:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
    config = Config(dataset="hierarchy", train_batch_size=args.batch).with_dataset_defaults()
    dataset = get_dataset("hierarchy", seed=config.seed, **config.dataset_params())
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    shape = train.input_shape(config, dataset)
    with tempfile.TemporaryDirectory() as ckpt_dir:
        state = train.build_state(config, dataset, strategy, ckpt_dir)
    loop = train.make_train_loop(config, state, jit=False)
    feeds = make_feeds(config, dataset, strategy, (args.repeats + 1) * args.steps, args.cache)

    # One warm-up call per feed: tracing, oneDNN primitive caches.
    for name in FEEDS:
        time_call(loop, feeds[name], args.steps)
    # The peak is re-measured between repeats and the best kept: on a busy
    # machine its threads rarely get every core at once.
    peak = matmul_peak_flops()
    wall = {name: [] for name in FEEDS}
    cpu = {name: [] for name in FEEDS}
    for r in range(args.repeats):
        for name in (FEEDS if r % 2 == 0 else FEEDS[::-1]):
            w, c = time_call(loop, feeds[name], args.steps)
            wall[name].append(w / args.steps)
            cpu[name].append(c / args.steps)
        peak = max(peak, matmul_peak_flops(repeats=2))
    peak_cpu = matmul_cpu_flops()
    load = os.getloadavg()

    flops = step_flops(config, shape)
    views = 2 * args.batch
    print(f"machine: {os.cpu_count()} CPUs, TF {tf.__version__}, threads intra/inter "
          f"{args.intra_op or 'default'}/{args.inter_op or 'default'}, load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min; above {os.cpu_count()}: "
          "other work shares the CPUs, wall times are inflated)")
    print(f"matmul peak: {peak / 1e9:.1f} GFLOP/s wall (float32 2048^3, best of runs), "
          f"{peak_cpu / 1e9:.1f} GFLOP per CPU-second")
    print(f"step: lenet {shape}, batch {args.batch} items = {views} views, "
          f"{args.steps} steps per loop call, {args.repeats} alternating repeats")
    print(f"FLOPs/step: {flops['total'] / 1e9:.3f} G = 3 x forward of convs + dense "
          f"({flops['network'] / 1e9:.3f} G) + 3 x NT-Xent matmuls "
          f"({flops['nt_xent'] / 1e9:.3f} G); 2 FLOPs per multiply-add, backward = 2 x forward")
    result = {}
    for name in FEEDS:
        best = min(wall[name])
        cpu_step = statistics.median(cpu[name])
        result[name] = {"ms_per_step": 1e3 * best, "cpu_ms_per_step": 1e3 * cpu_step,
                        "views_per_s": views / best,
                        "fraction_of_peak": flops["total"] / best / peak,
                        "cpu_fraction_of_peak": flops["total"] / cpu_step / peak_cpu}
        print(f"  {name:8s} wall ms/step: {' '.join(f'{1e3 * t:.1f}' for t in wall[name])}  "
              f"| CPU ms/step: {' '.join(f'{1e3 * t:.1f}' for t in cpu[name])}")
    for name in FEEDS:
        r = result[name]
        print(f"(a,b) {name:8s}: {r['views_per_s']:7,.0f} views/s, {r['ms_per_step']:.1f} ms/step, "
              f"{flops['total'] / r['ms_per_step'] / 1e6:.1f} GFLOP/s = "
              f"{100 * r['fraction_of_peak']:.1f}% of matmul peak (target >= 50%); "
              f"CPU time: {r['cpu_ms_per_step']:.1f} ms/step = "
              f"{100 * r['cpu_fraction_of_peak']:.1f}% of the matmul's FLOPs per CPU-second")
    overhead, overhead_cpu = median_overhead(wall), median_overhead(cpu)
    print(f"(c) input-pipeline overhead, pipeline vs cached: {100 * overhead:+.1f}% wall time "
          f"(target <= 5%), {100 * overhead_cpu:+.1f}% CPU time")
    result.update(peak_flops=peak, peak_cpu_flops=peak_cpu, step_flops=flops["total"],
                  pipeline_overhead=overhead, pipeline_overhead_cpu=overhead_cpu, load_average=load)
    return result


if __name__ == "__main__":
    main()
