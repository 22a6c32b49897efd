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
- `random_resized_crop` is SimCLR data_util.py's `crop_and_resize`: the
  box is drawn as TF's `sample_distorted_bounding_box` kernel
  (`sample_distorted_bounding_box_op.cc`) draws it for SimCLR's arguments
  (object box = whole image, `min_object_covered` 0.1, aspect ratio range
  [3/4, 4/3] times the image's W/H, area range [0.08, 1], 100 attempts,
  whole image if every attempt fails), then the integer crop is resized back
  to H x W as `tf.image.resize(crop, (H, W), "bicubic")` and clipped to
  [0, 1]. The sampler is a vectorised re-implementation of the kernel with
  the kernel's own arithmetic (float32 `lrintf` rounding, its double-precision
  width correction, +1/-1 height fix-ups, integer offsets in [0, H - h) when
  h < H), all 100 attempts drawn at once from the module's hash, first
  success taken: the same distribution, not the same draws, as the kernel
  (the kernel's Philox stream is not reproduced). It is not
  `tf.image.stateless_sample_distorted_bounding_box` per item because that
  op takes one image at a time (a per-item loop, no batching) and has no XLA
  kernel. The bicubic resize is TF's `ResizeBicubic` (half-pixel centres,
  Keys cubic a = -0.5 read from its 1024-step coefficient table, taps outside
  the crop weighted 0 and the weights renormalised), implemented with gathers
  (separable, 4 taps per axis, rows then columns as TF), so it also compiles
  under XLA; the full-image box is the exact identity. The clip comes right
  after the resize (SimCLR clips at the end of `preprocess_for_train`, so
  with `crop_jitter` SimCLR's first jitter op sees the bicubic overshoot and
  here it sees the clipped crop).
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

import numpy as np
import tensorflow as tf

from simclr_controlled.errors import UsageError

# dsprites_mod experiment presets (SPEC §2) plus the hierarchy's `crop`.
PRESETS = ("none", "color_jitter", "random_crop", "crop_jitter")
ALL_PRESETS = PRESETS + ("crop",)

# SimCLR data_util.py `crop_and_resize` arguments of `sample_distorted_bounding_box`.
AREA_RANGE = (0.08, 1.0)
ASPECT_RANGE = (3.0 / 4.0, 4.0 / 3.0)  # times the image's W/H
MIN_OBJECT_COVERED = 0.1
CROP_ATTEMPTS = 100
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


def _crop_sampler_constants(height: int, width: int, area_range, aspect_range,
                            min_object_covered) -> dict:
    """The kernel's float32 constants for one image size (module docstring)."""
    f32 = np.float32
    # SimCLR: aspect_ratio_range=(3/4 * width / height, 4/3 * width / height),
    # passed to the kernel as float32 attributes.
    aspect_lo = f32(aspect_range[0] * (width / height))
    aspect_hi = f32(aspect_range[1] * (width / height))
    # Kernel: min_relative_crop_area * original_width * original_height, in float.
    min_area = f32(f32(f32(area_range[0]) * f32(width)) * f32(height))
    max_area = f32(f32(f32(area_range[1]) * f32(width)) * f32(height))
    # Overlap with the whole-image object box: float(area) / float(H * W) >=
    # min_object_covered in float32, as the smallest integer area passing it.
    areas = np.arange(height * width + 1)
    covered = (areas.astype(np.float32) / f32(height * width)) >= f32(min_object_covered)
    return {
        "aspect_lo": aspect_lo,
        "aspect_span": f32(aspect_hi - aspect_lo),
        "min_area": min_area,
        "max_area": max_area,
        "min_covered_pixels": float(max(int(np.argmax(covered)) if covered.any()
                                        else height * width + 1, 1)),
        # (original_width + 0.5 - kEps) in double, kEps = 1e-7 as a float.
        "width_limit": float(width) + 0.5 - float(f32(0.0000001)),
    }


