"""Bootstrap intervals and the statistics behind the claims (numpy only).

"A > B" between similarities (docs/DESIGN.md §5): the per-reference paired
difference A - B has a 95% percentile-bootstrap confidence interval (1,000
resamples of the references, seeded) entirely above zero. Every comparison
of one check uses the same seed, so equal-size comparisons share their
resample indices.
"""
from __future__ import annotations

import math
import warnings
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


# Across seeds (docs/DESIGN.md §5 "Across seeds"): a draw function returns
# `n_resamples` item-resampled values of one seed's statistic, given a
# generator; see `item_draws`.
Draw = Callable[[np.random.Generator, int], np.ndarray]


def item_draws(stat_fn: Callable[..., np.ndarray],
               arrays: Sequence[np.ndarray]) -> Draw:
    """The draw function of one seed: `stat_fn` on its arrays with the
    references (LAST axis, shared length) resampled jointly, as in
    `bootstrap_ci`."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    n = arrays[0].shape[-1]

    def draw(rng: np.random.Generator, n_resamples: int) -> np.ndarray:
        idx = rng.integers(0, n, size=(int(n_resamples), n))
        resampled = [np.moveaxis(np.take(a, idx, axis=-1), -2, 0) for a in arrays]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(stat_fn(*resampled), dtype=np.float64)
    return draw


def constant_draws(value: float) -> Draw:
    """A seed whose statistic has no items to resample (a best validation
    accuracy, D1-D3): every draw is the value."""
    return lambda rng, n_resamples: np.full(int(n_resamples), float(value))


def two_level_bootstrap_ci(draws: Sequence[Draw], n_resamples: int = 1000,
                           seed: int = 0, level: float = 0.95
                           ) -> tuple[float, float]:
    """Percentile interval of the mean over seeds of a statistic, resampling
    seeds with replacement, then items within each drawn seed.

    `draws[s]` gives seed s's item-resampled statistic (`item_draws`,
    `constant_draws`). Each resample draws n seeds; a seed drawn twice gets
    two independent item resamples. ``(nan, nan)`` if a value is not finite.
    """
    _check_bootstrap_args(n_resamples, level)
    n = len(draws)
    if n == 0:
        raise UsageError("draws: need at least one seed, got none")
    r = int(n_resamples)
    rng = np.random.default_rng(seed)
    picked = rng.integers(0, n, size=(r, n))
    total = np.zeros(r)
    rows = np.arange(r)
    # Slot j of every resample: one item resample per seed, the drawn seed's kept.
    for j in range(n):
        per_seed = np.stack([np.asarray(d(rng, r), dtype=np.float64) for d in draws])
        total += per_seed[picked[:, j], rows]
    return _percentile_interval(total / n, float(level))


def seed_interval(values: np.ndarray, n_resamples: int = 1000, seed: int = 0,
                  level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds (FIRST axis) and its percentile bootstrap interval,
    seeds resampled with replacement, for every trailing entry at once.

    NaN entries (a seed without that value) are left out of that entry's
    mean; an entry with no finite value is NaN. Returns (mean, lo, hi), each
    of shape ``values.shape[1:]``.
    """
    _check_bootstrap_args(n_resamples, level)
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 0 or v.shape[0] == 0:
        raise UsageError(f"values: need a leading seed axis of length >= 1, got shape {v.shape}")
    n = v.shape[0]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(int(n_resamples), n))
    finite = np.isfinite(v)
    filled = np.where(finite, v, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = filled.sum(0) / finite.sum(0)
        boot = filled[idx].sum(1) / finite[idx].sum(1)  # [R, ...]
    alpha = 100.0 * (1.0 - level) / 2.0
    with warnings.catch_warnings():
        # An entry no seed has is NaN in every resample: its interval is NaN.
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanpercentile(boot, [alpha, 100.0 - alpha], axis=0)
    mean = np.where(finite.any(0), mean, np.nan)
    return mean, np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
