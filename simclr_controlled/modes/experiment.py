"""The layout of an experiment folder (`--experiment_dir`), one seed or several.

One seed (`--seed=S`, the quick start): ``E/experiment.json`` =
{"experiment", "seed", "models": {name: folder}}, one model folder per
temperature (hierarchy), augmentation preset plus `untrained` (dsprites_mod)
or (bit count, temperature) cell (feature_suppression),
and ``E/analysis/``.

Several seeds (`--seeds=0,1,2`): ``E/experiment.json`` = {"experiment",
"seeds", "replicates": {seed: "seed_<S>"}}, and each ``E/seed_<S>/`` is a
one-seed experiment folder as above (so it can be analyzed, moved or rerun
on its own); ``E/analysis/`` holds the claims pooled over seeds and the
figures with bands. Seeds add up over runs (`write`): the pooled analysis
covers every replicate the folder records. A one-seed folder is not turned
into a multi-seed one (or back) silently: the checks refuse it and say how to convert.
"""
from __future__ import annotations

import dataclasses
import os

from simclr_controlled import files, names
from simclr_controlled.config import Config
from simclr_controlled.errors import UsageError

EXPERIMENT_JSON = "experiment.json"


def seed_folder(seed: int) -> str:
    return f"seed_{seed}"


def replicates(config: Config) -> dict[int, Config]:
    """seed -> the Config of that seed's one-seed experiment (its own folder
    under `experiment_dir` with --seeds; the folder itself without)."""
    if not config.seeds:
        return {config.seed: config}
    return {s: dataclasses.replace(config, seed=s, seeds=(),
                                   experiment_dir=os.path.join(config.experiment_dir, seed_folder(s)))
            for s in config.seeds}


def cell_name(bits: int, temperature: float) -> str:
    """The folder of one feature_suppression model: `bits_<k>_temperature_<T>`."""
    return f"bits_{bits}_temperature_{temperature:g}"


def models(config: Config) -> dict[str, Config]:
    """name -> the Config of each model of a one-seed experiment, on
    `names.experiment_dataset` (dsprites_mod's may be a factors cross, DESIGN §5)."""
    base = dataclasses.replace(config, dataset=names.experiment_dataset(config.experiment, config.dataset),
                               mode="train").with_dataset_defaults()
    root = config.experiment_dir
    if config.experiment == names.FEATURE_SUPPRESSION:
        # One model per (bit count, temperature), the same factors data, augmentation and
        # initialization (the replicate's seed); DESIGN §5.2.
        return {cell_name(k, t): dataclasses.replace(base, random_bits=int(k), temperature=float(t),
                                                     model_dir=os.path.join(root, cell_name(k, t)))
                for k in config.bit_counts for t in config.temperatures}
    if config.experiment == names.HIERARCHY:
        return {f"temperature_{t:g}": dataclasses.replace(base, temperature=float(t),
                                                          model_dir=os.path.join(root, f"temperature_{t:g}"))
                for t in config.temperatures}
    out = {names.UNTRAINED: dataclasses.replace(base, augment="none", untrained=True,
                                                model_dir=os.path.join(root, names.UNTRAINED))}
    for preset in config.augment_presets:
        out[preset] = dataclasses.replace(base, augment=preset, model_dir=os.path.join(root, preset))
    return out


def read(experiment_dir: str) -> dict:
    """`experiment.json` of an experiment folder: one seed ("models") or
    several ("replicates"); UsageError naming the file when it is neither."""
    path = os.path.join(experiment_dir, EXPERIMENT_JSON)
    exp = files.read_json(path)
    ok = isinstance(exp, dict) and exp.get("experiment") in names.EXPERIMENTS
    if ok and "replicates" in exp:
        reps = exp["replicates"]
        ok = isinstance(reps, dict) and bool(reps) and all(
            isinstance(f, str) and k.lstrip("-").isdigit() for k, f in reps.items())
    elif ok:
        ok = isinstance(exp.get("models"), dict) and bool(exp["models"])
    if not ok:
        raise UsageError(f"{path}: corrupt (needs experiment: {'|'.join(names.EXPERIMENTS)} and a "
                         "models mapping, or a replicates mapping seed -> folder)")
    return exp


