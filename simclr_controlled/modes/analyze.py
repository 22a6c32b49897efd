"""`--mode=analyze`: the paper's figures and the claims report (DESIGN §4, §5)
for one experiment folder made by `--mode=reproduce` (or by hand: one
trained-and-probed model folder per temperature or augmentation preset).

Layout read: `E/experiment.json` = {"experiment": "hierarchy"|"dsprites_mod",
"models": {name: folder}}; each model folder has `config.json`,
`stats.jsonl` (hierarchy) and `probe/results.json`. Written: `E/analysis/`
(figures as PNG and PDF, `claims.json`, `cka_models.json`) and the claims
table on stdout. Findings are not errors: exit 0 whether or not a claim holds.
"""
from __future__ import annotations

import os

import numpy as np

from simclr_controlled import claims as claims_lib
from simclr_controlled import files, names, workdir
from simclr_controlled.config import Config
from simclr_controlled.errors import UsageError
from simclr_controlled.modes import common

DSPRITES_MODELS = names.DSPRITES_MODELS


def read_experiment(experiment_dir: str) -> dict:
    """`experiment.json` of a folder `workdir.check_experiment_dir` accepted."""
    exp = files.read_json(os.path.join(experiment_dir, "experiment.json"))
    if not isinstance(exp, dict) or exp.get("experiment") not in names.EXPERIMENTS \
            or not isinstance(exp.get("models"), dict) or not exp["models"]:
        raise UsageError(f"{os.path.join(experiment_dir, 'experiment.json')}: corrupt "
                         "(needs experiment: hierarchy|dsprites_mod and a models mapping)")
    return exp


def _results(experiment_dir: str, folder: str) -> dict:
    path = os.path.join(experiment_dir, folder, "probe", "results.json")
    res = files.read_json(path)
    if not isinstance(res, dict) or "final" not in res:
        raise UsageError(f"{path}: corrupt results (no 'final' entry); rerun --mode=probe")
    return res


def _as_arrays(cp: dict) -> dict:
    return {layer: {k: np.asarray(v, np.float64) for k, v in d.items()} for layer, d in cp.items()}


def analyze_hierarchy(experiment_dir: str, exp: dict, out: str, seed: int) -> tuple[list, list]:
    from simclr_controlled import figures
    by_t, records, cp_train, cp_random, sim = {}, {}, {}, {}, {}
    for name, folder in exp["models"].items():
        res = _results(experiment_dir, folder)
        t = float(res["config"]["temperature"])
        by_t[t] = folder
        final = res["final"]
        cp_train[t] = _as_arrays(final["channel_preference"]["train"])
        cp_random[t] = _as_arrays(final["channel_preference"]["random"])
        sim[t] = final["similarity"]
        stats_path = os.path.join(experiment_dir, folder, "stats.jsonl")
        recs = files.read_jsonl(stats_path) if os.path.exists(stats_path) else []
        records[t] = recs or [{"epoch": 0, **{k: final[k] for k in ("channel_preference", "similarity")}}]
    paths = []
    for draw, which, stem, title in (
            (figures.channel_preference_over_training, "train", "fig2_channel_preference_train",
             "Fig. 2: channel preference (train masks)"),
            (figures.channel_preference_over_training, "random", "figB1_channel_preference_random",
             "Fig. B.1: channel preference (random masks)"),
            (figures.similarity_over_training, "train", "figB2_similarity_train",
             "Fig. B.2: hierarchically constrained similarity (train)"),
            (figures.similarity_over_training, "validation", "figB3_similarity_validation",
             "Fig. B.3: hierarchically constrained similarity (validation)")):
        paths += draw(records, which, os.path.join(out, stem), title)[0]
    results = claims_lib.check_hierarchy(cp_train, cp_random, sim, seed=seed)
    return paths, results


