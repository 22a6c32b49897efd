"""Shared helpers for the benchmarks: the machine's dense matmul peak, timing."""
from __future__ import annotations

import time

import tensorflow as tf


def matmul_peak_flops(n: int = 2048, repeats: int = 20, clock=time.perf_counter) -> float:
    """Achieved FLOP/s of a float32 [n x n] @ [n x n] matmul in TF (best of runs).

    Used as this machine's dense matmul peak so that other numbers are stated as
    a fraction of it, measured in the same process. `clock=time.process_time`
    gives FLOPs per process CPU second (robust to other jobs on the machine).
    """
    a = tf.random.stateless_normal([n, n], seed=[1, 2])
    b = tf.random.stateless_normal([n, n], seed=[3, 4])
    f = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    f().numpy()
    best = float("inf")
    for _ in range(repeats):
        t = clock()
        f().numpy()
        best = min(best, clock() - t)
    return 2.0 * n ** 3 / best


def best_time(fn, repeats: int = 5) -> float:
    """Best wall time of `fn()` over `repeats` calls (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best
