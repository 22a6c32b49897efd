"""The hierarchy's over-training statistics (DESIGN §4.1, §4.2; Fig. 2, B.1, B.2, B.3):
channel preference with `train` and `random` probes, and hierarchically
constrained similarity of two augmented views of 200 training and 200
validation items, at every head tap.

`make_eval_hook` fixes every input once (references, probes and views are
drawn from the run's seed), so the records of successive epochs and of
models of other temperatures see the same images and are paired.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from simclr_controlled import augment as augment_lib
from simclr_controlled.config import Config
from simclr_controlled.datasets import Dataset, hierarchy
from simclr_controlled.names import CROP, TAPS
from simclr_controlled.probes import activations, channel_preference, similarity

NUM_REFERENCES = 200
NUM_ITEMS = 200
# Stream ids keep the analyses' randomness apart from training's.
_VIEW_EPOCH = -1


def analysis_inputs(dataset: Dataset, crop_size: int, seed: int) -> dict:
    """Every image the statistics need, center-cropped or crop-augmented."""
    crop = lambda x: augment_lib.center_crop(tf.constant(x), crop_size).numpy()  # noqa: E731
    cp = {}
    for source in hierarchy.PROBE_SOURCES:
        n = min(NUM_REFERENCES, len(dataset.train_idx))
        refs, probes = hierarchy.channel_preference_probes(dataset, n, source, seed)
        cp[source] = {"reference": crop(refs), **{k: crop(v) for k, v in probes.items()}}
    rng = np.random.default_rng([seed, 7])
    aug = augment_lib.make_augment(CROP, crop_size=crop_size)
    views = {}
    for split, pool in (("train", dataset.train_idx), ("validation", dataset.val_idx)):
        idx = np.sort(rng.choice(pool, size=min(NUM_ITEMS, len(pool)), replace=False))
        imgs = tf.constant(dataset.images[idx])
        idx_t = tf.constant(idx, tf.int64)
        labels = np.stack([dataset.labels[f"level_{l}"][idx] for l in range(dataset.images.shape[-1])], 1)
        views[split] = {"view_a": aug(imgs, augment_lib.view_seeds(seed, _VIEW_EPOCH, idx_t, 0)).numpy(),
                        "view_b": aug(imgs, augment_lib.view_seeds(seed, _VIEW_EPOCH, idx_t, 1)).numpy(),
                        "labels": labels}
    return {"channel_preference": cp, "similarity": views}


def statistics(model, inputs: dict, strategy=None) -> dict:
    """The record of one evaluation: per-reference channel preference and the
    similarity statistics, per source/split and tap (JSON-serialisable)."""
    blocks, names = [], []
    for source, imgs in inputs["channel_preference"].items():
        for k, v in imgs.items():
            blocks.append(v)
            names.append(("cp", source, k))
    for split, d in inputs["similarity"].items():
        for k in ("view_a", "view_b"):
            blocks.append(d[k])
            names.append(("sim", split, k))
    acts = activations.compute_activations(model, np.concatenate(blocks), strategy=strategy)
    offsets = np.cumsum([0] + [len(b) for b in blocks])
    part = {name: {t: acts[t][offsets[i]:offsets[i + 1]] for t in TAPS} for i, name in enumerate(names)}

    cp_out = {}
    for source, imgs in inputs["channel_preference"].items():
        probe_names = [k for k in imgs if k != "reference"]
        cp = channel_preference.channel_preference(
            part[("cp", source, "reference")], {k: part[("cp", source, k)] for k in probe_names})
        cp_out[source] = {layer: {k: np.asarray(v).tolist() for k, v in d.items()} for layer, d in cp.items()}
    sim_out = {}
    for split, d in inputs["similarity"].items():
        sim_out[split] = {t: similarity.hierarchical_similarity(
            part[("sim", split, "view_a")][t], part[("sim", split, "view_b")][t], d["labels"]) for t in TAPS}
    return {"channel_preference": cp_out, "similarity": sim_out}


def make_eval_hook(config: Config, dataset: Dataset):
    """A train.py eval hook: (model, epoch, step) -> statistics record."""
    inputs = analysis_inputs(dataset, config.crop_size, config.seed)
    return lambda model, epoch, step: statistics(model, inputs)
