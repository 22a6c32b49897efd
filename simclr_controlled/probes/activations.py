"""Activations of every head tap (`head_input`, `head_1`, `head_2`,
`head_out`) for a batch of images: batched inference in eval mode (batch norm
uses its moving statistics). The analyses take these arrays."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from simclr_controlled.names import TAPS


def _infer_fn(model: keras.Model, strategy: tf.distribute.Strategy):
    # One traced function per model, cached on it, so repeated evaluations
    # (every epoch of a run) do not retrace.
    fn = getattr(model, "_simclr_infer_fn", None)
    if fn is None:
        def replica_fn(x):
            taps = model(x, training=False)
            return {k: tf.cast(taps[k], tf.float32) for k in TAPS}

        if strategy.num_replicas_in_sync == 1 and not isinstance(strategy, tf.distribute.TPUStrategy):
            fn = tf.function(replica_fn)
        else:
            @tf.function
            def fn(x):
                out = strategy.run(replica_fn, args=(x,))
                return {k: strategy.gather(v, axis=0) for k, v in out.items()}
        model._simclr_infer_fn = fn
    return fn


def compute_activations(model: keras.Model, images: np.ndarray, *, batch_size: int = 500,
                        strategy: tf.distribute.Strategy | None = None) -> dict[str, np.ndarray]:
    """dict tap -> float32 [n, d] for `images` [n, H, W, C] (already cropped).

    Batches are padded to `batch_size`, so one trace serves every call; under
    a multi-replica strategy each batch is split across replicas in order.
    Single-process strategies only (one device, mirrored, TPU).
    """
    strategy = strategy or tf.distribute.get_strategy()
    n = len(images)
    replicas = strategy.num_replicas_in_sync
    batch_size = max(replicas, batch_size - batch_size % replicas)
    fn = _infer_fn(model, strategy)
    outs: dict[str, list] = {k: [] for k in TAPS}
    for start in range(0, n, batch_size):
        chunk = np.asarray(images[start:start + batch_size], np.float32)
        valid = len(chunk)
        if valid < batch_size:
            chunk = np.concatenate([chunk, np.zeros((batch_size - valid,) + chunk.shape[1:], np.float32)])
        if replicas == 1 and not isinstance(strategy, tf.distribute.TPUStrategy):
            taps = fn(tf.constant(chunk))
        else:
            dist = strategy.experimental_distribute_values_from_function(
                lambda ctx, c=chunk: c.reshape((replicas, -1) + c.shape[1:])[ctx.replica_id_in_sync_group])
            taps = fn(dist)
        for k in TAPS:
            outs[k].append(taps[k].numpy()[:valid])
    return {k: np.concatenate(v) if v else np.zeros((0, 0), np.float32) for k, v in outs.items()}
