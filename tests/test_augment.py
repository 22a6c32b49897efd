"""Tests for the batched, stateless SimCLR augmentations (DESIGN §2)."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from simclr_controlled import augment as aug
from simclr_controlled.augment import color
from simclr_controlled.errors import UsageError

SIZE = 16


def _images(batch=8, size=SIZE, channels=3, seed=0):
    return tf.constant(np.random.default_rng(seed).random((batch, size, size, channels)),
                       tf.float32)


def _sprites(batch=64, size=SIZE, seed=0):
    """Coloured squares on a black background, at varying positions and sizes."""
    rng = np.random.default_rng(seed)
    out = np.zeros((batch, size, size, 3), np.float32)
    for b in range(batch):
        side = rng.integers(3, 7)
        y, x = rng.integers(0, size - side, size=2)
        out[b, y:y + side, x:x + side] = rng.uniform(0.2, 1.0, size=3)
    return tf.constant(out)


def _seeds(n, epoch=0, view=0, seed=1):
    return aug.view_seeds(seed, epoch, tf.range(n), view)


@pytest.mark.parametrize("preset", aug.PRESETS + ("crop",))
def test_shapes_and_ranges(preset):
    images = _images()
    fn = aug.make_augment(preset, crop_size=10)
    out = fn(images, _seeds(8)).numpy()
    expected = (8, 10, 10, 3) if preset == "crop" else (8, SIZE, SIZE, 3)
    assert out.shape == expected
    assert out.dtype == np.float32
    assert np.all(np.isfinite(out)) and out.min() >= 0.0 and out.max() <= 1.0
    if preset != "none":
        assert not np.allclose(out[:, :10, :10], images.numpy()[:, :10, :10])


def test_none_is_identity():
    images = _images()
    np.testing.assert_array_equal(aug.make_augment("none")(images, _seeds(8)).numpy(),
                                  images.numpy())


def test_crop_is_one_window_shared_by_all_channels():
    images = _images(batch=32, size=12, channels=4)
    crop = 7
    out = aug.make_augment("crop", crop_size=crop)(images, _seeds(32)).numpy()
    src = images.numpy()
    expected = aug.crop_offsets(_seeds(32), 12, 12, crop).numpy()
    assert np.mean(expected[:, 0] == expected[:, 1]) < 0.5  # y and x drawn independently
    offsets = set()
    for b in range(32):
        # Find every offset where channel c of the input matches channel c of the output.
        per_channel = [{(y, x) for y in range(12 - crop + 1) for x in range(12 - crop + 1)
                        if np.array_equal(src[b, y:y + crop, x:x + crop, c], out[b, ..., c])}
                       for c in range(4)]
        common = set.intersection(*per_channel)
        assert common == {tuple(expected[b])}, (b, per_channel)
        offsets |= common
    assert len(offsets) > 5  # offsets vary across items


def test_crop_offsets_cover_the_valid_range():
    offsets = aug.crop_offsets(_seeds(2000), 38, 38, 28).numpy()
    assert offsets.min() == 0 and offsets.max() == 10
    assert len(np.unique(offsets[:, 0])) == 11 and len(np.unique(offsets[:, 1])) == 11


def test_center_crop():
    images = _images(batch=2, size=38, channels=4)
    out = aug.center_crop(images, 28).numpy()
    np.testing.assert_array_equal(out, images.numpy()[:, 5:33, 5:33])


def test_same_key_same_view_in_any_batch():
    images = _images(batch=8)
    indices = tf.range(100, 108)
    fn = aug.make_augment("crop_jitter")
    full = fn(images, aug.view_seeds(3, 2, indices, 1)).numpy()
    # Item 105 alone, and inside a batch of other items in another order.
    alone = fn(images[5:6], aug.view_seeds(3, 2, tf.constant([105]), 1)).numpy()
    np.testing.assert_array_equal(alone[0], full[5])
    other = tf.concat([_images(batch=3, seed=9), images[5:6], images[:2]], axis=0)
    other_idx = tf.constant([7, 8, 9, 105, 100, 101], tf.int64)
    mixed = fn(other, aug.view_seeds(3, tf.constant(2, tf.int64), other_idx, 1)).numpy()
    np.testing.assert_array_equal(mixed[3], full[5])
    np.testing.assert_array_equal(mixed[4], full[0])
    # And the same inside a tf.function (graph mode).
    graph = tf.function(fn)(images, aug.view_seeds(3, 2, indices, 1)).numpy()
    np.testing.assert_allclose(graph, full, atol=1e-6)


def test_views_epochs_and_seeds_differ():
    images = _images(batch=16)
    fn = aug.make_augment("crop_jitter")
    idx = tf.range(16)
    base = fn(images, aug.view_seeds(0, 0, idx, 0)).numpy()
    for seeds in (aug.view_seeds(0, 0, idx, 1), aug.view_seeds(0, 1, idx, 0),
                  aug.view_seeds(1, 0, idx, 0)):
        other = fn(images, seeds).numpy()
        differs = np.abs(other - base).reshape(16, -1).max(axis=1) > 1e-3
        assert differs.all()
    s = aug.view_seeds(0, 0, tf.range(1000), 0).numpy()
    assert len({tuple(r) for r in s}) == 1000


def test_view_seeds_is_a_pure_function():
    a = aug.view_seeds(12345678901234, 7, tf.constant([3, 1 << 40]), 1).numpy()
    b = aug.view_seeds(12345678901234, tf.constant(7), tf.constant([3, 1 << 40], tf.int64), 1)
    np.testing.assert_array_equal(a, b.numpy())
    assert a.shape == (2, 2)
    c = aug.view_seeds(12345678901234, 7, tf.constant([3, 3 + (1 << 32)], tf.int64), 1).numpy()
    assert not np.array_equal(c[0], c[1])  # high index bits count


def _ks_distance(a, b):
    """Two-sample Kolmogorov-Smirnov statistic sup |F_a - F_b| (ties handled)."""
    a, b = np.sort(a), np.sort(b)
    x = np.concatenate([a, b])
    return np.max(np.abs(np.searchsorted(a, x, "right") / len(a)
                         - np.searchsorted(b, x, "right") / len(b)))


@tf.function
def _tf_kernel_boxes(seeds, height, width):
    """(y, x, h, w) of TF's own kernel with SimCLR's arguments, one per seed row."""
    def one(seed):
        begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
            [height, width, 3], tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seed,
            min_object_covered=0.1, aspect_ratio_range=(0.75 * width / height,
                                                        4.0 / 3.0 * width / height),
            area_range=(0.08, 1.0), max_attempts=100, use_image_if_no_bounding_boxes=True)
        return tf.concat([begin[:2], size[:2]], axis=0)
    return tf.map_fn(one, seeds, fn_output_signature=tf.int32, parallel_iterations=10)


def test_resized_crop_boxes_match_tf_kernel():
    """Same distribution as SimCLR's `sample_distorted_bounding_box` draw (64x64)."""
    n, size = 20000, 64
    ours = aug.resized_crop_boxes(_seeds(n), size, size).numpy()
    kernel_seeds = np.stack([np.arange(n), 7 * np.arange(n) + 3], axis=1)
    theirs = _tf_kernel_boxes(tf.constant(kernel_seeds, tf.int64), size, size).numpy()
    assert ours.dtype == np.int32 and ours.shape == (n, 4)
    for boxes in (ours, theirs):
        y, x, h, w = boxes.T
        assert y.min() == 0 and x.min() == 0 and h.min() >= 1 and w.min() >= 1
        assert np.all(y + h <= size) and np.all(x + w <= size)
        # The kernel's offsets are Uniform(H - h) in [0, H - h): a crop smaller
        # than the image never reaches the bottom / right edge.
        assert np.all((y + h < size) | (h == size)) and np.all((x + w < size) | (w == size))
        area = h * w / size ** 2
        assert area.min() >= 0.1 and area.max() == 1.0  # min_object_covered = 0.1
        assert np.all(w / h >= 0.74) and np.all(w / h <= 1.36)  # integer-rounded 3/4 .. 4/3

    def stats(b):
        return {"area": b[:, 2] * b[:, 3], "aspect": b[:, 3] / b[:, 2], "height": b[:, 2],
                "width": b[:, 3], "offset_y": b[:, 0], "offset_x": b[:, 1]}

    ours_stats, theirs_stats = stats(ours), stats(theirs)
    for name in ours_stats:
        assert _ks_distance(ours_stats[name], theirs_stats[name]) < 0.02, name
    # Not uniform in area: mean about 0.43, median about 0.39 (both samplers).
    area = ours_stats["area"] / size ** 2
    assert 0.41 < area.mean() < 0.44 and 0.37 < np.median(area) < 0.41


