"""Reliability: kill -9 at any moment resumes to the bit, SIGTERM and
SIGINT save and stop, a non-finite loss keeps the last good checkpoint, every
file the package writes is atomic and readable back or named when corrupt, no
pickle anywhere, results carry their provenance.

The training runs are `python run.py --mode=train` processes on a tiny
hierarchy (64 items, 3 steps per epoch, a checkpoint every epoch, one step
per loop call, --deterministic) compared with one uninterrupted run.
"""
from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from simclr_controlled import datasets, input_pipeline, files, train, workdir
from simclr_controlled.config import LOCKED, Config
from simclr_controlled.errors import UsageError

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PACKAGE = os.path.join(ROOT, "simclr_controlled")
RUN = os.path.join(ROOT, "run.py")
HELPER = os.path.join(HERE, "reliability_helper.py")

EPOCHS = 14
STEPS = 3 * EPOCHS  # 58 training items, batch 16
ARGS = ["--mode=train", "--branching=4,4,4", "--mask_size=16", "--crop_size=12", "--train_batch_size=16",
        "--checkpoint_epochs=1", "--steps_per_loop=1", "--deterministic", f"--train_epochs={EPOCHS}",
        "--strategy=one_device"]
PROGRESS = re.compile(r"^epoch .* step (\d+)/(\d+) ")
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")


def start(model_dir, *prefix: str, stdout=subprocess.PIPE, stderr=subprocess.PIPE) -> subprocess.Popen:
    cmd = [sys.executable, *(prefix or [RUN]), *ARGS, f"--model_dir={model_dir}"]
    return subprocess.Popen(cmd, env=ENV, stdout=stdout, stderr=stderr, text=True)


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def read_until(proc: subprocess.Popen, lines: int) -> list[str]:
    """stdout lines up to and including the `lines`-th progress line."""
    seen, n = [], 0
    while n < lines:
        line = proc.stdout.readline()
        assert line, f"run ended before {lines} progress lines: {seen} {proc.stderr.read()[-2000:]}"
        seen.append(line)
        n += bool(PROGRESS.match(line))
    return seen


def checkpoint_step(model_dir) -> int:
    """Step of the checkpoint the state file names (0: none)."""
    name = workdir.checkpoint_listed(str(model_dir))
    return int(name.rsplit("-", 1)[-1]) if name else 0


def checkpoint_tensors(model_dir) -> dict[str, np.ndarray]:
    """Every saved tensor of the latest checkpoint except save_counter (how many saves)."""
    reader = tf.train.load_checkpoint(os.path.join(str(model_dir), "ckpt"))
    names = [n for n in reader.get_variable_to_shape_map()
             if not n.startswith(("save_counter", "_CHECKPOINTABLE_OBJECT_GRAPH"))]
    weights = [n for n in names if n.startswith("model_weights/")]
    assert len(weights) >= 10, names  # LeNet + head: 5 kernels and 5 biases
    return {n: reader.get_tensor(n) for n in names}


