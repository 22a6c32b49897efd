"""Factor datasets (DESIGN §1.3): one sprite on a black 64x64 canvas, in the
full cross of any subset of its factors, or a seeded random subset of it.

float32 RGB images [N, 64, 64, 3] in [0, 1], rendered by `sprites`.
`--factors=shape:3,orientation:8,color:10,scale:6,x:16,y:16` lists the
factors that vary and their counts (`data_spec.parse_factors` checks it).
Values of a listed factor with count k (level index i = 0..k-1):
- color: `sprites.palette(k)` (k HUSL hues, as dsprites_mod's 10);
- shape: the first k of square, ellipse, heart;
- scale: linspace(0.5, 1, k);
- orientation: 2 pi i / k, counter-clockwise (dSprites' 40 angles span
  [0, 2 pi) the same way);
- x, y: positions linspace(0, 1, k), x the column, y the row.
A factor not listed is fixed: color white (1, 1, 1), shape `--shape`,
scale 1, orientation 0, x and y the canvas centre (position 0.5).

Items: item n is np.unravel_index(cross[n], counts) over the listed factors
in `names.FACTOR_NAMES` order (the last varies fastest); `cross` is
arange(full cross), or with `--max_items=N` below the cross size N distinct
cross indices drawn with the seed (`default_rng([seed, _SUBSET_STREAM])`),
sorted. Labels: int64 level index per listed factor, plus `position` =
x * count_y + y when x and y are both listed. The model trains on every item.

Decoding splits (generalizing DESIGN §1.2's): each decoded factor f
(`data_spec.decoded_factors`) is validated on held-out values of its
nuisance factors N(f): the decoded factors of the other kind, the kinds
being identity (color, shape) and pose (scale, orientation, position, or x
or y alone); when no factor of the other kind varies, the other decoded
factors. Train: items whose every nuisance factor takes a training value;
validation: the rest. Each decoded factor with k values holds out
min(k - 1, max(1, round(fraction x k))) values, fraction color 0.2, shape
and scale 1/3, orientation 0.2, position, x, y 0.1, drawn with
`default_rng(seed)` in the order scale, orientation, position, x, y, color,
shape (a factor not decoded draws nothing). dsprites_mod's configuration gives
exactly DESIGN §1.2: color validated on 2 held-out scales or 26 held-out
positions, scale and position on 2 held-out colors, the same draws.
"""
from __future__ import annotations

import numpy as np

from simclr_controlled import data_spec, names
from simclr_controlled.datasets import sprites
from simclr_controlled.datasets.record import Dataset
from simclr_controlled.errors import UsageError

POSITION = names.POSITION
DEFAULT_FACTORS = names.DSPRITES_MOD_FACTORS
IDENTITY = ("color", "shape")
HELD_OUT_FRACTION = {"color": 0.2, "shape": 1 / 3, "scale": 1 / 3, "orientation": 0.2,
                     POSITION: 0.1, "x": 0.1, "y": 0.1}
DRAW_ORDER = ("scale", "orientation", POSITION, "x", "y", "color", "shape")
FIXED_COLOR = (1.0, 1.0, 1.0)
FIXED_POSITION = 0.5
# Second SeedSequence words of the subset stream (ASCII "subs").
_SUBSET_STREAM = 0x73756273
# Items assembled per step (a bool [chunk, 64, 64] gather and its product).
ITEM_CHUNK = 4096


def factor_values(spec: tuple, shape: str) -> dict:
    """Per factor (listed or fixed): its values, float64 [k] (color float32 [k, 3]; shape int ids)."""
    counts = dict(spec)

    def k(name: str) -> int:
        return counts.get(name, 1)

    return {
        "color": (sprites.palette(k("color")) if "color" in counts
                  else np.asarray([FIXED_COLOR], np.float32)),
        "shape": (np.arange(k("shape")) if "shape" in counts
                  else np.asarray([sprites.SHAPES.index(shape)])),
        "scale": np.linspace(0.5, 1.0, k("scale")) if "scale" in counts else np.ones(1),
        "orientation": np.arange(k("orientation")) * (2 * np.pi / k("orientation")),
        "x": np.linspace(0.0, 1.0, k("x")) if "x" in counts else np.asarray([FIXED_POSITION]),
        "y": np.linspace(0.0, 1.0, k("y")) if "y" in counts else np.asarray([FIXED_POSITION]),
    }


def cross_indices(spec: tuple, max_items: int, seed: int) -> np.ndarray:
    """int64 [n]: the items' indices into the full cross, sorted."""
    full = data_spec.cross_size(spec)
    n = data_spec.num_items(spec, max_items)
    if n == full:
        return np.arange(full, dtype=np.int64)
    rng = np.random.default_rng([seed, _SUBSET_STREAM])
    return np.sort(rng.choice(full, size=n, replace=False)).astype(np.int64)


def item_labels(spec: tuple, cross: np.ndarray) -> dict:
    """Level index per listed factor (int64 [n]), plus `position` when x and y are listed."""
    counts = dict(spec)
    levels = np.unravel_index(cross, tuple(counts.values()))
    labels = {name: np.asarray(lv, dtype=np.int64) for name, lv in zip(counts, levels)}
    if POSITION in data_spec.decoded_factors(spec):
        labels[POSITION] = labels["x"] * counts["y"] + labels["y"]
    return labels


