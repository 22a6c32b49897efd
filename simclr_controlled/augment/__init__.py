"""Batched, stateless SimCLR augmentations (docs/DESIGN.md §2; SimCLR `data_util.py`).

Every op works on a whole batch `images [B, H, W, C]` (float32 in [0, 1])
with per-item seeds `seeds [B, 2]`, inside `tf.data` maps (after batching),
`tf.function` and XLA (`jit_compile=True`). Randomness is a counter-based
hash of the item seed, so view v of item i at epoch e is a pure function of
(seed, e, i, v), whatever batch it sits in.

- `seeds`: the hash, `view_seeds`, the per-stream uniforms;
- `crops`: `crop` (§2.1), the centre crop, the random resized crop (§2.2);
- `color`: colour jitter and grayscale (§2.3);
- here: the flip and the presets (§2.4), `make_augment`. Every name of the
  submodules that other code reads is re-exported here.

Decisions where docs/DESIGN.md §2 / SimCLR leave room (the crop's and the
colour jitter's in `crops` and `color`):
- `flip` (off by default, it changes x-position): left-right with probability
  0.5, after the crop and before the colour jitter (SimCLR order), for every
  preset when `flip=True` (so `none` + flip is flip only).
- `crop_size` is only read by the `crop` preset; other presets ignore it.
  It is --crop_size, checked by `config.validate` (1 to --mask_size, the
  image side); here it is asserted.
"""
from __future__ import annotations

from typing import Callable

import tensorflow as tf

from simclr_controlled import names
from simclr_controlled.augment.color import (BRIGHTNESS, CONTRAST, GRAY_PROB,  # noqa: F401
                                             HUE, JITTER_PROB, SATURATION,
                                             apply_color_jitter, color_jitter,
                                             color_jitter_params, to_grayscale)
from simclr_controlled.augment.crops import (AREA_RANGE, ASPECT_RANGE,  # noqa: F401
                                             CROP_ATTEMPTS, MIN_OBJECT_COVERED,
                                             _assert_crop_size, _static_hwc,
                                             center_crop, crop_offsets,
                                             random_crop, random_resized_crop,
                                             resized_crop, resized_crop_boxes)
from simclr_controlled.augment.seeds import _STREAM_FLIP, _uniforms, view_seeds  # noqa: F401
from simclr_controlled.errors import UsageError

__all__ = [
    "PRESETS", "ALL_PRESETS", "make_augment", "view_seeds",
    "AREA_RANGE", "ASPECT_RANGE", "MIN_OBJECT_COVERED", "CROP_ATTEMPTS",
    "JITTER_PROB", "GRAY_PROB", "FLIP_PROB",
    "BRIGHTNESS", "CONTRAST", "SATURATION", "HUE",
    "crop_offsets", "random_crop", "center_crop", "resized_crop_boxes",
    "resized_crop", "random_resized_crop", "random_flip",
    "color_jitter_params", "to_grayscale", "apply_color_jitter", "color_jitter",
]

# dsprites_mod experiment presets (docs/DESIGN.md §2.4) plus the hierarchy's `crop`.
PRESETS = names.AUGMENT_PRESETS
ALL_PRESETS = names.AUGMENTATIONS

FLIP_PROB = 0.5


def random_flip(images: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
    """Left-right flip with probability 0.5 per item (docs/DESIGN.md §2.4)."""
    flip = _uniforms(seeds, _STREAM_FLIP, 1)[:, 0] < FLIP_PROB
    return tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)


def make_augment(preset: str, *, crop_size: int | None = None,
                 color_jitter_strength: float = 0.5,
                 flip: bool = False,
                 jit_compile: bool = False) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """fn(images [B, H, W, C] float32 in [0, 1], seeds [B, 2]) -> views (docs/DESIGN.md §2.4).

    `none`: identity; `crop`: `random_crop` without resizing (needs
    `crop_size`; output [B, crop, crop, C]); `random_crop`: random resized
    crop; `color_jitter`: colour jitter; `crop_jitter`: random resized crop
    then colour jitter (SimCLR order). `flip=True` adds a left-right flip
    after the crop. `jit_compile=True` returns the function wrapped in
    `tf.function(jit_compile=True)`, the form used inside a `tf.data` map
    (faster under XLA on a CPU host; README, Speed); a view then matches its
    eager value to float rounding only (XLA may specialise a batch of one),
    not bit for bit.
    """
    if preset not in ALL_PRESETS:
        raise UsageError(
            f"augment: must be one of {', '.join(ALL_PRESETS)}, got {preset!r}")
    if preset == names.CROP:
        _assert_crop_size(crop_size, None, None)
    if not isinstance(color_jitter_strength, (int, float)) or color_jitter_strength < 0:
        raise UsageError("color_jitter_strength: must be a number >= 0, "
                         f"got {color_jitter_strength!r}")
    strength = float(color_jitter_strength)

    def augment(images: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
        images = tf.convert_to_tensor(images, tf.float32)
        _static_hwc(images)
        if preset == names.CROP:
            images = random_crop(images, seeds, crop_size)
        elif preset in ("random_crop", "crop_jitter"):
            images = random_resized_crop(images, seeds)
        if flip:
            images = random_flip(images, seeds)
        if preset in ("color_jitter", "crop_jitter"):
            images = color_jitter(images, seeds, strength)
        return images

    augment.__name__ = f"augment_{preset}"
    # autograph off: no tensor control flow here, and UsageError stays a UsageError.
    return tf.function(augment, jit_compile=True, autograph=False) if jit_compile else augment
