"""The frozen run configuration.

`run.py` parses the absl flags once into a `Config`; every other module takes
the `Config` (or plain arguments) and never reads flags itself.

Defaults that depend on the dataset (DESIGN §3.4) are filled in
by `with_dataset_defaults`: a field left at `None` takes the paper's value for
the chosen dataset.
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from simclr_controlled import data_spec, fits, names
from simclr_controlled.errors import UsageError

# The allowed values come from `names` (no TensorFlow), so `validate` runs
# before TensorFlow starts: bad input fails in a fraction of a second, before
# TF's start-up messages. Old names kept as aliases.
MODES = names.MODES
STRATEGIES = names.STRATEGIES
AUTO_ON_OFF = names.AUTO_ON_OFF
EXPERIMENTS = names.EXPERIMENTS
MODEL_NAMES = names.MODELS
AUGMENT_PRESETS = names.AUGMENT_PRESETS
SHAPES = names.SHAPES
MAX_SEED = 2**31 - 1
MIN_TRAIN_BATCH_SIZE = fits.MIN_TRAIN_BATCH_SIZE
# Caps on counts, far above any real run, so that a typo fails at once and
# every derived int64 stays small: steps <= MAX_EPOCHS x (MAX_ITEMS = 1e6
# hierarchy items / 2 per batch) = 5e11 and the tf.data index range
# (steps x replicas) stay far below 2**63 ~ 9.2e18.
MAX_EPOCHS = 1_000_000  # --train_epochs, --checkpoint_epochs, --eval_every_epochs
MAX_TRAIN_STEPS = 1_000_000_000  # --train_steps
MAX_STEPS_PER_LOOP = 1_000_000  # --steps_per_loop
MAX_KEEP_CHECKPOINTS = 10_000  # --keep_checkpoint_max
# --decoder_epochs: the probe draws its minibatch order up front, an int32
# [epochs, items] array (500 x 15360 x 4 bytes = 31 MB at the paper's values);
# 10,000 epochs (20 x the paper's) keeps it at 0.6 GB for dSprites.
MAX_DECODER_EPOCHS = 10_000
# Modes whose command-line settings build and train a model here (the memory
# and minimum-input checks judge only these; probe reads the model's settings
# from its config.json, show and analyze build none).
MODEL_MODES = ("train", "reproduce", "plan")
# Modes that lay out a whole experiment (`--experiment`, `--seeds`).
EXPERIMENT_MODES = ("reproduce", "plan")
DATA_MODES = ("show",) + MODEL_MODES  # modes that make the data from these flags (its memory check)

# Paper settings (DESIGN §3.4; paper Sec. 2, App. A.1, A.2).
PAPER_DEFAULTS = {
    names.HIERARCHY: dict(model=names.LENET, augment=names.CROP, temperature=0.5,
                          train_batch_size=256, train_epochs=100, learning_rate=1e-3),
    names.DSPRITES_MOD: dict(model=names.RESNET18, augment="crop_jitter", temperature=0.5,
                             train_batch_size=128, train_epochs=200, learning_rate=1e-3),
}
PAPER_DEFAULTS[names.FACTORS] = PAPER_DEFAULTS[names.DSPRITES_MOD]  # its paper configuration

# Settings that change the data or the model: a `model_dir` made with one
# value refuses another.
LOCKED = ("dataset", "seed", "branching", "mask_size", "crop_size", "val_fraction",
          "shape", "factors", "max_items", "random_bits", "model", "width_multiplier",
          "head_widths", "resnet_stem", "augment", "color_jitter_strength", "flip", "temperature",
          "train_batch_size", "learning_rate", "weight_decay", "mixed_precision")


@dataclasses.dataclass(frozen=True)
class Config:
    """Every setting of a run. See README "Modes and flags"."""
    mode: str = "train"
    dataset: str = "hierarchy"
    model_dir: str = ""
    seed: int = 0
    # Dataset (DESIGN §1).
    branching: tuple = (10, 10, 10, 10)
    mask_size: int = 38
    crop_size: int = 28
    val_fraction: float = 0.1
    shape: str = "square"
    factors: str = names.DSPRITES_MOD_FACTORS  # DESIGN §1.3
    max_items: int = 0
    random_bits: int = 0  # DESIGN §1.4
    # Model (DESIGN §3.1).
    model: str | None = None
    width_multiplier: float = 1.0
    head_widths: tuple | None = None
    resnet_stem: str = "cifar"
    # Augmentation (DESIGN §2).
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
    recover: bool = False
    untrained: bool = False
    # Probes and experiments (DESIGN §4, §5).
    checkpoints: str = "latest"
    decoder_epochs: int = 500
    experiment_dir: str = ""
    experiment: str = ""
    temperatures: tuple = (0.1, 0.5, 1.0)
    augment_presets: tuple = names.AUGMENT_PRESETS
    bit_counts: tuple = (0, 5, 10, 15, 20)  # feature_suppression (DESIGN §5.2)
    seeds: tuple = ()
    mlp_probe: bool = False  # probe: the MLP decoders too (DESIGN §4.5)

    def with_dataset_defaults(self) -> "Config":
        """Fills every `None` field with the paper's value for `dataset`."""
        message = choice_error("dataset", self.dataset)
        if message:
            raise UsageError(message)
        fill = {k: v for k, v in PAPER_DEFAULTS[self.dataset].items()
                if getattr(self, k) is None}
        return dataclasses.replace(self, **fill)

    def dataset_params(self) -> dict[str, Any]:
        """Keyword arguments of `datasets.get_dataset` for this run."""
        if self.dataset == names.HIERARCHY:
            params = dict(branching=tuple(self.branching), mask_size=self.mask_size,
                          crop_size=self.crop_size, val_fraction=self.val_fraction)
        elif self.dataset == names.FACTORS:
            params = dict(factors=self.factors, max_items=self.max_items, shape=self.shape)
        else:  # dsprites_mod: a subset of its cross only when asked (quick runs, tests)
            params = dict(shape=self.shape, **({"max_items": self.max_items} if self.max_items else {}))
        return dict(params, random_bits=self.random_bits)

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


