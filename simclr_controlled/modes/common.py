"""What several modes share: the dataset of a config and its un-augmented inputs."""
from __future__ import annotations

import numpy as np

from simclr_controlled.config import Config
from simclr_controlled.datasets import Dataset, random_bits


def load_dataset(config: Config) -> Dataset:
    from simclr_controlled import datasets
    return datasets.get_dataset(config.dataset, seed=config.seed, **config.dataset_params())


def eval_images(config: Config, dataset: Dataset, idx: np.ndarray | None = None) -> np.ndarray:
    """Un-augmented model inputs of every item (or of the items `idx`): the
    center crop for the hierarchy, as-is otherwise, with the item's
    random-bit channels appended (DESIGN §1.4; a float32 copy [N, H, W, C + k]
    when k > 0)."""
    images, bits = dataset.images, dataset.random_bits
    if idx is not None:
        images, bits = images[idx], bits[idx]
    if config.dataset == "hierarchy":
        m, c = config.mask_size, config.crop_size
        o = (m - c) // 2
        images = images[:, o:o + c, o:o + c, :]
    return random_bits.append(images, bits)
