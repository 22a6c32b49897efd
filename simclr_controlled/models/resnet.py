"""ResNet-18 v1 backbone of the dSprites experiments (paper App. A.2, DESIGN §3.1).

Modified as in the paper (after the Flax ImageNet `resnet_v1` example it
cites): the first convolution is 3x3 stride 1 and there is no max-pool. Then
4 stages of 2 basic blocks (widths 64, 128, 256, 512 times the width
multiplier, stride 2 at the first block of stages 2-4, a 1x1 conv + BN
projection shortcut where the shape changes), global average pooling.

Batch norm (decisions, following Flax resnet_v1 and SimCLR's TF code):
- momentum 0.9 (SimCLR's batch-norm decay; Flax's default), epsilon 1e-5;
- synchronized across replicas (`synchronized=True`): statistics are those of
  the global batch under tf.distribute, as in SimCLR's cross-replica BN;
- the last BN of every residual branch starts with gamma = 0, so each block
  starts as the identity (Flax resnet_v1 and SimCLR both do this).
Convolutions have no bias (BN follows each). "same" padding, TF/Flax style.

`stem="imagenet"` (not the paper's; for CPU presets) restores the standard
ImageNet stem: a 7x7 stride-2 convolution and a 3x3 stride-2 max-pool, which
divides the backbone's FLOPs by about 16 at the same widths.
"""
from __future__ import annotations

import math

import keras

from simclr_controlled.models.head import SeededInit
from simclr_controlled.models.lenet import scaled
from simclr_controlled.names import RESNET_STEMS

STEMS = RESNET_STEMS
STAGE_WIDTHS = (64, 128, 256, 512)
BLOCKS_PER_STAGE = (2, 2, 2, 2)
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def _conv(x, filters, kernel, strides, name, init, dtype_policy):
    return keras.layers.Conv2D(filters, kernel, strides=strides, padding="same",
                               use_bias=False, kernel_initializer=init.kernel(),
                               dtype=dtype_policy, name=name)(x)


def _bn(x, name, dtype_policy, zero_gamma=False):
    return keras.layers.BatchNormalization(
        momentum=BN_MOMENTUM, epsilon=BN_EPSILON, synchronized=True,
        gamma_initializer="zeros" if zero_gamma else "ones",
        dtype=dtype_policy, name=name)(x)


def _relu(x, name, dtype_policy):
    return keras.layers.ReLU(dtype=dtype_policy, name=name)(x)


def _basic_block(x, filters, strides, name, init, dtype_policy):
    shortcut = x
    y = _conv(x, filters, 3, strides, f"{name}_conv1", init, dtype_policy)
    y = _relu(_bn(y, f"{name}_bn1", dtype_policy), f"{name}_relu1", dtype_policy)
    y = _conv(y, filters, 3, 1, f"{name}_conv2", init, dtype_policy)
    y = _bn(y, f"{name}_bn2", dtype_policy, zero_gamma=True)
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv(x, filters, 1, strides, f"{name}_proj_conv", init, dtype_policy)
        shortcut = _bn(shortcut, f"{name}_proj_bn", dtype_policy)
    y = keras.layers.Add(dtype=dtype_policy, name=f"{name}_add")([shortcut, y])
    return _relu(y, f"{name}_relu2", dtype_policy)


def resnet18_backbone(images, *, width_multiplier: float, init: SeededInit, dtype_policy,
                      stem: str = "cifar"):
    """Global-average-pooled backbone output for a symbolic NHWC input."""
    kernel, stride = (3, 1) if stem == "cifar" else (7, 2)
    x = _conv(images, scaled(STAGE_WIDTHS[0], width_multiplier), kernel, stride, "stem_conv",
              init, dtype_policy)
    x = _relu(_bn(x, "stem_bn", dtype_policy), "stem_relu", dtype_policy)
    if stem == "imagenet":
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", dtype=dtype_policy,
                                      name="stem_pool")(x)
    for s, (width, blocks) in enumerate(zip(STAGE_WIDTHS, BLOCKS_PER_STAGE), start=1):
        filters = scaled(width, width_multiplier)
        for b in range(1, blocks + 1):
            strides = 2 if (s > 1 and b == 1) else 1
            x = _basic_block(x, filters, strides, f"stage{s}_block{b}", init, dtype_policy)
    return keras.layers.GlobalAveragePooling2D(dtype=dtype_policy, name="avg_pool")(x)


def resnet18_flops(input_shape: tuple[int, int, int], width_multiplier: float,
                   stem: str = "cifar") -> tuple[int, int]:
    """(forward FLOPs = 2 x multiply-adds of all convs, pooled width)."""
    h, w, c = input_shape

    def conv(h, w, cin, cout, k, s):
        ho, wo = math.ceil(h / s), math.ceil(w / s)  # "same" padding
        return 2 * ho * wo * k * k * cin * cout, ho, wo

    f0 = scaled(STAGE_WIDTHS[0], width_multiplier)
    if stem == "cifar":
        flops, h, w = conv(h, w, c, f0, 3, 1)
    else:
        flops, h, w = conv(h, w, c, f0, 7, 2)
        h, w = math.ceil(h / 2), math.ceil(w / 2)  # max-pool
    c = f0
    for s, (width, blocks) in enumerate(zip(STAGE_WIDTHS, BLOCKS_PER_STAGE), start=1):
        filters = scaled(width, width_multiplier)
        for b in range(1, blocks + 1):
            strides = 2 if (s > 1 and b == 1) else 1
            f1, ho, wo = conv(h, w, c, filters, 3, strides)
            f2, _, _ = conv(ho, wo, filters, filters, 3, 1)
            flops += f1 + f2
            if strides != 1 or c != filters:
                flops += conv(h, w, c, filters, 1, strides)[0]
            h, w, c = ho, wo, filters
    return flops, c
