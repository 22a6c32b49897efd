"""What each `--mode` of run.py does, given the parsed `Config`.

Every check of the input happens before the first file is written, so bad
input leaves the disk as it was.
"""
from __future__ import annotations

import os
import sys

from simclr_controlled import config as config_lib
from simclr_controlled import workdir
from simclr_controlled.config import Config
from simclr_controlled.errors import UsageError


def load_dataset(config: Config):
    from simclr_controlled import datasets
    return datasets.get_dataset(config.dataset, seed=config.seed, **config.dataset_params())


def show(config: Config) -> int:
    from simclr_controlled import show as show_lib
    workdir.check_output_dir(config.model_dir)
    dataset = load_dataset(config)
    path = os.path.join(config.model_dir, f"samples_{config.dataset}.png")
    show_lib.save_samples(dataset, path)
    print(f"wrote {path}")
    return 0


def train(config: Config, eval_hook=None) -> int:
    """Trains one model; returns the exit status (0, or 128+signal when stopped)."""
    from simclr_controlled import strategy as strategy_lib
    from simclr_controlled import train as train_lib
    workdir.check_output_dir(config.model_dir)
    dataset = load_dataset(config)
    if config.train_batch_size > len(dataset.train_idx):
        raise UsageError(f"--train_batch_size: {config.train_batch_size} is larger than the "
                         f"{len(dataset.train_idx)} training items of {config.dataset}")
    strategy = strategy_lib.make_strategy(config.strategy, config.tpu)
    config_lib.validate(config, strategy.num_replicas_in_sync)
    if strategy_lib.is_chief(strategy):
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
        return 130
    return 0


def run(config: Config) -> int:
    config_lib.validate(config)
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
