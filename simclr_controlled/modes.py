"""What each `--mode` of run.py does, given the parsed `Config`.

Every check of the input happens before the first file is written, so bad
input leaves the disk as it was (issue 7). `check` runs the checks that need
neither TensorFlow nor the data, so run.py can reject most bad input before
TF starts; each mode repeats them and adds the ones that need the data or the
tf.distribute strategy, and writes only after all of them.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys

from simclr_controlled import config as config_lib
from simclr_controlled import checkpoints, files, workdir
from simclr_controlled.config import Config
from simclr_controlled.errors import UsageError

NEEDS_TENSORFLOW = ("train", "probe", "reproduce")


def load_dataset(config: Config):
    from simclr_controlled import datasets
    return datasets.get_dataset(config.dataset, seed=config.seed, **config.dataset_params())


def _check_model_to_read(model_dir: str) -> None:
    """probe: a folder made by --mode=train, with its config and a checkpoint."""
    if not model_dir:
        raise UsageError("--model_dir: required for --mode=probe (a folder made by --mode=train)")
    if not os.path.isdir(model_dir):
        what = "is a file, not a folder" if os.path.exists(model_dir) else "does not exist"
        raise UsageError(f"--model_dir: {model_dir} {what}; give a folder made by --mode=train")
    if workdir.saved_config(model_dir) is None:
        raise UsageError(f"--model_dir: {model_dir} has no config.json (not made by --mode=train)")
    if checkpoints.latest_listed(model_dir) is None:
        raise UsageError(f"--model_dir: {model_dir} has no checkpoint in "
                         f"{os.path.join(model_dir, 'ckpt')}; train it first")


def _check_experiment_to_read(experiment_dir: str) -> None:
    """analyze: a folder made by --mode=reproduce (analyze.run checks the rest)."""
    if not experiment_dir:
        raise UsageError("--experiment_dir: required for --mode=analyze "
                         "(a folder made by --mode=reproduce)")
    if not os.path.isdir(experiment_dir):
        what = "is a file, not a folder" if os.path.exists(experiment_dir) else "does not exist"
        raise UsageError(f"--experiment_dir: {experiment_dir} {what}; "
                         "give a folder made by --mode=reproduce")
    files.read_json(os.path.join(experiment_dir, "experiment.json"))


def check(config: Config) -> None:
    """The checks of `config` that import neither TensorFlow nor make the data.

    Reads only. Raises UsageError naming the flag or file.
    """
    config_lib.validate(config)
    if config.mode in ("show", "train"):
        workdir.check_output_dir(config.model_dir)
    if config.mode == "train":
        workdir.check_lock(config)
        workdir.check_resume_files(config.model_dir)
        checkpoints.check_resumable(config.model_dir, config.recover)
    elif config.mode == "probe":
        _check_model_to_read(config.model_dir)
    elif config.mode == "analyze":
        _check_experiment_to_read(config.experiment_dir)
    elif config.mode == "reproduce":
        if not config.experiment:
            raise UsageError("--experiment: required for --mode=reproduce; allowed: "
                             f"{', '.join(config_lib.EXPERIMENTS)}")
        workdir.check_output_dir(config.experiment_dir, "experiment_dir")


def show(config: Config) -> int:
    from simclr_controlled import show as show_lib
    workdir.check_output_dir(config.model_dir)
    dataset = load_dataset(config)
    path = os.path.join(config.model_dir, f"samples_{config.dataset}.png")
    show_lib.save_samples(dataset, path)
    print(f"wrote {path}")
    return 0


def train(config: Config, eval_hook=None) -> int:
    """Trains one model; returns the exit status.

    0 when finished, 1 on a non-finite loss (the last good checkpoint is
    kept), 128 + the signal number when SIGINT/SIGTERM stopped it (a
    checkpoint was saved; the same command resumes).
    """
    workdir.check_output_dir(config.model_dir)
    workdir.check_lock(config)
    workdir.check_resume_files(config.model_dir)
    checkpoints.check_resumable(config.model_dir, config.recover)
    dataset = load_dataset(config)
    if config.train_batch_size > len(dataset.train_idx):
        raise UsageError(f"--train_batch_size: must be at most the {len(dataset.train_idx)} "
                         f"training items of this {config.dataset} dataset, got {config.train_batch_size}")
    from simclr_controlled import strategy as strategy_lib
    from simclr_controlled import train as train_lib
    strategy = strategy_lib.make_strategy(config.strategy, config.tpu)
    config_lib.validate(config, strategy.num_replicas_in_sync)
    chief = strategy_lib.is_chief(strategy)
    # Reads every tensor of the checkpoint to resume from: a corrupt one is
    # named here, before anything is written (or skipped with --recover).
    state_before = checkpoints.latest_listed(config.model_dir) if not config.recover else None
    resume_from = checkpoints.resume_point(config.model_dir, config.recover)
    # The first writes (the run lock, then config.json): every check above passed.
    with workdir.run_lock(config.model_dir, reuse_held=True) if chief else contextlib.nullcontext():
        if chief:
            if config.recover and resume_from != _listed_or_none(config.model_dir):
                checkpoints.rebuild_state(config.model_dir, resume_from)
                print(f"warning: --recover: resuming from "
                      f"{os.path.basename(resume_from) if resume_from else 'step 0 (no intact checkpoint)'}; "
                      f"rebuilt {checkpoints.state_path(config.model_dir)}", file=sys.stderr)
            assert config.recover or resume_from == state_before
            workdir.lock_config(config)
        if eval_hook is None and config.dataset == "hierarchy" and config.eval_every_epochs:
            from simclr_controlled.probes import hierarchy_stats
            eval_hook = hierarchy_stats.make_eval_hook(config, dataset)
        try:
            train_lib.train(config, dataset, strategy=strategy, eval_hook=eval_hook)
        except train_lib.NonFiniteLoss as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        except train_lib.Interrupted as e:
            print(str(e), file=sys.stderr)
            return 128 + int(e.signum or signal.SIGINT)
    return 0


def _listed_or_none(model_dir: str) -> str | None:
    try:
        return checkpoints.latest_listed(model_dir)
    except checkpoints.CorruptState:
        return None


def run(config: Config) -> int:
    check(config)
    if config.mode == "show":
        return show(config)
    if config.mode == "train":
        return train(config)
    if config.mode == "probe":
        from simclr_controlled import probe
        probe.run(config)
        return 0
    if config.mode == "analyze":
        from simclr_controlled import analyze
        analyze.run(config)
        return 0
    from simclr_controlled import reproduce
    return reproduce.run(config)
