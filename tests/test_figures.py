"""Tests of simclr_controlled.figures: files written atomically, panel counts,
what is drawn (captured before the figure is closed), absent statistics."""
from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
import pytest

from simclr_controlled import figures
from simclr_controlled.errors import UsageError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LAYERS = ["head_input", "head_1", "head_2", "head_out"]
TEMPS = [0.5, 0.1]  # deliberately unsorted
NUM_LEVELS = 3
EPOCHS = [0, 1, 2]


def _check_written(tmp_path, paths, stem):
    assert paths == [f"{stem}.png", f"{stem}.pdf"]
    for p in paths:
        assert os.path.isfile(p) and os.path.getsize(p) > 100
    with open(paths[0], "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    with open(paths[1], "rb") as f:
        assert f.read(5) == b"%PDF-"
    # Only the two figures: no temporary file left behind by the atomic writes.
    leftovers = sorted(n for n in os.listdir(os.path.dirname(stem)) if not n.endswith((".png", ".pdf")))
    assert leftovers == []
    assert plt.get_fignums() == []  # the figure was closed


@pytest.fixture
def capture(monkeypatch):
    """Records each figure's axes (title, lines, bars) just before it is saved."""
    seen = []
    original = figures._save

    def spy(fig, stem):
        seen.append([{"title": ax.get_title(), "ylabel": ax.get_ylabel(),
                      "lines": [(ln.get_color(), ln.get_linestyle(), np.asarray(ln.get_ydata(), float))
                                for ln in ax.get_lines()],
                      "bars": [p.get_height() for p in ax.patches],
                      "collections": len(ax.collections)}
                     for ax in fig.axes])
        return original(fig, stem)

    monkeypatch.setattr(figures, "_save", spy)
    return seen


def _cp_records(rng, temperature):
    recs = []
    for e in EPOCHS:
        cp = {}
        for source in ("train", "random"):
            cp[source] = {layer: {**{f"level_{l}": (rng.normal(size=5) * 0.1 + 0.9 - 0.2 * l).tolist()
                                     for l in range(NUM_LEVELS)},
                                  "baseline": (rng.normal(size=5) * 0.1).tolist()}
                          for layer in LAYERS}
        recs.append({"epoch": e, "step": 10 * e, "channel_preference": cp})
    return recs[::-1]  # out of order on purpose


def test_channel_preference_over_training(tmp_path, capture):
    rng = np.random.default_rng(0)
    data = {t: _cp_records(rng, t) for t in TEMPS}
    stem = str(tmp_path / "fig2")
    paths, panels = figures.channel_preference_over_training(data, "train", stem, "Fig. 2")
    assert panels == len(TEMPS) * len(LAYERS)
    _check_written(tmp_path, paths, stem)
    axes = capture[0]
    assert len(axes) == panels
    # Rows are temperatures ascending: first row is 0.1.
    assert axes[0]["ylabel"].startswith("τ = 0.1")
    assert [a["title"] for a in axes[:4]] == LAYERS
    first = axes[0]["lines"]
    assert len(first) == NUM_LEVELS + 1
    colors = [c for c, _, _ in first]
    assert colors[0] == figures.level_color(0) and colors[-1] == "black"
    # The level-0 curve is the per-epoch mean over references, in epoch order.
    recs = sorted(data[0.1], key=lambda r: r["epoch"])
    want = [np.mean(r["channel_preference"]["train"]["head_input"]["level_0"]) for r in recs]
    np.testing.assert_allclose(first[0][2], want)
    # Fig. B.1 on a smaller grid (keeps the file fast): layers come from the data.
    small = {1.0: [{"epoch": r["epoch"], "step": r["step"], "channel_preference": {"random": {
        layer: r["channel_preference"]["random"][layer] for layer in ("head_out", "head_1")}}}
        for r in data[0.5]]}
    stem_b1 = str(tmp_path / "figB1")
    paths_b1, panels_b1 = figures.channel_preference_over_training(small, "random", stem_b1,
                                                                   "Fig. B.1")
    assert panels_b1 == 2
    _check_written(tmp_path, paths_b1, stem_b1)
    assert [a["title"] for a in capture[1]] == ["head_1", "head_out"]  # canonical layer order


def test_channel_preference_rejects_missing_source(tmp_path):
    rng = np.random.default_rng(0)
    data = {t: _cp_records(rng, t) for t in TEMPS}
    with pytest.raises(UsageError, match="channel_preference"):
        figures.channel_preference_over_training(data, "nope", str(tmp_path / "x"), "t")
    with pytest.raises(UsageError, match="records_by_temperature"):
        figures.channel_preference_over_training({}, "train", str(tmp_path / "x"), "t")
    assert os.listdir(tmp_path) == []
    assert plt.get_fignums() == []


def _sim_records(rng, split):
    recs = []
    for e in EPOCHS:
        per_layer = {}
        for layer in LAYERS:
            d = {}
            for l in range(NUM_LEVELS):
                d[f"level_{l}"] = {"within": 0.8 - 0.1 * l, "within_pairs": 3,
                                   "across": 0.3 + 0.1 * l, "across_pairs": 4}
            # Absent statistics (no pairs): no "within" at the leaf level,
            # neither key at level 1 in epoch 1, a JSON null at level 0.
            del d[f"level_{NUM_LEVELS - 1}"]["within"]
            if e == 1:
                d["level_1"] = {"within_pairs": 0, "across_pairs": 0}
                d["level_0"]["across"] = None
            d["across_view"] = 0.95
            d["across_view_pairs"] = 5
            per_layer[layer] = d
        recs.append({"epoch": e, "step": 10 * e, "similarity": {split: per_layer}})
    recs.append({"epoch": 3, "step": 30})  # a record without similarity at all
    return recs


@pytest.mark.parametrize("split,temps", [("train", TEMPS), ("validation", [1.0])])
def test_similarity_over_training_absent_statistics(tmp_path, capture, split, temps):
    rng = np.random.default_rng(1)
    data = {t: _sim_records(rng, split) for t in temps}
    stem = str(tmp_path / "figB2")
    paths, panels = figures.similarity_over_training(data, split, stem, "Fig. B.2")
    assert panels == len(temps) * len(LAYERS)
    _check_written(tmp_path, paths, stem)
    lines = capture[0][0]["lines"]
    solid = [ln for ln in lines if ln[1] == "-"]
    dashed = [ln for ln in lines if ln[1] == "--"]
    dotted = [ln for ln in lines if ln[1] == ":"]
    # The leaf level never has "within": only NUM_LEVELS-1 solid lines.
    assert len(solid) == NUM_LEVELS - 1 and len(dashed) == NUM_LEVELS and len(dotted) == 1
    assert dotted[0][0] == figures.ACROSS_VIEW_COLOR
    for _, _, y in lines:
        # Absent values are gaps (NaN), never zeros.
        assert not np.any(y == 0.0)
        assert np.isnan(y[-1])  # the record without similarity
    level1_within = [y for c, ls, y in solid if c == figures.level_color(1)][0]
    assert np.isnan(level1_within[1]) and level1_within[0] == pytest.approx(0.7)


def _dec():
    models = ["untrained", "none", "color_jitter", "random_crop", "crop_jitter"]
    return {m: {layer: {"color": 0.1 * (i + 1), "scale": 0.5, "position": 0.02 * (j + 1)}
                for j, layer in enumerate(LAYERS)} for i, m in enumerate(models)}


def test_decodability(tmp_path, capture):
    dec = _dec()
    dec["none"]["head_2"].pop("scale")  # an absent accuracy draws no bar
    stem = str(tmp_path / "fig3")
    paths, panels = figures.decodability(dec, stem, "Fig. 3")
    assert panels == 3 * 5
    _check_written(tmp_path, paths, stem)
    axes = capture[0]
    assert [a["title"] for a in axes[:5]] == list(dec)
    assert axes[0]["bars"] == pytest.approx([0.1] * 4)  # color row, untrained column
    assert axes[5 + 1]["bars"] == pytest.approx([0.5] * 3)  # scale row, "none": one missing
    # Chance lines per row: 1/10, 1/6, 1/256.
    for row, chance in enumerate([1 / 10, 1 / 6, 1 / 256]):
        assert axes[5 * row]["lines"][0][2][0] == pytest.approx(chance)


def test_pca_scatter(tmp_path, capture):
    rng = np.random.default_rng(2)
    n = 60
    comps = {layer: rng.normal(size=(n, 2)) for layer in LAYERS}
    labels = {"y": rng.integers(0, 16, n), "color": rng.integers(0, 10, n),
              "scale": rng.integers(0, 6, n), "x": rng.integers(0, 16, n)}
    palette = rng.uniform(size=(10, 3))
    stem = str(tmp_path / "fig4")
    paths, panels = figures.pca_scatter(comps, labels, stem, "Fig. 4", layers=["head_input"],
                                        palette=palette)
    assert panels == 1 * 4
    _check_written(tmp_path, paths, stem)
    assert [a["title"] for a in capture[0][:4]] == ["color", "scale", "x-position", "y-position"]
    stem = str(tmp_path / "figB5")
    two = {layer: comps[layer] for layer in ("head_out", "head_2")}
    paths, panels = figures.pca_scatter(two, labels, stem, "Fig. B.5")  # no palette: colormap
    assert panels == 2 * 4
    assert capture[1][0]["ylabel"].startswith("head_2")  # canonical layer order
    _check_written(tmp_path, paths, stem)
    with pytest.raises(UsageError, match="layers"):
        figures.pca_scatter(comps, labels, str(tmp_path / "bad"), "t", layers=["head_9"])
    with pytest.raises(UsageError, match="palette"):
        figures.pca_scatter(comps, labels, str(tmp_path / "bad"), "t", palette=palette[:3])
    assert plt.get_fignums() == []


def test_cka_heatmap(tmp_path):
    m = np.array([[1.0, 0.4, 0.2], [0.4, 1.0, np.nan], [0.2, np.nan, 1.0]])
    stem = str(tmp_path / "cka")
    paths, panels = figures.cka_heatmap(["a", "b", "c"], m, stem, "CKA")
    assert panels == 1
    _check_written(tmp_path, paths, stem)
    with pytest.raises(UsageError, match="matrix"):
        figures.cka_heatmap(["a", "b"], m, str(tmp_path / "bad"), "t")


def test_invariance_table_and_bars(tmp_path, capture):
    dec = _dec()
    table = figures.invariance_table(dec)
    assert table["none"]["position"] == pytest.approx(0.02 - 0.08)
    assert table["crop_jitter"]["color"] == pytest.approx(0.0)
    stem = str(tmp_path / "inv")
    paths, panels = figures.invariance_bars(table, stem, "Invariance")
    assert panels == 1
    _check_written(tmp_path, paths, stem)
    assert len(capture[0][0]["bars"]) == 5 * 3
    assert capture[0][0]["lines"][0][2][0] == 0.0  # the zero line


def test_rewrite_is_deterministic(tmp_path):
    stem = str(tmp_path / "inv")
    table = figures.invariance_table(_dec())
    paths, _ = figures.invariance_bars(table, stem, "Invariance")
    first = [open(p, "rb").read() for p in paths]
    figures.invariance_bars(table, stem, "Invariance")  # overwrites in place
    assert [open(p, "rb").read() for p in paths] == first
    assert sorted(os.listdir(tmp_path)) == ["inv.pdf", "inv.png"]
