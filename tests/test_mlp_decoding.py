"""Tests for the MLP (one hidden layer) decodability probe, `probes/mlp_decoding.py`."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from simclr_controlled.errors import UsageError
from simclr_controlled.probes import decoding, mlp_decoding
from tests.test_decoding import BAD_INPUTS


def _blobs(rng, n, d, c, spread=0.3):
    """Gaussian blobs around well-separated class means: linearly separable."""
    means = 3.0 * np.eye(c, d)
    y = rng.integers(0, c, n)
    return (means[y] + spread * rng.normal(size=(n, d))).astype(np.float32), y


def _xor(rng, n, d=2):
    """Class = sign(x1) xor sign(x2) of Gaussian inputs (plus d-2 noise features)."""
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x, ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(int)


def test_linearly_decodable_factor_is_decoded_perfectly_by_both_probes():
    rng = np.random.default_rng(0)
    x, y = _blobs(rng, 700, 12, 4)
    args = (x[:500], y[:500], x[500:], y[500:], 4)
    m = mlp_decoding.decode_mlp(*args, epochs=6, batch_size=64, hidden=64)
    lin = decoding.decode(*args, epochs=6, batch_size=64)
    assert m["best_val_accuracy"] == lin["best_val_accuracy"] == 1.0
    assert set(lin) <= set(m) and m["hidden"] == 64
    assert len(m["val_accuracy"]) == 9 and all(len(a) == 6 for a in m["val_accuracy"])
    assert m["grid"] == lin["grid"]


def test_xor_factor_is_decoded_by_the_mlp_and_not_linearly():
    rng = np.random.default_rng(1)
    x, y = _xor(rng, 1000, d=4)
    args = (x[:600], y[:600], x[600:], y[600:], 2)
    lin = decoding.decode(*args, epochs=10, batch_size=32)
    m = mlp_decoding.decode_mlp(*args, epochs=10, batch_size=32, hidden=64)
    # Best of 9 x 10 correlated scores on 400 held-out items (sd ~0.025).
    assert abs(lin["best_val_accuracy"] - 0.5) < 0.1
    assert m["best_val_accuracy"] > 0.9


def test_batched_grid_equals_one_decoder_at_a_time():
    rng = np.random.default_rng(2)
    x, y = _blobs(rng, 400, 10, 5, spread=1.5)  # overlapping: accuracies differ by grid point
    args = (x[:300], y[:300], x[300:], y[300:], 5)
    kw = dict(epochs=3, batch_size=32, seed=7, hidden=64)
    grid = mlp_decoding.decode_mlp(*args, **kw)
    acc = np.array(grid["val_accuracy"])
    assert len({tuple(a) for a in acc}) > 1  # the grid points do differ
    best = []
    for k, (lr, wd) in enumerate(grid["grid"]):
        one = mlp_decoding.decode_mlp(*args, learning_rates=[lr], weight_decays=[wd], **kw)
        assert one["grid"] == [[lr, wd]]
        np.testing.assert_allclose(one["val_accuracy"][0], acc[k], atol=1.01 / 100)
        best.append(one["best_val_accuracy"])
    assert max(best) == pytest.approx(grid["best_val_accuracy"], abs=1.01 / 100)


def test_dead_features_are_dropped_without_changing_the_result():
    rng = np.random.default_rng(4)
    x, y = _blobs(rng, 400, 10, 5, spread=1.5)
    x = np.maximum(x, 0)  # ReLU-like
    dead = np.insert(x, np.repeat(np.arange(11), 12)[:120], 0.0, axis=1)  # 130 wide, 10 live
    kw = dict(epochs=3, batch_size=32, seed=3, hidden=64)
    b = mlp_decoding.decode_mlp(dead[:300], y[:300], dead[300:], y[300:], 5, **kw)
    assert b["num_live_features"] == 10
    # Reference: the grid trained on all 130 features (none dropped), from the
    # documented initialization (Glorot drawn at the full width).
    w1, w2 = mlp_decoding.glorot_init(130, 64, 5, 3)
    correct = mlp_decoding._train_grid(
        tf.constant(dead[:300]), tf.constant(y[:300], tf.int32), tf.constant(dead[300:]),
        tf.constant(y[300:], tf.int32), tf.constant([p[0] for p in b["grid"]], tf.float32),
        tf.constant([p[1] for p in b["grid"]], tf.float32),
        tf.constant(decoding._batch_orders(300, 3, 32, 3)), w1, w2, num_classes=5)[0].numpy()
    np.testing.assert_allclose(b["val_accuracy"], correct.T / 100, atol=1.01 / 100)
    assert len({tuple(a) for a in b["val_accuracy"]}) > 1


def _reference_fit(x, y, w1, w2, lr, wd, epochs, batch_size, seed):
    """One MLP with Keras Adam + CosineDecay and a tape, eager, same batches."""
    n = len(x)
    steps = -(-n // batch_size)
    params = [tf.Variable(w1), tf.Variable(tf.zeros(w1.shape[1])),
              tf.Variable(w2), tf.Variable(tf.zeros(w2.shape[1]))]
    opt = keras.optimizers.Adam(
        learning_rate=keras.optimizers.schedules.CosineDecay(lr, epochs * steps))
    rng = np.random.default_rng(seed)  # the documented batch order
    for _ in range(epochs):
        order = rng.permutation(n)
        for s in range(steps):
            idx = order[s * batch_size:(s + 1) * batch_size]
            with tf.GradientTape() as tape:
                h = tf.nn.relu(tf.matmul(x[idx], params[0]) + params[1])
                logits = tf.matmul(h, params[2]) + params[3]
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                    y[idx], logits)) + wd / 2 * (tf.reduce_sum(tf.square(params[0]))
                                                 + tf.reduce_sum(tf.square(params[2])))
            opt.apply_gradients(zip(tape.gradient(loss, params), params))
    return [p.numpy() for p in params]


@pytest.mark.parametrize("xla", [False, True])
def test_grid_matches_keras_adam_with_l2_and_cosine_decay(xla):
    """Hand-written batched MLP + Adam == Keras Adam on wd/2*(||W1||^2+||W2||^2)."""
    rng = np.random.default_rng(4)
    c, hid, batch_size, epochs, seed = 3, 8, 32, 2, 5
    x, y = _blobs(rng, 100, 6, c, spread=1.0)  # 100 = 3 full batches + 4 rows
    w1, w2 = mlp_decoding.glorot_init(6, hid, c, seed)
    lrs, wds = (1e-2, 1e-3), (0.0, 0.5)
    lr_vec = [lr for lr in lrs for _ in wds]
    wd_vec = [wd for _ in lrs for wd in wds]
    _, W1, b1, W2, b2 = mlp_decoding._train_grid(
        tf.constant(x), tf.constant(y, tf.int32), tf.constant(x[:10]),
        tf.constant(y[:10], tf.int32), tf.constant(lr_vec), tf.constant(wd_vec),
        tf.constant(decoding._batch_orders(len(x), epochs, batch_size, seed)), w1, w2,
        num_classes=c, xla=xla)
    for k, (lr, wd) in enumerate(zip(lr_vec, wd_vec)):
        ref = _reference_fit(x, y, w1, w2, lr, wd, epochs, batch_size, seed)
        cols = slice(k * hid, (k + 1) * hid)
        got = [W1.numpy()[:, cols], b1.numpy()[cols], W2.numpy()[k], b2.numpy()[k]]
        for a, b in zip(got, ref):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
        assert not np.allclose(ref[0], w1)  # it did train


def test_glorot_init_is_seeded_with_keras_limits():
    w1, w2 = mlp_decoding.glorot_init(50, 30, 4, 0)
    assert w1.shape == (50, 30) and w2.shape == (30, 4) and w1.dtype == np.float32
    assert np.abs(w1).max() <= np.sqrt(6 / 80) and np.abs(w1).max() > 0.9 * np.sqrt(6 / 80)
    assert np.abs(w2).max() <= np.sqrt(6 / 34)
    assert np.array_equal(w1, mlp_decoding.glorot_init(50, 30, 4, 0)[0])
    assert not np.array_equal(w1, mlp_decoding.glorot_init(50, 30, 4, 1)[0])


def test_seed_sets_the_result():
    rng = np.random.default_rng(5)
    x, y = _blobs(rng, 300, 8, 4, spread=2.0)
    args = (x[:200], y[:200], x[200:], y[200:], 4)
    kw = dict(epochs=2, batch_size=16, hidden=8, learning_rates=[1e-2], weight_decays=[0.0])
    a = mlp_decoding.decode_mlp(*args, seed=1, **kw)
    assert mlp_decoding.decode_mlp(*args, seed=1, **kw) == a
    assert mlp_decoding.decode_mlp(*args, seed=2, **kw) != a


# The linear probe's table (the same checks, shared) and the MLP's own argument.
@pytest.mark.parametrize("change, name", BAD_INPUTS + [
    (dict(hidden=0), "hidden"),
    (dict(hidden=2.5), "hidden"),
    (dict(val_x=np.zeros((0, 4), np.float32)), "val_x"),
])
def test_bad_input_raises_usage_error_naming_the_argument(change, name):
    kw = dict(train_x=np.zeros((10, 4), np.float32), train_y=np.zeros(10, int),
              val_x=np.zeros((5, 4), np.float32), val_y=np.zeros(5, int),
              num_classes=4, epochs=1)
    kw.update(change)
    with pytest.raises(UsageError, match=f"^{name}:") as info:
        mlp_decoding.decode_mlp(**kw)
    assert "\n" not in str(info.value)


def test_probe_settings_are_the_reduced_probe():
    s = mlp_decoding.probe_settings(30)
    assert s == dict(epochs=6, hidden=mlp_decoding.PROBE_HIDDEN, learning_rates=decoding.LEARNING_RATES,
                     weight_decays=(0.0,))
    assert [mlp_decoding.probe_settings(e)["epochs"] for e in (1, 5, 6, 500)] == [1, 1, 2, 100]
    with pytest.raises(UsageError, match="^decoder_epochs:"):
        mlp_decoding.probe_settings(0)


def test_probe_mode_settings_decode_xor_where_linear_is_at_chance():
    """`--mode=probe`'s exact settings at the dSprites CPU preset's
    --decoder_epochs=30 (batch 256, 6 MLP epochs, 3 grid points, hidden 128)."""
    rng = np.random.default_rng(6)
    x, y = _xor(rng, 8000, d=8)
    args = (x[:6000], y[:6000], x[6000:], y[6000:], 2)
    lin = decoding.decode(*args, epochs=30)
    m = mlp_decoding.decode_mlp(*args, **mlp_decoding.probe_settings(30))
    assert m["hidden"] == 128 and len(m["grid"]) == 3
    # Best of 9 x 30 correlated scores on 2,000 held-out items (sd ~0.011).
    assert abs(lin["best_val_accuracy"] - 0.5) < 0.05
    assert m["best_val_accuracy"] > 0.9