def unit_count(spec: tuple, unit: str) -> int:
    counts = dict(spec)
    return counts["x"] * counts["y"] if unit == POSITION else counts[unit]


def held_out_count(unit: str, count: int) -> int:
    return min(count - 1, max(1, round(HELD_OUT_FRACTION[unit] * count)))


def draw_held_out(spec: tuple, seed: int) -> dict:
    """Decoded factor -> its held-out level indices (sorted list), drawn with `seed`."""
    rng = np.random.default_rng(seed)
    decoded = data_spec.decoded_factors(spec)
    out = {}
    for unit in DRAW_ORDER:
        if unit in decoded:
            n = unit_count(spec, unit)
            out[unit] = sorted(int(v) for v in rng.choice(n, size=held_out_count(unit, n),
                                                         replace=False))
    return {unit: out[unit] for unit in decoded}


def nuisance_factors(decoded: tuple) -> dict:
    """Decoded factor -> the factors whose held-out values form its validation set."""
    def kind(unit: str) -> bool:
        return unit in IDENTITY

    out = {}
    for f in decoded:
        other = tuple(g for g in decoded if kind(g) != kind(f))
        out[f] = other or tuple(g for g in decoded if g != f)
    return out


def decoding_splits(labels: dict, held_out: dict) -> dict:
    """Decoded factor -> (train_idx, val_idx), sorted int64 (the module docstring's rule)."""
    out = {}
    for f, nuisance in nuisance_factors(tuple(held_out)).items():
        train = np.ones(len(labels[f]), dtype=bool)
        for g in nuisance:
            train &= ~np.isin(labels[g], held_out[g])
        out[f] = (np.flatnonzero(train).astype(np.int64), np.flatnonzero(~train).astype(np.int64))
    return out


def render(spec: tuple, labels: dict, shape: str) -> np.ndarray:
    """float32 [n, 64, 64, 3]: each item's sprite mask times its colour.

    Each distinct (shape, scale, orientation, x, y) mask is rendered once.
    """
    values = factor_values(spec, shape)
    counts = dict(spec)
    n = len(next(iter(labels.values())))

    def level(name: str) -> np.ndarray:
        return labels[name] if name in counts else np.zeros(n, np.int64)

    geometry = ("shape", "scale", "orientation", "x", "y")
    dims = tuple(len(values[g]) for g in geometry)
    keys = np.ravel_multi_index(tuple(level(g) for g in geometry), dims)
    unique, inverse = np.unique(keys, return_inverse=True)
    shape_i, scale_i, orient_i, x_i, y_i = np.unravel_index(unique, dims)
    cos, sin = sprites.rotations(counts.get("orientation", 1))
    cx = sprites.centres(values["x"], sprites.reach(cos, sin))
    cy = sprites.centres(values["y"], sprites.reach(cos, sin))
    masks = sprites.masks(values["shape"][shape_i], cos[orient_i], sin[orient_i],
                          sprites.half_sides(values["scale"])[scale_i], cx[x_i], cy[y_i])
    colors = values["color"][level("color")]
    images = np.empty((n, sprites.IMAGE_SIZE, sprites.IMAGE_SIZE, 3), dtype=np.float32)
    inverse = inverse.reshape(-1)
    for start in range(0, n, ITEM_CHUNK):
        part = slice(start, start + ITEM_CHUNK)
        np.multiply(masks[inverse[part]][..., None], colors[part, None, None, :], out=images[part])
    return images


def make_dataset(seed: int = 0, factors: str = DEFAULT_FACTORS, max_items: int = 0,
                 shape: str = "square", name: str = names.FACTORS) -> Dataset:
    """Generates the factor dataset and its decoding splits (module docstring) from `seed`.

    `factors` (--factors) raises UsageError naming --factors; `seed` and
    `max_items` (checked by config.validate) are asserted.
    """
    sprites.check_shape(shape)
    spec = data_spec.parse_factors(factors)
    assert isinstance(seed, (int, np.integer)) and seed >= 0, \
        f"seed: must be an integer >= 0, got {seed!r}"
    assert isinstance(max_items, (int, np.integer)) and max_items >= 0, \
        f"max_items: must be an integer >= 0, got {max_items!r}"
    seed = int(seed)
    cross = cross_indices(spec, int(max_items), seed)
    labels = item_labels(spec, cross)
    held_out = draw_held_out(spec, seed)
    splits = decoding_splits(labels, held_out)
    for f, (train, val) in splits.items():
        if not len(train) or not len(val):
            raise UsageError(f"--max_items: {len(cross):,} items leave no "
                             f"{'training' if not len(train) else 'validation'} items for "
                             f"decoding {f}; give more items (the full cross has "
                             f"{data_spec.cross_size(spec):,})")
    n = len(cross)
    return Dataset(
        name=name,
        images=render(spec, labels, shape),
        labels=labels,
        train_idx=np.arange(n, dtype=np.int64),
        val_idx=np.zeros((0,), dtype=np.int64),
        params=dict(factors=data_spec.canonical(spec), max_items=int(max_items), shape=shape,
                    seed=seed, held_out=held_out),
        decoding_splits=splits,
    )
