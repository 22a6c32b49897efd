"""Colour distortion: SimCLR v2's colour jitter and colour drop
(docs/DESIGN.md §2.3; SimCLR `data_util.py`), batched.

Decisions where SimCLR leaves room (docs/DESIGN.md §2.3):
- `color_jitter` follows SimCLR v2: with probability 0.8, brightness
  (multiplicative factor in [max(0, 1 - 0.8s), 1 + 0.8s]), contrast (factor
  in [1 - 0.8s, 1 + 0.8s] around the per-image, per-channel mean, as
  `tf.image.adjust_contrast`), saturation (factor in [1 - 0.8s, 1 + 0.8s],
  as `tf.image.adjust_saturation`) and hue (delta in [-0.2s, 0.2s], as
  `tf.image.adjust_hue`) in a per-item random order, each followed by a clip
  to [0, 1]; then, independently, grayscale with probability 0.2 (ITU-R 601
  weights of `tf.image.rgb_to_grayscale`, kept 3 channels).
- Black pixels: brightness, saturation, hue and grayscale map a black pixel
  to black, and contrast does too when its factor is >= 1 (the clip removes
  the negative value). Contrast with a factor < 1 (SimCLR semantics, kept
  here) lifts every black pixel to mean * (1 - factor): the background of a
  sprite image stays uniform but is no longer exactly black.
"""
from __future__ import annotations

import tensorflow as tf

from simclr_controlled.augment.crops import _static_hwc
from simclr_controlled.augment.seeds import _STREAM_JITTER, _uniforms
from simclr_controlled.errors import UsageError

JITTER_PROB = 0.8
GRAY_PROB = 0.2

# Colour-jitter op codes, in SimCLR's `apply_transform` numbering.
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0, 1, 2, 3


def color_jitter_params(seeds: tf.Tensor, strength: float = 0.5) -> dict:
    """Per-item colour-jitter draws (SimCLR v2 `random_color_jitter`).

    Returns dict of [B] tensors `apply`, `gray` (bool), `brightness`,
    `contrast`, `saturation`, `hue` (float32) and `order` [B, 4] int32 (the
    op code applied at each position: BRIGHTNESS, CONTRAST, SATURATION, HUE).
    """
    u = _uniforms(seeds, _STREAM_JITTER, 10)
    b, c, s, h = 0.8 * strength, 0.8 * strength, 0.8 * strength, 0.2 * strength

    def between(x, lo, hi):
        return lo + (hi - lo) * x

    return {
        "apply": u[:, 0] < JITTER_PROB,
        "gray": u[:, 1] < GRAY_PROB,
        "brightness": between(u[:, 2], max(1.0 - b, 0.0), 1.0 + b),
        "contrast": between(u[:, 3], 1.0 - c, 1.0 + c),
        "saturation": between(u[:, 4], 1.0 - s, 1.0 + s),
        "hue": between(u[:, 5], -h, h),
        # Sorting 4 uniforms gives a uniformly random permutation per item.
        "order": tf.argsort(u[:, 6:10], axis=1, stable=True),
    }


def to_grayscale(images: tf.Tensor) -> tf.Tensor:
    """SimCLR `to_grayscale(keep_channels=True)`: luma tiled to 3 channels."""
    return tf.tile(tf.image.rgb_to_grayscale(images), [1, 1, 1, 3])


def _rgb_to_hsv(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(hue, saturation, value) [B, H, W] of RGB images: `tf.image.rgb_to_hsv`.

    TF's CPU kernel formulas (equal to it bit for bit), except that the hue's
    sector (which channel is the maximum, red before green before blue) is
    found by comparing the channels with each other, not each channel with the
    computed maximum. Under XLA an elementwise producer of `images` may be
    fused into several consumers and evaluated with different rounding in each
    (e.g. a multiply-add contracted in one), so TF's `channel == max` test can
    match no channel and pick a wrong sector; comparing channels always picks
    a channel that is a maximum up to that rounding, and the hue is continuous
    across sectors.
    """
    r, g, b = images[..., 0:1], images[..., 1:2], images[..., 2:3]
    value = tf.maximum(tf.maximum(r, g), b)
    spread = value - tf.minimum(tf.minimum(r, g), b)
    zeros = tf.zeros_like(value)
    sat = tf.where(value > 0.0, spread / value, zeros)
    norm = (1.0 / spread) * (1.0 / 6.0)
    hue = tf.where(g >= b, norm * (b - r) + 2.0 / 6.0, norm * (r - g) + 4.0 / 6.0)
    hue = tf.where((r >= g) & (r >= b), norm * (g - b), hue)
    hue = tf.where(spread > 0.0, hue, zeros)
    hue = tf.where(hue < 0.0, hue + 1.0, hue)
    return hue[..., 0], sat[..., 0], value[..., 0]


def apply_color_jitter(images: tf.Tensor, params: dict) -> tf.Tensor:
    """Apply `color_jitter_params` draws to RGB images [B, H, W, 3].

    Each of the 4 positions computes, for the whole batch, one affine map
    (brightness or contrast) and one HSV round trip (saturation or hue; RGB to
    HSV by `_rgb_to_hsv`, back by `tf.image.hsv_to_rgb`), and selects per
    item: 2 candidate ops instead of 4 per position.
    """
    _, _, channels = _static_hwc(images)
    if channels != 3:
        raise UsageError(f"augment: colour jitter needs RGB images (3 channels), got {channels}")

    def item(x):
        return x[:, None, None, None]

    x = images
    for k in range(4):
        op = params["order"][:, k]
        # Brightness (b x) and contrast (c x + (1 - c) mean) as one affine map.
        is_b, is_c = item(op == BRIGHTNESS), item(op == CONTRAST)
        scale = tf.where(is_b, item(params["brightness"]),
                         tf.where(is_c, item(params["contrast"]), 1.0))
        mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
        shift = tf.where(is_c, (1.0 - item(params["contrast"])) * mean, 0.0)
        affine = x * scale + shift
        hue, sat, val = _rgb_to_hsv(x)
        is_sat = (op == SATURATION)[:, None, None]
        is_hue = (op == HUE)[:, None, None]
        sat = tf.where(is_sat, tf.clip_by_value(sat * params["saturation"][:, None, None],
                                                0.0, 1.0), sat)
        hue = tf.where(is_hue, tf.math.floormod(hue + params["hue"][:, None, None], 1.0), hue)
        hsv = tf.image.hsv_to_rgb(tf.stack([hue, sat, val], axis=3))
        x = tf.clip_by_value(tf.where(is_b | is_c, affine, hsv), 0.0, 1.0)
    x = tf.where(item(params["apply"]), x, images)
    return tf.where(item(params["gray"]), to_grayscale(x), x)


def color_jitter(images: tf.Tensor, seeds: tf.Tensor, strength: float = 0.5) -> tf.Tensor:
    """SimCLR colour distortion (p 0.8) then colour drop (p 0.2), batched."""
    return apply_color_jitter(images, color_jitter_params(seeds, strength))
