"""SimCLR training under tf.distribute (DESIGN §3.3).

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
import tempfile
import time
from typing import Any, Callable

import keras
import tensorflow as tf

from simclr_controlled import augment as augment_lib
from simclr_controlled import checkpoints, files, input_pipeline, losses, models, schedule
from simclr_controlled import strategy as strategy_lib
from simclr_controlled.config import Config
from simclr_controlled.datasets import Dataset

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
    c += dataset.random_bits.shape[1]  # constant bit channels appended after augmentation (DESIGN §1.4)
    if config.dataset == "hierarchy":
        return (config.crop_size, config.crop_size, c)
    return (h, w, c)


def augment_fn(config: Config):
    crop = config.crop_size if config.augment == "crop" else None
    # XLA makes the colour and resized-crop ops several times faster in the
    # tf.data map on a CPU host (README, Speed), which keeps the input
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


def _truncate_jsonl(path: str, max_step: int) -> None:
    """Drops records written after the checkpoint a run resumes from."""
    if os.path.exists(path):
        kept = [r for r in files.read_jsonl(path) if r.get("step", 0) <= max_step]
        files.atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


def _check_finite(loss: float, grad_norm: float, step: int, n: int, kept: str | None, ckpt_dir: str) -> None:
    """NonFiniteLoss unless the loop call's loss and gradients are finite.

    Nothing of such a call is saved or recorded: the latest checkpoint stays
    the last good one.
    """
    if math.isfinite(loss) and math.isfinite(grad_norm):
        return
    where = (f"the last good checkpoint, step {kept.rsplit('-', 1)[-1]}, is kept in {ckpt_dir}"
             if kept else f"no checkpoint was saved yet in {ckpt_dir}")
    raise NonFiniteLoss(
        f"training stopped: non-finite {'loss' if not math.isfinite(loss) else 'gradients'} "
        f"at step {step if n == 1 else f'{step - n + 1}..{step}'} (loss {loss}, gradient norm "
        f"{grad_norm}); {where}. Check the input data for NaN/inf, or lower --learning_rate "
        "or raise --temperature")


_SCALARS = ("loss", "contrastive_accuracy", "projection_std", "learning_rate", "views_per_second")


def _record(metrics_path: str, writer, record: dict) -> None:
    """One loop call's metrics: a line of metrics.jsonl and TensorBoard scalars."""
    files.append_jsonl(metrics_path, record)
    with writer.as_default():
        for key in _SCALARS:
            tf.summary.scalar(key, record[key], step=record["step"])


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
        seed=config.seed, augment_fn=augment_fn(config), start_step=start, total_steps=final,
        random_bits=dataset.random_bits)
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
    loop_length = schedule.LoopLength(config.steps_per_loop, per_epoch)
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

    step, last = start, {}
    t_begin = time.perf_counter()
    eta = schedule.Eta(final, clock=time.perf_counter)
    with schedule.StopRequest() as stop:
        while step < final:
            n = min(loop_length.next(), per_epoch - step % per_epoch, final - step)
            t0 = time.perf_counter()
            loss, acc, proj_std, grad_norm = (float(v) for v in train_loop(iterator, tf.constant(n, tf.int64)))
            dt = time.perf_counter() - t0
            step += n
            _check_finite(loss, grad_norm, step, n, state.manager.latest_checkpoint, ckpt_dir)
            loop_length.observe(n, dt)
            first = eta.first is None
            left = eta.update(step, n, dt)
            if first:
                log(f"first step{'s' if n > 1 else ''} done in {dt:.1f} s (tracing and compilation "
                    f"included); next loop calls run about {loop_length.next()} steps; "
                    f"ETA {schedule.format_eta(left)} at this pace")
            last = {"step": step, "epoch": step / per_epoch, "loss": loss, "contrastive_accuracy": acc,
                    "projection_std": proj_std, "learning_rate": config.learning_rate,
                    "views_per_second": 2 * config.train_batch_size * n / dt}
            log(f"epoch {step / per_epoch:7.2f}/{final / per_epoch:g}  step {step}/{final}  loss {loss:.4f}  "
                f"contrastive_acc {acc:.3f}  {last['views_per_second']:,.0f} views/s  {dt / n:.3g} s/step  "
                f"ETA {schedule.format_eta(left)}")
            if chief:
                _record(metrics_path, writer, last)
            saved = schedule.itstime(step, per_epoch, config.checkpoint_epochs, final)
            if saved:
                save_checkpoint(state, step, ckpt_dir)
            if schedule.itstime(step, per_epoch, config.eval_every_epochs, final):
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
