"""The hierarchical noise-mask dataset (DESIGN §1.1; paper Sec. 2, App. A.1)
and the probe items of the channel-preference analysis (DESIGN §4.1, Fig. 1B).

Level l (0 = top) has N_l = b_0 * ... * b_l classes, numbered in mixed radix:
the parent of level-l class c is class c // b_l at level l-1, so item i (one
item per leaf class, i = its leaf class) has level-l class
i // (N_{L-1} / N_l). Each class owns one mask_size x mask_size mask of
i.i.d. uniform [0, 1) float32 noise; channel l of an item is the mask of its
level-l class, top level first.

Randomness: one `np.random.default_rng(seed)` draws, in this order, the masks
level by level (top first), then the split. The probe builders use their own
stream, `default_rng([seed, _PROBE_STREAM])`, so even with the dataset's seed
they never replay the dataset's mask draws.

Split (App. A.1: "randomly held out items (10%)"): n_val =
round(val_fraction * N) items are held out. So that every held-out item's
upper-level masks are seen in training (DESIGN §1.1), one randomly chosen child
of every level-(L-2) class is kept in training, and the n_val held-out items
are drawn uniformly without replacement from the remaining items. Every class
at levels 0..L-2 therefore has a training item; only held-out leaf masks are
new. With one level (L = 1) there are no upper levels and no item is kept
back. When n_val exceeds the number of items that may go (e.g. a last
branching factor of 1), make_dataset raises UsageError.
"""
from __future__ import annotations

import itertools
import math
import numbers
import operator
from typing import Sequence

import numpy as np

from simclr_controlled import names
from simclr_controlled.datasets.record import Dataset
from simclr_controlled.errors import UsageError

# Caps so that a typo fails fast instead of exhausting memory.
MAX_ITEMS = 1_000_000
MAX_IMAGE_BYTES = 4 * 2**30

PROBE_SOURCES = ("train", "random")
# Second SeedSequence word of the probe stream (any constant; ASCII "prob").
_PROBE_STREAM = 0x70726F62


def _as_int(value, name: str, what: str) -> int:
    """`value` as a Python int, or UsageError naming `name`."""
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise UsageError(f"{name}: {what}, got {value!r}")


def parse_branching(branching) -> list[int]:
    """Branching factors from a sequence of ints or a string like "5,5,5,5"."""
    what = "every factor must be a positive integer (e.g. 10,10,10,10)"
    if isinstance(branching, str):
        tokens = branching.split(",") if branching.strip() else []
    elif isinstance(branching, (numbers.Integral, np.integer)):
        tokens = [branching]
    else:
        try:
            tokens = list(branching)
        except TypeError:
            raise UsageError(f"branching: {what}, got {branching!r}") from None
    if not tokens:
        raise UsageError("branching: needs at least one level of positive integer "
                         f"factors (e.g. 10,10,10,10), got {branching!r}")
    factors = [_as_int(t, "branching", what) for t in tokens]
    for f in factors:
        if f < 1:
            raise UsageError(f"branching: {what}, got {f}")
    return factors


def class_counts(branching) -> list[int]:
    """N_l = b_0 * ... * b_l for every level l (DESIGN §1.1)."""
    return list(itertools.accumulate(parse_branching(branching), operator.mul))


