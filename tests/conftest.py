"""Test session setup: two logical CPU devices, so MirroredStrategy tests run
with two real replicas on this one-CPU machine. Must run before TF starts."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
if len(tf.config.list_logical_devices("CPU")) < 2:
    try:
        tf.config.set_logical_device_configuration(
            _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
    except RuntimeError:  # TF already initialised by a plugin; tests needing 2 replicas will say so.
        pass
