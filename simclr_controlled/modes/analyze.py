"""`--mode=analyze`: the paper's figures and the claims report (DESIGN §4, §5)
for one experiment folder made by `--mode=reproduce` or `--mode=plan` (or by
hand: one trained-and-probed model folder per temperature or augmentation
preset), over one seed or several (layout: `modes.experiment`).

Read: each model folder's `config.json`, `stats.jsonl` (hierarchy) and
`probe/results.json`; the latest checkpoints only for CKA between models,
which is skipped, with a note, when a folder holds results without weights
(seeds copied from another machine, `docs/runs/`). Written: `analysis/` (figures as PNG and PDF,
`claims.json`) of every replicate and, with several seeds, of the
experiment: the claims pooled over seeds (`claims.seeds`) and the figures as
the mean over seeds with 95% bootstrap bands; the claims table on stdout.
dSprites also gets the label-free diagnostics (DESIGN §4.6; over seeds: the
Spearman table over every replicate's points). The bootstrap of a replicate
is seeded with its seed, the pooled one with 0. Findings are not errors:
exit 0 whether or not a claim holds.
"""
from __future__ import annotations

import os

import numpy as np

from simclr_controlled import claims as claims_lib
from simclr_controlled.claims import diagnostics
from simclr_controlled import checkpoints, files, names, workdir
from simclr_controlled.config import Config
from simclr_controlled.errors import UsageError
from simclr_controlled.modes import common, experiment

DSPRITES_MODELS = names.DSPRITES_MODELS
POOLED_BOOTSTRAP_SEED = 0


def read_experiment(experiment_dir: str) -> dict:
    """`experiment.json` of a one-seed folder `workdir.check_experiment_dir` accepted."""
    exp = experiment.read(experiment_dir)
    if "models" not in exp:
        raise UsageError(f"{os.path.join(experiment_dir, 'experiment.json')}: a multi-seed "
                         "experiment where one replicate was expected")
    return exp


def _results(experiment_dir: str, folder: str) -> dict:
    path = os.path.join(experiment_dir, folder, "probe", "results.json")
    res = files.read_json(path)
    if not isinstance(res, dict) or "final" not in res:
        raise UsageError(f"{path}: corrupt results (no 'final' entry); rerun --mode=probe")
    return res


def _as_arrays(cp: dict) -> dict:
    return {layer: {k: np.asarray(v, np.float64) for k, v in d.items()} for layer, d in cp.items()}


_HIERARCHY_FIGURES = (
    ("channel_preference", "train", "fig2_channel_preference_train", "Fig. 2: channel preference (train masks)"),
    ("channel_preference", "random", "figB1_channel_preference_random",
     "Fig. B.1: channel preference (random masks)"),
    ("similarity", "train", "figB2_similarity_train", "Fig. B.2: hierarchically constrained similarity (train)"),
    ("similarity", "validation", "figB3_similarity_validation",
     "Fig. B.3: hierarchically constrained similarity (validation)"))


def analyze_hierarchy(experiment_dir: str, exp: dict, out: str, seed: int) -> tuple[list, list, dict, dict]:
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
    draw = {"channel_preference": figures.channel_preference_over_training,
            "similarity": figures.similarity_over_training}
    for kind, which, stem, title in _HIERARCHY_FIGURES:
        paths += draw[kind](records, which, os.path.join(out, stem), title)[0]
    results = claims_lib.check_hierarchy(cp_train, cp_random, sim, seed=seed)
    return paths, results, {}, {"records": records}


def data_label(res: dict) -> dict:
    """claims.json's "dataset" and, for the sprite datasets, "factors" (the
    cross, DESIGN §1.3) of one model's results."""
    dataset = res.get("dataset") or (res.get("config") or {}).get("dataset")
    factors = (res.get("dataset_params") or {}).get("factors")
    if dataset == names.DSPRITES_MOD:
        factors = names.DSPRITES_MOD_FACTORS  # its fixed cross; its params do not name it
    return {"dataset": dataset, **({"factors": factors} if factors else {})}


def _title(title: str, label: dict | None) -> str:
    """`title`, plus the cross on a second line when the models trained on a
    factors cross (dsprites_mod's figures keep the paper's title)."""
    if (label or {}).get("dataset") != names.FACTORS:
        return title
    return f"{title}\n{label['dataset']} {label.get('factors', '')}"


