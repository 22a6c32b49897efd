"""tf.data pipelines (): shapes, dtypes, two different views
per item, the step-pure stream under one and two replicas, and the
evaluation center crop. Also `--mode=show` writes its sample grid."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from simclr_controlled import augment, datasets, input_pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny():
    return datasets.get_dataset("hierarchy", seed=0, branching=(4, 4, 4), mask_size=16, crop_size=12)


def train_fn(data, start=0, total=6, batch=16):
    return input_pipeline.train_input_fn(
        data.images, data.train_idx, global_batch_size=batch, seed=0,
        augment_fn=augment.make_augment("crop", crop_size=12), start_step=start, total_steps=total)


def test_train_pipeline_shapes_dtypes_and_two_views():
    data = tiny()
    batches = list(train_fn(data)(None))
    assert len(batches) == 6
    for b in batches:
        assert b["view_a"].shape == (16, 12, 12, 3) and b["view_a"].dtype == tf.float32
        assert b["view_b"].shape == (16, 12, 12, 3) and b["index"].dtype == tf.int64
        assert set(b["index"].numpy()) <= set(data.train_idx)
        assert len(set(b["index"].numpy())) == 16  # no item twice in a batch
        differ = np.any(b["view_a"].numpy() != b["view_b"].numpy(), axis=(1, 2, 3))
        assert differ.mean() > 0.8  # 5x5 offsets: a few views may coincide
    # one epoch (3 steps of 16 from 57 training items) sees distinct items, then reshuffles
    per_epoch = len(data.train_idx) // 16
    first = np.concatenate([b["index"].numpy() for b in batches[:per_epoch]])
    second = np.concatenate([b["index"].numpy() for b in batches[per_epoch:2 * per_epoch]])
    assert len(set(first)) == len(first)
    assert not np.array_equal(first, second)


def test_stream_is_a_function_of_the_step():
    data = tiny()
    full = list(train_fn(data)(None))
    resumed = list(train_fn(data, start=4)(None))
    for a, b in zip(full[4:], resumed):
        np.testing.assert_array_equal(a["view_a"].numpy(), b["view_a"].numpy())
        np.testing.assert_array_equal(a["index"].numpy(), b["index"].numpy())


def test_two_replicas_split_the_global_batch_in_order(mirrored_strategy):
    data = tiny()
    one = next(iter(train_fn(data)(None)))
    dist = mirrored_strategy.distribute_datasets_from_function(train_fn(data))
    b = next(iter(dist))
    parts = mirrored_strategy.experimental_local_results(b["index"])
    assert [p.shape[0] for p in parts] == [8, 8]
    np.testing.assert_array_equal(np.concatenate([p.numpy() for p in parts]), one["index"].numpy())
    views = np.concatenate([p.numpy() for p in mirrored_strategy.experimental_local_results(b["view_a"])])
    np.testing.assert_array_equal(views, one["view_a"].numpy())


def test_eval_pipeline_center_crops_in_order():
    data = tiny()
    idx = data.val_idx
    batches = list(input_pipeline.eval_input_fn(data.images, idx, batch_size=4, crop_size=12)(None))
    got = np.concatenate([b["image"].numpy() for b in batches])
    assert got.shape == (len(idx), 12, 12, 3)
    np.testing.assert_array_equal(got, data.images[idx, 2:14, 2:14, :])
    np.testing.assert_array_equal(np.concatenate([b["index"].numpy() for b in batches]), idx)


def test_show_mode_writes_a_png(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    for dataset in ("hierarchy", "dsprites_mod"):
        out = subprocess.run([sys.executable, os.path.join(ROOT, "run.py"), "--mode=show",
                              f"--dataset={dataset}", f"--model_dir={tmp_path}"],
                             capture_output=True, text=True, env=env, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        path = tmp_path / f"samples_{dataset}.png"
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        assert os.path.getsize(path) > 5000
