"""Model size and training-step memory from the settings alone (no TensorFlow).

`config.validate` uses these pure functions to refuse, before TensorFlow
starts and before anything is written, a model that cannot run on this
machine (a resource bomb such as `--width_multiplier=1000`) or an input too
small for the model (`--crop_size` below LeNet's minimum). Everything is
exact Python integer arithmetic, so absurd values give absurd (not
overflowing) numbers.

The architecture is copied from `models/` (lenet.py, resnet.py, head.py,
__init__.py; tests/test_footprint.py checks the copies and checks every count
here against the built Keras model):
- `layer_outputs`: the output size (values per item) of every Keras layer of
  `models.build_model` (float32 policy), by layer name, input layer included;
- `param_counts`: (trainable, non-trainable) weights; equal to the built
  model's `count_params()` split (BN moving statistics are non-trainable);
- `min_input_side`: the smallest input height/width the model accepts. LeNet
  (valid 5x5 convs, 2x2 stride-1 valid pools) loses 4 + 1 per stage, 10 in
  all, so 11; ResNet-18 uses "same" padding throughout (every stride-2 layer
  maps side s to ceil(s / 2) >= 1) and ends in global average pooling, so 1.

Training-step memory (`step_memory`), in bytes, float32 (4 bytes per value;
also for --mixed_precision=bfloat16, whose variables stay float32 and whose
activations would take half, so the estimate stays conservative):
- model state: 4 x all weights (incl. BN statistics) + 3 x 4 x trainable
  weights (Adam's two slots and the gradients);
- activations, for the global batch of N items = 2N views:
  4 x 2N x (sum over every layer of its output size per view x the tensors
  the layer makes + 6 x the largest output), plus NT-Xent's 20 N x N
  matrices x 4 bytes. A Conv2D/Dense with a bias and a ReLU makes 3 tensors
  (product, bias add, ReLU), with a bias only 2, every other layer 1. The sum
  is what the forward pass leaves for the backward pass if nothing is freed;
  the 6 x largest covers the backward pass's live gradients and
  convolution workspace.
`RUNTIME_BYTES` (1 GiB) is TensorFlow's own resident memory on a CPU; the
memory check adds it. Not counted: the dataset (checked on its own by
`data_spec.check`; hierarchy at most 4 GiB by its own cap, dSprites 0.75 GiB)
and the input pipeline's prefetched batches.

Checked against the growth of peak RSS through a real step
(tests/test_footprint.py): the estimate is conservative but close; the
numbers are in the README (Speed).
"""
from __future__ import annotations

import dataclasses
import math
import os
from decimal import Decimal
from fractions import Fraction
from typing import Any

from simclr_controlled import names
from simclr_controlled.names import HIERARCHY, LENET, RESNET18

# Copies of models/lenet.py, models/resnet.py and models/__init__.py (tests check them).
LENET_CONV_FILTERS = (6, 16)
LENET_KERNEL = 5
LENET_POOL = 2
RESNET_STAGE_WIDTHS = (64, 128, 256, 512)
RESNET_BLOCKS_PER_STAGE = (2, 2, 2, 2)
RESNET_STEMS = names.RESNET_STEMS
DEFAULT_HEAD_WIDTHS = {LENET: (120, 84, 84), RESNET18: (512, 512, 128)}
HEAD_OUT_BIAS = {LENET: True, RESNET18: False}
# dsprites_mod and factors images (datasets/sprites.py IMAGE_SIZE, RGB).
DSPRITES_SHAPE = (64, 64, 3)

BYTES_PER_VALUE = 4  # float32
# Weights held per trainable weight during a step: the weight, Adam's m and v, the gradient.
VALUES_PER_TRAINABLE = 4
# The backward pass's live gradients and convolution workspace, in units of
# the largest layer output (fit to measured peaks: ResNet-18's 7x7 stride-2
# stem needs the most).
BACKWARD_LIVE = 6
# TensorFlow's own resident memory on a CPU (after import, plus kernels and
# traced functions), added by `config.check_model_fits`.
RUNTIME_BYTES = 2**30
# NT-Xent's N x N matrices for a global batch of N items (losses.nt_xent): the
# self mask, 4 similarity blocks, their scaling, 2 masked blocks, 2
# concatenated N x 2N logits and the cross entropy's softmax (19), rounded up.
LOSS_MATRICES = 20


