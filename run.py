"""simclr_controlled entry point: `python run.py --mode=MODE [flags]`.

Modes: show (sample grid of a dataset), train (SimCLR), probe (analyses of one
trained model), analyze (figures and claims of an experiment), reproduce (the
whole paper experiment, over --seeds), plan (the jobs of reproduce, one line
each, for a cluster). Flags follow google-research/simclr where SimCLR has
the concept. Flags are parsed once here into a frozen `Config`.

Exit status: 0 done; 2 bad input (one line on stderr naming the
flag or file and what is allowed, nothing written: every check runs before
the first write); 1 a non-finite loss (the last good checkpoint is kept) or
an I/O error; 128+N stopped by signal N (SIGINT/SIGTERM during training save
a checkpoint first). Training resumes from the latest checkpoint when the
same command is run again, also after kill -9, and ends bitwise equal to an
uninterrupted run with --deterministic.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
import sys

_USER_LOG_LEVEL = os.environ.get("TF_CPP_MIN_LOG_LEVEL")  # before the default below
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402


F = flags.FLAGS
# Fixed-choice flags are enums of the values in simclr_controlled/names.py;
# `flag_error` words a value outside them as config.validate does.
from simclr_controlled import names  # noqa: E402

flags.DEFINE_enum("mode", "train", names.MODES, "What to run (README \"Modes\").")
flags.DEFINE_enum("dataset", names.HIERARCHY, names.DATASETS, "The controlled dataset (DESIGN §1).")
flags.DEFINE_string("model_dir", "", "Folder of one model: checkpoints, metrics, results.")
flags.DEFINE_integer("seed", 0, "Fixes the dataset, the initialization and the augmentations.")
flags.DEFINE_string("seeds", "", "reproduce/plan: one replicate per seed, e.g. 0,1,2,3,4, each in "
                    "experiment_dir/seed_<S> (overrides --seed; empty: the one replicate --seed).")
# Dataset (DESIGN §1).
flags.DEFINE_string("branching", "10,10,10,10", "hierarchy: branching factor per level, top first.")
flags.DEFINE_integer("mask_size", 38, "hierarchy: mask side in pixels.")
flags.DEFINE_integer("crop_size", 28, "hierarchy: random-crop side (no resize).")
flags.DEFINE_float("val_fraction", 0.1, "hierarchy: fraction of items held out.")
flags.DEFINE_enum("shape", "square", names.SHAPES, "dsprites_mod, factors: sprite shape (factors: "
                  "when `shape` is not in --factors).")
flags.DEFINE_string("factors", names.DSPRITES_MOD_FACTORS, "factors: the factors that vary and their "
                    "counts, name:count,... from color (HUSL hues, <= 360), shape (square, ellipse, "
                    "heart, <= 3), scale ([0.5, 1], <= 64), orientation ([0, 2 pi), <= 360), x, y "
                    "(<= 64), each >= 2; a factor not listed is fixed (white, --shape, scale 1, "
                    "angle 0, centred). Default: dsprites_mod's cross (DESIGN §1.3).")
flags.DEFINE_integer("max_items", 0, "factors, dsprites_mod: at most this many items, a random "
                     "subset of the cross drawn with --seed (0: the full cross; dsprites_mod's paper "
                     "setting).")
flags.DEFINE_integer("random_bits", 0, "Easy feature (DESIGN §1.4): k extra input channels (0 to 64), "
                     "each a constant 0 or 1 per item drawn with --seed, the same in both views and "
                     "untouched by augmentation (RandBits, Chen, Luo & Li 2021).")
# Model and augmentation (DESIGN §2, §3).
flags.DEFINE_enum("model", None, names.MODELS, "Backbone (default: the paper's for the dataset).")
flags.DEFINE_float("width_multiplier", 1.0, "Scales the backbone's widths.")
flags.DEFINE_enum("resnet_stem", "cifar", names.RESNET_STEMS, "resnet18 stem: cifar (paper: 3x3 "
                  "stride 1, no max-pool) or imagenet (7x7 stride 2 + max-pool; 16x fewer FLOPs, "
                  "CPU presets).")
flags.DEFINE_string("head_widths", None, "Three comma-separated projection-head widths.")
flags.DEFINE_enum("augment", None, names.AUGMENTATIONS, "hierarchy: crop; dsprites_mod: one of "
                  "the other four (default: crop / crop_jitter).")
flags.DEFINE_float("color_jitter_strength", 0.5, "Colour distortion strength s.")
flags.DEFINE_bool("flip", False, "Random left-right flips (off: they change x-position).")
# Optimisation (SimCLR names; defaults are the paper's for the dataset).
flags.DEFINE_float("temperature", None, "NT-Xent temperature.")
flags.DEFINE_integer("train_batch_size", None, "Global batch size (items; two views each).")
flags.DEFINE_integer("train_epochs", None, "Training epochs.")
flags.DEFINE_integer("train_steps", 0, "If > 0, overrides train_epochs.")
flags.DEFINE_float("learning_rate", None, "Adam learning rate (constant).")
flags.DEFINE_float("weight_decay", 0.0, "Decoupled weight decay of Adam.")
flags.DEFINE_integer("checkpoint_epochs", 10, "Save a checkpoint every this many epochs.")
flags.DEFINE_integer("keep_checkpoint_max", 5, "Checkpoints kept.")
flags.DEFINE_integer("eval_every_epochs", 0, "hierarchy: record the Fig. 2 statistics every this "
                     "many epochs (0: only in --mode=probe).")
flags.DEFINE_integer("steps_per_loop", 0, "Steps per tf.function call (0: automatic).")
flags.DEFINE_enum("strategy", "auto", names.STRATEGIES, "tf.distribute strategy.")
flags.DEFINE_string("tpu", "", "TPU address for --strategy=tpu (or auto).")
flags.DEFINE_enum("jit_compile", "auto", names.AUTO_ON_OFF, "XLA: auto (on for TPU/GPU, off on CPU), "
                  "on, off.")
flags.DEFINE_enum("mixed_precision", "auto", names.MIXED_PRECISIONS, "auto (bfloat16 on TPU), off, "
                  "bfloat16.")
flags.DEFINE_bool("deterministic", False, "Enable TF op determinism (bitwise-reproducible runs).")
flags.DEFINE_bool("untrained", False, "train: save the initialization as the model (step 0, no "
                  "training): the dsprites_mod `untrained` baseline, as --mode=plan prints it.")
flags.DEFINE_bool("recover", False, "train: when the checkpoint state file is missing or damaged, or "
                  "the latest checkpoint is corrupt, resume from the newest intact checkpoint (the "
                  "state file is rebuilt; what was skipped is named). Without it such a folder is refused.")
# Probes and experiments (DESIGN §4, §5).
flags.DEFINE_enum("checkpoints", "latest", names.CHECKPOINTS, "probe: latest, or all saved checkpoints "
                  "(over training).")
flags.DEFINE_integer("decoder_epochs", 500, "probe: epochs of each linear decoder (paper 500).")
flags.DEFINE_enum("experiment", "", ("",) + names.EXPERIMENTS, "reproduce/plan: hierarchy, "
                  "dsprites_mod (the paper's) or feature_suppression (DESIGN §5.2) (empty: none).")
flags.DEFINE_string("experiment_dir", "", "reproduce/analyze: folder of one experiment.")
flags.DEFINE_enum("preset", "", ("",) + names.PRESETS, "reproduce: cpu or paper; loads "
                  "flags/EXPERIMENT_PRESET.cfg (flags given on the command line win; empty: none).")
flags.DEFINE_string("temperatures", "0.1,0.5,1.0", "reproduce hierarchy: one model per temperature.")
flags.DEFINE_string("augment_presets", ",".join(names.AUGMENT_PRESETS),
                    "reproduce dsprites_mod: one model per augmentation preset (plus untrained).")
flags.DEFINE_string("bit_counts", "0,5,10,15,20", "reproduce feature_suppression: one model per "
                    "number of random bits (0 to 64) and temperature (--temperatures).")
flags.DEFINE_bool("mlp_probe", False, "probe: also decode every factor with one-hidden-layer MLP "
                  "decoders (nonlinear decodability, DESIGN §4.5; costs more than the linear grid).")

PRESETS = names.PRESETS
FLAGS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flags")


def parse_floats(text: str, flag: str) -> tuple[float, ...]:
    from simclr_controlled.errors import UsageError
    try:
        values = tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise UsageError(f"--{flag}: expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise UsageError(f"--{flag}: expected comma-separated numbers, got {text!r}")
    return values


def parse_seeds(text: str, flag: str = "seeds") -> tuple[int, ...]:
    """"0,1,2" -> (0, 1, 2); empty -> () (--seeds: one replicate, --seed)."""
    from simclr_controlled.errors import UsageError
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise UsageError(f"--{flag}: expected comma-separated integers >= 0, got {text!r}") from None


def config_from_flags():
    from simclr_controlled import config as config_lib
    from simclr_controlled.config import Config, parse_int_tuple
    special = {
        "branching": parse_int_tuple(F.branching, "branching"),
        "head_widths": parse_int_tuple(F.head_widths, "head_widths") if F.head_widths else None,
        "temperatures": parse_floats(F.temperatures, "temperatures"),
        "augment_presets": tuple(p.strip() for p in F.augment_presets.split(",") if p.strip()),
        "seeds": parse_seeds(F.seeds),
        "bit_counts": parse_seeds(F.bit_counts, "bit_counts"),
    }
    fields = {f.name for f in dataclasses.fields(Config)}
    kw = {name: F[name].value for name in fields if name in F and name not in special}
    if kw["mode"] in config_lib.EXPERIMENT_MODES and kw["experiment"] in config_lib.EXPERIMENTS:
        # The experiment's models take its dataset's paper defaults (model,
        # batch, epochs), not those of the default --dataset; only a --dataset
        # given (command line or flagfile) may pick another (dsprites_mod on a
        # factors cross, DESIGN §5), so the default keeps today's runs.
        given = kw["dataset"] if F["dataset"].present else None
        kw["dataset"] = names.experiment_dataset(kw["experiment"], given)
    # Folders are made absolute here, once: every path below is then
    # independent of the working directory (relative paths, paths in
    # flagfiles, spaces and non-ASCII names all behave alike).
    for name in ("model_dir", "experiment_dir"):
        if kw[name]:
            kw[name] = os.path.abspath(kw[name])
    return Config(**special, **kw)


def default_model_dir(config):
    """train/show without --model_dir: `runs/<dataset>` (git ignores runs/), said in the first line."""
    if config.mode not in ("train", "show") or config.model_dir:
        return config
    path = os.path.join("runs", config.dataset)
    print(f"note: no --model_dir given; {'training' if config.mode == 'train' else 'writing'} into {path}")
    return dataclasses.replace(config, model_dir=os.path.abspath(path))


def check_flagfiles(argv: list[str], seen: frozenset = frozenset()) -> None:
    """Every --flagfile (nested ones too) is readable UTF-8 text; one line otherwise.

    Relative flagfile paths, like every path inside a flagfile, are relative
    to the working directory (absl's rule).
    """
    for arg in argv:
        if not arg.startswith("--flagfile="):
            continue
        path = arg.split("=", 1)[1]
        if path in seen:
            continue
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8")
        except FileNotFoundError:
            fail(f"--flagfile: {path} not found")
        except IsADirectoryError:
            fail(f"--flagfile: {path} is a folder, not a flagfile")
        except OSError as e:
            fail(f"--flagfile: {path} cannot be read ({e.strerror})")
        except UnicodeDecodeError as e:
            fail(f"--flagfile: {path} is not UTF-8 text (byte {e.start}); save it as UTF-8")
        check_flagfiles([line.strip() for line in text.splitlines()], seen | {path})


def with_preset(argv: list[str]) -> list[str]:
    """Puts flags/EXPERIMENT_PRESET.cfg before the command-line flags, so those win."""
    def value(name):
        hits = [a.split("=", 1)[1] for a in argv[1:] if a.startswith(f"--{name}=")]
        return hits[-1] if hits else ""
    preset = value("preset")
    if not preset:
        return argv
    if preset not in PRESETS:
        fail(f"--preset: unknown preset {preset!r}; allowed: {', '.join(PRESETS)}")
    experiment = value("experiment")
    if experiment not in names.EXPERIMENTS:
        fail(f"--experiment: required with --preset; allowed: {', '.join(names.EXPERIMENTS)}")
    path = os.path.join(FLAGS_DIR, f"{experiment}_{preset}.cfg")
    if not os.path.isfile(path):
        fail(f"--preset: {path} not found")
    return argv[:1] + [f"--flagfile={path}"] + argv[1:]


def fail(message: str, status: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(status)


_FLAG_KINDS = {"int": "an integer", "float": "a number", "bool": "true or false"}


def flag_error(e: Exception) -> str:
    """absl's parse error as one line naming the flag and what it accepts."""
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    if isinstance(e, flags.UnrecognizedFlagError):
        import difflib
        close = difflib.get_close_matches(e.flagname, list(F), n=3)
        hint = f"did you mean --{', --'.join(close)}? " if close else ""
        return f"--{e.flagname}: unknown flag; {hint}see `python run.py --help`"
    if isinstance(e, flags.CantOpenFlagFileError):
        return "--flagfile: " + text.replace("ERROR:: ", "")
    m = re.match(r"flag --([\w.-]+)=(.*?): ", text)
    if m and m.group(1) in F:
        name, value = m.groups()
        if name in names.FLAG_CHOICES:
            # An enum's value outside its choices: config.validate's words for it
            # (--augment's choices those of --dataset as parsed so far, else its default).
            from simclr_controlled import config as config_lib
            full, head = str(e), f"flag --{name}="
            end = full.rfind(": value should be one of <")
            if full.startswith(head) and end >= len(head):
                value = full[len(head):end]
            message = config_lib.choice_error(name, value, F["dataset"].value)
            if message:
                return message
        kind = _FLAG_KINDS.get(F[name].flag_type())
        if kind:
            return f"--{name}: expected {kind}, got {value!r}"
        return f"--{name}: {text[m.end():]}"
    m = re.match(r"Missing value for flag --([\w.-]+)", text)
    if m:
        return f"--{m.group(1)}: missing value; give --{m.group(1)}=VALUE"
    return text


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow and finds its devices with the start-up messages held back.

    TF's C++ runtime writes them straight to file descriptor 2 while its
    libraries load and the GPU platform starts, before any log level applies
    (TF_CPP_MIN_LOG_LEVEL does not reach them in TF 2.21), so an error found
    after TF starts would not be the only line on stderr. Held back: INFO
    lines, absl's "before InitializeLog" banner, the failed cuInit of a
    machine without a GPU driver (TF then runs on the CPU), and the
    retracing warning of `_PerModelTracing`. Everything else
    (warnings, errors) is passed on. A user who sets TF_CPP_MIN_LOG_LEVEL
    below 2 sees everything.
    """
    if "tensorflow" in sys.modules:
        return
    if _USER_LOG_LEVEL is not None and _USER_LOG_LEVEL.strip() in ("0", "1"):
        import tensorflow as tf
        tf.config.list_physical_devices("GPU")
        return
    logging.getLogger("tensorflow").addFilter(_PerModelTracing())
    import tempfile
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow as tf
            tf.config.list_physical_devices("GPU")  # starts the GPU platform (cuInit)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode("utf-8", "replace").splitlines()
            kept = [line for line in lines if not _TF_NOISE.search(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr)


class _PerModelTracing(logging.Filter):
    """Holds back TF's "N out of the last M calls ... triggered tf.function
    retracing" warning.

    A run of several models in one process (`reproduce`, its analysis, a
    probe of every checkpoint) builds each model's training loop, inference
    step and augmentation anew, and each is traced once for its model. TF's
    detector counts traces per Python code object, not per function, so
    these first traces of new functions read to it as retracing of one.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


_TF_NOISE = re.compile(r"^I\d{4} \S+\s+\d+ \S+:\d+\] "
                       r"|^WARNING: All log messages before absl::InitializeLog\(\) is called"
                       r"|^E\d{4} \S+\s+\d+ \S+:\d+\] failed call to cuInit")


def main(argv: list[str]) -> int:
    """The command line; returns the exit status (bad input: one line, exit 2).

    Order: flags, then the checks that need neither TensorFlow nor the data
    (`modes.check`), then TF, then the mode (which checks the rest before its
    first write). Re-entrant, so tests can call it many times in one process.
    """
    if F.is_parsed():
        F.unparse_flags()
    if any(a in ("-h", "--help", "--helpshort", "--helpfull") for a in argv[1:]):
        print(__doc__.strip() + "\n\nFlags:\n" + F.get_help())
        return 0
    argv = with_preset(list(argv))
    check_flagfiles(argv[1:])
    try:
        rest = F(argv)
    except flags.Error as e:
        fail(flag_error(e))
    if len(rest) > 1:
        fail(f"unexpected argument {rest[1]!r}; flags are given as --name=value")
    from simclr_controlled.errors import UsageError
    from simclr_controlled import modes, workdir
    try:
        config = config_from_flags().with_dataset_defaults()
        config = default_model_dir(config)
        modes.check(config)
        # A folder that an earlier or running training locked is locked now,
        # before TensorFlow and the data load, so a concurrent run is refused at once.
        with workdir.lock_if_used_before(config.model_dir if config.mode == "train" else ""):
            if config.mode in modes.NEEDS_TENSORFLOW:
                import_tensorflow_quietly()
            return modes.run(config)
    except UsageError as e:
        fail(str(e))
    except KeyboardInterrupt:
        fail("interrupted; rerun the same command to resume", 130)
    except OSError as e:
        fail(f"{e.filename or 'I/O'}: {e.strerror or e}", 1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
