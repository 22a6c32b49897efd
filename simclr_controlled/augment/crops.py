"""Crops: `crop` without resizing, its centre crop, and SimCLR's random
resized crop (docs/DESIGN.md §2.1, §2.2; SimCLR `data_util.py`).

Decisions where SimCLR's TF ops leave room (docs/DESIGN.md §2.2):
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
  h < H), all 100 attempts drawn at once from the package's hash, first
  success taken: the same distribution, not the same draws, as the kernel
  (the kernel's Philox stream is not reproduced). It is not
  `tf.image.stateless_sample_distorted_bounding_box` per item because that
  op takes one image at a time (a per-item loop, no batching) and has no XLA
  kernel.
- The bicubic resize is TF's `ResizeBicubic` (half-pixel centres, Keys cubic
  a = -0.5 read from its 1024-step coefficient table, taps outside the crop
  weighted 0 and the weights renormalised), implemented with gathers
  (separable, 4 taps per axis, rows then columns as TF), so it also compiles
  under XLA; the full-image box is the exact identity. The clip comes right
  after the resize (SimCLR clips at the end of `preprocess_for_train`, so
  with `crop_jitter` SimCLR's first jitter op sees the bicubic overshoot and
  here it sees the clipped crop).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from simclr_controlled.augment.seeds import (_STREAM_CROP,
                                             _STREAM_RESIZED_CROP, _uniforms)
from simclr_controlled.errors import UsageError

# SimCLR data_util.py `crop_and_resize` arguments of `sample_distorted_bounding_box`.
AREA_RANGE = (0.08, 1.0)
ASPECT_RANGE = (3.0 / 4.0, 4.0 / 3.0)  # times the image's W/H
MIN_OBJECT_COVERED = 0.1
CROP_ATTEMPTS = 100


def _static_hwc(images: tf.Tensor) -> tuple:
    shape = images.shape
    if shape.rank != 4:
        raise UsageError(f"images: expected a batch [B, H, W, C], got shape {shape}")
    return shape[1], shape[2], shape[3]


def _assert_crop_size(crop_size, height, width) -> None:
    assert isinstance(crop_size, int) and crop_size > 0, \
        f"crop_size: must be a positive integer, got {crop_size!r}"
    assert (height is None or crop_size <= height) and (width is None or crop_size <= width), \
        f"crop_size: must be at most the image size {height}x{width}, got {crop_size}"


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
    """`crop` (docs/DESIGN.md §2.1): crop_size window without resizing, uniform offset."""
    height, width, _ = _static_hwc(images)
    _assert_crop_size(crop_size, height, width)
    return _crop_at(images, crop_offsets(seeds, height, width, crop_size), crop_size)


def center_crop(images: tf.Tensor, crop_size: int) -> tf.Tensor:
    """Evaluation input (docs/DESIGN.md §1.1): the centred crop_size window,
    offset (H - c) // 2."""
    height, width, _ = _static_hwc(images)
    _assert_crop_size(crop_size, height, width)
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
    """SimCLR data_util.py `crop_and_resize` (docs/DESIGN.md §2.2), batched."""
    height, width, _ = _static_hwc(images)
    return resized_crop(images, resized_crop_boxes(seeds, height, width))