def test_resized_crop_boxes_non_square():
    """Aspect range times W/H as SimCLR; same height / width laws as the kernel."""
    n, height, width = 5000, 24, 40
    ours = aug.resized_crop_boxes(_seeds(n), height, width).numpy()
    theirs = _tf_kernel_boxes(tf.constant(np.stack([np.arange(n), np.arange(n) + 11], 1),
                                          tf.int64), height, width).numpy()
    for col in range(4):
        assert _ks_distance(ours[:, col], theirs[:, col]) < 0.04, col
    assert np.all(ours[:, 0] + ours[:, 2] <= height) and np.all(ours[:, 1] + ours[:, 3] <= width)


def test_resized_crop_matches_tf_bicubic_resize_then_clip():
    for height, width in ((SIZE, SIZE), (12, 20)):
        images = tf.constant(np.random.default_rng(height).random((9, height, width, 3)),
                             tf.float32)
        boxes = [(0, 0, height, width), (height - 1, width - 1, 1, 1), (0, 0, 1, width),
                 (3, 5, 8, 10), (6, 0, 4, 8), (0, 2, height, 3), (1, 1, height - 2, width - 1)]
        boxes += [tuple(b) for b in aug.resized_crop_boxes(_seeds(2), height, width).numpy()]
        out = aug.resized_crop(images, tf.constant(boxes, tf.int32)).numpy()
        overshoot = 0
        for b, (y, x, h, w) in enumerate(boxes):
            want = tf.image.resize(images[b, y:y + h, x:x + w], (height, width), "bicubic")
            overshoot += np.sum((want.numpy() < 0) | (want.numpy() > 1))
            np.testing.assert_allclose(out[b], tf.clip_by_value(want, 0.0, 1.0).numpy(),
                                       atol=1e-5)
        assert overshoot > 0  # bicubic overshoots: the clip is exercised
        assert out.min() >= 0.0 and out.max() <= 1.0
        np.testing.assert_array_equal(out[0], images.numpy()[0])  # full box: identity


