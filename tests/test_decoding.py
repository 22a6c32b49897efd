"""Tests for the linear decodability probe (DESIGN §4.3, App. A.2)."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from simclr_controlled.errors import UsageError
from simclr_controlled.probes import decoding


def _blobs(rng, n, d, c, spread=0.3):
    """Gaussian blobs around well-separated class means: linearly separable."""
    means = 3.0 * np.eye(c, d)
    y = rng.integers(0, c, n)
    return (means[y] + spread * rng.normal(size=(n, d))).astype(np.float32), y


def test_chance():
    assert decoding.chance(10) == pytest.approx(0.1)
    assert decoding.chance(256) == pytest.approx(1 / 256)
    with pytest.raises(UsageError, match="^num_classes"):
        decoding.chance(0)


def test_separable_data_is_decoded_perfectly():
    rng = np.random.default_rng(0)
    x, y = _blobs(rng, 700, 12, 4)
    r = decoding.decode(x[:500], y[:500], x[500:], y[500:], 4, epochs=8, batch_size=64)
    assert r["best_val_accuracy"] == 1.0
    assert len(r["val_accuracy"]) == 9 and all(len(a) == 8 for a in r["val_accuracy"])
    assert r["grid"][0] == [1e-2, 0.0] and r["grid"][-1] == [1e-4, 1e-2]


def test_random_labels_are_decoded_at_chance():
    rng = np.random.default_rng(1)
    c = 4
    x = np.maximum(rng.normal(size=(2600, 12)), 0).astype(np.float32)
    y = rng.integers(0, c, 2600)
    r = decoding.decode(x[:600], y[:600], x[600:], y[600:], c, epochs=6, batch_size=64)
    # Best of 9 x 6 correlated scores on 2,000 held-out items (sd ~0.01).
    assert abs(r["best_val_accuracy"] - decoding.chance(c)) < 0.05
    # Training accuracy can exceed chance (memorisation) but not validation.
    assert np.mean(r["val_accuracy"]) < 0.29


def test_batched_grid_equals_one_decoder_at_a_time():
    rng = np.random.default_rng(2)
    x, y = _blobs(rng, 400, 10, 5, spread=1.5)  # overlapping: accuracies differ by grid point
    args = (x[:300], y[:300], x[300:], y[300:], 5)
    kw = dict(epochs=3, batch_size=32, seed=7)
    grid = decoding.decode(*args, **kw)
    acc = np.array(grid["val_accuracy"])
    assert len({tuple(a) for a in acc}) > 1  # the grid points do differ
    for k, (lr, wd) in enumerate(grid["grid"]):
        one = decoding.decode(*args, learning_rates=[lr], weight_decays=[wd], **kw)
        assert one["grid"] == [[lr, wd]]
        np.testing.assert_allclose(one["val_accuracy"][0], acc[k], atol=1.01 / 100)


def test_xla_only_for_narrow_grids_on_a_cpu():
    g = len(decoding.LEARNING_RATES) * len(decoding.WEIGHT_DECAYS)
    assert decoding.use_xla(g * 10, accelerator=False)        # color: overhead-bound
    assert decoding.use_xla(g * 6, accelerator=False)         # scale
    assert not decoding.use_xla(g * 256, accelerator=False)   # position: matmul-bound
    assert decoding.use_xla(g * 256, accelerator=True)


def test_dead_features_are_dropped_without_changing_the_result():
    rng = np.random.default_rng(4)
    x, y = _blobs(rng, 400, 10, 5, spread=1.5)
    x = np.maximum(x, 0)  # ReLU-like
    # 120 features that are 0 everywhere (never-firing ReLUs), spread among
    # the 10 live ones: the decoder then runs 64 wide instead of 130.
    dead = np.insert(x, np.repeat(np.arange(11), 12)[:120], 0.0, axis=1)
    assert dead.shape[1] == 130
    kw = dict(epochs=4, batch_size=32, seed=3)
    a = decoding.decode(x[:300], y[:300], x[300:], y[300:], 5, **kw)
    b = decoding.decode(dead[:300], y[:300], dead[300:], y[300:], 5, **kw)
    assert a["num_live_features"] == b["num_live_features"] == 10
    assert a["best_val_accuracy"] == b["best_val_accuracy"]
    np.testing.assert_allclose(a["val_accuracy"], b["val_accuracy"], atol=1.01 / 100)
    # A feature that is 0 on the training split but fires on validation is live.
    half = dead.copy()
    half[300:, 0] = 1.0
    c = decoding.decode(half[:300], y[:300], half[300:], y[300:], 5, **kw)
    assert c["num_live_features"] == 11
    # All features dead: the decoder predicts from its bias alone.
    z = decoding.decode(np.zeros((300, 4), np.float32), y[:300],
                        np.zeros((100, 4), np.float32), y[300:], 5, **kw)
    assert z["num_live_features"] == 0
    assert z["best_val_accuracy"] <= np.bincount(y[300:], minlength=5).max() / 100


def test_dead_feature_widths_are_bucketed():
    # 70 and 100 live features of 512 both run 128 wide: one traced shape.
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 200)
    for live in (70, 100):
        x = np.zeros((200, 512), np.float32)
        x[:, :live] = rng.random((200, live))
        r = decoding.decode(x[:150], y[:150], x[150:], y[150:], 3, epochs=1)
        assert r["num_live_features"] == live
    train_shapes = {key[0] for _, key in decoding._GRID_FUNCTIONS}
    assert (150, 128) in train_shapes
    assert not {(150, 70), (150, 100), (150, 512)} & train_shapes


def test_best_is_the_maximum_and_names_its_grid_point():
    rng = np.random.default_rng(3)
    x, y = _blobs(rng, 400, 10, 5, spread=1.5)
    r = decoding.decode(x[:300], y[:300], x[300:], y[300:], 5, epochs=4, batch_size=32)
    acc = np.array(r["val_accuracy"])
    assert r["best_val_accuracy"] == acc.max()
    k = r["grid"].index([r["best_learning_rate"], r["best_weight_decay"]])
    assert acc[k, r["best_epoch"] - 1] == acc.max()
    assert 1 <= r["best_epoch"] <= 4


def _reference_fit(x, y, num_classes, lr, wd, epochs, batch_size, seed):
    """One decoder with Keras Adam + CosineDecay and a tape, eager, same batches."""
    n, d = x.shape
    steps = -(-n // batch_size)
    w = tf.Variable(tf.zeros([d, num_classes]))
    b = tf.Variable(tf.zeros([num_classes]))
    opt = keras.optimizers.Adam(
        learning_rate=keras.optimizers.schedules.CosineDecay(lr, epochs * steps))
    rng = np.random.default_rng(seed)  # the documented batch order
    for _ in range(epochs):
        order = rng.permutation(n)
        for s in range(steps):
            idx = order[s * batch_size:(s + 1) * batch_size]
            with tf.GradientTape() as tape:
                logits = tf.matmul(x[idx], w) + b
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                    y[idx], logits)) + wd / 2 * tf.reduce_sum(tf.square(w))
            opt.apply_gradients(zip(tape.gradient(loss, [w, b]), [w, b]))
    return w.numpy(), b.numpy()


@pytest.mark.parametrize("xla", [False, True])
def test_grid_matches_keras_adam_with_l2_and_cosine_decay(xla):
    """Hand-written batched Adam == Keras Adam on wd/2*||W||^2 (weights only).

    Both the CPU loop and the XLA loop used on accelerators are checked.
    """
    rng = np.random.default_rng(4)
    c, batch_size, epochs, seed = 3, 32, 2, 5
    x, y = _blobs(rng, 100, 6, c, spread=1.0)  # 100 = 3 full batches + 4 rows
    lrs, wds = (1e-2, 1e-3), (0.0, 0.5)
    lr_vec = [lr for lr in lrs for _ in wds]
    wd_vec = [wd for _ in lrs for wd in wds]
    _, w, b = decoding._train_grid(
        tf.constant(x), tf.constant(y, tf.int32), tf.constant(x[:10]),
        tf.constant(y[:10], tf.int32), tf.constant(lr_vec), tf.constant(wd_vec),
        tf.constant(decoding._batch_orders(len(x), epochs, batch_size, seed)),
        num_classes=c, xla=xla)
    w, b = w.numpy(), b.numpy()
    for k, (lr, wd) in enumerate(zip(lr_vec, wd_vec)):
        w_ref, b_ref = _reference_fit(x, y, c, lr, wd, epochs, batch_size, seed)
        cols = slice(k * c, (k + 1) * c)
        np.testing.assert_allclose(w[:, cols], w_ref, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(b[cols], b_ref, rtol=1e-4, atol=1e-6)


def test_seed_sets_the_batch_order():
    rng = np.random.default_rng(5)
    x, y = _blobs(rng, 300, 8, 4, spread=2.0)
    args = (x[:200], y[:200], x[200:], y[200:], 4)
    kw = dict(epochs=2, batch_size=16, learning_rates=[1e-2], weight_decays=[0.0])
    a = decoding.decode(*args, seed=1, **kw)
    assert decoding.decode(*args, seed=1, **kw) == a
    assert decoding.decode(*args, seed=2, **kw) != a


BAD_INPUTS = [
    (dict(train_y=np.zeros(9, int)), "train_y"),
    (dict(val_x=np.zeros((5, 3), np.float32)), "val_x"),
    (dict(val_y=np.full(5, 4)), "val_y"),
    (dict(train_y=np.full(10, -1)), "train_y"),
    (dict(train_y=np.zeros(10)), "train_y"),
    (dict(epochs=0), "epochs"),
    (dict(batch_size=0), "batch_size"),
    (dict(num_classes=1), "num_classes"),
    (dict(learning_rates=[]), "learning_rates"),
    (dict(weight_decays=[-1.0]), "weight_decays"),
    (dict(train_x=np.full((10, 4), np.nan, np.float32)), "train_x"),
]


@pytest.mark.parametrize("change, name", BAD_INPUTS)
def test_bad_input_raises_usage_error_naming_the_argument(change, name):
    kw = dict(train_x=np.zeros((10, 4), np.float32), train_y=np.zeros(10, int),
              val_x=np.zeros((5, 4), np.float32), val_y=np.zeros(5, int),
              num_classes=4, epochs=1)
    kw.update(change)
    with pytest.raises(UsageError, match=f"^{name}:"):
        decoding.decode(**kw)
