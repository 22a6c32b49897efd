"""Batched, stateless SimCLR augmentations (SPEC §2; SimCLR `data_util.py`).

Every op works on a whole batch `images [B, H, W, C]` (float32 in [0, 1])
with per-item seeds `seeds [B, 2]`, inside `tf.data` maps (after batching),
`tf.function` and XLA (`jit_compile=True`). Randomness is a counter-based
hash of the item seed (integer/bitwise TF ops, vectorised over the batch), so
view v of item i at epoch e is a pure function of (seed, e, i, v): it does
not depend on the batch it sits in or the batch size (bit for bit without
XLA; under XLA to float rounding). No `tf.image.random_*`, no stateful RNG,
no `tf.map_fn`.

Decisions where SPEC §2 / SimCLR leave room (all documented here):
- `random_resized_crop` samples the area fraction uniformly in [0.08, 1] and
  the aspect ratio (crop width / crop height in pixels, times the image's own
  W/H as SimCLR does) uniformly in [3/4, 4/3] (TF's
  `sample_distorted_bounding_box`, used by SimCLR, also draws the aspect
  uniformly). The window is continuous (not snapped to whole pixels) with a
  uniform offset. `CROP_ATTEMPTS` = 10 candidates are drawn per item and the
  first that fits is used, else the whole image (SimCLR: 100 sequential
  attempts; on a square image one candidate fails with probability about
  0.13, so 10 all fail with probability about 1e-9). Unlike SimCLR's sampler
  there is no extra `min_object_covered=0.1` rejection.
- The window is resized back to the input size with BILINEAR interpolation
  (SimCLR: bicubic) with half-pixel centres, sample positions clamped to the
  window's pixel centres: for a whole-pixel window this equals
  `tf.image.resize(crop, (H, W), "bilinear")` of the cropped image, and the
  full-image window is the exact identity. Implemented with gathers (separable
  linear interpolation), so it also compiles under XLA.
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
- `flip` (off by default, it changes x-position): left-right with probability
  0.5, after the crop and before the colour jitter (SimCLR order), for every
  preset when `flip=True` (so `none` + flip is flip only).
- `crop_size` is only read by the `crop` preset; other presets ignore it.
"""
from __future__ import annotations

from typing import Callable

import tensorflow as tf

from simclr_controlled.errors import UsageError

# dsprites_mod experiment presets (SPEC §2) plus the hierarchy's `crop`.
PRESETS = ("none", "color_jitter", "random_crop", "crop_jitter")
ALL_PRESETS = PRESETS + ("crop",)

AREA_RANGE = (0.08, 1.0)
ASPECT_RANGE = (3.0 / 4.0, 4.0 / 3.0)
CROP_ATTEMPTS = 10
JITTER_PROB = 0.8
GRAY_PROB = 0.2
FLIP_PROB = 0.5

# Distinct stream words keep every random quantity independent of the others
# (adding a quantity never changes the values of another).
_STREAM_CROP = 1
_STREAM_RESIZED_CROP = 2
_STREAM_FLIP = 3
_STREAM_JITTER = 4

# Colour-jitter op codes, in SimCLR's `apply_transform` numbering.
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0, 1, 2, 3


# --------------------------------------------------------------------------
# Counter-based hashing (stateless, vectorised).

def _u32(x) -> tf.Tensor:
    return tf.constant(x & 0xFFFFFFFF, tf.uint32)