def choice_error(flag: str, value: Any, dataset: str = names.HIERARCHY) -> str | None:
    """The one line for `value` of fixed-choice `flag` outside its choices; None if allowed.

    The choices are `names.FLAG_CHOICES[flag]`; `--augment`'s are those of
    `dataset`. run.py's `flag_error` prints the same line when absl refuses a
    value of the flag's enum, so a bad value reads the same whichever refuses it.
    """
    if flag == "augment":
        allowed = names.AUGMENTATIONS_BY_DATASET.get(dataset, names.AUGMENTATIONS)
        if value in allowed:
            return None
        return f"--augment: allowed for --dataset={dataset}: {', '.join(allowed)}, got {value!r}"
    allowed = names.FLAG_CHOICES[flag]
    if value in allowed or (value == "" and flag in names.MAY_BE_EMPTY):
        return None
    if flag in ("mode", "dataset", "preset"):
        return f"--{flag}: unknown {flag} {value!r}; allowed: {', '.join(allowed)}"
    return f"--{flag}: allowed: {', '.join(allowed)}, got {value!r}"


def check_replicas(config: Config, num_replicas: int) -> None:
    """The global batch splits evenly over the strategy's replicas (known once
    TensorFlow has made the strategy; `validate` judges one replica)."""
    if config.train_batch_size % max(num_replicas, 1):
        raise UsageError(f"--train_batch_size: must be divisible by the number of replicas "
                         f"({num_replicas}), got {config.train_batch_size!r}")


