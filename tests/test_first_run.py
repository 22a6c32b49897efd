"""The first day: the README's main command as written, paths as a user types
them, damaged folders, a full disk, progress on slow hardware.

Runs go through real `python run.py` processes (or `run.main` in one helper
process, tests/reliability_helper.py, so TensorFlow starts once), from the
working directories a user would have: relative paths, flagfiles with
relative paths inside, spaces and non-ASCII characters in folder names.
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from simclr_controlled import checkpoints, schedule

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RUN = os.path.join(ROOT, "run.py")
HELPER = os.path.join(HERE, "reliability_helper.py")
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")
ENV.pop("TF_CONFIG", None)

TINY = ["--branching=4,4,4", "--mask_size=16", "--crop_size=12", "--train_batch_size=16"]
# 58 training items at batch 16: 3 steps per epoch, a checkpoint every epoch.
TRAIN = ["--mode=train", *TINY, "--checkpoint_epochs=1", "--strategy=one_device", "--deterministic"]
TINY_EXPERIMENT = [*TINY, "--train_epochs=2", "--eval_every_epochs=1", "--checkpoint_epochs=1",
                   "--decoder_epochs=2"]
ODD = "runs with spaces/é ü 模型"  # a folder name a user may well type


def run(args, cwd, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, RUN, *args], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def run_cases(cases: list[dict], workdir) -> dict:
    """Each case {"id", "argv", "cwd"} through run.main, in order, in one process."""
    path, out = os.path.join(workdir, "cases.json"), os.path.join(workdir, "results.json")
    with open(path, "w") as f:
        json.dump(cases, f)
    helper = subprocess.run([sys.executable, HELPER, "cases", path, out], env=ENV, capture_output=True,
                            text=True, timeout=900)
    assert helper.returncode == 0, helper.stderr[-3000:]
    with open(out) as f:
        return json.load(f)


def one_error_line(result: dict, status: int = 2) -> str:
    assert result["status"] == status, result
    err = result["stderr"]
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def png_ok(path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 1000


# --------------------------------------------------------------------------
# The README's main command, as written.

def readme_command(marker: str) -> str:
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    m = re.search(rf"<!-- {marker} -->\n```\n(.*?)\n```\n<!-- /{marker} -->", text, re.S)
    assert m, f"README.md has no {marker} block"
    return m.group(1).strip()


def test_readme_main_command_runs_as_written(tmp_path):
    """`pip install -e . && python run.py --flagfile=flags/hierarchy_cpu.cfg`, from
    the root of a checkout, with its relative experiment_dir; only a tiny
    override is appended so that it takes seconds."""
    command = readme_command("main-command")
    install, main = command.split(" && ")
    assert install == "pip install -e ."  # done by the test command already
    argv = main.split()
    assert argv[:2] == ["python", "run.py"] and argv[2].startswith("--flagfile=flags/")
    # A checkout's root: run.py and flags/ as tracked (the package is installed).
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(RUN, checkout / "run.py")
    shutil.copytree(os.path.join(ROOT, "flags"), checkout / "flags")
    flagfile = open(checkout / argv[2].split("=", 1)[1]).read()
    exp = re.search(r"^--experiment_dir=(\S+)$", flagfile, re.M).group(1)
    assert not os.path.isabs(exp)
    env = dict(ENV)
    env.pop("PYTHONPATH")  # the installed package, as a user has it
    proc = subprocess.run([sys.executable, "run.py", *argv[2:], *TINY_EXPERIMENT], cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    analysis = checkout / exp / "analysis"
    claims = json.load(open(analysis / "claims.json"))
    assert [c["name"] for c in claims["claims"]] == ["H1", "H2", "H3", "H4", "H5"]
    for stem in ("fig2_channel_preference_train", "figB1_channel_preference_random",
                 "figB2_similarity_train", "figB3_similarity_validation"):
        assert png_ok(analysis / f"{stem}.png"), stem
    assert "H1: " in proc.stdout


# --------------------------------------------------------------------------
# Every path relative or absolute, from any working directory.

def test_paths_relative_and_absolute_from_any_working_directory(tmp_path):
    here, there = tmp_path / "here", tmp_path / "else where"
    (here / "flags").mkdir(parents=True)
    there.mkdir()
    # A flagfile with a relative path inside: relative to the working directory.
    (here / "flags" / "tiny.cfg").write_text(
        "\n".join(["--mode=reproduce", "--experiment=hierarchy", f"--experiment_dir={ODD}/exp",
                   "--temperatures=0.1,1.0", *TINY_EXPERIMENT]) + "\n", encoding="utf-8")
    (here / "flags" / "train.cfg").write_text("\n".join([*TRAIN, "--train_steps=3",
                                                         f"--model_dir={ODD}/m"]) + "\n", encoding="utf-8")
    rel_from_there = os.path.relpath(here, there)
    cases = [
        # train with a relative model_dir (from the flagfile), then extend it, relative again
        {"id": "train_rel", "argv": ["--flagfile=flags/train.cfg"], "cwd": str(here)},
        {"id": "train_more_rel", "argv": ["--flagfile=flags/train.cfg", "--train_steps=6"], "cwd": str(here)},
        # probe it from another folder, relative then absolute
        {"id": "probe_rel_elsewhere", "argv": ["--mode=probe", f"--model_dir={rel_from_there}/{ODD}/m",
                                               "--checkpoints=all"], "cwd": str(there)},
        {"id": "probe_abs", "argv": ["--mode=probe", f"--model_dir={here}/{ODD}/m"], "cwd": str(there)},
        # reproduce from a relative flagfile path given in another folder: the
        # flagfile's relative experiment_dir lands in that working directory
        {"id": "reproduce_rel_flagfile", "argv": [f"--flagfile={rel_from_there}/flags/tiny.cfg"],
         "cwd": str(there)},
        # analyze it with a relative path from yet another working directory
        {"id": "analyze_rel", "argv": ["--mode=analyze", f"--experiment_dir=else where/{ODD}/exp"],
         "cwd": str(tmp_path)},
        # reproduce again with the absolute path: everything is done already
        {"id": "reproduce_abs_again", "argv": [f"--flagfile={here}/flags/tiny.cfg",
                                               f"--experiment_dir={there}/{ODD}/exp"], "cwd": str(here)},
    ]
    results = run_cases(cases, tmp_path)
    for case in cases:
        r = results[case["id"]]
        assert r["status"] == 0, (case, r["stderr"][-3000:])
        assert "Traceback" not in r["stderr"], r["stderr"]
    model = here / ODD / "m"
    assert [os.path.basename(p) for p in checkpoints.listed(str(model), "all")][-1] == "ckpt-6"
    assert "resuming from step 3" in results["train_more_rel"]["stdout"]
    probed = json.load(open(model / "probe" / "results.json"))
    assert probed["model_dir"] == str(model)  # the folder probed, absolute
    assert len(probed["over_training"]) == 0 and probed["final"]["step"] == 6
    exp = there / ODD / "exp"
    assert not (here / ODD / "exp").exists()
    assert json.load(open(exp / "analysis" / "claims.json"))["claims"]
    again = results["reproduce_abs_again"]["stdout"]
    assert "already probed" in again and "training already finished" in again


def test_a_moved_folder_is_probed_where_it_is(tmp_path):
    """results.json names the folder actually probed, not the one in config.json."""
    first = run([*TRAIN, "--train_steps=3", "--model_dir=a"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    shutil.move(tmp_path / "a", tmp_path / "b")
    probe = run(["--mode=probe", "--model_dir=b"], cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr[-2000:]
    saved = json.load(open(tmp_path / "b" / "probe" / "results.json"))
    assert saved["model_dir"] == str(tmp_path / "b")
    assert saved["config"]["model_dir"] == str(tmp_path / "b")


# --------------------------------------------------------------------------
# Damaged or missing checkpoint state never restarts a run silently.

def digest(folder) -> dict:
    out = {}
    for path in sorted(glob.glob(os.path.join(folder, "**"), recursive=True)):
        if os.path.isfile(path) and not path.endswith(".lock"):
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return out


def _rewrite(path, fn):
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(fn(data))


DATA = "ckpt/ckpt-9.data-00000-of-00001"
INDEX = "ckpt/ckpt-9.index"
# id -> (damage, substrings of the one-line error, what --recover does: resume step or None = refused)
DAMAGE = {
    "state_deleted": (lambda m: os.remove(m / "ckpt/checkpoint"), ["ckpt/checkpoint: missing", "--recover"], 9),
    "state_garbage": (lambda m: _rewrite(m / "ckpt/checkpoint", lambda d: d.split(b"\n")[0] + b"\n\x00garbage{{\n"),
                      ["ckpt/checkpoint: corrupt", "--recover"], 9),
    "state_empty": (lambda m: _rewrite(m / "ckpt/checkpoint", lambda d: b""),
                    ["ckpt/checkpoint: corrupt", "--recover"], 9),
    "config_deleted": (lambda m: os.remove(m / "config.json"), ["config.json: missing", "ckpt-9"], None),
    "index_zeroed": (lambda m: _rewrite(m / INDEX, lambda d: bytes(len(d))), ["ckpt-9: corrupt checkpoint"], 6),
    "index_truncated": (lambda m: _rewrite(m / INDEX, lambda d: d[: len(d) // 2]),
                        ["ckpt-9: corrupt checkpoint"], 6),
    "data_zeroed": (lambda m: _rewrite(m / DATA, lambda d: bytes(len(d))), ["ckpt-9: corrupt checkpoint"], 6),
    "data_truncated": (lambda m: _rewrite(m / DATA, lambda d: d[: len(d) // 2]),
                       ["ckpt-9: corrupt checkpoint"], 6),
    "data_missing": (lambda m: os.remove(m / DATA), ["names ckpt-9, but its files are missing", "ckpt-9.data-*", "--recover"], 6),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model with checkpoints at steps 3, 6, 9."""
    root = tmp_path_factory.mktemp("trained")
    proc = run([*TRAIN, "--train_steps=9", "--model_dir=m"], cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [os.path.basename(p) for p in checkpoints.on_disk(str(root / "m"))] == ["ckpt-3", "ckpt-6", "ckpt-9"]
    return root / "m"


def test_damaged_folders_are_refused_then_recovered(trained, tmp_path):
    """Each damage: refused with one line and the folder left byte-identical;
    with --recover, resumed from the newest intact checkpoint, the older
    checkpoints byte-identical (or still refused when nothing can be recovered)."""
    cases, before = [], {}
    for cid, (damage, _, _) in DAMAGE.items():
        for name in (cid, cid + "+recover"):
            shutil.copytree(trained, tmp_path / name)
            damage(tmp_path / name)
            before[name] = digest(tmp_path / name)
        argv = [*TRAIN, "--train_steps=12", f"--model_dir={cid}"]
        cases.append({"id": cid, "argv": argv, "cwd": str(tmp_path)})
        cases.append({"id": cid + "+recover", "argv": [*argv[:-1], f"--model_dir={cid}+recover", "--recover"],
                      "cwd": str(tmp_path)})
    results = run_cases(cases, tmp_path)
    for cid, (_, expect, resume) in DAMAGE.items():
        line = one_error_line(results[cid])
        for part in expect:
            assert part in line, (cid, line)
        assert results[cid]["stdout"] == "", results[cid]["stdout"]
        assert digest(tmp_path / cid) == before[cid], cid
        m, recovered = tmp_path / (cid + "+recover"), results[cid + "+recover"]
        if resume is None:  # nothing to recover from: still refused, folder untouched
            one_error_line(recovered)
            assert digest(m) == before[cid + "+recover"]
            continue
        assert recovered["status"] == 0, (cid, recovered)
        assert f"resuming from step {resume} " in recovered["stdout"], (cid, recovered["stdout"])
        assert "warning: --recover" in recovered["stderr"]
        after = digest(m)
        for name, sha in before[cid + "+recover"].items():
            if name.startswith("ckpt/ckpt-") and int(re.search(r"ckpt-(\d+)", name).group(1)) <= resume:
                assert after.get(name) == sha, (cid, name)
        assert os.path.basename(checkpoints.latest_listed(str(m))) == "ckpt-12"
        assert checkpoints.verify(str(m / "ckpt" / "ckpt-12")) is None


def test_probe_names_a_corrupt_checkpoint_in_one_line(trained, tmp_path):
    m = tmp_path / "m"
    shutil.copytree(trained, m)
    _rewrite(m / DATA, lambda d: bytes(len(d)))
    r = run(["--mode=probe", "--model_dir=m"], cwd=tmp_path)
    line = one_error_line({"status": r.returncode, "stderr": r.stderr})
    assert "ckpt-9" in line and "corrupt" in line
    assert not (m / "probe").exists()


def test_a_bad_value_in_config_json_names_the_file(trained, tmp_path):
    m = tmp_path / "m"
    shutil.copytree(trained, m)
    saved = json.load(open(m / "config.json"))
    saved["model"] = "vgg16"
    json.dump(saved, open(m / "config.json", "w"))
    r = run(["--mode=probe", "--model_dir=m"], cwd=tmp_path)
    line = one_error_line({"status": r.returncode, "stderr": r.stderr})
    assert str(m / "config.json") in line and "model" in line and "vgg16" in line


# --------------------------------------------------------------------------
# A full disk is one line; the next run cleans up and resumes.

@contextlib.contextmanager
def small_disk(path, size: str):
    os.makedirs(path)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_is_one_line_and_the_next_run_resumes(trained, tmp_path):
    with small_disk(tmp_path / "disk", "4m") as disk:
        m = disk / "m"
        shutil.copytree(trained, m)
        before = digest(m)
        free = shutil.disk_usage(disk).free
        with open(disk / "filler", "wb") as f:  # leave room for small records, not a checkpoint
            f.write(b"\0" * (free - 24 * 1024))
        r = run([*TRAIN, "--train_steps=12", "--steps_per_loop=3", "--model_dir=m"], cwd=disk)
        line = one_error_line({"status": r.returncode, "stderr": r.stderr}, status=1)
        assert "No space left on device" in line and str(m / "ckpt") in line, line
        after = digest(m)
        for name, sha in before.items():
            if name.startswith("ckpt/ckpt-"):
                assert after[name] == sha, name
        os.remove(disk / "filler")
        again = run([*TRAIN, "--train_steps=12", "--steps_per_loop=3", "--model_dir=m"], cwd=disk)
        assert again.returncode == 0, again.stderr[-2000:]
        assert "resuming from step 9" in again.stdout
        assert not glob.glob(str(m / "ckpt" / "*_temp*"))
        assert os.path.basename(checkpoints.latest_listed(str(m))) == "ckpt-12"


def test_stale_temporaries_of_a_killed_probe_are_removed(trained, tmp_path):
    m = tmp_path / "m"
    shutil.copytree(trained, m)
    (m / "probe").mkdir()
    stale = m / "probe" / ".pca.pdf.k3j_x9ab.tmp"
    stale.write_bytes(b"half a figure")
    r = run(["--mode=probe", "--model_dir=m"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert not stale.exists() and (m / "probe" / "pca.pdf").exists()


# --------------------------------------------------------------------------
# Progress on slow hardware, a default folder, an early lock.

def test_loop_length_follows_the_measured_step_time():
    ll = schedule.LoopLength(0, per_epoch=35)
    assert ll.next() == 1  # the first call also traces and compiles
    ll.observe(1, 20.0)  # a 20 s step (ResNet-18 on a CPU): one step per call
    assert ll.next() == 1
    ll.observe(2, 8.0)
    assert ll.next() == 3  # about LOOP_SECONDS per call
    ll.observe(3, 0.15)  # a fast step: capped at one epoch
    assert ll.next() == 35
    assert schedule.LoopLength(0, per_epoch=1000).next() == 1
    big = schedule.LoopLength(0, per_epoch=1000)
    big.observe(10, 0.01)
    assert big.next() == schedule.MAX_LOOP_STEPS
    assert schedule.LoopLength(4, per_epoch=35).next() == 4  # --steps_per_loop wins


def test_itstime_and_eta():
    # 10 steps per epoch, 35 steps in all: every 2nd epoch end and the last step
    hits = [s for s in range(1, 36) if schedule.itstime(s, 10, 2, 35)]
    assert hits == [20, 35]
    assert not any(schedule.itstime(s, 10, 0, 35) for s in range(1, 36))
    clock = iter([100.0, 110.0, 130.0])
    eta = schedule.Eta(final=100, clock=lambda: next(clock))
    assert eta.update(step=1, steps=1, seconds=50.0) == 99 * 50.0  # first call: its own pace
    assert eta.update(step=11, steps=10, seconds=9.0) == 89 * 10.0 / 10  # 10 s for 10 steps since
    assert eta.update(step=21, steps=10, seconds=9.0) == 79 * 30.0 / 20
    assert schedule.format_eta(3725) == "1h02m05s" and schedule.format_eta(65) == "1m05s"


def test_default_model_dir_and_first_step_line(tmp_path):
    r = run(["--mode=train", *TINY, "--train_steps=2"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.splitlines()
    assert lines[0] == "note: no --model_dir given; training into runs/hierarchy"
    first = next(line for line in lines if line.startswith("first step"))
    assert re.search(r"first step done in [\d.]+ s \(tracing and compilation included\); next loop calls "
                     r"run about \d+ steps; ETA \d+m\d\ds", first), first
    assert checkpoints.listed(str(tmp_path / "runs" / "hierarchy"))


def test_a_second_training_is_refused_before_tensorflow_starts(trained, tmp_path):
    import fcntl
    m = tmp_path / "m"
    shutil.copytree(trained, m)
    fd = os.open(m / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        code = ("import sys, run\ntry:\n    run.main(['run.py', " + ", ".join(
            repr(a) for a in [*TRAIN, "--train_steps=12", f"--model_dir={m}"]) +
            "])\nexcept SystemExit as e:\n    print(e.code, 'tensorflow' in sys.modules)\n")
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                             timeout=120, env=ENV)
    finally:
        os.close(fd)
    assert out.stdout.split() == ["2", "False"], (out.stdout, out.stderr)
    assert "is in use by another run" in out.stderr and len(out.stderr.splitlines()) == 1