def test_random_crop_under_xla():
    images = _images(batch=16)
    seeds = _seeds(16)
    eager = aug.make_augment("random_crop")(images, seeds).numpy()
    xla_fn = aug.make_augment("random_crop", jit_compile=True)
    xla = xla_fn(images, seeds).numpy()
    np.testing.assert_allclose(xla, eager, atol=1e-5)
    alone = xla_fn(images[5:7], seeds[5:7]).numpy()
    np.testing.assert_allclose(alone, xla[5:7], atol=1e-6)
    many = _seeds(3000, seed=4)
    np.testing.assert_array_equal(
        tf.function(aug.resized_crop_boxes, jit_compile=True)(many, 64, 64).numpy(),
        aug.resized_crop_boxes(many, 64, 64).numpy())


def test_color_jitter_matches_tf_image_ops_per_item():
    images = _images(batch=12)
    seeds = _seeds(12)
    params = {k: v.numpy() for k, v in aug.color_jitter_params(seeds, 0.5).items()}
    out = aug.color_jitter(images, seeds, 0.5).numpy()
    assert params["apply"].any() and not params["apply"].all()
    for b in range(12):
        x = images[b]
        if params["apply"][b]:
            for op in params["order"][b]:
                x = [lambda x: x * params["brightness"][b],
                     lambda x: tf.image.adjust_contrast(x, params["contrast"][b]),
                     lambda x: tf.image.adjust_saturation(x, params["saturation"][b]),
                     lambda x: tf.image.adjust_hue(x, params["hue"][b])][op](x)
                x = tf.clip_by_value(x, 0.0, 1.0)
        if params["gray"][b]:
            x = tf.tile(tf.image.rgb_to_grayscale(x), [1, 1, 3])
        np.testing.assert_allclose(out[b], x.numpy(), atol=1e-4)


