"""The model directory: checks before anything is written, and the config lock
(issue 7): `config.json` records every setting that changes the data or the
model; another value of such a setting in the same folder is refused."""
from __future__ import annotations

import os

from simclr_controlled import io
from simclr_controlled.config import Config, locked_differences
from simclr_controlled.errors import UsageError


def check_output_dir(path: str, flag: str = "model_dir") -> None:
    """The folder exists and is writable, or can be created; nothing is created."""
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
    if not os.path.isdir(probe) or not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"--{flag}: {path} is not writable ({probe} does not allow writing)")


def saved_config(model_dir: str) -> dict | None:
    path = os.path.join(model_dir, "config.json")
    return io.read_json(path) if os.path.exists(path) else None


def lock_config(config: Config, log=print) -> None:
    """Refuses a changed locked setting; records the config (chief only)."""
    check_output_dir(config.model_dir)
    old = saved_config(config.model_dir)
    if old is not None:
        diffs = locked_differences(old, config)
        if diffs:
            key, was, now = diffs[0]
            raise UsageError(f"--{key}: {config.model_dir} was made with {key}={was!r}, not {now!r}; "
                             "use another --model_dir or the same value")
        for key in ("train_epochs", "train_steps"):
            if old.get(key) != getattr(config, key):
                log(f"note: {key} changes from {old.get(key)} to {getattr(config, key)} in {config.model_dir}")
    io.atomic_write_json(os.path.join(config.model_dir, "config.json"),
                         {**config.to_json(), "provenance": io.provenance()})


def has_checkpoint(model_dir: str) -> bool:
    import tensorflow as tf
    return tf.train.latest_checkpoint(os.path.join(model_dir, "ckpt")) is not None
