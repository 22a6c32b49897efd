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

from simclr_controlled import io
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
    d = io.read_json(path)
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
            io.read_jsonl(path)


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
    io.atomic_write_json(os.path.join(config.model_dir, "config.json"),
                         {**config.to_json(), "provenance": io.provenance()})


def checkpoint_listed(model_dir: str) -> str | None:
    """The latest checkpoint named in `model_dir/ckpt/checkpoint`, read without TF.

    None when there is no state file or it names nothing. (A checkpoint's
    files are written before the state file names it, so a named checkpoint
    is complete.)
    """
    path = os.path.join(model_dir, "ckpt", "checkpoint")
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            m = re.search(r'^model_checkpoint_path:\s*"([^"]+)"', f.read(), re.M)
    except (OSError, UnicodeDecodeError):
        raise UsageError(f"{path}: unreadable checkpoint state file") from None
    return m.group(1) if m else None


def check_checkpoint_files(model_dir: str) -> None:
    """The checkpoint the state file names has its files (a resumed run restores it)."""
    name = checkpoint_listed(model_dir)
    if name is None:
        return
    path = name if os.path.isabs(name) else os.path.join(model_dir, "ckpt", name)
    if not os.path.isfile(path + ".index"):
        raise UsageError(f"{os.path.join(model_dir, 'ckpt', 'checkpoint')}: names {name}, but "
                         f"{path}.index is missing; restore it, or remove the ckpt folder to start over")


# Hidden temporaries of io.atomic_write left by a killed run.
_STALE = re.compile(r"^\.(config\.json|metrics\.jsonl|stats\.jsonl)\..+\.tmp$")


@contextlib.contextmanager
def run_lock(model_dir: str):
    """Holds `model_dir/.lock` (flock) while a run writes there.

    A second run in the same folder at the same time would interleave two
    runs' checkpoints and records; it is refused (UsageError). The kernel
    drops the lock when the process ends, even on kill -9, so a killed run
    never leaves a stale lock. Also removes the temporaries a killed run's
    atomic writes may have left.
    """
    import fcntl
    os.makedirs(model_dir, exist_ok=True)
    fd = os.open(os.path.join(model_dir, ".lock"), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock = os.path.join(model_dir, ".lock")
            raise UsageError(f"--model_dir: {model_dir} is in use by another run (it holds {lock}); "
                             "wait for it or use another folder") from None
        for name in os.listdir(model_dir):
            if _STALE.match(name):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(model_dir, name))
        yield
    finally:
        os.close(fd)  # releases the flock
