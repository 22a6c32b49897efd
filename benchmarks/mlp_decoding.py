"""Benchmark: the MLP decoding grid vs the linear decoding grid (probes/mlp_decoding.py).

One dsprites_mod-shaped problem: 15,360 items split as the dataset's
decoding splits (color: 10 classes, 9,200 train / 6,160 validation; position:
256 classes, 12,288 / 3,072), d = 512 random nonnegative (ReLU-like)
activations, 9 grid points, batch 256. Times a few epochs of each grid
(after a warm-up run of the same shape, so tracing and compilation are
excluded), interleaved over rounds, best per epoch, and prints seconds per
epoch, the achieved GFLOP/s and the MLP / linear ratio.

    python benchmarks/mlp_decoding.py [--epochs 2] [--repeats 2] [--hidden 512]
    python benchmarks/mlp_decoding.py --threads 1 --clock cpu   # on a busy machine
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402

from benchmarks.decoding_grid import (  # noqa: E402
    BATCH, FACTORS, GRID, _best_per_epoch, _data, _epoch_flops, _grid_runner)
from simclr_controlled.probes import decoding, mlp_decoding  # noqa: E402

D = 512
PROBLEMS = ("color", "position")


def _mlp_epoch_flops(d, factor, hidden):
    """Matmuls of every step (forward of both layers, both weight gradients, the
    hidden layer's input gradient), plus one validation forward pass."""
    c, n, m = FACTORS[factor]
    steps = -(-n // BATCH)
    first, second = d * GRID * hidden, GRID * hidden * c
    return steps * 2 * BATCH * (2 * first + 3 * second) + 2 * m * (first + second)


def _mlp_runner(d, factor, epochs, hidden):
    """A warm (traced) call of the batched MLP grid on random activations."""
    x, y, vx, vy, c = _data(d, factor)
    lrs = [lr for lr in decoding.LEARNING_RATES for _ in decoding.WEIGHT_DECAYS]
    wds = [wd for _ in decoding.LEARNING_RATES for wd in decoding.WEIGHT_DECAYS]
    w1, w2 = mlp_decoding.glorot_init(d, hidden, c, 0)
    args = [tf.constant(x), tf.constant(y, tf.int32), tf.constant(vx),
            tf.constant(vy, tf.int32), tf.constant(lrs), tf.constant(wds),
            tf.constant(decoding._batch_orders(len(x), epochs, BATCH, 0)), w1, w2]
    run = lambda: mlp_decoding._train_grid(*args, num_classes=c)[0].numpy()  # noqa: E731
    run()
    return run


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=2, help="epochs timed per grid")
    p.add_argument("--repeats", type=int, default=2, help="best of this many timings")
    p.add_argument("--hidden", type=int, default=mlp_decoding.HIDDEN, help="MLP hidden width")
    p.add_argument("--threads", type=int, default=0,
                   help="TF intra-op threads (0: TF's default, all cores)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall: wall time; cpu: process CPU time (use with --threads 1 "
                        "on a busy machine)")
    a = p.parse_args(argv)
    if min(a.epochs, a.repeats, a.hidden) < 1 or a.threads < 0:
        p.error("--epochs, --repeats, --hidden must be >= 1, --threads >= 0")
    if a.threads:
        tf.config.threading.set_intra_op_parallelism_threads(a.threads)
        tf.config.threading.set_inter_op_parallelism_threads(a.threads)

    print(f"device: {tf.config.list_logical_devices()[-1].name}; threads: "
          f"{a.threads or 'TF default'}; clock: {a.clock} seconds; d={D}, hidden={a.hidden}, "
          f"grid {GRID} points, batch {BATCH}; {a.epochs} epoch(s) timed per grid, best of "
          f"{a.repeats} interleaved rounds; load average at start {os.getloadavg()[0]:.1f}")
    runners = {}
    for factor in PROBLEMS:
        runners["linear", factor] = _grid_runner(D, factor, a.epochs)
        runners["mlp", factor] = _mlp_runner(D, factor, a.epochs, a.hidden)
    per_epoch, _ = _best_per_epoch(runners, a.epochs, a.repeats, a.clock)

    print(f"\n{'factor':<10}{'C':>5}{'train/val':>13}{'probe':>8}{'s/epoch':>10}"
          f"{'GFLOP/s':>10}{'MLP/linear':>12}")
    for factor in PROBLEMS:
        c, n, m = FACTORS[factor]
        flops = {"linear": _epoch_flops(D, factor), "mlp": _mlp_epoch_flops(D, factor, a.hidden)}
        for probe in ("linear", "mlp"):
            s = per_epoch[probe, factor]
            ratio = f"{s / per_epoch['linear', factor]:>12.1f}" if probe == "mlp" else ""
            print(f"{factor:<10}{c:>5}{f'{n}/{m}':>13}{probe:>8}{s:>10.4f}"
                  f"{flops[probe] / s / 1e9:>10.1f}{ratio}")
    total = {p: sum(per_epoch[p, f] for f in PROBLEMS) for p in ("linear", "mlp")}
    print(f"\nboth factors: linear {total['linear']:.3f} s/epoch, MLP {total['mlp']:.3f} s/epoch "
          f"-> MLP/linear {total['mlp'] / total['linear']:.1f}x; at 500 epochs: linear "
          f"{total['linear'] * 500 / 60:.1f} min, MLP {total['mlp'] * 500 / 60:.1f} min")


if __name__ == "__main__":
    main()