def test_color_jitter_params_ranges():
    p = {k: v.numpy() for k, v in aug.color_jitter_params(_seeds(4000), 0.5).items()}
    for name, lo, hi in (("brightness", 0.6, 1.4), ("contrast", 0.6, 1.4),
                         ("saturation", 0.6, 1.4), ("hue", -0.1, 0.1)):
        assert p[name].min() >= lo and p[name].max() <= hi
        assert p[name].min() < lo + 0.01 and p[name].max() > hi - 0.01
    assert abs(p["apply"].mean() - 0.8) < 0.03 and abs(p["gray"].mean() - 0.2) < 0.03
    assert np.all(np.sort(p["order"], axis=1) == np.arange(4))
    assert len({tuple(o) for o in p["order"]}) == 24


def test_rgb_to_hsv_equals_tf():
    rng = np.random.default_rng(3)
    x = rng.random((4, 16, 16, 3)).astype(np.float32)
    x[0, :4] = x[0, :4, :, :1]  # grey pixels
    x[1, :4, :, 1] = x[1, :4, :, 0]  # red == green
    x[1, 4:8, :, 2] = x[1, 4:8, :, 1]  # green == blue
    x[2, :4] = 0.0
    x = tf.constant(x)
    ours = tf.stack(color._rgb_to_hsv(x), axis=3).numpy()
    np.testing.assert_array_equal(ours, tf.image.rgb_to_hsv(x).numpy())
    # Its XLA use (crop then jitter fused in one program) is checked against
    # eager in test_tf_data_and_xla.


def test_grayscale_makes_channels_equal():
    images = _images(batch=4)
    params = dict(aug.color_jitter_params(_seeds(4), 0.5))
    params["gray"] = tf.constant([True, True, False, False])
    out = aug.apply_color_jitter(images, params).numpy()
    np.testing.assert_allclose(out[:2, ..., 0], out[:2, ..., 1], atol=1e-6)
    np.testing.assert_allclose(out[:2, ..., 0], out[:2, ..., 2], atol=1e-6)
    assert np.abs(out[2:, ..., 0] - out[2:, ..., 1]).max() > 0.05


