"""Training: learning on a small hierarchy, bitwise resume, two replicas,
two worker processes."""
from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf

from simclr_controlled import datasets, models, train
from simclr_controlled.config import Config
from simclr_controlled.errors import UsageError
from simclr_controlled.losses import contrastive_accuracy_chance

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

SMALL = dict(dataset="hierarchy", branching=(4, 4, 4), mask_size=16, crop_size=12,
             val_fraction=0.1, model="lenet", augment="crop", temperature=0.5,
             train_batch_size=16, train_epochs=1, learning_rate=1e-3, deterministic=True,
             checkpoint_epochs=1, steps_per_loop=5)


def small_config(tmp_path, **kw) -> Config:
    return Config(model_dir=str(tmp_path), **{**SMALL, **kw})


def small_dataset(config: Config):
    return datasets.get_dataset("hierarchy", seed=config.seed, **config.dataset_params())


def weights(model_dir: str) -> list[np.ndarray]:
    reader = tf.train.load_checkpoint(os.path.join(model_dir, "ckpt"))
    names = sorted(n for n in reader.get_variable_to_shape_map() if n.startswith("model_weights/"))
    assert len(names) >= 10, names  # LeNet + head: 10 kernels and biases
    return [reader.get_tensor(n) for n in names]


def test_training_learns_on_small_hierarchy(tmp_path):
    config = small_config(tmp_path, train_steps=300, steps_per_loop=50)
    data = small_dataset(config)
    train.train(config, data, log=lambda s: None)
    records = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert records[-1]["step"] == 300
    assert records[-1]["loss"] < records[0]["loss"] - 0.5
    chance = contrastive_accuracy_chance(config.train_batch_size)
    assert records[-1]["contrastive_accuracy"] > 10 * chance


def test_resume_is_bitwise_identical(tmp_path):
    full = small_config(tmp_path / "full", train_steps=12)
    data = small_dataset(full)
    train.train(full, data, log=lambda s: None)
    part = small_config(tmp_path / "part", train_steps=7)
    train.train(part, data, log=lambda s: None)
    resumed = dataclasses.replace(part, train_steps=12)
    out = train.train(resumed, data, log=lambda s: None)
    assert out["resumed_from"] == 7
    for a, b in zip(weights(str(tmp_path / "full")), weights(str(tmp_path / "part"))):
        np.testing.assert_array_equal(a, b)
    # the metrics of the resumed run cover the same steps as the uninterrupted run
    steps = lambda d: [json.loads(l)["step"] for l in open(d / "metrics.jsonl")]  # noqa: E731
    assert steps(tmp_path / "part")[-1] == steps(tmp_path / "full")[-1] == 12


def test_restore_model_defaults_to_latest_checkpoint(tmp_path):
    config = small_config(tmp_path / "m", train_steps=6)
    data = small_dataset(config)
    with pytest.raises(UsageError, match="--model_dir: .* has no checkpoint"):
        train.restore_model(config, data, config.model_dir)
    train.train(config, data, log=lambda s: None)
    model, step = train.restore_model(config, data, config.model_dir)
    assert step == 6
    fresh = models.build_model(config.model, train.input_shape(config, data),
                               width_multiplier=config.width_multiplier,
                               head_widths=config.head_widths, seed=config.seed,
                               **train.model_kwargs(config))
    restored = train.model_weights(model)
    assert len(restored) == len(train.model_weights(fresh))
    # The trained weights, not the initialization.
    assert any(not np.array_equal(a.numpy(), b.numpy())
               for a, b in zip(restored, train.model_weights(fresh)))


def test_eval_hook_records_over_training(tmp_path):
    config = small_config(tmp_path, train_epochs=2, eval_every_epochs=1)
    data = small_dataset(config)
    calls = []

    def hook(model, epoch, step):
        calls.append((epoch, step))
        return {"value": float(epoch)}

    train.train(config, data, eval_hook=hook, log=lambda s: None)
    per_epoch = len(data.train_idx) // config.train_batch_size
    assert calls == [(0, 0), (1, per_epoch), (2, 2 * per_epoch)]
    lines = [json.loads(l) for l in open(tmp_path / "stats.jsonl")]
    assert [l["value"] for l in lines] == [0.0, 1.0, 2.0]


def test_eta_counts_evaluations_not_only_training_steps(tmp_path, monkeypatch):
    # A fake clock: each reading advances 1 s, each evaluation 100 s. The ETA
    # must include the evaluations still to come (no real timing involved).
    clock = {"t": 0.0}

    def perf_counter():
        clock["t"] += 1.0
        return clock["t"]

    monkeypatch.setattr(train, "time", types.SimpleNamespace(perf_counter=perf_counter))
    config = small_config(tmp_path, train_epochs=4, eval_every_epochs=1)
    data = small_dataset(config)

    def hook(model, epoch, step):
        clock["t"] += 100.0
        return {}

    lines = []
    train.train(config, data, eval_hook=hook, log=lines.append)
    etas = [line.split("ETA ")[1] for line in lines if line.startswith("epoch ")]
    per_epoch = len(data.train_idx) // config.train_batch_size
    assert len(etas) >= 4 and per_epoch <= config.steps_per_loop  # one loop call per epoch
    # After epoch 2 (the epoch-1 evaluation behind, two epochs and their
    # evaluations ahead) the ETA is about 2 x 50 s, not the few seconds the
    # training steps alone take.
    minutes, seconds = etas[1].rstrip("s").split("m")
    assert 60 * int(minutes) + int(seconds) >= 90, etas


def test_two_replicas_match_one_replica(tmp_path, mirrored_strategy):
    """MirroredStrategy over two logical CPUs trains the same model as one device."""
    assert len(tf.config.list_logical_devices("CPU")) >= 2
    one = small_config(tmp_path / "one", train_steps=3)
    two = small_config(tmp_path / "two", train_steps=3)
    data = small_dataset(one)
    train.train(one, data, strategy=tf.distribute.OneDeviceStrategy("/cpu:0"), log=lambda s: None)
    train.train(two, data, strategy=mirrored_strategy,
                log=lambda s: None)
    for a, b in zip(weights(str(tmp_path / "one")), weights(str(tmp_path / "two"))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_two_worker_processes_end_with_same_weights(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for i in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
                   TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
        procs.append(subprocess.Popen(
            [sys.executable, os.path.join(HERE, "multi_worker_main.py"), str(tmp_path / "model"),
             str(tmp_path / f"weights_{i}.npz")], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    try:
        outs = [p.communicate(timeout=240)[0].decode() for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
    w0 = np.load(tmp_path / "weights_0.npz")
    w1 = np.load(tmp_path / "weights_1.npz")
    assert sorted(w0.files) == sorted(w1.files) and w0.files
    for k in w0.files:
        np.testing.assert_array_equal(w0[k], w1[k])
    # the chief wrote the checkpoint and metrics; the other worker wrote nothing there
    assert (tmp_path / "model" / "metrics.jsonl").exists()
    assert weights(str(tmp_path / "model"))
