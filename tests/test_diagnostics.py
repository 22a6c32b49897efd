"""Label-free diagnostics vs decodability and the invariance map (DESIGN §4.6):
known answers of `claims.diagnostics`, the figures, and `--mode=analyze`'s
code path on crafted results.json files (no model is trained)."""
from __future__ import annotations

import json
import os
import types

import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy import stats

from simclr_controlled import figures
from simclr_controlled.claims import diagnostics as dg
from simclr_controlled.modes import analyze

LAYERS = ["head_input", "head_1", "head_2", "head_out"]
FACTORS = ["color", "scale", "position"]


def _points(x, y, layer="head_input", metric="uniformity", factor="color"):
    return [{"model": "m", "step": k, "layer": layer,
             "label_free": {metric: a}, "decodability": {factor: b}} for k, (a, b) in enumerate(zip(x, y))]


def _cell(points, metric="uniformity", factor="color", layer=dg.ALL_LAYERS, seed=0):
    return dg.spearman_table(points, seed=seed, n_resamples=300)["table"][metric][factor][layer]


def test_monotone_relations_give_plus_and_minus_one():
    x = np.linspace(-4, -1, 12)
    up = _cell(_points(x, np.exp(x)))
    assert up["rho"] == pytest.approx(1.0) and up["n"] == 12
    assert up["ci_lo"] == pytest.approx(1.0) and up["ci_hi"] == pytest.approx(1.0)
    down = _cell(_points(x, -x ** 3))
    assert down["rho"] == pytest.approx(-1.0)
    assert down["ci_lo"] == pytest.approx(-1.0) and down["ci_hi"] == pytest.approx(-1.0)


def test_rho_matches_scipy_interval_contains_it_and_is_seeded():
    rng = np.random.default_rng(3)
    x = rng.normal(size=40)
    y = np.round(0.5 * x + rng.normal(size=40), 1)  # ties in y
    pts = _points(x, y)
    c = _cell(pts, seed=7)
    assert c["rho"] == pytest.approx(stats.spearmanr(x, y).statistic)
    assert c["ci_lo"] < c["rho"] < c["ci_hi"]
    assert _cell(pts, seed=7) == c
    assert _cell(pts, seed=8) != c


def test_none_values_dropped_and_too_few_points():
    pts = _points([0.1, None, 0.3, 0.2, None], [0.5, 0.9, 0.7, 0.6, 0.1])
    c = _cell(pts)
    assert c["n"] == 3 and c["rho"] == pytest.approx(1.0)
    two = _cell(_points([0.1, None, 0.3], [0.5, 0.6, 0.7]))
    assert two == {"rho": None, "ci_lo": None, "ci_hi": None, "n": 2}
    const = _cell(_points([0.1, 0.2, 0.3, 0.4], [0.5] * 4))  # rho undefined
    assert const["rho"] is None and const["n"] == 4


def test_per_layer_and_pooled_cells():
    a = _points([1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4], layer="head_1", metric="effective_rank")
    b = _points([1, 2, 3, 4], [0.4, 0.3, 0.2, 0.1], layer="head_out", metric="effective_rank")
    table = dg.spearman_table(a + b, seed=0, n_resamples=200)["table"]["effective_rank"]["color"]
    assert list(table) == ["head_1", "head_out", dg.ALL_LAYERS]
    assert table["head_1"]["rho"] == pytest.approx(1) and table["head_out"]["rho"] == pytest.approx(-1)
    assert table[dg.ALL_LAYERS]["n"] == 8 and table[dg.ALL_LAYERS]["rho"] == pytest.approx(0)


def _record(step, dec, lf=True, layers=LAYERS):
    rec = {"step": step, "decodability": {l: {f: {"best_val_accuracy": v} for f, v in dec.items()}
                                          for l in layers}}
    if lf:
        rec["label_free"] = {l: {"alignment": None if l == "head_out" else 0.1 * step,
                                 "uniformity": -3.0 + 0.1 * step, "effective_rank": 5.0 + step,
                                 "view_items": 10} for l in layers}
    return rec


