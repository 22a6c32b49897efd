"""The modified dSprites dataset (DESIGN §1.2; paper Sec. 3, Fig. B.4).

15,360 float32 RGB images [N, 64, 64, 3] in [0, 1]: one sprite at a fixed
orientation on a black background, in the full cross of
color (10) x scale (6) x x-position (16) x y-position (16).

Decisions where the paper is silent (also in the README):

- Default shape `square`. The paper only says "the same object at a fixed
  orientation"; a square is orientation-free and, with the extent below, its
  side is exactly 10, 12, ..., 20 px at every position, so adjacent scales never
  render alike and scale is a clean pixel-count factor. `ellipse` (horizontal,
  axis ratio 2:1, like dSprites') and `heart` (implicit curve, lobes up) are
  selectable.
- Sprite extent: at scale s the sprite fills a square box of side
  `SPRITE_FRACTION * 64 * s` px (20 px at scale 1, 10 px at scale 0.5).
- Positions: as in dSprites, a position p in [0, 1] maps to the same sprite
  centre at every scale, `c = lo + p * (hi - lo)`, with [lo, hi] chosen so the
  largest (scale 1) sprite box stays `MARGIN_PX` = 1 px away from every edge:
  no sprite pixel ever touches the border row or column.
- Axes: x is the column (left to right), y the row (top to bottom).
- A pixel (row i, column j) belongs to the sprite if its centre (i + .5, j + .5)
  lies strictly inside the shape: a hard mask, no antialiasing.
- Order: item n is (color, scale, x, y) = np.unravel_index(n, (10, 6, 16, 16)),
  i.e. np.meshgrid(..., indexing="ij"): y varies fastest.
- Labels: int64 `color`, `scale`, `x`, `y` (level indices) and
  `position` = x * 16 + y (256 classes).
- Decoding splits are drawn with np.random.default_rng(seed), in this order:
  2 of 6 scales, round(0.1 * 256) = 26 of 256 positions (indices into
  `position`), 2 of 10 colors; all recorded in params["held_out"].
"""
from __future__ import annotations

import hsluv
import numpy as np

from simclr_controlled import names
from simclr_controlled.datasets.record import Dataset
from simclr_controlled.errors import UsageError

SHAPES = names.SHAPES
# The factors the linear decoders read (keys of `decoding_splits`) and the PCA figure's labels.
FACTORS = names.DSPRITES_FACTORS
PCA_FACTORS = names.DSPRITES_PCA_FACTORS
DEFAULT_SHAPE = "square"

IMAGE_SIZE = 64
NUM_COLORS = 10
NUM_SCALES = 6
NUM_POSITIONS = 16  # per axis
SCALES = np.linspace(0.5, 1.0, NUM_SCALES)
POSITIONS = np.linspace(0.0, 1.0, NUM_POSITIONS)
SPRITE_FRACTION = 0.3125  # box side at scale 1 / canvas side (20 px of 64)
MARGIN_PX = 1.0

NUM_HELD_OUT_SCALES = 2
HELD_OUT_POSITION_FRACTION = 0.1
NUM_HELD_OUT_COLORS = 2

# Heart (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0 spans x in [-1.139, 1.139],
# y in [-1, 1.236]; this isotropic map puts it inside the unit box.
_HEART_SCALE = 1.14
_HEART_SHIFT = 0.118


def palette(num_colors: int = NUM_COLORS) -> np.ndarray:
    """float32 [num_colors, 3] RGB in [0, 1]: seaborn's husl_palette convention (DESIGN §1.2)."""
    if not isinstance(num_colors, (int, np.integer)) or num_colors < 1:
        raise UsageError(f"num_colors: must be a positive integer, got {num_colors!r}")
    hues = (np.linspace(0.0, 1.0, int(num_colors) + 1)[:-1] + 0.01) % 1 * 359
    rgb = [hsluv.hsluv_to_rgb([float(h), 0.9 * 99, 0.65 * 99]) for h in hues]
    return np.clip(np.asarray(rgb, dtype=np.float32), 0.0, 1.0)


def _check_shape(shape: str) -> None:
    if shape not in SHAPES:
        raise UsageError(f"shape: unknown shape {shape!r}; allowed: {', '.join(SHAPES)}")


def sprite_centres() -> np.ndarray:
    """float64 [16] pixel-space centres for POSITIONS (same on both axes, all scales)."""
    half_max = SPRITE_FRACTION * IMAGE_SIZE * SCALES.max() / 2
    lo = MARGIN_PX + half_max
    hi = IMAGE_SIZE - MARGIN_PX - half_max
    return lo + POSITIONS * (hi - lo)


