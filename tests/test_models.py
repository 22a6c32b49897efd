"""Tests for simclr_controlled.models (DESIGN §3.1, paper App. A)."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import keras

from simclr_controlled.errors import UsageError
from simclr_controlled.models import MODELS, TAPS, build_model, forward_flops

TINY = dict(width_multiplier=0.125)  # ResNet-18 widths 8, 16, 32, 64


def _images(n, shape, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, *shape)).astype(np.float32)


@pytest.fixture(scope="module")
def lenet():
    return build_model("lenet", (28, 28, 4), seed=0)


@pytest.fixture(scope="module")
def tiny_resnet():
    return build_model("resnet18", (16, 16, 3), seed=0, **TINY)


def test_api_constants():
    assert TAPS == ("head_input", "head_1", "head_2", "head_out")
    assert MODELS == ("lenet", "resnet18")


def test_lenet_taps(lenet):
    out = lenet(_images(3, (28, 28, 4)), training=True)
    assert set(out) == set(TAPS)
    shapes = {k: tuple(v.shape) for k, v in out.items()}
    assert shapes == {"head_input": (3, 18 * 18 * 16), "head_1": (3, 120),
                      "head_2": (3, 84), "head_out": (3, 84)}
    assert all(v.dtype == tf.float32 for v in out.values())
    assert np.all(out["head_1"].numpy() >= 0) and np.all(out["head_2"].numpy() >= 0)
    assert np.any(out["head_out"].numpy() < 0)  # no ReLU on the projection


def test_taps_are_the_head_layers(lenet):
    out = {k: v.numpy() for k, v in lenet(_images(2, (28, 28, 4), 1), training=False).items()}
    w1, b1 = (v.numpy() for v in lenet.get_layer("head_1").weights)
    w2, b2 = (v.numpy() for v in lenet.get_layer("head_2").weights)
    w3, b3 = (v.numpy() for v in lenet.get_layer("head_out").weights)
    np.testing.assert_allclose(out["head_1"], np.maximum(out["head_input"] @ w1 + b1, 0),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["head_2"], np.maximum(out["head_1"] @ w2 + b2, 0),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["head_out"], out["head_2"] @ w3 + b3, rtol=1e-4, atol=1e-5)


def test_lenet_head_input_is_backbone_flattened(lenet):
    x = _images(2, (28, 28, 4), 2)
    w, b = (v.numpy() for v in lenet.get_layer("conv1").weights)
    h = tf.nn.relu(tf.nn.conv2d(x, w, 1, "VALID") + b)
    h = tf.nn.max_pool2d(h, 2, 1, "VALID")
    w, b = (v.numpy() for v in lenet.get_layer("conv2").weights)
    h = tf.nn.max_pool2d(tf.nn.relu(tf.nn.conv2d(h, w, 1, "VALID") + b), 2, 1, "VALID")
    np.testing.assert_allclose(lenet(x)["head_input"].numpy(), tf.reshape(h, [2, -1]).numpy(),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("training", [True, False])
def test_resnet_taps(tiny_resnet, training):
    out = tiny_resnet(_images(4, (16, 16, 3)), training=training)
    shapes = {k: tuple(v.shape) for k, v in out.items()}
    assert shapes == {"head_input": (4, 64), "head_1": (4, 512), "head_2": (4, 512),
                      "head_out": (4, 128)}
    assert all(v.dtype == tf.float32 for v in out.values())
    assert np.all(out["head_1"].numpy() >= 0) and np.all(out["head_2"].numpy() >= 0)
    assert np.all(out["head_input"].numpy() >= 0)  # average of post-ReLU maps


def test_head_widths_override():
    model = build_model("resnet18", (16, 16, 3), head_widths=(32, 16, 8), **TINY)
    out = model(_images(4, (16, 16, 3)), training=False)
    assert [tuple(out[k].shape) for k in TAPS] == [(4, 64), (4, 32), (4, 16), (4, 8)]
    lenet = build_model("lenet", (12, 12, 1), head_widths=[5, 6, 7])
    out = lenet(_images(2, (12, 12, 1)))
    assert [tuple(out[k].shape) for k in TAPS] == [(2, 2 * 2 * 16), (2, 5), (2, 6), (2, 7)]


def test_head_out_bias(lenet, tiny_resnet):
    assert not tiny_resnet.get_layer("head_out").use_bias
    assert [w.name for w in tiny_resnet.get_layer("head_out").weights] == ["kernel"]
    assert lenet.get_layer("head_out").use_bias  # LeNet's head keeps its bias (App. A.1)
    assert tiny_resnet.get_layer("head_1").use_bias and tiny_resnet.get_layer("head_2").use_bias


def test_resnet_architecture(tiny_resnet):
    names = [layer.name for layer in tiny_resnet.layers]
    convs = [l for l in tiny_resnet.layers if isinstance(l, keras.layers.Conv2D)]
    # 1 stem + 16 block convs + 3 projection shortcuts; no max-pool anywhere.
    assert len(convs) == 20
    assert not any(isinstance(l, keras.layers.MaxPooling2D) for l in tiny_resnet.layers)
    stem = tiny_resnet.get_layer("stem_conv")
    assert stem.kernel_size == (3, 3) and stem.strides == (1, 1)
    assert [tiny_resnet.get_layer(f"stage{s}_block2_conv2").filters for s in (1, 2, 3, 4)] == [
        8, 16, 32, 64]
    bns = [l for l in tiny_resnet.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert bns and all(b.synchronized for b in bns)
    assert all(b.momentum == 0.9 and b.epsilon == 1e-5 for b in bns)
    assert "avg_pool" in names


def _weights(model):
    return [w.numpy() for w in model.weights]


def test_seed_determines_weights():
    state = np.random.get_state()[1].copy()
    a = _weights(build_model("lenet", (28, 28, 4), seed=3))
    tf.random.uniform([3], seed=11)  # global random state must not matter (op seed: other tests enable op determinism)
    keras.random.normal([3])
    b = _weights(build_model("lenet", (28, 28, 4), seed=3))
    c = _weights(build_model("lenet", (28, 28, 4), seed=4))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    kernels = [i for i, w in enumerate(a) if w.ndim > 1]
    assert len(kernels) == 5
    assert all(not np.allclose(a[i], c[i]) for i in kernels)
    assert np.array_equal(np.random.get_state()[1], state)  # numpy global state untouched
    # Distinct layers get distinct draws (not one seed reused).
    r = build_model("resnet18", (16, 16, 3), seed=3, **TINY)
    r2 = build_model("resnet18", (16, 16, 3), seed=3, **TINY)
    assert all(np.array_equal(x, y) for x, y in zip(_weights(r), _weights(r2)))
    k1 = r.get_layer("stage1_block1_conv2").kernel.numpy()
    k2 = r.get_layer("stage1_block2_conv2").kernel.numpy()
    assert k1.shape == k2.shape and not np.allclose(k1, k2)
    r3 = build_model("resnet18", (16, 16, 3), seed=5, **TINY)
    assert not np.allclose(r.get_layer("stem_conv").kernel.numpy(),
                           r3.get_layer("stem_conv").kernel.numpy())


def test_width_multiplier_changes_params():
    # conv 5*5*4*6+6, conv 5*5*6*16+16, dense 5184*120+120, 120*84+84, 84*84+84.
    assert build_model("lenet", (28, 28, 4)).count_params() == 642526
    # width 0.5: 3 and 8 filters.
    assert build_model("lenet", (28, 28, 4), width_multiplier=0.5).count_params() == (
        5 * 5 * 4 * 3 + 3 + 5 * 5 * 3 * 8 + 8 + 18 * 18 * 8 * 120 + 120 + 120 * 84 + 84
        + 84 * 84 + 84)
    small = build_model("resnet18", (16, 16, 3), width_multiplier=0.125, head_widths=(8, 8, 8))
    big = build_model("resnet18", (16, 16, 3), width_multiplier=0.25, head_widths=(8, 8, 8))
    assert big.count_params() > 3 * small.count_params()
    assert big(_images(1, (16, 16, 3)))["head_input"].shape == (1, 128)


def test_mixed_precision_taps_float32():
    model = build_model("lenet", (12, 12, 2), dtype_policy="mixed_bfloat16")
    assert model.get_layer("conv1").compute_dtype == "bfloat16"
    assert model.get_layer("conv1").kernel.dtype == "float32"
    out = model(_images(2, (12, 12, 2)), training=True)
    assert all(out[k].dtype == tf.float32 for k in TAPS)
    ref = build_model("lenet", (12, 12, 2))(_images(2, (12, 12, 2)))
    np.testing.assert_allclose(out["head_out"].numpy(), ref["head_out"].numpy(),
                               rtol=0.1, atol=0.05)


def test_synchronized_bn_mirrored_strategy(mirrored_strategy):
    """Two replicas with 4 images each must normalize with the 8-image batch
    statistics; a training step through strategy.run must update all copies."""
    strategy = mirrored_strategy  # two logical CPUs (tests/conftest.py)
    assert strategy.num_replicas_in_sync == 2
    x = _images(8, (16, 16, 3))
    x[4:] = 3.0 * x[4:] + 1.0  # replicas see very different statistics
    kwargs = dict(seed=7, head_widths=(16, 16, 8), **TINY)

    reference = build_model("resnet18", (16, 16, 3), **kwargs)
    ref_out = reference(x, training=True)["head_input"].numpy()
    ref_mean = reference.get_layer("stem_bn").moving_mean.numpy()
    per_half = np.concatenate([
        build_model("resnet18", (16, 16, 3), **kwargs)(x[i:i + 4], training=True)[
            "head_input"].numpy() for i in (0, 4)])
    assert not np.allclose(per_half, ref_out, atol=1e-3)  # the check can tell them apart

    with strategy.scope():
        model = build_model("resnet18", (16, 16, 3), **kwargs)
        optimizer = keras.optimizers.SGD(0.1)
    before = model.get_layer("head_1").kernel.numpy()

    @tf.function
    def train_step(images):
        def step(batch):
            with tf.GradientTape() as tape:
                out = model(batch, training=True)
                loss = tf.reduce_sum(tf.square(out["head_out"])) / 8.0
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return out["head_input"]
        return strategy.run(step, args=(images,))

    shards = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(x[4 * ctx.replica_id_in_sync_group:
                                  4 * ctx.replica_id_in_sync_group + 4]))
    result = train_step(shards)
    got = np.concatenate([r.numpy() for r in strategy.experimental_local_results(result)])
    np.testing.assert_allclose(got, ref_out, rtol=1e-4, atol=1e-5)
    # `.value` is the tf.distribute variable behind the Keras variable.
    copies = strategy.experimental_local_results(model.get_layer("stem_bn").moving_mean.value)
    assert len(copies) == 2
    for copy in copies:
        np.testing.assert_allclose(copy.numpy(), ref_mean, rtol=1e-4, atol=1e-6)
    after = [k.numpy() for k in
             strategy.experimental_local_results(model.get_layer("head_1").kernel.value)]
    assert not np.allclose(after[0], before)
    np.testing.assert_array_equal(after[0], after[1])
    assert np.all(np.isfinite(after[0]))


@pytest.mark.parametrize("kwargs, word", [
    (dict(name="vgg"), "model"),
    (dict(head_widths=(10, 10)), "head_widths"),
    (dict(head_widths=(10, 0, 10)), "head_widths"),
    (dict(head_widths=(10, 2.5, 10)), "head_widths"),
    (dict(head_widths=5), "head_widths"),
    (dict(input_shape=(28, 28)), "input_shape"),
    (dict(input_shape=(10, 28, 4)), "input_shape"),
])
def test_bad_arguments(kwargs, word):
    args = dict(name="lenet", input_shape=(28, 28, 4)) | kwargs
    name, shape = args.pop("name"), args.pop("input_shape")
    for fn in (build_model, forward_flops):
        with pytest.raises(ValueError, match=f"^{word}") as err:
            fn(name, shape, **args)
        assert isinstance(err.value, UsageError)
    with pytest.raises(UsageError, match="lenet, resnet18"):
        build_model("vgg", (28, 28, 4))


@pytest.mark.parametrize("width_multiplier", [0, -1.0, float("nan")])
def test_bad_width_multiplier_fails_an_assertion(width_multiplier):
    # --width_multiplier is config.validate's (tests/test_cli.py); here an assertion.
    for fn in (build_model, forward_flops):
        with pytest.raises(AssertionError, match="^width_multiplier"):
            fn("lenet", (28, 28, 4), width_multiplier=width_multiplier)


def test_bad_seed_and_policy():
    # --seed is config.validate's (tests/test_cli.py); here an assertion.
    with pytest.raises(AssertionError, match="^seed"):
        build_model("lenet", (28, 28, 4), seed=-1)
    with pytest.raises(UsageError, match="^dtype_policy.*mixed_bfloat16"):
        build_model("lenet", (28, 28, 4), dtype_policy="float64")


def test_forward_flops_lenet_by_hand():
    conv1 = 24 * 24 * 6 * (5 * 5 * 4)     # 28-4 = 24; pool -> 23
    conv2 = 19 * 19 * 16 * (5 * 5 * 6)    # 23-4 = 19; pool -> 18
    dense = 18 * 18 * 16 * 120 + 120 * 84 + 84 * 84
    assert forward_flops("lenet", (28, 28, 4)) == 2 * (conv1 + conv2 + dense) == 3702432


def _flops_from_layers(model):
    """Independent count from the built model's layers and output shapes."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, _ = layer.output.shape
            total += 2 * h * w * int(np.prod(layer.kernel.shape))
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * int(np.prod(layer.kernel.shape))
    return total


