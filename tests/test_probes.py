"""Tests for the activation probes (DESIGN §4): channel preference, hierarchically
constrained similarity, PCA and linear CKA."""
from __future__ import annotations

import json

import numpy as np
import pytest

from simclr_controlled.errors import UsageError
from simclr_controlled.probes.channel_preference import (
    channel_preference, cosine_similarity_rows, summarize)
from simclr_controlled.probes.cka import _centered, _cross, cka_matrix, linear_cka
from simclr_controlled.probes.pca import pca_2d, sample_indices
from simclr_controlled.probes.similarity import hierarchical_similarity

R2 = np.sqrt(0.5)


# ---------------------------------------------------------------- cosine / channel preference

def test_cosine_identical_orthogonal_opposite_zero():
    a = np.array([[1.0, 2.0, 3.0], [1.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 0.0]])
    b = np.array([[2.0, 4.0, 6.0], [0.0, 3.0, 0.0], [0.0, -1.0, 0.0], [1.0, 1.0, 1.0]])
    np.testing.assert_allclose(cosine_similarity_rows(a[:3], a[:3]), [1.0, 1.0, 1.0], atol=1e-12)
    # identical direction 1, orthogonal 0, opposite -1, zero row defined as 0
    np.testing.assert_allclose(cosine_similarity_rows(a, b), [1.0, 0.0, -1.0, 0.0], atol=1e-12)


def test_cosine_rejects_shape_mismatch():
    with pytest.raises(UsageError, match="^a, b"):
        cosine_similarity_rows(np.ones((3, 2)), np.ones((3, 4)))


