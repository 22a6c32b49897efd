"""The accelerator configuration (TPU/GPU flags) on two logical CPUs:
--jit_compile=on --mixed_precision=bfloat16 --steps_per_loop=4 under
MirroredStrategy, which no other test runs (there is no accelerator here).

Tiny hierarchy (branching 4,4,7: 101 training items, 6 steps per epoch at
batch 16), so an 8-step run makes loop calls of 4, 2 (to the epoch end) and
2 steps, and saves checkpoints at steps 6 (epoch end) and 8 (end).

What runs where:
  * in this process, MirroredStrategy over the two logical CPUs of
    conftest.py (2 replicas). There `make_train_loop` does NOT XLA-compile
    the per-replica step even with jit_compile=on: the loss all-gathers the
    negatives across replicas, a merge_call that cannot sit inside a nested
    tf.function(jit_compile=True); XLA is used for one replica or TPU only.
    So these tests cover bfloat16 + steps_per_loop + 2 replicas + resume.
  * the real command line (`python run.py`, a subprocess) has ONE CPU
    device (run.py has no way to split it), so --strategy=mirrored gives one
    replica, and there the model step IS compiled by XLA (checked from XLA's
    dump of the `forward_backward` module, in bfloat16).
  * XLA + --deterministic (one replica, in this process).
"""
from __future__ import annotations

import glob
import json
import math
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from simclr_controlled import datasets, train
from simclr_controlled.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RUN = os.path.join(ROOT, "run.py")

BRANCHING = (4, 4, 7)
ACCEL = dict(dataset="hierarchy", branching=BRANCHING, mask_size=16, crop_size=12, val_fraction=0.1,
             model="lenet", augment="crop", temperature=0.5, train_batch_size=16, train_epochs=1,
             learning_rate=1e-3, checkpoint_epochs=1, deterministic=True,
             strategy="mirrored", jit_compile="on", mixed_precision="bfloat16", steps_per_loop=4)
STEPS = 8
PER_EPOCH = 6
LOOP_SIZES = [4, 2, 2]          # steps 0-4, 4-6 (epoch end), 6-8 (end)
LOGGED_STEPS = [4, 6, 8]
CHECKPOINT_STEPS = [6, 8]


def accel_config(model_dir, **kw) -> Config:
    return Config(model_dir=str(model_dir), **{**ACCEL, **kw})


@pytest.fixture(scope="module")
def data():
    config = accel_config("unused")
    dataset = datasets.get_dataset("hierarchy", seed=config.seed, **config.dataset_params())
    assert len(dataset.train_idx) // config.train_batch_size == PER_EPOCH
    return dataset


def run_training(config, dataset, strategy):
    """train.train, recording what each loop call returns (the loop's mean loss,
    accuracy, projection std and GRADIENT NORM; metrics.jsonl has no gradient
    norm) and the number of replicas."""
    calls = []
    real = train.make_train_loop

    def spy(*args, **kwargs):
        loop = real(*args, **kwargs)
        state = args[1] if len(args) > 1 else kwargs["state"]
        call = {"replicas": state.strategy.num_replicas_in_sync, "loops": []}
        calls.append(call)

        def wrapped(iterator, num_steps):
            out = loop(iterator, num_steps)
            call["loops"].append((int(num_steps), [float(v) for v in out]))
            return out
        return wrapped

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train, "make_train_loop", spy)
        out = train.train(config, dataset, strategy=strategy, log=lambda s: None)
    return out, calls


def metrics(model_dir) -> list[dict]:
    with open(os.path.join(model_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def checkpoint_steps(model_dir) -> list[int]:
    names = glob.glob(os.path.join(model_dir, "ckpt", "ckpt-*.index"))
    return sorted(int(re.search(r"ckpt-(\d+)\.index$", n).group(1)) for n in names)


def checkpoint_tensors(model_dir, step) -> dict[str, np.ndarray]:
    reader = tf.train.load_checkpoint(os.path.join(model_dir, "ckpt", f"ckpt-{step}"))
    return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
            if n != "_CHECKPOINTABLE_OBJECT_GRAPH"}


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, mirrored_strategy, data):
    """The uninterrupted 8-step run, shared by the tests below."""
    model_dir = tmp_path_factory.mktemp("accel") / "full"
    config = accel_config(model_dir, train_steps=STEPS)
    out, calls = run_training(config, data, mirrored_strategy)
    return config, out, calls


