"""Finding, checking, restoring and recovering the checkpoints of a model folder.

One implementation for every mode. The TensorFlow-free part (the state file
`ckpt/checkpoint`, the checkpoint files on disk, the resume checks) runs
before TensorFlow starts; `verify` and `restore_model` import TensorFlow.

Paths: every name in the state file is resolved against the folder that
holds it, the way TensorFlow writes it (names of checkpoints inside the
folder are stored relative), so a folder can be moved or copied and given
as a relative or an absolute path.

Damaged state never restarts a run silently (README "Exit status and
safety"): a folder whose checkpoints have no readable state file or no
`config.json`, or whose latest checkpoint is corrupt, is refused with one
line naming the file. `--recover` resumes from the newest intact checkpoint
instead: the state file is rebuilt to list the intact ones, with a warning
naming what was skipped.
"""
from __future__ import annotations

import codecs
import dataclasses
import os
import re

from simclr_controlled.errors import UsageError

STATE_FILE = "checkpoint"
_PREFIX = re.compile(r"^ckpt-(\d+)$")
_INDEX = re.compile(r"^ckpt-(\d+)\.index$")
_PATH_LINE = re.compile(r'^(model_checkpoint_path|all_model_checkpoint_paths): "((?:[^"\\]|\\.)*)"$')
_NUMBER_LINE = re.compile(r"^(all_model_checkpoint_timestamps|last_preserved_timestamp): "
                          r"[-+0-9.eEinfINFa]+$")
# TensorFlow's temporary folder of a sharded save that was cut short (disk full, kill -9).
_TEMP_SAVE = re.compile(r"^ckpt-\d+_temp(_[0-9a-f]+)?(/.*)?$")


class CorruptState(UsageError):
    """The state file exists but cannot be read as TensorFlow writes it."""


@dataclasses.dataclass(frozen=True)
class State:
    """The parsed state file: absolute checkpoint prefixes, oldest first."""
    latest: str
    all: tuple[str, ...]


def ckpt_dir(model_dir: str) -> str:
    return os.path.join(model_dir, "ckpt")


def state_path(model_dir: str) -> str:
    return os.path.join(ckpt_dir(model_dir), STATE_FILE)


def step_of(prefix: str) -> int:
    """The step in a checkpoint prefix `.../ckpt-<step>`."""
    m = _PREFIX.match(os.path.basename(prefix))
    if not m:
        raise CorruptState(f"{prefix}: not a checkpoint of this package (expected ckpt-<step>)")
    return int(m.group(1))


def _resolve(folder: str, name: str) -> str:
    if "\\" in name:  # text-proto escapes (TF escapes non-ASCII bytes of absolute paths)
        name = codecs.escape_decode(name.encode("utf-8"))[0].decode("utf-8")
    return name if os.path.isabs(name) else os.path.join(folder, name)


def read_state(model_dir: str) -> State | None:
    """The state file, parsed strictly; None when there is none.

    CorruptState when it is empty, unreadable, or holds a line TensorFlow
    does not write (TensorFlow itself would then see no checkpoint at all and
    start over).
    """
    path = state_path(model_dir)
    if not os.path.lexists(path):
        return None
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CorruptState(f"{path}: unreadable checkpoint state file ({getattr(e, 'strerror', None) or e})") \
            from None
    latest, listed = None, []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or _NUMBER_LINE.match(line):
            continue
        m = _PATH_LINE.match(line)
        if not m:
            raise CorruptState(f"{path}: corrupt checkpoint state file (line {n} is not TensorFlow's)")
        resolved = _resolve(os.path.dirname(path), m.group(2))
        if m.group(1) == "model_checkpoint_path":
            latest = resolved
        else:
            listed.append(resolved)
    if latest is None:
        raise CorruptState(f"{path}: corrupt checkpoint state file (it names no checkpoint)")
    if latest not in listed:
        listed.append(latest)
    return State(latest=latest, all=tuple(listed))


def on_disk(model_dir: str) -> list[str]:
    """Prefixes of the checkpoints whose index file exists, oldest first."""
    folder = ckpt_dir(model_dir)
    if not os.path.isdir(folder):
        return []
    found = [(int(m.group(1)), name[: -len(".index")]) for name in os.listdir(folder)
             if (m := _INDEX.match(name))]
    return [os.path.join(folder, name) for _, name in sorted(found)]


def files_present(prefix: str) -> bool:
    """The index file and at least one data shard of `prefix` exist."""
    folder, base = os.path.split(prefix)
    if not os.path.isfile(prefix + ".index") or not os.path.isdir(folder):
        return False
    return any(n.startswith(base + ".data-") for n in os.listdir(folder))


def _names(prefixes) -> str:
    return ", ".join(os.path.basename(p) for p in prefixes)


def latest_listed(model_dir: str) -> str | None:
    """The latest checkpoint the state file names (absolute prefix), None when none."""
    state = read_state(model_dir)
    return state.latest if state else None


def listed(model_dir: str, which: str = "latest") -> list[str]:
    """Saved checkpoints: the latest (`which="latest"`) or all, oldest first.

    UsageError when there is none or a listed one has lost its files.
    """
    state = read_state(model_dir)
    if state is None:
        raise UsageError(f"--model_dir: {model_dir} has no checkpoint in {ckpt_dir(model_dir)}; "
                         "train it first")
    paths = list(state.all) if which == "all" else [state.latest]
    missing = [p for p in paths if not files_present(p)]
    if missing:
        raise UsageError(f"{missing[0]}: checkpoint listed in {state_path(model_dir)} is missing "
                         "its files")
    return paths