def validate(config: Config, num_replicas: int = 1, memory_bytes: int | None = None) -> None:
    """Checks the settings that do not need the data; UsageError names the flag.

    Imports nothing heavy (no TensorFlow), so run.py can call it first. For
    the modes that train (MODEL_MODES) it also refuses an input smaller than
    the model accepts (`--crop_size`) and a model whose training step needs
    more than `memory_bytes` (default: this machine's physical memory; see
    `check_model_fits`).
    """
    c = config

    def need(ok: bool, flag: str, allowed: str, value: Any) -> None:
        if not ok:
            raise UsageError(f"--{flag}: {allowed}, got {value!r}")

    def finite(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

    def positive_int(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool) and x > 0

    def choice(flag: str) -> None:
        message = choice_error(flag, getattr(c, flag), c.dataset)
        if message:
            raise UsageError(message)

    # The fixed-choice flags are absl enums in run.py, so only a Config made
    # in code (or read from a config.json) gets here with a value outside
    # them; `--augment` within the enum but of the other dataset gets here too.
    for flag in ("mode", "dataset", "model", "augment", "strategy", "jit_compile", "mixed_precision"):
        choice(flag)
    need(isinstance(c.seed, int) and 0 <= c.seed <= MAX_SEED, "seed",
         f"must be an integer in [0, {MAX_SEED}]", c.seed)
    need(finite(c.temperature) and c.temperature > 0, "temperature", "must be a finite number > 0",
         c.temperature)
    need(positive_int(c.train_batch_size), "train_batch_size", "must be a positive integer",
         c.train_batch_size)
    need(c.train_batch_size >= MIN_TRAIN_BATCH_SIZE, "train_batch_size",
         f"must be at least {MIN_TRAIN_BATCH_SIZE} (NT-Xent contrasts each item with the other "
         "items of the batch; one item has no negatives)", c.train_batch_size)
    check_replicas(c, num_replicas)
    need(positive_int(c.train_epochs), "train_epochs", "must be a positive integer", c.train_epochs)
    need(c.train_epochs <= MAX_EPOCHS, "train_epochs", f"allowed: 1 to {MAX_EPOCHS:,}", c.train_epochs)
    need(c.train_steps >= 0, "train_steps", "must be >= 0 (0: use train_epochs)", c.train_steps)
    need(c.train_steps <= MAX_TRAIN_STEPS, "train_steps",
         f"allowed: 0 (use train_epochs) to {MAX_TRAIN_STEPS:,}", c.train_steps)
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
    need(c.checkpoint_epochs <= MAX_EPOCHS, "checkpoint_epochs", f"allowed: 1 to {MAX_EPOCHS:,}",
         c.checkpoint_epochs)
    need(positive_int(c.keep_checkpoint_max), "keep_checkpoint_max", "must be a positive integer",
         c.keep_checkpoint_max)
    need(c.keep_checkpoint_max <= MAX_KEEP_CHECKPOINTS, "keep_checkpoint_max",
         f"allowed: 1 to {MAX_KEEP_CHECKPOINTS:,}", c.keep_checkpoint_max)
    need(c.eval_every_epochs >= 0, "eval_every_epochs", "must be >= 0 (0: off)", c.eval_every_epochs)
    need(c.eval_every_epochs <= MAX_EPOCHS, "eval_every_epochs",
         f"allowed: 0 (off) to {MAX_EPOCHS:,}", c.eval_every_epochs)
    need(c.steps_per_loop >= 0, "steps_per_loop", "must be >= 0 (0: automatic)", c.steps_per_loop)
    need(c.steps_per_loop <= MAX_STEPS_PER_LOOP, "steps_per_loop",
         f"allowed: 0 (automatic) to {MAX_STEPS_PER_LOOP:,}", c.steps_per_loop)
    need(c.head_widths is None or (len(c.head_widths) == 3 and all(w > 0 for w in c.head_widths)),
         "head_widths", "three comma-separated positive integers", c.head_widths)
    choice("resnet_stem")
    choice("checkpoints")
    need(positive_int(c.decoder_epochs), "decoder_epochs", "must be a positive integer",
         c.decoder_epochs)
    need(c.decoder_epochs <= MAX_DECODER_EPOCHS, "decoder_epochs",
         f"allowed: 1 to {MAX_DECODER_EPOCHS:,}", c.decoder_epochs)
    need(len(c.temperatures) > 0 and all(finite(t) and t > 0 for t in c.temperatures), "temperatures",
         "comma-separated finite temperatures > 0", c.temperatures)
    need(all(a in AUGMENT_PRESETS for a in c.augment_presets) and len(c.augment_presets) > 0,
         "augment_presets", f"comma-separated values from {', '.join(AUGMENT_PRESETS)}",
         c.augment_presets)
    choice("experiment")
    need(len(c.bit_counts) > 0 and len(set(c.bit_counts)) == len(c.bit_counts)
         and all(isinstance(k, int) and 0 <= k <= data_spec.MAX_RANDOM_BITS for k in c.bit_counts),
         "bit_counts", f"comma-separated distinct integers in [0, {data_spec.MAX_RANDOM_BITS}]",
         ",".join(map(str, c.bit_counts)))
    need(all(isinstance(s, int) and 0 <= s <= MAX_SEED for s in c.seeds)
         and len(set(c.seeds)) == len(c.seeds), "seeds",
         f"comma-separated distinct integers in [0, {MAX_SEED}]", ",".join(map(str, c.seeds)))
    choice("shape")
    need(finite(c.val_fraction) and 0 < c.val_fraction < 1, "val_fraction",
         "must be in the open interval (0, 1)", c.val_fraction)
    need(positive_int(c.mask_size), "mask_size", "must be a positive integer", c.mask_size)
    need(isinstance(c.crop_size, int) and 0 < c.crop_size <= c.mask_size, "crop_size",
         f"must be an integer in [1, mask_size={c.mask_size}]", c.crop_size)
    need(not (c.mlp_probe and c.mode in EXPERIMENT_MODES and c.experiment == names.HIERARCHY),
         "mlp_probe", "decodes sprite factors (--experiment=dsprites_mod or feature_suppression); "
         "the hierarchy probe has no decoders", c.mlp_probe)
    # --factors, --max_items, --random_bits, and the data's memory where these flags make it.
    data_spec.check(c, memory_bytes if c.mode in DATA_MODES else 0)
    if c.mode in MODEL_MODES:
        trained = c
        if c.mode in EXPERIMENT_MODES:
            if c.experiment not in EXPERIMENTS:
                return  # modes.check asks for --experiment
            # The settings reproduce.experiment_models trains with.
            trained = dataclasses.replace(c, dataset=names.experiment_dataset(c.experiment, c.dataset),
                                          mode="train", random_bits=max(c.bit_counts, default=0)
                                          if c.experiment == names.FEATURE_SUPPRESSION else c.random_bits)
        check_model_fits(trained, memory_bytes)


def check_model_fits(config: Config, memory_bytes: int | None = None) -> None:
    """`fits.check_model_fits` with the defaults a refusal may reset to (the
    paper's batch, the default widths and crop)."""
    resets = {"width_multiplier": 1.0, "head_widths": None,
              "train_batch_size": PAPER_DEFAULTS[config.dataset]["train_batch_size"]}
    if config.dataset == names.HIERARCHY:
        resets["crop_size"] = Config.crop_size
    fits.check_model_fits(config, resets, memory_bytes)


def locked_differences(old: dict[str, Any], new: Config) -> list[tuple[str, Any, Any]]:
    """The locked settings whose values differ between a saved config and `new`."""
    new_d = new.to_json()
    out = []
    for key in LOCKED:
        if key in old and json.dumps(old[key]) != json.dumps(new_d.get(key)):
            out.append((key, old[key], new_d.get(key)))
    return out
