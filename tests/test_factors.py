"""Factor datasets (DESIGN §1.3) and random bits (DESIGN §1.4): the cross and
its subsets, the decoding-split rule, the sprite geometry, dsprites_mod
unchanged, the bits through every augmentation, and bad --factors,
--max_items, --random_bits refused by run.py."""
from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from simclr_controlled import config as config_lib
from simclr_controlled import data_spec, datasets, footprint, names
from simclr_controlled.config import Config
from simclr_controlled.datasets import dsprites_mod, factors, sprites
from simclr_controlled.errors import UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(ROOT, "run.py")

TINY = "shape:3,orientation:4,color:3,scale:2,x:3,y:2"  # 432 items
TINY_COUNTS = {"color": 3, "shape": 3, "scale": 2, "orientation": 4, "x": 3, "y": 2}


def make(spec=TINY, **kw):
    return factors.make_dataset(factors=spec, **kw)


def _hash(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


# --- the spec -----------------------------------------------------------------

def test_parse_puts_factors_in_item_order():
    spec = data_spec.parse_factors(" y:2, x:3,color:3 ,shape:2")
    assert spec == (("color", 3), ("shape", 2), ("x", 3), ("y", 2))
    assert data_spec.canonical(spec) == "color:3,shape:2,x:3,y:2"
    assert data_spec.decoded_factors(spec) == ("color", "shape", "position")
    assert data_spec.decoded_factors(data_spec.parse_factors("x:4,scale:3")) == ("scale", "x")
    assert data_spec.cross_size(spec) == 36 and data_spec.num_items(spec, 10) == 10
    assert data_spec.num_items(spec, 0) == 36 and data_spec.num_items(spec, 100) == 36


@pytest.mark.parametrize("text, words", [
    ("color:0,x:4", ["color", "2 to 360"]), ("color:-3,x:4", ["2 to 360"]),
    ("color:1,x:4", ["2 to 360"]), ("color:2.5,x:4", ["2 to 360", "2.5"]),
    ("shape:4,x:4", ["shape", "2 to 3"]), ("x:65,color:2", ["x", "2 to 64"]),
    ("hue:3,x:4", ["unknown factor 'hue'", "color, shape, scale, orientation, x, y"]),
    ("color:3,color:4", ["color given twice"]), ("x:16,y:16", ["at least two"]),
    ("color:10", ["at least two"]), ("color=10,x:4", ["name:count"]), ("", ["name:count"]),
])
def test_parse_refuses_naming_the_flag(text, words):
    with pytest.raises(UsageError, match="^--factors: ") as e:
        data_spec.parse_factors(text)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


# --- the cross and its subsets -----------------------------------------------------

def test_every_combination_exactly_once_in_the_full_cross():
    ds = make()
    n = 432
    assert ds.name == "factors" and ds.images.shape == (n, 64, 64, 3) and ds.images.dtype == np.float32
    assert set(ds.labels) == set(TINY_COUNTS) | {"position"}
    combos = np.stack([ds.labels[f] for f in names.FACTOR_NAMES], 1)
    assert np.unique(combos, axis=0).shape[0] == n
    grid = tuple(TINY_COUNTS[f] for f in names.FACTOR_NAMES)
    np.testing.assert_array_equal(combos, np.stack(np.unravel_index(np.arange(n), grid), 1))
    for f, k in TINY_COUNTS.items():
        assert ds.labels[f].dtype == np.int64
        np.testing.assert_array_equal(np.bincount(ds.labels[f]), np.full(k, n // k))
    np.testing.assert_array_equal(ds.labels["position"], ds.labels["x"] * 2 + ds.labels["y"])
    np.testing.assert_array_equal(ds.train_idx, np.arange(n))
    assert ds.val_idx.shape == (0,) and ds.random_bits.shape == (n, 0)
    # Colour, scale and position always show: images differing in one of them differ.
    key = np.stack([ds.labels[f] for f in ("color", "scale", "x", "y")], 1)
    for i in np.flatnonzero((ds.labels["shape"] == 0) & (ds.labels["orientation"] == 0)):
        others = np.flatnonzero(np.any(key != key[i], axis=1))
        assert np.all(np.any(ds.images[others] != ds.images[i], axis=(1, 2, 3))), i


def test_factor_values_and_fixed_defaults():
    ds = make("color:2,x:3")
    pal = sprites.palette(2)
    lit = ds.images.any(axis=-1)
    for i in range(len(ds.images)):
        np.testing.assert_array_equal(ds.images[i][lit[i]], np.broadcast_to(pal[ds.labels["color"][i]],
                                                                             (lit[i].sum(), 3)))
    # Scale 1 (a 20 px square), y fixed at the centre: rows 22..41 lit.
    assert np.all(lit.sum(axis=(1, 2)) == 400)
    assert np.all(np.flatnonzero(lit[0].any(axis=1)) == np.arange(22, 42))
    white = make("scale:2,x:2", shape="heart")
    assert set(np.unique(white.images)) == {0.0, 1.0}  # fixed colour: white
    assert white.params["shape"] == "heart" and white.params["factors"] == "scale:2,x:2"


def test_max_items_draws_a_seeded_subset_of_the_cross():
    full = make()
    a = make(max_items=100, seed=3)
    b = make(max_items=100, seed=3)
    c = make(max_items=100, seed=4)
    assert a.num_items == 100 and a.params["max_items"] == 100
    cross = factors.cross_indices(data_spec.parse_factors(TINY), 100, 3)
    assert np.all(np.diff(cross) > 0) and cross.max() < 432
    # The subset is those items of the full cross, images and labels alike.
    np.testing.assert_array_equal(a.images, full.images[cross])
    for f in full.labels:
        np.testing.assert_array_equal(a.labels[f], full.labels[f][cross])
    assert np.array_equal(a.images, b.images) and a.params == b.params
    assert not np.array_equal(a.labels["color"], c.labels["color"])
    assert make(max_items=432).num_items == 432 and make(max_items=10_000).num_items == 432
    with pytest.raises(UsageError, match="^--max_items: .*no (training|validation) items"):
        make("color:10,shape:3", max_items=1)


# --- decoding splits ----------------------------------------------------------------

SPLIT_SPECS = [names.DSPRITES_MOD_FACTORS, TINY, "scale:4,orientation:5", "color:5,shape:3",
               "color:4,x:6", "shape:2,scale:3,orientation:6,y:7"]


@pytest.mark.parametrize("spec", SPLIT_SPECS)
def test_splits_are_disjoint_and_follow_the_rule(spec):
    parsed = data_spec.parse_factors(spec)
    decoded = data_spec.decoded_factors(parsed)
    cross = factors.cross_indices(parsed, 0, 0)
    labels = factors.item_labels(parsed, cross)
    held = factors.draw_held_out(parsed, seed=5)
    splits = factors.decoding_splits(labels, held)
    assert tuple(splits) == decoded == tuple(held)
    identity = {"color", "shape"}
    for f in decoded:
        k = factors.unit_count(parsed, f)
        expect = min(k - 1, max(1, round(factors.HELD_OUT_FRACTION[f] * k)))
        assert len(set(held[f])) == len(held[f]) == expect and set(held[f]) <= set(range(k))
        # Nuisance: the other kind's decoded factors, else the other decoded factors.
        other = [g for g in decoded if (g in identity) != (f in identity)]
        nuisance = other or [g for g in decoded if g != f]
        train, val = splits[f]
        assert len(train) and len(val)
        assert train.dtype == val.dtype == np.int64 and np.all(np.diff(train) > 0)
        assert np.intersect1d(train, val).size == 0
        np.testing.assert_array_equal(np.union1d(train, val), np.arange(len(cross)))
        out = np.zeros(len(cross), bool)
        for g in nuisance:
            assert not np.isin(labels[g][train], held[g]).any()
            out |= np.isin(labels[g], held[g])
        np.testing.assert_array_equal(np.flatnonzero(out), val)
        assert set(labels[f][train]) == set(range(k))  # every value of f is decoded


def test_splits_are_drawn_with_the_seed():
    parsed = data_spec.parse_factors(TINY)
    assert factors.draw_held_out(parsed, 1) == factors.draw_held_out(parsed, 1)
    assert factors.draw_held_out(parsed, 1) != factors.draw_held_out(parsed, 2)


# --- geometry ---------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["shape:3,orientation:40,scale:6,x:2,y:2",
                                  "shape:3,orientation:7,scale:2,x:5,y:3"])
def test_sprite_inside_the_canvas_at_every_scale_orientation_position(spec):
    ds = make(spec)
    lit = ds.images.any(axis=-1)
    assert lit.sum(axis=(1, 2)).min() > 0
    rows, cols = lit.any(axis=2), lit.any(axis=1)
    # No lit pixel in the border rows or columns (margin 1 px): nothing is clipped.
    assert not rows[:, 0].any() and not rows[:, -1].any()
    assert not cols[:, 0].any() and not cols[:, -1].any()
    # The position range is used: at x = 0 some sprite comes within 3 px of the left edge.
    left = ds.labels["x"] == 0
    assert min(np.flatnonzero(c).min() for c in cols[left]) <= 3


# (angles, positions per axis): 15-degree steps; quarter turns with centres on
# half pixels, where pixel centres lie exactly on the square's edges.
@pytest.mark.parametrize("angles, positions", [(24, 3), (4, 5), (12, 5)])
def test_rotated_square_differs_exactly_when_not_a_multiple_of_90_degrees(angles, positions):
    ds = make(f"orientation:{angles},scale:6,x:{positions},y:{positions}")
    grid = ds.images.any(axis=-1).reshape(6, angles, positions, positions, 64, 64)  # scale, angle, x, y
    step = 360 // angles
    for i in range(angles):
        same = np.all(grid[:, i] == grid[:, 0], axis=(-1, -2))
        if (step * i) % 90 == 0:
            assert same.all(), i
        else:
            assert not same.any(), i
    if angles % 8 == 0:  # at 45 degrees the square is a diamond, wider than the square
        diamond = grid[-1, angles // 8, 1, 1]
        assert diamond.sum(axis=1).max() > grid[-1, 0, 1, 1].sum(axis=1).max()


# --- dsprites_mod unchanged ----------------------------------------------------------

# sha256 of the arrays of the dedicated dsprites_mod renderer this family replaced
# (computed with it before the change; seed 0, shape square).
DSPRITES_IMAGES = "37e8e1403d5bb99f5cb202d0553f16685f2f775e06836159d6c9fd8059553bb8"
DSPRITES_LABELS = "85048aa304b88e4984aad0e32088b202fac36b7ba091ac22ddf481883b13f839"
DSPRITES_SPLITS = {0: "842bdeca20e8e083c324edc9ba2dc365f5546c08ed0752972663f50c022fcaa6",
                   3: "c9e658cfb5ab20a9a6e59e62495f26ed1e31f551929c7f5f25130efafddd629d"}
DSPRITES_MASKS = {"square": "9f3f1406d9ea24ffe0db64dadc7caf721002e131822cd27a975c82e7f808ef0a",
                  "ellipse": "5a2bd3fb8426d517e05843b3af27edad9d8a081d605dc7984514cd5217dbd33c",
                  "heart": "c0fb12c585f23130c9f4d69bf4b04c1ce8de854bda6e7b833c3525b8fcd54f5f"}
DSPRITES_HELD_OUT_0 = {"scales": [3, 4], "colors": [7, 9], "positions": [
    0, 3, 8, 9, 17, 41, 62, 68, 71, 99, 120, 133, 137, 140, 146, 154, 167, 177, 192, 195, 203,
    216, 218, 230, 234, 243]}


def _legacy_masks(shape: str) -> np.ndarray:
    """The earlier renderer's masks, verbatim (datasets/dsprites_mod.py before DESIGN §1.3)."""
    pix = np.arange(64, dtype=np.float64) + 0.5
    scales = np.linspace(0.5, 1.0, 6)
    half_max = 0.3125 * 64 * scales.max() / 2
    lo, hi = 1.0 + half_max, 64 - 1.0 - half_max
    centres = lo + np.linspace(0.0, 1.0, 16) * (hi - lo)
    masks = np.empty((6, 16, 16, 64, 64), dtype=bool)
    for s, scale in enumerate(scales):
        half = 0.3125 * 64 * scale / 2
        u = ((pix[None, :] - centres[:, None]) / half)[:, None, None, :]
        v = ((pix[None, :] - centres[:, None]) / half)[None, :, :, None]
        if shape == "square":
            masks[s] = (np.abs(u) < 1) & (np.abs(v) < 1)
        elif shape == "ellipse":
            masks[s] = u ** 2 + (2 * v) ** 2 < 1
        else:
            hx, hy = u * 1.14, 0.118 - v * 1.14
            masks[s] = (hx ** 2 + hy ** 2 - 1) ** 3 - hx ** 2 * hy ** 3 < 0
    return masks


@pytest.mark.parametrize("shape", names.SHAPES)
def test_dsprites_mod_masks_are_the_earlier_renderers(shape):
    masks = dsprites_mod.render_masks(shape)
    assert _hash(masks) == DSPRITES_MASKS[shape]
    np.testing.assert_array_equal(masks, _legacy_masks(shape))


def test_dsprites_mod_images_labels_and_splits_unchanged():
    ds = datasets.get_dataset("dsprites_mod", seed=0)
    assert ds.images.dtype == np.float32 and ds.images.shape == (15360, 64, 64, 3)
    assert _hash(ds.images) == DSPRITES_IMAGES  # bit for bit
    assert _hash(*[ds.labels[k] for k in sorted(ds.labels)]) == DSPRITES_LABELS
    sp = ds.decoding_splits
    assert tuple(sp) == names.DSPRITES_FACTORS
    assert _hash(*[a for k in sorted(sp) for a in sp[k]]) == DSPRITES_SPLITS[0]
    assert ds.params == {"shape": "square", "seed": 0, "held_out": DSPRITES_HELD_OUT_0}
    assert list(ds.params["held_out"]) == ["scales", "positions", "colors"]
    # Seed 3's splits from the labels alone (the images do not depend on the seed).
    parsed = data_spec.parse_factors(names.DSPRITES_MOD_FACTORS)
    labels = factors.item_labels(parsed, factors.cross_indices(parsed, 0, 3))
    sp3 = factors.decoding_splits(labels, factors.draw_held_out(parsed, 3))
    assert _hash(*[a for k in sorted(sp3) for a in sp3[k]]) == DSPRITES_SPLITS[3]


# --- random bits ------------------------------------------------------------------

def test_random_bits_are_drawn_per_item_with_the_seed():
    plain = datasets.get_dataset("factors", seed=2, factors="color:3,x:4")
    a = datasets.get_dataset("factors", seed=2, factors="color:3,x:4", random_bits=7)
    b = datasets.get_dataset("factors", seed=2, factors="color:3,x:4", random_bits=7)
    c = datasets.get_dataset("factors", seed=3, factors="color:3,x:4", random_bits=7)
    assert a.random_bits.shape == (12, 7) and a.random_bits.dtype == np.uint8
    assert set(np.unique(a.random_bits)) == {0, 1}
    np.testing.assert_array_equal(a.random_bits, b.random_bits)
    assert not np.array_equal(a.random_bits, c.random_bits)
    assert a.params["random_bits"] == 7 and "random_bits" not in plain.params
    # The bits change nothing else of the dataset.
    assert np.array_equal(a.images, plain.images)
    for f in plain.labels:
        np.testing.assert_array_equal(a.labels[f], plain.labels[f])
    h = datasets.get_dataset("hierarchy", seed=0, branching=(2, 3), mask_size=12, crop_size=11,
                             random_bits=3)
    assert h.random_bits.shape == (6, 3)


def _views(data, augment_fn, bits, batch=8, steps=2):
    from simclr_controlled import input_pipeline
    fn = input_pipeline.train_input_fn(data.images, data.train_idx, global_batch_size=batch, seed=0,
                                       augment_fn=augment_fn, start_step=0, total_steps=steps,
                                       random_bits=bits)
    return list(fn(None))


@pytest.mark.parametrize("preset, flip", [(p, False) for p in names.AUGMENT_PRESETS]
                         + [("crop_jitter", True)])
def test_bits_are_the_same_in_both_views_and_untouched_by_augmentation(preset, flip):
    from simclr_controlled import augment
    k = 5
    data = datasets.get_dataset("factors", seed=1, factors="color:4,scale:2,x:2,y:2", random_bits=k)
    # The training's XLA form for one case (slow to compile), the graph form otherwise.
    fn = augment.make_augment(preset, flip=flip, jit_compile=flip)
    for b in _views(data, fn, data.random_bits):
        index = b["index"].numpy()
        want = np.broadcast_to(data.random_bits[index][:, None, None, :].astype(np.float32),
                               (len(index), 64, 64, k))
        for v in ("view_a", "view_b"):
            assert b[v].shape == (8, 64, 64, 3 + k)
            np.testing.assert_array_equal(b[v].numpy()[..., 3:], want)
        # The image channels are the augmentation's own, as without bits.
        plain = augment.make_augment(preset, flip=flip)(data.images[index], _seeds(index))
        np.testing.assert_allclose(b["view_a"].numpy()[..., :3], plain.numpy(), atol=1e-5)
        if preset != "none" or flip:
            assert np.any(b["view_a"].numpy()[..., :3] != b["view_b"].numpy()[..., :3])


def _seeds(index):
    from simclr_controlled import augment
    return augment.view_seeds(0, 0, index, 0)


def test_bits_follow_the_hierarchy_crop():
    from simclr_controlled import augment
    data = datasets.get_dataset("hierarchy", seed=0, branching=(4, 4, 4), mask_size=16, crop_size=12,
                                random_bits=2)
    for b in _views(data, augment.make_augment("crop", crop_size=12), data.random_bits, batch=16):
        index = b["index"].numpy()
        assert b["view_b"].shape == (16, 12, 12, 3 + 2)
        for v in ("view_a", "view_b"):
            np.testing.assert_array_equal(b[v].numpy()[..., 3:],
                                          np.broadcast_to(data.random_bits[index][:, None, None, :],
                                                          (16, 12, 12, 2)))


def test_evaluation_images_carry_the_bits():
    from simclr_controlled import input_pipeline
    from simclr_controlled.modes import common
    c = Config(mode="probe", dataset="hierarchy", branching=(4, 4, 4), mask_size=16, crop_size=12,
               random_bits=3).with_dataset_defaults()
    data = common.load_dataset(c)
    images = common.eval_images(c, data)
    assert images.shape == (64, 12, 12, 6) and images.dtype == np.float32
    np.testing.assert_array_equal(images[..., :3], data.images[:, 2:14, 2:14, :])
    np.testing.assert_array_equal(images[..., 3:], np.broadcast_to(data.random_bits[:, None, None, :],
                                                                   (64, 12, 12, 3)))
    idx = np.arange(64)[::-1]
    got = np.concatenate([b["image"].numpy() for b in input_pipeline.eval_input_fn(
        data.images, idx, batch_size=10, crop_size=12, random_bits=data.random_bits)(None)])
    np.testing.assert_array_equal(got, images[idx])
    plain = dataclasses.replace(c, random_bits=0)
    assert common.eval_images(plain, common.load_dataset(plain)).shape == (64, 12, 12, 3)


def test_model_input_has_k_more_channels():
    f = Config(dataset="factors", random_bits=4).with_dataset_defaults()
    h = Config(dataset="hierarchy", random_bits=4).with_dataset_defaults()
    assert footprint.model_input_shape(f) == (64, 64, 7)
    assert footprint.model_input_shape(h) == (28, 28, 8)
    assert footprint.model_input_shape(dataclasses.replace(f, random_bits=0)) == (64, 64, 3)


# --- config ------------------------------------------------------------------------

def test_config_fields_lock_and_dataset_params():
    assert {"factors", "max_items", "random_bits"} <= set(config_lib.LOCKED)
    c = Config(dataset="factors", factors="color:3,x:4", max_items=5, random_bits=2, shape="heart")
    assert c.dataset_params() == dict(factors="color:3,x:4", max_items=5, shape="heart", random_bits=2)
    assert Config(dataset="dsprites_mod").dataset_params() == dict(shape="square", random_bits=0)
    assert Config().dataset_params()["random_bits"] == 0
    assert c.with_dataset_defaults().model == names.RESNET18
    assert names.FACTORS in names.DATASETS and names.FACTORS not in names.EXPERIMENTS
    diff = config_lib.locked_differences(dataclasses.replace(c, random_bits=3).to_json(), c)
    assert diff == [("random_bits", 3, 2)]


GIB = 2**30


@pytest.mark.parametrize("changes, memory, flag, words", [
    (dict(dataset="factors", random_bits=64), 8 * GIB, "random_bits", ["allowed here: at most 20"]),
    (dict(dataset="dsprites_mod", random_bits=64), 8 * GIB, "random_bits", ["at most 20"]),
    (dict(dataset="factors", factors="color:360,shape:3,scale:64"), 2 * GIB, "factors",
     ["69,120 items", "--max_items of at most 10,"]),
    (dict(dataset="factors", factors="color:360,shape:3,scale:64", max_items=50_000), 2 * GIB,
     "max_items", ["50,000", "--max_items of at most 10,"]),
])
def test_data_that_cannot_fit_is_refused_naming_the_flag(changes, memory, flag, words):
    c = dataclasses.replace(Config(mode="show", **{k: v for k, v in changes.items() if k == "dataset"})
                            .with_dataset_defaults(), **changes)
    with pytest.raises(UsageError, match=f"^--{flag}: ") as e:
        config_lib.validate(c, memory_bytes=memory)
    for w in words:
        assert w in str(e.value), (w, str(e.value))
    assert "more than this machine's" in str(e.value)
    # What the line allows fits.
    allowed = int(str(e.value).rsplit("at most ", 1)[1].replace(",", ""))
    fix = {"random_bits": dict(random_bits=allowed)}.get(flag, dict(max_items=allowed))
    config_lib.validate(dataclasses.replace(c, **fix), memory_bytes=memory)
    # Modes that make no data from these flags are not refused.
    config_lib.validate(dataclasses.replace(c, mode="analyze"), memory_bytes=memory)
    config_lib.validate(c, memory_bytes=0)  # 0: not checked


# --- run.py ---------------------------------------------------------------------------

BIG = "shape:3,orientation:360,color:360,scale:64,x:64,y:64"
CLI_CASES = [
    ("count_zero", ["--factors=color:0,x:4"], "factors", "2 to 360"),
    ("count_negative", ["--factors=color:-2,x:4"], "factors", "2 to 360"),
    ("count_not_integer", ["--factors=scale:2.5,x:4"], "factors", "2 to 64"),
    ("count_above_maximum", ["--factors=shape:4,x:4"], "factors", "2 to 3"),
    ("unknown_factor", ["--factors=hue:4,x:4"], "factors", "color, shape, scale, orientation, x, y"),
    ("duplicate_factor", ["--factors=x:4,color:3,x:5"], "factors", "given twice"),
    ("one_decoded_factor", ["--factors=x:4,y:4"], "factors", "at least two"),
    ("not_name_count", ["--factors=color"], "factors", "name:count"),
    ("cross_too_large", [f"--factors={BIG}"], "factors", "more than this machine's"),
    ("max_items_too_large", [f"--factors={BIG}", "--max_items=10000000"], "max_items",
     "more than this machine's"),
    ("max_items_negative", ["--max_items=-1"], "max_items", "0 (the full cross)"),
    ("max_items_above_cap", ["--max_items=10000001"], "max_items", "10,000,000"),
    ("random_bits_negative", ["--random_bits=-1"], "random_bits", "0 (none) to 64"),
    ("random_bits_above_maximum", ["--random_bits=65"], "random_bits", "0 (none) to 64"),
    ("random_bits_on_dsprites_mod", ["--dataset=dsprites_mod", "--random_bits=100"], "random_bits", "to 64"),
]


@pytest.fixture(scope="module")
def cli_table(tmp_path_factory):
    root = tmp_path_factory.mktemp("factors_cli")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    procs = {}
    for cid, args, _, _ in CLI_CASES:
        d = root / cid
        d.mkdir()
        argv = [sys.executable, RUN, "--mode=train", "--dataset=factors", f"--model_dir={d}/m", *args]
        procs[cid] = (d, subprocess.Popen(argv, cwd=d, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
    out = {}
    for cid, (d, p) in procs.items():
        stdout, stderr = p.communicate(timeout=300)
        out[cid] = (p.returncode, stdout, stderr, sorted(os.listdir(d)))
    return out


@pytest.mark.parametrize("case", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_bad_input_exits_2_with_one_line_naming_the_flag(cli_table, case):
    cid, _, flag, words = case
    status, stdout, stderr, left = cli_table[cid]
    assert status == 2, (status, stderr)
    assert stdout == "" and left == []  # nothing printed, nothing created
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: --{flag}: "), stderr
    assert words in lines[0], lines[0]
