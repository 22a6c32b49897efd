"""NT-Xent contrastive loss (DESIGN §3.2; paper Sec. 2, SimCLR [Chen et al. 2020]).

Semantics follow SimCLR's `add_contrastive_loss` (tf2/objective.py): the
projections are L2-normalised, each view's positive is the other view of the
same item, and its negatives are every other view of the GLOBAL batch,
gathered across replicas under `tf.distribute`.

Row layout of `projections` (per replica): rows 0..N-1 are view a of the
replica's N items, rows N..2N-1 are view b of the same items in the same order.

Distributed convention (the standard `loss / num_replicas_in_sync` one):
`nt_xent` returns, on each replica, the mean over that replica's N items of
(cross entropy of view a + cross entropy of view b), with logits taken against
the global candidate set. With R replicas of equal N (drop the remainder):
  * global loss      = mean over replicas of the returned loss
                       (`strategy.reduce(MEAN, loss)`);
  * global gradient  = SUM over replicas of grad(loss / R) on each replica
                       (`replica_ctx.all_reduce(SUM, grads)`, which is what a
                       Keras optimizer's `apply_gradients` does under a
                       MirroredStrategy). Gradients flow back through the
                       all-gather to the replica that produced each row.
  * global accuracy  = mean over replicas of the returned accuracy.
"""
from __future__ import annotations

import math
import numbers

import tensorflow as tf

from simclr_controlled.errors import UsageError

# Subtracted from a view's similarity to itself, as SimCLR does, so it never
# competes: exp(-1e9) underflows to exactly 0 in float32/float64.
LARGE_NUM = 1e9


def _check_projections(projections: tf.Tensor) -> None:
    shape = projections.shape
    if shape.rank is not None and shape.rank != 2:
        raise UsageError(
            f"projections: must have rank 2 [2N, d], got shape {shape}")
    if shape.rank == 2 and shape[0] is not None and shape[0] % 2 != 0:
        raise UsageError(
            "projections: first dimension must be even (rows 0..N-1 view a, "
            f"N..2N-1 view b), got {shape[0]}")


def _distributed_context():
    """The replica context when running on >1 replicas, else None."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync <= 1:
        return None
    return ctx


def nt_xent(projections: tf.Tensor, temperature: float, *,
            strategy_aware: bool = True):
    """NT-Xent loss on a batch of paired views (DESIGN §3.2).

    Args:
      projections: [2N, d] projection-head outputs of this replica; rows
        0..N-1 view a, rows N..2N-1 view b of the same N items. Normalised
        here (L2, last axis). float16/bfloat16 inputs are computed in float32
        (the self mask would overflow them); float64 stays float64.
      temperature: positive float dividing the cosine similarities.
      strategy_aware: when True and called in a replica context with more than
        one replica, negatives are all views of the global batch (gathered
        with `all_gather`). When False, or in a single-replica / cross-replica
        context, only this call's 2N views are used.

    Returns:
      (loss, contrastive_accuracy, logits):
      * loss: scalar, mean over this replica's N items of
        CE(view a) + CE(view b). See the module docstring for how to get the
        global loss and gradients (average losses; divide by
        `num_replicas_in_sync` before summing gradients).
      * contrastive_accuracy: scalar, fraction of this replica's view-a rows
        whose positive has the highest logit among ALL 2N_global - 1
        candidates (other view-b AND view-a rows). Only view a is scored, as
        in SimCLR, but SimCLR ranks against the view-b rows only (chance
        1/N); here chance is 1/(2N-1), see `contrastive_accuracy_chance`.
      * logits: [N, 2N_global] for view a, SimCLR's layout
        concat([logits_ab, logits_aa], axis=1): columns 0..N_global-1 are
        similarities / temperature to the global view-b rows, columns
        N_global..2N_global-1 to the global view-a rows, with the view's own
        column lowered by 1e9. Row i's positive is column offset + i, where
        offset = number of items on lower-id replicas (replica_id * N for
        equal batches; 0 on one replica).

    Raises:
      UsageError (a ValueError): projections not [2N, d]. The temperature is
      the caller's (`config.validate` checks --temperature); a number that is
      not finite and > 0 fails an assertion.
    """
    assert tf.is_tensor(temperature) or (
        isinstance(temperature, numbers.Real) and 0 < temperature < math.inf), \
        f"temperature: must be a finite number > 0, got {temperature!r}"
    projections = tf.convert_to_tensor(projections)
    _check_projections(projections)
    if projections.dtype != tf.float64:
        projections = tf.cast(projections, tf.float32)
    dtype = projections.dtype

    hidden = tf.math.l2_normalize(projections, axis=-1)
    hidden_a, hidden_b = tf.split(hidden, 2, axis=0)
    n_local = tf.shape(hidden_a)[0]

    ctx = _distributed_context() if strategy_aware else None
    if ctx is None:
        hidden_a_all, hidden_b_all = hidden_a, hidden_b
        offset = tf.constant(0, tf.int32)
    else:
        # One collective for both views; its gradient all-reduces and slices
        # back to the producing replica, so summed per-replica gradients equal
        # the gradient of the global loss.
        hidden_a_all, hidden_b_all = ctx.all_gather([hidden_a, hidden_b], axis=0)
        # Position of this replica's items in the global batch, from the
        # gathered local sizes (exact even if the last replica is short).
        sizes = ctx.all_gather(tf.reshape(n_local, [1]), axis=0)
        replica_id = tf.cast(ctx.replica_id_in_sync_group, tf.int32)
        offset = tf.reduce_sum(sizes[:replica_id])
    n_global = tf.shape(hidden_a_all)[0]

    labels = tf.range(n_local) + offset  # positive column in the ab / ba block
    self_mask = tf.one_hot(labels, n_global, dtype=dtype) * LARGE_NUM

    inv_t = 1.0 / tf.cast(temperature, dtype)
    logits_ab = tf.matmul(hidden_a, hidden_b_all, transpose_b=True) * inv_t
    logits_aa = tf.matmul(hidden_a, hidden_a_all, transpose_b=True) * inv_t - self_mask
    logits_ba = tf.matmul(hidden_b, hidden_a_all, transpose_b=True) * inv_t
    logits_bb = tf.matmul(hidden_b, hidden_b_all, transpose_b=True) * inv_t - self_mask

    logits_a = tf.concat([logits_ab, logits_aa], axis=1)
    logits_b = tf.concat([logits_ba, logits_bb], axis=1)
    loss_a = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits_a)
    loss_b = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits_b)
    loss = tf.reduce_mean(loss_a + loss_b)

    # Ties (e.g. duplicated items) count as correct only if argmax picks the
    # positive; the positive's block comes first, as in SimCLR's layout.
    predicted = tf.argmax(logits_a, axis=1, output_type=tf.int32)
    accuracy = tf.reduce_mean(tf.cast(tf.equal(predicted, labels), dtype))
    return loss, accuracy, logits_a


def contrastive_accuracy_chance(global_batch_size: int) -> float:
    """Chance level of `nt_xent`'s accuracy: 1 / (2N - 1) for N items."""
    if not isinstance(global_batch_size, numbers.Integral) or global_batch_size < 1:
        raise UsageError(
            "global_batch_size: must be a positive integer, got "
            f"{global_batch_size!r}")
    return 1.0 / (2 * int(global_batch_size) - 1)
