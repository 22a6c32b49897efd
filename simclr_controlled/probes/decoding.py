"""Linear decodability (DESIGN §4.3, paper Sec. 3 and App. A.2 "Decoding").

A linear softmax decoder reads one factor (color, scale, position) from the
frozen activations of one layer. Paper settings: 500 epochs, batch 256, Adam
with cosine learning-rate decay, grid learning rate {1e-2, 1e-3, 1e-4} x
weight decay {0, 1e-4, 1e-2}; the score is the best validation accuracy over
epochs and grid points.

The G grid points train together as ONE computation: their weights are the
column blocks of a single [d, G*C] matrix, so each step is one [B, d] x
[d, G*C] matmul forward and one [d, B] x [B, G*C] matmul for the weight
gradient, followed by one fused Adam update of all grid points (per-column
learning rates and weight decays; see `_train_grid_impl`). The whole training
run (all epochs, all steps, per-epoch validation of all grid points with one
matmul) is one `tf.function` graph of nested while loops, so Python never
runs in the inner loop; on a GPU/TPU, and on a CPU for the narrow color and
scale grids, it is one XLA program (`use_xla`).

Choices where the paper is silent (documented, and the same for every
grid point, so the grid points differ ONLY in learning rate and weight decay):
- Initialization: zeros (weights and biases). Softmax regression is convex,
  so the start matters little; zeros are deterministic and identical across
  the grid, and `seed` then only drives the minibatch order.
- Minibatch order: a fresh permutation per epoch from
  `np.random.default_rng(seed)`; every grid point sees the same batches. The
  last, partial batch of an epoch is kept (as Keras `fit` does): it is padded
  to the full batch size with zero-weight rows, and its loss is the mean over
  its real rows.
- Weight decay: an L2 penalty wd/2 * ||W||^2 added to each grid point's
  loss (gradient wd * W), on the weights only, not the biases. This is the
  L2-in-the-loss form SimCLR uses for its linear evaluation head (its
  `tf.nn.l2_loss` terms, which exclude the head's bias); it goes through Adam
  like the data gradient (not decoupled AdamW). Biases are left undecayed
  because penalising them only shifts the class priors.
- Adam: Keras defaults (beta_1 0.9, beta_2 0.999, epsilon 1e-7, Keras's bias
  correction folded into the step size). Cosine decay to 0 over all
  epochs * steps_per_epoch steps, step t (from 0) using
  lr * (1 + cos(pi * t / T)) / 2, as `keras.optimizers.schedules.CosineDecay`
  with alpha 0.
- Inputs: no standardization (the paper does not mention one); the
  activations are fed as they are, in float32.
- Dead features: a feature that is 0 on every training and validation
  example (a ReLU unit that never fires; 144-398 of 512 at `head_2` of the
  trained dSprites CPU models) is dropped before training. This changes no
  result: its weights start at 0, get no data gradient, so weight decay
  keeps them at 0, and it adds nothing to any logit. It saves their share of
  the matmuls. `num_live_features` in the result counts the others. (The
  decoder's width is rounded up to a multiple of 64 with dead columns, so
  that probes over many checkpoints reuse a few traced shapes.)
- Accuracy ties in argmax go to the lowest class index (tf.argmax); the best
  score's ties go to the earliest grid point (grid order: learning rates
  outer, weight decays inner), then the earliest epoch.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import tensorflow as tf

from simclr_controlled.errors import UsageError

LEARNING_RATES = (1e-2, 1e-3, 1e-4)
WEIGHT_DECAYS = (0.0, 1e-4, 1e-2)
# Decoder input widths are multiples of this after dropping dead features.
_WIDTH_STEP = 64
_BETA_1 = 0.9
_BETA_2 = 0.999
_EPSILON = 1e-7


def chance(num_classes: int) -> float:
    """Chance accuracy of a `num_classes`-way decoder (Fig. 3: 1/10, 1/6, 1/256)."""
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise UsageError(f"num_classes: must be a positive integer, got {num_classes!r}")
    return 1.0 / int(num_classes)


def _check_features(name: str, x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise UsageError(f"{name}: must be a non-empty 2-D array [examples, features], "
                         f"got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise UsageError(f"{name}: must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise UsageError(f"{name}: must be finite (found NaN or inf)")
    return x


def _check_labels(name: str, y, n: int, num_classes: int, x_name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise UsageError(f"{name}: must be a 1-D integer array, got shape {y.shape} "
                         f"dtype {y.dtype}")
    if y.shape[0] != n:
        raise UsageError(f"{name}: length {y.shape[0]} does not match {x_name} ({n} examples)")
    if y.min() < 0 or y.max() >= num_classes:
        raise UsageError(f"{name}: labels must lie in [0, num_classes={num_classes}), "
                         f"got range [{y.min()}, {y.max()}]")
    return y.astype(np.int32)


def _check_grid(name: str, values, minimum_ok) -> tuple:
    try:
        values = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise UsageError(
            f"{name}: must be a non-empty sequence of numbers, got {values!r}") from None
    if not values or not all(math.isfinite(v) and minimum_ok(v) for v in values):
        raise UsageError(f"{name}: must be a non-empty sequence of "
                         f"{'positive' if name == 'learning_rates' else 'non-negative'} "
                         f"finite numbers, got {values!r}")
    return values


def _check_positive_int(name: str, value) -> int:
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise UsageError(f"{name}: must be an integer >= 1, got {value!r}")
    return int(value)


def _batch_orders(n: int, epochs: int, batch_size: int, seed: int) -> np.ndarray:
    """Minibatch indices [epochs, steps, batch_size], shared by all grid points.

    Epoch e uses the e-th permutation of `np.random.default_rng(seed)`; the
    last batch is padded with index 0 (those rows get weight 0). Drawn in
    NumPy, outside the compiled loop, so the order is the same with and
    without XLA (whose stateless RNG kernels draw different numbers).
    """
    rng = np.random.default_rng(seed)
    steps = -(-n // batch_size)
    orders = np.zeros([epochs, steps * batch_size], np.int32)
    for e in range(epochs):
        orders[e, :n] = rng.permutation(n)
    return orders.reshape(epochs, steps, batch_size)


def _train_grid_impl(x, y, val_x, val_y, lr, wd, orders, u_w, m_w, v_w, u_b, m_b, v_b, *,
                     num_classes):
    """Trains G = len(lr) softmax decoders at once for each of K label columns;
    returns correct counts [epochs, G, K].

    x [N, d], y [N, K] int32, val_x [M, d], val_y [M, K] int32, lr / wd [G]
    float32, orders [epochs, steps, B] int32 from `_batch_orders`. Static:
    num_classes C (the same for every column). State (variables, zero on
    entry, trained in place): u_w [d, G*K*C] and u_b [G*K*C] with W = lr * u_w
    and b = lr * u_b column by column (grid point g owns columns g*K*C ..
    (g+1)*K*C - 1, label column k within it the k-th block of C), and their
    Adam moments. K > 1 decodes several factors of the same class count at
    once (the random bits, two classes each); with K = 1 the arithmetic is
    that of one factor.

    Why W = lr * U: Adam's step is lr * m / (sqrt(v) + eps), where m and v are
    moments of dL/dW. Running TF's fused Adam kernel on U with the gradient
    dL/dW and a scalar step size (cosine factor) gives U's step = scalar * m /
    (sqrt(v) + eps), so W's step = lr_k * scalar * m / (sqrt(v) + eps): exactly
    Adam on W with grid point k's learning rate. One kernel call then updates
    every grid point in one pass over W, m, v (XLA:CPU runs hand-written Adam
    as three separate passes, which is slower; README, Speed).
    """
    n, d = x.shape
    g = lr.shape[0]
    k = y.shape[1]
    c = num_classes
    gkc = g * k * c
    epochs, steps, batch_size = orders.shape
    padded = steps * batch_size
    total_steps = float(epochs * steps)

    # Per-column (grid-point-major) hyperparameters.
    lr_cols = tf.repeat(lr, k * c)
    # dL/dW of wd/2 * ||W||^2 is wd * W = (wd * lr) * U.
    wd_lr_cols = tf.repeat(wd * lr, k * c)[tf.newaxis, :]
    onehot = tf.one_hot(y, c, dtype=tf.float32)  # [N, K, C]
    val_y_col = val_y[:, tf.newaxis, :]
    # Row weights of each step's batch: 1/B, or 1/(real rows) and 0 on the
    # padding of the last, partial batch.
    real = tf.reshape(tf.cast(tf.range(padded) < n, tf.float32), [steps, batch_size])
    row_weights = real / tf.reduce_sum(real, axis=1, keepdims=True)
    correct = tf.TensorArray(tf.int32, size=epochs)
    t = tf.constant(0.0)

    for epoch in tf.range(epochs):
        order = orders[epoch]
        for step in tf.range(steps):
            idx = order[step]
            xb = tf.gather(x, idx)
            # One [B, d] x [d, G*K*C] matmul for all grid points and columns.
            logits = tf.nn.bias_add(tf.matmul(xb, u_w), u_b) * lr_cols
            probs = tf.nn.softmax(tf.reshape(logits, [batch_size, g, k, c]))
            # d(cross-entropy)/d(logits) = P - Y, per row, grid point and column.
            dlogits = tf.reshape(probs - tf.gather(onehot, idx)[:, tf.newaxis, :, :],
                                 [batch_size, gkc])
            rw = row_weights[step]
            # Row weights (the batch mean) go on the narrow [B, d] side.
            grad_w = _add_scaled(
                tf.matmul(xb * rw[:, tf.newaxis], dlogits, transpose_a=True), u_w, wd_lr_cols)
            grad_b = tf.linalg.matvec(dlogits, rw, transpose_a=True)

            t = t + 1.0
            cosine = 0.5 * (1.0 + tf.cos(math.pi * (t - 1.0) / total_steps))
            # Keras Adam: bias correction sqrt(1 - b2^t) / (1 - b1^t) is folded
            # into the step size by the kernel from these powers.
            b1_power = _BETA_1 ** t
            b2_power = _BETA_2 ** t
            for var, m, v, grad in ((u_w, m_w, v_w, grad_w), (u_b, m_b, v_b, grad_b)):
                tf.raw_ops.ResourceApplyAdam(
                    var=var.handle, m=m.handle, v=v.handle, beta1_power=b1_power,
                    beta2_power=b2_power, lr=cosine, beta1=_BETA_1, beta2=_BETA_2,
                    epsilon=_EPSILON, grad=grad)

        val_logits = tf.nn.bias_add(tf.matmul(val_x, u_w), u_b) * lr_cols
        pred = tf.argmax(tf.reshape(val_logits, [val_x.shape[0], g, k, c]), axis=-1,
                         output_type=tf.int32)
        correct = correct.write(epoch, tf.reduce_sum(
            tf.cast(tf.equal(pred, val_y_col), tf.int32), axis=0))
    return correct.stack()


# One fused pass (a + s * u) instead of TF's two kernels over [d, G*C].
_add_scaled = tf.function(lambda a, u, s: a + s * u, jit_compile=True)

# On an accelerator the whole loop is one XLA program, so per-op dispatch
# does not sit in the inner loop. On a CPU it depends on the grid's width
# (G*C columns; measurements in README, Speed):
# - wide grids (position, 9 x 256 columns) are matmul-bound, and TF's oneDNN
#   matmuls beat XLA:CPU's;
# - narrow grids (color 90, scale 54 columns) are bound by per-op dispatch,
#   which XLA removes, for a little more compile time on the first call.
# The threshold sits between the two regimes.
_CPU_XLA_MAX_COLUMNS = 512
# A probe runs the grid at 12 (layer, factor) shapes, each traced once with
# static shapes (the loop needs them). One tf.function per shape keeps TF from
# filling the log with "triggered tf.function retracing" warnings.
_GRID_FUNCTIONS: dict = {}


def use_xla(columns: int, *, accelerator: bool) -> bool:
    """Whether a grid of `columns` = G*C runs as one XLA program (see above)."""
    return accelerator or columns <= _CPU_XLA_MAX_COLUMNS


def _grid_function(xla: bool, key: tuple):
    if (xla, key) not in _GRID_FUNCTIONS:
        _GRID_FUNCTIONS[xla, key] = tf.function(_train_grid_impl, jit_compile=xla)
    return _GRID_FUNCTIONS[xla, key]


def _train_grid(x, y, val_x, val_y, lr, wd, orders, *, num_classes, xla=None):
    """Runs the grid from zero weights; returns (correct, W [d, G*K*C], b [G*K*C]):
    correct [epochs, G] for labels y [N] (one factor), [epochs, G, K] for y [N, K].

    xla: None picks XLA when a GPU/TPU is visible; on a CPU, XLA for grids of
    at most `_CPU_XLA_MAX_COLUMNS` columns and the TF loop for wider ones.
    """
    one = len(y.shape) == 1
    y, val_y = (tf.reshape(v, [-1, 1]) for v in (y, val_y)) if one else (y, val_y)
    gc = lr.shape[0] * y.shape[1] * num_classes
    if xla is None:
        accelerator = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU")
        xla = use_xla(gc, accelerator=bool(accelerator))
    state = [tf.Variable(tf.zeros(shape)) for shape in
             [[x.shape[1], gc]] * 3 + [[gc]] * 3]
    key = (tuple(x.shape), tuple(val_x.shape), tuple(orders.shape), lr.shape[0], y.shape[1],
           num_classes)
    run = _grid_function(xla, key)
    correct = run(x, y, val_x, val_y, lr, wd, orders, *state, num_classes=num_classes)
    lr_cols = tf.repeat(lr, y.shape[1] * num_classes)
    return correct[..., 0] if one else correct, state[0] * lr_cols, state[3] * lr_cols


def decode(train_x, train_y, val_x, val_y, num_classes: int, *, epochs: int = 500,
           batch_size: int = 256, learning_rates: Sequence[float] = LEARNING_RATES,
           weight_decays: Sequence[float] = WEIGHT_DECAYS, seed: int = 0) -> dict:
    """Linear decodability of one factor from one layer (DESIGN §4.3, App. A.2).

    Trains one linear softmax decoder per (learning rate, weight decay) grid
    point on (train_x, train_y), all at once, and validates every epoch.
    Returns a JSON-friendly dict: best_val_accuracy (max over epochs and grid),
    best_learning_rate, best_weight_decay, best_epoch (1-based: epochs trained),
    val_accuracy [G][epochs], grid [[lr, wd], ...] (learning rates outer),
    num_live_features (features that are nonzero somewhere; module doc).
    Raises UsageError naming the bad argument; `seed` (--seed, checked by
    config.validate) is asserted.
    """
    (train_x, train_y, val_x, val_y, num_classes, epochs, batch_size, lrs, wds) = check_inputs(
        train_x, train_y, val_x, val_y, num_classes, epochs, batch_size, seed,
        learning_rates, weight_decays)
    correct, grid, num_live = _fit_grid(train_x, train_y, val_x, val_y, num_classes, epochs,
                                        batch_size, lrs, wds, seed)
    return score(correct, val_x.shape[0], grid, num_live)


def _fit_grid(train_x, train_y, val_x, val_y, num_classes, epochs, batch_size, lrs, wds, seed):
    """Checked inputs (labels [N] or [N, K]) -> (correct counts [epochs, G]
    or [epochs, G, K], the grid, the number of live features)."""
    keep, num_live = live_columns(train_x, val_x)
    if keep is not None:
        train_x, val_x = train_x[:, keep], val_x[:, keep]
    grid = [(lr, wd) for lr in lrs for wd in wds]
    correct, _, _ = _train_grid(
        tf.constant(train_x), tf.constant(train_y), tf.constant(val_x), tf.constant(val_y),
        tf.constant([p[0] for p in grid], tf.float32),
        tf.constant([p[1] for p in grid], tf.float32),
        tf.constant(_batch_orders(train_x.shape[0], epochs, batch_size, int(seed))),
        num_classes=num_classes)
    return correct.numpy(), grid, num_live


def decode_columns(train_x, train_y, val_x, val_y, num_classes: int, *, epochs: int = 500,
                   batch_size: int = 256, learning_rates: Sequence[float] = LEARNING_RATES,
                   weight_decays: Sequence[float] = WEIGHT_DECAYS, seed: int = 0) -> list[dict]:
    """`decode` for K factors with the same number of classes at once (the
    random bits, DESIGN §4.3): labels [N, K], one result dict per column.

    Column k's decoders are `decode(train_x, train_y[:, k], ...)`'s (the same
    grid, batches and updates; columns share no weight), trained in one
    [d, G*K*C] computation instead of K.
    """
    train_y, val_y = np.asarray(train_y), np.asarray(val_y)
    for name, y in (("train_y", train_y), ("val_y", val_y)):
        if y.ndim != 2 or y.shape[1] == 0:
            raise UsageError(f"{name}: must be a 2-D integer array [examples, columns], got "
                             f"shape {y.shape}")
    if train_y.shape[1] != val_y.shape[1]:
        raise UsageError(f"val_y: has {val_y.shape[1]} columns, train_y has {train_y.shape[1]}")
    (train_x, _, val_x, _, num_classes, epochs, batch_size, lrs, wds) = check_inputs(
        train_x, train_y[:, 0], val_x, val_y[:, 0], num_classes, epochs, batch_size, seed,
        learning_rates, weight_decays)
    train_y = _check_labels("train_y", train_y.ravel(), train_y.size, num_classes,
                            "train_y").reshape(train_y.shape)
    val_y = _check_labels("val_y", val_y.ravel(), val_y.size, num_classes, "val_y").reshape(val_y.shape)
    correct, grid, num_live = _fit_grid(train_x, train_y, val_x, val_y, num_classes, epochs,
                                        batch_size, lrs, wds, seed)
    return [score(correct[:, :, k], val_x.shape[0], grid, num_live) for k in range(correct.shape[2])]


def check_inputs(train_x, train_y, val_x, val_y, num_classes, epochs, batch_size, seed,
                 learning_rates, weight_decays) -> tuple:
    """A decoder grid's arguments checked (UsageError naming the bad one;
    `seed`, checked by config.validate, asserted) and normalized: float32
    features, int32 labels, the batch at most the training rows."""
    num_classes = _check_positive_int("num_classes", num_classes)
    if num_classes < 2:
        raise UsageError(f"num_classes: a decoder needs at least 2 classes, got {num_classes}")
    epochs = _check_positive_int("epochs", epochs)
    batch_size = _check_positive_int("batch_size", batch_size)
    assert isinstance(seed, (int, np.integer)) and 0 <= seed < 2 ** 31, \
        f"seed: must be an integer in [0, 2**31), got {seed!r}"
    lrs = _check_grid("learning_rates", learning_rates, lambda v: v > 0)
    wds = _check_grid("weight_decays", weight_decays, lambda v: v >= 0)
    train_x = _check_features("train_x", train_x)
    val_x = _check_features("val_x", val_x)
    if val_x.shape[1] != train_x.shape[1]:
        raise UsageError(f"val_x: has {val_x.shape[1]} features, train_x has "
                         f"{train_x.shape[1]}")
    train_y = _check_labels("train_y", train_y, train_x.shape[0], num_classes, "train_x")
    val_y = _check_labels("val_y", val_y, val_x.shape[0], num_classes, "val_x")
    return (train_x, train_y, val_x, val_y, num_classes, epochs,
            min(batch_size, train_x.shape[0]), lrs, wds)


def live_columns(train_x: np.ndarray, val_x: np.ndarray) -> tuple[np.ndarray | None, int]:
    """The feature columns a decoder keeps (None: all) and the number of live
    ones (nonzero somewhere; module doc)."""
    live = np.any(train_x != 0, axis=0) | np.any(val_x != 0, axis=0)
    num_live = int(live.sum())
    # Widths rounded up to a multiple of _WIDTH_STEP with some of the dead
    # (all-zero) columns, which change nothing: a probe over many checkpoints
    # then reuses a few traced shapes instead of tracing one per live count.
    width = min(train_x.shape[1], -(-max(num_live, 1) // _WIDTH_STEP) * _WIDTH_STEP)
    if width == train_x.shape[1]:
        return None, num_live
    keep = np.sort(np.concatenate([np.flatnonzero(live), np.flatnonzero(~live)[:width - num_live]]))
    return keep, num_live


def score(correct: np.ndarray, num_val: int, grid: list, num_live: int) -> dict:
    """The result dict of a grid from its correct counts [epochs, G] (decode's doc)."""
    acc = correct.T.astype(np.float64) / num_val  # [G, epochs]
    # First maximum in (grid point, epoch) order: earliest grid point, then epoch.
    best_g, best_e = np.unravel_index(int(np.argmax(acc)), acc.shape)
    return {
        "best_val_accuracy": float(acc[best_g, best_e]),
        "best_learning_rate": grid[best_g][0],
        "best_weight_decay": grid[best_g][1],
        "best_epoch": int(best_e) + 1,
        "val_accuracy": acc.tolist(),
        "grid": [[lr, wd] for lr, wd in grid],
        "num_live_features": num_live,
    }
