"""Sprites of the factor datasets (DESIGN §1.2, §1.3): hard masks of a square,
an ellipse or a heart, scaled, rotated and placed on a 64x64 canvas, and the
HUSL palette of their colours.

Geometry (dsprites_mod's, unchanged):
- At scale s the sprite fills a box of side `SPRITE_FRACTION * 64 * s` px
  (20 px at scale 1). Box coordinates (u, v) run over [-1, 1] across it.
- Shapes in box coordinates: square |u| < 1 and |v| < 1; ellipse
  u^2 + (2v)^2 < 1 (horizontal, axis ratio 2:1, like dSprites'); heart
  (x^2 + y^2 - 1)^3 - x^2 y^3 < 0 with x = 1.14 u, y = 0.118 - 1.14 v (lobes
  up), which lies inside the box.
- A pixel (row i, column j) belongs to the sprite if its centre
  (i + .5, j + .5) lies strictly inside the shape: no antialiasing.
- Rotation by angle a is counter-clockwise on screen: with (dx, dy) the
  pixel centre minus the sprite centre (dx along columns, dy along rows),
  u = (cos a dx - sin a dy) / half, v = (sin a dx + cos a dy) / half. At a
  multiple of 90 degrees cos and sin are exactly 0 or +-1, so a square
  rotated by one renders exactly as the unrotated square; at a = 0 the
  arithmetic is dsprites_mod's, bit for bit.
- Positions p in [0, 1] map to the same centre at every scale,
  c = lo + p (hi - lo), with [lo, hi] chosen so that the scale-1 box,
  rotated by any angle of the dataset (`reach` = the largest
  |cos a| + |sin a|, 1 without rotation), stays `MARGIN_PX` = 1 px inside
  every edge: no sprite pixel ever touches the border row or column.
"""
from __future__ import annotations

import hsluv
import numpy as np

from simclr_controlled import names
from simclr_controlled.errors import UsageError

SHAPES = names.SHAPES
IMAGE_SIZE = 64
SPRITE_FRACTION = 0.3125  # box side at scale 1 / canvas side (20 px of 64)
MARGIN_PX = 1.0
# Heart (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0 spans x in [-1.139, 1.139],
# y in [-1, 1.236]; this isotropic map puts it inside the unit box.
_HEART_SCALE = 1.14
_HEART_SHIFT = 0.118
# Masks computed per call of `_shape_masks` (a few float64 [n, 64, 64] temporaries each).
MASK_CHUNK = 512


def palette(num_colors: int) -> np.ndarray:
    """float32 [num_colors, 3] RGB in [0, 1]: seaborn's husl_palette convention (DESIGN §1.2)."""
    if not isinstance(num_colors, (int, np.integer)) or num_colors < 1:
        raise UsageError(f"num_colors: must be a positive integer, got {num_colors!r}")
    hues = (np.linspace(0.0, 1.0, int(num_colors) + 1)[:-1] + 0.01) % 1 * 359
    rgb = [hsluv.hsluv_to_rgb([float(h), 0.9 * 99, 0.65 * 99]) for h in hues]
    return np.clip(np.asarray(rgb, dtype=np.float32), 0.0, 1.0)


def check_shape(shape: str) -> None:
    if shape not in SHAPES:
        raise UsageError(f"shape: unknown shape {shape!r}; allowed: {', '.join(SHAPES)}")


def half_sides(scales: np.ndarray) -> np.ndarray:
    """Half the box side in pixels at each scale."""
    return SPRITE_FRACTION * IMAGE_SIZE * np.asarray(scales, np.float64) / 2


def rotations(count: int) -> tuple[np.ndarray, np.ndarray]:
    """(cos, sin) float64 [count] of the angles 2 pi i / count, exact at quarter turns."""
    i = np.arange(count)
    angles = 2 * np.pi * i / count
    cos, sin = np.cos(angles), np.sin(angles)
    quarter = (4 * i) % count == 0
    q = (4 * i // count) % 4
    cos = np.where(quarter, np.array([1.0, 0.0, -1.0, 0.0])[q], cos)
    sin = np.where(quarter, np.array([0.0, 1.0, 0.0, -1.0])[q], sin)
    return cos, sin


def reach(cos: np.ndarray, sin: np.ndarray) -> float:
    """Half-extent of the rotated unit box along either axis, over all angles."""
    return float(np.max(np.abs(cos) + np.abs(sin)))


def centres(positions: np.ndarray, box_reach: float = 1.0) -> np.ndarray:
    """float64 pixel-space centres of positions in [0, 1] (same on both axes, all scales)."""
    half_max = SPRITE_FRACTION * IMAGE_SIZE * 1.0 / 2 * box_reach
    lo = MARGIN_PX + half_max
    hi = IMAGE_SIZE - MARGIN_PX - half_max
    return lo + np.asarray(positions, np.float64) * (hi - lo)


def _shape_masks(shape: str, cos, sin, half, cx, cy) -> np.ndarray:
    """bool [n, 64, 64] of one shape; every argument float64 [n]."""
    pix = np.arange(IMAGE_SIZE, dtype=np.float64) + 0.5
    dx = pix[None, None, :] - cx[:, None, None]  # [n, 1, col]
    dy = pix[None, :, None] - cy[:, None, None]  # [n, row, 1]
    c, s, h = cos[:, None, None], sin[:, None, None], half[:, None, None]
    u = (c * dx - s * dy) / h
    v = (s * dx + c * dy) / h
    if shape == "square":
        return (np.abs(u) < 1) & (np.abs(v) < 1)
    if shape == "ellipse":
        return u ** 2 + (2 * v) ** 2 < 1
    hx = u * _HEART_SCALE  # heart, lobes at the top (small rows)
    hy = _HEART_SHIFT - v * _HEART_SCALE
    return (hx ** 2 + hy ** 2 - 1) ** 3 - hx ** 2 * hy ** 3 < 0


def masks(shape_ids, cos, sin, half, cx, cy) -> np.ndarray:
    """bool [n, 64, 64]: sprite n is SHAPES[shape_ids[n]] with its rotation, half side and centre.

    Vectorized over sprites (in chunks of MASK_CHUNK, per shape).
    """
    shape_ids = np.asarray(shape_ids)
    args = [np.asarray(a, np.float64) for a in (cos, sin, half, cx, cy)]
    out = np.empty((len(shape_ids), IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    for k, shape in enumerate(SHAPES):
        idx = np.flatnonzero(shape_ids == k)
        for start in range(0, len(idx), MASK_CHUNK):
            part = idx[start:start + MASK_CHUNK]
            out[part] = _shape_masks(shape, *(a[part] for a in args))
    return out
