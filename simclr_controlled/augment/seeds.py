"""Per-item seeds and random streams of the augmentations (docs/DESIGN.md §2).

Randomness is a counter-based hash of the item seed (integer/bitwise TF ops,
vectorised over the batch), so view v of item i at epoch e is a pure
function of (seed, e, i, v): it does not depend on the batch it sits in or
the batch size (bit for bit without XLA; under XLA to float rounding), and a
resumed run sees exactly the views an uninterrupted one saw. No
`tf.image.random_*`, no stateful RNG, no `tf.map_fn`.

- `view_seeds`: per-item seeds [B, 2] of one view at one epoch;
- `_uniforms`: [B, n] uniforms in [0, 1) of one stream of those seeds;
- `_STREAM_*`: the stream words (one per random quantity).
"""
from __future__ import annotations

import tensorflow as tf

# Distinct stream words keep every random quantity independent of the others
# (adding a quantity never changes the values of another).
_STREAM_CROP = 1
_STREAM_RESIZED_CROP = 2
_STREAM_FLIP = 3
_STREAM_JITTER = 4

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
