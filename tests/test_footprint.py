"""simclr_controlled.footprint and the checks of config.validate built on it.

Parameter counts and layer output sizes are checked exactly against the
built Keras models; the memory estimate against the peak RSS of real
training steps (fresh processes); the caps and the bombs of issue "resource
bombs fail fast" against `config.validate` (the command-line cases are in
tests/test_cli.py's CASES).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from simclr_controlled import config as config_lib
from simclr_controlled import footprint, models
from simclr_controlled.config import Config
from simclr_controlled.errors import UsageError
from simclr_controlled.models import head as head_lib
from simclr_controlled.models import lenet as lenet_lib
from simclr_controlled.models import resnet as resnet_lib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GiB = 2**30
# The 24 GiB machine the paper's settings were run on (tests do not depend on this one's size).
MACHINE = int(23.4 * 2**30)

HIERARCHY = Config(mode="train", model_dir="/nonexistent/m").with_dataset_defaults()
DSPRITES = Config(mode="train", dataset="dsprites_mod", model_dir="/nonexistent/m").with_dataset_defaults()
DSPRITES_CPU = dataclasses.replace(DSPRITES, width_multiplier=0.25, resnet_stem="imagenet")


def test_copies_agree_with_the_models():
    assert footprint.LENET_CONV_FILTERS == lenet_lib.CONV_FILTERS
    assert (footprint.LENET_KERNEL, footprint.LENET_POOL) == (lenet_lib.KERNEL, lenet_lib.POOL)
    assert footprint.RESNET_STAGE_WIDTHS == resnet_lib.STAGE_WIDTHS
    assert footprint.RESNET_BLOCKS_PER_STAGE == resnet_lib.BLOCKS_PER_STAGE
    assert footprint.RESNET_STEMS == resnet_lib.STEMS
    assert footprint.DEFAULT_HEAD_WIDTHS == models.DEFAULT_HEAD_WIDTHS
    assert footprint.HEAD_OUT_BIAS == models.HEAD_OUT_BIAS
    for width in (6, 16, 64, 512):
        for m in (0.01, 0.125, 0.25, 0.3, 0.5, 1.0, 1.7, 3.0, 1e3):
            assert footprint.scaled(width, m) == lenet_lib.scaled(width, m)
    assert footprint.scaled(64, 1e308) > 6 * 10**309  # exact integer, no float overflow


def test_footprint_imports_no_tensorflow():
    code = ("import sys\nfrom simclr_controlled import config, footprint\n"
            "print(any(m.split('.')[0] in ('tensorflow', 'keras', 'numpy') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.stdout.strip() == "False", out.stderr


# (model, input shape, build_model keyword arguments)
BUILDS = [
    ("lenet", (28, 28, 4), {}),  # the paper's hierarchy model
    ("lenet", (13, 17, 3), dict(width_multiplier=0.5, head_widths=(7, 5, 3))),
    ("lenet", (11, 11, 1), dict(width_multiplier=2.3)),
    ("resnet18", (64, 64, 3), dict(width_multiplier=0.25, stem="imagenet")),  # dSprites CPU preset
    ("resnet18", (64, 64, 3), dict(width_multiplier=1.0, stem="cifar")),  # the paper's dSprites model
    ("resnet18", (20, 20, 4), dict(width_multiplier=0.125, head_widths=(9, 7, 5), stem="cifar")),
    ("resnet18", (9, 9, 2), dict(width_multiplier=0.3, head_widths=(33, 17, 11), stem="imagenet")),
]


def _kwargs(kw):
    return dict(width_multiplier=kw.get("width_multiplier", 1.0), head_widths=kw.get("head_widths"),
                stem=kw.get("stem", "cifar"))


@pytest.mark.parametrize("name,shape,kw", BUILDS, ids=[f"{b[0]}-{b[1]}-{b[2]}" for b in BUILDS])
def test_parameter_counts_and_layer_outputs_are_exact(name, shape, kw):
    model = models.build_model(name, shape, **kw)
    trainable, frozen = footprint.param_counts(name, shape, **_kwargs(kw))
    assert trainable == sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert frozen == sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert trainable + frozen == model.count_params()
    assert footprint.step_memory_of(name, shape, 4, **_kwargs(kw)).params == model.count_params()
    built = {layer.name: int(np.prod(layer.output.shape[1:])) for layer in model.layers}
    assert footprint.layer_outputs(name, shape, **_kwargs(kw)) == built


def test_known_parameter_counts():
    assert footprint.param_counts("lenet", (28, 28, 4)) == (642526, 0)  # tests/test_models.py
    assert sum(footprint.param_counts("resnet18", (64, 64, 3))) == 11_769_280


def test_min_input_side_is_exact():
    """LeNet builds (and runs) at its minimum side and not one pixel below;
    ResNet-18 ("same" padding, global pooling) at 1x1."""
    init = head_lib.SeededInit(0)
    low = footprint.min_input_side("lenet")
    assert low == 11
    out = lenet_lib.lenet_backbone(keras.Input((low, low, 1)), width_multiplier=1.0, init=init,
                                   dtype_policy="float32")
    assert tuple(out.shape[1:]) == (16,)
    with pytest.raises(ValueError):  # Keras itself: the last pool's output would be empty
        lenet_lib.lenet_backbone(keras.Input((low - 1, low - 1, 1)), width_multiplier=1.0, init=init,
                                 dtype_policy="float32")
    model = models.build_model("lenet", (low, low, 2))
    assert model(np.zeros((2, low, low, 2), np.float32))["head_out"].shape == (2, 84)
    assert footprint.min_input_side("resnet18") == 1
    for stem in footprint.RESNET_STEMS:
        model = models.build_model("resnet18", (1, 1, 2), width_multiplier=0.125, stem=stem)
        assert model(np.zeros((2, 1, 1, 2), np.float32), training=True)["head_out"].shape == (2, 128)
    with pytest.raises(UsageError):
        models.build_model("resnet18", (0, 0, 2))


def test_crop_size_minimum_in_validate():
    config_lib.validate(dataclasses.replace(HIERARCHY, crop_size=11))
    for crop in (10, 5, 1):
        with pytest.raises(UsageError, match=r"^--crop_size: lenet needs inputs of at least 11x11.*"
                                             r"allowed: 11 to mask_size=38, got " + str(crop)):
            config_lib.validate(dataclasses.replace(HIERARCHY, crop_size=crop))
    with pytest.raises(UsageError, match=r"^--crop_size: .*--mask_size >= 11"):
        config_lib.validate(dataclasses.replace(HIERARCHY, mask_size=10, crop_size=10))
    # ResNet-18 on hierarchy crops takes any side.
    config_lib.validate(dataclasses.replace(HIERARCHY, model="resnet18", crop_size=1), memory_bytes=MACHINE)
    # Modes that build no model from these flags do not judge them.
    for mode in ("show", "probe", "analyze"):
        config_lib.validate(dataclasses.replace(HIERARCHY, mode=mode, crop_size=5))


def _total(config):
    return footprint.step_memory(config).total_bytes


def test_estimate_grows_with_every_size_setting():
    for base in (HIERARCHY, DSPRITES, DSPRITES_CPU):
        for field, values in (("width_multiplier", (0.1, 0.25, 0.5, 1.0, 2.0, 8.0)),
                              ("train_batch_size", (2, 8, 64, 256, 4096)),
                              ("head_widths", ((8, 8, 8), (64, 64, 64), (512, 512, 128), (4096, 4096, 4096))),
                              ("crop_size", (11, 16, 28, 38))):
            if field == "crop_size" and base.dataset != "hierarchy":
                continue
            totals = [_total(dataclasses.replace(base, **{field: v})) for v in values]
            assert totals == sorted(totals) and totals[0] < totals[-1], (field, totals)
    # Views, not items: the activations of a batch of N items are those of 2N views.
    one = footprint.step_memory_of("lenet", (28, 28, 4), 10)
    two = footprint.step_memory_of("lenet", (28, 28, 4), 20)
    assert two.state_bytes == one.state_bytes and two.activation_bytes > 2 * one.activation_bytes - 1


def test_paper_settings_fit_on_the_machine_they_ran_on():
    """LeNet batch 256; ResNet-18 width 1 cifar stem batch 128 on 64x64x3 (ran at
    about 8 GB resident on a 24 GiB machine); the dSprites CPU preset."""
    estimates = {name: _total(c) for name, c in (("lenet", HIERARCHY), ("resnet18", DSPRITES),
                                                  ("resnet18_cpu", DSPRITES_CPU))}
    assert estimates["lenet"] < 0.2 * GiB
    assert 6 * GiB < estimates["resnet18"] < 12 * GiB  # conservative, not absurd
    assert estimates["resnet18_cpu"] < 0.5 * GiB
    for c in (HIERARCHY, DSPRITES, DSPRITES_CPU):
        config_lib.validate(c, memory_bytes=MACHINE)
        config_lib.check_model_fits(c, memory_bytes=MACHINE)
    # ... and the same through reproduce (the experiment's dataset is judged).
    for experiment, extra in (("hierarchy", {}),
                              ("dsprites_mod", dict(model="resnet18", train_batch_size=128))):
        c = dataclasses.replace(HIERARCHY, mode="reproduce", experiment=experiment,
                                experiment_dir="/x/e", **extra)
        config_lib.validate(c, memory_bytes=MACHINE)


BOMBS = [
    (HIERARCHY, dict(width_multiplier=1000), "width_multiplier", r"1000 needs about .*GiB"),
    (DSPRITES, dict(width_multiplier=1000), "width_multiplier", r"1000 needs about .*TiB"),
    (HIERARCHY, dict(head_widths=(10**9, 128, 128)), "head_widths", r"1000000000,128,128 needs about .*TiB"),
    (DSPRITES, dict(head_widths=(128, 10**7, 128)), "head_widths", r"128,10000000,128 needs"),
    (HIERARCHY, dict(train_batch_size=200_000), "train_batch_size", r"200000 needs about .*TiB"),
    (DSPRITES, dict(train_batch_size=4096), "train_batch_size", r"4096 needs about"),
    (HIERARCHY, dict(mask_size=3000, crop_size=3000), "crop_size", r"3000 needs about"),
    (HIERARCHY, dict(width_multiplier=1e308), "width_multiplier", r"1e\+308 needs about .*e\+\d+ bytes"),
    (HIERARCHY, dict(head_widths=(10**400, 1, 1)), "head_widths", r"1\.0e\+400,1,1 needs"),
    (DSPRITES, dict(width_multiplier=100, strategy="tpu"), "width_multiplier", r"weights, Adam slots"),
]


@pytest.mark.parametrize("base,change,flag,pattern", BOMBS, ids=[f"{b[2]}-{i}" for i, b in enumerate(BOMBS)])
def test_bombs_are_refused_naming_the_flag(base, change, flag, pattern):
    config = dataclasses.replace(base, **change)
    t0 = time.perf_counter()
    with pytest.raises(UsageError) as e:
        config_lib.validate(config, memory_bytes=MACHINE)
    assert time.perf_counter() - t0 < 1.0
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"--{flag}: "), msg
    assert re.search(pattern, msg), msg
    assert "more than this machine's 23.4 GiB memory" in msg, msg
    # Where a value fits, the message gives it, and that value does fit.
    m = re.search(r"allowed here: (?:widths of )?at most ([\d.,e+-]+)", msg)
    assert m, msg
    fit = float(m.group(1).replace(",", ""))
    if flag == "head_widths":
        value = tuple(min(w, int(fit)) for w in config.head_widths)
    else:
        value = type(getattr(base, flag))(fit)
    config_lib.validate(dataclasses.replace(config, **{flag: value}), memory_bytes=MACHINE)
    # Without memory_bytes: this machine's physical memory.
    step = footprint.step_memory(config)
    needed = (step.state_bytes if config.strategy == "tpu" else step.total_bytes) + footprint.RUNTIME_BYTES
    if needed > footprint.physical_memory_bytes():
        with pytest.raises(UsageError, match=f"^--{flag}: .*more than this machine's"):
            config_lib.validate(config)
    else:
        config_lib.validate(config)


def test_memory_check_only_where_a_model_is_trained_from_these_flags():
    bomb = dataclasses.replace(HIERARCHY, width_multiplier=1000)
    for mode in ("show", "probe", "analyze"):
        config_lib.validate(dataclasses.replace(bomb, mode=mode), memory_bytes=MACHINE)
    reproduce = dataclasses.replace(bomb, mode="reproduce", experiment="hierarchy", experiment_dir="/x/e")
    with pytest.raises(UsageError, match="^--width_multiplier: 1000 needs"):
        config_lib.validate(reproduce, memory_bytes=MACHINE)
    # reproduce judges the experiment's dataset: ResNet-18 at batch 512 fits on hierarchy
    # crops (28x28x4) but not on dSprites (64x64x3).
    big = dataclasses.replace(HIERARCHY, mode="reproduce", model="resnet18", train_batch_size=512,
                              experiment_dir="/x/e")
    config_lib.validate(dataclasses.replace(big, experiment="hierarchy"), memory_bytes=MACHINE)
    with pytest.raises(UsageError, match="^--train_batch_size: 512 needs"):
        config_lib.validate(dataclasses.replace(big, experiment="dsprites_mod"), memory_bytes=MACHINE)
    config_lib.validate(dataclasses.replace(big, experiment=""), memory_bytes=MACHINE)  # modes.check asks
    # memory_bytes=0: not checked.
    config_lib.validate(bomb, memory_bytes=0)


def test_physical_memory_is_read():
    assert footprint.physical_memory_bytes() == os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") > 0


CAPS = [
    ("train_epochs", config_lib.MAX_EPOCHS, "1 to 1,000,000"),
    ("train_steps", config_lib.MAX_TRAIN_STEPS, "0 (use train_epochs) to 1,000,000,000"),
    ("checkpoint_epochs", config_lib.MAX_EPOCHS, "1 to 1,000,000"),
    ("eval_every_epochs", config_lib.MAX_EPOCHS, "0 (off) to 1,000,000"),
    ("decoder_epochs", config_lib.MAX_DECODER_EPOCHS, "1 to 10,000"),
    ("steps_per_loop", config_lib.MAX_STEPS_PER_LOOP, "0 (automatic) to 1,000,000"),
    ("keep_checkpoint_max", config_lib.MAX_KEEP_CHECKPOINTS, "1 to 10,000"),
]


@pytest.mark.parametrize("flag,cap,allowed", CAPS, ids=[c[0] for c in CAPS])
def test_counts_are_capped(flag, cap, allowed):
    config_lib.validate(dataclasses.replace(HIERARCHY, **{flag: cap}), memory_bytes=MACHINE)
    for value in (cap + 1, 2**63 - 1, 10**30):
        with pytest.raises(UsageError) as e:
            config_lib.validate(dataclasses.replace(HIERARCHY, **{flag: value}), memory_bytes=MACHINE)
        assert str(e.value) == f"--{flag}: allowed: {allowed}, got {value}"


def test_caps_keep_step_arithmetic_in_int64():
    from simclr_controlled.datasets import hierarchy
    most_steps_per_epoch = hierarchy.MAX_ITEMS // config_lib.MIN_TRAIN_BATCH_SIZE
    assert config_lib.MAX_EPOCHS * most_steps_per_epoch * 64 < 2**63  # x 64 replicas
    assert config_lib.MAX_TRAIN_STEPS * 64 < 2**63


def test_batch_of_one_is_refused():
    config_lib.validate(dataclasses.replace(HIERARCHY, train_batch_size=2), memory_bytes=MACHINE)
    with pytest.raises(UsageError, match=r"^--train_batch_size: must be at least 2 .*no negatives.*got 1$"):
        config_lib.validate(dataclasses.replace(HIERARCHY, train_batch_size=1))


def test_formatting_handles_any_size():
    assert footprint.format_bytes(512) == "512 bytes"
    assert footprint.format_bytes(3 * GiB // 2) == "1.5 GiB"
    assert footprint.format_bytes(10**700).endswith("e+700 bytes")
    assert footprint.format_count(642526) == "642.5 k"
    assert footprint.format_count(11_769_280) == "11.8 M"
    assert footprint.format_count(10**400) == "1.0e+400"


# Peak RSS of real training steps (fresh processes, CPU): the estimate is above
# what the step adds per view, and the step's whole growth stays below the
# estimate plus a constant for first-call kernels and caches.
_MEASURE = r"""
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf, keras
from simclr_controlled import losses, models
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
a = json.loads(sys.argv[1])
tf.constant(1.0) + 1
base = status("VmRSS")
model = models.build_model(a["model"], tuple(a["shape"]), width_multiplier=a["width"], stem=a["stem"])
opt = keras.optimizers.Adam(1e-3)
opt.build(model.trainable_variables)
views = tf.constant(np.random.default_rng(0).uniform(size=(2 * a["batch"], *a["shape"])).astype(np.float32))
@tf.function
def step(views):
    with tf.GradientTape() as tape:
        loss = losses.nt_xent(model(views, training=True)["head_out"], 0.5)[0]
    opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
    return loss
