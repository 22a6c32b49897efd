"""Atomic file writes and strict reads of the package's JSON files.

Everything the package writes besides TF checkpoints goes through `atomic_*`
(write to a temporary file in the same folder, fsync, rename), so a killed
process never leaves a truncated file. Reads of our own files raise
UsageError naming the file when it is missing, truncated or corrupt.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from typing import Any, Callable

import numpy as np

from simclr_controlled.errors import UsageError


def _default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Calls write(tmp_path), then renames tmp_path onto `path`."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_text(path: str, text: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)
    atomic_write(path, write)


def atomic_write_json(path: str, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, default=_default, allow_nan=True) + "\n")


def append_jsonl(path: str, record: dict) -> None:
    """Appends one record atomically: rewrites the whole file through a rename.

    The files are small (one line per evaluation), and a rename cannot leave a
    half-written line behind, unlike an in-place append.
    """
    old = ""
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
    atomic_write_text(path, old + json.dumps(record, default=_default) + "\n")


def read_json(path: str) -> Any:
    if not os.path.isfile(path):
        raise UsageError(f"{path}: file not found")
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: corrupt or truncated JSON ({e.msg if hasattr(e, 'msg') else e})") from None


def read_jsonl(path: str) -> list[dict]:
    if not os.path.isfile(path):
        raise UsageError(f"{path}: file not found")
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise UsageError(f"{path}: corrupt or truncated JSON on line {n} ({e.msg})") from None
    return out


def provenance() -> dict[str, Any]:
    """Package versions and the git commit (when there is one), for results files."""
    import importlib.metadata as md
    versions = {}
    for pkg in ("simclr_controlled", "tensorflow", "keras", "numpy", "scikit-learn"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    commit = None
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        commit = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"versions": versions, "git_commit": commit}
