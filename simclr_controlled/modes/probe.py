"""`--mode=probe`: every analysis of DESIGN §4 for one trained model.

Reads `model_dir/config.json` and a checkpoint (the latest, or every saved
one with `--checkpoints=all`), and writes `model_dir/probe/results.json`
(every number, the held-out factor values, the seed, package versions and
git commit) plus the model's own figures (PCA, CKA).

hierarchy: final channel preference (train and random masks) and
hierarchically constrained similarity (the same statistics the training hook
records over training), CKA between head layers, PCA coloured by level.
dsprites_mod: linear decodability of color, scale and position at every
head layer (DESIGN §4; `--decoder_epochs`, paper 500), CKA, PCA coloured by
color, scale, x and y. With `--mlp_probe` (sprite datasets), also
`mlp_decodability`: the same factors and splits read by the reduced MLP
probe (`mlp_decoding.probe_settings`, DESIGN §4.5).
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from simclr_controlled import files, names, train, workdir
from simclr_controlled.config import Config
from simclr_controlled.datasets import Dataset
from simclr_controlled.models import TAPS
from simclr_controlled.modes import common
from simclr_controlled.probes import activations, cka, decoding, factor_report, mlp_decoding, pca

NUM_PCA_ITEMS = 1000
# The views of the label-free metrics: a stream of their own, apart from
# training's epochs (>= 0) and the hierarchy statistics' (-1).
_VIEW_EPOCH = -2
NUM_CKA_ITEMS = 1000


def _pca_and_cka(acts: dict, idx: np.ndarray, cka_idx: np.ndarray, seed: int) -> tuple[dict, dict]:
    pcs = {t: pca.pca_2d(acts[t][idx], 2, seed) for t in TAPS}
    names, matrix = cka.cka_matrix({t: acts[t][cka_idx] for t in TAPS})
    _, matrix_debiased = cka.cka_matrix({t: acts[t][cka_idx] for t in TAPS}, debiased=True)
    return ({t: {"components": np.asarray(p["components"]).tolist(),
                 "explained_variance_ratio": np.asarray(p["explained_variance_ratio"]).tolist()}
             for t, p in pcs.items()},
            {"layers": names, "linear": matrix.tolist(), "linear_debiased": matrix_debiased.tolist()})


def decoded_factors(dataset: Dataset) -> list[str]:
    """The factors with decoding splits, the paper's (color, scale, position) first."""
    splits = dataset.decoding_splits
    return [f for f in names.DSPRITES_FACTORS if f in splits] + \
        [f for f in splits if f not in names.DSPRITES_FACTORS]


def _decode_factors(dataset: Dataset, acts: dict, decode, what: str, log) -> dict:
    """layer -> factor -> `decode(train_x, train_y, val_x, val_y, classes)`'s
    result (per-epoch curves left out) on each factor's decoding split."""
    out: dict = {}
    for t in TAPS:
        out[t] = {}
        for factor in decoded_factors(dataset):
            tr, va = dataset.decoding_splits[factor]
            y = dataset.labels[factor]
            res = decode(acts[t][tr], y[tr], acts[t][va], y[va], int(y.max()) + 1)
            res.pop("val_accuracy", None)  # per-epoch curves stay out of the results file
            out[t][factor] = res
            log(f"  {what} {t:10s} {factor:8s} {res['best_val_accuracy']:.3f}")
    return out


def mlp_decodability(config: Config, dataset: Dataset, acts: dict, log=print) -> dict:
    """`decodability`'s factors and splits read by the reduced MLP probe
    (`mlp_decoding.probe_settings`, DESIGN §4.5), per layer and factor."""
    kw = mlp_decoding.probe_settings(config.decoder_epochs)
    return _decode_factors(dataset, acts, lambda *a: mlp_decoding.decode_mlp(*a, seed=config.seed, **kw),
                           "mlp decodability", log)


def decodability(config: Config, dataset: Dataset, acts: dict, log=print) -> dict:
    """Best validation accuracy of linear decoders, per layer and factor (and
    of the random bits, when the model has them)."""
    out = _decode_factors(dataset, acts, lambda *a: decoding.decode(
        *a, epochs=config.decoder_epochs, seed=config.seed), "decodability", log)
    if dataset.random_bits.shape[1]:
        for t in TAPS:
            out[t][names.BITS] = bits_decodability(config, dataset, acts[t])
            log(f"  decodability {t:10s} {names.BITS:8s} {out[t][names.BITS]['best_val_accuracy']:.3f}")
    return out


def bits_decodability(config: Config, dataset: Dataset, acts: np.ndarray) -> dict:
    """The random bits' linear decodability at one layer (DESIGN §4.3): each
    bit a two-class factor, all bits decoded in one grid on the seeded item
    split of the factor metrics (bits are drawn per item, so unseen items are
    the held-out test); `best_val_accuracy` is the mean over bits (chance 0.5)."""
    tr, va = factor_report.item_split(len(dataset.random_bits), config.seed)
    bits = dataset.random_bits.astype(np.int64)
    per_bit = decoding.decode_columns(acts[tr], bits[tr], acts[va], bits[va], 2,
                                      epochs=config.decoder_epochs, seed=config.seed)
    best = [r["best_val_accuracy"] for r in per_bit]
    return {"best_val_accuracy": float(np.mean(best)), "per_bit": best, "num_bits": len(best),
            "num_live_features": per_bit[0]["num_live_features"]}