def _check_params(branching, mask_size, crop_size, val_fraction, seed):
    factors = parse_branching(branching)
    mask_size = _as_int(mask_size, "mask_size", "must be a positive integer")
    if mask_size < 1:
        raise UsageError(f"mask_size: must be a positive integer, got {mask_size}")
    crop_size = _as_int(crop_size, "crop_size",
                        f"must be an integer in [1, mask_size={mask_size}]")
    if not 1 <= crop_size <= mask_size:
        raise UsageError(f"crop_size: must be an integer in [1, mask_size={mask_size}], "
                         f"got {crop_size}")
    if not isinstance(val_fraction, numbers.Real) or not 0.0 < float(val_fraction) < 1.0:
        raise UsageError("val_fraction: must be a number in the open interval (0, 1), "
                         f"got {val_fraction!r}")
    val_fraction = float(val_fraction)
    # --seed is config.validate's; here the invariant.
    assert isinstance(seed, numbers.Integral) and seed >= 0, \
        f"seed: must be an integer >= 0, got {seed!r}"
    seed = int(seed)
    counts = class_counts(factors)  # Python ints: no overflow before the cap check
    num_items = counts[-1]
    if num_items > MAX_ITEMS:
        raise UsageError(f"branching: at most {MAX_ITEMS} items (product of the factors), "
                         f"got {num_items}")
    image_bytes = num_items * mask_size * mask_size * len(factors) * 4
    if image_bytes > MAX_IMAGE_BYTES:
        raise UsageError(f"mask_size: images would take {image_bytes / 2**30:.1f} GiB "
                         f"(limit {MAX_IMAGE_BYTES // 2**30} GiB); use a smaller mask_size "
                         "or branching")
    num_val = int(math.floor(val_fraction * num_items + 0.5))
    if num_val < 1:
        raise UsageError(f"val_fraction: {val_fraction} of {num_items} items holds out no item; "
                         f"allowed: at least 1/(2*{num_items}) so one item is held out")
    # Items that must stay in training: one per level-(L-2) class.
    num_kept = counts[-2] if len(factors) > 1 else 1
    if num_val > num_items - num_kept:
        raise UsageError(
            f"val_fraction: holding out {num_val} of {num_items} items would leave some "
            f"level-{len(factors) - 2} class with no training item; allowed: at most "
            f"{num_items - num_kept} items (branching {factors})")
    return factors, counts, mask_size, crop_size, val_fraction, seed, num_val


def _split(rng: np.random.Generator, counts: Sequence[int], factors: Sequence[int],
           num_val: int) -> tuple[np.ndarray, np.ndarray]:
    """Random held-out items; one child per level-(L-2) class stays in training."""
    num_items = counts[-1]
    if len(factors) > 1:
        kept = (np.arange(counts[-2], dtype=np.int64) * factors[-1]
                + rng.integers(0, factors[-1], size=counts[-2]))
    else:
        kept = rng.integers(0, num_items, size=1)
    eligible = np.ones(num_items, dtype=bool)
    eligible[kept] = False
    val_idx = np.sort(rng.choice(np.flatnonzero(eligible), size=num_val, replace=False))
    in_val = np.zeros(num_items, dtype=bool)
    in_val[val_idx] = True
    return np.flatnonzero(~in_val).astype(np.int64), val_idx.astype(np.int64)


