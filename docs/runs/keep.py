"""Keeps a finished multi-seed experiment's replicates as results only, so a
later session or machine can add seeds and pool (README "Verdicts over seeds").

    python docs/runs/keep.py SRC_EXPERIMENT_DIR DST [SEED ...]

Per model folder of each replicate (default: every seed whose models are all probed): config.json
and probe/results.json as written (every claim is computed from them), and
stats.jsonl (the curves over training) thinned to every second record
(epochs 0, 10, ..., 100 at the hierarchy preset's --eval_every_epochs=5)
with its values rounded to 6 decimals (they are float32 cosine similarities,
good to about 7 digits). No checkpoints: `reproduce` does not retrain such a
model and `analyze` skips only the CKA between its models. DST gets a top
experiment.json recording the kept seeds.
"""
from __future__ import annotations

import json
import os
import shutil
import sys

STATS_EVERY = 2
DECIMALS = 6


def _rounded(o):
    if isinstance(o, float):
        return round(o, DECIMALS)
    if isinstance(o, list):
        return [_rounded(v) for v in o]
    if isinstance(o, dict):
        return {k: _rounded(v) for k, v in o.items()}
    return o


def keep_model(src: str, dst: str) -> None:
    os.makedirs(os.path.join(dst, "probe"), exist_ok=True)
    for name in ("config.json", os.path.join("probe", "results.json")):
        shutil.copy2(os.path.join(src, name), os.path.join(dst, name))
    stats = os.path.join(src, "stats.jsonl")
    if os.path.exists(stats):
        with open(stats) as f:
            recs = [json.loads(line) for line in f if line.strip()]
        kept = [r for i, r in enumerate(recs) if i % STATS_EVERY == 0 or i == len(recs) - 1]
        with open(os.path.join(dst, "stats.jsonl"), "w") as f:
            f.writelines(json.dumps(_rounded(r)) + "\n" for r in kept)


def _probed(rep: str) -> bool:
    """Every model of the replicate folder `rep` has its probe results."""
    path = os.path.join(rep, "experiment.json")
    if not os.path.exists(path):
        return False
    with open(path) as f:
        models = json.load(f)["models"].values()
    return all(os.path.exists(os.path.join(rep, m, "probe", "results.json")) for m in models)


def main(src: str, dst: str, seeds: list[int]) -> None:
    with open(os.path.join(src, "experiment.json")) as f:
        top = json.load(f)
    reps = {int(s): folder for s, folder in top["replicates"].items()}
    seeds = seeds or sorted(s for s, folder in reps.items() if _probed(os.path.join(src, folder)))
    kept = {}
    if os.path.exists(os.path.join(dst, "experiment.json")):
        with open(os.path.join(dst, "experiment.json")) as f:
            kept = {int(s): folder for s, folder in json.load(f)["replicates"].items()}
    for s in seeds:
        rep_src, rep_dst = os.path.join(src, reps[s]), os.path.join(dst, reps[s])
        with open(os.path.join(rep_src, "experiment.json")) as f:
            rep = json.load(f)
        for folder in rep["models"].values():
            keep_model(os.path.join(rep_src, folder), os.path.join(rep_dst, folder))
        shutil.copy2(os.path.join(rep_src, "experiment.json"), os.path.join(rep_dst, "experiment.json"))
        kept[s] = reps[s]
        print(f"kept seed {s} in {rep_dst}")
    with open(os.path.join(dst, "experiment.json"), "w") as f:
        json.dump({"experiment": top["experiment"], "seeds": sorted(kept),
                   "replicates": {str(s): kept[s] for s in sorted(kept)}}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3:]])
