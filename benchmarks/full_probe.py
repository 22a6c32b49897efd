"""Benchmark: the full probe metric set of one dSprites model vs its linear grid (DESIGN §4.5).

The issue's target: the full metric set (4 layers, 4 factors, 15,360 images)
in at most twice the time of the linear decoding grid. One model of the
dSprites CPU preset (`flags/dsprites_mod_cpu.cfg`: ResNet-18 at width 0.25,
so head_input 128, head_1 512, head_2 512, head_out 128), the real
dsprites_mod labels and decoding splits (seed 0), and synthetic activations
with factor structure: ReLU of random projections of the one-hot factors plus
noise, passed through a random dense-ReLU-dense-ReLU-dense head. The
label-free metrics' two views are the same maps of 1,000 items with fresh
noise (the model's forward passes of those views, which a real probe also
runs, are not timed). Times, with `--mode=probe`'s own functions:

(a) the linear decoding grid (`probe.decodability`, 4 layers x 3 factors at
    `--decoder_epochs`, the preset's 30);
(b) the rest of the full set: `factor_report.factor_metrics`,
    `factor_report.label_free_metrics` and the MLP probe at its probe-mode
    settings (`probe.mlp_decodability`, `mlp_decoding.probe_settings`);

over `--passes` passes: the first includes tracing and XLA compilation (a
probe of one checkpoint), later ones do not (each further checkpoint of
`--checkpoints=all`). Prints each part and the ratio (a + b) / a, and the
ratio extrapolated to the paper's 500 decoder epochs from the warm pass
(decoders linear in epochs, the factor metrics fixed).

    python benchmarks/full_probe.py [--decoder_epochs 30] [--passes 2] [--mlp probe|full]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from simclr_controlled import data_spec, names  # noqa: E402
from simclr_controlled.config import Config  # noqa: E402
from simclr_controlled.datasets import factors  # noqa: E402
from simclr_controlled.datasets.record import Dataset  # noqa: E402
from simclr_controlled.models import DEFAULT_HEAD_WIDTHS, TAPS  # noqa: E402
from simclr_controlled.models.lenet import scaled  # noqa: E402
from simclr_controlled.models.resnet import STAGE_WIDTHS  # noqa: E402
from simclr_controlled.modes import probe  # noqa: E402
from simclr_controlled.probes import factor_report, mlp_decoding  # noqa: E402

PRESET = os.path.join(ROOT, "flags", "dsprites_mod_cpu.cfg")
PAPER_EPOCHS = 500
NOISE = 0.5


def preset_value(flag: str) -> str:
    """The value of `--flag` in the dSprites CPU preset."""
    with open(PRESET) as f:
        for line in f:
            if line.startswith(f"--{flag}="):
                return line.strip().split("=", 1)[1]
    raise KeyError(flag)


def layer_widths() -> dict:
    """Tap -> width of the preset's model (head_input: the backbone's last stage)."""
    head = DEFAULT_HEAD_WIDTHS[names.RESNET18]
    return dict(zip(TAPS, (scaled(STAGE_WIDTHS[-1], float(preset_value("width_multiplier"))),) + head))


def dataset(seed: int = 0) -> Dataset:
    """dsprites_mod's labels and decoding splits, without rendering its images."""
    spec = data_spec.parse_factors(names.DSPRITES_MOD_FACTORS)
    labels = factors.item_labels(spec, factors.cross_indices(spec, 0, seed))
    n = len(labels["color"])
    return Dataset(name=names.DSPRITES_MOD, images=np.zeros((n, 1, 1, 1), np.float32), labels=labels,
                   train_idx=np.arange(n), val_idx=np.zeros(0, np.int64), params={},
                   decoding_splits=factors.decoding_splits(labels, factors.draw_held_out(spec, seed)))


