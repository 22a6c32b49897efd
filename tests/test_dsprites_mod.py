"""Tests for the modified dSprites dataset (DESIGN §1.2)."""
from __future__ import annotations

import json

import hsluv
import numpy as np
import pytest

from simclr_controlled.datasets import dsprites_mod, get_dataset
from simclr_controlled.errors import UsageError

N = 15360
GRID = (10, 6, 16, 16)


@pytest.fixture(scope="module")
def ds():
    return dsprites_mod.make_dataset(seed=0)


@pytest.fixture(scope="module")
def all_masks():
    return {shape: dsprites_mod.render_masks(shape) for shape in dsprites_mod.SHAPES}


def _hue_diff(a, b):
    d = np.abs(np.asarray(a) - np.asarray(b)) % 360
    return np.minimum(d, 360 - d)


def test_array_types_and_ranges(ds):
    assert ds.name == "dsprites_mod"
    assert ds.images.shape == (N, 64, 64, 3) and ds.images.dtype == np.float32
    assert ds.images.min() == 0.0 and ds.images.max() <= 1.0
    assert set(ds.labels) == {"color", "scale", "x", "y", "position"}
    for lab in ds.labels.values():
        assert lab.shape == (N,) and lab.dtype == np.int64
    np.testing.assert_array_equal(ds.train_idx, np.arange(N))
    assert ds.train_idx.dtype == np.int64
    assert ds.val_idx.shape == (0,) and ds.val_idx.dtype == np.int64


