"""Helper processes for tests/test_cli.py and tests/test_reliability.py.

  python tests/reliability_helper.py cases CASES.json RESULTS.json
      Calls run.main once per case, all in this one process (TensorFlow
      starts once), with two logical CPUs so that --strategy=mirrored has two
      replicas. CASES.json: a list of {"id", "argv", "cwd"}. RESULTS.json:
      id -> {"status", "stdout", "stderr"}; everything written to file
      descriptors 1 and 2 during the case is captured, not only sys.stderr.

  python tests/reliability_helper.py die_in_save STEP RUN_ARGS...
      Runs run.py RUN_ARGS and SIGKILLs itself in the middle of saving the
      checkpoint of STEP: its files are written, then torn (cut to half
      their size), and the checkpoint state file does not name it yet.
"""
from __future__ import annotations

import glob
import json
import os
import signal
import sys
import tempfile
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _capture_fds(fn):
    """Runs fn() with fds 1 and 2 sent to temporary files; returns (result, out, err)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    files = [tempfile.TemporaryFile(), tempfile.TemporaryFile()]
    os.dup2(files[0].fileno(), 1)
    os.dup2(files[1].fileno(), 2)
    try:
        result = fn()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
    texts = []
    for f in files:
        f.seek(0)
        texts.append(f.read().decode("utf-8", "replace"))
        f.close()
    return result, texts[0], texts[1]


def run_cases(cases_path: str, results_path: str) -> None:
    import tensorflow as tf
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)
    import run

    with open(cases_path) as f:
        cases = json.load(f)
    results = {}
    here = os.getcwd()
    for case in cases:
        os.chdir(case["cwd"])

        def call(argv=case["argv"]):
            try:
                return run.main(["run.py", *argv])
            except SystemExit as e:
                return e.code
            except BaseException:  # reported, so the test shows it
                traceback.print_exc()
                return "exception"

        try:
            status, out, err = _capture_fds(call)
        finally:
            os.chdir(here)
        results[case["id"]] = {"status": status, "stdout": out, "stderr": err}
    with open(results_path, "w") as f:
        json.dump(results, f)


def die_in_save(step: int, run_args: list[str]) -> int:
    from tensorflow.python.checkpoint import checkpoint_management as cm

    import run
    original = cm.update_checkpoint_state_internal

    def dying(save_dir, model_checkpoint_path, *args, **kwargs):
        if model_checkpoint_path.endswith(f"-{step}"):
            for path in glob.glob(model_checkpoint_path + ".*"):
                size = os.path.getsize(path)
                with open(path, "r+b") as f:
                    f.truncate(size // 2)
            os.kill(os.getpid(), signal.SIGKILL)
        return original(save_dir, model_checkpoint_path, *args, **kwargs)

    cm.update_checkpoint_state_internal = dying
    return run.main(["run.py", *run_args])


if __name__ == "__main__":
    if sys.argv[1] == "cases":
        run_cases(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "die_in_save":
        sys.exit(die_in_save(int(sys.argv[2]), sys.argv[3:]))
    else:
        sys.exit(f"unknown helper command {sys.argv[1]!r}")