def test_two_replicas_bfloat16_steps_per_loop(full_run, mirrored_strategy):
    config, out, calls = full_run
    # Two real replicas, one per logical CPU.
    assert mirrored_strategy.num_replicas_in_sync == 2
    assert len(set(mirrored_strategy.extended.worker_devices)) == 2
    assert [c["replicas"] for c in calls] == [2]
    # steps_per_loop=4: the loop ran 4 steps in one call, then stopped at the epoch end.
    assert [n for n, _ in calls[0]["loops"]] == LOOP_SIZES
    for n, (loss, acc, proj_std, grad_norm) in calls[0]["loops"]:
        assert all(math.isfinite(v) for v in (loss, acc, proj_std, grad_norm)), calls
        assert grad_norm > 0
    records = metrics(config.model_dir)
    assert [r["step"] for r in records] == LOGGED_STEPS
    for r, (_, (loss, acc, proj_std, _)) in zip(records, calls[0]["loops"]):
        assert all(math.isfinite(r[k]) for k in ("loss", "contrastive_accuracy", "projection_std")), r
        assert (r["loss"], r["contrastive_accuracy"], r["projection_std"]) == (loss, acc, proj_std)
    # NT-Xent of two views at random init is about 2 log(2N - 1); bfloat16 did not wreck it.
    assert abs(records[0]["loss"] - 2 * math.log(2 * config.train_batch_size - 1)) < 1.0
    assert out["step"] == STEPS and out["resumed_from"] == 0

    # Mixed precision: bfloat16 compute where the policy says so, float32 variables.
    assert train.dtype_policy(config, mirrored_strategy) == "mixed_bfloat16"
    model = out["model"]
    mixed = [l for l in model.layers if l.dtype_policy.name == "mixed_bfloat16"]
    assert {l.name for l in mixed} >= {"conv1", "conv2", "head_1", "head_2", "head_out"}
    for layer in model.layers:
        expected = "bfloat16" if layer.dtype_policy.name == "mixed_bfloat16" else "float32"
        assert layer.compute_dtype == expected, layer.name
    assert model.weights and all(v.dtype == "float32" for v in model.weights)
    # ... mirrored on both devices
    for v in model.weights:
        assert len({c.device for c in v.value.values}) == 2, v.path
    images = tf.zeros((4, 12, 12, 3), tf.float32)
    head_out = keras.Model(model.input, model.get_layer("head_out").output)(images)
    assert head_out.dtype == tf.bfloat16
    assert all(t.dtype == tf.float32 for t in model(images).values())  # taps cast back

    # Checkpoints at the epoch end and at the end, float32 weights, the right counters.
    assert checkpoint_steps(config.model_dir) == CHECKPOINT_STEPS
    for step in CHECKPOINT_STEPS:
        ckpt = checkpoint_tensors(config.model_dir, step)
        assert ckpt["step/.ATTRIBUTES/VARIABLE_VALUE"] == step
        assert ckpt["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"] == step
        weights = [v for k, v in ckpt.items() if k.startswith("model_weights/")]
        assert len(weights) == 10 and all(w.dtype == np.float32 and np.isfinite(w).all() for w in weights)


def test_resume_matches_uninterrupted_run_bitwise(full_run, mirrored_strategy, data, tmp_path):
    """4 steps, stop, 4 more in a second call == 8 steps at once, bit for bit.

    Bitwise because every op here is deterministic on the CPU with
    deterministic=True (op determinism), the input of step s depends only on
    (seed, s), the 2-replica all-reduce adds two values (commutative), and
    the resumed run restores weights, Adam moments and iteration counter.
    """
    full_config, _, _ = full_run
    part_dir = tmp_path / "part"
    out, calls = run_training(accel_config(part_dir, train_steps=4), data, mirrored_strategy)
    assert out["step"] == 4 and [n for n, _ in calls[0]["loops"]] == [4]
    assert checkpoint_steps(part_dir) == [4]
    stopped = checkpoint_tensors(part_dir, 4)

    out, calls = run_training(accel_config(part_dir, train_steps=STEPS), data, mirrored_strategy)
    assert out["resumed_from"] == 4 and out["step"] == STEPS
    # Only the 4 missing steps ran in the second call (it did not start over).
    assert [n for n, _ in calls[0]["loops"]] == [2, 2]
    assert checkpoint_steps(part_dir) == [4] + CHECKPOINT_STEPS

    for step in CHECKPOINT_STEPS:
        full = checkpoint_tensors(full_config.model_dir, step)
        resumed = checkpoint_tensors(part_dir, step)
        assert sorted(full) == sorted(resumed)
        assert sum(k.startswith("model_weights/") for k in full) == 10
        assert sum(k.startswith("optimizer/_variables/") for k in full) == 20  # Adam m and v
        for name in full:
            if name.startswith("save_counter/"):  # counts saves (the resumed run made one more)
                continue
            np.testing.assert_array_equal(full[name], resumed[name], err_msg=f"{name} at step {step}")
        assert resumed["step/.ATTRIBUTES/VARIABLE_VALUE"] == step
    # Not vacuous: the compared state moved after the stop.
    final = checkpoint_tensors(part_dir, STEPS)
    moved = [k for k in final if k.startswith(("model_weights/", "optimizer/_variables/"))
             and not np.array_equal(final[k], stopped[k])]
    assert len(moved) == 30, moved
    # The metrics too: the resumed run's records equal the uninterrupted run's.
    keys = ("step", "loss", "contrastive_accuracy", "projection_std")
    assert ([{k: r[k] for k in keys} for r in metrics(part_dir)]
            == [{k: r[k] for k in keys} for r in metrics(full_config.model_dir)])


