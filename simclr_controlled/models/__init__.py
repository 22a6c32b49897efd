"""The SimCLR models of the paper (DESIGN §3.1, App. A) and their forward FLOPs.

`build_model` returns a Keras 3 functional model; `model(images, training=b)`
returns a dict with every tap in TAPS (all float32, [batch, width]):
- `head_input`: backbone output (LeNet: flattened; ResNet-18: global average
  pooled),
- `head_1`, `head_2`: the head's hidden layers after their ReLU,
- `head_out`: the projection (no activation).

Decisions where the paper is silent (see also the module docstrings):
- initialization as in Flax, the paper's library: LeCun-normal kernels, zero
  biases, BN gamma 1 (0 for the last BN of each residual branch), beta 0; each
  layer seeded from `seed` (a pure function of it, no global random state);
- ResNet BN: momentum 0.9, epsilon 1e-5, synchronized across replicas;
- no BN in the head (the paper lists only dense + ReLU);
- `width_multiplier` scales every conv width, rounded half up, at least 1; it
  leaves the head alone (`config.validate` checks --width_multiplier and
  --seed; here they are asserted);
- `dtype_policy` (None = float32, "mixed_float16", "mixed_bfloat16") is set
  per layer, not globally; taps are cast back to float32. Loss scaling for
  float16 is the training loop's business.
Variables are created where `build_model` is called: call it inside
`strategy.scope()` for tf.distribute (BN statistics are then global-batch).
"""
from __future__ import annotations

import math
from numbers import Integral, Real

import keras

from simclr_controlled import names
from simclr_controlled.errors import UsageError
from simclr_controlled.models.head import TAPS, SeededInit, projection_head
from simclr_controlled.models.lenet import lenet_backbone, lenet_flops, output_hw
from simclr_controlled.models.resnet import STEMS, resnet18_backbone, resnet18_flops

MODELS = names.MODELS
DEFAULT_HEAD_WIDTHS = {names.LENET: (120, 84, 84), names.RESNET18: (512, 512, 128)}
# The output layer has a bias in LeNet's head (App. A.1) and none in ResNet's (App. A.2).
HEAD_OUT_BIAS = {names.LENET: True, names.RESNET18: False}
DTYPE_POLICIES = (None, "float32", "mixed_float16", "mixed_bfloat16")

__all__ = ["TAPS", "MODELS", "DEFAULT_HEAD_WIDTHS", "build_model", "forward_flops"]


def _three_positive_ints(value, flag: str, meaning: str) -> tuple[int, int, int]:
    """`value` as a tuple of 3 Python ints > 0; UsageError naming `flag` otherwise."""
    try:
        items = tuple(value)
    except TypeError:
        items = ()
    if len(items) != 3 or not all(isinstance(v, Integral) and v > 0 for v in items):
        raise UsageError(f"{flag}: must be 3 positive integers ({meaning}), got {value!r}")
    return tuple(int(v) for v in items)


def _check(name, input_shape, width_multiplier, head_widths) -> tuple:
    """Validated (input_shape, width_multiplier, head_widths); UsageError otherwise
    (width_multiplier, --width_multiplier's value checked by config.validate, is asserted)."""
    if name not in MODELS:
        raise UsageError(f"model: unknown model {name!r}; allowed: {', '.join(MODELS)}")
    assert isinstance(width_multiplier, Real) and 0 < width_multiplier < math.inf, \
        f"width_multiplier: must be a finite number > 0, got {width_multiplier!r}"
    if head_widths is None:
        head_widths = DEFAULT_HEAD_WIDTHS[name]
    widths = _three_positive_ints(head_widths, "head_widths", "one per head layer")
    shape = _three_positive_ints(input_shape, "input_shape", "height, width, channels")
    if name == names.LENET and min(output_hw(shape[0], shape[1])) < 1:
        raise UsageError(f"input_shape: lenet needs height and width >= 11, got {shape!r}")
    return shape, float(width_multiplier), widths


def build_model(name: str, input_shape: tuple[int, int, int], *,
                width_multiplier: float = 1.0, head_widths: tuple[int, ...] | None = None,
                seed: int = 0, dtype_policy: str | None = None, stem: str = "cifar") -> keras.Model:
    """Backbone + 3-layer projection head returning every tap (DESIGN §3.1, App. A).

    Weights are a pure function of (architecture, `seed`). Raises UsageError
    naming `model`, `input_shape`, `head_widths`, `dtype_policy` or `stem`;
    `width_multiplier` (finite, > 0) and `seed` (an integer >= 0) are asserted.
    """
    shape, multiplier, widths = _check(name, input_shape, width_multiplier, head_widths)
    assert isinstance(seed, Integral) and seed >= 0, f"seed: must be an integer >= 0, got {seed!r}"
    if dtype_policy not in DTYPE_POLICIES:
        raise UsageError("dtype_policy: allowed: None, "
                         f"{', '.join(p for p in DTYPE_POLICIES if p)}; got {dtype_policy!r}")
    if stem not in STEMS:
        raise UsageError(f"stem: allowed: {', '.join(STEMS)}; got {stem!r}")
    policy = dtype_policy or "float32"
    init = SeededInit(int(seed))
    images = keras.Input(shape=shape, dtype="float32", name="images")
    if name == names.LENET:
        features = lenet_backbone(images, width_multiplier=multiplier, init=init, dtype_policy=policy)
    else:
        features = resnet18_backbone(images, width_multiplier=multiplier, init=init,
                                     dtype_policy=policy, stem=stem)
    taps = projection_head(features, widths, last_bias=HEAD_OUT_BIAS[name], init=init,
                           dtype_policy=policy)
    return keras.Model(inputs=images, outputs=taps, name=name)


def forward_flops(name: str, input_shape: tuple[int, int, int], width_multiplier: float = 1.0,
                  head_widths: tuple[int, ...] | None = None, stem: str = "cifar") -> int:
    """Forward FLOPs per image: 2 x multiply-adds of every conv and dense layer.

    Biases, activations, pooling, BN and residual additions are not counted
    (they are O(activations), not O(weights x positions)).
    """
    shape, multiplier, widths = _check(name, input_shape, width_multiplier, head_widths)
    if name == names.LENET:
        flops, fan_in = lenet_flops(shape, multiplier)
    else:
        flops, fan_in = resnet18_flops(shape, multiplier, stem)
    for w in widths:
        flops += 2 * fan_in * w
        fan_in = w
    return int(flops)
