"""Every name shared between modules, defined once.

The modes, strategies, datasets and experiments, models, augmentation presets,
shapes, layer taps and dSprites factors that run.py's flags, `config.validate`,
the libraries (models, augment, datasets, probes) and the figures agree on.
Plain tuples of strings: importing this module imports nothing else (no
TensorFlow, no NumPy), so run.py's flags and `config.validate` can use it
before TensorFlow starts. Modules that used to keep a copy keep its old name
as an alias of the tuple here (`models.TAPS`, `augment.PRESETS`,
`config.MODEL_NAMES`, ...).
"""
from __future__ import annotations

# --mode.
MODES = ("show", "train", "probe", "analyze", "reproduce", "plan")

# --dataset; --experiment (one experiment per paper dataset, named after it).
HIERARCHY = "hierarchy"
DSPRITES_MOD = "dsprites_mod"
FACTORS = "factors"  # the factor datasets (DESIGN §1.3); dsprites_mod is their paper configuration
DATASETS = (HIERARCHY, DSPRITES_MOD, FACTORS)
# The feature-suppression experiment (DESIGN §5.2): a factors cross with
# --random_bits at each --bit_counts and --temperatures.
FEATURE_SUPPRESSION = "feature_suppression"
EXPERIMENTS = (HIERARCHY, DSPRITES_MOD, FEATURE_SUPPRESSION)
# The dataset each experiment's models train on.
EXPERIMENT_DATASETS = {HIERARCHY: HIERARCHY, DSPRITES_MOD: DSPRITES_MOD, FEATURE_SUPPRESSION: FACTORS}
# The other datasets an experiment trains on when --dataset names one (DESIGN §5):
# the augmentation experiment on any factors cross.
EXPERIMENT_OTHER_DATASETS = {DSPRITES_MOD: (FACTORS,)}


def experiment_dataset(experiment: str, dataset: str | None) -> str:
    """The dataset `experiment`'s models train on: `dataset` where the
    experiment allows it (EXPERIMENT_OTHER_DATASETS), else its own."""
    if dataset in EXPERIMENT_OTHER_DATASETS.get(experiment, ()):
        return dataset
    return EXPERIMENT_DATASETS[experiment]


# --model.
LENET = "lenet"
RESNET18 = "resnet18"
MODELS = (LENET, RESNET18)
# --resnet_stem: cifar (the paper's 3x3 stride-1 stem) or imagenet (7x7 stride 2 + max-pool).
RESNET_STEMS = ("cifar", "imagenet")

# --augment: the hierarchy's crop (no resize) and the four dSprites presets
# (DESIGN §2.4), which are also --augment_presets' values.
CROP = "crop"
AUGMENT_PRESETS = ("none", "color_jitter", "random_crop", "crop_jitter")
AUGMENTATIONS = AUGMENT_PRESETS + (CROP,)
AUGMENTATIONS_BY_DATASET = {HIERARCHY: (CROP,), DSPRITES_MOD: AUGMENT_PRESETS, FACTORS: AUGMENT_PRESETS}

# --shape (dsprites_mod and factors sprites; also the values of the `shape` factor, in order).
SHAPES = ("square", "ellipse", "heart")

# --factors (DESIGN §1.3): the factors a factor dataset may vary, in item order
# (dSprites' order; the last listed varies fastest), and dsprites_mod's cross.
FACTOR_NAMES = ("color", "shape", "scale", "orientation", "x", "y")
DSPRITES_MOD_FACTORS = "color:10,scale:6,x:16,y:16"
# The factor the decoders read for x and y together (x * count_y + y).
POSITION = "position"

# Hardware: --strategy, --jit_compile, --mixed_precision.
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")
AUTO_ON_OFF = ("auto", "on", "off")
MIXED_PRECISIONS = ("auto", "off", "bfloat16")

# --checkpoints (probe: the latest checkpoint or every saved one).
CHECKPOINTS = ("latest", "all")

# --preset (reproduce: loads flags/<experiment>_<preset>.cfg).
PRESETS = ("cpu", "paper")

# The layer taps every model returns, backbone output first: the head's input,
# its two hidden layers (after their ReLU) and its output projection.
TAPS = ("head_input", "head_1", "head_2", "head_out")
HEAD_LAYERS = TAPS[1:]  # the three dense layers of the projection head

# dSprites: the factors the linear decoders read (Fig. 3; `position` is
# x * 16 + y) and the per-image labels the PCA figure colours by (Fig. 4).
DSPRITES_FACTORS = ("color", "scale", "position")
DSPRITES_PCA_FACTORS = ("color", "scale", "x", "y")
# The random bits (--random_bits) as the probes decode them: each bit a
# two-class factor on a seeded item split (DESIGN §4.3).
BITS = "bits"

# The models of the dSprites experiment (Fig. 3): the untrained initialisation,
# then one per augmentation preset.
UNTRAINED = "untrained"
DSPRITES_MODELS = (UNTRAINED,) + AUGMENT_PRESETS

# The fixed-choice flags of run.py (absl enums) and their allowed values.
# `--augment`'s values also depend on `--dataset` (AUGMENTATIONS_BY_DATASET;
# `config.validate` checks that); `--experiment` and `--preset` may be empty
# (not given).
FLAG_CHOICES = {
    "mode": MODES,
    "dataset": DATASETS,
    "model": MODELS,
    "resnet_stem": RESNET_STEMS,
    "augment": AUGMENTATIONS,
    "shape": SHAPES,
    "strategy": STRATEGIES,
    "jit_compile": AUTO_ON_OFF,
    "mixed_precision": MIXED_PRECISIONS,
    "checkpoints": CHECKPOINTS,
    "experiment": EXPERIMENTS,
    "preset": PRESETS,
}
MAY_BE_EMPTY = ("experiment", "preset")
