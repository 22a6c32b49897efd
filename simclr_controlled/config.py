"""The frozen run configuration.

`run.py` parses the absl flags once into a `Config`; every other module takes
the `Config` (or plain arguments) and never reads flags itself.

Defaults that depend on the dataset (SPEC §2, "Paper settings") are filled in
by `with_dataset_defaults`: a field left at `None` takes the paper's value for
the chosen dataset.
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from simclr_controlled.errors import UsageError

MODES = ("show", "train", "probe", "analyze", "reproduce")
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")
AUTO_ON_OFF = ("auto", "on", "off")
EXPERIMENTS = ("hierarchy", "dsprites_mod")
# Copies of `models.MODELS` and `augment.PRESETS` (tests check they agree), so
# that `validate` runs without importing TensorFlow: bad input fails in a
# fraction of a second, before TF's start-up messages.
MODEL_NAMES = ("lenet", "resnet18")
AUGMENT_PRESETS = ("none", "color_jitter", "random_crop", "crop_jitter")
SHAPES = ("square", "ellipse", "heart")
MAX_SEED = 2**31 - 1

# Paper settings (SPEC §2; paper Sec. 2, App. A.1, A.2).
PAPER_DEFAULTS = {
    "hierarchy": dict(model="lenet", augment="crop", temperature=0.5,
                      train_batch_size=256, train_epochs=100, learning_rate=1e-3),
    "dsprites_mod": dict(model="resnet18", augment="crop_jitter", temperature=0.5,
                         train_batch_size=128, train_epochs=200, learning_rate=1e-3),
}

# Settings that change the data or the model: a `model_dir` made with one
# value refuses another (issue 7, config lock).
LOCKED = ("dataset", "seed", "branching", "mask_size", "crop_size", "val_fraction",
          "shape", "model", "width_multiplier", "head_widths", "resnet_stem", "augment",
          "color_jitter_strength", "flip", "temperature", "train_batch_size",
          "learning_rate", "weight_decay", "mixed_precision")


@dataclasses.dataclass(frozen=True)
class Config:
    """Every setting of a run. See README "Modes and flags"."""
    mode: str = "train"
    dataset: str = "hierarchy"
    model_dir: str = ""
    seed: int = 0
    # Dataset (SPEC §1).
    branching: tuple = (10, 10, 10, 10)
    mask_size: int = 38
    crop_size: int = 28
    val_fraction: float = 0.1
    shape: str = "square"
    # Model (SPEC §2).
    model: str | None = None
    width_multiplier: float = 1.0
    head_widths: tuple | None = None
    resnet_stem: str = "cifar"
    # Augmentation (SPEC §2).
    augment: str | None = None
    color_jitter_strength: float = 0.5
    flip: bool = False
    # Optimisation (SimCLR flag names).
    temperature: float | None = None
    train_batch_size: int | None = None
    train_epochs: int | None = None
    train_steps: int = 0
    learning_rate: float | None = None
    weight_decay: float = 0.0
    # Bookkeeping.
    checkpoint_epochs: int = 10
    keep_checkpoint_max: int = 5
    eval_every_epochs: int = 0
    steps_per_loop: int = 0
    # Hardware.
    strategy: str = "auto"
    tpu: str = ""
    jit_compile: str = "auto"
    mixed_precision: str = "auto"
    deterministic: bool = False
    # Probes and experiments (SPEC §3, §4).
    checkpoints: str = "latest"
    decoder_epochs: int = 500
    experiment_dir: str = ""
    experiment: str = ""
    temperatures: tuple = (0.1, 0.5, 1.0)
    augment_presets: tuple = ("none", "color_jitter", "random_crop", "crop_jitter")

    def with_dataset_defaults(self) -> "Config":
        """Fills every `None` field with the paper's value for `dataset`."""
        if self.dataset not in PAPER_DEFAULTS:
            raise UsageError(f"--dataset: unknown dataset {self.dataset!r}; "
                             f"allowed: {', '.join(PAPER_DEFAULTS)}")
        fill = {k: v for k, v in PAPER_DEFAULTS[self.dataset].items()
                if getattr(self, k) is None}
        return dataclasses.replace(self, **fill)

    def dataset_params(self) -> dict[str, Any]:
        """Keyword arguments of `datasets.get_dataset` for this run."""
        if self.dataset == "hierarchy":
            return dict(branching=tuple(self.branching), mask_size=self.mask_size,
                        crop_size=self.crop_size, val_fraction=self.val_fraction)
        return dict(shape=self.shape)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Config":
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in names}
        return cls(**kw)