def make_dataset(seed: int = 0, branching=(10, 10, 10, 10), mask_size: int = 38,
                 crop_size: int = 28, val_fraction: float = 0.1) -> Dataset:
    """The hierarchical dataset of DESIGN §1.1, deterministic in `seed`.

    Returns a `Dataset` with images float32 [N, m, m, L], labels `level_l`
    int64 [N], masks (one float32 [N_l, m, m] per level) and the split
    described in the module docstring. `crop_size` is recorded for the
    augmentation (random crop without resizing; center crop for evaluation).
    Raises UsageError naming the bad parameter.
    """
    factors, counts, m, crop_size, val_fraction, seed, num_val = _check_params(
        branching, mask_size, crop_size, val_fraction, seed)
    rng = np.random.default_rng(seed)
    num_items, num_levels = counts[-1], len(factors)
    masks = tuple(rng.random((n, m, m), dtype=np.float32) for n in counts)
    leaf = np.arange(num_items, dtype=np.int64)
    labels = {f"level_{l}": leaf // (num_items // n) for l, n in enumerate(counts)}
    images = np.empty((num_items, m, m, num_levels), dtype=np.float32)
    for l, n in enumerate(counts):
        # Mixed-radix numbering: the items of level-l class c are the contiguous
        # block c * (N / N_l) ..., so a broadcast write replaces a gather (no
        # temporary).
        images.reshape(n, num_items // n, m, m, num_levels)[..., l] = masks[l][:, None]
    train_idx, val_idx = _split(rng, counts, factors, num_val)
    params = dict(branching=list(factors), mask_size=m, crop_size=crop_size,
                  val_fraction=val_fraction, seed=seed)
    return Dataset(name=names.HIERARCHY, images=images, labels=labels, train_idx=train_idx,
                   val_idx=val_idx, params=params, masks=masks)


def _other_classes(rng: np.random.Generator, pool: np.ndarray, own: np.ndarray) -> np.ndarray:
    """For each entry of `own` (all in sorted `pool`), a uniform class of `pool` != own."""
    pos = np.searchsorted(pool, own)
    draw = rng.integers(0, pool.size - 1, size=own.shape)
    return pool[draw + (draw >= pos)]


def channel_preference_probes(dataset: Dataset, num_references: int = 200,
                              source: str = "train", seed: int = 0
                              ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """References and probes of the channel-preference analysis (DESIGN §4.1, Fig. 1B).

    Returns (references [n, m, m, L], probes) with probes `level_0` ..
    `level_{L-1}` and `baseline`, each [n, m, m, L].
    source "train" (Fig. 2): references are n distinct training items; the
      level-l probe equals the reference in channel l, and each other channel
      k holds the mask of a uniformly drawn level-k class that occurs in
      training items and differs from the reference's (drawn independently
      per probe and channel). The baseline probe differs in every channel.
    source "random" (Fig. B.1): references and probe channels are fresh
      uniform [0, 1) noise; the level-l probe copies the reference's channel l.
    """
    if source not in PROBE_SOURCES:
        raise UsageError(f"source: unknown probe source {source!r}; allowed: "
                         f"{', '.join(PROBE_SOURCES)}")
    n = _as_int(num_references, "num_references", "must be a positive integer")
    if n < 1:
        raise UsageError(f"num_references: must be a positive integer, got {n}")
    seed = _as_int(seed, "seed", "must be a non-negative integer")
    if seed < 0:
        raise UsageError(f"seed: must be a non-negative integer, got {seed}")
    train_idx = np.asarray(dataset.train_idx)
    if n > train_idx.size:
        raise UsageError(f"num_references: at most the {train_idx.size} training items, "
                         f"got {n}")
    _, m, _, num_levels = dataset.images.shape
    rng = np.random.default_rng([seed, _PROBE_STREAM])
    names = [f"level_{l}" for l in range(num_levels)] + ["baseline"]

    if source == "random":
        references = rng.random((n, m, m, num_levels), dtype=np.float32)
        probes = {}
        for l, name in enumerate(names):
            probe = rng.random((n, m, m, num_levels), dtype=np.float32)
            if l < num_levels:
                probe[..., l] = references[..., l]
            probes[name] = probe
        return references, probes

    ref_items = rng.choice(train_idx, size=n, replace=False)
    references = dataset.images[ref_items]
    ref_classes, pools = [], []
    for k in range(num_levels):
        labels_k = np.asarray(dataset.labels[f"level_{k}"])
        pool = np.unique(labels_k[train_idx])
        if pool.size < 2:
            raise UsageError(f"branching: channel-preference probes need at least two "
                             f"training classes at every level; level {k} has {pool.size}")
        ref_classes.append(labels_k[ref_items])
        pools.append(pool)
    probes = {}
    for l, name in enumerate(names):
        probe = np.empty_like(references)
        for k in range(num_levels):
            if k == l:
                probe[..., k] = references[..., k]
            else:
                other = _other_classes(rng, pools[k], ref_classes[k])
                probe[..., k] = dataset.masks[k][other]
        probes[name] = probe
    return references, probes
