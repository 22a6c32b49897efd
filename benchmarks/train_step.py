"""Throughput of the hierarchy SimCLR training step on this CPU (issue 4 "Numbers").

Runs the package's own training step (`train.make_train_loop` on a
`train.build_state` state, OneDeviceStrategy on /cpu:0) on the real hierarchy
dataset and prints
  (a) views per second (2 views per item) at `--batch` items per step,
  (b) the step's FLOP/s as a fraction of this machine's dense float32 matmul
      peak, measured in the same process (`benchmarks.common.matmul_peak_flops`),
  (c) the input-pipeline overhead: the real `input_pipeline.train_input_fn`
      stream against the same loop fed from `--cache` batches of that stream
      materialised in memory (`.take(k).cache().repeat()`).
Targets of issue 4: >= 50% of matmul peak, <= 5% pipeline overhead.

FLOP convention: 2 FLOPs per multiply-add; a training step counts 3x the
forward FLOPs (backward ~ 2x forward) of every conv and dense layer
(`models.forward_flops`, biases/activations/pooling not counted) for the 2B
views, plus 3x the NT-Xent similarity matmuls (2B x 2B x d, 2 FLOPs each).

The two feeds are timed in alternating repeats, one loop call of `--steps`
steps each, so that ratios come from neighbouring measurements: another
process may be using the CPUs (the load average is printed). Reported times
are medians over repeats; the overhead is the median of per-repeat ratios.

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


def step_flops(config: Config, input_shape: tuple[int, int, int]) -> dict[str, int]:
    """FLOPs of one training step by part (see the module docstring)."""
    views = 2 * config.train_batch_size
    head_out = models.DEFAULT_HEAD_WIDTHS[config.model][-1] if config.head_widths is None \
        else config.head_widths[-1]
    network = 3 * views * models.forward_flops(config.model, input_shape, config.width_multiplier,
                                               config.head_widths)
    nt_xent = 3 * 2 * views * views * head_out
    return {"network": network, "nt_xent": nt_xent, "total": network + nt_xent}


def make_feeds(config: Config, dataset, strategy, total_steps: int, cache: int) -> dict:
    """Distributed iterators: the real pipeline, and `cache` of its batches repeated."""
    input_fn = input_pipeline.train_input_fn(
        dataset.images, dataset.train_idx, global_batch_size=config.train_batch_size,
        seed=config.seed, augment_fn=train.augment_fn(config), start_step=0,
        total_steps=total_steps)
    cached = lambda ctx: input_fn(ctx).take(cache).cache().repeat()  # noqa: E731
    return {"pipeline": iter(strategy.distribute_datasets_from_function(input_fn)),
            "cached": iter(strategy.distribute_datasets_from_function(cached))}


def time_call(loop, iterator, steps: int) -> float:
    """Seconds for one loop call of `steps` steps (results fetched)."""
    n = tf.constant(steps, tf.int64)
    t = time.perf_counter()
    loop(iterator, n).numpy()
    return time.perf_counter() - t


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=256, help="items per step (2 views each)")
    parser.add_argument("--steps", type=int, default=35,
                        help="steps per loop call (35 = one epoch at batch 256)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per feed")
    parser.add_argument("--cache", type=int, default=8,
                        help="pipeline batches kept in memory for the cached feed")
    args = parser.parse_args(argv)
    for name in ("batch", "steps", "repeats", "cache"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: must be a positive integer, got {getattr(args, name)}")

    config = Config(dataset="hierarchy", train_batch_size=args.batch).with_dataset_defaults()
    dataset = get_dataset("hierarchy", seed=config.seed, **config.dataset_params())
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    shape = train.input_shape(config, dataset)
    with tempfile.TemporaryDirectory() as ckpt_dir:
        state = train.build_state(config, dataset, strategy, ckpt_dir)
    loop = train.make_train_loop(config, state, jit=False)
    # Warm-up (tracing, oneDNN primitive caches) plus every timed call.
    total = (2 * args.repeats + 2) * args.steps
    feeds = make_feeds(config, dataset, strategy, total, args.cache)

    peak = matmul_peak_flops()
    for iterator in feeds.values():
        time_call(loop, iterator, args.steps)
    times = {name: [] for name in feeds}
    for r in range(args.repeats):
        order = list(feeds) if r % 2 == 0 else list(feeds)[::-1]
        for name in order:
            times[name].append(time_call(loop, feeds[name], args.steps) / args.steps)
    peak = max(peak, matmul_peak_flops())
    load = os.getloadavg()

    flops = step_flops(config, shape)
    step_s = {name: statistics.median(t) for name, t in times.items()}
    overhead = statistics.median(p / c - 1.0 for p, c in zip(times["pipeline"], times["cached"]))
    views = 2 * args.batch
    print(f"machine: {os.cpu_count()} CPUs, TF {tf.__version__}, load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min; > {os.cpu_count()} means "
          f"other work shares the CPUs)")
    print(f"matmul peak: {peak / 1e9:.1f} GFLOP/s (float32 2048^3, best of runs, this process)")
    print(f"step: lenet on {shape}, batch {args.batch} items = {views} views, "
          f"{args.steps} steps per loop call, {args.repeats} alternating repeats")
    print(f"FLOPs/step: {flops['total'] / 1e9:.3f} G = 3 x forward convs+dense "
          f"({flops['network'] / 1e9:.3f} G) + 3 x NT-Xent matmuls ({flops['nt_xent'] / 1e9:.3f} G); "
          "2 FLOPs per multiply-add, backward = 2 x forward")
    for name in feeds:
        ms = [f"{1e3 * t:.1f}" for t in times[name]]
        print(f"  {name:8s} ms/step: {' '.join(ms)}  (median {1e3 * step_s[name]:.1f})")
    result = {}
    for name in feeds:
        rate = flops["total"] / step_s[name]
        result[name] = {"ms_per_step": 1e3 * step_s[name], "views_per_s": views / step_s[name],
                        "fraction_of_peak": rate / peak}
        print(f"(a,b) {name:8s}: {views / step_s[name]:8,.0f} views/s  {rate / 1e9:6.1f} GFLOP/s  "
              f"= {100 * rate / peak:5.1f}% of matmul peak  (target >= 50%)")
    print(f"(c) input-pipeline overhead: {100 * overhead:+.1f}% step time, pipeline vs cached "
          "(target <= 5%)")
    result.update(peak_flops=peak, step_flops=flops["total"], pipeline_overhead=overhead,
                  load_average=load)
    return result


if __name__ == "__main__":
    main()
