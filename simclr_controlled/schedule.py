"""When the training loop logs, checkpoints, evaluates and stops (DESIGN §3.3).

Pure bookkeeping, no TensorFlow: the loop asks `itstime` at each loop call's
end, `LoopLength` how many steps the next call runs, `Eta` how long is left,
and `StopRequest` whether SIGINT/SIGTERM arrived.
"""
from __future__ import annotations

import signal
import threading
import time

# Target wall time of one loop call: progress lines and the reaction to
# SIGINT/SIGTERM (checked between calls) come at least this often.
LOOP_SECONDS = 15.0
MAX_LOOP_STEPS = 100


def itstime(step: int, per_epoch: int, every_epochs: int, final: int) -> bool:
    """True at the end of every `every_epochs`-th epoch and at the last step
    (`every_epochs` 0: never)."""
    if not every_epochs:
        return False
    at_epoch_end = step % per_epoch == 0
    return step >= final or (at_epoch_end and (step // per_epoch) % every_epochs == 0)


class LoopLength:
    """Steps per `tf.function` call: `--steps_per_loop`, or chosen from the
    measured step time so that one call takes about `LOOP_SECONDS` (at most
    `MAX_LOOP_STEPS` and one epoch). The first call runs one step (it also
    traces and compiles), the next ones adapt to the last call's pace."""

    def __init__(self, fixed: int, per_epoch: int):
        self.fixed, self.cap = fixed, max(1, min(per_epoch, MAX_LOOP_STEPS))
        self.step_time = None

    def next(self) -> int:
        if self.fixed:
            return self.fixed
        if self.step_time is None:
            return 1
        return int(max(1, min(self.cap, LOOP_SECONDS // max(self.step_time, 1e-9))))

    def observe(self, steps: int, seconds: float) -> None:
        self.step_time = seconds / steps


def format_eta(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class Eta:
    """Time left, from the run's elapsed time after the first loop call
    (tracing and compilation behind), so evaluations and checkpoint writes
    between loop calls count too, not only the training steps."""

    def __init__(self, final: int, clock=time.perf_counter):
        self.final, self.clock = final, clock
        self.first = None  # (time, step) at the end of the first call

    def update(self, step: int, steps: int, seconds: float) -> float:
        """Seconds left after a call of `steps` steps that took `seconds`."""
        now = self.clock()
        if self.first is None:
            self.first = (now, step)
            return (self.final - step) * seconds / steps
        t0, s0 = self.first
        return (self.final - step) * (now - t0) / (step - s0)


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag checked between loop calls; a second
    signal stops at once (KeyboardInterrupt)."""

    def __init__(self):
        self.signum = None
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
