"""Nonlinear (MLP) decodability: the linear probe of DESIGN §4.3 with one hidden layer.

A factor can be present in a layer without being linearly decodable (an XOR
or parity of two features is the textbook case: a linear softmax decoder
stays at chance). `decode_mlp` reads a factor with a one-hidden-layer MLP,
x -> relu(x W1 + b1) W2 + b2 -> softmax, trained and scored exactly as the
linear probe `decoding.decode` trains and scores its decoders, so the two
numbers compare directly: the same grid (learning rate {1e-2, 1e-3, 1e-4} x
weight decay {0, 1e-4, 1e-2}), Adam with Keras defaults and cosine decay to 0,
paper settings 500 epochs, batch 256, the same minibatch order and padding
rule, and the same score: the best validation accuracy over epochs and grid
points (ties: earliest grid point, then earliest epoch).

The G grid points train together as ONE computation, as in the linear probe:
- their first layers are the column blocks of one [d, G*H] matrix (grid point
  k owns columns k*H .. (k+1)*H - 1): one [B, d] x [d, G*H] matmul forward and
  one [d, B] x [B, G*H] matmul for the weight gradient;
- their second layers are one [G, H, C] tensor, applied as a batched matmul
  over G ([G, B, H] x [G, H, C]); the hidden activations are transposed
  between the [B, G*H] and [G, B, H] layouts (no block-diagonal matrix, which
  would cost G times the FLOPs);
- one fused Adam kernel call per parameter tensor updates every grid point,
  with the W = lr * U reparametrisation of `decoding._train_grid_impl`
  (Adam on U with the gradient dL/dW and the scalar cosine factor as step
  size is Adam on W with grid point k's learning rate);
- the whole run (all epochs, steps, per-epoch validation) is one
  `tf.function` graph of nested while loops.

Decisions (where the paper, which reports linear decoding only, is silent;
each the same for every grid point, so grid points differ ONLY in learning
rate and weight decay):
- Hidden width: `hidden`, default HIDDEN = 512 for every layer (not min(d,
  512)), so the probe's capacity is the same at the d=512 and d=128 layers of
  the dSprites models. ReLU. No input standardization, float32 (as linear).
- Initialization: Glorot uniform (Keras's default for Dense: U(-l, l),
  l = sqrt(6 / (fan_in + fan_out))) for W1 [d, H] and W2 [H, C], biases 0.
  Drawn in NumPy from `np.random.default_rng([seed, 1])`, a stream separate
  from the minibatch order's `default_rng(seed)` (so the batch order is the
  linear probe's); W1 first, then W2. The same draw is tiled over the grid.
  W1 is drawn for the full input width d (fan_in = d, dead features
  included) before dead features are dropped, so dropping them changes
  nothing.
- Minibatch order and padding: `decoding._batch_orders` (a fresh permutation
  per epoch from `default_rng(seed)`; the last partial batch is padded with
  zero-weight rows and its loss is the mean over its real rows).
- Weight decay: an L2 penalty wd/2 * (||W1||^2 + ||W2||^2) in each grid
  point's loss (gradient wd * W, through Adam, not decoupled), on the
  weights only, not the biases, as the linear probe.
- Dead features (0 on every training and validation item) are dropped as in
  the linear probe, with the same width bucketing to multiples of 64: their
  W1 rows multiply zeros, so they add nothing to any hidden unit, and their
  only gradient (weight decay) changes only themselves.
- XLA: `decoding.use_xla` on the first layer's width G*H (the matmul-bound
  part): on a CPU, the TF loop for wide grids (all grids at H=512), XLA for
  narrow ones; always XLA on a GPU/TPU.
- The result has the linear probe's keys plus `hidden`.

`--mode=probe --mlp_probe` runs a reduced probe (`probe_settings`, DESIGN
§4.5), chosen so that the full metric set of a dSprites model costs at most
twice its linear grid: hidden 128, the three learning rates at weight decay
0 (3 grid points, not 9), a fifth of `--decoder_epochs` (rounded up).
Measured (benchmarks/full_probe.py; README, Speed): 0.6-0.8x the linear grid
per epoch (hidden 512 at 9 points: about 5.6x), so the full set cost
1.26-1.38x the linear grid's CPU time at the CPU preset's 30 decoder epochs. On a trained dSprites
model's activations its scores were within 0.035 of a hidden-256 probe
trained for all 30 epochs, and it decodes an XOR that the linear probe
cannot (tests/test_mlp_decoding.py).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import tensorflow as tf

from simclr_controlled.probes.decoding import (
    _BETA_1, _BETA_2, _EPSILON, LEARNING_RATES, WEIGHT_DECAYS, _add_scaled, _batch_orders,
    _check_positive_int, check_inputs, live_columns, score, use_xla)

HIDDEN = 512
# --mode=probe's reduced probe (module doc; DESIGN §4.5).
PROBE_HIDDEN = 128
PROBE_LEARNING_RATES = LEARNING_RATES
PROBE_WEIGHT_DECAYS = (0.0,)
PROBE_EPOCH_DIVISOR = 5
# One tf.function per static shape (see decoding._GRID_FUNCTIONS).
_GRID_FUNCTIONS: dict = {}


def glorot_init(d: int, hidden: int, num_classes: int, seed: int):
    """(W1 [d, hidden], W2 [hidden, num_classes]) float32, Glorot uniform from `seed`."""
    rng = np.random.default_rng([int(seed), 1])
    weights = []
    for fan_in, fan_out in ((d, hidden), (hidden, num_classes)):
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        weights.append(rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32))
    return tuple(weights)


def _train_grid_impl(x, y, val_x, val_y, lr, wd, orders,
                     u1, m1, v1, c1, mc1, vc1, u2, m2, v2, c2, mc2, vc2, *, num_classes):
    """Trains G = len(lr) MLP decoders at once; returns correct counts [epochs, G].

    x [N, d], y [N] int32, val_x [M, d], val_y [M] int32, lr / wd [G] float32,
    orders [epochs, steps, B] int32 from `_batch_orders`. Static: num_classes.
    State (variables, trained in place), each with its Adam moments m, v
    (zero on entry): u1 [d, G*H] and c1 [G*H] with W1 = lr * u1 and
    b1 = lr * c1 column block by column block; u2 [G, H, C] and c2 [G, 1, C]
    with W2 = lr * u2 and b2 = lr * c2 per grid point. u1 and u2 enter as the
    initial weights divided by lr, c1 and c2 as zeros.
    """
    n, d = x.shape
    g = lr.shape[0]
    hid = u1.shape[1] // g
    c = num_classes
    epochs, steps, batch_size = orders.shape
    padded = steps * batch_size
    total_steps = float(epochs * steps)

    lr_cols = tf.repeat(lr, hid)                       # [G*H], first layer
    lr_g = lr[:, tf.newaxis, tf.newaxis]               # [G, 1, 1], second layer
    # dL/dW of wd/2 * ||W||^2 is wd * W = (wd * lr) * U.
    wd_lr_cols = tf.repeat(wd * lr, hid)[tf.newaxis, :]
    wd_lr_g = (wd * lr)[:, tf.newaxis, tf.newaxis]
    onehot = tf.one_hot(y, c, dtype=tf.float32)
    real = tf.reshape(tf.cast(tf.range(padded) < n, tf.float32), [steps, batch_size])
    row_weights = real / tf.reduce_sum(real, axis=1, keepdims=True)
    correct = tf.TensorArray(tf.int32, size=epochs)
    t = tf.constant(0.0)

    def forward(xb):
        """[B, d] -> pre-activations [B, G*H], activations [G, B, H], logits [G, B, C]."""
        pre = tf.nn.bias_add(tf.matmul(xb, u1), c1) * lr_cols
        act = tf.transpose(tf.reshape(tf.nn.relu(pre), [-1, g, hid]), [1, 0, 2])
        return pre, act, (tf.matmul(act, u2) + c2) * lr_g

    for epoch in tf.range(epochs):
        order = orders[epoch]
        for step in tf.range(steps):
            idx = order[step]
            xb = tf.gather(x, idx)
            pre, act, logits = forward(xb)
            # d(mean cross-entropy)/d(logits) = (P - Y) * row weight.
            rw = row_weights[step][tf.newaxis, :, tf.newaxis]
            dlogits = (tf.nn.softmax(logits) - tf.gather(onehot, idx)[tf.newaxis]) * rw
            grad_u2 = _add_scaled(tf.matmul(act, dlogits, transpose_a=True), u2, wd_lr_g)
            grad_c2 = tf.reduce_sum(dlogits, axis=1, keepdims=True)
            # dL/dact = dlogits W2^T with W2 = lr * u2 (lr folded into the narrow side).
            dact = tf.matmul(dlogits * lr_g, u2, transpose_b=True)
            dpre = tf.raw_ops.ReluGrad(
                gradients=tf.reshape(tf.transpose(dact, [1, 0, 2]), [batch_size, g * hid]),
                features=pre)
            grad_u1 = _add_scaled(tf.matmul(xb, dpre, transpose_a=True), u1, wd_lr_cols)
            grad_c1 = tf.reduce_sum(dpre, axis=0)

            t = t + 1.0
            cosine = 0.5 * (1.0 + tf.cos(math.pi * (t - 1.0) / total_steps))
            b1_power = _BETA_1 ** t
            b2_power = _BETA_2 ** t
            for var, m, v, grad in ((u1, m1, v1, grad_u1), (c1, mc1, vc1, grad_c1),
                                    (u2, m2, v2, grad_u2), (c2, mc2, vc2, grad_c2)):
                tf.raw_ops.ResourceApplyAdam(
                    var=var.handle, m=m.handle, v=v.handle, beta1_power=b1_power,
                    beta2_power=b2_power, lr=cosine, beta1=_BETA_1, beta2=_BETA_2,
                    epsilon=_EPSILON, grad=grad)

        _, _, val_logits = forward(val_x)
        pred = tf.argmax(val_logits, axis=-1, output_type=tf.int32)  # [G, M]
        correct = correct.write(epoch, tf.reduce_sum(
            tf.cast(tf.equal(pred, val_y[tf.newaxis, :]), tf.int32), axis=1))
    return correct.stack()


def _grid_function(xla: bool, key: tuple):
    if (xla, key) not in _GRID_FUNCTIONS:
        _GRID_FUNCTIONS[xla, key] = tf.function(_train_grid_impl, jit_compile=xla)
    return _GRID_FUNCTIONS[xla, key]


def _train_grid(x, y, val_x, val_y, lr, wd, orders, w1, w2, *, num_classes, xla=None):
    """Runs the grid from initial weights w1 [d, H], w2 [H, C] (the same for every
    grid point; biases 0); returns (correct [epochs, G], W1 [d, G*H], b1 [G*H],
    W2 [G, H, C], b2 [G, C]).

    xla: None picks `decoding.use_xla` on the first layer's G*H columns.
    """
    g = lr.shape[0]
    hid = w1.shape[1]
    if xla is None:
        accelerator = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU")
        xla = use_xla(g * hid, accelerator=bool(accelerator))
    lr_cols = tf.repeat(lr, hid)
    lr_g = lr[:, tf.newaxis, tf.newaxis]
    u1 = tf.tile(tf.constant(w1), [1, g]) / lr_cols
    u2 = tf.constant(w2)[tf.newaxis] / lr_g
    shapes = [u1.shape, [g * hid], u2.shape, [g, 1, num_classes]]
    state = []
    for k, shape in enumerate(shapes):
        state.append(tf.Variable(u1 if k == 0 else u2 if k == 2 else tf.zeros(shape)))
        state += [tf.Variable(tf.zeros(shape)) for _ in range(2)]
    key = (tuple(x.shape), tuple(val_x.shape), tuple(orders.shape), g, hid, num_classes)
    run = _grid_function(xla, key)
    correct = run(x, y, val_x, val_y, lr, wd, orders, *state, num_classes=num_classes)
    return (correct, state[0] * lr_cols, state[3] * lr_cols, state[6] * lr_g,
            tf.reshape(state[9] * lr_g, [g, num_classes]))


def decode_mlp(train_x, train_y, val_x, val_y, num_classes: int, *, epochs: int = 500,
               batch_size: int = 256, learning_rates: Sequence[float] = LEARNING_RATES,
               weight_decays: Sequence[float] = WEIGHT_DECAYS, seed: int = 0,
               hidden: int = HIDDEN) -> dict:
    """Nonlinear decodability of one factor from one layer: a one-hidden-layer MLP probe.

    Trains one MLP (width `hidden`, ReLU, softmax) per (learning rate, weight
    decay) grid point on (train_x, train_y), all at once, and validates every
    epoch; training and score as `decoding.decode` (module doc).
    Returns a JSON-friendly dict: best_val_accuracy (max over epochs and grid),
    best_learning_rate, best_weight_decay, best_epoch (1-based: epochs trained),
    val_accuracy [G][epochs], grid [[lr, wd], ...] (learning rates outer),
    num_live_features (features that are nonzero somewhere), hidden.
    Raises UsageError naming the bad argument; `seed` is asserted as in decode.
    """
    (train_x, train_y, val_x, val_y, num_classes, epochs, batch_size, lrs, wds) = check_inputs(
        train_x, train_y, val_x, val_y, num_classes, epochs, batch_size, seed,
        learning_rates, weight_decays)
    hidden = _check_positive_int("hidden", hidden)
    w1, w2 = glorot_init(train_x.shape[1], hidden, num_classes, int(seed))
    # Dead features dropped, widths bucketed, as in decoding.decode.
    keep, num_live = live_columns(train_x, val_x)
    if keep is not None:
        train_x, val_x, w1 = train_x[:, keep], val_x[:, keep], w1[keep]

    grid = [(lr, wd) for lr in lrs for wd in wds]
    correct = _train_grid(
        tf.constant(train_x), tf.constant(train_y), tf.constant(val_x), tf.constant(val_y),
        tf.constant([p[0] for p in grid], tf.float32),
        tf.constant([p[1] for p in grid], tf.float32),
        tf.constant(_batch_orders(train_x.shape[0], epochs, batch_size, int(seed))),
        w1, w2, num_classes=num_classes)[0].numpy()
    return {**score(correct, val_x.shape[0], grid, num_live), "hidden": hidden}


def probe_settings(decoder_epochs: int) -> dict:
    """`decode_mlp`'s keyword arguments in `--mode=probe` for `--decoder_epochs`
    (module doc): a fifth of the epochs, rounded up, hidden 128, weight decay 0."""
    decoder_epochs = _check_positive_int("decoder_epochs", decoder_epochs)
    return dict(epochs=-(-decoder_epochs // PROBE_EPOCH_DIVISOR), hidden=PROBE_HIDDEN,
                learning_rates=PROBE_LEARNING_RATES, weight_decays=PROBE_WEIGHT_DECAYS)