def resized_crop_boxes(seeds: tf.Tensor, height: int, width: int, *,
                       area_range=AREA_RANGE, aspect_range=ASPECT_RANGE,
                       min_object_covered: float = MIN_OBJECT_COVERED,
                       max_attempts: int = CROP_ATTEMPTS) -> tf.Tensor:
    """[B, 4] int32 pixel boxes (offset_y, offset_x, crop_height, crop_width).

    The crop is rows [offset_y, offset_y + crop_height) and columns
    [offset_x, offset_x + crop_width), the arguments of
    `tf.image.crop_to_bounding_box` in SimCLR data_util.py
    `distorted_bounding_box_crop`. Drawn as TF's `sample_distorted_bounding_box`
    kernel draws it with SimCLR's arguments (whole image as object box; the
    aspect range is multiplied by width / height, as SimCLR does):
    per attempt, aspect a = width/height of the crop uniform in the range
    (float32); h_min = lrintf(sqrt(min_area / a)), h_max = lrintf(sqrt(max_area
    / a)), with h_max = int((W + 0.5 - 1e-7) / a) (minus 1 if still too wide)
    when lrintf(h_max a) > W, capped at H; crop height h uniform integer in
    [min(h_min, h_max), h_max]; width lrintf(h a); h + 1 if the area is below
    min_area, then h - 1 if above max_area; the attempt fails if the area is
    outside [min_area, max_area], the box is empty or larger than the image,
    or h w / (H W) < `min_object_covered` (float32). Offsets are uniform
    integers in [0, H - h) and [0, W - w) (0 when the crop spans the axis: the
    kernel's `Uniform(H - h)`, so a smaller crop never touches the bottom or
    right edge). All `max_attempts` attempts are drawn at once, each from its
    own 4 hash uniforms; the first that succeeds is used, else the whole image
    (0, 0, H, W). Integer draws are floor(u n) of 24-bit uniforms.
    """
    if not (isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0):
        raise UsageError(f"images: height and width must be known positive integers, "
                         f"got {height}x{width}")
    k = _crop_sampler_constants(height, width, area_range, aspect_range, min_object_covered)
    u = tf.reshape(_uniforms(seeds, _STREAM_RESIZED_CROP, 4 * max_attempts),
                   [-1, max_attempts, 4])
    aspect = u[..., 0] * k["aspect_span"] + k["aspect_lo"]
    h_min = tf.round(tf.sqrt(k["min_area"] / aspect))  # lrintf: ties to even, as tf.round
    h_max = tf.round(tf.sqrt(k["max_area"] / aspect))
    # Kernel fix for round(h_max * a) > W, in its double arithmetic.
    h_fit = tf.cast(tf.floor(k["width_limit"] / tf.cast(aspect, tf.float64)), tf.float32)
    h_fit = tf.where(tf.round(h_fit * aspect) > width, h_fit - 1.0, h_fit)
    h_max = tf.where(tf.round(h_max * aspect) > width, h_fit, h_max)
    h_max = tf.minimum(h_max, float(height))
    h_lo = tf.minimum(h_min, h_max)
    n = h_max - h_lo + 1.0
    h = h_lo + tf.minimum(tf.floor(u[..., 1] * n), n - 1.0)
    w = tf.round(h * aspect)
    # The kernel's +1 / -1 fix-ups (sequential: the second sees the first).
    h = tf.where(w * h < k["min_area"], h + 1.0, h)
    w = tf.round(h * aspect)
    h = tf.where(w * h > k["max_area"], h - 1.0, h)
    w = tf.round(h * aspect)
    area = w * h  # small integers: exact in float32
    ok = ((area >= k["min_area"]) & (area <= k["max_area"]) & (w <= width) & (h <= height)
          & (w > 0) & (h > 0) & (area >= k["min_covered_pixels"]))
    span_y = tf.maximum(height - h, 1.0)
    span_x = tf.maximum(width - w, 1.0)
    y = tf.minimum(tf.floor(u[..., 2] * span_y), span_y - 1.0)
    x = tf.minimum(tf.floor(u[..., 3] * span_x), span_x - 1.0)

    first = tf.argmax(tf.cast(ok, tf.int32), axis=1, output_type=tf.int32)
    found = tf.reduce_any(ok, axis=1)

    def pick(v, fallback):
        return tf.where(found, tf.gather(v, first, axis=1, batch_dims=1), fallback)

    boxes = tf.stack([pick(y, 0.0), pick(x, 0.0), pick(h, float(height)),
                      pick(w, float(width))], axis=1)
    return tf.cast(boxes, tf.int32)