def replicate_dirs(experiment_dir: str, exp: dict) -> dict[int, str]:
    """seed -> folder of each replicate of a multi-seed experiment.json."""
    return {int(k): os.path.join(experiment_dir, f)
            for k, f in sorted(exp["replicates"].items(), key=lambda kv: int(kv[0]))}


def check_layout(config: Config) -> None:
    """An existing experiment folder matches the form asked for (reads only).

    A one-seed folder given --seeds, or a multi-seed folder given one seed,
    is refused with how to convert it."""
    path = os.path.join(config.experiment_dir, EXPERIMENT_JSON)
    if not os.path.exists(path):
        return
    exp = read(config.experiment_dir)
    if exp["experiment"] != config.experiment:
        raise UsageError(f"--experiment_dir: {config.experiment_dir} holds the {exp['experiment']} "
                         f"experiment, not {config.experiment}; give another folder")
    if config.seeds and "replicates" not in exp:
        s = exp.get("seed", "S")
        raise UsageError(
            f"--seeds: {config.experiment_dir} holds a one-seed experiment (seed {s}); to add "
            f"seeds, move its contents into {os.path.join(config.experiment_dir, seed_folder(s))} "
            "and delete its experiment.json, or give another --experiment_dir")
    if config.seeds and "replicates" in exp:
        for s, d in replicate_dirs(config.experiment_dir, exp).items():
            if s not in config.seeds and not os.path.exists(os.path.join(d, EXPERIMENT_JSON)):
                raise UsageError(
                    f"--seeds: {path} records seed {s}, but {os.path.join(d, EXPERIMENT_JSON)} is "
                    f"missing; restore {d}, or give --seeds with {s} to run it again")
    if not config.seeds and "replicates" in exp:
        seeds = ",".join(str(s) for s in replicate_dirs(config.experiment_dir, exp))
        raise UsageError(
            f"--experiment_dir: {config.experiment_dir} holds a multi-seed experiment (seeds "
            f"{seeds}); give --seeds=..., or --experiment_dir={os.path.join(config.experiment_dir, seed_folder(config.seed))} "
            "for one replicate")


def recorded_seeds(config: Config) -> tuple[int, ...]:
    """The seeds a multi-seed folder records beside `config.seeds`, sorted
    (reads only; `check_layout` has accepted the folder)."""
    path = os.path.join(config.experiment_dir, EXPERIMENT_JSON)
    if not config.seeds or not os.path.exists(path):
        return ()
    return tuple(sorted(set(replicate_dirs(config.experiment_dir, read(config.experiment_dir)))
                        - set(config.seeds)))


def write(config: Config) -> None:
    """The experiment.json files of `config` (top level and every replicate).

    Seeds add up: a multi-seed folder keeps the replicates it already records
    (run earlier, on another machine, or by plan jobs) beside `--seeds`, so
    `--seeds=3,4` after `--seeds=0,1,2` gives five replicates to pool."""
    prov = files.provenance()
    if config.seeds:
        seeds = sorted(set(config.seeds) | set(recorded_seeds(config)))
        files.atomic_write_json(os.path.join(config.experiment_dir, EXPERIMENT_JSON),
                                {"experiment": config.experiment, "seeds": seeds,
                                 "replicates": {str(s): seed_folder(s) for s in seeds},
                                 "provenance": prov})
    for s, c in replicates(config).items():
        files.atomic_write_json(os.path.join(c.experiment_dir, EXPERIMENT_JSON),
                                {"experiment": c.experiment, "seed": s,
                                 "models": {name: name for name in models(c)}, "provenance": prov})
