"""Random bits, an easy feature (DESIGN §1.4): `--random_bits=k` extra input
channels, each constant 0 or 1 over the whole image of an item.

The RandBits construction of Chen, Luo & Li (2021), "Intriguing properties of
contrastive losses": bits that the two views of an item share and no
augmentation touches, so they alone can solve the contrastive task. Their
bits are a hash of the image; here they are drawn per item with the seed,
`default_rng([seed, _BITS_STREAM]).integers(0, 2, [N, k])`, independent of
the dataset's other draws (so the dataset is the same with and without
bits). They are stored in `Dataset.random_bits` (uint8 [N, k]) so probes can
decode them, appended after augmentation in the training pipeline
(`input_pipeline`) and to the un-augmented evaluation images
(`modes/common.eval_images`): the model's input has C + k channels.
"""
from __future__ import annotations

import numpy as np

# Second SeedSequence word of the bits' stream (ASCII "bits").
_BITS_STREAM = 0x62697473


def draw(seed: int, num_items: int, k: int) -> np.ndarray:
    """uint8 [num_items, k] of 0 and 1, a pure function of (seed, num_items, k)."""
    rng = np.random.default_rng([int(seed), _BITS_STREAM])
    return rng.integers(0, 2, size=(int(num_items), int(k)), dtype=np.uint8)


def append(images: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """float32 [N, H, W, C + k]: `images` [N, H, W, C] with bit channels [N, k] appended."""
    n, h, w, c = images.shape
    k = bits.shape[1]
    if not k:
        return images
    out = np.empty((n, h, w, c + k), dtype=np.float32)
    out[..., :c] = images
    out[..., c:] = bits[:, None, None, :]
    return out