def _keys_cubic_table(size: int = 1024, a: float = -0.5) -> np.ndarray:
    """[size + 1, 2] float32: TF `ResizeBicubic`'s coefficient table (Keys cubic).

    Row i, x = i / size: column 0 the weight at distance x, column 1 at
    distance x + 1, computed in double and stored as float as TF does.
    """
    table = np.zeros((size + 1, 2), np.float32)
    for i in range(size + 1):
        x = float(np.float32(i * 1.0 / size))
        table[i, 0] = ((a + 2) * x - (a + 3)) * x * x + 1
        x = float(np.float32(x + 1.0))
        table[i, 1] = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return table


_CUBIC_TABLE_SIZE = 1024
_CUBIC_TABLE = _keys_cubic_table(_CUBIC_TABLE_SIZE)


def _bicubic_axis(images: tf.Tensor, start: tf.Tensor, length: tf.Tensor, size: int,
                  axis: int) -> tf.Tensor:
    """Resize pixels [start, start + length) of `axis` (1 or 2) to `size`, per item.

    TF `ResizeBicubic` with half-pixel centres along one axis: source
    position (o + 0.5) * (length / size) - 0.5 (float32), taps floor(pos) - 1
    .. floor(pos) + 2 weighted by the coefficient table at
    lrintf(frac(pos) * 1024); taps outside the crop get weight 0 (index
    clamped) and the 4 weights are renormalised to sum 1.
    """
    length_f = tf.cast(length, tf.float32)
    scale = length_f / float(size)
    pos = (tf.range(size, dtype=tf.float32)[None, :] + 0.5) * scale[:, None] - 0.5
    base = tf.floor(pos)
    offset = tf.cast(tf.round((pos - base) * float(_CUBIC_TABLE_SIZE)), tf.int32)
    base = tf.cast(base, tf.int32)
    near, far = tf.constant(_CUBIC_TABLE[:, 0]), tf.constant(_CUBIC_TABLE[:, 1])
    back = _CUBIC_TABLE_SIZE - offset
    weights = [tf.gather(far, offset), tf.gather(near, offset),
               tf.gather(near, back), tf.gather(far, back)]
    last = length[:, None] - 1
    taps = []
    for j in range(4):
        tap = base + (j - 1)
        inside = (tap >= 0) & (tap <= last)
        weights[j] = tf.where(inside, weights[j], 0.0)
        taps.append(start[:, None] + tf.clip_by_value(tap, 0, last))
    total = weights[0] + weights[1] + weights[2] + weights[3]
    inv = tf.where(tf.abs(total) >= 1000.0 * float(np.finfo(np.float32).tiny),
                   1.0 / total, 1.0)
    shape = [-1, size, 1, 1] if axis == 1 else [-1, 1, size, 1]
    out = None
    for j in range(4):
        term = tf.gather(images, taps[j], axis=axis, batch_dims=1) \
            * tf.reshape(weights[j] * inv, shape)
        out = term if out is None else out + term
    return out


def resized_crop(images: tf.Tensor, boxes: tf.Tensor) -> tf.Tensor:
    """Crop each item to its integer box and resize it back to H x W, bicubic.

    `boxes` [B, 4] integer (offset_y, offset_x, crop_height, crop_width), as
    `resized_crop_boxes` returns; each box must lie inside the image with a
    positive size. Item b equals `tf.clip_by_value(tf.image.resize(
    images[b, y:y + h, x:x + w], (H, W), "bicubic"), 0, 1)` (SimCLR
    data_util.py `crop_and_resize`, then the clip); the box (0, 0, H, W) is
    the exact identity for images in [0, 1].
    """
    height, width, channels = _static_hwc(images)
    boxes = tf.cast(boxes, tf.int32)
    out = _bicubic_axis(images, boxes[:, 0], boxes[:, 2], height, 1)
    out = _bicubic_axis(out, boxes[:, 1], boxes[:, 3], width, 2)
    out = tf.clip_by_value(out, 0.0, 1.0)
    # Product with the identity over channels: exact for values in [0, 1]
    # (x * 1 plus zeros), and XLA does not fuse a dot into its consumers, so
    # under XLA the resized crop is computed once instead of being recomputed
    # (all 8 gathers) inside every fusion of the colour jitter that reads it.
    eye = tf.eye(channels if channels is not None else tf.shape(out)[3], dtype=out.dtype)
    return tf.einsum("bhwc,cd->bhwd", out, eye)


def random_resized_crop(images: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
    """SimCLR data_util.py `crop_and_resize` (SPEC §2 `random_resized_crop`), batched."""
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