def assert_same_run(model_dir, reference) -> None:
    """Bitwise-equal checkpoint (weights, Adam slots, step) and metrics of every step once."""
    got, want = checkpoint_tensors(model_dir), checkpoint_tensors(reference)
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name].dtype == want[name].dtype and got[name].shape == want[name].shape, name
        assert got[name].tobytes() == want[name].tobytes(), f"{name} differs"
    rec = lambda d: [{k: r[k] for k in ("step", "loss", "contrastive_accuracy", "projection_std")}  # noqa: E731
                     for r in files.read_jsonl(os.path.join(str(d), "metrics.jsonl"))]
    assert rec(model_dir) == rec(reference)
    assert [r["step"] for r in rec(model_dir)] == list(range(1, STEPS + 1))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same command uninterrupted, started first so that it overlaps the
    interrupted runs. A `python run.py` process like theirs: the test process
    has oneDNN off (conftest.py), and kernels must match for a bitwise compare."""
    model_dir = tmp_path_factory.mktemp("reference") / "m"
    log = model_dir.parent / "stderr.txt"
    with open(log, "w") as err:  # a file, not a pipe nobody reads while it runs
        proc = start(model_dir, stdout=subprocess.DEVNULL, stderr=err)

    def get():
        code = proc.wait(300)
        assert code == 0, log.read_text()[-3000:]
        return model_dir

    yield get
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_kill9_and_sigterm_at_seeded_points_resume_bitwise(tmp_path, reference):
    """One model_dir, interrupted four times, then run to the end:
    SIGKILL inside steps (seeded: after k progress lines plus a random wait),
    SIGKILL inside a checkpoint save (its files written then torn, the state
    file not yet naming it), SIGTERM (saves, says how to resume, exit 143),
    SIGKILL again. Every rerun resumes from the last complete checkpoint and
    the end result equals an uninterrupted run bit for bit."""
    reference  # the uninterrupted run starts now
    rng = np.random.default_rng(7)
    model_dir = tmp_path / "m"
    plan = [("kill", int(rng.integers(1, 4)), float(rng.uniform(0, 0.05))),
            ("kill_in_save", 3 * int(rng.integers(1, 3)), None),
            ("term", int(rng.integers(2, 5)), None),
            ("kill", int(rng.integers(2, 5)), float(rng.uniform(0, 0.05)))]
    resume_from = 0
    for kind, arg, wait in plan:
        if kind == "kill_in_save":
            save_step = resume_from + 3 + arg  # a later save of this run
            proc = start(model_dir, HELPER, "die_in_save", str(save_step))
        else:
            proc = start(model_dir)
        seen = read_until(proc, 1)
        head = "".join(seen)
        if resume_from:
            assert f"resuming from step {resume_from} " in head, head
        else:
            assert "resuming" not in head, head
        if kind == "kill":
            read_until(proc, arg - 1)
            time.sleep(wait)
            proc.send_signal(signal.SIGKILL)
        elif kind == "term":
            seen += read_until(proc, arg - 1)
            proc.send_signal(signal.SIGTERM)
        code, rest, err = finish(proc)
        if kind == "term":
            assert code == 128 + signal.SIGTERM, err[-2000:]
            last = max(int(m.group(1)) for m in map(PROGRESS.match, "".join(seen + [rest]).splitlines()) if m)
            assert f"stopped by signal {int(signal.SIGTERM)} at step {last}/{STEPS}" in err, err
            assert "rerun the same command to resume" in err and "Traceback" not in err, err
            assert checkpoint_step(model_dir) == last
        else:
            assert code == -signal.SIGKILL, (code, err[-2000:])
        if kind == "kill_in_save":
            assert (model_dir / "ckpt" / f"ckpt-{save_step}.index").exists()
            assert checkpoint_step(model_dir) == save_step - 3
        # everything else the run wrote is whole
        files.read_json(str(model_dir / "config.json"))
        files.read_jsonl(str(model_dir / "metrics.jsonl"))
        resume_from = checkpoint_step(model_dir)
        assert resume_from < STEPS
    code, out, err = finish(start(model_dir))
    assert code == 0, err[-3000:]
    assert (f"resuming from step {resume_from} " in out) if resume_from else ("resuming" not in out), out
    assert_same_run(model_dir, reference())


def test_config_json_records_the_locked_settings_and_provenance(reference):
    saved = files.read_json(os.path.join(str(reference()), "config.json"))
    assert {k: saved[k] for k in ("branching", "mask_size", "crop_size", "train_batch_size")} == \
        {"branching": [4, 4, 4], "mask_size": 16, "crop_size": 12, "train_batch_size": 16}
    assert all(k in saved for k in LOCKED)
    prov = saved["provenance"]
    assert prov["versions"]["tensorflow"] == tf.__version__
    assert prov["versions"]["numpy"] == np.__version__
    assert prov["versions"]["simclr_controlled"]
    mode = os.stat(os.path.join(str(reference()), "config.json")).st_mode & 0o777
    assert mode == 0o666 & ~_umask()


# ---------------------------------------------------------------- in-process

SMALL = dict(dataset="hierarchy", branching=(4, 4, 4), mask_size=16, crop_size=12, model="lenet",
             augment="crop", temperature=0.5, train_batch_size=16, train_epochs=4, learning_rate=1e-3,
             deterministic=True, checkpoint_epochs=1, steps_per_loop=1)


def small(tmp_path, **kw):
    config = Config(model_dir=str(tmp_path), **{**SMALL, **kw})
    return config, datasets.get_dataset("hierarchy", seed=0, **config.dataset_params())


def epoch_items(data, config, epoch: int) -> list[np.ndarray]:
    """The item indices of each step of `epoch`, from the training pipeline itself."""
    per_epoch = len(data.train_idx) // config.train_batch_size
    fn = input_pipeline.train_input_fn(data.images, data.train_idx, global_batch_size=config.train_batch_size,
                                       seed=config.seed, augment_fn=lambda b, s: b,
                                       start_step=epoch * per_epoch, total_steps=(epoch + 1) * per_epoch)
    return [b["index"].numpy() for b in fn(None)]


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    config, data = small(tmp_path)
    # NaN images for the items that epoch 0 leaves out: epoch 0 is clean (its
    # checkpoint, step 3, is good); the first step of epoch 1 that draws one is not.
    used = np.concatenate(epoch_items(data, config, 0))
    bad = np.setdiff1d(data.train_idx, used)
    assert len(bad) == len(data.train_idx) - 3 * 16
    first_bad = next(3 + i + 1 for i, idx in enumerate(epoch_items(data, config, 1)) if np.isin(idx, bad).any())
    images = data.images.copy()
    images[bad] = np.nan
    poisoned = dataclasses.replace(data, images=images)
    with pytest.raises(train.NonFiniteLoss) as e:
        train.train(config, poisoned, log=lambda s: None)
    msg = str(e.value)
    # LeNet's max-pool turns all-NaN windows into a finite value, so the loss
    # itself may stay finite: the gradients are what turns non-finite.
    assert msg.startswith("training stopped: non-finite ") and f" at step {first_bad} (" in msg, msg
    assert "last good checkpoint, step 3," in msg and str(tmp_path / "ckpt") in msg, msg
    assert checkpoint_step(tmp_path) == 3
    later = [f for f in os.listdir(tmp_path / "ckpt") if re.match(r"ckpt-(\d+)\.", f) and
             int(re.match(r"ckpt-(\d+)\.", f).group(1)) > 3]
    assert later == []
    tensors = checkpoint_tensors(tmp_path)
    assert all(np.isfinite(v).all() for v in tensors.values() if v.dtype.kind == "f")
    assert [r["step"] for r in files.read_jsonl(str(tmp_path / "metrics.jsonl"))] == list(range(1, first_bad))


def test_sigint_saves_a_checkpoint_and_the_rerun_resumes(tmp_path):
    assert threading.current_thread() is threading.main_thread()
    config, data = small(tmp_path, train_epochs=2)
    old_handler = signal.getsignal(signal.SIGINT)

    def log(line):
        if line.startswith("epoch") and " step 4/" in line:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(train.Interrupted) as e:
        train.train(config, data, log=log)
    assert e.value.signum == signal.SIGINT
    assert "at step 4/6" in str(e.value) and "rerun the same command to resume" in str(e.value)
    assert signal.getsignal(signal.SIGINT) is old_handler  # handlers restored
    assert checkpoint_step(tmp_path) == 4
    out = train.train(config, data, log=lambda s: None)
    assert out["resumed_from"] == 4 and out["step"] == 6


# ---------------------------------------------------------------- files

def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_atomic_write_gives_ordinary_file_modes(tmp_path):
    old = os.umask(0o027)
    try:
        files.atomic_write_text(str(tmp_path / "a.txt"), "x\n")
        assert os.stat(tmp_path / "a.txt").st_mode & 0o777 == 0o640
    finally:
        os.umask(old)
    files.atomic_write_json(str(tmp_path / "b.json"), {"a": 1})
    assert os.stat(tmp_path / "b.json").st_mode & 0o777 == 0o666 & ~old


def test_atomic_write_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / "results.json"
    files.atomic_write_json(str(path), {"v": 1})

    def half_then_fail(tmp):
        with open(tmp, "w") as f:
            f.write('{"v": 2, "trunc')
        raise OSError("disk full")

    with pytest.raises(OSError):
        files.atomic_write(str(path), half_then_fail)
    assert files.read_json(str(path)) == {"v": 1}
    assert os.listdir(tmp_path) == ["results.json"]  # no temporary file left
    files.append_jsonl(str(tmp_path / "m.jsonl"), {"step": 1})
    files.append_jsonl(str(tmp_path / "m.jsonl"), {"step": 2})
    assert files.read_jsonl(str(tmp_path / "m.jsonl")) == [{"step": 1}, {"step": 2}]


@pytest.mark.parametrize("name, text, reader, expect", [
    ("config.json", '{"dataset": "hierarchy", "seed"', files.read_json, "corrupt or truncated JSON"),
    ("config.json", "", files.read_json, "corrupt or truncated JSON"),
    ("results.json", '{"final": {"step": 3', files.read_json, "corrupt or truncated JSON"),
    ("results.json", b"\xff\xfe{}", files.read_json, "not UTF-8"),
    ("metrics.jsonl", '{"step": 1}\n{"step": 2, "lo', files.read_jsonl, "line 2"),
    ("metrics.jsonl", '{"step": 1}\n[1, 2]\n', files.read_jsonl, "line 2 (not a JSON object)"),
    ("missing.json", None, files.read_json, "file not found"),
])
def test_corrupt_files_raise_usage_error_naming_the_file(tmp_path, name, text, reader, expect):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text)
    with pytest.raises(UsageError) as e:
        reader(str(path))
    msg = str(e.value)
    assert msg.startswith(f"{path}: ") and expect in msg and "\n" not in msg, msg


def test_a_non_object_config_json_is_named(tmp_path):
    (tmp_path / "config.json").write_text("[1, 2]\n")
    with pytest.raises(UsageError, match=r"config\.json: corrupt config"):
        workdir.saved_config(str(tmp_path))


def _package_sources() -> dict[str, str]:
    files = [RUN]
    for folder, _, names in os.walk(PACKAGE):
        files += [os.path.join(folder, n) for n in names if n.endswith(".py")]
    assert len(files) > 20
    return {f: open(f, encoding="utf-8").read() for f in files}


def test_no_pickle_anywhere():
    """Results are JSON and TF checkpoints only: nothing imports pickle or loads with allow_pickle."""
    bad = re.compile(r"^\s*(import|from)\s+(pickle|cPickle|_pickle|dill|joblib|shelve)\b|"
                     r"\bpickle\.|allow_pickle\s*=\s*True", re.M)
    hits = {f: m.group(0) for f, text in _package_sources().items() if (m := bad.search(text))}
    assert hits == {}


def test_every_writer_goes_through_atomic_io():
    """Outside files.py no package code opens a file for writing, dumps JSON/arrays
    to a file, or saves a figure except into atomic_write's temporary path."""
    writes = re.compile(r"open\([^)]*,\s*['\"](w|a|x)b?\+?['\"]|json\.dump\(|np\.save|\.tofile\(|"
                        r"\.write_text\(|\.write_bytes\(|shutil\.copy|to_csv\(")
    hits = {}
    for path, text in _package_sources().items():
        if path.endswith(os.path.join("simclr_controlled", "files.py")):
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if writes.search(line) or ("savefig(" in line and "tmp" not in line):
                hits[f"{os.path.relpath(path, ROOT)}:{n}"] = line.strip()
    assert hits == {}
    # and the writers of the results files all record provenance
    for name in ("workdir.py", "modes/probe.py", "modes/analyze.py", "modes/experiment.py"):
        assert "files.provenance()" in open(os.path.join(PACKAGE, name)).read(), name


def test_provenance_records_versions_and_commit():
    prov = files.provenance()
    assert prov["versions"]["tensorflow"] == tf.__version__
    assert prov["versions"]["numpy"] == np.__version__
    inside_git = subprocess.run(["git", "-C", PACKAGE, "rev-parse", "HEAD"], capture_output=True, text=True)
    if inside_git.returncode == 0:
        assert prov["git_commit"] == inside_git.stdout.strip()
        assert isinstance(prov["git_dirty"], bool)
    else:
        assert prov["git_commit"] is None


def test_run_lock_refuses_a_second_run_and_clears_stale_temporaries(tmp_path):
    (tmp_path / ".metrics.jsonl.k3j2.tmp").write_text('{"step": 1')
    (tmp_path / ".config.json.x1.tmp").write_text("{")
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n')
    with workdir.run_lock(str(tmp_path)):
        assert sorted(os.listdir(tmp_path)) == [".lock", "metrics.jsonl"]
        with pytest.raises(UsageError, match=r"^--model_dir: .* in use by another run"):
            with workdir.run_lock(str(tmp_path)):
                pass
    with workdir.run_lock(str(tmp_path)):  # released on exit
        pass
