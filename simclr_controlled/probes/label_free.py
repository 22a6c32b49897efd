"""Label-free statistics of embeddings: alignment, uniformity, effective rank.

- Alignment and uniformity (Wang & Isola 2020) are defined on the unit
  hypersphere: rows are L2-normalized here, so raw layer outputs can be
  passed; an all-zero row has no direction and is rejected.
- Effective rank is RankMe (Garrido et al. 2023), on the matrix as given
  (no centering or normalization, as in the paper).
"""
from __future__ import annotations

import numpy as np

from simclr_controlled.errors import UsageError
from simclr_controlled.probes.recovery import check_codes

RANKME_EPS = 1e-7  # RankMe's epsilon, added to each normalized singular value
BLOCK_ROWS = 1024  # uniformity's Gram rows per block: 1024 x n float64 at a time


def _unit_rows(z, name: str, min_items: int = 1) -> np.ndarray:
    x = check_codes(z, name, min_items=min_items)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise UsageError(f"{name}: has an all-zero row, which has no direction")
    return x / norms


def alignment(z1, z2, alpha: float = 2.0) -> float:
    """Mean over items of ||f(x) - f(x')||_2^alpha, rows of z1 [n, d] and z2 the two views.

    Wang & Isola's l_align; 0 for identical views, 4^(alpha/2) at most.
    """
    a, b = _unit_rows(z1, "z1"), _unit_rows(z2, "z2")
    if a.shape != b.shape:
        raise UsageError(f"z1, z2: must have the same shape, got {a.shape} and {b.shape}")
    if not (np.isfinite(alpha) and alpha > 0):
        raise UsageError(f"alpha: must be a positive number, got {alpha}")
    return float(np.mean(np.linalg.norm(a - b, axis=1) ** alpha))


def uniformity(z, t: float = 2.0, max_items: int | None = None, seed: int = 0) -> float:
    """log of the mean over distinct pairs i < j of exp(-t ||z_i - z_j||^2) (Wang & Isola).

    Exact over all n (n - 1) / 2 pairs by default: the Gram matrix is
    computed BLOCK_ROWS rows at a time against the rows from the block on
    (the upper triangle, so about half of z z'), and summed in log space, so
    memory is O(BLOCK_ROWS n) and no term underflows. On unit rows
    ||z_i - z_j||^2 = 2 - 2 z_i.z_j. `max_items` (optional) uses a seeded
    uniform subsample of that many rows instead. Between -4t and 0;
    0 when all points coincide.
    """
    u = _unit_rows(z, "z", min_items=2)
    if not (np.isfinite(t) and t > 0):
        raise UsageError(f"t: must be a positive number, got {t}")
    if max_items is not None:
        if int(max_items) != max_items or max_items < 2:
            raise UsageError(f"max_items: must be an integer >= 2 or None, got {max_items}")
        if u.shape[0] > max_items:
            rng = np.random.default_rng(seed)
            u = u[np.sort(rng.choice(u.shape[0], size=int(max_items), replace=False))]
    n = u.shape[0]
    total = -np.inf
    for start in range(0, n - 1, BLOCK_ROWS):
        rows = u[start:start + BLOCK_ROWS]
        b = len(rows)
        expo = rows @ u[start:].T
        expo *= 2.0 * t
        expo -= 2.0 * t
        np.minimum(expo, 0.0, out=expo)  # -t ||z_i - z_j||^2; rounding can lift it above 0
        # Only the block's own square needs the i < j mask; later columns all qualify.
        expo[:, :b][np.tril_indices(b)] = -np.inf
        # log-sum-exp in place (scipy's makes several copies of the block)
        top = expo.max()
        expo -= top
        np.exp(expo, out=expo)
        total = np.logaddexp(total, top + np.log(expo.sum()))
    return float(total - np.log(n * (n - 1) / 2.0))


def effective_rank(z) -> float:
    """RankMe: exp(-sum_k p_k log p_k), p_k = sigma_k / sum(sigma) + 1e-7, of z [n, d].

    Sums over the min(n, d) singular values of z.

    Between about 1 (rank one) and min(n, d) (all singular values equal).
    """
    x = check_codes(z, "z", min_items=1)
    gram = x.T @ x if x.shape[0] >= x.shape[1] else x @ x.T
    # sigma = sqrt(eig(Gram)): several times faster than an SVD of the tall z.
    # Rounding leaves singular values below ~1e-8 sigma_max inexact, moving
    # their p_k by < 2e-8, under RankMe's own epsilon.
    s = np.sqrt(np.maximum(np.linalg.eigvalsh(gram), 0.0))
    if s.sum() <= 0:
        raise UsageError("z: is all zeros, its effective rank is undefined")
    p = s / s.sum() + RANKME_EPS
    return float(np.exp(-np.sum(p * np.log(p))))
