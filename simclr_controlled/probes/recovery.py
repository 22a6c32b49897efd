"""Linear recovery of ordinal factors: validation R^2 of a ridge regression.

The identifiability check of Zimmermann et al. (2021) and von Kuegelgen et
al. (2021): how much of each ground-truth factor a linear map of the codes
recovers, scored on held-out items. Decisions where they are silent:
- Codes are standardized with the training rows' mean and standard
  deviation (a dimension constant on the training rows is only centered: it
  carries nothing, and the penalty keeps the solve well posed). The factors
  are standardized the same way; R^2 does not change under that affine map,
  which only keeps the targets on one scale for the shared solve.
- Ridge with an intercept, unpenalized: minimize
  (1/n) ||Y - X W - b||^2 + alpha ||W||^2, i.e. (X'X + alpha n I) W = X'Y on
  the centered training rows. On standardized codes trace(X'X)/d = n, so the
  penalty is alpha x trace/d. alpha = 1e-3 by default: small enough not to
  shrink a signal carried by a few dimensions, large enough that collinear
  or dead dimensions do not make the solve singular. It is the same as
  sklearn's Ridge(alpha=alpha * n) on the standardized codes.
- All factors are the columns of one multi-output solve (one Cholesky).
- R^2 = 1 - SS_res / SS_tot on the validation rows with SS_tot around the
  validation mean (sklearn's r2_score). It can be negative (worse than
  predicting the validation mean), e.g. for a pure-noise code.

The input checks and the ridge solve are shared with `disentanglement`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.linalg

from simclr_controlled.errors import UsageError

DEFAULT_ALPHA = 1e-3


def check_codes(codes, name: str, min_items: int = 2) -> np.ndarray:
    """codes as float64 [n, d] with n >= min_items, d >= 1, all finite."""
    x = np.asarray(codes, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < min_items or x.shape[1] < 1:
        raise UsageError(f"{name}: must be a 2-D array [n, d] with n >= {min_items} and "
                         f"d >= 1, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise UsageError(f"{name}: holds NaN or infinite values")
    return x


def check_factors(factors, n: int, names: Sequence[str], name: str) -> np.ndarray:
    """factors as float64 [n, k] (one column per name), all finite."""
    y = np.asarray(factors, dtype=np.float64)
    if y.ndim != 2 or y.shape[0] != n:
        raise UsageError(f"{name}: must be a 2-D array [n, k] with n = {n} rows (one per "
                         f"code row), got shape {y.shape}")
    if y.shape[1] != len(names) or len(set(names)) != len(names) or not all(
            isinstance(s, str) for s in names):
        raise UsageError(f"names: must be {y.shape[1]} distinct strings (one per column of "
                         f"{name}), got {list(names)!r}")
    if not np.all(np.isfinite(y)):
        raise UsageError(f"{name}: holds NaN or infinite values")
    return y


def check_split(codes_train, factors_train, codes_val, factors_val,
                names: Sequence[str]) -> tuple:
    """The four arrays of a train/validation metric, checked together."""
    names = list(names)
    xt = check_codes(codes_train, "codes_train")
    xv = check_codes(codes_val, "codes_val", min_items=1)
    if xv.shape[1] != xt.shape[1]:
        raise UsageError(f"codes_val: must have the {xt.shape[1]} columns of codes_train, "
                         f"got {xv.shape[1]}")
    yt = check_factors(factors_train, xt.shape[0], names, "factors_train")
    yv = check_factors(factors_val, xv.shape[0], names, "factors_val")
    return xt, yt, xv, yv, names


def standardizer(x_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Training mean and scale of each column; scale 1 where the column is constant."""
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


def ridge_fit(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Ridge of targets y [n, m] on standardized codes x [n, d]: (W [d, m], b [m]).

    One Cholesky of X'X + alpha n I serves all m targets.
    """
    if not (np.isfinite(alpha) and alpha > 0):
        raise UsageError(f"alpha: must be a positive number, got {alpha}")
    n, d = x.shape
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    xc = x - x_mean
    gram = xc.T @ xc
    gram[np.diag_indices(d)] += alpha * n
    w = scipy.linalg.cho_solve(scipy.linalg.cho_factor(gram), xc.T @ (y - y_mean))
    return w, y_mean - x_mean @ w


def r2_scores(codes_train, factors_train, codes_val, factors_val, names: Sequence[str],
              alpha: float = DEFAULT_ALPHA) -> dict:
    """Validation R^2 of each factor from a ridge regression on the codes.

    codes_*: [n, d] activations; factors_*: [n, k] ordinal factor values,
    one column per entry of `names`. Returns {name: R^2}.
    """
    xt, yt, xv, yv, names = check_split(codes_train, factors_train, codes_val, factors_val,
                                        names)
    y_std = yt.std(axis=0)
    flat_val = np.ptp(yv, axis=0) == 0
    for j, name in enumerate(names):
        if y_std[j] == 0 or flat_val[j]:
            split = "factors_train" if y_std[j] == 0 else "factors_val"
            raise UsageError(f"{split}: factor {name!r} is constant, its R^2 is undefined")
    x_mean, x_scale = standardizer(xt)
    y_mean = yt.mean(axis=0)
    w, b = ridge_fit((xt - x_mean) / x_scale, (yt - y_mean) / y_std, alpha)
    pred = ((xv - x_mean) / x_scale) @ w + b
    target = (yv - y_mean) / y_std
    ss_res = np.sum((target - pred) ** 2, axis=0)
    ss_tot = np.sum((target - target.mean(axis=0)) ** 2, axis=0)
    return {name: float(1.0 - r / t) for name, r, t in zip(names, ss_res, ss_tot)}
