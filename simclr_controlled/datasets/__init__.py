"""The controlled datasets (DESIGN §1) behind one entry, `get_dataset`."""
from __future__ import annotations

import dataclasses

from simclr_controlled import names
from simclr_controlled.datasets.record import Dataset  # noqa: F401 (the package's record type)
from simclr_controlled.errors import UsageError

DATASETS = names.DATASETS


def get_dataset(name: str, seed: int = 0, random_bits: int = 0, **params) -> Dataset:
    """Generates dataset `name` deterministically from `seed`, with `random_bits`
    bits per item (DESIGN §1.4; --random_bits, checked by config.validate, asserted).

    Raises UsageError (a ValueError) naming the parameter and allowed values.
    """
    assert isinstance(random_bits, int) and random_bits >= 0, \
        f"random_bits: must be an integer >= 0, got {random_bits!r}"
    if name == names.HIERARCHY:
        from simclr_controlled.datasets import hierarchy
        dataset = hierarchy.make_dataset(seed=seed, **params)
    elif name == names.DSPRITES_MOD:
        from simclr_controlled.datasets import dsprites_mod
        dataset = dsprites_mod.make_dataset(seed=seed, **params)
    elif name == names.FACTORS:
        from simclr_controlled.datasets import factors
        dataset = factors.make_dataset(seed=seed, **params)
    else:
        raise UsageError(f"dataset: unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
    return with_random_bits(dataset, seed, random_bits) if random_bits else dataset


def with_random_bits(dataset: Dataset, seed: int, k: int) -> Dataset:
    """`dataset` with k random bits per item drawn with `seed` (DESIGN §1.4;
    their own stream, so the images, labels and splits stay those of `dataset`)."""
    from simclr_controlled.datasets import random_bits as bits_lib
    return dataclasses.replace(dataset, random_bits=bits_lib.draw(seed, dataset.num_items, k),
                               params=dict(dataset.params, random_bits=k))