step(views).numpy()
print(json.dumps({"growth": status("VmHWM") - base}))
"""

MEASURED = [  # two batch sizes per model: the slope removes constant overheads
    dict(model="lenet", shape=(28, 28, 4), width=1.0, stem="cifar", batches=(64, 512)),
    dict(model="resnet18", shape=(64, 64, 3), width=0.25, stem="imagenet", batches=(16, 128)),
]
FIRST_CALL_BYTES = 256 * 2**20


def _measure(runs):
    env = dict(os.environ, PYTHONPATH=ROOT, CUDA_VISIBLE_DEVICES="")
    procs = [subprocess.Popen([sys.executable, "-c", _MEASURE, json.dumps(r)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in runs]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr[-2000:]
        out.append(json.loads(stdout.strip().splitlines()[-1])["growth"])
    return out


@pytest.mark.parametrize("spec", MEASURED, ids=[m["model"] for m in MEASURED])
def test_estimate_against_measured_peak_memory(spec):
    runs = [dict(model=spec["model"], shape=spec["shape"], width=spec["width"], stem=spec["stem"], batch=b)
            for b in spec["batches"]]
    measured = _measure(runs)
    estimated = [footprint.step_memory_of(spec["model"], spec["shape"], b, spec["width"], None,
                                          spec["stem"]).total_bytes for b in spec["batches"]]
    lo, hi = spec["batches"]
    measured_per_view = (measured[1] - measured[0]) / (2 * (hi - lo))
    estimated_per_view = (estimated[1] - estimated[0]) / (2 * (hi - lo))
    report = dict(measured=measured, estimated=estimated, measured_per_view=measured_per_view,
                  estimated_per_view=estimated_per_view)
    assert estimated_per_view >= measured_per_view, report  # conservative
    assert estimated_per_view <= 4 * measured_per_view, report  # not absurd
    for m, e in zip(measured, estimated):
        assert m <= e + FIRST_CALL_BYTES, report

