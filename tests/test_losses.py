"""Tests for simclr_controlled.losses (DESIGN §3.2)."""
from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import tensorflow as tf

from simclr_controlled.errors import UsageError
from simclr_controlled.losses import contrastive_accuracy_chance, nt_xent


def nt_xent_numpy(projections: np.ndarray, temperature: float):
    """NT-Xent written from the formula, one view at a time (float64).

    View k of 2N has positive (k + N) mod 2N; its candidates are all views but
    itself. Loss = (1/N) * sum over the 2N views of -log softmax(positive),
    i.e. the per-item mean of CE(view a) + CE(view b). Accuracy: fraction of
    view-a rows whose positive has the highest similarity.
    """
    z = np.asarray(projections, np.float64)
    two_n = z.shape[0]
    n = two_n // 2
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    total = 0.0
    correct = 0
    for k in range(two_n):
        positive = (k + n) % two_n
        others = [j for j in range(two_n) if j != k]
        sims = np.array([z[k] @ z[j] for j in others]) / temperature
        top = sims.max()
        log_denominator = top + math.log(np.exp(sims - top).sum())
        total += log_denominator - (z[k] @ z[positive]) / temperature
        if k < n and others[int(np.argmax(sims))] == positive:
            correct += 1
    return total / n, correct / n


@pytest.mark.parametrize("n,d,temperature", [
    (1, 3, 0.5), (4, 8, 0.1), (7, 5, 0.5), (16, 12, 1.0), (9, 4, 2.0)])
def test_matches_numpy_reference(n, d, temperature):
    rng = np.random.default_rng(n * 100 + d)
    x = rng.normal(size=(2 * n, d)).astype(np.float32)
    loss, acc, logits = nt_xent(tf.constant(x), temperature)
    ref_loss, ref_acc = nt_xent_numpy(x, temperature)
    np.testing.assert_allclose(loss.numpy(), ref_loss, rtol=1e-5, atol=1e-5)
    assert acc.numpy() == pytest.approx(ref_acc)
    assert logits.shape == (n, 2 * n)
    assert loss.dtype == tf.float32


def test_logits_layout_single_replica():
    rng = np.random.default_rng(3)
    n, t = 5, 0.5
    x = rng.normal(size=(2 * n, 6))
    _, _, logits = nt_xent(tf.constant(x), t)
    z = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = z[:n] @ z.T / t  # view a against [a | b]
    expected = np.concatenate([sims[:, n:], sims[:, :n]], axis=1)
    logits = logits.numpy()
    off_diagonal = ~np.eye(n, dtype=bool)
    np.testing.assert_allclose(logits[:, :n], expected[:, :n], atol=1e-12)
    np.testing.assert_allclose(logits[:, n:][off_diagonal],
                               expected[:, n:][off_diagonal], atol=1e-12)
    assert np.all(np.diag(logits[:, n:]) < -1e8)  # self masked


def test_aligned_views_beat_random():
    rng = np.random.default_rng(0)
    n, d = 8, 16
    # Items along distinct orthogonal directions; view b = view a plus a
    # little noise: perfectly ranked, well separated.
    base = np.eye(d)[:n] * 3.0
    aligned = np.concatenate([base, base + 0.01 * rng.normal(size=base.shape)])
    random = rng.normal(size=(2 * n, d))
    for t in (0.1, 0.5, 1.0):
        loss_al, acc_al, _ = nt_xent(tf.constant(aligned), t)
        loss_rand, _, _ = nt_xent(tf.constant(random), t)
        assert acc_al.numpy() == 1.0
        assert 0.0 <= loss_al.numpy() < loss_rand.numpy()
    # Low temperature drives the aligned loss toward 0.
    assert nt_xent(tf.constant(aligned), 0.05)[0].numpy() < 1e-3


def test_misaligned_views_have_zero_accuracy():
    # View b rows swapped pairwise: each view a row's nearest view is another
    # item's view b, never its positive.
    d = 6
    base = np.eye(d)[:4]
    swapped = base[[1, 0, 3, 2]]
    loss, acc, _ = nt_xent(tf.constant(np.concatenate([base, swapped])), 0.5)
    assert acc.numpy() == 0.0
    assert loss.numpy() > 0.0


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    n, k, d, t = 4, 3, 4, 0.5
    x = rng.normal(size=(2 * n, k))
    w0 = rng.normal(size=(k, d))
    w = tf.Variable(w0)
    with tf.GradientTape() as tape:
        loss, _, _ = nt_xent(tf.constant(x) @ w, t)
    grad = tape.gradient(loss, w).numpy()
    eps = 1e-6
    numeric = np.zeros_like(w0)
    for idx in np.ndindex(*w0.shape):
        step = np.zeros_like(w0)
        step[idx] = eps
        numeric[idx] = (nt_xent_numpy(x @ (w0 + step), t)[0]
                        - nt_xent_numpy(x @ (w0 - step), t)[0]) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("bad", [0.0, -0.5, float("nan"), float("inf"), None, "0.5"])
def test_bad_temperature_raises(bad):
    # --temperature is config.validate's (tests/test_cli.py); here an assertion.
    x = tf.ones((4, 3))
    with pytest.raises(AssertionError, match=r"^temperature"):
        nt_xent(x, bad)


