"""LeNet-style backbone of the hierarchy experiments (paper App. A.1, DESIGN §3.1).

conv 6@5x5 (valid, stride 1) + ReLU, max-pool 2x2 stride 1, conv 16@5x5 +
ReLU, max-pool 2x2 stride 1, flatten. On 28x28 inputs the flattened output
(`head_input`) is 18*18*16 = 5184. NHWC float32 throughout, the layout TF's
CPU (oneDNN) convolutions are fastest in.
"""
from __future__ import annotations

import keras

from simclr_controlled.models.head import SeededInit

CONV_FILTERS = (6, 16)
KERNEL = 5
POOL = 2


def scaled(width: int, multiplier: float) -> int:
    """`width * multiplier` rounded half up, at least 1."""
    return max(1, int(width * multiplier + 0.5))


def output_hw(height: int, width: int) -> tuple[int, int]:
    """Spatial size after the backbone (each valid conv loses 4, each pool 1)."""
    shrink = len(CONV_FILTERS) * (KERNEL - 1 + POOL - 1)
    return height - shrink, width - shrink


def lenet_backbone(images, *, width_multiplier: float, init: SeededInit, dtype_policy):
    """Backbone output (flattened) for a symbolic NHWC input."""
    x = images
    for i, filters in enumerate(CONV_FILTERS, start=1):
        x = keras.layers.Conv2D(scaled(filters, width_multiplier), KERNEL, strides=1,
                                padding="valid", activation="relu",
                                kernel_initializer=init.kernel(), dtype=dtype_policy,
                                name=f"conv{i}")(x)
        x = keras.layers.MaxPooling2D(POOL, strides=1, padding="valid",
                                      dtype=dtype_policy, name=f"pool{i}")(x)
    return keras.layers.Flatten(dtype=dtype_policy, name="flatten")(x)


def lenet_flops(input_shape: tuple[int, int, int], width_multiplier: float) -> tuple[int, int]:
    """(forward FLOPs = 2 x multiply-adds of the convs, flattened width)."""
    h, w, c = input_shape
    flops = 0
    for filters in CONV_FILTERS:
        f = scaled(filters, width_multiplier)
        h, w = h - KERNEL + 1, w - KERNEL + 1
        flops += 2 * h * w * f * KERNEL * KERNEL * c
        h, w, c = h - POOL + 1, w - POOL + 1, f
    return flops, h * w * c