@pytest.mark.parametrize("name, shape, kwargs", [
    ("lenet", (28, 28, 4), dict(width_multiplier=1.5, head_widths=(30, 20, 10))),
    ("resnet18", (16, 16, 3), dict(width_multiplier=0.125)),
    ("resnet18", (15, 13, 3), dict(width_multiplier=0.2, head_widths=(8, 8, 4))),
])
def test_forward_flops_matches_layers(name, shape, kwargs):
    model = build_model(name, shape, **kwargs)
    assert forward_flops(name, shape, **kwargs) == _flops_from_layers(model)


def test_forward_flops_resnet18_full_size():
    # Multiply-adds on 32x32 by hand: stem; stage 1 (4 convs at 32x32); stages
    # 2-4 each: strided conv + 3 convs + 1x1 projection, same count per stage.
    stem = 32 * 32 * 27 * 64
    stage1 = 4 * 32 * 32 * 9 * 64 * 64
    stage2 = 16 * 16 * (9 * 64 * 128 + 3 * 9 * 128 * 128 + 64 * 128)
    head = 512 * 512 + 512 * 512 + 512 * 128
    macs = stem + stage1 + 3 * stage2 + head
    assert macs - head == 555_417_600
    assert forward_flops("resnet18", (32, 32, 3)) == 2 * macs