def check_resumable(model_dir: str, recover: bool) -> None:
    """Refuses a folder whose earlier checkpoints a resumed run would lose (no TF).

    Checkpoints on disk need `config.json` and a readable state file that
    names an existing checkpoint; with `recover`, a missing or damaged state
    file is accepted (the run resumes from the newest intact checkpoint).
    """
    found = on_disk(model_dir)
    if not found and not os.path.lexists(state_path(model_dir)):
        return
    if found and not os.path.isfile(os.path.join(model_dir, "config.json")):
        raise UsageError(f"{os.path.join(model_dir, 'config.json')}: missing, but {ckpt_dir(model_dir)} "
                         f"holds checkpoints ({_names(found)}) whose settings it recorded; restore it, "
                         "or move the folder aside to start a new run")
    how = (f"rerun with --recover to resume from the newest intact checkpoint, or move "
           f"{ckpt_dir(model_dir)} aside to start over")
    try:
        state = read_state(model_dir)
    except CorruptState as e:
        if recover:
            return
        raise CorruptState(f"{e}; {how}") from None
    if state is None:
        if recover:
            return
        raise UsageError(f"{state_path(model_dir)}: missing, but {ckpt_dir(model_dir)} holds "
                         f"checkpoints ({_names(found)}); {how}")
    if not files_present(state.latest) and not recover:
        lost = state.latest + ".index" if not os.path.isfile(state.latest + ".index") else \
            state.latest + ".data-*"
        raise UsageError(f"{state_path(model_dir)}: names {os.path.basename(state.latest)}, but its "
                         f"files are missing ({lost}); {how}")


# --------------------------------------------------------------------------
# TensorFlow from here on.

def verify(prefix: str) -> str | None:
    """None when every tensor of the checkpoint reads back (checksums included),
    else the reason it does not."""
    if not files_present(prefix):
        return "its index or data file is missing"
    import tensorflow as tf
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as e:  # noqa: BLE001 (TF raises OpError, IndexError, ValueError, ... on damage)
        return _one_line(getattr(e, "message", None) or str(e) or type(e).__name__)
    return None


def _one_line(text: str) -> str:
    line = (text or "").strip().splitlines()
    return line[0][:200] if line else "unreadable"


def resume_point(model_dir: str, recover: bool, log=print) -> tuple[str | None, bool]:
    """The checkpoint a training run resumes from (None: a fresh start), after
    reading every tensor of it; with `recover`, the newest intact one. Reads
    only; `check_resumable` runs first (cheap: no TensorFlow), so a caller
    that skipped `modes.check` is refused the same way.

    Returns (checkpoint, whether the state file must be rebuilt to name it:
    only with `recover`). UsageError naming the corrupt checkpoint when it
    cannot be read and `recover` is off.
    """
    check_resumable(model_dir, recover)
    try:
        state = read_state(model_dir)
    except CorruptState:
        state = None  # only reachable with recover (check_resumable refused it otherwise)
    listed = state.latest if state is not None else None
    candidates = on_disk(model_dir)
    if state is not None:
        candidates = sorted(set(candidates) | set(state.all), key=step_of)
        newest = state.latest
    else:
        newest = candidates[-1] if candidates else None
    if newest is None:
        return None, recover and os.path.lexists(state_path(model_dir))
    reason = verify(newest)
    if reason is None and state is not None:
        return newest, False
    if not recover:
        raise UsageError(f"{newest}: corrupt checkpoint ({reason}); rerun with --recover to resume "
                         f"from the newest intact checkpoint, or move {ckpt_dir(model_dir)} aside to "
                         "start over")
    older = [p for p in candidates if step_of(p) <= step_of(newest)]
    for p in reversed(older):
        why = reason if p == newest else verify(p)
        if why is None:
            return p, p != listed
        log(f"warning: --recover: skipping {p} ({why})")
    return None, True


def rebuild_state(model_dir: str, resume_from: str | None) -> None:
    """Writes a state file that lists the intact checkpoints up to `resume_from`
    (--recover), or removes it when there is none to resume from."""
    from simclr_controlled import files
    path = state_path(model_dir)
    if resume_from is None:
        if os.path.lexists(path):
            os.remove(path)
        return
    keep = [p for p in on_disk(model_dir) if step_of(p) < step_of(resume_from) and verify(p) is None]
    keep.append(resume_from)
    lines = [f'model_checkpoint_path: "{os.path.basename(resume_from)}"']
    lines += [f'all_model_checkpoint_paths: "{os.path.basename(p)}"' for p in keep]
    files.atomic_write_text(path, "\n".join(lines) + "\n")


def remove_stale_saves(model_dir: str) -> None:
    """Removes the temporary folders of checkpoint saves that were cut short."""
    import shutil
    folder = ckpt_dir(model_dir)
    if not os.path.isdir(folder):
        return
    for name in os.listdir(folder):
        if _TEMP_SAVE.match(name) and os.path.isdir(os.path.join(folder, name)):
            shutil.rmtree(os.path.join(folder, name), ignore_errors=True)


def restore_weights(model, prefix: str) -> int:
    """Restores `model`'s weights from the checkpoint at `prefix`; returns its step.

    UsageError naming the checkpoint when it cannot be read.
    """
    import tensorflow as tf
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    ckpt = tf.train.Checkpoint(model_weights=list(model.weights), step=step)
    try:
        ckpt.restore(prefix).expect_partial().assert_existing_objects_matched()
    except Exception as e:  # noqa: BLE001 (any failure to read it back)
        raise UsageError(f"{prefix}: corrupt or incompatible checkpoint "
                         f"({_one_line(getattr(e, 'message', None) or str(e))})") from None
    return int(step.numpy())
