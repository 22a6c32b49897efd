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


# ---- over seeds (replicates): mean over seeds, band / whiskers = seed_interval ----

SEEDS = [0, 1, 2]
FACTORS3 = ["color", "scale", "position"]
SEED_TITLE = "mean over 3 seeds; band: 95% bootstrap interval over seeds"


def _interval(grid):
    import warnings

    from simclr_controlled.claims.statistics import seed_interval
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return seed_interval(np.asarray(grid, dtype=float))


def _bands(ax):
    """[lo, hi] per x of each fill_between band, in drawing order."""
    from matplotlib.collections import PolyCollection
    out = []
    for c in ax.collections:
        if isinstance(c, PolyCollection):
            v = np.concatenate([p.vertices for p in c.get_paths()])
            xs = np.unique(v[:, 0])
            out.append((xs, np.array([v[v[:, 0] == x, 1].min() for x in xs]),
                        np.array([v[v[:, 0] == x, 1].max() for x in xs])))
    return out


def _cp_value(seed, epoch, level):
    return 0.9 - 0.2 * level + 0.05 * seed + 0.01 * epoch * (seed + 1)


def _cp_seed_records(seed):
    """Seed 2 lacks epoch 1; only seed 1 has epoch 3; references = v + [-0.1, 0, 0.1]."""
    epochs = {0: [0, 1, 2], 1: [0, 1, 2, 3], 2: [0, 2]}[seed]
    recs = []
    for e in epochs:
        per = {f"level_{l}": (_cp_value(seed, e, l) + np.array([-0.1, 0.0, 0.1])).tolist()
               for l in range(NUM_LEVELS)}
        per["baseline"] = [0.01 * seed, 0.01 * seed]
        recs.append({"epoch": e, "step": 10 * e,
                     "channel_preference": {"train": {"head_1": per, "head_out": per}}})
    return {0.1: recs[::-1], 0.5: recs}


def test_channel_preference_over_seeds_mean_and_band(tmp_path):
    from simclr_controlled.figures import hierarchy
    data = {s: _cp_seed_records(s) for s in SEEDS}
    fig, panels = hierarchy.channel_preference_figure(data, "train", "Fig. 2", over_seeds=True)
    try:
        assert panels == 2 * 2
        assert SEED_TITLE in fig._suptitle.get_text()
        ax = fig.axes[0]
        assert ax.get_title() == "head_1" and ax.get_ylabel().startswith("τ = 0.1")
        lines, bands = ax.get_lines(), _bands(ax)
        assert len(lines) == len(bands) == NUM_LEVELS + 1
        x = np.array([0.0, 2.0])  # the epochs every seed evaluated
        for l in range(NUM_LEVELS):
            grid = np.array([[_cp_value(s, e, l) for e in (0, 2)] for s in SEEDS])
            mean, lo, hi = _interval(grid)
            np.testing.assert_allclose(lines[l].get_xdata(), x)
            np.testing.assert_allclose(lines[l].get_ydata(), np.nanmean(grid, axis=0))
            np.testing.assert_allclose(lines[l].get_ydata(), mean)
            bx, blo, bhi = bands[l]
            np.testing.assert_allclose(bx, x)
            np.testing.assert_allclose(blo, lo)
            np.testing.assert_allclose(bhi, hi)
            assert np.all(bhi > blo)
            assert lines[l].get_color() == figures.level_color(l)
        assert lines[-1].get_color() == "black"
        np.testing.assert_allclose(lines[-1].get_ydata()[0], 0.01)  # baseline: mean of 0, .01, .02
    finally:
        plt.close(fig)


def test_seeds_drawn_at_the_evaluations_they_share():
    from simclr_controlled.figures import hierarchy
    full, thinned = np.arange(0, 101, 5.0), np.arange(0, 101, 10.0)
    np.testing.assert_allclose(hierarchy._common_x([full, thinned, full]), thinned)
    # no evaluation shared: every seed's, rather than nothing
    np.testing.assert_allclose(hierarchy._common_x([np.array([0.0, 2.0]), np.array([1.0])]),
                               [0.0, 1.0, 2.0])