def render_masks(shape: str = DEFAULT_SHAPE) -> np.ndarray:
    """bool [6 scale, 16 x, 16 y, 64 row, 64 col]: the sprite's pixels."""
    _check_shape(shape)
    pix = np.arange(IMAGE_SIZE, dtype=np.float64) + 0.5
    centres = sprite_centres()
    masks = np.empty((NUM_SCALES, NUM_POSITIONS, NUM_POSITIONS, IMAGE_SIZE, IMAGE_SIZE),
                     dtype=bool)
    for s, scale in enumerate(SCALES):
        half = SPRITE_FRACTION * IMAGE_SIZE * scale / 2
        # Box coordinates in [-1, 1] over the sprite's extent.
        u = ((pix[None, :] - centres[:, None]) / half)[:, None, None, :]  # [x, 1, 1, col]
        v = ((pix[None, :] - centres[:, None]) / half)[None, :, :, None]  # [1, y, row, 1]
        if shape == "square":
            masks[s] = (np.abs(u) < 1) & (np.abs(v) < 1)
        elif shape == "ellipse":
            masks[s] = u ** 2 + (2 * v) ** 2 < 1
        else:  # heart, lobes at the top (small rows)
            hx = u * _HEART_SCALE
            hy = _HEART_SHIFT - v * _HEART_SCALE
            masks[s] = (hx ** 2 + hy ** 2 - 1) ** 3 - hx ** 2 * hy ** 3 < 0
    return masks


def draw_held_out(seed: int) -> dict:
    """Held-out decoding values drawn with `seed` (DESIGN §1.2), JSON-serialisable.

    Order of draws: scales, positions (indices x * 16 + y), colors.
    """
    rng = np.random.default_rng(seed)
    num_pos = NUM_POSITIONS * NUM_POSITIONS

    def pick(n: int, k: int) -> list:
        return sorted(int(v) for v in rng.choice(n, size=k, replace=False))

    return dict(scales=pick(NUM_SCALES, NUM_HELD_OUT_SCALES),
                positions=pick(num_pos, int(round(HELD_OUT_POSITION_FRACTION * num_pos))),
                colors=pick(NUM_COLORS, NUM_HELD_OUT_COLORS))


def decoding_splits(labels: dict, held_out: dict) -> dict:
    """factor -> (train_idx, val_idx), sorted int64, for the linear decoders (DESIGN §1.2)."""
    # Color decoders see neither a held-out scale nor a held-out position.
    color_train = (~np.isin(labels["scale"], held_out["scales"])
                   & ~np.isin(labels["position"], held_out["positions"]))
    # Scale and position decoders are validated on the held-out colors.
    by_color = ~np.isin(labels["color"], held_out["colors"])

    def split(train: np.ndarray) -> tuple:
        return (np.flatnonzero(train).astype(np.int64),
                np.flatnonzero(~train).astype(np.int64))

    return dict(color=split(color_train), scale=split(by_color), position=split(by_color))


def make_dataset(seed: int = 0, shape: str = DEFAULT_SHAPE) -> Dataset:
    """Generates the dataset and its decoding splits (DESIGN §1.2) deterministically.

    The images do not depend on `seed`; it only draws the held-out values.
    `seed` (--seed, checked by config.validate) is asserted.
    """
    _check_shape(shape)
    assert isinstance(seed, (int, np.integer)) and seed >= 0, \
        f"seed: must be an integer >= 0, got {seed!r}"
    seed = int(seed)
    grid = (NUM_COLORS, NUM_SCALES, NUM_POSITIONS, NUM_POSITIONS)
    n = int(np.prod(grid))

    # float32 masks make the broadcast faster than bool->float casts inside it.
    masks = render_masks(shape).astype(np.float32)
    colors = palette(NUM_COLORS)
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.float32)
    # One broadcast straight into the output: no [N, 64, 64, 3] temporaries.
    np.multiply(masks[None, ..., None],
                colors[:, None, None, None, None, None, :],
                out=images.reshape(grid + (IMAGE_SIZE, IMAGE_SIZE, 3)))

    color, scale, x, y = (a.reshape(-1).astype(np.int64) for a in np.meshgrid(
        *(np.arange(g) for g in grid), indexing="ij"))
    labels = dict(color=color, scale=scale, x=x, y=y, position=x * NUM_POSITIONS + y)

    held_out = draw_held_out(seed)
    return Dataset(
        name=names.DSPRITES_MOD,
        images=images,
        labels=labels,
        train_idx=np.arange(n, dtype=np.int64),
        val_idx=np.zeros((0,), dtype=np.int64),
        params=dict(shape=shape, seed=seed, held_out=held_out),
        decoding_splits=decoding_splits(labels, held_out),
    )
