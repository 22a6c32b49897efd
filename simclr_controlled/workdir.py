"""The folders of a run: checks before anything is written, and the config lock
: `config.json` records every setting that changes the data or the
model (`config.LOCKED`); another value of such a setting in the same folder is
refused, while settings that only extend the run (`train_epochs`,
`train_steps`) may change and are logged.

Every folder check lives here, one function per kind of folder, each called
from one place (`modes.check`, through `modes.train.check` for the folders
models are trained in): `check_model_to_write` (train, and each model of
reproduce), `check_model_to_read` (probe), `check_experiment_dir` (analyze
reads one, reproduce writes one). `check_output_dir` is the writability check
they share (show uses it alone).

Everything here except `lock_config` only reads, and nothing imports
TensorFlow, so run.py can check a folder before TF starts.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import re

from simclr_controlled import checkpoints, files
from simclr_controlled import config as config_lib
from simclr_controlled.config import Config, locked_differences
from simclr_controlled.errors import UsageError

EXTENDABLE = ("train_epochs", "train_steps")


def check_output_dir(path: str, flag: str = "model_dir") -> None:
    """The folder exists and is writable, or can be created; nothing is created.

    Root ignores permission bits, so the check that matters for root is the
    nearest existing ancestor being a folder (a path below a file cannot be
    created) and `os.access` (false for e.g. /proc/1 even for root).
    """
    if not path:
        raise UsageError(f"--{flag}: required (a folder for checkpoints and results)")
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"--{flag}: {path} is a file, not a folder")
    probe = path
    while not os.path.exists(probe):
        parent = os.path.dirname(os.path.abspath(probe))
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise UsageError(f"--{flag}: {path} cannot be created ({probe} is a file); "
                         "give a folder path")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"--{flag}: {path} is not writable ({probe} does not allow writing)")


def saved_config(model_dir: str) -> dict | None:
    """The JSON of `model_dir/config.json`, None when there is none.

    UsageError naming the file when it is truncated or corrupt."""
    path = os.path.join(model_dir, "config.json")
    if not os.path.lexists(path):
        return None
    d = files.read_json(path)
    if not isinstance(d, dict) or "dataset" not in d:
        raise UsageError(f"{path}: corrupt config (not a JSON object with a 'dataset' entry); "
                         "restore it or use another --model_dir")
    return d


def check_lock(config: Config, flag: str = "model_dir") -> dict | None:
    """Refuses a changed locked setting (reads only); returns the saved config."""
    old = saved_config(config.model_dir)
    if old is None:
        return None
    diffs = locked_differences(old, config)
    if diffs:
        key, was, now = diffs[0]
        more = f" (also differs: {', '.join(d[0] for d in diffs[1:])})" if len(diffs) > 1 else ""
        raise UsageError(f"--{key}: {config.model_dir} was made with {key}={was!r}, not {now!r}{more}; "
                         f"use another --{flag} or the same value")
    return old


def check_resume_files(model_dir: str) -> None:
    """The jsonl records a resumed run rewrites are readable (UsageError naming the file)."""
    for name in ("metrics.jsonl", "stats.jsonl"):
        path = os.path.join(model_dir, name)
        if os.path.lexists(path):
            files.read_jsonl(path)


def lock_config(config: Config, log=print) -> None:
    """Refuses a changed locked setting; records the config (chief only).

    The only writer here: call it after every other check (the folder was
    checked by `check_model_to_write`).
    """
    old = check_lock(config)
    if old is not None:
        for key in EXTENDABLE:
            if old.get(key) != getattr(config, key):
                log(f"note: {key} changes from {old.get(key)} to {getattr(config, key)} "
                    f"in {config.model_dir}")
    files.atomic_write_json(os.path.join(config.model_dir, "config.json"),
                         {**config.to_json(), "provenance": files.provenance()})


def check_model_to_write(config: Config, flag: str = "model_dir") -> None:
    """A folder to train a model in (reads only): writable, the same locked
    settings, readable records, and checkpoints a resumed run would not lose.

    `flag` names the flag that chose the folder in the lock message
    (reproduce: `experiment_dir`).
    """
    check_output_dir(config.model_dir)
    check_lock(config, flag=flag)
    check_resume_files(config.model_dir)
    checkpoints.check_resumable(config.model_dir, config.recover)


def check_model_to_read(model_dir: str) -> None:
    """probe: a folder made by --mode=train, with its config and a checkpoint."""
    if not model_dir:
        raise UsageError("--model_dir: required for --mode=probe (a folder made by --mode=train)")
    if not os.path.isdir(model_dir):
        what = "is a file, not a folder" if os.path.exists(model_dir) else "does not exist"
        raise UsageError(f"--model_dir: {model_dir} {what}; give a folder made by --mode=train")
    if saved_config(model_dir) is None:
        raise UsageError(f"--model_dir: {model_dir} has no config.json (not made by --mode=train)")
    if checkpoints.latest_listed(model_dir) is None:
        raise UsageError(f"--model_dir: {model_dir} has no checkpoint in "
                         f"{os.path.join(model_dir, 'ckpt')}; train it first")


def check_experiment_dir(experiment_dir: str, write: bool) -> None:
    """An experiment folder: one to write (reproduce: writable or creatable), or
    one to read (analyze: made by --mode=reproduce, with its `experiment.json`;
    the analysis reads the rest)."""
    if write:
        check_output_dir(experiment_dir, "experiment_dir")
        return
    if not experiment_dir:
        raise UsageError("--experiment_dir: required for --mode=analyze "
                         "(a folder made by --mode=reproduce)")
    if not os.path.isdir(experiment_dir):
        what = "is a file, not a folder" if os.path.exists(experiment_dir) else "does not exist"
        raise UsageError(f"--experiment_dir: {experiment_dir} {what}; "
                         "give a folder made by --mode=reproduce")
    files.read_json(os.path.join(experiment_dir, "experiment.json"))


def model_config(model_dir: str) -> Config:
    """The config a model was trained with, read from `model_dir/config.json`
    (UsageError naming the file when it is missing or corrupt)."""
    path = os.path.join(model_dir, "config.json")
    if not os.path.isfile(path):
        raise UsageError(f"--model_dir: {model_dir} has no config.json (not made by --mode=train)")
    d = files.read_json(path)
    if not isinstance(d, dict) or "dataset" not in d or "model" not in d:
        raise UsageError(f"{path}: corrupt config (no dataset/model entry)")
    try:
        saved = Config.from_json(d)
        # Judged as a probe reads it (the training-only checks do not apply).
        config_lib.validate(dataclasses.replace(saved, mode="probe"))
    except TypeError as e:
        raise UsageError(f"{path}: corrupt config ({e})") from None
    except UsageError as e:
        raise UsageError(f"{path}: {str(e).lstrip('-')}") from None
    return saved


def checkpoint_listed(model_dir: str) -> str | None:
    """The latest checkpoint named in `model_dir/ckpt/checkpoint` (its name), read
    without TF; None when there is no state file. UsageError when it is corrupt."""
    latest = checkpoints.latest_listed(model_dir)
    return os.path.basename(latest) if latest else None


# Hidden temporaries of files.atomic_write a killed run left: "." + name + "." + random + ".tmp".
_STALE = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp$")


_HELD: dict[str, int] = {}  # folder (absolute) -> how many nested run_lock calls hold it


@contextlib.contextmanager
def run_lock(model_dir: str, flag: str = "model_dir", reuse_held: bool = False):
    """Holds `model_dir/.lock` (flock) while a run writes there.

    A second run in the same folder at the same time would interleave two
    runs' checkpoints and records; it is refused (UsageError). The kernel
    drops the lock when the process ends, even on kill -9, so a killed run
    never leaves a stale lock. With `reuse_held`, a lock this process already
    holds is used again (run.py takes it before TensorFlow starts when the
    folder already has a `.lock`; the training mode then reuses it before its
    first write); otherwise a second lock is refused. Also removes what a killed
    run may have left: atomic-write temporaries and cut-short checkpoint saves.
    """
    import fcntl
    key = os.path.abspath(model_dir)
    if reuse_held and _HELD.get(key):
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    os.makedirs(model_dir, exist_ok=True)
    lock = os.path.join(model_dir, ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UsageError(f"--{flag}: {model_dir} is in use by another run (it holds {lock}); "
                             "wait for it or use another folder") from None
        _HELD[key] = 1
        remove_stale_temporaries(model_dir)
        checkpoints.remove_stale_saves(model_dir)
        yield
    finally:
        _HELD.pop(key, None)
        os.close(fd)  # releases the flock


def remove_stale_temporaries(folder: str) -> None:
    """Removes the hidden temporaries of `files.atomic_write` a killed run left in `folder`."""
    if not os.path.isdir(folder):
        return
    for name in os.listdir(folder):
        if _STALE.match(name):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(folder, name))


def lock_if_used_before(model_dir: str) -> contextlib.AbstractContextManager:
    """`run_lock` at once when the folder already has a `.lock` (an earlier or
    running training), so a concurrent second run is refused before TensorFlow
    and the data load; otherwise nothing (bad input must leave no new files)."""
    if model_dir and os.path.isfile(os.path.join(model_dir, ".lock")):
        return run_lock(model_dir)
    return contextlib.nullcontext()
