"""What the dataset flags describe, from the flags alone (no NumPy, no TensorFlow).

`config.validate` uses these pure functions before TensorFlow starts and
before the data is made (DESIGN §1.3, §1.4):
- `parse_factors`: `--factors` ("color:10,scale:6,x:16,y:16") as
  ((name, count), ...) in item order (`names.FACTOR_NAMES`, whatever order
  they are given in);
- `decoded_factors`: the factors the linear decoders read: every listed
  factor, x and y together as `position` when both are listed;
- `num_items`: the full cross, or `--max_items` of it when that is smaller;
- `data_memory`: the items and the bytes per item the run's data takes;
- `check`: the check of `--factors`, `--max_items`, `--random_bits` and of
  the data's memory.

Memory per item (bytes; float32 images of H x W x C, evaluation inputs of
He x We x C, L labels, k random bits): 2 x 4 H W C (the NumPy images and the
TensorFlow constant the input pipeline makes of them) + 8 L (int64 labels) +
2 k (the bits and their TensorFlow copy) + 4 He We (C + k) when k > 0 (the
evaluation images with the bit channels, `modes/common.eval_images`). A
factor item with k = 0 takes 98,304 + 8 L bytes (about 96 KiB). The data,
plus `footprint.RUNTIME_BYTES` for TensorFlow itself, must fit in physical
memory; the model's step is checked on its own (`config.check_model_fits`).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

from simclr_controlled import footprint, names
from simclr_controlled.errors import UsageError

FACTOR_NAMES = names.FACTOR_NAMES
POSITION = names.POSITION
# Counts a listed factor may take: at least 2 (a factor that does not vary is
# left out, and takes its fixed value); at most the documented maximum
# (shape: the three sprites; orientation and color: one degree of angle or hue
# apart; scale, x, y: one value per pixel of the 64-pixel canvas).
MIN_COUNT = 2
MAX_COUNT = {"color": 360, "shape": 3, "scale": 64, "orientation": 360, "x": 64, "y": 64}
# --max_items: 0 is the full cross; the cap keeps item and step counts far below int64's range.
MAX_ITEMS = 10_000_000
# --random_bits (DESIGN §1.4).
MAX_RANDOM_BITS = 64
# dsprites_mod's size (datasets/dsprites_mod.py; the hierarchy has one item per leaf class).
DSPRITES_ITEMS = 10 * 6 * 16 * 16
DSPRITES_LABELS = 5  # color, scale, x, y, position
EXAMPLE = names.DSPRITES_MOD_FACTORS


def _fail(message: str) -> None:
    raise UsageError(f"--factors: {message}")


def parse_factors(text: Any) -> tuple[tuple[str, int], ...]:
    """--factors as ((name, count), ...) in `FACTOR_NAMES` order; UsageError names --factors."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        _fail(f"list the factors to vary as name:count, e.g. {EXAMPLE}; got {text!r}")
    counts: dict[str, int] = {}
    for part in parts:
        name, sep, count = (s.strip() for s in part.partition(":"))
        if not sep:
            _fail(f"expected name:count pairs such as {EXAMPLE}, got {part!r}")
        if name not in MAX_COUNT:
            _fail(f"unknown factor {name!r}; allowed: {', '.join(FACTOR_NAMES)}")
        if name in counts:
            _fail(f"{name} given twice in {text!r}; list each factor once")
        try:
            k = int(count)
        except ValueError:
            k = None
        if k is None or not MIN_COUNT <= k <= MAX_COUNT[name]:
            _fail(f"{name}: allowed counts {MIN_COUNT} to {MAX_COUNT[name]} (a factor left out "
                  f"is fixed), got {part!r}")
        counts[name] = k
    spec = tuple((f, counts[f]) for f in FACTOR_NAMES if f in counts)
    if len(decoded_factors(spec)) < 2:
        _fail(f"vary at least two factors (x and y together count as one, position: each is "
              f"decoded on held-out values of the others), got {text!r}")
    return spec


def canonical(spec: tuple) -> str:
    """'color:10,scale:6,x:16,y:16': the spec in item order."""
    return ",".join(f"{name}:{count}" for name, count in spec)


def decoded_factors(spec: tuple) -> tuple[str, ...]:
    """The factors the decoders read, in item order; x and y together are `position`."""
    listed = [name for name, _ in spec]
    if "x" in listed and "y" in listed:
        return tuple(n for n in listed if n not in ("x", "y")) + (POSITION,)
    return tuple(listed)


