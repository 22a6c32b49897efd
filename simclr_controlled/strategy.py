"""Picks the tf.distribute strategy: one device, mirrored GPUs or
logical CPUs, multi-worker (from TF_CONFIG) or TPU."""
from __future__ import annotations

import json
import os

import tensorflow as tf

from simclr_controlled.errors import UsageError


def _find_tpu(address: str):
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address or None)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return resolver
    except (ValueError, tf.errors.NotFoundError, tf.errors.InvalidArgumentError, RuntimeError):
        return None


def make_strategy(name: str, tpu: str = "") -> tf.distribute.Strategy:
    """`auto`: TPU if one is found, else every GPU mirrored, else the CPU.

    `mirrored` with no GPU mirrors over the logical CPU devices (how tests run
    two replicas on one CPU). `multi_worker` reads TF_CONFIG.
    """
    if name == "tpu" or (name == "auto" and (tpu or os.environ.get("TPU_NAME") or
                                             os.environ.get("COLAB_TPU_ADDR"))):
        resolver = _find_tpu(tpu)
        if resolver is not None:
            return tf.distribute.TPUStrategy(resolver)
        if name == "tpu":
            raise UsageError(f"--tpu: no TPU found at {tpu or '(default address)'}; "
                             "give --tpu=ADDRESS or use --strategy=auto")
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        if len(gpus) > 1:
            return tf.distribute.MirroredStrategy()
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise UsageError("--strategy=multi_worker: the TF_CONFIG environment variable is not set")
        try:
            json.loads(os.environ["TF_CONFIG"])
        except json.JSONDecodeError:
            raise UsageError("TF_CONFIG: not valid JSON") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise UsageError(f"--strategy: unknown strategy {name!r}; allowed: auto, one_device, "
                     "mirrored, multi_worker, tpu")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the worker that writes files (worker 0, or the only one)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type in (None, "chief") or (task_type == "worker" and task_id == 0)


def is_tpu(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.TPUStrategy)


def uses_accelerator(strategy: tf.distribute.Strategy) -> bool:
    return is_tpu(strategy) or bool(tf.config.list_logical_devices("GPU"))
