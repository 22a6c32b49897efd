"""SimCLR training under tf.distribute (SPEC §2, issue 4).

One custom loop for every strategy: a `tf.function` runs several steps per
call through `strategy.run`; each step computes the NT-Xent loss on the two
views of the global batch (negatives gathered across replicas), and Adam
updates the backbone and projection head. The learning rate is constant, as
in the paper (Adam 1e-3, no schedule is mentioned).

Files in `model_dir` (chief only): `config.json`, `ckpt/` (TF checkpoints,
every `checkpoint_epochs` and at the end), `metrics.jsonl` (one line per loop
call), `stats.jsonl` (the `eval_hook` output every `eval_every_epochs`), and
`tb/` (TensorBoard). A run resumes from the latest checkpoint in `model_dir`;
lines of the jsonl files written after that checkpoint are dropped, so the
resumed run's records equal an uninterrupted run's.
"""
from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
import shutil
import signal
import tempfile
import threading
import time
from typing import Any, Callable

import keras
import tensorflow as tf

from simclr_controlled import augment as augment_lib
from simclr_controlled import checkpoints, files, input_pipeline, losses, models
from simclr_controlled import strategy as strategy_lib
from simclr_controlled.config import Config
from simclr_controlled.datasets import Dataset
from simclr_controlled.errors import UsageError

EvalHook = Callable[[keras.Model, int, int], dict]


class NonFiniteLoss(RuntimeError):
    """Training produced a NaN or infinite loss; the last checkpoint is kept."""


class Interrupted(RuntimeError):
    """SIGINT/SIGTERM arrived; a checkpoint was saved. `signum`: the signal."""

    def __init__(self, message: str, signum: int | None = None):
        super().__init__(message)
        self.signum = signum


@dataclasses.dataclass
class TrainState:
    model: keras.Model
    optimizer: keras.optimizers.Optimizer
    step: tf.Variable
    manager: tf.train.CheckpointManager
    strategy: tf.distribute.Strategy


def input_shape(config: Config, dataset: Dataset) -> tuple[int, int, int]:
    h, w, c = dataset.images.shape[1:]
    if config.dataset == "hierarchy":
        return (config.crop_size, config.crop_size, c)
    return (h, w, c)


def augment_fn(config: Config):
    crop = config.crop_size if config.augment == "crop" else None
    # XLA makes the colour and resized-crop ops 3-10x faster in the tf.data map
    # on a CPU host (measured; see augment.py), which keeps the input
    # pipeline off the critical path.
    return augment_lib.make_augment(config.augment, crop_size=crop,
                                    color_jitter_strength=config.color_jitter_strength,
                                    flip=config.flip, jit_compile=True)


def total_steps(config: Config, dataset: Dataset) -> int:
    per_epoch = input_pipeline.steps_per_epoch(len(dataset.train_idx), config.train_batch_size)
    return config.train_steps or config.train_epochs * per_epoch


def dtype_policy(config: Config, strategy) -> str | None:
    if config.mixed_precision == "bfloat16" or (
            config.mixed_precision == "auto" and strategy_lib.is_tpu(strategy)):
        return "mixed_bfloat16"
    return None


def model_kwargs(config: Config) -> dict:
    return {"stem": config.resnet_stem} if config.model == "resnet18" else {}


def model_weights(model: keras.Model) -> list:
    """What checkpoints track of the model: every weight, by position.

    Keras 3 models are not tracked by attribute in a tf.train.Checkpoint, and
    layer names depend on what else the process built, so weights are
    tracked as the model's ordered weight list (fixed by the architecture).
    """
    return list(model.weights)


def build_state(config: Config, dataset: Dataset, strategy, ckpt_dir: str) -> TrainState:
    """Model, optimizer, step counter and checkpoint manager, restored if possible."""
    with strategy.scope():
        model = models.build_model(config.model, input_shape(config, dataset),
                                   width_multiplier=config.width_multiplier,
                                   head_widths=config.head_widths, seed=config.seed,
                                   dtype_policy=dtype_policy(config, strategy),
                                   **model_kwargs(config))
        optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate,
                                          weight_decay=config.weight_decay or None)
        # Optimizer slots exist before restore, so a checkpoint restores them at once.
        optimizer.build(model.trainable_variables)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    ckpt = tf.train.Checkpoint(model_weights=model_weights(model), optimizer=optimizer, step=step)
    manager = tf.train.CheckpointManager(ckpt, ckpt_dir, max_to_keep=config.keep_checkpoint_max,
                                         step_counter=step)
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    return TrainState(model, optimizer, step, manager, strategy)


