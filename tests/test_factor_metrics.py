"""Tests for the factor metrics (probes/recovery.py, disentanglement.py,
label_free.py): known answers on hand-made codes, agreement with direct
loop implementations of disentanglement_lib's formulas, and bad input."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import scipy.stats
from sklearn.linear_model import Ridge
from sklearn.metrics import mutual_info_score

from simclr_controlled.errors import UsageError
from simclr_controlled.probes.disentanglement import (
    dci, dci_from_importance, histogram_bins, mig, sap)
from simclr_controlled.probes.label_free import alignment, effective_rank, uniformity
from simclr_controlled.probes.recovery import r2_scores

NAMES = ["a", "b", "c"]
LEVELS = (4, 5, 6)


def full_cross(levels=LEVELS, repeats=1):
    """Every combination of factor values once (times `repeats`): [n, k] integers."""
    grid = np.array(list(itertools.product(*[range(v) for v in levels])), dtype=np.int64)
    return np.tile(grid, (repeats, 1))


def rotation(k, seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(k, k)))
    return q


def standardized(y):
    return (y - y.mean(axis=0)) / y.std(axis=0)


# ---------------------------------------------------------------- reference loops

def ref_dci_from_importance(r):
    """disentanglement_lib's dci.disentanglement / completeness, with scipy."""
    per_code = 1.0 - scipy.stats.entropy(r.T + 1e-11, base=r.shape[1])
    per_factor = 1.0 - scipy.stats.entropy(r + 1e-11, base=r.shape[0])
    return (np.sum(per_code * r.sum(axis=1) / r.sum()),
            np.sum(per_factor * r.sum(axis=0) / r.sum()))


def ref_mig(codes, factors, num_bins=20):
    """disentanglement_lib's mig.py with utils._histogram_discretize, looped."""
    disc = np.stack([np.digitize(c, np.histogram(c, num_bins)[1][:-1]) for c in codes.T])
    m = np.array([[mutual_info_score(y, c) for y in factors.T] for c in disc])
    h = np.array([mutual_info_score(y, y) for y in factors.T])
    s = np.sort(m, axis=0)[::-1]
    return (s[0] - s[1]) / h


def ref_nearest_mean_sap(xt, yt, xv, yv):
    """Score matrix of 1-D nearest-class-mean classifiers, looped over (dim, factor)."""
    d, k = xt.shape[1], yt.shape[1]
    s = np.zeros((d, k))
    for i in range(d):
        for j in range(k):
            classes = np.unique(yt[:, j])
            means = np.array([xt[yt[:, j] == c, i].mean() for c in classes])
            pred = classes[np.argmin(np.abs(xv[:, i, None] - means[None, :]), axis=1)]
            s[i, j] = np.mean(pred == yv[:, j])
    top = np.sort(s, axis=0)
    return top[-1] - top[-2]


# ---------------------------------------------------------------- DCI

def test_dci_from_importance_diagonal_is_one():
    out = dci_from_importance(np.diag([3.0, 1.0, 0.5]))
    assert out["disentanglement"] == pytest.approx(1.0, abs=1e-6)
    assert out["completeness"] == pytest.approx(1.0, abs=1e-6)


def test_dci_from_importance_duplicated_dims_by_hand():
    # each factor read by two dims equally: rows one-hot (D = 1); each column
    # spreads evenly over 2 of d = 4 dims: H_4 = log 2 / log 4 = 1/2, C = 1/2.
    r = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    out = dci_from_importance(r)
    assert out["disentanglement"] == pytest.approx(1.0, abs=1e-6)
    assert out["completeness"] == pytest.approx(0.5, abs=1e-6)


def test_dci_from_importance_mixing_by_hand():
    # uniform: D = C = 0. One dim for both factors, the other unused:
    # D = 1 - H_2(1/2, 1/2) = 0 (the unused dim has weight 0); C = 1 - H_2(1, 0) = 1.
    uniform = dci_from_importance(np.ones((3, 2)))
    assert uniform["disentanglement"] == pytest.approx(0.0, abs=1e-9)
    assert uniform["completeness"] == pytest.approx(0.0, abs=1e-9)
    shared = dci_from_importance(np.array([[1.0, 1.0], [0.0, 0.0]]))
    assert shared["disentanglement"] == pytest.approx(0.0, abs=1e-6)
    assert shared["completeness"] == pytest.approx(1.0, abs=1e-6)


