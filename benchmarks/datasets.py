"""Generation time of the two datasets (targets: hierarchy < 0.5 s,
dsprites_mod < 2 s on this 2-core machine).

    python benchmarks/datasets.py [--repeats 5]

Prints the best and median wall time of `get_dataset` per dataset, and the
load average (other jobs on the machine slow every number down).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from simclr_controlled.datasets import get_dataset  # noqa: E402


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    print(f"load average: {os.getloadavg()[0]:.2f}")
    out = {}
    for name, target in (("hierarchy", 0.5), ("dsprites_mod", 2.0)):
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            ds = get_dataset(name, seed=0)
            times.append(time.perf_counter() - t)
            del ds
        out[name] = {"best_s": min(times), "median_s": statistics.median(times), "target_s": target}
        print(f"{name:13s} best {min(times):.3f} s  median {statistics.median(times):.3f} s  "
              f"(target < {target} s)")
    return out


if __name__ == "__main__":
    main()
