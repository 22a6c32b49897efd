"""--mode=reproduce / probe / analyze end to end on tiny experiments:
figures written with the expected panels, claims reported, and a second
reproduce call trains nothing."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY_HIERARCHY = ["--experiment=hierarchy", "--branching=4,4,4", "--mask_size=16", "--crop_size=12",
                  "--train_batch_size=16", "--train_epochs=2", "--eval_every_epochs=1",
                  "--checkpoint_epochs=1", "--temperatures=0.1,1.0"]
TINY_DSPRITES = ["--experiment=dsprites_mod", "--model=resnet18", "--width_multiplier=0.25",
                 "--resnet_stem=imagenet", "--head_widths=32,32,16", "--train_batch_size=32",
                 "--train_steps=2", "--decoder_epochs=2", "--augment_presets=none,crop_jitter",
                 # A seeded subset of the cross: the probes' cost scales with the items.
                 "--max_items=1500"]


def run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, os.path.join(ROOT, "run.py"), *args], capture_output=True,
                          text=True, env=env, timeout=900)


def png_ok(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 1000


@pytest.fixture(scope="module")
def hierarchy_experiment(tmp_path_factory):
    exp = tmp_path_factory.mktemp("hier") / "exp"
    first = run("--mode=reproduce", f"--experiment_dir={exp}", *TINY_HIERARCHY)
    assert first.returncode == 0, first.stderr[-3000:]
    return exp, first


def test_hierarchy_reproduce_writes_figures_and_claims(hierarchy_experiment):
    exp, first = hierarchy_experiment
    analysis = exp / "analysis"
    for stem in ("fig2_channel_preference_train", "figB1_channel_preference_random",
                 "figB2_similarity_train", "figB3_similarity_validation", "cka_models_head_input"):
        assert png_ok(str(analysis / f"{stem}.png")), stem
        assert os.path.getsize(analysis / f"{stem}.pdf") > 1000
    claims = json.load(open(analysis / "claims.json"))
    assert [c["name"] for c in claims["claims"]] == ["H1", "H2", "H3", "H4", "H5"]
    for name in ("H1", "H2", "H3", "H4", "H5"):
        assert f"{name}: " in first.stdout
    assert "REPRODUCED" in first.stdout
    # over-training statistics: one record per epoch (0, 1, 2) for each temperature
    for t in ("0.1", "1"):
        lines = open(exp / f"temperature_{t}" / "stats.jsonl").read().splitlines()
        assert [json.loads(l)["epoch"] for l in lines] == [0, 1, 2]
        assert png_ok(str(exp / f"temperature_{t}" / "probe" / "pca.png"))


def test_second_reproduce_trains_nothing(hierarchy_experiment):
    exp, _ = hierarchy_experiment
    ckpts = {p: os.path.getmtime(p) for p in (exp.glob("*/ckpt/*.index"))}
    results = {p: os.path.getmtime(p) for p in exp.glob("*/probe/results.json")}
    assert ckpts and results
    again = run("--mode=reproduce", f"--experiment_dir={exp}", *TINY_HIERARCHY)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "training already finished" in again.stdout
    assert "already probed" in again.stdout
    assert "loss" not in again.stdout.split("analyzing")[0].replace("training already finished", "")
    assert {p: os.path.getmtime(p) for p in exp.glob("*/ckpt/*.index")} == ckpts
    assert {p: os.path.getmtime(p) for p in exp.glob("*/probe/results.json")} == results


def test_probe_all_checkpoints_gives_statistics_over_training(hierarchy_experiment):
    exp, _ = hierarchy_experiment
    out = run("--mode=probe", f"--model_dir={exp / 'temperature_0.1'}", "--checkpoints=all")
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.load(open(exp / "temperature_0.1" / "probe" / "results.json"))
    steps = [r["step"] for r in res["over_training"]]
    assert len(steps) >= 2 and steps == sorted(steps)
    assert res["provenance"]["versions"]["tensorflow"]


def test_dsprites_reproduce_end_to_end(tmp_path):
    exp = tmp_path / "exp"
    out = run("--mode=reproduce", f"--experiment_dir={exp}", *TINY_DSPRITES)
    assert out.returncode == 0, out.stderr[-3000:]
    analysis = exp / "analysis"
    for stem in ("fig3_decodability", "fig4_pca_crop_jitter_head_input", "figB5_pca_crop_jitter_head",
                 "invariance"):
        assert png_ok(str(analysis / f"{stem}.png")), stem
    claims = json.load(open(analysis / "claims.json"))
    assert [c["name"] for c in claims["claims"]] == ["D1", "D2", "D3"]
    dec = claims["decodability"]
    assert set(dec) == {"untrained", "none", "crop_jitter"}
    for layer in ("head_input", "head_1", "head_2", "head_out"):
        assert set(dec["none"][layer]) == {"color", "scale", "position"}
    res = json.load(open(exp / "none" / "probe" / "results.json"))
    # A real model's ReLU layers are silent for some views: the label-free metrics leave those out.
    for layer in ("head_input", "head_1", "head_2", "head_out"):
        assert set(res["final"]["label_free"][layer]) == {"alignment", "uniformity", "effective_rank",
                                                          "view_items"}
        assert set(res["final"]["factor_metrics"][layer]["r2"]) == {"scale", "x", "y"}
    held = res["dataset_params"]["held_out"]
    assert len(held["scales"]) == 2 and len(held["colors"]) == 2 and len(held["positions"]) == 26
