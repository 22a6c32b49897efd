"""What each `--mode` of run.py does, given the parsed `Config`.

Every check of the input happens before the first file is written, so bad
input leaves the disk as it was, and each check runs once:

- `check(config)`, called once by run.py before TensorFlow starts and before
  the data is made: the settings (`config.validate`) and the folders (the
  checks in `workdir`). Reads only.
- `run(config)` then runs the mode, which checks only what needs the data or
  the tf.distribute strategy (and reads its input files, naming a corrupt
  one) before its first write.

The modes: `show`, `train` (`train.train_one_model`), `probe`, `analyze`,
`reproduce`, `plan`, one module each; `experiment` is the layout of an
experiment folder (one seed or several) that the last three share. Imports point one way: run.py -> modes ->
the library modules; no library module imports `modes`.
"""
from __future__ import annotations

from simclr_controlled import config as config_lib
from simclr_controlled import names, workdir
from simclr_controlled.config import Config
from simclr_controlled.errors import UsageError
from simclr_controlled.modes import analyze, plan, reproduce, show, train

NEEDS_TENSORFLOW = ("train", "probe", "reproduce")


def check(config: Config) -> None:
    """The checks of `config` that import neither TensorFlow nor make the data.

    Reads only. Raises UsageError naming the flag or file.
    """
    config_lib.validate(config)
    if config.seeds and config.mode not in config_lib.EXPERIMENT_MODES:
        raise UsageError(f"--seeds: only for --mode=reproduce or --mode=plan (one replicate per seed); "
                         f"--mode={config.mode} takes one --seed")
    if config.mode == "show":
        workdir.check_output_dir(config.model_dir)
    elif config.mode == "train":
        train.check(config)
    elif config.mode == "probe":
        workdir.check_model_to_read(config.model_dir)
        if config.mlp_probe and workdir.model_config(config.model_dir).dataset == names.HIERARCHY:
            raise UsageError(f"--mlp_probe: decodes the factors of dsprites_mod and factors models; "
                             f"{config.model_dir} is a hierarchy model, whose probe has no decoders")
    elif config.mode in ("analyze",) + config_lib.EXPERIMENT_MODES:
        writes = config.mode in config_lib.EXPERIMENT_MODES
        if writes and not config.experiment:
            raise UsageError(f"--experiment: required for --mode={config.mode}; allowed: "
                             f"{', '.join(config_lib.EXPERIMENTS)}")
        workdir.check_experiment_dir(config.experiment_dir, write=writes)
        if writes:
            reproduce.check(config)


def run(config: Config) -> int:
    """Runs the mode of `config` (already checked by `check`); returns the exit status."""
    if config.mode == "show":
        return show.run(config)
    if config.mode == "train":
        return train.train_one_model(config)
    if config.mode == "probe":
        from simclr_controlled.modes import probe  # imports TensorFlow
        probe.run(config)
        return 0
    if config.mode == "analyze":
        analyze.run(config)
        return 0
    if config.mode == "plan":
        return plan.run(config)
    return reproduce.run(config)
