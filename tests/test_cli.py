"""The command line on bad input, and the config lock.

Every bad-input case must exit 2 with exactly one line on stderr that names
the flag or file, print no traceback, and leave the disk as it was (the tree
of its folder, with sizes, modes and mtimes, is compared before and after).
Most cases run through `run.main` in one helper process
(tests/reliability_helper.py), so TensorFlow starts once; the cases marked
PROCESS run as a real `python run.py` each.

Unwritable folders: the tests run as root, which ignores permission bits, so
"cannot write" is tested with a path below a FILE and with /proc/1 (which
`os.access` reports unwritable even for root).
"""
from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import subprocess
import sys

import pytest

from simclr_controlled import config as config_lib
from simclr_controlled import workdir
from simclr_controlled.config import LOCKED, Config
from simclr_controlled.errors import UsageError

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RUN = os.path.join(ROOT, "run.py")

TINY = ["--branching=4,4,4", "--mask_size=16", "--crop_size=12", "--train_batch_size=16", "--train_steps=1"]
MD = "--model_dir={d}/m"
PROCESS = "process"

TINY_CONFIG = Config(mode="train", dataset="hierarchy", branching=(4, 4, 4), mask_size=16, crop_size=12,
                     train_batch_size=16, train_steps=1).with_dataset_defaults()

