"""The modified dSprites dataset (DESIGN §1.2; paper Sec. 3, Fig. B.4): the
paper configuration of the factor datasets (`factors`, DESIGN §1.3),
`--factors=color:10,scale:6,x:16,y:16`.

15,360 float32 RGB images [N, 64, 64, 3] in [0, 1]: one sprite at a fixed
orientation on a black background, in the full cross of
color (10) x scale (6) x x-position (16) x y-position (16).

Decisions where the paper is silent (also in the README; the geometry is
`sprites`'):

- Default shape `square`. The paper only says "the same object at a fixed
  orientation"; a square is orientation-free and its side is exactly 10, 12,
  ..., 20 px at every position, so adjacent scales never render alike and
  scale is a clean pixel-count factor. `ellipse` and `heart` are selectable.
- Positions: the scale-1 sprite box stays `MARGIN_PX` = 1 px inside the
  canvas; centres 11..53 px. x is the column, y the row; hard masks.
- Order: item n is (color, scale, x, y) = np.unravel_index(n, (10, 6, 16, 16)),
  i.e. np.meshgrid(..., indexing="ij"): y varies fastest.
- Labels: int64 `color`, `scale`, `x`, `y` (level indices) and
  `position` = x * 16 + y (256 classes).
- Decoding splits (`factors`' rule): held-out values drawn with
  np.random.default_rng(seed), in this order: 2 of 6 scales,
  round(0.1 * 256) = 26 of 256 positions, 2 of 10 colors; recorded in
  params["held_out"] as `scales`, `positions`, `colors`. Images and labels
  are those of the earlier dedicated renderer, bit for bit (tests/test_factors.py).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from simclr_controlled import names
from simclr_controlled.datasets import factors, sprites
from simclr_controlled.datasets.record import Dataset

SHAPES = names.SHAPES
# The factors the linear decoders read (keys of `decoding_splits`) and the PCA figure's labels.
FACTORS = names.DSPRITES_FACTORS
PCA_FACTORS = names.DSPRITES_PCA_FACTORS
DEFAULT_SHAPE = "square"
SPEC = names.DSPRITES_MOD_FACTORS

IMAGE_SIZE = sprites.IMAGE_SIZE
NUM_COLORS = 10
NUM_SCALES = 6
NUM_POSITIONS = 16  # per axis
SCALES = np.linspace(0.5, 1.0, NUM_SCALES)
POSITIONS = np.linspace(0.0, 1.0, NUM_POSITIONS)
SPRITE_FRACTION = sprites.SPRITE_FRACTION
MARGIN_PX = sprites.MARGIN_PX


def palette(num_colors: int = NUM_COLORS) -> np.ndarray:
    """float32 [num_colors, 3] RGB in [0, 1]: seaborn's husl_palette convention (DESIGN §1.2)."""
    return sprites.palette(num_colors)


def sprite_centres() -> np.ndarray:
    """float64 [16] pixel-space centres for POSITIONS (same on both axes, all scales)."""
    return sprites.centres(POSITIONS)


def render_masks(shape: str = DEFAULT_SHAPE) -> np.ndarray:
    """bool [6 scale, 16 x, 16 y, 64 row, 64 col]: the sprite's pixels."""
    sprites.check_shape(shape)
    s, x, y = (a.reshape(-1) for a in np.meshgrid(
        np.arange(NUM_SCALES), np.arange(NUM_POSITIONS), np.arange(NUM_POSITIONS), indexing="ij"))
    centres = sprite_centres()
    zeros = np.zeros(len(s))
    masks = sprites.masks(np.full(len(s), SHAPES.index(shape)), zeros + 1.0, zeros,
                          sprites.half_sides(SCALES)[s], centres[x], centres[y])
    return masks.reshape(NUM_SCALES, NUM_POSITIONS, NUM_POSITIONS, IMAGE_SIZE, IMAGE_SIZE)


def make_dataset(seed: int = 0, shape: str = DEFAULT_SHAPE, max_items: int = 0) -> Dataset:
    """Generates the dataset and its decoding splits (DESIGN §1.2) deterministically.

    The images do not depend on `seed`; it only draws the held-out values.
    `max_items` > 0 keeps a seeded random subset of the cross (`factors`'
    rule; for quick runs and tests, not the paper's setting). `seed`
    (--seed, checked by config.validate) is asserted.
    """
    sprites.check_shape(shape)
    ds = factors.make_dataset(seed=seed, factors=SPEC, shape=shape, max_items=max_items,
                              name=names.DSPRITES_MOD)
    held = ds.params["held_out"]
    held_out = dict(scales=held["scale"], positions=held[names.POSITION], colors=held["color"])
    subset = {"max_items": max_items} if max_items else {}
    return dataclasses.replace(ds, params=dict(shape=shape, seed=ds.params["seed"], held_out=held_out,
                                               **subset))