def checkpoint_paths(model_dir: str, which: str) -> list[str]:
    """Saved checkpoints of `model_dir` (`checkpoints.listed`): the latest or all."""
    return checkpoints.listed(model_dir, which)


def restore_model(config: Config, dataset: Dataset, model_dir: str, checkpoint: str | None = None,
                  strategy=None) -> tuple[keras.Model, int]:
    """The model of `model_dir` at `checkpoint` (default: latest), and its step."""
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = models.build_model(config.model, input_shape(config, dataset),
                                   width_multiplier=config.width_multiplier,
                                   head_widths=config.head_widths, seed=config.seed,
                                   **model_kwargs(config))
    if checkpoint is None:
        checkpoint = checkpoints.listed(model_dir, "latest")[0]
    return model, checkpoints.restore_weights(model, checkpoint)


def save_initial(config: Config, dataset: Dataset, strategy=None) -> str:
    """Saves the untrained model (step 0) of `config` unless a checkpoint exists:
    the `untrained` baseline shares the trained models' initialization."""
    strategy = strategy or strategy_lib.make_strategy(config.strategy, config.tpu)
    state = build_state(config, dataset, strategy, os.path.join(config.model_dir, "ckpt"))
    return state.manager.latest_checkpoint or save_checkpoint(state, 0, os.path.join(config.model_dir, "ckpt"))


def _op_determinism_enabled(config: Config) -> bool:
    """--deterministic, or op determinism already on in this process (it is
    process-wide and cannot be seen through a public API)."""
    try:
        from tensorflow.python.framework import config as tf_config
        return config.deterministic or tf_config.is_op_determinism_enabled()
    except (ImportError, AttributeError):
        return config.deterministic


def make_train_loop(config: Config, state: TrainState, jit: bool):
    """A tf.function running `num_steps` SimCLR steps; returns mean stats."""
    strategy, model, optimizer = state.strategy, state.model, state.optimizer
    replicas = strategy.num_replicas_in_sync
    temperature = float(config.temperature)

    def forward_backward(batch):
        views = tf.concat([batch["view_a"], batch["view_b"]], axis=0)
        with tf.GradientTape() as tape:
            taps = model(views, training=True)
            loss, accuracy, _ = losses.nt_xent(taps["head_out"], temperature)
            # Each replica holds the mean over its items; Keras sums the
            # replicas' gradients, so this scaling makes them a global mean.
            scaled = loss / replicas
        grads = tape.gradient(scaled, model.trainable_variables)
        z = tf.math.l2_normalize(tf.cast(taps["head_out"], tf.float32), axis=1)
        proj_std = tf.reduce_mean(tf.math.reduce_std(z, axis=0))
        # NaN/inf gradients can leave the loss finite (LeNet's max-pool maps
        # all-NaN windows to a finite value), so they are checked too.
        grad_norm = tf.cast(tf.linalg.global_norm(grads), tf.float32)
        return grads, loss, accuracy, proj_std, grad_norm

    # XLA of the per-replica computation; the all-reduce stays outside (one
    # replica or TPU only, where the whole step compiles).
    if jit and (replicas == 1 or strategy_lib.is_tpu(strategy)):
        forward_backward = tf.function(forward_backward, jit_compile=True)

    def step_fn(batch):
        grads, loss, accuracy, proj_std, grad_norm = forward_backward(batch)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss, accuracy, proj_std, grad_norm

    @tf.function
    def train_loop(iterator, num_steps):
        mean = lambda v: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)  # noqa: E731
        sums = tf.zeros([4])
        for _ in tf.range(num_steps):
            out = strategy.run(step_fn, args=(next(iterator),))
            sums += tf.stack([mean(v) for v in out])
            state.step.assign_add(1)
        return sums / tf.cast(num_steps, tf.float32)

    return train_loop


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, permissions); earlier ones are intact."""


def save_checkpoint(state: TrainState, step: int, ckpt_dir: str) -> str:
    """`manager.save` at `step`, with a failed write turned into one line.

    TensorFlow writes a checkpoint into a temporary folder and renames it
    into place, so a failed save leaves the earlier checkpoints and the state
    file as they were; its temporary folder is removed here (and by the next
    run, should this process die first).
    """
    try:
        return state.manager.save(checkpoint_number=step)
    except tf.errors.OpError as e:
        checkpoints.remove_stale_saves(os.path.dirname(ckpt_dir))
        reason = (e.message or type(e).__name__).strip().splitlines()[0]
        cause = next((c for c in ("No space left on device", "Permission denied", "Read-only file system",
                                  "Disk quota exceeded") if c in reason), reason[:160])
        raise CheckpointWriteError(errno.EIO, f"cannot save checkpoint ckpt-{step} ({cause}); the "
                                   "earlier checkpoints are intact", ckpt_dir) from None


# Target wall time of one loop call: progress lines and the reaction to
# SIGINT/SIGTERM (checked between calls) come at least this often.
LOOP_SECONDS = 15.0
MAX_LOOP_STEPS = 100


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


class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag checked between loop calls."""

    def __init__(self):
        self.signum = None
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is not None:  # second signal: stop now
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _truncate_jsonl(path: str, max_step: int) -> None:
    """Drops records written after the checkpoint a run resumes from."""
    if os.path.exists(path):
        kept = [r for r in files.read_jsonl(path) if r.get("step", 0) <= max_step]
        files.atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


