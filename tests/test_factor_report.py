"""The factor metrics `--mode=probe` stores for the sprite datasets
(probes/factor_report.py, DESIGN §4.5): known answers on crafted
activations, and a tiny `factors` model with random bits probed end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest

from simclr_controlled.probes import factor_report, mlp_decoding
from tests.test_reproduce import run


def _cross():
    g = np.meshgrid(np.arange(3), np.arange(5), np.arange(6), np.arange(4), indexing="ij")
    labels = {k: v.ravel() for k, v in zip(("shape", "scale", "x", "y"), g)}
    labels["position"] = labels["x"] * 4 + labels["y"]
    return labels


def test_a_code_equal_to_the_factors_scores_perfectly():
    labels = _cross()
    names, values = factor_report.factor_table(labels)
    assert names == ["shape", "scale", "x", "y"] and values.shape == (360, 4)
    out = factor_report.factor_metrics({"head_input": values.astype(float)}, labels, seed=0)["head_input"]
    assert set(out["r2"]) == {"scale", "x", "y"}          # shape is not ordinal
    assert all(v > 0.999 for v in out["r2"].values())
    # Each factor's importance sits on its own dimension (linear importances
    # on an 80 % item split leave some weight elsewhere, so D and C stay below 1).
    importance = np.asarray(out["dci"]["importance"])
    assert np.array_equal(importance.argmax(axis=0), np.arange(4))
    assert out["mig"]["mig"] > 0.99
    rng = np.random.default_rng(0)
    rot = np.linalg.qr(rng.normal(size=(4, 4)))[0]
    mixed = factor_report.factor_metrics({"l": values @ rot}, labels, seed=0)["l"]
    assert mixed["dci"]["disentanglement"] < out["dci"]["disentanglement"] - 0.2
    assert mixed["mig"]["mig"] < 0.5


def test_item_split_is_seeded_and_disjoint():
    tr, va = factor_report.item_split(100, 3)
    assert len(tr) == 80 and len(va) == 20 and not set(tr) & set(va)
    assert np.array_equal(tr, factor_report.item_split(100, 3)[0])
    assert not np.array_equal(tr, factor_report.item_split(100, 4)[0])


def test_label_free_metrics_of_identical_and_collapsed_views():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(50, 8))
    out = factor_report.label_free_metrics({"l": z}, {"l": z}, {"l": z})["l"]
    assert out["alignment"] == pytest.approx(0.0, abs=1e-12)
    assert out["uniformity"] < 0 and 7 < out["effective_rank"] <= 8
    one = np.ones((50, 8))
    col = factor_report.label_free_metrics({"l": one}, {"l": one}, {"l": one})["l"]
    assert col["uniformity"] == pytest.approx(0.0, abs=1e-12) and col["effective_rank"] == pytest.approx(1.0, abs=1e-4)


def test_label_free_metrics_leave_out_silent_rows():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(20, 4)), rng.normal(size=(20, 4))
    a[:3] = 0  # a ReLU layer silent for three items' first views
    b[3:5] = 0
    out = factor_report.label_free_metrics({"l": a}, {"l": b}, {"l": a})["l"]
    from simclr_controlled.probes import label_free
    assert out["view_items"] == 15
    assert out["alignment"] == pytest.approx(label_free.alignment(a[5:], b[5:]))
    assert out["uniformity"] == pytest.approx(label_free.uniformity(a[3:]))
    dead = factor_report.label_free_metrics({"l": np.zeros((5, 4))}, {"l": b[:5]}, {"l": b[:5]})["l"]
    assert dead["alignment"] is None and dead["uniformity"] is None and dead["view_items"] == 0


LAYERS = ["head_input", "head_1", "head_2", "head_out"]


@pytest.fixture(scope="module")
def factors_model(tmp_path_factory):
    """A tiny `factors` model with random bits: 192 items, batch 32, 7 steps,
    checkpoints after the first epoch (step 6) and at the end."""
    model_dir = tmp_path_factory.mktemp("factors") / "m"
    out = run("--mode=train", "--dataset=factors", "--factors=shape:3,orientation:4,x:4,y:4",
              "--random_bits=2", "--model=resnet18", "--width_multiplier=0.25", "--resnet_stem=imagenet",
              "--head_widths=32,32,16", "--train_batch_size=32", "--train_steps=7", "--checkpoint_epochs=1",
              f"--model_dir={model_dir}")
    assert out.returncode == 0, out.stderr[-3000:]
    return model_dir


def test_probe_stores_factor_metrics_for_a_factors_model_with_random_bits(factors_model):
    model_dir = factors_model
    out = run("--mode=probe", f"--model_dir={model_dir}", "--decoder_epochs=1")
    assert out.returncode == 0, out.stderr[-3000:]
    final = json.load(open(model_dir / "probe" / "results.json"))["final"]
    assert "mlp_decodability" not in final  # only with --mlp_probe
    layers = ["head_input", "head_1", "head_2", "head_out"]
    assert list(final["factor_metrics"]) == layers and list(final["label_free"]) == layers
    for layer in layers:
        fm = final["factor_metrics"][layer]
        assert set(fm["r2"]) == {"orientation", "x", "y"}
        assert set(fm["dci"]["informativeness"]) == {"shape", "orientation", "x", "y"}
        assert 0 <= fm["mig"]["mig"] <= 1 and 0 <= fm["sap"]["sap"] <= 1
        lf = final["label_free"][layer]
        assert 0 <= lf["alignment"] <= 4 and lf["uniformity"] <= 0 and lf["effective_rank"] >= 1
    # The random bits are decoded too (each bit two classes; DESIGN §4.3).
    assert set(final["decodability"]["head_out"]) == {"shape", "orientation", "position", "bits"}
    bits = final["decodability"]["head_out"]["bits"]
    assert bits["num_bits"] == 2 and len(bits["per_bit"]) == 2
    assert bits["best_val_accuracy"] == pytest.approx(np.mean(bits["per_bit"]))


def test_mlp_probe_stores_mlp_decodability_at_every_checkpoint(factors_model):
    out = run("--mode=probe", f"--model_dir={factors_model}", "--decoder_epochs=2", "--mlp_probe",
              "--checkpoints=all")
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.load(open(factors_model / "probe" / "results.json"))
    assert results["config"]["mlp_probe"] is True
    settings = mlp_decoding.probe_settings(2)
    assert len(results["over_training"]) == 2
    for record in [results["final"]] + results["over_training"]:
        mlp = record["mlp_decodability"]
        assert list(mlp) == LAYERS
        for layer in LAYERS:
            assert set(mlp[layer]) == {"shape", "orientation", "position"}
            for res in mlp[layer].values():
                assert 0 <= res["best_val_accuracy"] <= 1 and "val_accuracy" not in res
                assert res["hidden"] == settings["hidden"] and 1 <= res["best_epoch"] <= settings["epochs"]
                assert len(res["grid"]) == len(settings["learning_rates"]) * len(settings["weight_decays"])


def test_model_pca_figure_colours_are_the_crosses_own():
    """The per-model PCA figure colours the color column with the sprites'
    palette of the cross (not tab10), or not at all without colour."""
    from simclr_controlled.datasets import sprites
    from simclr_controlled.modes.probe import color_palette
    four = color_palette({"dataset": "factors", "dataset_params": {"factors": "color:4,scale:2,x:4,y:4"}})
    np.testing.assert_array_equal(four, sprites.palette(4))
    ten = color_palette({"dataset": "dsprites_mod", "dataset_params": {}})
    np.testing.assert_array_equal(ten, sprites.palette(10))
    assert color_palette({"dataset": "factors", "dataset_params": {"factors": "shape:3,x:4,y:4"}}) is None
    assert color_palette({"dataset": "hierarchy", "dataset_params": {}}) is None
