"""PCA of head-layer activations (DESIGN §4.4; paper Fig. 4, B.5)."""
from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

from simclr_controlled.errors import UsageError


def sample_indices(num_items: int, n: int = 1000, seed: int = 0) -> np.ndarray:
    """min(n, num_items) distinct indices into range(num_items), seeded.

    The "1000 random training images" of Fig. 4. Returned sorted (int64) so
    that gathering them from an array is a monotone read; the choice of
    items, not their order, is what is random.
    """
    if int(num_items) < 1:
        raise UsageError(f"num_items: must be a positive integer, got {num_items}")
    if int(n) < 1:
        raise UsageError(f"n: must be a positive integer, got {n}")
    rng = np.random.default_rng(seed)
    picked = rng.choice(int(num_items), size=min(int(n), int(num_items)), replace=False)
    return np.sort(picked).astype(np.int64)


def pca_2d(acts: np.ndarray, n_components: int = 2, seed: int = 0) -> dict:
    """scikit-learn PCA of activations [n, d].

    Returns {"components": float64 [n, k] projections of the items onto the
    first k principal axes, "explained_variance_ratio": float64 [k]}.
    `seed` fixes sklearn's randomized solver when it is chosen; sklearn also
    fixes the sign of each axis, so the scatter is reproducible.
    """
    x = np.asarray(acts, dtype=np.float64)
    if x.ndim != 2:
        raise UsageError(f"acts: must be a 2-D array [n, d], got shape {x.shape}")
    k = int(n_components)
    if not 1 <= k <= min(x.shape):
        raise UsageError(
            f"n_components: must be between 1 and min(n, d) = {min(x.shape)}, got "
            f"{n_components}")
    pca = PCA(n_components=k, random_state=seed)
    comps = pca.fit_transform(x)
    return {"components": np.asarray(comps, dtype=np.float64),
            "explained_variance_ratio": np.asarray(pca.explained_variance_ratio_,
                                                   dtype=np.float64)}