# id, argv ({d}: the case's own folder), setup, substrings the one line must contain[, PROCESS]
CASES = [
    ("batch_zero", ["--mode=train", MD, *TINY, "--train_batch_size=0"],
     "", ["--train_batch_size", "positive integer"], PROCESS),
    ("batch_negative", ["--mode=train", MD, *TINY, "--train_batch_size=-8"],
     "", ["--train_batch_size", "positive integer"]),
    # Resource bombs and edge values: refused by config.validate before TensorFlow starts.
    ("batch_one", ["--mode=train", MD, *TINY, "--train_batch_size=1"],
     "", ["--train_batch_size", "at least 2", "no negatives"], PROCESS),
    ("width_multiplier_memory_bomb", ["--mode=train", MD, "--width_multiplier=1000"],
     "", ["--width_multiplier", "1000 needs about", "more than this machine's", "allowed here: at most"],
     PROCESS),
    ("width_multiplier_memory_bomb_resnet", ["--mode=train", MD, "--dataset=dsprites_mod",
                                             "--width_multiplier=1000"],
     "", ["--width_multiplier", "TiB", "more than this machine's"]),
    ("head_widths_memory_bomb", ["--mode=train", MD, "--head_widths=1000000000,128,128"],
     "", ["--head_widths", "1000000000,128,128 needs about", "more than this machine's"], PROCESS),
    ("train_epochs_int64_max", ["--mode=train", MD, "--train_epochs=9223372036854775807"],
     "", ["--train_epochs", "allowed: 1 to 1,000,000"], PROCESS),
    ("crop_size_below_lenet_minimum", ["--mode=train", MD, "--crop_size=5"],
     "", ["--crop_size", "at least 11x11", "allowed: 11 to mask_size=38", "got 5"], PROCESS),
    ("batch_larger_than_dataset", ["--mode=train", MD, *TINY, "--train_batch_size=512"],
     "", ["--train_batch_size", "58 training items"], PROCESS),
    ("batch_not_divisible_by_replicas", ["--mode=train", MD, *TINY, "--strategy=mirrored",
                                         "--train_batch_size=15"], "",
     ["--train_batch_size", "divisible", "replicas (2)"]),
    ("temperature_zero", ["--mode=train", MD, *TINY, "--temperature=0"], "", ["--temperature", "> 0"]),
    ("temperature_negative", ["--mode=train", MD, *TINY, "--temperature=-0.5"], "", ["--temperature", "> 0"]),
    ("temperature_nan", ["--mode=train", MD, *TINY, "--temperature=nan"], "", ["--temperature", "finite"]),
    ("unknown_dataset", ["--mode=train", MD, "--dataset=mnist"],
     "", ["--dataset", "hierarchy, dsprites_mod"]),
    ("unknown_model", ["--mode=train", MD, *TINY, "--model=vgg16"], "", ["--model", "lenet, resnet18"]),
    ("unknown_augment", ["--mode=train", MD, *TINY, "--augment=blur"], "", ["--augment", "crop"]),
    ("augment_of_other_dataset", ["--mode=train", MD, "--dataset=dsprites_mod", "--augment=crop"], "",
     ["--augment", "crop_jitter"]),
    ("unknown_mode", ["--mode=fit"], "", ["--mode", "train", "probe"]),
    ("unknown_strategy", ["--mode=train", MD, *TINY, "--strategy=gpu"], "", ["--strategy", "mirrored"]),
    ("crop_larger_than_image", ["--mode=train", MD, "--branching=4,4,4", "--mask_size=16",
                                "--crop_size=20"], "",
     ["--crop_size", "mask_size=16"]),
    ("mask_size_zero", ["--mode=train", MD, "--branching=4,4,4", "--mask_size=0", "--crop_size=12"], "",
     ["--mask_size", "positive integer"]),
    ("branching_zero", ["--mode=train", MD, "--branching=4,0,4", "--mask_size=16", "--crop_size=12"], "",
     ["--branching", "positive integers"]),
    ("branching_not_integer", ["--mode=train", MD, "--branching=4,2.5,4", "--mask_size=16",
                               "--crop_size=12"], "",
     ["--branching", "positive integers"]),
    ("branching_empty", ["--mode=train", MD, "--branching=,"], "", ["--branching", "positive integers"]),
    ("width_multiplier_zero", ["--mode=train", MD, *TINY, "--width_multiplier=0"],
     "", ["--width_multiplier", "> 0"]),
    ("width_multiplier_negative", ["--mode=train", MD, *TINY, "--width_multiplier=-1"],
     "", ["--width_multiplier", "> 0"]),
    ("head_widths_two", ["--mode=train", MD, *TINY, "--head_widths=64,32"], "", ["--head_widths", "three"]),
    ("val_fraction_one", ["--mode=train", MD, *TINY, "--val_fraction=1"], "", ["--val_fraction", "(0, 1)"]),
    ("seed_negative", ["--mode=train", MD, *TINY, "--seed=-1"], "", ["--seed", "[0, "]),
    ("learning_rate_zero", ["--mode=train", MD, *TINY, "--learning_rate=0"], "", ["--learning_rate", "> 0"]),
    ("train_epochs_zero", ["--mode=train", MD, "--branching=4,4,4", "--mask_size=16", "--crop_size=12",
                           "--train_epochs=0"], "", ["--train_epochs", "positive integer"]),
    ("checkpoint_epochs_zero", ["--mode=train", MD, *TINY, "--checkpoint_epochs=0"],
     "", ["--checkpoint_epochs", "positive"]),
    ("keep_checkpoint_max_zero", ["--mode=train", MD, *TINY, "--keep_checkpoint_max=0"], "",
     ["--keep_checkpoint_max", "positive"]),
    ("jit_compile_bad", ["--mode=train", MD, *TINY, "--jit_compile=yes"],
     "", ["--jit_compile", "auto, on, off"]),
    ("mixed_precision_bad", ["--mode=train", MD, *TINY, "--mixed_precision=fp16"],
     "", ["--mixed_precision", "bfloat16"]),
    ("shape_bad", ["--mode=show", MD, "--dataset=dsprites_mod", "--shape=triangle"],
     "", ["--shape", "square"]),
    ("multi_worker_without_tf_config", ["--mode=train", MD, *TINY, "--strategy=multi_worker"],
     "", ["TF_CONFIG"]),
    ("model_dir_is_a_file", ["--mode=train", "--model_dir={d}/afile", *TINY],
     "file", ["--model_dir", "is a file"], PROCESS),
    ("model_dir_below_a_file", ["--mode=train", "--model_dir={d}/afile/sub", *TINY], "file",
     ["--model_dir", "afile is a file"]),
    ("model_dir_unwritable_proc", ["--mode=train", "--model_dir=/proc/1/simclr_test", *TINY], "",
     ["--model_dir", "not writable"]),
    ("probe_without_model_dir", ["--mode=probe"], "", ["--model_dir", "required"]),
    ("probe_missing_model_dir", ["--mode=probe", "--model_dir={d}/nothere"],
     "", ["--model_dir", "does not exist"]),
    ("probe_model_dir_is_a_file", ["--mode=probe", "--model_dir={d}/afile"],
     "file", ["--model_dir", "is a file"]),
    ("probe_without_checkpoint", ["--mode=probe", MD], "model", ["--model_dir", "no checkpoint"]),
    ("probe_corrupt_config_json", ["--mode=probe", MD],
     "corrupt_config", ["config.json", "corrupt"], PROCESS),
    ("probe_bad_checkpoints", ["--mode=probe", MD, "--checkpoints=some"],
     "model", ["--checkpoints", "latest, all"]),
    ("probe_decoder_epochs_zero", ["--mode=probe", MD, "--decoder_epochs=0"],
     "model", ["--decoder_epochs", "positive"]),
    ("probe_mlp_on_hierarchy", ["--mode=probe", MD, "--mlp_probe"], "lost_checkpoint",
     ["--mlp_probe", "hierarchy model", "no decoders"]),
    ("reproduce_mlp_probe_hierarchy", ["--mode=reproduce", "--experiment=hierarchy",
                                       "--experiment_dir={d}/e", "--mlp_probe"],
     "", ["--mlp_probe", "feature_suppression", "no decoders"]),
    ("analyze_without_experiment_dir", ["--mode=analyze"], "", ["--experiment_dir", "required"]),
    ("analyze_without_experiment_json", ["--mode=analyze", "--experiment_dir={d}"],
     "", ["experiment.json", "not found"]),
    ("analyze_corrupt_results_json", ["--mode=analyze", "--experiment_dir={d}/e"], "corrupt_results",
     ["results.json", "corrupt"]),
    ("reproduce_without_experiment", ["--mode=reproduce", "--experiment_dir={d}/e"],
     "", ["--experiment", "hierarchy"]),
    ("reproduce_bad_temperatures", ["--mode=reproduce", "--experiment=hierarchy", "--experiment_dir={d}/e",
                                    "--temperatures=0.1,abc"], "", ["--temperatures", "numbers"]),
    ("reproduce_bad_augment_presets", ["--mode=reproduce", "--experiment=dsprites_mod",
                                       "--experiment_dir={d}/e", "--augment_presets=none,blur"],
     "", ["--augment_presets", "crop_jitter"]),
    ("bad_preset", ["--mode=reproduce", "--experiment=hierarchy", "--preset=gpu"],
     "", ["--preset", "cpu, paper"]),
    ("preset_without_experiment", ["--mode=reproduce", "--preset=cpu"], "", ["--experiment", "required"]),
    ("missing_flagfile", ["--flagfile={d}/missing.cfg"], "", ["--flagfile", "missing.cfg"]),
    ("unknown_flag_in_flagfile", ["--flagfile={d}/bad.cfg"], "flagfile", ["--nope", "unknown flag"]),
    ("unknown_flag", ["--mode=train", MD, "--temprature=0.5"],
     "", ["--temprature", "unknown flag", "--temperature"], PROCESS),
    ("integer_flag_not_numeric", ["--mode=train", MD, "--train_batch_size=abc"],
     "", ["--train_batch_size", "an integer", "abc"]),
    ("integer_flag_given_float", ["--mode=train", MD, "--train_epochs=2.5"],
     "", ["--train_epochs", "an integer"]),
    ("float_flag_not_numeric", ["--mode=train", MD, "--temperature=warm"], "", ["--temperature", "a number"]),
    ("bool_flag_bad", ["--mode=train", MD, "--deterministic=maybe"],
     "", ["--deterministic", "true or false"]),
    ("flag_without_value", ["--mode"], "", ["--mode", "missing value"]),
    ("positional_argument", ["--mode=train", MD, "extra"], "", ["'extra'", "--name=value"]),
    ("lock_other_temperature", ["--mode=train", MD, *TINY, "--temperature=0.1"], "model",
     ["--temperature", "temperature=0.5", "not 0.1"]),
    ("lock_other_branching", ["--mode=train", MD, "--branching=4,4,2", "--mask_size=16",
                              "--crop_size=12"], "model",
     ["--branching", "[4, 4, 4]", "[4, 4, 2]"]),
    ("model_dir_in_use", ["--mode=train", MD, *TINY], "in_use", ["--model_dir", "in use by another run"]),
    ("checkpoint_files_missing", ["--mode=train", MD, *TINY], "lost_checkpoint", ["ckpt-9.index", "missing"]),
    ("resnet_stem_bad", ["--mode=train", MD, *TINY, "--resnet_stem=vgg"],
     "", ["--resnet_stem", "cifar, imagenet"]),
    ("train_corrupt_config_json", ["--mode=train", MD, *TINY], "corrupt_config", ["config.json", "corrupt"]),
    ("train_truncated_metrics_jsonl", ["--mode=train", MD, *TINY],
     "corrupt_metrics", ["metrics.jsonl", "line 2"]),
]


