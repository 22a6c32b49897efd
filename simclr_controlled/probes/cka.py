"""Linear centered kernel alignment (Kornblith et al. 2019).

CKA(X, Y) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with linear kernels
K = X X^T, L = Y Y^T on n matched examples (rows). Used to compare head
layers (`head_input`, `head_1`, `head_2`, `head_out`) or models.

- Biased (default): HSIC = tr(H K H H L H); on column-centered features this
  is ||Y^T X||_F^2, so CKA = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F).
- `debiased=True`: the unbiased HSIC estimator of Song et al. (2012), as used
  by Nguyen et al. (2021): with K~, L~ the kernels with zeroed diagonals,
  HSIC_u = [tr(K~ L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3)).
  Needs n >= 4. It is near 0 for independent features even when n << d,
  where the biased estimate is pulled well above 0. It can be slightly
  negative, and is not bounded by 1 for distinct inputs.
- Every term is written with the cheaper of the feature-space products
  (X^T Y, d1 x d2) or the Gram matrices (n x n); both give the same number.
- float64 throughout. When the denominator is not positive (a constant
  layer, e.g. all ReLUs dead) CKA is undefined and NaN is returned.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from simclr_controlled.errors import UsageError


def _centered(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise UsageError(f"{name}: must be a 2-D array [n, d] with n >= 2, got shape {x.shape}")
    # HSIC of linear kernels is shift-invariant; centering makes the biased
    # form a plain Frobenius norm and keeps the debiased sums well conditioned.
    return x - x.mean(axis=0, keepdims=True)


def _cross(x: np.ndarray, y: np.ndarray, space: str = "auto") -> float:
    """tr(K L) = ||X^T Y||_F^2, via features or Grams ('feature'/'gram'/'auto')."""
    n, d1 = x.shape
    d2 = y.shape[1]
    if space == "auto":
        space = "feature" if d1 * d2 <= n * (d1 + d2) else "gram"
    if space == "feature":
        return float(np.sum(np.square(x.T @ y)))
    return float(np.sum((x @ x.T) * (y @ y.T)))


def _hsic(x: np.ndarray, y: np.ndarray, debiased: bool) -> float:
    """HSIC of column-centered x, y up to a factor that cancels in CKA."""
    cross = _cross(x, y)
    if not debiased:
        return cross
    n = x.shape[0]
    dx = np.einsum("ij,ij->i", x, x)  # diag(K)
    dy = np.einsum("ij,ij->i", y, y)
    rx = x @ x.sum(axis=0) - dx  # K~ 1 (equals -dx up to rounding once centered)
    ry = y @ y.sum(axis=0) - dy
    trace = cross - float(dx @ dy)  # tr(K~ L~)
    return (trace + float(rx.sum()) * float(ry.sum()) / ((n - 1) * (n - 2))
            - 2.0 / (n - 2) * float(rx @ ry)) / (n * (n - 3))


def _ratio(xy: float, xx: float, yy: float) -> float:
    denom = xx * yy
    if not np.isfinite(denom) or denom <= 0.0:
        return float("nan")
    return float(xy / np.sqrt(denom))


def _check_pair(x: np.ndarray, y: np.ndarray, debiased: bool) -> None:
    if x.shape[0] != y.shape[0]:
        raise UsageError(
            f"x, y: must have the same number of rows (examples), got "
            f"{x.shape[0]} and {y.shape[0]}")
    if debiased and x.shape[0] < 4:
        raise UsageError(f"debiased: needs n >= 4 examples, got {x.shape[0]}")


def linear_cka(x: np.ndarray, y: np.ndarray, debiased: bool = False) -> float:
    """Linear CKA of x [n, d1] and y [n, d2] (rows = the same n examples)."""
    xc, yc = _centered(x, "x"), _centered(y, "y")
    _check_pair(xc, yc, debiased)
    return _ratio(_hsic(xc, yc, debiased), _hsic(xc, xc, debiased),
                  _hsic(yc, yc, debiased))


def cka_matrix(acts: Mapping[str, np.ndarray],
               debiased: bool = False) -> tuple[list[str], np.ndarray]:
    """Linear CKA between every pair of entries of `acts` (layers or models).

    acts: name -> [n, d_name], same n examples in the same order.
    Returns (names in `acts` order, symmetric float64 matrix [k, k]).
    """
    if not acts:
        raise UsageError("acts: must hold at least one array, got none")
    names = list(acts)
    centered = [_centered(acts[k], f"acts[{k!r}]") for k in names]
    for c in centered:
        _check_pair(centered[0], c, debiased)
    selfs = [_hsic(c, c, debiased) for c in centered]
    out = np.empty((len(names), len(names)), dtype=np.float64)
    for i in range(len(names)):
        out[i, i] = _ratio(selfs[i], selfs[i], selfs[i])
        for j in range(i + 1, len(names)):
            out[i, j] = out[j, i] = _ratio(
                _hsic(centered[i], centered[j], debiased), selfs[i], selfs[j])
    return names, out