def scaled(width: int, multiplier: float) -> int:
    """models.lenet.scaled: `width * multiplier` rounded half up, at least 1.

    Same float arithmetic where it is finite; exact (a Python int) where the
    float product overflows, so absurd multipliers give absurd sizes.
    """
    value = width * multiplier + 0.5
    if math.isfinite(value):
        return max(1, int(value))
    return max(1, math.floor(Fraction(width) * Fraction(multiplier) + Fraction(1, 2)))


def min_input_side(model: str) -> int:
    """The smallest input height (= width) `models.build_model(model, ...)` accepts."""
    if model == LENET:
        return 1 + len(LENET_CONV_FILTERS) * (LENET_KERNEL - 1 + LENET_POOL - 1)
    return 1


def _head_widths(model: str, head_widths) -> tuple:
    return tuple(head_widths) if head_widths is not None else DEFAULT_HEAD_WIDTHS[model]


def _head(fan_in: int, widths: tuple, last_bias: bool) -> tuple[list, int]:
    """(layer outputs, trainable weights) of the 3 dense head layers."""
    outputs, params = [], 0
    for i, (name, w) in enumerate(zip(names.HEAD_LAYERS, widths)):
        bias = last_bias if i == 2 else True
        params += fan_in * w + (w if bias else 0)
        outputs.append((name, w, 1 + bias + (i < 2)))  # matmul, bias add, ReLU
        fan_in = w
    return outputs, params


