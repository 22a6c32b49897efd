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
import threading
from typing import Any, Callable

import numpy as np

from simclr_controlled.errors import UsageError


def _default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    # The only portable way to read the umask is to set it; the lock keeps
    # threads of this module from seeing the temporary value.
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Calls write(tmp_path), then renames tmp_path onto `path`.

    The file gets the mode an ordinary `open(path, "w")` would give (0666
    less the umask; mkstemp alone gives 0600). The folder is fsynced after
    the rename, so the new name survives a crash too.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_dir(folder)


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems do not fsync folders
        pass
    finally:
        os.close(fd)


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


def _read_text(path: str) -> str:
    if not os.path.isfile(path):
        raise UsageError(f"{path}: file not found")
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: corrupt (not UTF-8 text)") from None
    except OSError as e:
        raise UsageError(f"{path}: cannot be read ({e.strerror})") from None


def read_json(path: str) -> Any:
    """The JSON in `path`; UsageError naming the file when missing, truncated or corrupt."""
    text = _read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{path}: corrupt or truncated JSON ({e.msg} at line {e.lineno})") from None


def read_jsonl(path: str) -> list[dict]:
    """One JSON object per line; UsageError naming the file and line otherwise."""
    out = []
    for n, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise UsageError(f"{path}: corrupt or truncated JSON on line {n} ({e.msg})") from None
        if not isinstance(record, dict):
            raise UsageError(f"{path}: corrupt record on line {n} (not a JSON object)")
        out.append(record)
    return out


def provenance() -> dict[str, Any]:
    """Package versions and the git commit (when there is one), for results files.

    `simclr_controlled` is the version of the code that ran (its
    `__version__`), `git_dirty` whether that checkout had uncommitted changes.
    """
    import importlib.metadata as md
    import platform

    import simclr_controlled
    versions: dict[str, Any] = {"simclr_controlled": simclr_controlled.__version__,
                                "python": platform.python_version()}
    for pkg in ("tensorflow", "keras", "numpy", "scikit-learn", "matplotlib", "absl-py", "hsluv"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    here = os.path.dirname(os.path.abspath(__file__))

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", here, *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout if out.returncode == 0 else None

    commit = (git("rev-parse", "HEAD") or "").strip() or None
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"versions": versions, "git_commit": commit,
            "git_dirty": None if status is None else bool(status.strip())}