def analyze_dsprites(experiment_dir: str, exp: dict, out: str, seed: int) -> tuple[list, list, dict, dict]:
    """dsprites_mod or any factors cross (DESIGN §5): every figure draws the
    factors decoded, chance from the cross's class counts; D1-D3 are not
    applicable where a paper factor is missing."""
    from simclr_controlled import figures
    from simclr_controlled.datasets import sprites
    dec, finals, records, counts, label = {}, {}, {}, None, None
    for name in [m for m in DSPRITES_MODELS if m in exp["models"]] + \
            [m for m in exp["models"] if m not in DSPRITES_MODELS]:
        res = _results(experiment_dir, exp["models"][name])
        finals[name] = res["final"]
        records[name] = [res["final"]] + list(res.get("over_training") or [])
        counts = counts or diagnostics.class_counts((res.get("dataset_params") or {}).get("factors"))
        label = label or data_label(res)
        dec[name] = {layer: {f: v["best_val_accuracy"] for f, v in d.items()}
                     for layer, d in res["final"]["decodability"].items()}
    chance = {f: 1.0 / k for f, k in counts.items()}
    paths = figures.decodability(dec, os.path.join(out, "fig3_decodability"),
                                 _title("Fig. 3: linear decodability (best validation accuracy)", label),
                                 chance=chance)[0]
    # The sprites' own colours, as many as the cross has (dsprites_mod: its 10).
    palette = sprites.palette(counts["color"]) if "color" in counts else None
    for name, stem, title, layers in (
            ("crop_jitter", "fig4_pca_crop_jitter_head_input", "Fig. 4: PCA of head_input, crop + jitter",
             ["head_input"]),
            ("crop_jitter", "figB5_pca_crop_jitter_head", "Fig. B.5: PCA of the head layers, crop + jitter",
             ["head_1", "head_2", "head_out"])):
        if name in finals:
            f = finals[name]
            comps = {t: np.asarray(v["components"]) for t, v in f["pca"].items()}
            labels = {k: np.asarray(v) for k, v in f["pca_labels"].items()}
            paths += figures.pca_scatter(comps, labels, os.path.join(out, stem), _title(title, label),
                                         layers=layers, palette=palette)[0]
    table = claims_lib.invariance_table(dec)
    paths += figures.invariance_bars(table, os.path.join(out, "invariance"),
                                     "decodability at head_input minus at head_out")[0]
    points = diagnostics.diagnostic_points(records)
    more, diag = _label_free_diagnostics(points, diagnostics.invariance_map(dec), counts, out, seed)
    return (paths + more, claims_lib.check_dsprites(dec),
            {"decodability": dec, "invariance": table, **diag},
            {"decodability": dec, "invariance": table, "points": points, "class_counts": counts,
             "label": label})


def _label_free_diagnostics(points: list, inv: dict, counts: dict, out: str, seed: int
                            ) -> tuple[list, dict]:
    """DESIGN §4.6: the Spearman table of the label-free metrics against
    decodability with a scatter figure per layer, and the invariance map
    (`inv`, one seed or over seeds); no figure where there is nothing to draw
    (results.json files from before `label_free` was stored give no point)."""
    from simclr_controlled import figures
    result = diagnostics.spearman_table(points, seed=seed)
    paths = []
    for layer in dict.fromkeys(p["layer"] for p in points if p["decodability"]):
        paths += figures.label_free_scatter(points, result["table"], layer, counts,
                                            os.path.join(out, f"label_free_vs_decodability_{layer}"),
                                            "label-free metric vs linear decodability")[0]
    if inv:
        paths += figures.invariance_heatmap(inv, os.path.join(out, "invariance_map"),
                                            "decodability change against no augmentation")[0]
    return paths, {"label_free_vs_decodability": result, "invariance_map": inv}


_SUPPRESSION_TITLE = "decodability against the number of random bits"


def analyze_suppression(experiment_dir: str, exp: dict, out: str, seed: int) -> tuple[list, list, dict, dict]:
    """The feature-suppression experiment (DESIGN §5.2): the curves, S1-S3 and the colab-shaped table."""
    from simclr_controlled import figures
    from simclr_controlled.figures import suppression
    sup: dict = {}
    for folder in exp["models"].values():
        res = _results(experiment_dir, folder)
        t, k = float(res["config"]["temperature"]), int(res["config"]["random_bits"])
        sup.setdefault(t, {})[k] = {layer: {f: v["best_val_accuracy"] for f, v in d.items()}
                                    for layer, d in res["final"]["decodability"].items()}
    chance = diagnostics.chance_levels(res["config"].get("factors"))
    paths = figures.suppression_curves({seed: sup}, os.path.join(out, "suppression"),
                                       _SUPPRESSION_TITLE, chance)[0]
    table = suppression.colab_table({seed: sup})
    return (paths, claims_lib.check_suppression(sup), {"suppression": sup, "table": table},
            {"suppression": sup, "chance": chance})