def _architecture(model: str, input_shape, width_multiplier: float, head_widths,
                  stem: str) -> tuple[list, int, int]:
    """(layers [(name, output values per item, tensors it makes)], trainable,
    non-trainable weights). Tensors: 3 for a Conv2D/Dense with a bias and a
    ReLU (the product, the bias add, the ReLU), 2 with a bias only, else 1."""
    h, w, c = (int(v) for v in input_shape)
    outputs = [("images", h * w * c, 1)]
    trainable = frozen = 0
    if model == LENET:
        for i, filters in enumerate(LENET_CONV_FILTERS, start=1):
            f = scaled(filters, width_multiplier)
            trainable += LENET_KERNEL * LENET_KERNEL * c * f + f
            h, w, c = h - LENET_KERNEL + 1, w - LENET_KERNEL + 1, f
            outputs.append((f"conv{i}", h * w * c, 3))
            h, w = h - LENET_POOL + 1, w - LENET_POOL + 1
            outputs.append((f"pool{i}", h * w * c, 1))
        fan_in = h * w * c
        outputs.append(("flatten", fan_in, 1))
    elif model == RESNET18:
        def conv(name, cin, cout, k, s, h, w):
            nonlocal trainable
            trainable += k * k * cin * cout  # no bias
            h, w = -(-h // s), -(-w // s)  # "same" padding: ceil
            outputs.append((name, h * w * cout, 1))
            return h, w

        def bn(name, ch, size):
            nonlocal trainable, frozen
            trainable += 2 * ch  # gamma, beta
            frozen += 2 * ch  # moving mean, variance
            outputs.append((name, size, 1))

        f0 = scaled(RESNET_STAGE_WIDTHS[0], width_multiplier)
        kernel, stride = (3, 1) if stem == "cifar" else (7, 2)
        h, w = conv("stem_conv", c, f0, kernel, stride, h, w)
        bn("stem_bn", f0, h * w * f0)
        outputs.append(("stem_relu", h * w * f0, 1))
        if stem != "cifar":
            h, w = -(-h // 2), -(-w // 2)
            outputs.append(("stem_pool", h * w * f0, 1))
        c = f0
        for s, (width, blocks) in enumerate(zip(RESNET_STAGE_WIDTHS, RESNET_BLOCKS_PER_STAGE), start=1):
            f = scaled(width, width_multiplier)
            for b in range(1, blocks + 1):
                strides = 2 if (s > 1 and b == 1) else 1
                name = f"stage{s}_block{b}"
                ho, wo = conv(f"{name}_conv1", c, f, 3, strides, h, w)
                size = ho * wo * f
                bn(f"{name}_bn1", f, size)
                outputs.append((f"{name}_relu1", size, 1))
                conv(f"{name}_conv2", f, f, 3, 1, ho, wo)
                bn(f"{name}_bn2", f, size)
                if strides != 1 or c != f:
                    conv(f"{name}_proj_conv", c, f, 1, strides, h, w)
                    bn(f"{name}_proj_bn", f, size)
                outputs.append((f"{name}_add", size, 1))
                outputs.append((f"{name}_relu2", size, 1))
                h, w, c = ho, wo, f
        fan_in = c
        outputs.append(("avg_pool", fan_in, 1))
    else:
        raise ValueError(f"unknown model {model!r}")
    head_outputs, head_params = _head(fan_in, _head_widths(model, head_widths), HEAD_OUT_BIAS[model])
    return outputs + head_outputs, trainable + head_params, frozen


def layer_outputs(model: str, input_shape, width_multiplier: float = 1.0, head_widths=None,
                  stem: str = "cifar") -> dict[str, int]:
    """Keras layer name -> output values per item, for every layer of the built model."""
    layers = _architecture(model, input_shape, width_multiplier, head_widths, stem)[0]
    return {name: size for name, size, _ in layers}


def param_counts(model: str, input_shape, width_multiplier: float = 1.0, head_widths=None,
                 stem: str = "cifar") -> tuple[int, int]:
    """(trainable, non-trainable) weights of `models.build_model(...)`."""
    _, trainable, frozen = _architecture(model, input_shape, width_multiplier, head_widths, stem)
    return trainable, frozen


@dataclasses.dataclass(frozen=True)
class StepMemory:
    """Bytes of one training step (see the module docstring)."""
    params: int  # all weights (trainable + BN statistics)
    trainable_params: int
    state_bytes: int  # weights + Adam slots + gradients
    activation_bytes: int  # forward activations kept + backward live gradients, global batch

    @property
    def total_bytes(self) -> int:
        return self.state_bytes + self.activation_bytes


def model_input_shape(config: Any) -> tuple[int, int, int]:
    """The model's input shape for a run (train.input_shape without the data):
    the dataset's channels plus `--random_bits` (DESIGN §1.4)."""
    bits = getattr(config, "random_bits", 0)
    if config.dataset == HIERARCHY:
        return (config.crop_size, config.crop_size, len(config.branching) + bits)
    return DSPRITES_SHAPE[:2] + (DSPRITES_SHAPE[2] + bits,)


def step_memory_of(model: str, input_shape, batch_size: int, width_multiplier: float = 1.0,
                   head_widths=None, stem: str = "cifar") -> StepMemory:
    """Memory of one training step at global batch `batch_size` items (2 views each)."""
    layers, trainable, frozen = _architecture(model, input_shape, width_multiplier, head_widths, stem)
    per_view = (sum(size * tensors for _, size, tensors in layers)
                + BACKWARD_LIVE * max(size for _, size, _ in layers))
    n = int(batch_size)
    return StepMemory(
        params=trainable + frozen, trainable_params=trainable,
        state_bytes=BYTES_PER_VALUE * (trainable + frozen + (VALUES_PER_TRAINABLE - 1) * trainable),
        activation_bytes=BYTES_PER_VALUE * (2 * n * per_view + LOSS_MATRICES * n * n))


def step_memory(config: Any) -> StepMemory:
    """`step_memory_of` for a `config.Config` with its dataset defaults filled in."""
    return step_memory_of(config.model, model_input_shape(config), config.train_batch_size,
                          config.width_multiplier, config.head_widths,
                          config.resnet_stem if config.model == RESNET18 else "cifar")


def physical_memory_bytes() -> int:
    """Total physical memory of this machine (0 when the OS does not say)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 0


def format_int(n: int) -> str:
    """An integer as given, or '1.0e+400' when it has more than 15 digits."""
    n = int(n)
    return str(n) if abs(n) < 10 ** 15 else f"{Decimal(n):.1e}"


def format_bytes(n: int) -> str:
    """'9.1 TiB' (binary units up to EiB, then '3.3e+602 bytes'); exact for any size."""
    n = int(n)
    units = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    if n < 1024:
        return f"{n} bytes"
    for i, unit in enumerate(units, start=1):
        if n < 1024 ** (i + 1):
            return f"{Decimal(n) / Decimal(1024 ** i):.1f} {unit}"
    if n < 1024 ** 7 * 1000:
        return f"{Decimal(n) / Decimal(1024 ** 6):.1f} EiB"
    return f"{Decimal(n):.1e} bytes"


def format_count(n: int) -> str:
    """'12.3 G' / '642.5 k' / '84' (decimal units up to T, then '2.4e+607')."""
    n = int(n)
    for power, unit in ((12, "T"), (9, "G"), (6, "M"), (3, "k")):
        if n >= 10 ** power:
            return (f"{Decimal(n) / Decimal(10 ** power):.1f} {unit}" if n < 10 ** 15
                    else f"{Decimal(n):.1e}")
    return str(n)