def test_bad_projections_raise():
    with pytest.raises(UsageError, match=r"^projections"):
        nt_xent(tf.ones((5, 3)), 0.5)
    with pytest.raises(UsageError, match=r"^projections"):
        nt_xent(tf.ones((4,)), 0.5)


def test_chance_level():
    assert contrastive_accuracy_chance(1) == 1.0
    assert contrastive_accuracy_chance(256) == pytest.approx(1 / 511)
    with pytest.raises(ValueError, match=r"^global_batch_size"):
        contrastive_accuracy_chance(0)


# --- two replicas --------------------------------------------------------

N_GLOBAL, N_LOCAL, K, D = 8, 4, 5, 6


class _OwnKeysMirroredStrategy(tf.distribute.MirroredStrategy):
    # Every MirroredStrategy numbers its collectives from the same group key,
    # so two strategies in one process whose collectives differ in type abort
    # each other ("Collective instance 100 expected type ..."). A private key
    # range keeps this file's strategy clear of any other test's.
    _collective_key_base = 7_000_000


@functools.lru_cache(maxsize=None)
def _two_replica_strategy():
    assert len(tf.config.list_logical_devices("CPU")) >= 2, (
        "tests/conftest.py must give the session two logical CPU devices")
    return _OwnKeysMirroredStrategy(["/cpu:0", "/cpu:1"])


def _global_batch(seed):
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(2 * N_GLOBAL, K)).astype(np.float32)
    w0 = rng.normal(size=(K, D)).astype(np.float32)
    return inputs, w0


def _replica_rows(inputs, replica):
    """Replica r's [2N_local, K] slice: items r*N_local.. of view a then b."""
    items = slice(replica * N_LOCAL, (replica + 1) * N_LOCAL)
    return np.concatenate([inputs[:N_GLOBAL][items], inputs[N_GLOBAL:][items]])


def _run_two_replicas(inputs, w0, temperature, strategy_aware=True):
    strategy = _two_replica_strategy()
    with strategy.scope():
        w = tf.Variable(w0)
    per_replica_inputs = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(_replica_rows(inputs, ctx.replica_id_in_sync_group)))

    @tf.function
    def step(x):
        def replica_fn(x):
            ctx = tf.distribute.get_replica_context()
            with tf.GradientTape() as tape:
                loss, acc, logits = nt_xent(x @ w, temperature,
                                            strategy_aware=strategy_aware)
                scaled = loss / ctx.num_replicas_in_sync
            grad = ctx.all_reduce(tf.distribute.ReduceOp.SUM,
                                  tape.gradient(scaled, w))
            return loss, acc, logits, grad
        loss, acc, logits, grad = strategy.run(replica_fn, args=(x,))
        return (strategy.reduce(tf.distribute.ReduceOp.MEAN, loss, axis=None),
                strategy.reduce(tf.distribute.ReduceOp.MEAN, acc, axis=None),
                strategy.experimental_local_results(logits),
                strategy.experimental_local_results(grad))

    return step(per_replica_inputs)


@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_two_replicas_equal_one_replica(temperature):
    inputs, w0 = _global_batch(seed=int(temperature * 10))
    loss, acc, logits, grads = _run_two_replicas(inputs, w0, temperature)

    w_single = tf.Variable(w0)
    with tf.GradientTape() as tape:
        ref_loss, ref_acc, ref_logits = nt_xent(tf.constant(inputs) @ w_single,
                                                temperature)
    ref_grad = tape.gradient(ref_loss, w_single).numpy()

    np.testing.assert_allclose(loss.numpy(), ref_loss.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(loss.numpy(), nt_xent_numpy(inputs @ w0, temperature)[0],
                               rtol=1e-5, atol=1e-5)
    assert acc.numpy() == pytest.approx(ref_acc.numpy())
    # Each replica's view-a logits are its rows of the global ones, positive
    # at column replica_id * N_local + i.
    for r, replica_logits in enumerate(logits):
        assert replica_logits.shape == (N_LOCAL, 2 * N_GLOBAL)
        np.testing.assert_allclose(
            replica_logits.numpy(),
            ref_logits.numpy()[r * N_LOCAL:(r + 1) * N_LOCAL], rtol=1e-5, atol=1e-5)
    assert np.abs(ref_grad).max() > 1e-3  # the comparison below is not vacuous
    for g in grads:  # summed gradient, identical on both replicas
        np.testing.assert_allclose(g.numpy(), ref_grad, rtol=1e-5, atol=1e-5)


def test_strategy_unaware_uses_local_negatives_only():
    inputs, w0 = _global_batch(seed=7)
    t = 0.5
    loss, _, logits, _ = _run_two_replicas(inputs, w0, t, strategy_aware=False)
    local = [nt_xent_numpy(_replica_rows(inputs, r) @ w0, t)[0] for r in range(2)]
    np.testing.assert_allclose(loss.numpy(), np.mean(local), rtol=1e-5, atol=1e-5)
    assert abs(loss.numpy() - nt_xent_numpy(inputs @ w0, t)[0]) > 1e-2
    assert logits[0].shape == (N_LOCAL, 2 * N_LOCAL)