def test_dci_from_importance_matches_disentanglement_lib_formula():
    r = np.abs(np.random.default_rng(3).normal(size=(7, 3))) ** 3
    d, c = ref_dci_from_importance(r)
    out = dci_from_importance(r)
    assert out["disentanglement"] == pytest.approx(d, abs=1e-12)
    assert out["completeness"] == pytest.approx(c, abs=1e-12)


def test_dci_fitted_on_the_factors_themselves_and_rotated():
    y = full_cross(repeats=2)
    ident = dci(y, y, y, y, NAMES)
    json.dumps(ident)
    assert ident["disentanglement"] == pytest.approx(1.0, abs=1e-6)
    assert ident["completeness"] == pytest.approx(1.0, abs=1e-6)
    assert np.array(ident["importance"]).shape == (3, 3)
    assert set(ident["informativeness"]) == set(NAMES)
    rot = standardized(y.astype(float)) @ rotation(3)
    mixed = dci(rot, y, rot, y, NAMES)
    assert mixed["disentanglement"] < 0.7 and mixed["completeness"] < 0.7
    # the rotated code holds the same information; only the penalty and the
    # per-dim standardization differ, so informativeness stays about the same
    for name in NAMES:
        assert mixed["informativeness"][name] == pytest.approx(
            ident["informativeness"][name], abs=0.05)


def test_dci_fitted_duplicated_dims_lower_completeness_only():
    y = full_cross(repeats=2).astype(float)
    out = dci(np.repeat(y, 2, axis=1), y, np.repeat(y, 2, axis=1), y, NAMES)
    assert out["disentanglement"] == pytest.approx(1.0, abs=1e-6)
    # each factor's importance split evenly over 2 of 6 dims: 1 - log 2 / log 6
    assert out["completeness"] == pytest.approx(1 - np.log(2) / np.log(6), abs=1e-6)


def test_dci_informativeness_high_for_one_hot_code_low_for_noise():
    y = full_cross(repeats=4)
    onehot = np.concatenate([np.eye(v)[y[:, j]] for j, v in enumerate(LEVELS)], axis=1)
    good = dci(onehot, y, onehot, y, NAMES)
    assert min(good["informativeness"].values()) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    noise = dci(rng.normal(size=(len(y), 8)), y, rng.normal(size=(len(y), 8)), y, NAMES)
    assert noise["informativeness_mean"] < 0.35


# ---------------------------------------------------------------- MIG

def test_histogram_bins_match_numpy_digitize():
    rng = np.random.default_rng(1)
    for x in (rng.normal(size=(500, 5)), rng.integers(0, 7, size=(500, 5)).astype(float),
              np.arange(16.0)[:, None] * np.array([[1.0, 0.1, 0.3, -2.0]])):
        ref = np.stack([np.digitize(c, np.histogram(c, 20)[1][:-1]) - 1 for c in x.T], axis=1)
        np.testing.assert_array_equal(histogram_bins(x, 20), ref)


def test_mig_of_the_factors_is_one_and_rotation_lowers_it():
    y = full_cross(levels=(4, 5, 16))
    ident = mig(y.astype(float), y, NAMES)
    json.dumps(ident)
    assert ident["mig"] == pytest.approx(1.0, abs=1e-9)
    rot = mig(standardized(y.astype(float)) @ rotation(3), y, NAMES)
    assert rot["mig"] < 0.5


def test_mig_matches_disentanglement_lib_loop():
    rng = np.random.default_rng(2)
    y = full_cross(repeats=2)
    codes = np.concatenate([y + rng.normal(scale=0.7, size=y.shape),
                            rng.normal(size=(len(y), 2))], axis=1) @ rotation(5, 1)
    out = mig(codes, y, NAMES)
    np.testing.assert_allclose(list(out["per_factor"].values()), ref_mig(codes, y), atol=1e-10)
    assert out["mig"] == pytest.approx(np.mean(ref_mig(codes, y)), abs=1e-10)


# ---------------------------------------------------------------- SAP