_ANALYSES = {names.HIERARCHY: analyze_hierarchy, names.DSPRITES_MOD: analyze_dsprites,
             names.FEATURE_SUPPRESSION: analyze_suppression}


def cka_between_models(experiment_dir: str, exp: dict, out: str, seed: int) -> tuple[dict, list]:
    """Linear CKA between the experiment's models at every head layer, on the
    same (up to) 1000 un-augmented training images; one heat map per layer."""
    from simclr_controlled import figures, train
    from simclr_controlled.models import TAPS
    from simclr_controlled.probes import activations, cka, pca
    from simclr_controlled import datasets
    acts, dataset, idx = {}, None, None
    for name, folder in exp["models"].items():
        model_dir = os.path.join(experiment_dir, folder)
        c = workdir.model_config(model_dir)
        if dataset is None:
            dataset = common.load_dataset(c)
            idx = np.asarray(dataset.train_idx)[pca.sample_indices(len(dataset.train_idx), 1000, seed)]
        # The feature-suppression models differ in their bit channels only (the
        # bits have a stream of their own, DESIGN §1.4): redraw them, keep the images.
        dataset = datasets.with_random_bits(dataset, c.seed, c.random_bits)
        images = common.eval_images(c, dataset, idx)
        model, _ = train.restore_model(c, dataset, model_dir)
        acts[name] = activations.compute_activations(model, images)
    result, paths = {}, []
    for t in TAPS:
        names, matrix = cka.cka_matrix({name: a[t] for name, a in acts.items()})
        result[t] = {"models": names, "linear": matrix.tolist()}
        paths += figures.cka_heatmap(names, matrix, os.path.join(out, f"cka_models_{t}"),
                                     f"linear CKA between models at {t}")[0]
    return result, paths


def _checked_inputs(experiment_dir: str) -> tuple[dict, int, dict]:
    """A replicate's experiment.json, its seed and its `data_label`, every
    results file read (a corrupt one is named before anything is written)."""
    exp = read_experiment(experiment_dir)
    seeds, label = set(), None
    for folder in exp["models"].values():
        res = _results(experiment_dir, folder)
        seeds.add(int(res["config"]["seed"]))
        label = label or data_label(res)
    if len(seeds) != 1:
        raise UsageError(f"--experiment_dir: the models of {experiment_dir} were trained with different "
                         f"seeds {sorted(seeds)}; one replicate has one seed")
    return exp, seeds.pop(), label


def analyze_replicate(experiment_dir: str, log=print, table: bool = True) -> tuple[list, dict]:
    """The analysis of one replicate, written to its `analysis/`; returns its
    claims (seeded with the replicate's seed) and the data the figures over
    seeds need."""
    exp, seed, label = _checked_inputs(experiment_dir)
    out = os.path.join(experiment_dir, "analysis")
    # One analysis writes the folder at a time; what a killed one left is removed.
    with workdir.run_lock(out, flag="experiment_dir"):
        paths, results, extra, data = _ANALYSES[exp["experiment"]](experiment_dir, exp, out, seed)
        for c in results:
            c.seeds = [seed]
        pruned = [f for f in exp["models"].values()
                  if checkpoints.read_state(os.path.join(experiment_dir, f)) is None]
        if pruned:
            # Results copied without their weights (e.g. kept in docs/runs/): every claim and
            # figure comes from the results files; only CKA between models needs the weights.
            extra["cka_models"] = {"not_computed": f"no checkpoints in {', '.join(pruned)}"}
            log(f"  CKA between models not computed: no checkpoints in {', '.join(pruned)}")
        else:
            extra["cka_models"], cka_paths = cka_between_models(experiment_dir, exp, out, seed)
            paths += cka_paths
        files.atomic_write_json(os.path.join(out, "claims.json"),
                                {"experiment": exp["experiment"], "seed": seed, **label,
                                 "claims": [c.to_json() for c in results],
                                 **extra, "provenance": files.provenance()})
    if label["dataset"] != names.EXPERIMENT_DATASETS[exp["experiment"]]:
        log(f"{exp['experiment']} experiment on {label['dataset']} {label.get('factors', '')}".rstrip())
    if table:
        log(claims_lib.format_table(results))
        if text := diagnostics.format_diagnostics(extra):
            log(text)
        if "table" in extra:  # feature_suppression's colab-shaped table
            log(extra["table"])
    log(f"wrote {len(paths)} figure files and claims.json in {out}")
    return results, data


