"""The model directory: checks before anything is written, and the config lock
(issue 7): `config.json` records every setting that changes the data or the
model (`config.LOCKED`); another value of such a setting in the same folder is
refused, while settings that only extend the run (`train_epochs`,
`train_steps`) may change and are logged.

Everything here except `lock_config` only reads, and nothing imports
TensorFlow, so run.py can check a folder before TF starts.
"""
from __future__ import annotations

import contextlib
import os
import re

from simclr_controlled import checkpoints, files
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

    The only writer here: call it after every other check.
    """
    check_output_dir(config.model_dir)
    old = check_lock(config)
    if old is not None:
        for key in EXTENDABLE:
            if old.get(key) != getattr(config, key):
                log(f"note: {key} changes from {old.get(key)} to {getattr(config, key)} "
                    f"in {config.model_dir}")
    files.atomic_write_json(os.path.join(config.model_dir, "config.json"),
                         {**config.to_json(), "provenance": files.provenance()})


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