def test_xla_with_deterministic_trains(tmp_path, data):
    """One replica, jit_compile=on, deterministic: the model step is the one
    XLA compiles (as on one GPU, or through run.py here). It must train."""
    config = accel_config(tmp_path / "m", train_steps=4, strategy="one_device")
    try:
        out, calls = run_training(config, data, tf.distribute.OneDeviceStrategy("/cpu:0"))
    except tf.errors.UnimplementedError as e:
        first = next(line for line in str(e).splitlines() if "deterministic" in line)
        pytest.fail("BUG: --deterministic with XLA on one replica (GPU, TPU, or "
                    f"--jit_compile=on) crashes: {first.strip()} (tf2xla has no deterministic "
                    "MaxPoolGrad; LeNet max-pools). See the report for the proposed patch.")
    assert out["step"] == 4 and calls[0]["replicas"] == 1
    assert all(math.isfinite(v) for _, vals in calls[0]["loops"] for v in vals)


def test_command_line_accelerator_flags(tmp_path):
    """The real `python run.py` with the accelerator flags. One CPU device in
    the subprocess, so one replica, and XLA compiles the model step."""
    model_dir = tmp_path / "m"
    dump = tmp_path / "xla_dump"
    xla_flags = (f"--xla_dump_to={dump} --xla_dump_hlo_module_re=forward_backward "
                 "--xla_dump_hlo_as_text")
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2",
               XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} {xla_flags}".strip())
    args = ["--mode=train", f"--model_dir={model_dir}", "--strategy=mirrored", "--jit_compile=on",
            "--mixed_precision=bfloat16", "--steps_per_loop=4", f"--train_steps={STEPS}",
            f"--branching={','.join(map(str, BRANCHING))}", "--mask_size=16", "--crop_size=12",
            "--train_batch_size=16", "--checkpoint_epochs=1"]
    proc = subprocess.run([sys.executable, RUN, *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    records = metrics(model_dir)
    assert [r["step"] for r in records] == LOGGED_STEPS
    assert all(math.isfinite(r[k]) for r in records for k in ("loss", "contrastive_accuracy",
                                                                 "projection_std"))
    assert checkpoint_steps(model_dir) == CHECKPOINT_STEPS
    ckpt = checkpoint_tensors(str(model_dir), STEPS)
    weights = [v for k, v in ckpt.items() if k.startswith("model_weights/")]
    assert len(weights) == 10 and all(w.dtype == np.float32 and np.isfinite(w).all() for w in weights)
    saved = json.load(open(model_dir / "config.json"))
    assert (saved["strategy"], saved["jit_compile"], saved["mixed_precision"], saved["steps_per_loop"]) \
        == ("mirrored", "on", "bfloat16", 4)
    # XLA compiled the per-replica forward/backward, and computed it in bfloat16.
    hlo = glob.glob(str(dump / "*forward_backward*before_optimizations.txt"))
    assert hlo, f"no XLA module of forward_backward in {sorted(os.listdir(dump))[:5] if dump.exists() else dump}"
    text = open(hlo[0]).read()
    assert re.search(r"bf16\[\d+,\d+,\d+,\d+\]\{[^}]*\} convolution\(", text), "no bfloat16 convolution"
