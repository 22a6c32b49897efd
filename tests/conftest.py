"""Test session setup: two logical CPU devices, so MirroredStrategy tests run
with two real replicas on this one-CPU machine. Must run before TF starts
(listing devices first would start the runtime and freeze the configuration).
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# oneDNN off in this process only (TF reads the variable once, at import):
# with two replicas running at once on one CPU, oneDNN's kernels are not
# bitwise reproducible even under op determinism (measured: the step-4 loss
# of a fresh two-replica bfloat16 run differed in 8 of 40 runs with oneDNN,
# in 0 of 40 without), and the in-process tests compare runs bit for bit.
# Subprocesses (`python run.py`, notebooks) get the environment back, so they
# run with TF's default kernels, as a user's run does.
_ONEDNN = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

if _ONEDNN is None:
    del os.environ["TF_ENABLE_ONEDNN_OPTS"]
else:
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = _ONEDNN

try:
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)
except RuntimeError as e:  # the runtime started earlier: say so instead of hiding it
    raise RuntimeError(f"tests/conftest.py could not create two logical CPUs: {e}") from None


@pytest.fixture(scope="session")
def mirrored_strategy():
    """One MirroredStrategy over the two logical CPUs for the whole session.

    Several MirroredStrategy objects in one process number their collective
    ops from the same key and can collide, so tests share this one.
    """
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
