"""Benchmark: the linear-decoding grid of one dsprites_mod model (DESIGN §4.3).

One model's decoding = 4 layers (head_input, head_1, head_2 at d=512;
head_out at d=128) x 3 factors (color: 10 classes, 9,200 train / 6,160
validation images; scale: 6 and position: 256 classes, 12,288 / 3,072)
x 9 grid points x 500 epochs, ~1e14 FLOPs, dominated by position.

Uses random nonnegative (ReLU-like) activations of those shapes. Times a few
epochs per decoder shape (after a warm-up run of the same shape, so tracing
and compilation are excluded) and extrapolates linearly to 500 epochs.
Reports (a) achieved FLOP/s as a fraction of this machine's float32 matmul
peak (`benchmarks.common.matmul_peak_flops`, measured in the same run),
(b) the estimated wall time per model, (c) the speedup over a plain loop of
Keras `Model.fit`, one decoder per grid point, measured on one layer-factor
for a few epochs and extrapolated.

    python benchmarks/decoding_grid.py [--epochs 2] [--keras_epochs 2]
    python benchmarks/decoding_grid.py --threads 1 --clock cpu   # on a busy machine
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.common import matmul_peak_flops  # noqa: E402
from simclr_controlled.probes import decoding  # noqa: E402

PAPER_EPOCHS = 500
BATCH = 256
LAYERS = (("head_input", 512), ("head_1", 512), ("head_2", 512), ("head_out", 128))
# factor: (classes, train images, validation images), DESIGN §1.2 decoding splits.
FACTORS = {"color": (10, 9200, 6160), "scale": (6, 12288, 3072),
           "position": (256, 12288, 3072)}
GRID = len(decoding.LEARNING_RATES) * len(decoding.WEIGHT_DECAYS)


def _data(d, factor, seed=0):
    c, n, m = FACTORS[factor]
    rng = np.random.default_rng(seed)
    relu = lambda k: np.maximum(rng.normal(size=(k, d)), 0).astype(np.float32)  # noqa: E731
    return relu(n), rng.integers(0, c, n), relu(m), rng.integers(0, c, m), c


def _epoch_flops(d, factor):
    """Forward + weight-gradient matmuls of every step, plus one validation pass."""
    c, n, m = FACTORS[factor]
    steps = -(-n // BATCH)
    return steps * 2 * (2 * BATCH * d * GRID * c) + 2 * m * d * GRID * c


def _grid_runner(d, factor, epochs):
    """A warm (traced) call of the batched grid on random activations."""
    x, y, vx, vy, c = _data(d, factor)
    lrs = [lr for lr in decoding.LEARNING_RATES for _ in decoding.WEIGHT_DECAYS]
    wds = [wd for _ in decoding.LEARNING_RATES for wd in decoding.WEIGHT_DECAYS]
    args = [tf.constant(x), tf.constant(y, tf.int32), tf.constant(vx),
            tf.constant(vy, tf.int32), tf.constant(lrs), tf.constant(wds),
            tf.constant(decoding._batch_orders(len(x), epochs, BATCH, 0))]
    run = lambda: decoding._train_grid(*args, num_classes=c)[0].numpy()  # noqa: E731
    run()
    return run


def _keras_runner(d, factor, jit_compile):
    """fit(k) of ONE grid point's Keras decoder (traced, with validation)."""
    x, y, vx, vy, c = _data(d, factor)
    steps = -(-len(x) // BATCH)
    lr, wd = decoding.LEARNING_RATES[1], decoding.WEIGHT_DECAYS[1]
    model = keras.Sequential([keras.Input((d,)), keras.layers.Dense(
        c, kernel_regularizer=keras.regularizers.L2(wd / 2))])
    model.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(
            lr, PAPER_EPOCHS * steps)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"], jit_compile=jit_compile)
    fit = lambda k: model.fit(x, y, batch_size=BATCH, epochs=k,  # noqa: E731
                              validation_data=(vx, vy), shuffle=True, verbose=0)
    fit(1)
    return fit


def _best_per_epoch(runners, epochs, repeats, clock, peak_too=False):
    """Best seconds per epoch of each runner, interleaved over `repeats` rounds.

    Interleaving (and the matmul peak measured in each round) lets every number
    take its best moment on a machine shared with other jobs.
    """
    now = time.process_time if clock == "cpu" else time.perf_counter
    best = {k: float("inf") for k in runners}
    peak = 0.0
    for _ in range(repeats):
        if peak_too:
            peak = max(peak, matmul_peak_flops(repeats=5, clock=time.process_time if clock == "cpu"
                                               else time.perf_counter))
        for k, run in runners.items():
            t = now()
            run()
            best[k] = min(best[k], (now() - t) / epochs)
    return best, peak


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=2,
                   help="epochs timed per decoder shape (extrapolated to 500)")
    p.add_argument("--repeats", type=int, default=3, help="best of this many timings")
    p.add_argument("--keras_epochs", type=int, default=2,
                   help="epochs of Keras fit timed for the baseline (0: skip it)")
    p.add_argument("--keras_repeats", type=int, default=2, help="best of this many")
    p.add_argument("--keras_all", type=int, default=1,
                   help="1: time Keras on all 6 decoder shapes (whole-model speedup); "
                        "0: on head_input/position only")
    p.add_argument("--threads", type=int, default=0,
                   help="TF intra-op threads (0: TF's default, all cores)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall: wall time; cpu: process CPU time, for every number "
                        "including the peak (robust when other jobs share the "
                        "machine; use with --threads 1)")
    a = p.parse_args(argv)
    if min(a.epochs, a.repeats, a.keras_repeats) < 1 or a.keras_epochs < 0:
        p.error("--epochs, --repeats, --keras_repeats must be >= 1, --keras_epochs >= 0")
    if a.threads < 0:
        p.error("--threads must be >= 0")
    if a.threads:
        tf.config.threading.set_intra_op_parallelism_threads(a.threads)
        tf.config.threading.set_inter_op_parallelism_threads(a.threads)

    print(f"device: {tf.config.list_logical_devices()[-1].name}; threads: "
          f"{a.threads or 'TF default'}; clock: {a.clock} seconds; grid {GRID} points; "
          f"timing {a.epochs} epoch(s) per decoder shape (best of {a.repeats}, "
          f"interleaved with the peak measurement), extrapolated to {PAPER_EPOCHS}; "
          f"load average at start {os.getloadavg()[0]:.1f}")
    shapes = [(d, f) for d in sorted({d for _, d in LAYERS}, reverse=True) for f in FACTORS]
    per_epoch, peak = _best_per_epoch(
        {s: _grid_runner(*s, a.epochs) for s in shapes}, a.epochs, a.repeats, a.clock, peak_too=True)

    print(f"\nfloat32 matmul peak (2048^3, best of the rounds): {peak / 1e9:.1f} GFLOP/s")
    print(f"\n{'layer':<11}{'factor':<10}{'d':>5}{'C':>5}{'s/epoch':>10}"
          f"{'GFLOP/s':>10}{'% peak':>8}{'500 ep (s)':>12}")
    total_s = total_flops = 0.0
    for layer, d in LAYERS:
        for factor in FACTORS:
            s, f = per_epoch[d, factor], _epoch_flops(d, factor)
            total_s += s * PAPER_EPOCHS
            total_flops += f * PAPER_EPOCHS
            print(f"{layer:<11}{factor:<10}{d:>5}{FACTORS[factor][0]:>5}{s:>10.4f}"
                  f"{f / s / 1e9:>10.1f}{100 * f / s / peak:>8.1f}{s * PAPER_EPOCHS:>12.1f}")
    rate = total_flops / total_s
    print(f"\n(a) whole grid of one model: {total_flops:.3g} FLOPs, {rate / 1e9:.1f} GFLOP/s "
          f"= {100 * rate / peak:.1f}% of matmul peak (extrapolated from "
          f"{a.epochs} epoch(s) per shape)")
    print(f"(b) estimated {a.clock} time per model (12 layer-factor grids x {PAPER_EPOCHS} "
          f"epochs): {total_s:.0f} s = {total_s / 60:.1f} min")

    if a.keras_epochs:
        keras_shapes = shapes if a.keras_all else [(512, "position")]
        keras_s = {}
        for jit in (False, True):
            best, _ = _best_per_epoch(
                {s: (lambda fit: lambda: fit(a.keras_epochs))(_keras_runner(*s, jit))
                 for s in keras_shapes}, a.keras_epochs, a.keras_repeats, a.clock)
            keras_s = {s: min(keras_s.get(s, float("inf")), t) for s, t in best.items()}
        print(f"(c) speedup over a loop of Keras Model.fit, one decoder per grid point "
              f"(Adam + CosineDecay, L2 wd/2, batch {BATCH}, validation each epoch; best of "
              f"jit_compile False/True; {a.keras_epochs} epoch(s) timed, best of "
              f"{a.keras_repeats}, extrapolated linearly):")
        for d, factor in keras_shapes:
            k, g = keras_s[d, factor], per_epoch[d, factor]
            print(f"    d={d:<4}{factor:<9} Keras {k:.4f} s/epoch/decoder x {GRID} = "
                  f"{k * GRID:.3f} s/epoch vs grid {g:.4f} -> {k * GRID / g:.1f}x")
        if a.keras_all:
            keras_total = sum(keras_s[d, f] * GRID * PAPER_EPOCHS
                              for _, d in LAYERS for f in FACTORS)
            print(f"    whole model (12 layer-factors x {PAPER_EPOCHS} epochs): Keras "
                  f"{keras_total / 60:.1f} min vs grid {total_s / 60:.1f} min -> "
                  f"{keras_total / total_s:.1f}x")


if __name__ == "__main__":
    main()
