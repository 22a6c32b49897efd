"""`--mode=plan`: the independent jobs of `--mode=reproduce`, one per line,
for a cluster's own scheduler (a SLURM job array, `xargs -P`, ...).

Takes reproduce's flags (`--experiment`, `--seeds`, a preset). Checks
everything reproduce checks, writes the experiment's `experiment.json` files
(so `--mode=analyze` finds the layout), trains nothing, and prints on stdout
one line per model of every seed: `python run.py --mode=train ... &&
python run.py --mode=probe ...` (absolute folders, shell-quoted). Each line is
a job of its own and is resumable like reproduce. After every job, run the
`--mode=analyze` command printed on stderr. Running the lines one by one and
then analyze gives the same claims as reproduce.
"""
from __future__ import annotations

import dataclasses
import os
import shlex
import sys

from simclr_controlled.config import Config
from simclr_controlled.modes import experiment

# Fields that describe an experiment or a probe, not the model one training makes.
_NOT_TRAINING_FLAGS = ("mode", "model_dir", "recover", "checkpoints", "decoder_epochs",
                       "experiment_dir", "experiment", "temperatures", "augment_presets", "seeds",
                       "bit_counts", "mlp_probe")


def training_flags(config: Config) -> list[str]:
    """The run.py flags that train exactly `config`'s model (`--mode=train`
    first; every setting that differs from the flag default, and every one
    whose default depends on the dataset)."""
    out = ["--mode=train"]
    default = Config()
    for f in dataclasses.fields(Config):
        value = getattr(config, f.name)
        if f.name in _NOT_TRAINING_FLAGS or value == getattr(default, f.name) and f.name != "dataset":
            continue
        if isinstance(value, bool):
            out.append(f"--{f.name}" if value else f"--no{f.name}")
        elif isinstance(value, tuple):
            out.append(f"--{f.name}={','.join(format(v) if isinstance(v, int) else repr(v) for v in value)}")
        elif isinstance(value, float):
            out.append(f"--{f.name}={value!r}")
        else:
            out.append(f"--{f.name}={value}")
    out.append(f"--model_dir={config.model_dir}")
    return out


def jobs(config: Config, python: str = "python", script: str = "run.py") -> list[str]:
    """One shell line per model: train (or save the untrained one), then probe."""
    out = []
    for rep in experiment.replicates(config).values():
        for c in experiment.models(rep).values():
            train = [python, script] + training_flags(c)
            probe = [python, script, "--mode=probe", f"--model_dir={c.model_dir}",
                     "--checkpoints=latest", f"--decoder_epochs={c.decoder_epochs}"] + \
                (["--mlp_probe"] if c.mlp_probe else [])
            out.append(f"{shlex.join(train)} && {shlex.join(probe)}")
    return out


def analyze_command(config: Config, python: str = "python", script: str = "run.py") -> str:
    return shlex.join([python, script, "--mode=analyze", f"--experiment_dir={config.experiment_dir}"])


def entry_point() -> str:
    """run.py as this process was started, relative to the working directory
    (the printed jobs run from the folder `plan` ran in)."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0].endswith("run.py") else "run.py"
    return os.path.relpath(os.path.abspath(argv0))


def run(config: Config, out=None, err=None) -> int:
    # The streams are looked up at call time (a default bound at import would
    # miss a later redirection of sys.stdout, as pytest's capture does).
    out, err = out or sys.stdout, err or sys.stderr
    if earlier := experiment.recorded_seeds(config):
        print(f"# {config.experiment_dir} already records seed(s) {','.join(map(str, earlier))}; "
              "analyze pools them with these", file=err)
    experiment.write(config)
    script = entry_point()
    lines = jobs(config, script=script)
    for line in lines:
        print(line, file=out)
    print(f"# {len(lines)} independent jobs above, one per line, to run from {os.getcwd()}; "
          f"when all are done:\n# {analyze_command(config, script=script)}", file=err)
    return 0