def cross_size(spec: tuple) -> int:
    return math.prod(count for _, count in spec)


def num_items(spec: tuple, max_items: int) -> int:
    """Items of the dataset: the full cross, or `max_items` of it when smaller (0: no limit)."""
    full = cross_size(spec)
    return min(full, max_items) if max_items else full


def num_labels(spec: tuple) -> int:
    return len(spec) + (POSITION in decoded_factors(spec))


def item_bytes(image_shape, eval_shape, labels: int, random_bits: int) -> int:
    """Bytes one item takes (the module docstring's formula)."""
    h, w, c = image_shape
    eh, ew, _ = eval_shape
    extra = 4 * eh * ew * (c + random_bits) if random_bits else 0
    return 2 * 4 * h * w * c + 8 * labels + 2 * random_bits + extra


def data_memory(config: Any) -> tuple[int, int]:
    """(items, bytes per item) of the data of `config` (a `config.Config`)."""
    k = config.random_bits
    if config.dataset == names.HIERARCHY:
        levels, m, crop = len(config.branching), config.mask_size, config.crop_size
        return (math.prod(config.branching),
                item_bytes((m, m, levels), (crop, crop, levels), levels, k))
    shape = footprint.DSPRITES_SHAPE
    if config.dataset == names.FACTORS:
        spec = parse_factors(config.factors)
        return num_items(spec, config.max_items), item_bytes(shape, shape, num_labels(spec), k)
    return (min(DSPRITES_ITEMS, config.max_items or DSPRITES_ITEMS),
            item_bytes(shape, shape, DSPRITES_LABELS, k))


def _is_int(x: Any) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def check(config: Any, memory_bytes: int | None = None) -> None:
    """Refuses bad --factors, --max_items, --random_bits, and data that cannot fit.

    `memory_bytes`: default this machine's physical memory; 0: not checked.
    The memory is judged for --dataset=factors and for --random_bits > 0
    (the other datasets' sizes are capped by their own checks); the flag
    named is --random_bits when the data fits without the bits, else
    --max_items when given, else --factors (hierarchy: --branching).
    """
    c = config
    k = c.random_bits
    if not (_is_int(k) and 0 <= k <= MAX_RANDOM_BITS):
        raise UsageError(f"--random_bits: allowed: 0 (none) to {MAX_RANDOM_BITS} extra constant "
                         f"input channels, got {k!r}")
    if k and c.dataset == names.HIERARCHY:
        # Its channel-preference probes are made-up images of no item: there are no bits to append.
        raise UsageError(f"--random_bits: allowed with --dataset=dsprites_mod or factors, not with "
                         f"hierarchy, got {k!r}")
    if not (_is_int(c.max_items) and 0 <= c.max_items <= MAX_ITEMS):
        raise UsageError(f"--max_items: allowed: 0 (the full cross) to {MAX_ITEMS:,}, got {c.max_items!r}")
    spec = parse_factors(c.factors)
    memory = footprint.physical_memory_bytes() if memory_bytes is None else int(memory_bytes)
    if memory <= 0 or (c.dataset != names.FACTORS and not k):
        return
    room = memory - footprint.RUNTIME_BYTES
    items, per_item = data_memory(c)
    if items * per_item <= room:
        return
    def fits(bits: int) -> bool:
        n, per = data_memory(dataclasses.replace(c, random_bits=bits))
        return n * per <= room

    if k and fits(0):
        flag, shown = "random_bits", str(k)
        hint = f"allowed here: at most {max(j for j in range(k) if fits(j))}"
    elif c.dataset == names.FACTORS:
        most = max(0, room // per_item)
        flag = "max_items" if c.max_items else "factors"
        shown = f"{c.max_items:,}" if c.max_items else canonical(spec)
        hint = (f"allowed here: --max_items of at most {most:,}" if most >= 2
                else "fewer or smaller factors")
        if flag == "factors":
            shown = f"{shown} ({cross_size(spec):,} items)"
    else:
        flag, shown, hint = "branching", ",".join(map(str, c.branching)), "lower it"
    raise UsageError(
        f"--{flag}: {shown} needs about {footprint.format_bytes(items * per_item)} for the data "
        f"({items:,} items of {footprint.format_bytes(per_item)}), more than this machine's "
        f"{footprint.format_bytes(memory)} memory less {footprint.format_bytes(footprint.RUNTIME_BYTES)} "
        f"for TensorFlow; {hint}")
