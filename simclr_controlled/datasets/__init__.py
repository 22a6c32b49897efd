"""The two controlled datasets (DESIGN §1) behind one entry, `get_dataset`."""
from __future__ import annotations

from simclr_controlled import names
from simclr_controlled.datasets.record import Dataset  # noqa: F401 (the package's record type)
from simclr_controlled.errors import UsageError

DATASETS = names.DATASETS


def get_dataset(name: str, seed: int = 0, **params) -> Dataset:
    """Generates dataset `name` deterministically from `seed`.

    Raises UsageError (a ValueError) naming the parameter and allowed values.
    """
    if name == names.HIERARCHY:
        from simclr_controlled.datasets import hierarchy
        return hierarchy.make_dataset(seed=seed, **params)
    if name == names.DSPRITES_MOD:
        from simclr_controlled.datasets import dsprites_mod
        return dsprites_mod.make_dataset(seed=seed, **params)
    raise UsageError(f"dataset: unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