def test_x_axes_align_seeds_on_a_common_kind():
    from simclr_controlled.figures import hierarchy
    a = [{"epoch": 0, "step": 0}, {"epoch": 1, "step": 10}]
    b = [{"epoch": 0, "step": 0}, {"epoch": 0, "step": 5}]  # epochs repeat: steps for all
    xs, label = hierarchy._x_axes([a, b])
    assert label == "training step"
    np.testing.assert_allclose(xs[0], [0, 10])
    np.testing.assert_allclose(xs[1], [0, 5])
    assert hierarchy._x_axis(a)[1] == "epoch"


def _sim_seed_records(seed):
    recs = []
    for e in EPOCHS:
        d = {"level_0": {"within": 0.8 + 0.01 * seed + 0.02 * e, "across": 0.3 + 0.1 * seed},
             "level_1": {"across": 0.5},  # "within" absent in every seed
             "across_view": 0.9 + 0.02 * seed}
        if seed == 0 and e == 1:
            d["level_0"]["across"] = None  # absent here: the mean uses seeds 1 and 2
        recs.append({"epoch": e, "step": e, "similarity": {"validation": {"head_out": d}}})
    return {1.0: recs}


def test_similarity_over_seeds_absent_statistic(tmp_path):
    from simclr_controlled.figures import hierarchy
    data = {s: _sim_seed_records(s) for s in SEEDS}
    fig, panels = hierarchy.similarity_figure(data, "validation", "Fig. B.3", over_seeds=True)
    try:
        assert panels == 1
        ax = fig.axes[0]
        lines, bands = ax.get_lines(), _bands(ax)
        styles = [(ln.get_color(), ln.get_linestyle()) for ln in lines]
        assert styles == [(figures.level_color(0), "-"), (figures.level_color(0), "--"),
                          (figures.level_color(1), "--"), (figures.ACROSS_VIEW_COLOR, ":")]
        assert len(bands) == len(lines)
        across = np.array([[0.3 + 0.1 * s] * 3 for s in SEEDS])
        across[0, 1] = np.nan
        mean, lo, hi = _interval(across)
        np.testing.assert_allclose(lines[1].get_ydata(), mean)
        assert lines[1].get_ydata()[1] == pytest.approx(0.45)  # seeds 1, 2 only
        np.testing.assert_allclose(bands[1][1], lo)
        np.testing.assert_allclose(bands[1][2], hi)
        view = np.array([[0.9 + 0.02 * s] * 3 for s in SEEDS])
        mean, lo, hi = _interval(view)
        np.testing.assert_allclose(lines[3].get_ydata(), mean)
        np.testing.assert_allclose(bands[3][1], lo)
        np.testing.assert_allclose(bands[3][2], hi)
    finally:
        plt.close(fig)


def _dec_seeds():
    decs = {}
    for s in SEEDS:
        dec = _dec()
        for m, per in dec.items():
            for layer, acc in per.items():
                for f in acc:
                    acc[f] = min(1.0, acc[f] + 0.03 * s * (1 + LAYERS.index(layer)))
        decs[s] = dec
    decs[1]["none"]["head_1"].pop("color")  # one seed lacks a value: the others are used
    for s in SEEDS:
        decs[s]["none"]["head_2"].pop("scale")  # no seed has it: no bar
    return decs


def _whiskers(ax):
    from matplotlib.collections import LineCollection
    segs = [c.get_segments() for c in ax.collections if isinstance(c, LineCollection)]
    assert len(segs) == 1
    return np.array([[s[0][0], min(s[0][1], s[1][1]), max(s[0][1], s[1][1])] for s in segs[0]])


def _dots(ax):
    from matplotlib.collections import PathCollection
    return np.concatenate([c.get_offsets() for c in ax.collections
                           if isinstance(c, PathCollection)])


