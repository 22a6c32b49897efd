"""Replicates end to end (docs/DESIGN.md §5 "Across seeds"): `--seeds` for
reproduce (resumable when killed between seeds), the pooled analysis, and
`--mode=plan` whose printed jobs, run one by one and then analyzed, give the
same claims as reproduce."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from tests.test_reproduce import ROOT, TINY_HIERARCHY, png_ok, run

# One temperature keeps it small: two models, one per seed.
SEEDS = ["--seeds=0,1", "--deterministic", "--temperatures=0.1"]


def _claims(exp) -> list:
    return json.load(open(exp / "analysis" / "claims.json"))["claims"]


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    """reproduce --seeds=0,1, killed (SIGKILL) as the second seed starts, then rerun."""
    exp = tmp_path_factory.mktemp("seeds") / "exp"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    cmd = [sys.executable, os.path.join(ROOT, "run.py"), "--mode=reproduce", f"--experiment_dir={exp}",
           *TINY_HIERARCHY, *SEEDS]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("[2/2] seed 1"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert any(l.startswith("[2/2] seed 1") for l in seen), "".join(seen)[-3000:]
    assert not (exp / "analysis").exists()
    done = {p: os.path.getmtime(p) for p in (exp / "seed_0").glob("*/ckpt/*.index")}
    again = run("--mode=reproduce", f"--experiment_dir={exp}", *TINY_HIERARCHY, *SEEDS)
    assert again.returncode == 0, again.stderr[-3000:]
    return exp, again, done


def test_layout_and_resume_between_seeds(reproduced):
    exp, again, done = reproduced
    top = json.load(open(exp / "experiment.json"))
    assert top["seeds"] == [0, 1] and top["replicates"] == {"0": "seed_0", "1": "seed_1"}
    for s in (0, 1):
        rep = json.load(open(exp / f"seed_{s}" / "experiment.json"))
        assert rep["seed"] == s and set(rep["models"]) == {"temperature_0.1"}
        assert json.load(open(exp / f"seed_{s}" / "temperature_0.1" / "config.json"))["seed"] == s
        assert (exp / f"seed_{s}" / "analysis" / "claims.json").exists()
    # seed 0 was finished before the kill: not retrained, not reprobed
    assert done and {p: os.path.getmtime(p) for p in (exp / "seed_0").glob("*/ckpt/*.index")} == done
    head = again.stdout.split("[2/2]")[0]
    assert head.count("training already finished") == 1 and head.count("already probed") == 1


def test_pooled_claims_and_figures(reproduced):
    exp, again, _ = reproduced
    data = json.load(open(exp / "analysis" / "claims.json"))
    assert data["seeds"] == [0, 1]
    assert [c["name"] for c in data["claims"]] == ["H1", "H2", "H3", "H4", "H5"]
    for c in data["claims"]:
        assert c["seeds"] == [0, 1] and 0 <= c["held_in"] <= 2
        assert c["label"].startswith(f"pooled {c['verdict']}, held in {c['held_in']} of 2 seeds")
        per_seed = [data["per_seed"][s][c["name"]] for s in ("0", "1")]
        assert c["held_in"] == per_seed.count("REPRODUCED")
        for e in c["evidence"]:
            assert e["method"].startswith("two-level bootstrap over 2 seeds") or not e["holds"]
    one = json.load(open(exp / "seed_1" / "analysis" / "claims.json"))["claims"]
    assert all(c["label"].endswith("(one seed: 1)") for c in one)
    assert "pooled " in again.stdout and "held in" in again.stdout
    for stem in ("fig2_channel_preference_train", "figB1_channel_preference_random",
                 "figB2_similarity_train", "figB3_similarity_validation"):
        assert png_ok(str(exp / "analysis" / f"{stem}.png")), stem
        assert png_ok(str(exp / "seed_0" / "analysis" / f"{stem}.png")), stem


def test_plan_jobs_then_analyze_equal_reproduce(reproduced, tmp_path):
    exp_r, _, _ = reproduced
    exp = tmp_path / "planned"
    plan = run("--mode=plan", f"--experiment_dir={exp}", *TINY_HIERARCHY, *SEEDS)
    assert plan.returncode == 0, plan.stderr[-3000:]
    jobs = plan.stdout.splitlines()
    assert len(jobs) == 2 and all(j.startswith("python run.py --mode=train ") for j in jobs)
    assert all(" && python run.py --mode=probe " in j for j in jobs)
    assert "--mode=analyze" in plan.stderr
    assert not [p for s in (0, 1) for p in (exp / f"seed_{s}").glob("*/ckpt")]  # nothing trained
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    env.pop("PYTHONPATH", None)
    for job in jobs:  # as a user's scheduler would run them, from the repository root
        out = subprocess.run(["bash", "-c", job], cwd=ROOT, capture_output=True, text=True, env=env,
                             timeout=900)
        assert out.returncode == 0, (job, out.stderr[-3000:])
    analyze = run("--mode=analyze", f"--experiment_dir={exp}")
    assert analyze.returncode == 0, analyze.stderr[-3000:]
    assert _claims(exp) == _claims(exp_r)


def _load_keep_script():
    spec = importlib.util.spec_from_file_location("keep", os.path.join(ROOT, "docs", "runs", "keep.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_seeds_add_up_over_runs(reproduced, tmp_path):
    """Seed 0 kept as results only by docs/runs/keep.py (as when copied from
    another machine), then --seeds=1 planned there: seed 1 is
    added. Reproduce over both retrains neither (results kept without
    weights) and pools them, equal to the original reproduce --seeds=0,1."""
    exp_r, _, _ = reproduced
    exp = tmp_path / "added"
    keep = _load_keep_script()
    keep.main(str(exp_r), str(exp), [0])  # as docs/runs/ was made
    top = json.loads((exp / "experiment.json").read_text())
    assert top["seeds"] == [0] and sorted(os.listdir(exp / "seed_0" / "temperature_0.1")) == [
        "config.json", "probe", "stats.jsonl"]
    shutil.copytree(exp_r / "seed_1", exp / "seed_1",
                    ignore=shutil.ignore_patterns("ckpt", "tb", "analysis", ".lock"))
    one = [a for a in SEEDS if not a.startswith("--seeds")] + ["--seeds=1"]
    (exp / "seed_0" / "experiment.json").rename(exp / "moved.json")
    refused = run("--mode=plan", f"--experiment_dir={exp}", *TINY_HIERARCHY, *one)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "records seed 0" in refused.stderr and "seed_0" in refused.stderr
    assert json.loads((exp / "experiment.json").read_text()) == top
    (exp / "moved.json").rename(exp / "seed_0" / "experiment.json")
    plan = run("--mode=plan", f"--experiment_dir={exp}", *TINY_HIERARCHY, *one)
    assert plan.returncode == 0, plan.stderr[-3000:]
    jobs = plan.stdout.splitlines()
    assert len(jobs) == 1 and "seed_1" in jobs[0] and "seed_0" not in jobs[0]
    recorded = json.loads((exp / "experiment.json").read_text())
    assert recorded["seeds"] == [0, 1] and recorded["replicates"] == {"0": "seed_0", "1": "seed_1"}
    again = run("--mode=reproduce", f"--experiment_dir={exp}", *TINY_HIERARCHY, *SEEDS)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("results kept without checkpoints") == 2  # neither seed retrained
    assert not list(exp.glob("seed_*/*/ckpt"))
    assert "CKA between models not computed" in again.stdout
    assert _claims(exp) == _claims(exp_r)


def test_one_seed_and_multi_seed_folders_are_not_mixed(tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    (one / "experiment.json").write_text(json.dumps(
        {"experiment": "hierarchy", "seed": 0, "models": {"temperature_0.1": "temperature_0.1"}}))
    out = run("--mode=reproduce", f"--experiment_dir={one}", *TINY_HIERARCHY, "--seeds=0,1")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "--seeds:" in out.stderr and "one-seed experiment" in out.stderr
    assert os.listdir(one) == ["experiment.json"]
    multi = tmp_path / "multi"
    multi.mkdir()
    (multi / "experiment.json").write_text(json.dumps(
        {"experiment": "hierarchy", "seeds": [0, 1], "replicates": {"0": "seed_0", "1": "seed_1"}}))
    out = run("--mode=plan", f"--experiment_dir={multi}", *TINY_HIERARCHY)
    assert out.returncode == 2 and "multi-seed experiment (seeds 0,1)" in out.stderr
    assert "seed_0" in out.stderr and os.listdir(multi) == ["experiment.json"]


def test_seeds_only_for_experiment_modes(tmp_path):
    out = run("--mode=train", f"--model_dir={tmp_path / 'm'}", "--seeds=0,1")
    assert out.returncode == 2 and out.stderr.startswith("error: --seeds: only for --mode=reproduce")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("value,words", [
    ("a,b", "--seeds: expected comma-separated integers >= 0"),
    ("1,1", "--seeds: comma-separated distinct integers"),
    ("-1", "--seeds: comma-separated distinct integers"),
])
def test_bad_seeds(tmp_path, value, words):
    out = run("--mode=reproduce", f"--experiment_dir={tmp_path / 'e'}", *TINY_HIERARCHY, f"--seeds={value}")
    assert out.returncode == 2 and out.stderr.startswith(f"error: {words}"), out.stderr
    assert not (tmp_path / "e").exists()
