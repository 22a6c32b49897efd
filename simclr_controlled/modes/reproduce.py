"""`--mode=reproduce`: one paper experiment end to end: train every
model, probe each, analyze. Rerunning skips what is finished (a trained model
is not retrained; a probed checkpoint is not probed again) and resumes what is
not, from its latest checkpoint. `check` (through `modes.check`) checks every
model folder before TensorFlow starts and anything is written.

hierarchy: one LeNet per temperature in `--temperatures` (paper 0.1, 0.5,
1.0), same dataset and initialization (`--seed`). dsprites_mod: one model per
augmentation preset in `--augment_presets` plus `untrained` (the same
initialization, saved before any step).
"""
from __future__ import annotations

import dataclasses
import os
import time

from simclr_controlled import checkpoints, files
from simclr_controlled import config as config_lib
from simclr_controlled.config import Config
from simclr_controlled.errors import UsageError
from simclr_controlled.modes import analyze, train


def experiment_models(config: Config) -> dict[str, Config]:
    """name -> the Config of each model of the experiment."""
    base = dataclasses.replace(config, dataset=config.experiment, mode="train").with_dataset_defaults()
    root = config.experiment_dir
    if config.experiment == "hierarchy":
        return {f"temperature_{t:g}": dataclasses.replace(base, temperature=float(t),
                                                          model_dir=os.path.join(root, f"temperature_{t:g}"))
                for t in config.temperatures}
    models = {"untrained": dataclasses.replace(base, augment="none", model_dir=os.path.join(root, "untrained"))}
    for preset in config.augment_presets:
        models[preset] = dataclasses.replace(base, augment=preset, model_dir=os.path.join(root, preset))
    return models


def _probed_step(model_dir: str) -> int | None:
    """The step of the checkpoint `probe/results.json` describes (None: not probed).

    UsageError naming the file when it is corrupt."""
    path = os.path.join(model_dir, "probe", "results.json")
    if not os.path.exists(path):
        return None
    res = files.read_json(path)
    step = res.get("final", {}).get("step") if isinstance(res, dict) else None
    if not isinstance(step, int):
        raise UsageError(f"{path}: corrupt results (no final step); delete it to probe again")
    return step


def check(config: Config) -> None:
    """Every model of the experiment: its settings and its folder (reads only;
    `modes.check` has checked the flags and the experiment folder)."""
    for c in experiment_models(config).values():
        config_lib.validate(c)
        train.check(c, flag="experiment_dir")
        _probed_step(c.model_dir)  # a corrupt results file stops us before anything is written


def run(config: Config, log=print) -> int:
    from simclr_controlled.modes import probe  # imports TensorFlow
    models = experiment_models(config)
    files.atomic_write_json(os.path.join(config.experiment_dir, "experiment.json"),
                         {"experiment": config.experiment,
                          "models": {name: name for name in models},
                          "provenance": files.provenance()})
    t0 = time.perf_counter()
    for i, (name, c) in enumerate(models.items(), 1):
        elapsed = time.perf_counter() - t0
        log(f"[{i}/{len(models)}] {name} (experiment time so far {elapsed / 60:.1f} min)")
        if name == "untrained":
            train.save_untrained_model(c, log)
        else:
            status = train.train_one_model(c)
            if status:
                return status
        latest = checkpoints.step_of(checkpoints.listed(c.model_dir, "latest")[0])
        if _probed_step(c.model_dir) == latest:
            log(f"  {name}: already probed at step {latest}")
        else:
            probe.run(dataclasses.replace(c, mode="probe", checkpoints="latest"), log)
    log(f"all {len(models)} models trained and probed in {(time.perf_counter() - t0) / 60:.1f} min; analyzing")
    analyze.run(dataclasses.replace(config, mode="analyze"), log)
    return 0