def test_decodability_over_seeds_bars_whiskers_dots():
    from simclr_controlled.figures import dsprites
    decs = _dec_seeds()
    fig, panels = dsprites.decodability_figure(decs, "Fig. 3", over_seeds=True)
    try:
        assert panels == 3 * 5
        assert "mean over 3 seeds; whiskers: 95% bootstrap interval" in fig._suptitle.get_text()
        models = list(decs[0])
        for row, factor in enumerate(["color", "scale"]):
            for col, model in enumerate(models):
                ax = fig.axes[5 * row + col]
                grid = np.array([[decs[s][model][layer].get(factor, np.nan) for layer in LAYERS]
                                 for s in SEEDS])
                mean, lo, hi = _interval(grid)
                ok = np.isfinite(mean)
                assert [p.get_height() for p in ax.patches] == pytest.approx(mean[ok])
                np.testing.assert_allclose(mean[ok], np.nanmean(grid[:, ok], axis=0))
                w = _whiskers(ax)
                np.testing.assert_allclose(w[:, 0], np.flatnonzero(ok))
                np.testing.assert_allclose(w[:, 1], lo[ok])
                np.testing.assert_allclose(w[:, 2], hi[ok])
                dots = _dots(ax)
                assert len(dots) == np.isfinite(grid).sum()
                np.testing.assert_allclose(np.sort(dots[:, 1]), np.sort(grid[np.isfinite(grid)]))
        assert len(fig.axes[5 + 1].patches) == 3  # scale, "none": head_2 held by no seed
        assert len(_dots(fig.axes[1])) == 4 * 3 - 1  # color, "none": seed 1 lacks head_1
        # The chance line is still drawn in every row.
        assert fig.axes[0].get_lines()[0].get_ydata()[0] == pytest.approx(0.1)
    finally:
        plt.close(fig)


def test_over_seeds_write_files_and_invariance(tmp_path, capture):
    import warnings
    decs = _dec_seeds()
    tables = {s: figures.invariance_table(decs[s]) for s in SEEDS}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no "All-NaN slice" leaks out
        stem = str(tmp_path / "inv")
        paths, panels = figures.invariance_bars_over_seeds(tables, stem, "Invariance")
        assert panels == 1
        _check_written(tmp_path, paths, stem)
        grid = np.array([[[tables[s][m][f] for m in decs[0]] for f in FACTORS3] for s in SEEDS])
        mean, lo, hi = _interval(grid)
        ok = np.isfinite(mean)
        assert capture[0][0]["bars"] == pytest.approx(mean[ok])
        assert capture[0][0]["lines"][0][2][0] == 0.0  # the zero line
        assert "mean over 3 seeds" in capture[0][0]["title"]
        for name, fn, arg, what, n in [
                ("fig3", figures.decodability_over_seeds, None, decs, 15),
                ("fig2", figures.channel_preference_over_seeds, "train",
                 {s: _cp_seed_records(s) for s in SEEDS}, 4),
                ("figB3", figures.similarity_over_seeds, "validation",
                 {s: _sim_seed_records(s) for s in SEEDS}, 1)]:
            stem = str(tmp_path / name)
            args = (what, stem, "t") if arg is None else (what, arg, stem, "t")
            paths, panels = fn(*args)
            assert panels == n
            _check_written(tmp_path, paths, stem)
    for name in ("channel_preference_over_seeds", "similarity_over_seeds",
                 "decodability_over_seeds", "invariance_bars_over_seeds"):
        assert name in figures.__all__


def test_over_seeds_reject_bad_input(tmp_path):
    stem = str(tmp_path / "x")
    cp = {s: _cp_seed_records(s) for s in SEEDS}
    with pytest.raises(UsageError, match="records_by_seed"):
        figures.channel_preference_over_seeds({}, "train", stem, "t")
    with pytest.raises(UsageError, match="records_by_seed.*seed"):
        figures.channel_preference_over_seeds({0: {}}, "train", stem, "t")
    with pytest.raises(UsageError, match=r"records_by_seed\[0\].*temperature"):
        figures.similarity_over_seeds({0: {"hot": []}}, "train", stem, "t")
    with pytest.raises(UsageError, match="no record holds channel_preference"):
        figures.channel_preference_over_seeds(cp, "random", stem, "t")
    with pytest.raises(UsageError, match="no record holds similarity"):
        figures.similarity_over_seeds(cp, "train", stem, "t")
    with pytest.raises(UsageError, match="dec_by_seed"):
        figures.decodability_over_seeds({}, stem, "t")
    with pytest.raises(UsageError, match="dec_by_seed: no model holds"):
        figures.decodability_over_seeds({0: {"m": {}}}, stem, "t")
    with pytest.raises(UsageError, match="tables_by_seed"):
        figures.invariance_bars_over_seeds({}, stem, "t")
    with pytest.raises(UsageError, match="tables_by_seed: no model holds"):
        figures.invariance_bars_over_seeds({0: {"m": {}}}, stem, "t")
    assert os.listdir(tmp_path) == []
    assert plt.get_fignums() == []