def test_sap_of_the_factors_by_hand():
    y = full_cross(repeats=2)
    out = sap(y, y, y, y, NAMES)
    json.dumps(out)
    # own dim: accuracy 1; any other dim is independent of the factor in a full
    # cross, so any rule on it scores exactly 1/C.
    for name, c in zip(NAMES, LEVELS):
        assert out["per_factor"][name] == pytest.approx(1.0 - 1.0 / c, abs=1e-12)
    assert sap(y, y, y, y, NAMES, continuous=True)["sap"] == pytest.approx(1.0, abs=1e-12)
    rot = standardized(y.astype(float)) @ rotation(3)
    assert sap(rot, y, rot, y, NAMES)["sap"] < out["sap"] - 0.2


def test_sap_matches_looped_reference():
    rng = np.random.default_rng(4)
    y = full_cross(repeats=3)
    codes = (y + rng.normal(scale=0.8, size=y.shape)) @ rotation(3, 5)
    xt, xv, yt, yv = codes[::2], codes[1::2], y[::2], y[1::2]
    out = sap(xt, yt, xv, yv, NAMES)
    np.testing.assert_allclose(list(out["per_factor"].values()),
                               ref_nearest_mean_sap(xt, yt, xv, yv), atol=1e-12)
    cont = sap(xt, yt, xv, yv, NAMES, continuous=True)
    corr = np.array([[np.corrcoef(xt[:, i], yt[:, j])[0, 1] ** 2 for j in range(3)]
                     for i in range(3)])
    top = np.sort(corr, axis=0)
    np.testing.assert_allclose(list(cont["per_factor"].values()), top[-1] - top[-2],
                               atol=1e-12)


# ---------------------------------------------------------------- R^2

def test_r2_linear_code_noise_and_partial():
    rng = np.random.default_rng(5)
    y = rng.permutation(full_cross(levels=(8, 8), repeats=8)).astype(float)
    names = ["x", "y"]
    linear = y @ rng.normal(size=(2, 6)) + 3.0
    tr, va = slice(0, None, 2), slice(1, None, 2)  # rows are shuffled: a random half
    out = r2_scores(linear[tr], y[tr], linear[va], y[va], names)
    assert min(out.values()) > 0.999
    noise = rng.normal(size=(len(y), 6))
    assert max(r2_scores(noise[tr], y[tr], noise[va], y[va], names).values()) <= 0.05
    only_x = np.concatenate([y[:, :1] * 2.0, rng.normal(size=(len(y), 3))], axis=1)
    part = r2_scores(only_x[tr], y[tr], only_x[va], y[va], names)
    assert part["x"] > 0.999 and abs(part["y"]) <= 0.05


def test_r2_matches_sklearn_ridge():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(300, 10)) * rng.uniform(0.1, 5, size=10)
    y = np.stack([x[:, 0] + rng.normal(size=300), x[:, 1] - x[:, 2] * 0.3
                  + rng.normal(size=300)], axis=1)
    alpha = 0.05
    out = r2_scores(x[:200], y[:200], x[200:], y[200:], ["u", "v"], alpha=alpha)
    mean, std = x[:200].mean(axis=0), x[:200].std(axis=0)
    for j, name in enumerate(["u", "v"]):
        model = Ridge(alpha=alpha * 200).fit((x[:200] - mean) / std, y[:200, j])
        assert out[name] == pytest.approx(model.score((x[200:] - mean) / std, y[200:, j]),
                                          abs=1e-9)


# ---------------------------------------------------------------- label-free

def test_alignment_known_values():
    rng = np.random.default_rng(7)
    z = rng.normal(size=(10, 4))
    assert alignment(z, z * 3.0) == pytest.approx(0.0, abs=1e-12)
    theta = 0.7
    a = np.tile([[1.0, 0.0]], (5, 1))
    b = np.tile([[np.cos(theta), np.sin(theta)]], (5, 1))
    assert alignment(a, b) == pytest.approx(2 - 2 * np.cos(theta), abs=1e-12)
    assert alignment(a, b, alpha=1) == pytest.approx(np.sqrt(2 - 2 * np.cos(theta)))


def test_uniformity_collapsed_spread_and_double_loop():
    assert uniformity(np.tile([[0.0, 2.0]], (6, 1))) == pytest.approx(0.0, abs=1e-12)
    angles = 2 * np.pi * np.arange(8) / 8
    circle = np.stack([np.cos(angles), np.sin(angles)], axis=1) * 5.0
    u = circle / 5.0
    ref = np.log(np.mean([np.exp(-2 * np.sum((u[i] - u[j]) ** 2))
                          for i in range(8) for j in range(i + 1, 8)]))
    assert uniformity(circle) == pytest.approx(ref, abs=1e-12)
    assert uniformity(circle) < -1.0


