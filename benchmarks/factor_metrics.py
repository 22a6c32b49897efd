"""Benchmark: the factor metrics of one layer (probes/recovery.py,
disentanglement.py, label_free.py) at dsprites_mod's size.

15,360 items = the full cross of color (10) x scale (6) x x (16) x y (16),
with random ReLU-like codes of width 512; the supervised metrics with a
train / validation split use a seeded 80 / 20 split (12,288 / 3,072). The
label-free ones use all 15,360 rows (alignment: the codes and a noisy
second view). Prints the best wall time of each metric over a few calls
(after a warm-up call).

    python benchmarks/factor_metrics.py [--repeats 3] [--d 512] [--clock cpu]
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from simclr_controlled.probes import disentanglement, label_free, recovery  # noqa: E402

FACTORS = {"color": 10, "scale": 6, "x": 16, "y": 16}


def best_time(fn, repeats: int, clock=time.perf_counter) -> float:
    """Best time of `fn()` on `clock` over `repeats` calls (after one warm-up call).

    benchmarks.common.best_time with a clock, without its TensorFlow import.
    """
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = clock()
        fn()
        best = min(best, clock() - t)
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="best of this many timings")
    p.add_argument("--d", type=int, default=512, help="code width")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall: wall time; cpu: process CPU time (all threads; robust "
                        "when other jobs share the machine)")
    a = p.parse_args(argv)
    if a.repeats < 1 or a.d < 2:
        p.error("--repeats must be >= 1, --d >= 2")
    rng = np.random.default_rng(0)
    factors = np.array(list(itertools.product(*[range(c) for c in FACTORS.values()])))
    n = len(factors)
    codes = np.maximum(rng.normal(size=(n, a.d)), 0.0)
    view2 = codes + 0.1 * rng.normal(size=codes.shape)
    perm = rng.permutation(n)
    tr, va = perm[:n * 4 // 5], perm[n * 4 // 5:]
    names = list(FACTORS)
    split = (codes[tr], factors[tr], codes[va], factors[va], names)
    runs = {
        "r2_scores": lambda: recovery.r2_scores(*split),
        "dci": lambda: disentanglement.dci(*split),
        "mig (20 bins)": lambda: disentanglement.mig(codes, factors, names),
        "sap (discrete)": lambda: disentanglement.sap(*split),
        "sap (continuous)": lambda: disentanglement.sap(*split, continuous=True),
        "alignment": lambda: label_free.alignment(codes, view2),
        "uniformity (all pairs)": lambda: label_free.uniformity(codes),
        "effective_rank": lambda: label_free.effective_rank(codes),
    }
    print(f"codes {n} x {a.d} (train {len(tr)} / validation {len(va)}), factors "
          + ", ".join(f"{k} {v}" for k, v in FACTORS.items())
          + f"; {a.clock} seconds, best of {a.repeats}; load average at start "
            f"{os.getloadavg()[0]:.1f}")
    clock = time.process_time if a.clock == "cpu" else time.perf_counter
    total = 0.0
    for name, fn in runs.items():
        s = best_time(fn, a.repeats, clock)
        total += s
        print(f"{name:<24}{s:>8.3f} s")
    print(f"{'total':<24}{total:>8.3f} s")


if __name__ == "__main__":
    main()
