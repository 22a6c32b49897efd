"""tf.data pipelines: two augmented views per item for training, plain batches
for evaluation (DESIGN §1, §2).

Both builders return a function of a `tf.distribute.InputContext`, so
`strategy.distribute_datasets_from_function` can use them; without a strategy
call them with `None`.

Determinism: the training stream is a pure function of the global
step. Step s belongs to epoch e = s // steps_per_epoch; the items of epoch e
are a stateless shuffle of the training indices seeded by (seed, e), cut into
global batches with the remainder dropped; replica r of the global batch gets
rows [r*n, (r+1)*n). View v of item i at epoch e is augmented with seeds that
depend only on (seed, e, i, v). A run resumed at step s therefore sees
exactly the batches and views an uninterrupted run sees, whatever the number
of replicas or input pipelines.

Random bits (DESIGN §1.4): with `random_bits` [N, k] (`Dataset.random_bits`),
each view gets the item's k bits appended as constant channels after its
augmentation, so both views carry the same bits and no augmentation touches
them; evaluation batches get them after the center crop.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf

from simclr_controlled import augment as augment_lib

AugmentFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def steps_per_epoch(num_items: int, global_batch_size: int) -> int:
    return num_items // global_batch_size


def append_bits(images: tf.Tensor, bits: tf.Tensor) -> tf.Tensor:
    """[B, H, W, C] float32 with bits [B, k] (0/1) appended as k constant channels."""
    # ones x bits broadcasts to [B, H, W, k] and keeps the static shape.
    planes = tf.ones_like(images[..., :1]) * tf.cast(bits, images.dtype)[:, None, None, :]
    return tf.concat([images, planes], axis=-1)


def _bits_fn(random_bits: np.ndarray | None):
    """fn(images, index) appending the items' bits, or the identity without bits."""
    if random_bits is None or np.shape(random_bits)[1] == 0:
        return lambda images, index: images
    bits_t = tf.constant(np.asarray(random_bits, np.uint8))
    return lambda images, index: append_bits(images, tf.gather(bits_t, index))


def _pipeline_layout(input_context: tf.distribute.InputContext | None, global_batch_size: int):
    if input_context is None:
        return 1, 0, 1
    pipelines = input_context.num_input_pipelines
    replicas_per_pipeline = input_context.num_replicas_in_sync // pipelines
    return pipelines, input_context.input_pipeline_id, replicas_per_pipeline


def train_input_fn(images: np.ndarray, train_idx: np.ndarray, *, global_batch_size: int,
                   seed: int, augment_fn: AugmentFn, start_step: int, total_steps: int,
                   random_bits: np.ndarray | None = None
                   ) -> Callable[[tf.distribute.InputContext | None], tf.data.Dataset]:
    """Per-replica batches {'view_a', 'view_b', 'index'} for steps [start_step, total_steps);
    `random_bits` [N, k] are appended to both views after augmentation."""
    num_train = len(train_idx)
    per_epoch = steps_per_epoch(num_train, global_batch_size)
    if per_epoch < 1:
        raise ValueError(f"train_batch_size: {global_batch_size} is larger than the "
                         f"{num_train} training items")

    def input_fn(input_context=None):
        pipelines, pipeline_id, local_replicas = _pipeline_layout(input_context, global_batch_size)
        num_replicas = pipelines * local_replicas
        per_replica = global_batch_size // num_replicas
        images_t = tf.constant(images)
        train_t = tf.constant(train_idx, tf.int64)
        with_bits = _bits_fn(random_bits)

        def element(k):
            # k counts (step, local replica) pairs of this input pipeline.
            step = k // local_replicas
            replica = pipeline_id * local_replicas + k % local_replicas
            epoch = step // per_epoch
            order = tf.random.experimental.stateless_shuffle(
                tf.range(num_train, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
            start = (step % per_epoch) * global_batch_size + replica * per_replica
            index = tf.gather(train_t, order[start:start + per_replica])
            batch = tf.gather(images_t, index)

            def view(v):  # augmented, then the bits appended
                seeds = augment_lib.view_seeds(seed, epoch, index, v)
                return with_bits(augment_fn(batch, seeds), index)

            return {"view_a": view(0), "view_b": view(1), "index": index}

        ds = tf.data.Dataset.range(start_step * local_replicas, total_steps * local_replicas)
        ds = ds.map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        ds = ds.with_options(options)
        return ds.prefetch(tf.data.AUTOTUNE)

    return input_fn


def eval_input_fn(images: np.ndarray, indices: np.ndarray, *, batch_size: int,
                  crop_size: int | None = None, random_bits: np.ndarray | None = None
                  ) -> Callable[[tf.distribute.InputContext | None], tf.data.Dataset]:
    """Un-augmented batches {'image', 'index'} in the given order, last batch kept.

    The hierarchy's evaluation input is the center crop (DESIGN §1.1); pass
    `crop_size=None` for no crop (dsprites_mod, factors). `random_bits` [N, k]
    are appended after the crop (DESIGN §1.4).
    """

    def input_fn(input_context=None):
        ds = tf.data.Dataset.from_tensor_slices(np.asarray(indices, np.int64))
        if input_context is not None and input_context.num_input_pipelines > 1:
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        images_t = tf.constant(images)
        with_bits = _bits_fn(random_bits)

        def element(index):
            batch = tf.gather(images_t, index)
            if crop_size is not None:
                batch = augment_lib.center_crop(batch, crop_size)
            return {"image": with_bits(batch, index), "index": index}

        per_batch = batch_size if input_context is None else input_context.get_per_replica_batch_size(batch_size)
        return ds.batch(per_batch).map(element).prefetch(tf.data.AUTOTUNE)

    return input_fn
