"""Bootstrap intervals and the statistics behind the claims (numpy only).

"A > B" between similarities (docs/DESIGN.md §5): the per-reference paired
difference A - B has a 95% percentile-bootstrap confidence interval (1,000
resamples of the references, seeded) entirely above zero. Every comparison
of one check uses the same seed, so equal-size comparisons share their
resample indices.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from simclr_controlled.errors import UsageError


def _check_bootstrap_args(n_resamples: int, level: float) -> None:
    if int(n_resamples) < 1:
        raise UsageError(
            f"n_resamples: must be a positive integer, got {n_resamples}")
    if not 0.0 < float(level) < 1.0:
        raise UsageError(f"level: must be in (0, 1), got {level}")


def _percentile_interval(stats: np.ndarray, level: float) -> tuple[float, float]:
    if not np.all(np.isfinite(stats)):
        return (math.nan, math.nan)
    alpha = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(stats, [alpha, 100.0 - alpha])
    return (float(lo), float(hi))


def bootstrap_ci(stat_fn: Callable[..., np.ndarray],
                 arrays: Sequence[np.ndarray],
                 n_resamples: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of `stat_fn` over references.

    Every array's LAST axis is the reference axis, of one common length n;
    all arrays are resampled jointly with one ``[n_resamples, n]`` index draw
    from ``np.random.default_rng(seed)``. `stat_fn` receives the resampled
    arrays, each of shape ``[n_resamples, ..., n]``, and must return shape
    ``[n_resamples]`` (reduce the last axis, broadcast over the leading one).
    Returns ``(lo, hi)``; NaN, NaN if any resampled statistic is not finite.
    """
    _check_bootstrap_args(n_resamples, level)
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    if not arrays:
        raise UsageError("arrays: need at least one array, got none")
    n = arrays[0].shape[-1]
    if any(a.shape[-1] != n for a in arrays):
        raise UsageError(
            "arrays: all must share the reference axis length, got "
            f"{[a.shape[-1] for a in arrays]}")
    if n == 0:
        raise UsageError("arrays: need at least one reference, got 0")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(int(n_resamples), n))
    # take along the last axis gives [..., R, n]; the resample axis goes first.
    resampled = [np.moveaxis(np.take(a, idx, axis=-1), -2, 0) for a in arrays]
    with np.errstate(divide="ignore", invalid="ignore"):
        stats = np.asarray(stat_fn(*resampled), dtype=np.float64)
    if stats.shape != (int(n_resamples),):
        raise UsageError(
            f"stat_fn: must return shape ({int(n_resamples)},), got {stats.shape}")
    return _percentile_interval(stats, float(level))


def _mean_last(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=-1)


def paired_bootstrap_ci(diff: np.ndarray, n_resamples: int = 1000,
                        seed: int = 0, level: float = 0.95
                        ) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of a paired difference.

    `diff` is [n], one entry per reference item. With n = 1 the interval is
    the single value.
    """
    diff = np.asarray(diff, dtype=np.float64)
    if diff.ndim != 1:
        raise UsageError(f"diff: must be one-dimensional, got shape {diff.shape}")
    return bootstrap_ci(_mean_last, [diff], n_resamples, seed, level)


def two_sample_bootstrap_ci(a: np.ndarray, b: np.ndarray,
                            n_resamples: int = 1000, seed: int = 0,
                            level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of mean(a) - mean(b), a and b resampled independently."""
    _check_bootstrap_args(n_resamples, level)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise UsageError(
            f"a, b: need at least one value each, got {a.size} and {b.size}")
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, a.size, size=(int(n_resamples), a.size))
    ib = rng.integers(0, b.size, size=(int(n_resamples), b.size))
    stats = a[ia].mean(axis=1) - b[ib].mean(axis=1)
    return _percentile_interval(stats, float(level))


def gradedness(stack: np.ndarray) -> np.ndarray:
    """G (H3, Fig. 2) from per-reference similarities as [..., layer, probe, n].

    Probe axis: level_0, level_1 .. level_{L-2}, baseline. G = mean over
    layers and levels 1..L-2 of (s_l - s_base) / (s_0 - s_base), s = means
    over references (docs/DESIGN.md §5). Returns [...].
    """
    s = stack.mean(axis=-1)
    s0, mid, base = s[..., 0:1], s[..., 1:-1], s[..., -1:]
    return ((mid - base) / (s0 - base)).mean(axis=(-2, -1))


def kendall_tau(order_a: list[str], order_b: list[str]) -> float:
    """Kendall's tau between two orders of the same names; NaN below 2."""
    if len(order_a) < 2:
        return math.nan
    rank_b = {name: i for i, name in enumerate(order_b)}
    r = np.array([rank_b[name] for name in order_a])
    s = np.sign(r[None, :] - r[:, None])[np.triu_indices(len(r), 1)]
    return float(s.mean())
