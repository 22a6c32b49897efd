"""Whether a model can be trained here (the last check of `config.validate`):
its input is at least the model's smallest side, and its training step fits
in this machine's memory (`footprint.step_memory` + `footprint.RUNTIME_BYTES`).
The flag named in a refusal is the one whose reset shrinks the estimate most,
with the largest value that fits.
"""
from __future__ import annotations

import dataclasses
import math

from simclr_controlled import footprint, names
from simclr_controlled.errors import UsageError


# Smallest global batch: NT-Xent needs another item for negatives (with one
# item the loss is 0 and the contrastive accuracy 1 from the first step).
MIN_TRAIN_BATCH_SIZE = 2


def check_model_fits(config, resets: dict, memory_bytes: int | None = None) -> None:
    """Refuses a model (a `config.Config`) that cannot be trained here;
    UsageError names the flag. `resets`: flag -> its default, the values a
    refusal considers resetting (`config.check_model_fits` gives them).

    - hierarchy: `--crop_size` at least the model's smallest input side
      (`footprint.min_input_side`: LeNet 11, ResNet-18 1);
    - the training step (`footprint.step_memory` + `footprint.RUNTIME_BYTES`)
      must fit in `memory_bytes` (default: physical memory; 0: not checked).
      With --strategy=multi_worker or tpu the batch is split over machines
      or cores whose number is unknown before TensorFlow starts, so only the
      replicated part (weights, Adam slots, gradients) is judged there. The
      flag named is the one whose reset to its default shrinks the estimate
      most (--width_multiplier, --head_widths, --train_batch_size,
      --crop_size), with the largest value that fits where one does.
    """
    c = config
    if c.dataset == names.HIERARCHY:
        low = footprint.min_input_side(c.model)
        if c.crop_size < low:
            allowed = (f"allowed: {low} to mask_size={c.mask_size}" if c.mask_size >= low
                       else f"needs --mask_size >= {low} too")
            why = (" (two 5x5 valid convolutions and two 2x2 stride-1 max-pools shrink the side "
                   "by 10)" if c.model == names.LENET else "")
            raise UsageError(f"--crop_size: {c.model} needs inputs of at least {low}x{low} "
                             f"pixels{why}; {allowed}, got {c.crop_size}")
    memory = footprint.physical_memory_bytes() if memory_bytes is None else int(memory_bytes)
    if memory <= 0:
        return
    split = c.strategy in ("multi_worker", "tpu")

    def needed(cfg) -> int:
        step = footprint.step_memory(cfg)
        return (step.state_bytes if split else step.total_bytes) + footprint.RUNTIME_BYTES

    need_now = needed(c)
    if need_now <= memory:
        return
    reduced = {flag: needed(dataclasses.replace(c, **{flag: value}))
               for flag, value in resets.items() if getattr(c, flag) != value}
    flag = min(reduced, key=reduced.get) if reduced and min(reduced.values()) < need_now \
        else "train_batch_size"
    if split and flag == "train_batch_size":
        flag = "width_multiplier"  # the batch does not count there
    value = getattr(c, flag)
    shown = ",".join(footprint.format_int(v) for v in value) if flag == "head_widths" else (
        f"{value:g}" if flag == "width_multiplier" else footprint.format_int(value))
    step = footprint.step_memory(c)
    fit = _largest_fitting(c, flag, lambda cfg: needed(cfg) <= memory)
    hint = f"; allowed here: {fit}" if fit else "; lower it"
    what = ("for the weights, Adam slots and gradients every worker holds" if split
            else "for a training step")
    raise UsageError(
        f"--{flag}: {shown} needs about {footprint.format_bytes(need_now)} {what} "
        f"(model {footprint.format_count(step.params)} parameters), more than this machine's "
        f"{footprint.format_bytes(memory)} memory{hint}")


def _largest_fitting(c, flag: str, fits) -> str:
    """'at most N' for the largest value of `flag` that `fits` (by bisection; memory grows
    with each of these flags), '' when none does."""
    def with_value(v):
        if flag == "head_widths":
            widths = c.head_widths or footprint.DEFAULT_HEAD_WIDTHS[c.model]
            return dataclasses.replace(c, head_widths=tuple(min(w, v) for w in widths))
        return dataclasses.replace(c, **{flag: v})

    if flag == "width_multiplier":
        lo, hi = 1e-6, float(c.width_multiplier)
        if not fits(with_value(lo)):
            return ""
        for _ in range(100):  # geometric: the range may span hundreds of decades
            mid = math.sqrt(lo) * math.sqrt(hi)
            lo, hi = (mid, hi) if fits(with_value(mid)) else (lo, mid)
        unit = 10.0 ** (math.floor(math.log10(lo)) - 1)  # 2 significant digits, rounded down
        best = math.floor(lo / unit) * unit
        return f"at most {best:.0f}" if best >= 10 else f"at most {best:.2g}"
    low = {"train_batch_size": MIN_TRAIN_BATCH_SIZE, "head_widths": 1,
           "crop_size": footprint.min_input_side(c.model)}[flag]
    high = max(c.head_widths or footprint.DEFAULT_HEAD_WIDTHS[c.model]) if flag == "head_widths" \
        else int(getattr(c, flag))
    if not fits(with_value(low)):
        return ""
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if fits(with_value(mid)) else (low, mid - 1)
    if flag == "head_widths":
        return f"widths of at most {low:,} each"
    return f"at most {low:,}"