def _setup(d: str, kind: str) -> None:
    os.makedirs(d)
    if kind == "file":
        with open(os.path.join(d, "afile"), "w") as f:
            f.write("not a folder\n")
    if kind in ("model", "corrupt_config", "corrupt_metrics", "in_use", "lost_checkpoint"):
        os.makedirs(os.path.join(d, "m"))
        text = json.dumps(dataclasses.replace(TINY_CONFIG, model_dir=os.path.join(d, "m")).to_json())
        with open(os.path.join(d, "m", "config.json"), "w") as f:
            f.write(text[: len(text) // 2] if kind == "corrupt_config" else text)
    if kind == "corrupt_metrics":
        with open(os.path.join(d, "m", "metrics.jsonl"), "w") as f:
            f.write('{"step": 1, "loss": 6.9}\n{"step": 2, "lo')
    if kind == "in_use":
        with open(os.path.join(d, "m", ".lock"), "w"):
            pass
    if kind == "lost_checkpoint":
        os.makedirs(os.path.join(d, "m", "ckpt"))
        with open(os.path.join(d, "m", "ckpt", "checkpoint"), "w") as f:
            f.write('model_checkpoint_path: "ckpt-9"\nall_model_checkpoint_paths: "ckpt-9"\n')
    if kind == "corrupt_results":
        os.makedirs(os.path.join(d, "e", "t", "probe"))
        with open(os.path.join(d, "e", "experiment.json"), "w") as f:
            json.dump({"experiment": "hierarchy", "models": {"t": "t"}}, f)
        with open(os.path.join(d, "e", "t", "probe", "results.json"), "w") as f:
            f.write('{"final": {"step": 3, "channel_pref')
    if kind == "flagfile":
        with open(os.path.join(d, "bad.cfg"), "w") as f:
            f.write("--mode=train\n--nope=1\n")


def tree_state(root: str) -> dict:
    """Every path below root with its type, size, mode and mtime."""
    state = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(folder, name)
            st = os.lstat(p)
            state[os.path.relpath(p, root)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    st = os.lstat(root)
    state["."] = (st.st_mode, st.st_mtime_ns)
    return state


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """Runs every case (helper process + real processes, concurrently)."""
    root = tmp_path_factory.mktemp("bad_input")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    env.pop("TF_CONFIG", None)
    folders, before, procs, helper_cases = {}, {}, {}, []
    for case in CASES:
        cid, argv, kind = case[0], case[1], case[2]
        d = str(root / cid)
        _setup(d, kind)
        folders[cid] = d
        before[cid] = tree_state(d)
        args = [a.replace("{d}", d) for a in argv]
        if case[-1] == PROCESS:
            procs[cid] = subprocess.Popen([sys.executable, RUN, *args], cwd=d, env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        else:
            helper_cases.append({"id": cid, "argv": args, "cwd": d})
    with open(root / "cases.json", "w") as f:
        json.dump(helper_cases, f)
    # "another run" holds the run lock of the in_use case while the helper runs
    held = [os.open(os.path.join(folders[c[0]], "m", ".lock"), os.O_RDWR) for c in CASES if c[2] == "in_use"]
    for fd in held:
        fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        helper = subprocess.run([sys.executable, os.path.join(HERE, "reliability_helper.py"), "cases",
                                 str(root / "cases.json"), str(root / "results.json")],
                                env=env, capture_output=True, text=True, timeout=600)
    finally:
        for fd in held:
            os.close(fd)
    assert helper.returncode == 0, helper.stderr[-3000:]
    with open(root / "results.json") as f:
        results = json.load(f)
    for cid, p in procs.items():
        out, err = p.communicate(timeout=600)
        results[cid] = {"status": p.returncode, "stdout": out, "stderr": err}
    return {cid: (results[cid], before[cid], tree_state(folders[cid])) for cid in folders}


def test_table_is_large_enough():
    assert len(CASES) >= 25
    assert len({c[0] for c in CASES}) == len(CASES)
    assert sum(c[-1] == PROCESS for c in CASES) >= 5


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(table, case):
    result, before, after = table[case[0]]
    err = result["stderr"]
    assert result["status"] == 2, result
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), f"stderr must be one line, got {err!r}"
    assert lines[0].startswith("error: "), lines[0]
    for part in case[3]:
        assert part in lines[0], (part, lines[0])
    assert result["stdout"] == "", result["stdout"]
    assert after == before, "the case changed its folder"


def test_validate_needs_no_tensorflow_and_matches_libraries():
    """validate's copies of the model and augmentation names are the libraries'."""
    from simclr_controlled import augment, models
    from simclr_controlled.datasets import dsprites_mod
    assert config_lib.MODEL_NAMES == models.MODELS
    assert config_lib.AUGMENT_PRESETS == augment.PRESETS
    assert config_lib.SHAPES == dsprites_mod.SHAPES


def test_fixed_choice_flags_are_enums_of_the_names():
    """Every fixed-choice flag of run.py is an absl enum of its values in names.py."""
    import run
    from simclr_controlled import names
    for flag, allowed in names.FLAG_CHOICES.items():
        expected = ("",) + allowed if flag in names.MAY_BE_EMPTY else allowed
        assert run.F[flag].flag_type() == "string enum", flag
        assert tuple(run.F[flag].parser.enum_values) == expected, flag
    assert set(names.AUGMENTATIONS_BY_DATASET) == set(names.DATASETS)
    assert {a for v in names.AUGMENTATIONS_BY_DATASET.values() for a in v} == set(names.AUGMENTATIONS)


# Values that library functions refused with a UsageError before config.validate
# became the one check of flag values; they now assert them (tests/test_losses.py,
# tests/test_models.py, tests/test_dsprites_mod.py, tests/test_augment.py expect an
# AssertionError there). validate refuses each, naming the flag.
DSPRITES_CONFIG = Config(mode="train", dataset="dsprites_mod").with_dataset_defaults()
VALIDATE_OWNS = [
    (TINY_CONFIG, "temperature", 0.0), (TINY_CONFIG, "temperature", -0.5),
    (TINY_CONFIG, "temperature", float("nan")), (TINY_CONFIG, "temperature", float("inf")),
    (TINY_CONFIG, "temperature", None), (TINY_CONFIG, "temperature", "0.5"),
    (TINY_CONFIG, "width_multiplier", 0), (TINY_CONFIG, "width_multiplier", -1.0),
    (TINY_CONFIG, "width_multiplier", float("nan")),
    (TINY_CONFIG, "seed", -1), (DSPRITES_CONFIG, "seed", -1),
    # crop_size: absent, and larger than the images (mask_size 16).
    (TINY_CONFIG, "crop_size", None), (TINY_CONFIG, "crop_size", 17), (TINY_CONFIG, "crop_size", 20),
]


@pytest.mark.parametrize("base, flag, value", VALIDATE_OWNS,
                         ids=[f"{b.dataset}-{f}-{v!r}" for b, f, v in VALIDATE_OWNS])
def test_validate_refuses_what_libraries_assert(base, flag, value):
    with pytest.raises(UsageError, match=f"^--{flag}: ") as e:
        config_lib.validate(dataclasses.replace(base, **{flag: value}), memory_bytes=0)
    assert f"got {value!r}" in str(e.value)


def test_bad_flags_fail_before_tensorflow_starts(tmp_path):
    code = ("import sys, run\n"
            "try:\n    run.main(['run.py', '--mode=train', '--model_dir=" + str(tmp_path / "m") + "',"
            " '--temperature=0'])\nexcept SystemExit as e:\n    print(e.code, 'tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.stdout.split() == ["2", "False"], (out.stdout, out.stderr)
    assert out.stderr.startswith("error: --temperature") and len(out.stderr.splitlines()) == 1
    assert not (tmp_path / "m").exists()


def test_replicas_must_divide_the_batch():
    config = dataclasses.replace(TINY_CONFIG, train_batch_size=15)
    config_lib.validate(config, num_replicas=1)
    config_lib.validate(config, num_replicas=3)
    with pytest.raises(UsageError, match=r"^--train_batch_size: .*divisible.*\(2\)"):
        config_lib.validate(config, num_replicas=2)


# Another valid value of each locked setting (tiny hierarchy base).
OTHER_VALUE = dict(dataset="dsprites_mod", seed=1, branching=(4, 4, 2), mask_size=15, crop_size=11,
                   val_fraction=0.2, shape="heart", model="resnet18", width_multiplier=0.5,
                   head_widths=(8, 8, 4), augment="none", color_jitter_strength=1.0, flip=True,
                   temperature=0.1, train_batch_size=8, learning_rate=1e-4, weight_decay=1e-4,
                   mixed_precision="bfloat16", resnet_stem="imagenet", factors="color:3,x:4",
                   max_items=100, random_bits=2)


def test_lock_refuses_every_locked_setting_and_writes_nothing(tmp_path):
    assert set(OTHER_VALUE) == set(LOCKED)
    base = dataclasses.replace(TINY_CONFIG, model_dir=str(tmp_path))
    workdir.lock_config(base, log=lambda s: None)
    path = tmp_path / "config.json"
    saved = json.loads(path.read_text())
    assert all(key in saved for key in LOCKED) and "provenance" in saved
    stamp = (path.stat().st_mtime_ns, path.read_bytes())
    for key, value in OTHER_VALUE.items():
        changed = dataclasses.replace(base, **{key: value})
        for fn in (workdir.check_lock, workdir.lock_config):
            with pytest.raises(UsageError) as e:
                fn(changed)
            msg = str(e.value)
            was = saved[key]
            now = list(value) if isinstance(value, tuple) else value
            assert msg.startswith(f"--{key}: "), msg
            assert f"{key}={was!r}" in msg and f"not {now!r}" in msg, msg
        assert (path.stat().st_mtime_ns, path.read_bytes()) == stamp


def test_lock_allows_longer_runs_and_logs_them(tmp_path, capsys):
    """train_steps/train_epochs may change in the same model_dir (resume, logged)."""
    from simclr_controlled import modes
    config = dataclasses.replace(TINY_CONFIG, model_dir=str(tmp_path), train_steps=2, steps_per_loop=1,
                                 deterministic=True, strategy="one_device")
    assert modes.run(config) == 0
    capsys.readouterr()
    longer = dataclasses.replace(config, train_steps=4, train_epochs=3)
    assert modes.run(longer) == 0
    out = capsys.readouterr().out
    assert "note: train_epochs changes from 100 to 3" in out
    assert "note: train_steps changes from 2 to 4" in out
    assert "resuming from step 2" in out
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["train_steps"] == 4 and saved["train_epochs"] == 3
    assert [json.loads(l)["step"] for l in open(tmp_path / "metrics.jsonl")] == [1, 2, 3, 4]


def test_per_model_tracing_warning_is_held_back_and_other_warnings_pass():
    """TF's retracing warning, which a run of several models triggers with one
    trace per model (run._PerModelTracing), is held back; nothing else is."""
    import logging

    import run

    def record(message):
        return logging.LogRecord("tensorflow", logging.WARNING, __file__, 0, message, None, None)

    held = record("5 out of the last 9 calls to <function make_augment.<locals>.augment at 0x7f> "
                  "triggered tf.function retracing. Tracing is expensive and the excessive number "
                  "of tracings could be due to (1) creating @tf.function repeatedly in a loop")
    assert not run._PerModelTracing().filter(held)
    assert run._PerModelTracing().filter(record("Gradients do not exist for variables"))
