"""`--mode=show`: writes `samples_<dataset>.png` (the sample grid of
`samples.py`) into `--model_dir` (checked by `modes.check`)."""
from __future__ import annotations

import os

from simclr_controlled import samples
from simclr_controlled.config import Config
from simclr_controlled.modes import common


def run(config: Config) -> int:
    dataset = common.load_dataset(config)
    path = os.path.join(config.model_dir, f"samples_{config.dataset}.png")
    samples.save_samples(dataset, path)
    print(f"wrote {path}")
    return 0