def _figures_over_seeds(experiment: str, data: dict, out: str) -> tuple[list, dict]:
    from simclr_controlled import figures
    if experiment == names.HIERARCHY:
        records = {s: d["records"] for s, d in data.items()}
        draw = {"channel_preference": figures.channel_preference_over_seeds,
                "similarity": figures.similarity_over_seeds}
        paths = []
        for kind, which, stem, title in _HIERARCHY_FIGURES:
            paths += draw[kind](records, which, os.path.join(out, stem), title)[0]
        return paths, {}
    if experiment == names.FEATURE_SUPPRESSION:
        from simclr_controlled.figures import suppression
        sup = {s: d["suppression"] for s, d in data.items()}
        chance = next(iter(data.values()))["chance"]
        paths = figures.suppression_curves(sup, os.path.join(out, "suppression"),
                                           _SUPPRESSION_TITLE, chance)[0]
        return paths, {"table": suppression.colab_table(sup)}
    dec = {s: d["decodability"] for s, d in data.items()}
    tables = {s: d["invariance"] for s, d in data.items()}
    counts = next((d["class_counts"] for d in data.values() if d.get("class_counts")), {})
    paths = figures.decodability_over_seeds(dec, os.path.join(out, "fig3_decodability"),
                                            _title("Fig. 3: linear decodability (best validation "
                                                   "accuracy)", next(iter(data.values())).get("label")),
                                            chance={f: 1.0 / k for f, k in counts.items()} or None)[0]
    paths += figures.invariance_bars_over_seeds(tables, os.path.join(out, "invariance"),
                                                "decodability at head_input minus at head_out")[0]
    # The Spearman table over every replicate's points; the map's cells over seeds.
    points = [dict(p, seed=s) for s, d in data.items() for p in d.get("points", ())]
    maps = {s: diagnostics.invariance_map(d["decodability"]) for s, d in data.items()}
    more, diag = _label_free_diagnostics(
        points, diagnostics.invariance_map_over_seeds(maps, seed=POOLED_BOOTSTRAP_SEED), counts, out,
        POOLED_BOOTSTRAP_SEED)
    inv = claims_lib.invariance_over_seeds(tables, seed=POOLED_BOOTSTRAP_SEED)
    return paths + more, {"invariance": inv, **diag}


def run(config: Config, log=print) -> list:
    """One replicate: its analysis. Several: each replicate's, then the
    claims pooled over seeds and the figures with bands in `E/analysis/`."""
    exp = experiment.read(config.experiment_dir)
    if "replicates" not in exp:
        return analyze_replicate(config.experiment_dir, log)[0]
    dirs = experiment.replicate_dirs(config.experiment_dir, exp)
    # Every input of every seed checked before anything is written.
    label = [_checked_inputs(d)[2] for d in dirs.values()][0]
    per_seed, data = {}, {}
    for s, d in dirs.items():
        log(f"seed {s}: analyzing {d}")
        per_seed[s], data[s] = analyze_replicate(d, log, table=False)
        log("  " + "  ".join(f"{c.name} {c.verdict}" for c in per_seed[s]))
    pooled = claims_lib.pool_claims(per_seed, seed=POOLED_BOOTSTRAP_SEED)
    out = os.path.join(config.experiment_dir, "analysis")
    with workdir.run_lock(out, flag="experiment_dir"):
        paths, extra = _figures_over_seeds(exp["experiment"], data, out)
        files.atomic_write_json(os.path.join(out, "claims.json"), {
            "experiment": exp["experiment"], "seeds": sorted(dirs), **label,
            "claims": [c.to_json() for c in pooled],
            "per_seed": {str(s): {c.name: c.verdict for c in per_seed[s]} for s in sorted(dirs)},
            **extra, "provenance": files.provenance()})
    log(claims_lib.format_table(pooled))
    if "invariance" in extra:
        log(claims_lib.format_invariance_table(extra["invariance"]))
    if "table" in extra:
        log(extra["table"])
    if text := diagnostics.format_diagnostics(extra):
        log(text)
    log(f"wrote {len(paths)} figure files and the pooled claims.json in {out}")
    return pooled