def test_uniformity_blocks_and_subsample(monkeypatch):
    from simclr_controlled.probes import label_free
    z = np.random.default_rng(8).normal(size=(37, 5))
    whole = uniformity(z, t=3.0)
    monkeypatch.setattr(label_free, "BLOCK_ROWS", 4)
    assert uniformity(z, t=3.0) == pytest.approx(whole, abs=1e-12)
    sub = uniformity(z, max_items=20, seed=1)
    assert sub == uniformity(z, max_items=20, seed=1)
    assert sub != uniformity(z, max_items=20, seed=2)
    assert uniformity(z, max_items=100) == uniformity(z)


def test_effective_rank_orthonormal_and_rank_one():
    q, _ = np.linalg.qr(np.random.default_rng(9).normal(size=(50, 6)))
    assert effective_rank(q) == pytest.approx(6.0, rel=1e-5)
    assert effective_rank(np.outer(np.arange(1.0, 21.0), [1.0, -2.0, 0.5, 3.0])) == \
        pytest.approx(1.0, abs=1e-4)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("call, match", [
    (lambda: r2_scores(np.ones((5,)), np.ones((5, 1)), np.ones((5, 2)), np.ones((5, 1)), ["a"]),
     "^codes_train"),
    (lambda: r2_scores(np.ones((5, 2)), np.ones((4, 1)), np.ones((5, 2)), np.ones((5, 1)), ["a"]),
     "^factors_train"),
    (lambda: r2_scores(np.ones((5, 2)), np.ones((5, 1)), np.ones((5, 3)), np.ones((5, 1)), ["a"]),
     "^codes_val"),
    (lambda: r2_scores(np.ones((5, 2)), np.ones((5, 2)), np.ones((5, 2)), np.ones((5, 2)), ["a"]),
     "^names"),
    (lambda: r2_scores(np.ones((5, 2)), np.ones((5, 1)), np.ones((5, 2)), np.arange(5.)[:, None],
                       ["a"]), "^factors_train.*constant"),
    (lambda: r2_scores(np.arange(10.).reshape(5, 2), np.arange(5.)[:, None],
                       np.ones((5, 2)), np.arange(5.)[:, None], ["a"], alpha=0), "^alpha"),
    (lambda: dci(np.full((4, 3), np.nan), np.ones((4, 2)), np.ones((4, 3)), np.ones((4, 2)),
                 ["a", "b"]), "^codes_train.*NaN"),
    (lambda: dci(np.ones((4, 3)), np.zeros((4, 2)), np.ones((4, 3)), np.zeros((4, 2)),
                 ["a", "b"]), "^factors.*single value"),
    (lambda: dci_from_importance(np.ones(3)), "^importance"),
    (lambda: dci_from_importance(-np.ones((3, 2))), "^importance"),
    (lambda: mig(np.ones((4, 3)), np.arange(4.)[:, None], ["a"], num_bins=1), "^num_bins"),
    (lambda: mig(np.ones((4, 1)), np.arange(4.)[:, None], ["a"]), "^codes"),
    (lambda: mig(np.ones((4, 2)), np.array([[0.0], [1.0], [np.nan], [1.0]]), ["a"]),
     "^factors.*NaN"),
    (lambda: sap(np.ones((4, 1)), np.arange(4.)[:, None], np.ones((4, 1)),
                 np.arange(4.)[:, None], ["a"]), "^codes_train"),
    (lambda: alignment(np.ones((3, 2)), np.ones((4, 2))), "^z1, z2"),
    (lambda: alignment(np.zeros((3, 2)), np.ones((3, 2))), "^z1.*zero row"),
    (lambda: uniformity(np.ones((1, 2))), "^z"),
    (lambda: uniformity(np.ones((3, 2)), t=-1), "^t"),
    (lambda: uniformity(np.ones((3, 2)), max_items=1), "^max_items"),
    (lambda: effective_rank(np.zeros((3, 2))), "^z.*zeros"),
])
def test_bad_input_is_usage_error(call, match):
    with pytest.raises(UsageError, match=match):
        call()