def test_diagnostic_points_dedup_and_old_records():
    final = _record(20, {"color": 0.9})
    recs = {"a": [final, _record(10, {"color": 0.5}), final],  # final also last of over_training
            "old": [_record(20, {"color": 0.3}, lf=False)]}  # before label_free was stored
    pts = dg.diagnostic_points(recs)
    assert len(pts) == 2 * len(LAYERS)
    assert {(p["model"], p["step"]) for p in pts} == {("a", 20), ("a", 10)}
    p = next(p for p in pts if p["step"] == 20 and p["layer"] == "head_out")
    assert p["label_free"]["alignment"] is None and p["decodability"] == {"color": 0.9}
    assert dg.diagnostic_points({"old": recs["old"]}) == []
    assert dg.spearman_table([], seed=0)["table"] == {}


def _dec(values):
    """model -> {layer: {factor: v + small layer offset}}."""
    return {m: {l: {f: v[k] + 0.01 * i for k, f in enumerate(FACTORS)} for i, l in enumerate(LAYERS)}
            for m, v in values.items()}


def test_invariance_map_known_numbers():
    dec = _dec({"none": [0.5, 0.5, 0.2], "color_jitter": [0.2, 0.5, 0.4],
                "untrained": [0.9, 0.9, 0.9]})
    dec["random_crop"] = {"head_input": {"color": 0.75}}
    inv = dg.invariance_map(dec)
    assert list(inv) == LAYERS
    assert inv["head_1"]["color"] == pytest.approx({"color_jitter": -0.3})
    assert inv["head_input"]["color"] == pytest.approx({"color_jitter": -0.3, "random_crop": 0.25})
    assert inv["head_out"]["position"]["color_jitter"] == pytest.approx(0.2)
    assert "untrained" not in inv["head_input"]["color"] and "none" not in inv["head_input"]["color"]
    assert dg.invariance_map({k: v for k, v in dec.items() if k != "none"}) == {}


def test_invariance_map_over_seeds():
    m0 = {"head_input": {"color": {"color_jitter": -0.2, "random_crop": 0.1}}}
    m1 = {"head_input": {"color": {"color_jitter": -0.4}}}
    out = dg.invariance_map_over_seeds({1: m1, 0: m0}, seed=0)
    cj = out["head_input"]["color"]["color_jitter"]
    assert cj["mean"] == pytest.approx(-0.3) and cj["per_seed"] == {"0": -0.2, "1": -0.4}
    assert -0.4 <= cj["ci_lo"] <= cj["mean"] <= cj["ci_hi"] <= -0.2
    rc = out["head_input"]["color"]["random_crop"]
    assert rc["mean"] == pytest.approx(0.1) and rc["per_seed"] == {"0": 0.1}
    assert dg.invariance_map_over_seeds({0: {}, 1: {}}) == {}


def test_class_counts():
    assert dg.class_counts(None) == {"color": 10, "scale": 6, "x": 16, "y": 16, "position": 256,
                                     "bits": 2}
    assert dg.class_counts("color:4,shape:3")["shape"] == 3