def synthetic_model(widths: dict, num_inputs: int, seed: int = 0):
    """A random 'model': one-hot factors [n, num_inputs] -> float32 activations per tap."""
    rng = np.random.default_rng(seed)
    dims = [num_inputs] + [widths[t] for t in TAPS]
    mats = [rng.normal(size=(a, b)) / np.sqrt(a if k else 1) for k, (a, b) in enumerate(zip(dims, dims[1:]))]

    def run(onehot: np.ndarray, noise_seed: int) -> dict:
        noise = np.random.default_rng(noise_seed)
        h = np.maximum(onehot @ mats[0] + NOISE * noise.normal(size=(len(onehot), dims[1])), 0)
        out = {TAPS[0]: h}
        for k, tap in enumerate(TAPS[1:], 1):
            h = h @ mats[k]
            h = out[tap] = h if tap == TAPS[-1] else np.maximum(h, 0)  # head_out has no ReLU
        return {t: a.astype(np.float32) for t, a in out.items()}
    return run


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--decoder_epochs", type=int, default=int(preset_value("decoder_epochs")),
                   help="linear decoder epochs (default: the dSprites CPU preset's)")
    p.add_argument("--passes", type=int, default=2, help="passes timed (the first one cold)")
    p.add_argument("--mlp", choices=("probe", "full"), default="probe",
                   help="probe: the MLP probe at probe-mode settings; full: hidden 512, the "
                        "9-point grid at --decoder_epochs")
    p.add_argument("--threads", type=int, default=0,
                   help="TF intra-op threads (0: TF's default, all cores)")
    a = p.parse_args(argv)
    if min(a.decoder_epochs, a.passes) < 1 or a.threads < 0:
        p.error("--decoder_epochs, --passes must be >= 1, --threads >= 0")
    if a.threads:
        tf.config.threading.set_intra_op_parallelism_threads(a.threads)
        tf.config.threading.set_inter_op_parallelism_threads(a.threads)
    if a.mlp == "full":  # what the unreduced probe would cost in the same loop
        mlp_decoding.probe_settings = lambda e: dict(epochs=e)

    ds = dataset()
    names_, values = factor_report.factor_table(ds.labels)
    onehot = np.concatenate([np.eye(int(v.max()) + 1)[v] for v in values.T], axis=1)
    widths = layer_widths()
    model = synthetic_model(widths, onehot.shape[1])
    acts = model(onehot, 1)
    view_idx = np.sort(np.random.default_rng(2).choice(
        len(onehot), factor_report.NUM_VIEW_ITEMS, replace=False))
    view_a, view_b = model(onehot[view_idx], 3), model(onehot[view_idx], 4)
    config = Config(dataset=names.DSPRITES_MOD, decoder_epochs=a.decoder_epochs, seed=0)
    mlp_kw = mlp_decoding.probe_settings(a.decoder_epochs)
    quiet = lambda *_: None  # noqa: E731
    parts = {
        "(a) linear grid": lambda: probe.decodability(config, ds, acts, quiet),
        "(b) factor_metrics": lambda: factor_report.factor_metrics(acts, ds.labels, 0),
        "(b) label_free_metrics": lambda: factor_report.label_free_metrics(view_a, view_b, acts),
        "(b) MLP probe": lambda: probe.mlp_decodability(config, ds, acts, quiet),
    }
    print(f"device: {tf.config.list_logical_devices()[-1].name}; threads: {a.threads or 'TF default'}; "
          f"{len(onehot):,} items, factors {', '.join(names_)}; widths "
          + ", ".join(f"{t} {w}" for t, w in widths.items())
          + f"; linear: {probe.decoded_factors(ds)} x 9 grid points x {a.decoder_epochs} epochs; MLP: "
          + ", ".join(f"{k} {v}" for k, v in mlp_kw.items())
          + f"; load average at start {os.getloadavg()[0]:.1f}")

    times = []  # per pass: part -> (wall s, CPU s)
    for k in range(a.passes):
        times.append({})
        for name, fn in parts.items():
            t, c = time.perf_counter(), time.process_time()
            fn()
            times[-1][name] = (time.perf_counter() - t, time.process_time() - c)
        print(f"\npass {k + 1} ({'cold: tracing and compilation included' if k == 0 else 'warm'}; "
              f"load average {os.getloadavg()[0]:.1f})")
        print(f"{'part':<26}{'wall s':>9}{'CPU s':>9}{'/ linear (CPU)':>16}")
        lin_cpu = times[-1]["(a) linear grid"][1]
        for name, (w, c) in times[-1].items():
            print(f"{name:<26}{w:>9.1f}{c:>9.1f}{c / lin_cpu:>16.2f}")
        full = [sum(v[i] for v in times[-1].values()) for i in (0, 1)]
        lin = times[-1]["(a) linear grid"]
        print(f"{'full set (a + b)':<26}{full[0]:>9.1f}{full[1]:>9.1f}{full[1] / lin[1]:>16.2f}"
              f"   -> full / linear: {full[0] / lin[0]:.2f} wall, {full[1] / lin[1]:.2f} CPU (target <= 2)")

    warm = times[-1]
    scale = PAPER_EPOCHS / a.decoder_epochs
    decoders = ("(a) linear grid", "(b) MLP probe")
    ext = {n: c * (scale if n in decoders else 1.0) for n, (_, c) in warm.items()}
    print(f"\nextrapolated to --decoder_epochs={PAPER_EPOCHS} from pass {a.passes} (decoders x {scale:.1f}, "
          f"the rest fixed): linear {ext['(a) linear grid'] / 60:.1f} CPU min, full set "
          f"{sum(ext.values()) / 60:.1f} CPU min -> full / linear "
          f"{sum(ext.values()) / ext['(a) linear grid']:.2f}")


if __name__ == "__main__":
    main()