def test_channel_preference_hand_made():
    ref = {"head_1": np.array([[1.0, 0.0], [0.0, 2.0]]),
           "head_out": np.array([[1.0, 1.0], [3.0, 0.0]])}
    probes = {
        "level_0": {"head_1": np.array([[2.0, 0.0], [0.0, 1.0]]),
                    "head_out": np.array([[1.0, -1.0], [1.0, 0.0]])},
        "level_1": {"head_1": np.array([[1.0, 1.0], [0.0, -1.0]]),
                    "head_out": np.array([[1.0, 0.0], [1.0, 1.0]])},
        "baseline": {"head_1": np.array([[0.0, 1.0], [1.0, 0.0]]),
                     "head_out": np.array([[-2.0, -2.0], [-1.0, 0.0]])},
    }
    cp = channel_preference(ref, probes)
    assert list(cp) == ["head_1", "head_out"]
    assert list(cp["head_1"]) == ["level_0", "level_1", "baseline"]
    np.testing.assert_allclose(cp["head_1"]["level_0"], [1.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(cp["head_1"]["level_1"], [R2, -1.0], atol=1e-12)
    np.testing.assert_allclose(cp["head_1"]["baseline"], [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(cp["head_out"]["level_0"], [0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(cp["head_out"]["level_1"], [R2, R2], atol=1e-12)
    np.testing.assert_allclose(cp["head_out"]["baseline"], [-1.0, -1.0], atol=1e-12)
    s = summarize(cp)
    assert s["head_1"]["level_0"] == pytest.approx(1.0)
    assert s["head_1"]["level_1"] == pytest.approx((R2 - 1.0) / 2)
    assert s["head_out"]["baseline"] == pytest.approx(-1.0)
    assert isinstance(s["head_1"]["baseline"], float)
    json.dumps(s)


def test_channel_preference_missing_layer_is_usage_error():
    ref = {"head_1": np.ones((2, 3)), "head_2": np.ones((2, 3))}
    with pytest.raises(UsageError, match="^probe_acts.*head_2"):
        channel_preference(ref, {"level_0": {"head_1": np.ones((2, 3))}})


# ---------------------------------------------------------------- hierarchical similarity

def test_similarity_hand_means_branching_2_2():
    # items: leaves 0..3 of a 2,2 hierarchy; both views identical so an item
    # pair's similarity is the plain cosine of its vectors.
    v = np.array([[1.0, 0.0], [2.0, 2.0], [0.0, 0.5], [-3.0, 0.0]])
    labels = np.array([[0, 0], [0, 1], [1, 2], [1, 3]])
    out = hierarchical_similarity(v, v.copy(), labels)
    json.dumps(out)
    # cosines: (0,1)=r2, (0,2)=0, (0,3)=-1, (1,2)=r2, (1,3)=-r2, (2,3)=0
    l0, l1 = out["level_0"], out["level_1"]
    assert l0["within_pairs"] == 2 and l0["across_pairs"] == 4
    assert l0["within"] == pytest.approx((R2 + 0.0) / 2)
    assert l0["across"] == pytest.approx((0.0 - 1.0 + R2 - R2) / 4)
    np.testing.assert_allclose(l0["within_per_item"], [R2, R2, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(l0["across_per_item"],
                               [-0.5, 0.0, R2 / 2, (-1.0 - R2) / 2], atol=1e-12)
    # every item is its own leaf class: no within pairs -> absent, not zero
    assert "within" not in l1 and "within_pairs" not in l1 and "within_per_item" not in l1
    assert l1["across_pairs"] == 2
    assert l1["across"] == pytest.approx(R2 / 2)
    assert out["across_view"] == pytest.approx(1.0)
    assert out["across_view_pairs"] == 4
    np.testing.assert_allclose(out["across_view_per_item"], [1.0] * 4, atol=1e-12)


def test_similarity_two_views_average_four_combinations():
    a = np.array([[1.0, 0.0], [1.0, 0.0]])
    b = np.array([[0.0, 1.0], [1.0, 0.0]])
    out = hierarchical_similarity(a, b, np.array([[0], [0]]))
    # cos(a0,a1)=1, cos(a0,b1)=1, cos(b0,a1)=0, cos(b0,b1)=0
    assert out["level_0"]["within"] == pytest.approx(0.5)
    assert out["level_0"]["within_pairs"] == 1
    assert "across" not in out["level_0"] and "across_per_item" not in out["level_0"]
    assert out["across_view"] == pytest.approx(0.5)
    assert out["across_view_per_item"] == pytest.approx([0.0, 1.0])


def test_similarity_pair_counts_subset_of_2_2_2():
    # leaves 0,1,2,4,5,7 of a 2,2,2 hierarchy
    leaves = np.array([0, 1, 2, 4, 5, 7])
    labels = np.stack([leaves // 4, leaves // 2, leaves], axis=1)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    out = hierarchical_similarity(a, b, labels)
    assert out["level_0"]["within_pairs"] == 6
    assert out["level_0"]["across_pairs"] == 9
    assert out["level_1"]["within_pairs"] == 2
    assert out["level_1"]["across_pairs"] == 4
    assert "within" not in out["level_2"]
    assert out["level_2"]["across_pairs"] == 2
    # items 2 (leaf 2) and 5 (leaf 7) have no sibling leaf in the subset
    per = out["level_2"]["across_per_item"]
    assert per[2] is None and per[5] is None
    assert all(isinstance(v, float) for i, v in enumerate(per) if i not in (2, 5))
    assert out["level_1"]["within_per_item"][2] is None
    json.dumps(out)


def test_similarity_matches_brute_force_on_random_data():
    rng = np.random.default_rng(1)
    leaves = rng.choice(12, size=9, replace=False)  # branching 2,3,2
    labels = np.stack([leaves // 6, leaves // 2, leaves], axis=1)
    a, b = rng.normal(size=(9, 4)), rng.normal(size=(9, 4))
    out = hierarchical_similarity(a, b, labels)
    views = np.concatenate([a, b]) / np.linalg.norm(np.concatenate([a, b]), axis=1)[:, None]
    s = views @ views.T
    item_pair = (s[:9, :9] + s[:9, 9:] + s[9:, :9] + s[9:, 9:]) / 4
    i, j = np.triu_indices(9, k=1)
    for l in range(3):
        same = labels[i, l] == labels[j, l]
        parent = np.ones_like(same) if l == 0 else labels[i, l - 1] == labels[j, l - 1]
        for key, mask in (("within", same), ("across", ~same & parent)):
            if mask.sum():
                assert out[f"level_{l}"][f"{key}_pairs"] == mask.sum()
                assert out[f"level_{l}"][key] == pytest.approx(item_pair[i, j][mask].mean())
            else:
                assert key not in out[f"level_{l}"]
    assert out["across_view"] == pytest.approx(np.diag(s[:9, 9:]).mean())


def test_similarity_rejects_local_class_indices():
    # level-1 index 0 appears under both top classes: not global indices
    labels = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    with pytest.raises(UsageError, match="^labels"):
        hierarchical_similarity(np.ones((4, 2)), np.ones((4, 2)), labels)


# ---------------------------------------------------------------- PCA

def test_pca_rank_two_explains_everything():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 2)) @ rng.normal(size=(2, 10)) + 5.0
    out = pca_2d(x, seed=0)
    assert out["components"].shape == (100, 2)
    assert out["explained_variance_ratio"].shape == (2,)
    assert out["explained_variance_ratio"].sum() == pytest.approx(1.0, abs=1e-9)
    # a full-rank cloud does not
    y = rng.normal(size=(100, 10))
    assert pca_2d(y)["explained_variance_ratio"].sum() < 0.6
    with pytest.raises(UsageError, match="^n_components"):
        pca_2d(y, n_components=11)


def test_sample_indices():
    idx = sample_indices(5000, n=1000, seed=3)
    assert idx.shape == (1000,) and np.unique(idx).size == 1000
    assert idx.min() >= 0 and idx.max() < 5000
    np.testing.assert_array_equal(idx, sample_indices(5000, n=1000, seed=3))
    assert not np.array_equal(idx, sample_indices(5000, n=1000, seed=4))
    np.testing.assert_array_equal(sample_indices(30, n=1000, seed=0), np.arange(30))


# ---------------------------------------------------------------- CKA

def test_cka_self_orthogonal_and_scale_invariance():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8))
    y = x @ rng.normal(size=(8, 5)) + 0.5 * rng.normal(size=(60, 5))
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3.7 * x @ q) == pytest.approx(1.0)
    base = linear_cka(x, y)
    assert 0.2 < base < 0.99
    assert linear_cka(3.7 * x @ q + 2.0, y) == pytest.approx(base)
    assert linear_cka(x, y) == pytest.approx(linear_cka(y, x))
    assert linear_cka(x, x, debiased=True) == pytest.approx(1.0)
    assert linear_cka(x, 3.7 * x @ q, debiased=True) == pytest.approx(1.0)
    assert linear_cka(3.7 * x @ q - 1.0, y, debiased=True) == pytest.approx(
        linear_cka(x, y, debiased=True))


def test_cka_feature_and_gram_forms_agree():
    rng = np.random.default_rng(2)
    for n, d1, d2 in ((30, 5, 7), (10, 40, 25)):
        x = _centered(rng.normal(size=(n, d1)), "x")
        y = _centered(rng.normal(size=(n, d2)), "y")
        assert _cross(x, y, "feature") == pytest.approx(_cross(x, y, "gram"))


def test_cka_debiased_matches_song_formula():
    rng = np.random.default_rng(3)
    n = 12
    x, y = rng.normal(size=(n, 30)), rng.normal(size=(n, 4))

    def hsic_u(k, l):
        k, l = k.copy(), l.copy()
        np.fill_diagonal(k, 0.0)
        np.fill_diagonal(l, 0.0)
        one = np.ones(n)
        return (np.trace(k @ l) + (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2))
                - 2.0 / (n - 2) * one @ k @ l @ one) / (n * (n - 3))

    k, l = x @ x.T, y @ y.T  # uncentered: the estimator is shift-invariant
    want = hsic_u(k, l) / np.sqrt(hsic_u(k, k) * hsic_u(l, l))
    assert linear_cka(x, y, debiased=True) == pytest.approx(want)


def test_cka_independent_features_small():
    rng = np.random.default_rng(4)
    n, d = 40, 200
    biased = [linear_cka(rng.normal(size=(n, d)), rng.normal(size=(n, d))) for _ in range(5)]
    unbiased = [linear_cka(rng.normal(size=(n, d)), rng.normal(size=(n, d)), True)
                for _ in range(5)]
    assert np.mean(biased) > 0.5  # few samples, many features: biased estimate inflated
    assert abs(np.mean(unbiased)) < 0.05
    x, y = rng.normal(size=(2000, 20)), rng.normal(size=(2000, 20))
    assert linear_cka(x, y) < 0.03


def test_cka_matrix():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(50, 6))
    acts = {"head_input": x, "head_1": np.maximum(x @ rng.normal(size=(6, 9)), 0),
            "head_out": rng.normal(size=(50, 3))}
    names, m = cka_matrix(acts)
    assert names == ["head_input", "head_1", "head_out"]
    assert m.shape == (3, 3) and m.dtype == np.float64
    np.testing.assert_allclose(np.diag(m), 1.0)
    np.testing.assert_allclose(m, m.T)
    assert m[0, 1] == pytest.approx(linear_cka(x, acts["head_1"]))
    _, md = cka_matrix(acts, debiased=True)
    assert md[0, 2] == pytest.approx(linear_cka(x, acts["head_out"], debiased=True))
    assert np.isnan(cka_matrix({"a": x, "dead": np.zeros((50, 4))})[1][0, 1])
    with pytest.raises(UsageError, match="^debiased"):
        linear_cka(x[:3], x[:3], debiased=True)
