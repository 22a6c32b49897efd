"""Time of the augmentation presets per batch on this CPU (random resized crop).

Times `augment.make_augment(preset)` on a batch of `--batch` float32 images
`--size` x `--size` x 3 (one view per item, fresh seeds every call so no
result is reused), eager and under XLA (`jit_compile=True`, the form the
input pipeline uses), as the best wall time and the best process CPU time
(all threads) over `--repeats` calls after one warm-up (compile) call.
`--compare PATH` also times another copy of `augment.py` (e.g. an older
revision written out with `git show REV:simclr_controlled/augment.py`).
Another process may share the CPUs: the load average is printed.

    python benchmarks/augment_crop.py [--batch 128] [--size 64] [--repeats 20]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from simclr_controlled import augment  # noqa: E402

PRESETS = ("random_crop", "crop_jitter")


def load_module(path: str):
    """Import an `augment.py` file under another name."""
    spec = importlib.util.spec_from_file_location("augment_compare", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def time_preset(module, preset: str, images: tf.Tensor, jit: bool, repeats: int) -> dict:
    """Best wall / CPU seconds per call and the first (warm-up) call's seconds."""
    fn = module.make_augment(preset, jit_compile=jit)
    batch = int(images.shape[0])

    def call(k: int) -> float:
        seeds = module.view_seeds(0, k, tf.range(batch), 0)
        return float(tf.reduce_sum(fn(images, seeds)).numpy())

    t = time.perf_counter()
    call(0)
    first = time.perf_counter() - t
    wall, cpu = float("inf"), float("inf")
    for k in range(1, repeats + 1):
        c, t = time.process_time(), time.perf_counter()
        call(k)
        wall, cpu = min(wall, time.perf_counter() - t), min(cpu, time.process_time() - c)
    return {"first_s": first, "wall_s": wall, "cpu_s": cpu}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--compare", default=None,
                        help="path of another augment.py to time the same way")
    args = parser.parse_args(argv)
    for name in ("batch", "size", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: must be a positive integer, got {getattr(args, name)}")
    images = tf.constant(np.random.default_rng(0).random(
        (args.batch, args.size, args.size, 3)), tf.float32)
    modules = {"package": augment}
    if args.compare:
        modules["compare"] = load_module(args.compare)
    print(f"batch {args.batch} x {args.size}x{args.size}x3, load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    results = {}
    for label, module in modules.items():
        for preset in PRESETS:
            for jit in (False, True):
                r = time_preset(module, preset, images, jit, args.repeats)
                results[(label, preset, jit)] = r
                print(f"{label:8s} {preset:12s} {'xla' if jit else 'eager':5s} "
                      f"{1e3 * r['wall_s']:8.1f} ms wall  {1e3 * r['cpu_s']:8.1f} ms CPU  "
                      f"(first call {r['first_s']:.1f} s)", flush=True)
    return results


if __name__ == "__main__":
    main()