def parse_int_tuple(text: str, flag: str) -> tuple[int, ...]:
    """Parses "10,10,10" into (10, 10, 10); UsageError names `flag` otherwise."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise UsageError(f"--{flag}: expected comma-separated positive integers, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise UsageError(f"--{flag}: expected comma-separated positive integers, got {text!r}")
    return values


def validate(config: Config, num_replicas: int = 1) -> None:
    """Checks the settings that do not need the data; UsageError names the flag.

    Imports nothing heavy (no TensorFlow), so run.py can call it first.
    """
    c = config

    def need(ok: bool, flag: str, allowed: str, value: Any) -> None:
        if not ok:
            raise UsageError(f"--{flag}: {allowed}, got {value!r}")

    def finite(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

    def positive_int(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool) and x > 0

    need(c.mode in MODES, "mode", f"allowed: {', '.join(MODES)}", c.mode)
    need(c.dataset in PAPER_DEFAULTS, "dataset", f"allowed: {', '.join(PAPER_DEFAULTS)}", c.dataset)
    need(c.model in MODEL_NAMES, "model", f"allowed: {', '.join(MODEL_NAMES)}", c.model)
    allowed_aug = ("crop",) if c.dataset == "hierarchy" else AUGMENT_PRESETS
    need(c.augment in allowed_aug, "augment",
         f"allowed for --dataset={c.dataset}: {', '.join(allowed_aug)}", c.augment)
    need(c.strategy in STRATEGIES, "strategy", f"allowed: {', '.join(STRATEGIES)}", c.strategy)
    need(c.jit_compile in AUTO_ON_OFF, "jit_compile", "allowed: auto, on, off", c.jit_compile)
    need(c.mixed_precision in ("auto", "off", "bfloat16"), "mixed_precision",
         "allowed: auto, off, bfloat16", c.mixed_precision)
    need(isinstance(c.seed, int) and 0 <= c.seed <= MAX_SEED, "seed",
         f"must be an integer in [0, {MAX_SEED}]", c.seed)
    need(finite(c.temperature) and c.temperature > 0, "temperature", "must be a finite number > 0",
         c.temperature)
    need(positive_int(c.train_batch_size), "train_batch_size", "must be a positive integer",
         c.train_batch_size)
    need(c.train_batch_size % max(num_replicas, 1) == 0, "train_batch_size",
         f"must be divisible by the number of replicas ({num_replicas})", c.train_batch_size)
    need(positive_int(c.train_epochs), "train_epochs", "must be a positive integer", c.train_epochs)
    need(c.train_steps >= 0, "train_steps", "must be >= 0 (0: use train_epochs)", c.train_steps)
    need(finite(c.learning_rate) and c.learning_rate > 0, "learning_rate",
         "must be a finite number > 0", c.learning_rate)
    need(finite(c.weight_decay) and c.weight_decay >= 0, "weight_decay", "must be a finite number >= 0",
         c.weight_decay)
    need(finite(c.width_multiplier) and c.width_multiplier > 0, "width_multiplier",
         "must be a finite number > 0", c.width_multiplier)
    need(finite(c.color_jitter_strength) and c.color_jitter_strength >= 0, "color_jitter_strength",
         "must be a finite number >= 0", c.color_jitter_strength)
    need(positive_int(c.checkpoint_epochs), "checkpoint_epochs", "must be a positive integer",
         c.checkpoint_epochs)
    need(positive_int(c.keep_checkpoint_max), "keep_checkpoint_max", "must be a positive integer",
         c.keep_checkpoint_max)
    need(c.eval_every_epochs >= 0, "eval_every_epochs", "must be >= 0 (0: off)", c.eval_every_epochs)
    need(c.steps_per_loop >= 0, "steps_per_loop", "must be >= 0 (0: automatic)", c.steps_per_loop)
    need(c.head_widths is None or (len(c.head_widths) == 3 and all(w > 0 for w in c.head_widths)),
         "head_widths", "three comma-separated positive integers", c.head_widths)
    need(c.resnet_stem in ("cifar", "imagenet"), "resnet_stem", "allowed: cifar, imagenet", c.resnet_stem)
    need(c.checkpoints in ("latest", "all"), "checkpoints", "allowed: latest, all", c.checkpoints)
    need(positive_int(c.decoder_epochs), "decoder_epochs", "must be a positive integer",
         c.decoder_epochs)
    need(len(c.temperatures) > 0 and all(finite(t) and t > 0 for t in c.temperatures), "temperatures",
         "comma-separated finite temperatures > 0", c.temperatures)
    need(all(a in AUGMENT_PRESETS for a in c.augment_presets) and len(c.augment_presets) > 0,
         "augment_presets", f"comma-separated values from {', '.join(AUGMENT_PRESETS)}",
         c.augment_presets)
    need(c.experiment in ("",) + EXPERIMENTS, "experiment", f"allowed: {', '.join(EXPERIMENTS)}",
         c.experiment)
    need(c.shape in SHAPES, "shape", f"allowed: {', '.join(SHAPES)}", c.shape)
    need(finite(c.val_fraction) and 0 < c.val_fraction < 1, "val_fraction",
         "must be in the open interval (0, 1)", c.val_fraction)
    need(positive_int(c.mask_size), "mask_size", "must be a positive integer", c.mask_size)
    need(isinstance(c.crop_size, int) and 0 < c.crop_size <= c.mask_size, "crop_size",
         f"must be an integer in [1, mask_size={c.mask_size}]", c.crop_size)


def locked_differences(old: dict[str, Any], new: Config) -> list[tuple[str, Any, Any]]:
    """The locked settings whose values differ between a saved config and `new`."""
    new_d = new.to_json()
    out = []
    for key in LOCKED:
        if key in old and json.dumps(old[key]) != json.dumps(new_d.get(key)):
            out.append((key, old[key], new_d.get(key)))
    return out
