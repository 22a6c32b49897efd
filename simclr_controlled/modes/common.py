"""What several modes share: the dataset of a config and its un-augmented inputs."""
from __future__ import annotations

import numpy as np

from simclr_controlled.config import Config
from simclr_controlled.datasets import Dataset


def load_dataset(config: Config) -> Dataset:
    from simclr_controlled import datasets
    return datasets.get_dataset(config.dataset, seed=config.seed, **config.dataset_params())


def eval_images(config: Config, dataset: Dataset) -> np.ndarray:
    """Un-augmented inputs: the center crop for the hierarchy, as-is otherwise."""
    if config.dataset != "hierarchy":
        return dataset.images
    m, c = config.mask_size, config.crop_size
    o = (m - c) // 2
    return dataset.images[:, o:o + c, o:o + c, :]
