"""`--mode=reproduce`: one paper experiment end to end, over one seed or
several (`--seeds`): train every model of every replicate, probe each,
analyze (per seed and pooled). Rerunning skips what is finished (a trained
model is not retrained, nor one whose results were kept without its
checkpoints; a probed checkpoint is not probed again) and
resumes what is not, from its latest checkpoint, so an interrupted
five-seed run continues where it stopped. `check` (through `modes.check`)
checks every model folder of every seed before TensorFlow starts and
anything is written. Layout: `modes.experiment`.

hierarchy: one LeNet per temperature in `--temperatures` (paper 0.1, 0.5,
1.0), same dataset and initialization (the replicate's seed). dsprites_mod:
one model per augmentation preset in `--augment_presets` plus `untrained`
(the same initialization, saved before any step).
"""
from __future__ import annotations

import dataclasses
import os
import time

from simclr_controlled import checkpoints, files
from simclr_controlled import config as config_lib
from simclr_controlled.config import Config
from simclr_controlled.errors import UsageError
from simclr_controlled.modes import analyze, experiment, train


def experiment_models(config: Config) -> dict[str, Config]:
    """name -> the Config of each model of a one-seed experiment."""
    return experiment.models(config)


def probed_step(model_dir: str, mlp_probe: bool = False) -> int | None:
    """The step of the checkpoint `probe/results.json` describes (None: not
    probed, or probed without the MLP decoders that `mlp_probe` asks for).

    UsageError naming the file when it is corrupt."""
    path = os.path.join(model_dir, "probe", "results.json")
    if not os.path.exists(path):
        return None
    res = files.read_json(path)
    final = res.get("final", {}) if isinstance(res, dict) else {}
    step = final.get("step") if isinstance(final, dict) else None
    if not isinstance(step, int):
        raise UsageError(f"{path}: corrupt results (no final step); delete it to probe again")
    if mlp_probe and "decodability" in final and "mlp_decodability" not in final:
        return None
    return step


def check(config: Config) -> None:
    """Every model of every replicate: its settings and its folder (reads
    only; `modes.check` has checked the flags and the experiment folder)."""
    experiment.check_layout(config)
    for rep in experiment.replicates(config).values():
        if config.seeds:
            experiment.check_layout(rep)
        for c in experiment.models(rep).values():
            config_lib.validate(c)
            train.check(c, flag="experiment_dir")
            probed_step(c.model_dir)  # a corrupt results file stops us before anything is written


def kept_without_weights(c: Config) -> int | None:
    """The final step of a model kept as results only (its `ckpt/` removed,
    e.g. a replicate copied from another machine), probed at the end of its
    training; None otherwise (such a model is trained again)."""
    step = probed_step(c.model_dir, c.mlp_probe)
    if c.untrained or step is None or checkpoints.read_state(c.model_dir) is not None:
        return None
    from simclr_controlled import train as train_lib  # imports TensorFlow
    from simclr_controlled.modes import common
    return step if step >= train_lib.total_steps(c, common.load_dataset(c)) else None


def _train_and_probe(name: str, c: Config, log) -> int:
    from simclr_controlled.modes import probe  # imports TensorFlow
    if (step := kept_without_weights(c)) is not None:
        log(f"  {name}: results kept without checkpoints (probed at the final step {step}); not retrained")
        return 0
    if c.untrained:
        train.save_untrained_model(c, log)
    else:
        status = train.train_one_model(c)
        if status:
            return status
    latest = checkpoints.step_of(checkpoints.listed(c.model_dir, "latest")[0])
    if probed_step(c.model_dir, c.mlp_probe) == latest:
        log(f"  {name}: already probed at step {latest}")
    else:
        probe.run(dataclasses.replace(c, mode="probe", checkpoints="latest"), log)
    return 0


def run(config: Config, log=print) -> int:
    if earlier := experiment.recorded_seeds(config):
        log(f"{config.experiment_dir} already records seed(s) {','.join(map(str, earlier))}: "
            "they are pooled with these, not rerun")
    experiment.write(config)
    reps = experiment.replicates(config)
    jobs = [(s, name, c) for s, rep in reps.items() for name, c in experiment.models(rep).items()]
    t0 = time.perf_counter()
    for i, (s, name, c) in enumerate(jobs, 1):
        elapsed = time.perf_counter() - t0
        where = f"seed {s}, {name}" if config.seeds else name
        log(f"[{i}/{len(jobs)}] {where} (experiment time so far {elapsed / 60:.1f} min)")
        status = _train_and_probe(name, c, log)
        if status:
            return status
    log(f"all {len(jobs)} models trained and probed in {(time.perf_counter() - t0) / 60:.1f} min; analyzing")
    analyze.run(dataclasses.replace(config, mode="analyze"), log)
    if not config.seeds:
        log(f"this is one replicate (seed {config.seed}); for verdicts over seeds run the same "
            "command with --seeds=0,1,2,3,4 and another --experiment_dir")
    return 0