def test_color_jitter_black_background():
    """Black stays black except where SimCLR's contrast (factor < 1) lifts it.

    `tf.image.adjust_contrast` maps 0 to mean * (1 - factor); with a factor
    >= 1 the clip restores 0, with a factor < 1 the whole background becomes
    one uniform colour of at most 0.8s (1 + 0.8s) times the fraction of
    non-black pixels. Every other op keeps a black pixel black.
    """
    sprites = _sprites(batch=200)
    seeds = _seeds(200)
    out = aug.color_jitter(sprites, seeds, 0.5).numpy()
    params = {k: v.numpy() for k, v in aug.color_jitter_params(seeds, 0.5).items()}
    background = np.all(sprites.numpy() == 0, axis=3)
    lifts = params["apply"] & (params["contrast"] < 1)
    assert lifts.any() and (~lifts).any()
    for b in range(200):
        bg = out[b][background[b]]
        if not lifts[b]:
            assert np.all(bg == 0.0), b
        else:
            assert np.all(bg == bg[0]), b  # uniform
            assert 0 < bg.max() <= 0.4 * 1.4 * (1 - background[b].mean()) + 1e-6
    # With contrast factors >= 1 only, black stays exactly black everywhere.
    params = dict(aug.color_jitter_params(seeds, 0.5))
    params["contrast"] = 2.0 - tf.minimum(params["contrast"], 2.0 - params["contrast"])
    kept = aug.apply_color_jitter(sprites, params).numpy()
    assert np.all(kept[background] == 0.0)
    # An all-black image stays black under the full jitter.
    black = aug.color_jitter(tf.zeros([50, 8, 8, 3]), _seeds(50), 0.5).numpy()
    assert np.all(black == 0.0)


def test_flip():
    images = _images(batch=64)
    out = aug.make_augment("none", flip=True)(images, _seeds(64)).numpy()
    flipped = np.all(out == images.numpy()[:, :, ::-1], axis=(1, 2, 3))
    same = np.all(out == images.numpy(), axis=(1, 2, 3))
    assert np.all(flipped ^ same) and 16 < flipped.sum() < 48
    # Off by default.
    default = aug.make_augment("random_crop")(images, _seeds(64))
    explicit = aug.random_resized_crop(images, _seeds(64))
    np.testing.assert_array_equal(default.numpy(), explicit.numpy())


def test_tf_data_and_xla():
    images = _images(batch=10)
    fn = aug.make_augment("crop_jitter")
    eager = fn(images, _seeds(10)).numpy()
    ds = tf.data.Dataset.from_tensor_slices((images, tf.range(10))).batch(4)
    ds = ds.map(lambda x, i: fn(x, aug.view_seeds(1, 0, i, 0)))
    np.testing.assert_allclose(np.concatenate(list(ds.as_numpy_iterator())), eager, atol=1e-5)
    xla_fn = aug.make_augment("crop_jitter", jit_compile=True)
    xla = xla_fn(images, _seeds(10)).numpy()
    np.testing.assert_allclose(xla, eager, atol=1e-4)
    alone = xla_fn(images[3:4], aug.view_seeds(1, 0, tf.constant([3]), 0)).numpy()
    np.testing.assert_allclose(alone[0], xla[3], atol=1e-6)
    crop = aug.make_augment("crop", crop_size=10)
    np.testing.assert_array_equal(
        aug.make_augment("crop", crop_size=10, jit_compile=True)(images, _seeds(10)).numpy(),
        crop(images, _seeds(10)).numpy())


def test_usage_errors():
    with pytest.raises(UsageError, match=r"^augment:.*crop_jitter"):
        aug.make_augment("jitter")
    # --crop_size is config.validate's (tests/test_cli.py); here assertions.
    with pytest.raises(AssertionError, match=r"^crop_size"):
        aug.make_augment("crop")
    with pytest.raises(AssertionError, match=r"^crop_size"):
        aug.make_augment("crop", crop_size=20)(_images(batch=2), _seeds(2))
    with pytest.raises(AssertionError, match=r"^crop_size"):
        aug.make_augment("crop", crop_size=20, jit_compile=True)(_images(batch=2), _seeds(2))
    with pytest.raises(AssertionError, match=r"^crop_size"):
        aug.center_crop(_images(batch=2), 17)
    with pytest.raises(UsageError, match=r"^color_jitter_strength"):
        aug.make_augment("color_jitter", color_jitter_strength=-1)
    with pytest.raises(UsageError, match=r"^augment"):
        aug.make_augment("color_jitter")(_images(batch=2, channels=4), _seeds(2))
