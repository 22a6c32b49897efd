"""The record every dataset builder returns (DESIGN §1)."""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A generated dataset.

    images: float32 [N, H, W, C] in [0, 1].
    labels: factor name -> int64 [N] (`level_0`..`level_{L-1}`, or every
      varying factor of dsprites_mod / factors, with `position` = x * count_y + y
      when both x and y vary).
    train_idx / val_idx: the SimCLR training split (hierarchy: App. A.1;
      dsprites_mod trains on every image, val_idx is empty).
    decoding_splits: dsprites_mod and factors: decoded factor -> (train_idx,
      val_idx) for the linear decoders (DESIGN §1.2, §1.3); x and y together
      are decoded as `position`.
    masks: hierarchy only: tuple over levels of float32 [N_l, m, m].
    params: the parameters it was made with (JSON-serialisable).
    random_bits: uint8 [N, k] of 0 and 1, the item's constant extra input
      channels (`--random_bits`, DESIGN §1.4); [N, 0] without them.
    """
    name: str
    images: np.ndarray
    labels: Mapping[str, np.ndarray]
    train_idx: np.ndarray
    val_idx: np.ndarray
    params: Mapping[str, Any]
    decoding_splits: Mapping[str, tuple] = dataclasses.field(default_factory=dict)
    masks: tuple = ()
    random_bits: np.ndarray | None = None

    def __post_init__(self):
        if self.random_bits is None:
            object.__setattr__(self, "random_bits", np.zeros((self.num_items, 0), np.uint8))

    @property
    def num_items(self) -> int:
        return int(self.images.shape[0])