def _format_eta(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def _write_view_images(writer, config: Config, dataset: Dataset, step: int) -> None:
    """A few augmented training views for TensorBoard (channels side by side)."""
    idx = tf.constant(dataset.train_idx[:4], tf.int64)
    batch = tf.gather(dataset.images, idx)
    fn = augment_fn(config)
    views = tf.concat([fn(batch, augment_lib.view_seeds(config.seed, 0, idx, v)) for v in (0, 1)], 0)
    if views.shape[-1] != 3:  # hierarchy: one grayscale tile per channel
        views = tf.concat(tf.unstack(views[..., None], axis=3), axis=2)
    with writer.as_default():
        tf.summary.image("augmented_views", views, step=step, max_outputs=8)


def train(config: Config, dataset: Dataset, *, strategy=None, eval_hook: EvalHook | None = None,
          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Trains (or resumes) the SimCLR model of `config` in `config.model_dir`.

    Returns the final step, the last loop's mean loss, contrastive accuracy
    and projection std, and the trained `model`. Raises NonFiniteLoss or
    Interrupted.
    """
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = strategy or strategy_lib.make_strategy(config.strategy, config.tpu)
    chief = strategy_lib.is_chief(strategy)
    # Non-chief workers take part in every collective save but write to a scratch folder.
    write_dir = config.model_dir if chief else tempfile.mkdtemp(prefix="simclr_worker_")
    ckpt_dir = os.path.join(write_dir, "ckpt")
    state = build_state(config, dataset, strategy, ckpt_dir)
    start = int(state.step.numpy())
    final = total_steps(config, dataset)
    per_epoch = input_pipeline.steps_per_epoch(len(dataset.train_idx), config.train_batch_size)
    metrics_path = os.path.join(config.model_dir, "metrics.jsonl")
    stats_path = os.path.join(config.model_dir, "stats.jsonl")
    if chief:
        _truncate_jsonl(metrics_path, start)
        _truncate_jsonl(stats_path, start)
    if start >= final:
        log(f"training already finished: step {start}/{final} in {config.model_dir}")
        return {"step": start, "resumed_from": start, "finished": True, "model": state.model}
    if start:
        log(f"resuming from step {start} (epoch {start / per_epoch:.2f}) in {ckpt_dir}")

    input_fn = input_pipeline.train_input_fn(
        dataset.images, dataset.train_idx, global_batch_size=config.train_batch_size,
        seed=config.seed, augment_fn=augment_fn(config), start_step=start, total_steps=final)
    iterator = iter(strategy.distribute_datasets_from_function(input_fn))
    jit = config.jit_compile == "on" or (config.jit_compile == "auto" and strategy_lib.uses_accelerator(strategy))
    if jit and not strategy_lib.is_tpu(strategy) and _op_determinism_enabled(config):
        # tf2xla refuses MaxPoolGrad under op determinism (on every device:
        # "GPU MaxPool gradient ops do not yet have a deterministic XLA
        # implementation"), and LeNet and the imagenet-stem ResNet max-pool.
        log("note: --deterministic: the training step runs without XLA (TensorFlow has no "
            "deterministic XLA max-pool gradient)")
        jit = False
    train_loop = make_train_loop(config, state, jit)
    loop_length = LoopLength(config.steps_per_loop, per_epoch)
    writer = tf.summary.create_file_writer(os.path.join(write_dir, "tb"))
    if chief and start == 0:
        _write_view_images(writer, config, dataset, 0)

    def run_eval(step: int) -> None:
        if eval_hook is None or not chief:
            return
        record = {"epoch": step // per_epoch, "step": step, **eval_hook(state.model, step // per_epoch, step)}
        files.append_jsonl(stats_path, record)

    if start == 0 and config.eval_every_epochs:
        run_eval(0)

    step = start
    last = {}
    t_begin = time.perf_counter()
    t_first = None  # end of the first loop call (tracing and compilation behind)
    with _StopRequest() as stop:
        while step < final:
            to_epoch_end = per_epoch - step % per_epoch
            n = min(loop_length.next(), to_epoch_end, final - step)
            t0 = time.perf_counter()
            loss, acc, proj_std, grad_norm = (float(v) for v in train_loop(iterator, tf.constant(n, tf.int64)))
            dt = time.perf_counter() - t0
            step += n
            if not (math.isfinite(loss) and math.isfinite(grad_norm)):
                # Nothing of this loop call is saved or recorded: the latest
                # checkpoint stays the last good one.
                kept = state.manager.latest_checkpoint
                where = (f"the last good checkpoint, step {kept.rsplit('-', 1)[-1]}, is kept in {ckpt_dir}"
                         if kept else f"no checkpoint was saved yet in {ckpt_dir}")
                raise NonFiniteLoss(
                    f"training stopped: non-finite {'loss' if not math.isfinite(loss) else 'gradients'} "
                    f"at step {step if n == 1 else f'{step - n + 1}..{step}'} (loss {loss}, gradient norm "
                    f"{grad_norm}); {where}. Check the input data for NaN/inf, or lower --learning_rate "
                    "or raise --temperature")
            loop_length.observe(n, dt)
            views_per_s = 2 * config.train_batch_size * n / dt
            epoch_f = step / per_epoch
            # From the run's elapsed time after the first call (tracing and
            # compilation behind), so evaluations and checkpoint writes between
            # loop calls count too, not just the training steps.
            now = time.perf_counter()
            if t_first is None:
                t_first, first_step = now, step
                eta = (final - step) * dt / n
                log(f"first step{'s' if n > 1 else ''} done in {dt:.1f} s (tracing and compilation "
                    f"included); next loop calls run about {loop_length.next()} steps; "
                    f"ETA {_format_eta(eta)} at this pace")
            else:
                eta = (final - step) * (now - t_first) / (step - first_step)
            last = {"step": step, "epoch": epoch_f, "loss": loss, "contrastive_accuracy": acc,
                    "projection_std": proj_std, "learning_rate": config.learning_rate,
                    "views_per_second": views_per_s}
            log(f"epoch {epoch_f:7.2f}/{final / per_epoch:g}  step {step}/{final}  loss {loss:.4f}  "
                f"contrastive_acc {acc:.3f}  {views_per_s:,.0f} views/s  {dt / n:.3g} s/step  "
                f"ETA {_format_eta(eta)}")
            if chief:
                files.append_jsonl(metrics_path, last)
                with writer.as_default():
                    for key in ("loss", "contrastive_accuracy", "projection_std", "learning_rate",
                                "views_per_second"):
                        tf.summary.scalar(key, last[key], step=step)
            at_epoch_end = step % per_epoch == 0
            epoch = step // per_epoch
            saved = step >= final or (at_epoch_end and epoch % config.checkpoint_epochs == 0)
            if saved:
                save_checkpoint(state, step, ckpt_dir)
            if at_epoch_end and config.eval_every_epochs and epoch % config.eval_every_epochs == 0:
                run_eval(step)
            elif step >= final and config.eval_every_epochs:
                run_eval(step)
            if stop.signum is not None and step < final:
                if not saved:
                    save_checkpoint(state, step, ckpt_dir)
                writer.flush()
                raise Interrupted(f"stopped by signal {stop.signum} at step {step}/{final}; checkpoint "
                                  f"saved in {ckpt_dir}; rerun the same command to resume", stop.signum)
    writer.flush()
    if not chief:
        shutil.rmtree(write_dir, ignore_errors=True)
    log(f"training finished: step {step}/{final}, {time.perf_counter() - t_begin:.1f} s")
    return {**last, "resumed_from": start, "finished": True, "model": state.model}
