"""Disentanglement metrics of codes against known factors: DCI, MIG, SAP.

Formulas as google-research/disentanglement_lib computes them
(evaluation/metrics/dci.py, mig.py, sap_score.py, utils.py); the predictors
are replaced by closed-form, vectorized ones where that library fits a
model per code dimension or per factor (documented at each function).

Every factor is treated as a set of classes (its distinct values), as
disentanglement_lib does for DCI and for SAP's default discrete path.
Validation values never seen in training count as wrong predictions.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from simclr_controlled.errors import UsageError
from simclr_controlled.probes.recovery import (
    DEFAULT_ALPHA, check_codes, check_factors, check_split, ridge_fit, standardizer)

# Added to every importance before normalizing (disentanglement_lib's
# constant): an all-zero row or column then reads as uniform, and 0 log 0 = 0.
_EPS = 1e-11


def _labels(train: np.ndarray, val: np.ndarray | None, name: str):
    """Class indices of one factor column: (train idx, val idx or None, C).

    Classes are the distinct training values; a validation value outside
    them gets -1, which matches no prediction.
    """
    classes, idx = np.unique(train, return_inverse=True)
    if len(classes) < 2:
        arg = "factors" if val is None else "factors_train"
        raise UsageError(f"{arg}: factor {name!r} takes a single value on the training rows")
    if val is None:
        return idx, None, len(classes)
    pos = np.minimum(np.searchsorted(classes, val), len(classes) - 1)
    return idx, np.where(classes[pos] == val, pos, -1), len(classes)


def _normalized_entropy(p: np.ndarray, axis: int) -> np.ndarray:
    p = p + _EPS
    p = p / p.sum(axis=axis, keepdims=True)
    return -np.sum(p * np.log(p), axis=axis) / np.log(p.shape[axis])


def dci_from_importance(importance) -> dict:
    """Disentanglement and completeness (Eastwood & Williams 2018) of R [d, k].

    R[i, j] >= 0: importance of code dimension i for factor j. As
    disentanglement_lib: D = sum_i rho_i (1 - H_k(R[i, :])), rho_i = R[i, :]
    summed / R summed; C = sum_j rho'_j (1 - H_d(R[:, j])), rho'_j the share
    of factor j in R's total (a plain mean over factors when every column
    sums to the same, as `dci`'s do), entropies of the normalized rows /
    columns in base k / base d. An all-zero R weighs everything equally.
    """
    r = np.asarray(importance, dtype=np.float64)
    if r.ndim != 2 or min(r.shape) < 2:
        raise UsageError(f"importance: must be a 2-D array [d, k] with d >= 2 code dims and "
                         f"k >= 2 factors, got shape {r.shape}")
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise UsageError("importance: must hold finite values >= 0")
    per_code = 1.0 - _normalized_entropy(r, axis=1)
    per_factor = 1.0 - _normalized_entropy(r, axis=0)
    w = r if r.sum() > 0 else np.ones_like(r)
    return {"disentanglement": float(per_code @ (w.sum(axis=1) / w.sum())),
            "completeness": float(per_factor @ (w.sum(axis=0) / w.sum()))}


def dci(codes_train, factors_train, codes_val, factors_val, names: Sequence[str],
        alpha: float = DEFAULT_ALPHA) -> dict:
    """DCI with importances from a linear ridge classifier, not boosted trees.

    disentanglement_lib fits a GradientBoostingClassifier per factor (slow:
    minutes per layer at d = 512). Here every factor is read by one ridge
    regression of its one-hot classes on the standardized codes (train
    statistics; the penalty of `recovery.ridge_fit`, alpha x n), all factors
    in one solve; the prediction is the argmax over the factor's classes
    (sklearn's RidgeClassifier). Importance of dimension i for factor j =
    sum over j's classes of |W|, scaled so each factor's column sums to 1 as
    tree importances do. Informativeness = that classifier's validation
    accuracy per factor (the library's `informativeness_test`, there averaged).
    A linear classifier cannot cut an ordinal factor laid along one code axis
    into its middle classes, so informativeness reads low for such a code
    even where D = C = 1 (trees would not); `recovery.r2_scores` is the
    linear read-out of ordinal factors.

    Returns {"disentanglement", "completeness", "completeness_per_factor":
    {name: c}, "informativeness": {name: accuracy}, "informativeness_mean",
    "importance": R [d][k] as nested lists}.
    """
    xt, yt, xv, yv, names = check_split(codes_train, factors_train, codes_val, factors_val,
                                        names)
    if xt.shape[1] < 2 or len(names) < 2:
        raise UsageError(f"codes_train, factors_train: DCI needs d >= 2 code dims and k >= 2 "
                         f"factors, got d = {xt.shape[1]}, k = {len(names)}")
    mean, scale = standardizer(xt)
    labels = [_labels(yt[:, j], yv[:, j], s) for j, s in enumerate(names)]
    targets = np.concatenate([np.eye(c)[lt] for lt, _, c in labels], axis=1)
    w, b = ridge_fit((xt - mean) / scale, targets, alpha)
    scores = ((xv - mean) / scale) @ w + b
    importance = np.zeros((xt.shape[1], len(names)))
    accuracy = {}
    start = 0
    for j, (name, (_, lv, c)) in enumerate(zip(names, labels)):
        block = slice(start, start + c)
        start += c
        col = np.abs(w[:, block]).sum(axis=1)
        importance[:, j] = col / col.sum() if col.sum() > 0 else col
        accuracy[name] = float(np.mean(np.argmax(scores[:, block], axis=1) == lv))
    out = dci_from_importance(importance)
    per_factor = 1.0 - _normalized_entropy(importance, axis=0)
    return {**out, "completeness_per_factor": dict(zip(names, per_factor.tolist())),
            "informativeness": accuracy,
            "informativeness_mean": float(np.mean(list(accuracy.values()))),
            "importance": importance.tolist()}


def histogram_bins(codes: np.ndarray, num_bins: int) -> np.ndarray:
    """Bin index [n, d] of each value in num_bins equal-width bins over its column's range.

    The bins of disentanglement_lib's `_histogram_discretize`
    (np.digitize against np.histogram's edges), 0-based, for all columns at
    once: a floor estimate, corrected against the same np.linspace edges so
    values on an edge land where np.digitize puts them. A constant column
    is one bin.
    """
    lo, hi = codes.min(axis=0), codes.max(axis=0)
    edges = np.linspace(lo, hi, num_bins + 1)  # [num_bins + 1, d], as np.histogram
    width = np.where(hi > lo, (hi - lo) / num_bins, 1.0)
    b = np.clip(np.floor((codes - lo) / width).astype(np.int64), 0, num_bins - 1)
    b -= codes < np.take_along_axis(edges, b, axis=0)
    b = np.maximum(b, 0)
    up = np.minimum(b + 1, num_bins - 1)
    b += (up > b) & (codes >= np.take_along_axis(edges, up, axis=0))
    return b


def _mutual_info(bins: np.ndarray, labels: np.ndarray, num_bins: int, num_classes: int):
    """MI (nats) of every binned code column with one factor's labels: [d].

    One bincount builds all d contingency tables [d, num_bins, num_classes].
    """
    n, d = bins.shape
    cell = (np.arange(d) * num_bins + bins) * num_classes + labels[:, None]
    joint = np.bincount(cell.ravel(), minlength=d * num_bins * num_classes)
    joint = joint.reshape(d, num_bins, num_classes) / n
    marg = joint.sum(axis=2, keepdims=True) * joint.sum(axis=1, keepdims=True)
    nz = joint > 0
    return np.sum(np.where(nz, joint * np.log(np.where(nz, joint, 1.0)
                                              / np.where(nz, marg, 1.0)), 0.0), axis=(1, 2))


def mig(codes, factors, names: Sequence[str], num_bins: int = 20) -> dict:
    """Mutual information gap (Chen et al. 2018) as disentanglement_lib computes it.

    Each code dimension is cut into `num_bins` equal-width bins over its
    range (`histogram_bins`); MI(bin, factor) and H(factor) in nats, on all
    the given rows (the library uses one sample, no split). Per factor:
    (largest MI - second largest MI over code dims) / H(factor).
    Returns {"mig": mean over factors, "per_factor": {name: gap}}.
    """
    x = check_codes(codes, "codes")
    names = list(names)
    y = check_factors(factors, x.shape[0], names, "factors")
    if x.shape[1] < 2:
        raise UsageError(f"codes: MIG needs d >= 2 code dims, got {x.shape[1]}")
    if int(num_bins) != num_bins or num_bins < 2:
        raise UsageError(f"num_bins: must be an integer >= 2, got {num_bins}")
    bins = histogram_bins(x, int(num_bins))
    per_factor = {}
    for j, name in enumerate(names):
        lab, _, c = _labels(y[:, j], None, name)
        p = np.bincount(lab) / len(lab)
        top = np.sort(_mutual_info(bins, lab, int(num_bins), c))[-2:]
        per_factor[name] = float((top[1] - top[0]) / -np.sum(p * np.log(p)))
    return {"mig": float(np.mean(list(per_factor.values()))), "per_factor": per_factor}


def _nearest_mean_accuracy(xt, lt, xv, lv, c) -> np.ndarray:
    """Validation accuracy [d] of a 1-D nearest-class-mean classifier per code column.

    The class means of a column, sorted, cut the line at their midpoints;
    each validation value's interval is counted by sorting it together with
    the C - 1 midpoints (values before equal midpoints, so ties go to the
    lower mean), all columns in one argsort.
    """
    means = (xt.T @ np.eye(c)[lt]) / np.bincount(lt, minlength=c)  # [d, C]
    order = np.argsort(means, axis=1, kind="stable")
    ranked = np.take_along_axis(means, order, axis=1)
    mids = (ranked[:, 1:] + ranked[:, :-1]) / 2.0
    m = xv.shape[0]
    # [d, m + C - 1], each row contiguous: sorting along rows is the fast axis
    idx = np.argsort(np.concatenate([xv.T, mids], axis=1), axis=1, kind="stable")
    below = np.cumsum(idx >= m, axis=1)
    pos = np.empty_like(below)
    np.put_along_axis(pos, idx, below, axis=1)
    pred = np.take_along_axis(order, pos[:, :m], axis=1)
    return np.mean(pred == lv[None, :], axis=1)


def _squared_correlation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Squared Pearson correlation [d] of each code column with y; 0 where var <= 1e-12."""
    xc, yc = x - x.mean(axis=0), y - y.mean()
    var_x = np.sum(xc * xc, axis=0) / (len(y) - 1)
    cov = (yc @ xc) / (len(y) - 1)
    ok = var_x > 1e-12  # disentanglement_lib's cut for a constant dimension
    return np.where(ok, cov ** 2 / np.where(ok, var_x, 1.0) / np.var(y, ddof=1), 0.0)


def sap(codes_train, factors_train, codes_val, factors_val, names: Sequence[str],
        continuous: bool = False) -> dict:
    """Separated attribute predictability (Kumar et al. 2018), disentanglement_lib's form.

    Score matrix S [d, k]: how well code dimension i alone predicts factor j.
    - continuous=False (the library's default study setting): validation
      accuracy of a one-dimensional classifier trained on the training rows.
      The library fits LinearSVC(C=0.01, class_weight="balanced") per (i, j);
      here a nearest-class-mean rule with equal priors, i.e. the argmax of the
      affine scores 2 mu_c x - mu_c^2: the same family of 1-D decision rules
      (argmax of one affine function per class), fitted in closed form.
    - continuous=True: squared correlation of dimension i and factor j on
      the training rows (R^2 of a 1-D linear fit), as the library; the
      validation rows are then unused.
    SAP = mean over factors of (largest - second largest S over dimensions).
    Returns {"sap", "per_factor": {name: gap}}.
    """
    xt, yt, xv, yv, names = check_split(codes_train, factors_train, codes_val, factors_val,
                                        names)
    if xt.shape[1] < 2:
        raise UsageError(f"codes_train: SAP needs d >= 2 code dims, got {xt.shape[1]}")
    per_factor = {}
    for j, name in enumerate(names):
        if continuous:
            if np.ptp(yt[:, j]) == 0:
                raise UsageError(f"factors_train: factor {name!r} is constant")
            score = _squared_correlation(xt, yt[:, j])
        else:
            lt, lv, c = _labels(yt[:, j], yv[:, j], name)
            score = _nearest_mean_accuracy(xt, lt, xv, lv, c)
        top = np.sort(score)[-2:]
        per_factor[name] = float(top[1] - top[0])
    return {"sap": float(np.mean(list(per_factor.values()))), "per_factor": per_factor}