def analyze_dsprites(experiment_dir: str, exp: dict, out: str) -> tuple[list, list, dict]:
    from simclr_controlled import figures
    from simclr_controlled.datasets import dsprites_mod
    dec, finals = {}, {}
    for name in [m for m in DSPRITES_MODELS if m in exp["models"]] + \
            [m for m in exp["models"] if m not in DSPRITES_MODELS]:
        res = _results(experiment_dir, exp["models"][name])
        finals[name] = res["final"]
        dec[name] = {layer: {f: v["best_val_accuracy"] for f, v in d.items()}
                     for layer, d in res["final"]["decodability"].items()}
    paths = figures.decodability(dec, os.path.join(out, "fig3_decodability"),
                                 "Fig. 3: linear decodability (best validation accuracy)")[0]
    palette = dsprites_mod.palette()
    for name, stem, title, layers in (
            ("crop_jitter", "fig4_pca_crop_jitter_head_input", "Fig. 4: PCA of head_input, crop + jitter",
             ["head_input"]),
            ("crop_jitter", "figB5_pca_crop_jitter_head", "Fig. B.5: PCA of the head layers, crop + jitter",
             ["head_1", "head_2", "head_out"])):
        if name in finals:
            f = finals[name]
            comps = {t: np.asarray(v["components"]) for t, v in f["pca"].items()}
            labels = {k: np.asarray(v) for k, v in f["pca_labels"].items()}
            paths += figures.pca_scatter(comps, labels, os.path.join(out, stem), title, layers=layers,
                                         palette=palette)[0]
    table = claims_lib.invariance_table(dec)
    paths += figures.invariance_bars(table, os.path.join(out, "invariance"),
                                     "decodability at head_input minus at head_out")[0]
    return paths, claims_lib.check_dsprites(dec), {"decodability": dec, "invariance": table}


def cka_between_models(experiment_dir: str, exp: dict, out: str, seed: int) -> tuple[dict, list]:
    """Linear CKA between the experiment's models at every head layer, on the
    same (up to) 1000 un-augmented training images; one heat map per layer."""
    from simclr_controlled import figures, train
    from simclr_controlled.models import TAPS
    from simclr_controlled.probes import activations, cka, pca
    acts, dataset, idx = {}, None, None
    for name, folder in exp["models"].items():
        model_dir = os.path.join(experiment_dir, folder)
        c = workdir.model_config(model_dir)
        if dataset is None:
            dataset = common.load_dataset(c)
            idx = np.asarray(dataset.train_idx)[pca.sample_indices(len(dataset.train_idx), 1000, seed)]
            images = common.eval_images(c, dataset)[idx]
        model, _ = train.restore_model(c, dataset, model_dir)
        acts[name] = activations.compute_activations(model, images)
    result, paths = {}, []
    for t in TAPS:
        names, matrix = cka.cka_matrix({name: a[t] for name, a in acts.items()})
        result[t] = {"models": names, "linear": matrix.tolist()}
        paths += figures.cka_heatmap(names, matrix, os.path.join(out, f"cka_models_{t}"),
                                     f"linear CKA between models at {t}")[0]
    return result, paths


def run(config: Config, log=print) -> list:
    exp = read_experiment(config.experiment_dir)
    for name, folder in exp["models"].items():  # every input checked before anything is written
        _results(config.experiment_dir, folder)
    out = os.path.join(config.experiment_dir, "analysis")
    extra = {}
    # One analysis writes the folder at a time; what a killed one left is removed.
    with workdir.run_lock(out, flag="experiment_dir"):
        if exp["experiment"] == "hierarchy":
            paths, results = analyze_hierarchy(config.experiment_dir, exp, out, config.seed)
        else:
            paths, results, extra = analyze_dsprites(config.experiment_dir, exp, out)
        extra["cka_models"], cka_paths = cka_between_models(config.experiment_dir, exp, out, config.seed)
        paths += cka_paths
        files.atomic_write_json(os.path.join(out, "claims.json"),
                                {"experiment": exp["experiment"], "claims": [c.to_json() for c in results],
                                 **extra, "provenance": files.provenance()})
    log(claims_lib.format_table(results))
    log(f"wrote {len(paths)} figure files and claims.json in {out}")
    return results