def _mix(x: tf.Tensor) -> tf.Tensor:
    """Bijective 32-bit finaliser ("lowbias32", C. Wellons) on uint32."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, _u32(16)))
    x = x * _u32(0x7FEB352D)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, _u32(15)))
    x = x * _u32(0x846CA68B)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, _u32(16)))


def _hash(*words: tf.Tensor) -> tf.Tensor:
    """Order-sensitive hash of broadcastable uint32 tensors."""
    h = _u32(0x243F6A88)
    for w in words:
        h = _mix(tf.bitwise.bitwise_xor(h, _mix(w + _u32(0x9E3779B9))))
    return h


def _words64(x) -> tuple[tf.Tensor, tf.Tensor]:
    """Low and high uint32 words of an integer (Python int or tensor)."""
    if isinstance(x, int):
        x &= 0xFFFFFFFFFFFFFFFF
        return _u32(x), _u32(x >> 32)
    x = tf.cast(x, tf.int64)
    lo = tf.cast(tf.bitwise.bitwise_and(x, 0xFFFFFFFF), tf.uint32)
    hi = tf.cast(tf.bitwise.bitwise_and(tf.bitwise.right_shift(x, 32), 0xFFFFFFFF), tf.uint32)
    return lo, hi


def view_seeds(seed: int, epoch, indices, view: int) -> tf.Tensor:
    """Per-item seeds [B, 2] int32 for view `view` of items `indices` at `epoch`.

    A pure function of (seed, epoch, index, view) per row; `epoch` and
    `indices` may be Python ints or tensors (int32/int64).
    """
    s_lo, s_hi = _words64(int(seed))
    e_lo, e_hi = _words64(epoch if isinstance(epoch, int) else tf.convert_to_tensor(epoch))
    i_lo, i_hi = _words64(tf.reshape(tf.convert_to_tensor(indices), [-1]))
    v_lo, v_hi = _words64(int(view))
    words = (s_lo, s_hi, e_lo, e_hi, v_lo, v_hi, i_lo, i_hi)
    out = tf.stack([_hash(*words, _u32(0)), _hash(*words, _u32(1))], axis=1)
    return tf.bitcast(out, tf.int32)


def _seed_words(seeds: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    seeds = tf.convert_to_tensor(seeds)
    if seeds.dtype == tf.int32:
        seeds = tf.bitcast(seeds, tf.uint32)
    elif seeds.dtype != tf.uint32:
        seeds = tf.cast(tf.bitwise.bitwise_and(tf.cast(seeds, tf.int64), 0xFFFFFFFF), tf.uint32)
    return seeds[:, 0], seeds[:, 1]


def _uniforms(seeds: tf.Tensor, stream: int, n: int) -> tf.Tensor:
    """[B, n] float32 uniforms in [0, 1) (24-bit resolution) for one stream."""
    s0, s1 = _seed_words(seeds)
    # A constant: Range has no uint32 kernel on CPU/GPU.
    counter = tf.constant([list(range(n))], tf.uint32)
    h = _hash(s0[:, None], s1[:, None], _u32(stream), counter)
    return tf.cast(tf.bitwise.right_shift(h, _u32(8)), tf.float32) * (1.0 / (1 << 24))


# --------------------------------------------------------------------------
# Geometry.

def _static_hwc(images: tf.Tensor) -> tuple:
    shape = images.shape
    if shape.rank != 4:
        raise UsageError(f"images: expected a batch [B, H, W, C], got shape {shape}")
    return shape[1], shape[2], shape[3]


def _check_crop_size(crop_size, height, width) -> int:
    if crop_size is None or isinstance(crop_size, bool) or not isinstance(crop_size, int) \
            or crop_size <= 0:
        raise UsageError(f"crop_size: must be a positive integer, got {crop_size!r}")
    if (height is not None and crop_size > height) or (width is not None and crop_size > width):
        raise UsageError(
            f"crop_size: must be at most the image size {height}x{width}, got {crop_size}")
    return crop_size


def crop_offsets(seeds: tf.Tensor, height: int, width: int, crop_size: int) -> tf.Tensor:
    """[B, 2] int32 (y, x) top-left corners of the `crop` windows, uniform."""
    u = _uniforms(seeds, _STREAM_CROP, 2)
    n = tf.constant([height - crop_size + 1, width - crop_size + 1], tf.float32)
    return tf.minimum(tf.cast(tf.floor(u * n), tf.int32), tf.cast(n, tf.int32) - 1)


def _crop_at(images: tf.Tensor, offsets: tf.Tensor, crop_size: int) -> tf.Tensor:
    """Exact pixel copy of one crop_size window per item (same for all channels)."""
    steps = tf.range(crop_size, dtype=tf.int32)[None, :]
    rows = offsets[:, 0:1] + steps
    cols = offsets[:, 1:2] + steps
    out = tf.gather(images, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


def random_crop(images: tf.Tensor, seeds: tf.Tensor, crop_size: int) -> tf.Tensor:
    """SPEC §1.1 training crop: crop_size window without resizing, uniform offset."""
    height, width, _ = _static_hwc(images)
    _check_crop_size(crop_size, height, width)
    return _crop_at(images, crop_offsets(seeds, height, width, crop_size), crop_size)


def center_crop(images: tf.Tensor, crop_size: int) -> tf.Tensor:
    """SPEC §1.1 evaluation input: the centred crop_size window (offset (H - c) // 2)."""
    height, width, _ = _static_hwc(images)
    _check_crop_size(crop_size, height, width)
    y, x = (height - crop_size) // 2, (width - crop_size) // 2
    return images[:, y:y + crop_size, x:x + crop_size, :]


def resized_crop_boxes(seeds: tf.Tensor, height: int, width: int, *,
                       area_range=AREA_RANGE, aspect_range=ASPECT_RANGE,
                       max_attempts: int = CROP_ATTEMPTS) -> tf.Tensor:
    """[B, 4] float32 boxes (y1, x1, y2, x2), normalised to [0, 1] image edges.

    SimCLR's distorted bounding box (see module docstring): area fraction
    uniform in `area_range`, aspect (width/height in pixels, relative to the
    image's W/H) uniform in `aspect_range`, first of `max_attempts`
    candidates that fits, else the whole image; offset uniform.
    """
    u = tf.reshape(_uniforms(seeds, _STREAM_RESIZED_CROP, 4 * max_attempts),
                   [-1, max_attempts, 4])
    area = area_range[0] + (area_range[1] - area_range[0]) * u[..., 0]
    aspect = (aspect_range[0] + (aspect_range[1] - aspect_range[0]) * u[..., 1]) \
        * (width / height)
    pixels = area * float(height * width)
    crop_h = tf.sqrt(pixels / aspect)
    crop_w = tf.sqrt(pixels * aspect)
    fits = (crop_h <= height) & (crop_w <= width)
    first = tf.argmax(tf.cast(fits, tf.int32), axis=1, output_type=tf.int32)
    found = tf.reduce_any(fits, axis=1)

    def pick(x):
        return tf.gather(x, first, axis=1, batch_dims=1)

    crop_h = tf.where(found, pick(crop_h), float(height))
    crop_w = tf.where(found, pick(crop_w), float(width))
    y0 = pick(u[..., 2]) * (height - crop_h)
    x0 = pick(u[..., 3]) * (width - crop_w)
    return tf.stack([y0 / height, x0 / width, (y0 + crop_h) / height,
                     (x0 + crop_w) / width], axis=1)


def _resample_axis(images: tf.Tensor, start: tf.Tensor, stop: tf.Tensor, size: int,
                   axis: int) -> tf.Tensor:
    """Linear resampling of [start, stop) (pixel-edge units) to `size` samples."""
    n = tf.shape(images)[axis]
    length = stop - start
    # Half-pixel centres, as tf.image.resize, in pixel-index coordinates.
    pos = start[:, None] + (tf.range(size, dtype=tf.float32)[None, :] + 0.5) \
        * (length[:, None] / size) - 0.5
    # Clamp to the window's own pixel centres (crop-then-resize semantics).
    lo = tf.maximum(start, 0.0)[:, None]
    hi = tf.maximum(tf.minimum(stop - 1.0, tf.cast(n - 1, tf.float32)), 0.0)[:, None]
    pos = tf.clip_by_value(pos, lo, tf.maximum(lo, hi))
    i0f = tf.floor(pos)
    t = pos - i0f
    i0 = tf.cast(i0f, tf.int32)
    i1 = tf.minimum(i0 + 1, n - 1)
    a = tf.gather(images, i0, axis=axis, batch_dims=1)
    b = tf.gather(images, i1, axis=axis, batch_dims=1)
    t = tf.reshape(t, [-1, size, 1, 1] if axis == 1 else [-1, 1, size, 1])
    return a + (b - a) * t


def resized_crop(images: tf.Tensor, boxes: tf.Tensor) -> tf.Tensor:
    """Crop each item to its box (normalised y1, x1, y2, x2) and resize it
    back to the input size, bilinear with half-pixel centres (module doc)."""
    height, width, _ = _static_hwc(images)
    boxes = tf.cast(boxes, tf.float32)
    out = _resample_axis(images, boxes[:, 0] * height, boxes[:, 2] * height, height, 1)
    return _resample_axis(out, boxes[:, 1] * width, boxes[:, 3] * width, width, 2)


def random_resized_crop(images: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
    """SimCLR `crop_and_resize` (SPEC §2 `random_resized_crop`), batched."""
    height, width, _ = _static_hwc(images)
    return resized_crop(images, resized_crop_boxes(seeds, height, width))


def random_flip(images: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
    """Left-right flip with probability 0.5 per item."""
    flip = _uniforms(seeds, _STREAM_FLIP, 1)[:, 0] < FLIP_PROB
    return tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)


# --------------------------------------------------------------------------
# Colour distortion.

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


def apply_color_jitter(images: tf.Tensor, params: dict) -> tf.Tensor:
    """Apply `color_jitter_params` draws to RGB images [B, H, W, 3].

    Each of the 4 positions computes, for the whole batch, one affine map
    (brightness or contrast) and one HSV round trip (saturation or hue), and
    selects per item: 2 candidate ops instead of 4 per position.
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
        hue, sat, val = tf.unstack(tf.image.rgb_to_hsv(x), axis=3)
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


# --------------------------------------------------------------------------
# Presets.

def make_augment(preset: str, *, crop_size: int | None = None,
                 color_jitter_strength: float = 0.5,
                 flip: bool = False,
                 jit_compile: bool = False) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """fn(images [B, H, W, C] float32 in [0, 1], seeds [B, 2]) -> views (SPEC §2).

    `none`: identity; `crop`: `random_crop` without resizing (needs
    `crop_size`; output [B, crop, crop, C]); `random_crop`: random resized
    crop; `color_jitter`: colour jitter; `crop_jitter`: random resized crop
    then colour jitter (SimCLR order). `flip=True` adds a left-right flip
    after the crop. `jit_compile=True` returns the function wrapped in
    `tf.function(jit_compile=True)`: about 10x faster inside a `tf.data` map
    on CPU, and a view then matches its eager value to float rounding only
    (XLA may specialise a batch of one), not bit for bit.
    """
    if preset not in ALL_PRESETS:
        raise UsageError(
            f"augment: must be one of {', '.join(ALL_PRESETS)}, got {preset!r}")
    if preset == "crop":
        _check_crop_size(crop_size, None, None)
    if not isinstance(color_jitter_strength, (int, float)) or color_jitter_strength < 0:
        raise UsageError("color_jitter_strength: must be a number >= 0, "
                         f"got {color_jitter_strength!r}")
    strength = float(color_jitter_strength)

    def augment(images: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
        images = tf.convert_to_tensor(images, tf.float32)
        _static_hwc(images)
        if preset == "crop":
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
