"""`--mode=train`: one SimCLR model in `--model_dir`; `reproduce` trains each
of its models with the same `train_one_model`.

`check` is the part of the checks that needs neither TensorFlow nor the data
(run through `modes.check`); `train_one_model` checks what needs the data
(the batch against the training items) and the strategy (the batch against
the replicas, the checkpoint to resume from), then writes.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys

from simclr_controlled import checkpoints, workdir
from simclr_controlled import config as config_lib
from simclr_controlled.config import Config
from simclr_controlled.errors import UsageError
from simclr_controlled.modes import common


def check(config: Config, flag: str = "model_dir") -> None:
    """The folder of one model to train (reads only; `flag` chose the folder)."""
    workdir.check_model_to_write(config, flag=flag)


def train_one_model(config: Config, eval_hook=None) -> int:
    """Trains one model; returns the exit status.

    0 when finished, 1 on a non-finite loss (the last good checkpoint is
    kept), 128 + the signal number when SIGINT/SIGTERM stopped it (a
    checkpoint was saved; the same command resumes). With `untrained`, the
    initialization is saved instead (`save_untrained_model`).
    """
    if config.untrained:
        save_untrained_model(config)
        return 0
    dataset = common.load_dataset(config)
    if config.train_batch_size > len(dataset.train_idx):
        raise UsageError(f"--train_batch_size: must be at most the {len(dataset.train_idx)} "
                         f"training items of this {config.dataset} dataset, got {config.train_batch_size}")
    from simclr_controlled import strategy as strategy_lib
    from simclr_controlled import train as train_lib
    strategy = strategy_lib.make_strategy(config.strategy, config.tpu)
    config_lib.check_replicas(config, strategy.num_replicas_in_sync)
    chief = strategy_lib.is_chief(strategy)
    # Reads every tensor of the checkpoint to resume from: a corrupt one is
    # named here, before anything is written (or skipped with --recover).
    resume_from, rebuild = checkpoints.resume_point(config.model_dir, config.recover)
    # The first writes (the run lock, then config.json): every check above passed.
    with workdir.run_lock(config.model_dir, reuse_held=True) if chief else contextlib.nullcontext():
        if chief:
            if rebuild:
                checkpoints.rebuild_state(config.model_dir, resume_from)
                print(f"warning: --recover: resuming from "
                      f"{os.path.basename(resume_from) if resume_from else 'step 0 (no intact checkpoint)'}; "
                      f"rebuilt {checkpoints.state_path(config.model_dir)}", file=sys.stderr)
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


def save_untrained_model(config: Config, log=print) -> None:
    """The `untrained` baseline (`--untrained`): the initialization every
    trained model of the seed starts from, saved as step 0 (kept when it exists)."""
    from simclr_controlled import train as train_lib
    dataset = common.load_dataset(config)
    workdir.lock_config(config, log)
    train_lib.save_initial(config, dataset)