def two_views(config: Config, dataset: Dataset, model) -> tuple[dict, dict]:
    """Activations of two views (the model's training augmentation, on the
    probes' own seed stream) of `factor_report.NUM_VIEW_ITEMS` seeded training items."""
    import tensorflow as tf
    from simclr_controlled import augment as augment_lib
    from simclr_controlled.datasets import random_bits
    n = min(factor_report.NUM_VIEW_ITEMS, len(dataset.train_idx))
    idx = np.sort(np.random.default_rng([config.seed, 13]).choice(dataset.train_idx, n, replace=False))
    aug, idx_t = train.augment_fn(config), tf.constant(idx, tf.int64)
    images = tf.constant(dataset.images[idx])
    return tuple(activations.compute_activations(model, random_bits.append(
        aug(images, augment_lib.view_seeds(config.seed, _VIEW_EPOCH, idx_t, v)).numpy(),
        dataset.random_bits[idx])) for v in (0, 1))


def probe_checkpoint(config: Config, dataset: Dataset, path: str, log=print,
                     hierarchy_inputs: dict | None = None) -> dict:
    """Every analysis of one checkpoint. `hierarchy_inputs`: the images of the
    hierarchy statistics (`hierarchy_stats.analysis_inputs`), made once per run."""
    model, step = train.restore_model(config, dataset, config.model_dir, path)
    record: dict = {"checkpoint": os.path.basename(path), "step": step}
    images = common.eval_images(config, dataset)
    rng_idx = pca.sample_indices(len(dataset.train_idx), NUM_PCA_ITEMS, config.seed)
    idx = np.asarray(dataset.train_idx)[rng_idx]
    cka_idx = idx[:NUM_CKA_ITEMS]
    if config.dataset == "hierarchy":
        from simclr_controlled.probes import hierarchy_stats
        inputs = hierarchy_inputs or hierarchy_stats.analysis_inputs(dataset, config.crop_size, config.seed)
        record.update(hierarchy_stats.statistics(model, inputs))
        acts = activations.compute_activations(model, images[idx])
        record["pca"], record["cka"] = _pca_and_cka(acts, np.arange(len(idx)), np.arange(len(cka_idx)),
                                                    config.seed)
        record["pca_labels"] = {k: dataset.labels[k][idx].tolist() for k in dataset.labels}
    else:
        acts = activations.compute_activations(model, images)
        record["decodability"] = decodability(config, dataset, acts, log)
        if config.mlp_probe:
            record["mlp_decodability"] = mlp_decodability(config, dataset, acts, log)
        record["factor_metrics"] = factor_report.factor_metrics(acts, dataset.labels, config.seed)
        record["label_free"] = factor_report.label_free_metrics(
            *two_views(config, dataset, model), acts)
        record["pca"], record["cka"] = _pca_and_cka(acts, idx, cka_idx, config.seed)
        pca_factors = [k for k in dataset.labels if k != "position"]
        record["pca_labels"] = {k: dataset.labels[k][idx].tolist() for k in pca_factors}
    return record


def run(config: Config, log=print) -> dict:
    """Probes `config.model_dir` (its folder checked by `modes.check`); returns
    and writes the results."""
    saved = workdir.model_config(config.model_dir)
    paths = train.checkpoint_paths(config.model_dir, config.checkpoints)
    saved = dataclasses.replace(saved, model_dir=config.model_dir, decoder_epochs=config.decoder_epochs,
                                checkpoints=config.checkpoints, mlp_probe=config.mlp_probe)
    dataset = common.load_dataset(saved)
    inputs = None
    if saved.dataset == "hierarchy":
        from simclr_controlled.probes import hierarchy_stats
        inputs = hierarchy_stats.analysis_inputs(dataset, saved.crop_size, saved.seed)
    records = []
    for path in paths:
        log(f"probing {path}")
        records.append(probe_checkpoint(saved, dataset, path, log, inputs))
    results = {"model_dir": config.model_dir, "dataset": saved.dataset, "seed": saved.seed,
               "config": saved.to_json(), "dataset_params": dict(dataset.params),
               "decoder_epochs": saved.decoder_epochs, "final": records[-1],
               "over_training": records if len(records) > 1 else [],
               "provenance": files.provenance()}
    out_dir = os.path.join(config.model_dir, "probe")
    # One probe writes the folder at a time; what a killed one left is removed.
    with workdir.run_lock(out_dir):
        files.atomic_write_json(os.path.join(out_dir, "results.json"), results)
        write_model_figures(results, out_dir, dataset)
    log(f"wrote {os.path.join(out_dir, 'results.json')}")
    return results


def color_palette(results: dict) -> np.ndarray | None:
    """The sprites' own colours [k, 3], as many as the model's cross has
    (dsprites_mod: its 10); None for the hierarchy or a cross without colour."""
    if results["dataset"] == names.HIERARCHY:
        return None
    from simclr_controlled.claims import diagnostics
    from simclr_controlled.datasets import sprites
    counts = diagnostics.class_counts((results.get("dataset_params") or {}).get("factors"))
    return sprites.palette(counts["color"]) if "color" in counts else None


def write_model_figures(results: dict, out_dir: str, dataset: Dataset) -> list[str]:
    from simclr_controlled import figures
    final = results["final"]
    comps = {t: np.asarray(v["components"]) for t, v in final["pca"].items()}
    labels = {k: np.asarray(v) for k, v in final["pca_labels"].items()}
    palette = color_palette(results)
    kw = {} if palette is None else {"palette": palette}
    paths, _ = figures.pca_scatter(comps, labels, os.path.join(out_dir, "pca"),
                                   f"PCA of head layers ({os.path.basename(results['model_dir'].rstrip('/'))})", **kw)
    p2, _ = figures.cka_heatmap(final["cka"]["layers"], np.asarray(final["cka"]["linear"]),
                                os.path.join(out_dir, "cka_layers"), "linear CKA between head layers")
    return paths + p2