def test_every_factor_combination_exactly_once(ds):
    lab = ds.labels
    combos = np.stack([lab["color"], lab["scale"], lab["x"], lab["y"]], axis=1)
    assert np.unique(combos, axis=0).shape[0] == N
    for name, size in zip(("color", "scale", "x", "y"), GRID):
        np.testing.assert_array_equal(np.bincount(lab[name]), np.full(size, N // size))
    # Documented order: np.unravel_index(n, (10, 6, 16, 16)).
    np.testing.assert_array_equal(combos, np.stack(np.unravel_index(np.arange(N), GRID), 1))
    np.testing.assert_array_equal(lab["position"], lab["x"] * 16 + lab["y"])
    assert np.unique(lab["position"]).shape[0] == 256


def test_images_are_mask_times_label_color(ds, all_masks):
    masks = all_masks["square"].astype(np.float32)
    pal = dsprites_mod.palette()
    block = N // 10
    for c in range(10):  # blockwise: one [1536, 64, 64, 3] temporary at a time
        expected = masks[..., None] * pal[c]
        assert np.array_equal(ds.images[c * block:(c + 1) * block].reshape(expected.shape),
                              expected), c


def test_background_black_and_sprite_colored(ds):
    assert dsprites_mod.palette().min() > 0
    sprite = ds.images[..., 0] > 0
    counts = sprite.sum(axis=(1, 2))
    assert counts.min() > 0 and counts.max() < 64 * 64 // 2
    # Every nonzero value sits on a sprite pixel whose three channels are set,
    # so all other pixels are exactly (0, 0, 0).
    assert np.count_nonzero(ds.images) == 3 * np.count_nonzero(sprite)
    assert np.all(ds.images[:, [0, 0, -1, -1], [0, -1, 0, -1], :] == 0)


def test_palette_follows_husl_convention():
    pal = dsprites_mod.palette()
    assert pal.shape == (10, 3) and pal.dtype == np.float32
    assert pal.min() >= 0 and pal.max() <= 1
    expected_hues = (np.linspace(0, 1, 11)[:-1] + 0.01) % 1 * 359
    hsl = np.array([hsluv.rgb_to_hsluv(list(map(float, c))) for c in pal])
    assert np.all(_hue_diff(hsl[:, 0], expected_hues) < 1)
    np.testing.assert_allclose(hsl[:, 1], 0.9 * 99, atol=1)
    np.testing.assert_allclose(hsl[:, 2], 0.65 * 99, atol=1)
    with pytest.raises(UsageError, match="num_colors"):
        dsprites_mod.palette(0)


def test_rendered_pixels_have_ten_distinct_palette_hues(ds):
    lab = ds.labels
    expected_hues = (np.linspace(0, 1, 11)[:-1] + 0.01) % 1 * 359
    hues = []
    for c in range(10):
        idx = np.flatnonzero((lab["color"] == c) & (lab["scale"] == 0))
        pixels = ds.images[idx][ds.images[idx].any(axis=-1)]
        # A flat fill: every sprite pixel has exactly one colour.
        assert np.unique(pixels, axis=0).shape[0] == 1
        hue = hsluv.rgb_to_hsluv(list(map(float, pixels[0])))[0]
        assert _hue_diff(hue, expected_hues[c]) < 1
        hues.append(hue)
    pairwise = _hue_diff(np.array(hues)[:, None], np.array(hues)[None, :])
    assert np.all(pairwise[~np.eye(10, dtype=bool)] > 30)


@pytest.mark.parametrize("shape", dsprites_mod.SHAPES)
def test_sprite_inside_canvas_and_scale_grows(all_masks, shape):
    masks = all_masks[shape]
    assert masks.shape == (6, 16, 16, 64, 64) and masks.dtype == bool
    # No sprite pixel on the border row/column at any scale and position.
    assert not masks[..., 0, :].any() and not masks[..., -1, :].any()
    assert not masks[..., :, 0].any() and not masks[..., :, -1].any()
    counts = masks.sum(axis=(3, 4))
    assert counts.min() > 0
    assert np.all(np.diff(counts, axis=0) > 0)  # larger scale, more pixels
    # The position range is used fully: the biggest sprite nearly reaches the edges.
    # (Columns: every shape is widest horizontally.)
    assert np.flatnonzero(masks[-1, 0, 0].any(axis=0)).min() <= 2
    assert np.flatnonzero(masks[-1, 15, 0].any(axis=0)).max() >= 61


@pytest.mark.parametrize("shape", dsprites_mod.SHAPES)
def test_x_moves_columns_and_y_moves_rows(all_masks, shape):
    masks = all_masks[shape].astype(np.float64)
    area = masks.sum(axis=(3, 4))
    col_centroid = (masks.sum(axis=3) * np.arange(64)).sum(axis=-1) / area
    row_centroid = (masks.sum(axis=4) * np.arange(64)).sum(axis=-1) / area
    assert np.all(np.diff(col_centroid, axis=1) > 1)  # along x
    assert np.all(np.diff(row_centroid, axis=2) > 1)  # along y
    # y barely moves columns (sub-pixel phase can reshape the hard mask slightly).
    assert np.all(np.abs(np.diff(col_centroid, axis=2)) < 0.5)


def test_square_sides_are_exact(all_masks):
    counts = all_masks["square"].sum(axis=(3, 4))
    sides = np.array([10, 12, 14, 16, 18, 20])
    np.testing.assert_array_equal(counts, np.broadcast_to((sides ** 2)[:, None, None], counts.shape))


def test_shapes_differ(all_masks):
    shapes = dsprites_mod.SHAPES
    assert len(set(shapes)) == 3 and dsprites_mod.DEFAULT_SHAPE in shapes
    for i, a in enumerate(shapes):
        for b in shapes[i + 1:]:
            # Different at every scale and position, not merely somewhere.
            diff = (all_masks[a] != all_masks[b]).any(axis=(3, 4))
            assert diff.all(), (a, b)


def test_decoding_splits(ds):
    held = ds.params["held_out"]
    json.dumps(dict(ds.params))
    assert ds.params["seed"] == 0 and ds.params["shape"] == "square"
    assert len(set(held["scales"])) == 2 and set(held["scales"]) <= set(range(6))
    assert len(set(held["positions"])) == 26 and set(held["positions"]) <= set(range(256))
    assert len(set(held["colors"])) == 2 and set(held["colors"]) <= set(range(10))
    sizes = dict(color=(9200, 6160), scale=(12288, 3072), position=(12288, 3072))
    assert set(ds.decoding_splits) == set(sizes)
    for factor, (train, val) in ds.decoding_splits.items():
        assert (len(train), len(val)) == sizes[factor], factor
        for idx in (train, val):
            assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0)
        assert np.intersect1d(train, val).size == 0
        np.testing.assert_array_equal(np.union1d(train, val), np.arange(N))
    lab = ds.labels
    train, val = ds.decoding_splits["color"]
    assert set(lab["scale"][train]) == set(range(6)) - set(held["scales"])
    assert set(lab["position"][train]) == set(range(256)) - set(held["positions"])
    assert np.all(np.isin(lab["scale"][val], held["scales"])
                  | np.isin(lab["position"][val], held["positions"]))
    assert set(lab["color"][train]) == set(range(10))  # all colors are decoded
    for factor in ("scale", "position"):
        train, val = ds.decoding_splits[factor]
        assert set(lab["color"][val]) == set(held["colors"])
        assert not set(lab["color"][train]) & set(held["colors"])


def test_determinism(ds):
    again = dsprites_mod.make_dataset(seed=0)
    assert np.array_equal(again.images, ds.images)  # np.testing is slow on 755 MB
    assert again.params == ds.params
    for factor, (train, val) in ds.decoding_splits.items():
        np.testing.assert_array_equal(again.decoding_splits[factor][0], train)
        np.testing.assert_array_equal(again.decoding_splits[factor][1], val)
    del again
    other = dsprites_mod.make_dataset(seed=1)
    assert other.params["held_out"] != ds.params["held_out"]
    assert not np.array_equal(other.decoding_splits["color"][0], ds.decoding_splits["color"][0])
    # The seed only draws held-out values; the images are the full cross.
    assert np.array_equal(other.images, ds.images)


def test_other_shape_dataset():
    heart = dsprites_mod.make_dataset(seed=0, shape="heart")
    assert heart.params["shape"] == "heart" and heart.images.shape == (N, 64, 64, 3)
    assert np.array_equal(heart.images[:N // 10, :, :, 0].reshape(6, 16, 16, 64, 64) > 0,
                          dsprites_mod.render_masks("heart"))


@pytest.mark.parametrize("call", [
    lambda: dsprites_mod.make_dataset(shape="triangle"),
    lambda: dsprites_mod.render_masks("Square"),
    lambda: get_dataset("dsprites_mod", seed=0, shape="star"),
])
def test_unknown_shape_raises(call):
    with pytest.raises(ValueError, match=r"^shape") as err:
        call()
    assert isinstance(err.value, UsageError)
    for allowed in dsprites_mod.SHAPES:
        assert allowed in str(err.value)


def test_bad_seed_raises():
    # --seed is config.validate's (tests/test_cli.py); here an assertion.
    with pytest.raises(AssertionError, match=r"^seed"):
        dsprites_mod.make_dataset(seed=-1)