def _check_files(paths):
    assert [p[-4:] for p in paths] == [".png", ".pdf"] * (len(paths) // 2) and paths
    for p in paths:
        assert os.path.getsize(p) > 100
    assert plt.get_fignums() == []


def test_figures_written(tmp_path):
    rng = np.random.default_rng(0)
    pts = []
    for m in ("none", "color_jitter"):
        for step in (10, 20, 30):
            for l in LAYERS:
                pts.append({"model": m, "step": step, "layer": l,
                            "label_free": {"alignment": rng.random(), "uniformity": -rng.random() * 4,
                                           "effective_rank": None if step == 10 else 10 * rng.random()},
                            "decodability": {f: rng.random() for f in FACTORS}})
    table = dg.spearman_table(pts, seed=0, n_resamples=100)["table"]
    paths, panels = figures.label_free_scatter(pts, table, "head_1", dg.class_counts(),
                                               str(tmp_path / "scatter"), "t")
    assert panels == 9
    _check_files(paths)
    inv = dg.invariance_map(_dec({"none": [0.5, 0.5, 0.2], "color_jitter": [0.2, 0.5, 0.4]}))
    paths, panels = figures.invariance_heatmap(inv, str(tmp_path / "map"), "t")
    assert panels == 4
    _check_files(paths)
    over = dg.invariance_map_over_seeds({0: inv, 1: dg.invariance_map(
        _dec({"none": [0.4, 0.5, 0.2], "color_jitter": [0.3, 0.5, 0.1]}))})
    _check_files(figures.invariance_heatmap(over, str(tmp_path / "map_seeds"), "t")[0])


REP_LAYERS = ("head_input", "head_out")  # two layers: fewer figures to draw


def _write_replicate(root, seed, label_free=True):
    """A one-seed dsprites_mod folder: none / color_jitter / random_crop with
    two checkpoints each, and an untrained model with an old results.json."""
    models = {"untrained": [0.5, 0.5, 0.1], "none": [0.6, 0.6, 0.2],
              "color_jitter": [0.3, 0.6, 0.3], "random_crop": [0.8, 0.5, 0.1]}
    for k, (m, v) in enumerate(models.items()):
        dec = dict(zip(FACTORS, np.add(v, 0.01 * seed)))
        old = m == "untrained" or not label_free
        recs = [_record(10, {f: a - 0.1 for f, a in dec.items()}, not old, REP_LAYERS),
                _record(20 + k, dec, not old, REP_LAYERS)]
        res = {"config": {"seed": seed}, "dataset_params": {}, "final": recs[-1],
               "over_training": recs}
        if old:
            del res["dataset_params"]
        os.makedirs(root / m / "probe")
        (root / m / "probe" / "results.json").write_text(json.dumps(res))
    (root / "experiment.json").write_text(json.dumps(
        {"experiment": "dsprites_mod", "seed": seed, "models": {m: m for m in models}}))


def test_analyze_one_seed_and_over_seeds(tmp_path, monkeypatch):
    monkeypatch.setattr(analyze, "cka_between_models", lambda *a: ({}, []))  # needs checkpoints
    exp = tmp_path / "exp"
    for s in (0, 1):
        _write_replicate(exp / f"seed_{s}", s)
    (exp / "experiment.json").write_text(json.dumps(
        {"experiment": "dsprites_mod", "seeds": [0, 1], "replicates": {"0": "seed_0", "1": "seed_1"}}))
    lines = []
    analyze.run(types.SimpleNamespace(experiment_dir=str(exp)), log=lines.append)
    text = "\n".join(lines)
    assert "Spearman rho" in text and "decodability change against the `none` preset" in text
    for folder, n_points in ((exp / "seed_0" / "analysis", 3 * 2 * 2), (exp / "analysis", 2 * 3 * 2 * 2)):
        data = json.load(open(folder / "claims.json"))
        cell = data["label_free_vs_decodability"]["table"]["effective_rank"]["color"][dg.ALL_LAYERS]
        assert cell["n"] == n_points and cell["rho"] is not None
        assert data["label_free_vs_decodability"]["table"]["alignment"]["color"]["head_out"]["n"] == 0
        assert set(data["invariance_map"]["head_input"]["color"]) == {"color_jitter", "random_crop"}
        for stem in ["invariance_map"] + [f"label_free_vs_decodability_{l}" for l in REP_LAYERS]:
            assert os.path.getsize(folder / f"{stem}.png") > 100 and (folder / f"{stem}.pdf").exists()
    pooled = json.load(open(exp / "analysis" / "claims.json"))["invariance_map"]
    cj = pooled["head_input"]["color"]["color_jitter"]
    assert cj["mean"] == pytest.approx(-0.3) and set(cj["per_seed"]) == {"0", "1"}


def test_analyze_old_results_without_label_free(tmp_path, monkeypatch):
    monkeypatch.setattr(analyze, "cka_between_models", lambda *a: ({}, []))
    _write_replicate(tmp_path / "old", 0, label_free=False)
    lines = []
    analyze.analyze_replicate(str(tmp_path / "old"), log=lines.append)
    data = json.load(open(tmp_path / "old" / "analysis" / "claims.json"))
    assert data["label_free_vs_decodability"]["table"] == {}
    assert "invariance_map" in data and "Spearman" not in "\n".join(lines)
    assert not (tmp_path / "old" / "analysis" / "label_free_vs_decodability_head_out.png").exists()
