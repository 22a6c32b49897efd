"""Tests of the hierarchical dataset (DESIGN §1.1) and its channel-preference
probes (DESIGN §4.1)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from simclr_controlled.datasets import get_dataset, hierarchy
from simclr_controlled.errors import UsageError

SMALL = dict(branching=(2, 3, 4), mask_size=5, crop_size=3, val_fraction=0.25)


def _small(seed=0, **overrides):
    return hierarchy.make_dataset(seed=seed, **{**SMALL, **overrides})


def _arrays(d):
    return ([d.images, d.train_idx, d.val_idx, *d.masks]
            + [d.labels[k] for k in sorted(d.labels)])


def test_deterministic_in_seed():
    a, b, c = _small(3), _small(3), _small(4)
    for x, y in zip(_arrays(a), _arrays(b)):
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes()
    assert a.images.tobytes() != c.images.tobytes()
    assert any(x.tobytes() != y.tobytes() for x, y in zip(a.masks, c.masks))


def test_default_size_and_layout():
    d = get_dataset("hierarchy", seed=0)
    assert d.name == "hierarchy"
    assert d.images.shape == (10_000, 38, 38, 4) and d.images.dtype == np.float32
    assert 0.0 <= d.images.min() and d.images.max() < 1.0
    assert [mk.shape for mk in d.masks] == [(n, 38, 38) for n in (10, 100, 1000, 10_000)]
    assert all(mk.dtype == np.float32 for mk in d.masks)
    assert d.val_idx.size == 1000 and d.train_idx.size == 9000
    assert d.params == dict(branching=[10, 10, 10, 10], mask_size=38, crop_size=28,
                            val_fraction=0.1, seed=0)
    assert dict(d.decoding_splits) == {}


@pytest.mark.parametrize("branching", [(5, 5, 5, 5), (2, 3, 4), "5,5,5,5", [4, 1, 3]])
def test_item_count_is_product(branching):
    d = hierarchy.make_dataset(branching=branching, mask_size=4, crop_size=2)
    factors = hierarchy.parse_branching(branching)
    assert d.num_items == math.prod(factors)
    assert d.images.shape == (math.prod(factors), 4, 4, len(factors))
    assert sorted(d.labels) == [f"level_{l}" for l in range(len(factors))]
    assert hierarchy.class_counts(branching) == [mk.shape[0] for mk in d.masks]


def test_channel_shared_iff_class_shared():
    d = _small()
    flat = d.images.reshape(d.num_items, -1, d.images.shape[-1])
    for l in range(3):
        ch = flat[..., l]
        same_pixels = np.all(ch[:, None, :] == ch[None, :, :], axis=-1)
        lab = d.labels[f"level_{l}"]
        same_class = lab[:, None] == lab[None, :]
        np.testing.assert_array_equal(same_pixels, same_class)
        # ... and the channel is the class's own mask.
        np.testing.assert_array_equal(d.images[..., l], d.masks[l][lab])


def test_labels_follow_parent_structure():
    d = _small()
    factors = (2, 3, 4)
    np.testing.assert_array_equal(d.labels["level_2"], np.arange(24))
    for l in range(3):
        lab = d.labels[f"level_{l}"]
        assert lab.dtype == np.int64
        assert np.array_equal(np.unique(lab), np.arange(math.prod(factors[:l + 1])))
        if l:
            np.testing.assert_array_equal(lab // factors[l], d.labels[f"level_{l - 1}"])


@pytest.mark.parametrize("seed", range(5))
def test_split_disjoint_covering_and_sized(seed):
    d = _small(seed, val_fraction=0.4)
    assert d.train_idx.dtype == np.int64 and d.val_idx.dtype == np.int64
    assert np.all(np.diff(d.train_idx) > 0) and np.all(np.diff(d.val_idx) > 0)
    assert np.intersect1d(d.train_idx, d.val_idx).size == 0
    np.testing.assert_array_equal(np.union1d(d.train_idx, d.val_idx), np.arange(24))
    assert d.val_idx.size == round(0.4 * 24)


@pytest.mark.parametrize("seed", range(5))
def test_val_items_upper_masks_seen_in_training_leaf_masks_not(seed):
    # val_fraction 0.75 of (2, 3, 4) is the most the guarantee allows: 18 of 24.
    d = _small(seed, val_fraction=0.75)
    assert d.val_idx.size == 18
    train, val = d.images[d.train_idx], d.images[d.val_idx]
    tr = train.reshape(len(train), -1, 3)
    va = val.reshape(len(val), -1, 3)
    for l in range(3):
        seen = np.any(np.all(va[:, None, :, l] == tr[None, :, :, l], axis=-1), axis=1)
        assert seen.all() if l < 2 else not seen.any(), l


def test_impossible_split_raises():
    with pytest.raises(UsageError, match="^val_fraction"):
        _small(val_fraction=0.8)  # 19 of 24 would empty a level-1 class
    with pytest.raises(UsageError, match="^val_fraction"):
        hierarchy.make_dataset(branching=(3, 1), mask_size=4, crop_size=2)
    with pytest.raises(UsageError, match="^val_fraction"):
        _small(val_fraction=0.01)  # holds out no item


@pytest.mark.parametrize("params, name", [
    (dict(branching=(10, 0, 10)), "branching"),
    (dict(branching="10,x"), "branching"),
    (dict(branching=(10, 2.5)), "branching"),
    (dict(branching=()), "branching"),
    (dict(branching=(1000, 1000, 10)), "branching"),
    (dict(crop_size=40), "crop_size"),
    (dict(crop_size=0), "crop_size"),
    (dict(mask_size=0), "mask_size"),
    (dict(val_fraction=0), "val_fraction"),
    (dict(val_fraction=1.5), "val_fraction"),
    (dict(val_fraction=1.0), "val_fraction"),
])
def test_bad_parameters_raise_naming_parameter(params, name):
    with pytest.raises(ValueError, match=f"^{name}:") as err:
        hierarchy.make_dataset(**params)
    assert isinstance(err.value, UsageError)


def _probe_level_matches(refs, probes):
    """matches[name][i, k]: probe i equals reference i in channel k."""
    return {name: np.all(p == refs, axis=(1, 2)) for name, p in probes.items()}


@pytest.mark.parametrize("seed", [0, 1])
def test_train_probes_match_exactly_one_channel(seed):
    d = _small()
    refs, probes = hierarchy.channel_preference_probes(d, num_references=12, seed=seed)
    assert refs.shape == (12, 5, 5, 3)
    assert sorted(probes) == ["baseline", "level_0", "level_1", "level_2"]
    # Distinct training items.
    is_ref = np.all(refs[:, None] == d.images[None], axis=(2, 3, 4))  # [12, N]
    assert (is_ref.sum(axis=1) == 1).all()
    ref_items = is_ref.argmax(axis=1)
    assert np.unique(ref_items).size == 12 and np.isin(ref_items, d.train_idx).all()
    matches = _probe_level_matches(refs, probes)
    for l in range(3):
        expected = np.zeros((12, 3), dtype=bool)
        expected[:, l] = True
        np.testing.assert_array_equal(matches[f"level_{l}"], expected)
    assert not matches["baseline"].any()
    # Non-matching channels are training-class masks of the right level.
    train_masks = [d.masks[k][np.unique(d.labels[f"level_{k}"][d.train_idx])] for k in range(3)]
    for p in probes.values():
        for k in range(3):
            hit = np.all(p[:, None, :, :, k] == train_masks[k][None], axis=(2, 3))
            assert hit.any(axis=1).all()


@pytest.mark.parametrize("branching", [(2, 3, 4), (24,)])
def test_random_probes_share_no_dataset_mask(branching):
    # With one level a probe channel is a contiguous draw, so replaying the
    # dataset's random stream would reproduce its masks exactly.
    d = _small(branching=branching)
    num_levels = len(branching)
    refs, probes = hierarchy.channel_preference_probes(d, num_references=10, source="random",
                                                       seed=d.params["seed"])
    all_masks = np.concatenate([mk.reshape(len(mk), -1) for mk in d.masks])
    for arr in [refs, *probes.values()]:
        chans = np.moveaxis(arr, -1, 1).reshape(-1, 25)
        assert not np.any(np.all(chans[:, None] == all_masks[None], axis=-1))
    matches = _probe_level_matches(refs, probes)
    for l in range(num_levels):
        assert matches[f"level_{l}"][:, l].all()
        assert not np.delete(matches[f"level_{l}"], l, axis=1).any()
    assert not matches["baseline"].any()
    again, _ = hierarchy.channel_preference_probes(d, num_references=10, source="random",
                                                   seed=d.params["seed"])
    assert again.tobytes() == refs.tobytes()


def test_probe_bad_arguments():
    d = _small()
    with pytest.raises(UsageError, match="^source:.*train.*random"):
        hierarchy.channel_preference_probes(d, source="val")
    with pytest.raises(UsageError, match="^num_references"):
        hierarchy.channel_preference_probes(d, num_references=d.train_idx.size + 1)
