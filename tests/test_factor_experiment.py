"""The augmentation experiment on any factors cross (docs/DESIGN.md §5):
`--experiment=dsprites_mod --dataset=factors --factors=...` plans and trains
on that cross, and the analysis (figures, D1-D3, the invariance map) copes
with factors other than color, scale and position."""
from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

from simclr_controlled import claims as claims_lib
from simclr_controlled import figures
from simclr_controlled.claims import diagnostics
from simclr_controlled.datasets import sprites
from simclr_controlled.figures import dsprites as fig_dsprites
from tests.test_reproduce import png_ok, run

LAYERS = ("head_input", "head_1", "head_2", "head_out")
PLAN_FACTORS = "shape:3,orientation:4,color:3,scale:2,x:3,y:3"
# 288 items, no position: D1 and D2 cannot be judged, every figure must still draw.
E2E_FACTORS = "shape:3,orientation:8,color:4,scale:3"
TINY = ["--experiment=dsprites_mod", "--model=resnet18", "--width_multiplier=0.25",
        "--resnet_stem=imagenet", "--head_widths=32,32,16", "--train_batch_size=32",
        "--train_steps=2", "--decoder_epochs=1", "--augment_presets=none,crop_jitter"]


def _train_lines(stdout: str) -> list[str]:
    return [line.split(" && ")[0] for line in stdout.splitlines()]


def test_plan_trains_on_the_given_cross(tmp_path):
    out = run("--mode=plan", "--experiment=dsprites_mod", "--dataset=factors",
              f"--factors={PLAN_FACTORS}", f"--experiment_dir={tmp_path / 'f'}")
    assert out.returncode == 0, out.stderr[-3000:]
    lines = _train_lines(out.stdout)
    assert len(lines) == 5  # untrained + the four presets
    assert all(" --dataset=factors " in l and f" --factors={PLAN_FACTORS} " in l for l in lines)
    # Without --dataset the experiment stays on dsprites_mod, as before.
    out = run("--mode=plan", "--experiment=dsprites_mod", f"--experiment_dir={tmp_path / 'd'}")
    assert out.returncode == 0, out.stderr[-3000:]
    lines = _train_lines(out.stdout)
    assert len(lines) == 5 and all(" --dataset=dsprites_mod " in l for l in lines)
    assert not any("--factors" in l for l in lines)


def test_reproduce_on_a_cross_with_shape_and_orientation(tmp_path):
    exp = tmp_path / "exp"
    out = run("--mode=reproduce", f"--experiment_dir={exp}", "--dataset=factors",
              f"--factors={E2E_FACTORS}", *TINY)
    assert out.returncode == 0, out.stderr[-3000:]
    analysis = exp / "analysis"
    for stem in ("fig3_decodability", "fig4_pca_crop_jitter_head_input", "figB5_pca_crop_jitter_head",
                 "invariance", "invariance_map", "cka_models_head_out"):
        assert png_ok(str(analysis / f"{stem}.png")), stem
    claims = json.load(open(analysis / "claims.json"))
    assert claims["dataset"] == "factors"
    assert claims["factors"] == "color:4,shape:3,scale:3,orientation:8"  # canonical order
    by_name = {c["name"]: c for c in claims["claims"]}
    assert list(by_name) == ["D1", "D2", "D3"]
    assert not by_name["D1"]["applicable"]
    assert "missing results crop_jitter/head_input/position" in by_name["D1"]["statement"]
    dec = claims["decodability"]
    assert set(dec) == {"untrained", "none", "crop_jitter"}
    for model in dec:
        for layer in LAYERS:
            assert {"shape", "orientation", "color", "scale"} <= set(dec[model][layer])
    rows = {f for per in claims["invariance_map"].values() for f in per}
    assert {"shape", "orientation"} <= rows
    config = json.load(open(exp / "none" / "config.json"))
    assert config["dataset"] == "factors" and config["factors"] == E2E_FACTORS


@pytest.fixture
def dec_no_position():
    """Crafted decodability over shape, orientation and color (no position)."""
    rng = np.random.default_rng(0)
    return {m: {l: {f: float(rng.uniform(0.3, 1.0)) for f in ("shape", "orientation", "color")}
                for l in LAYERS}
            for m in ("untrained", "none", "color_jitter", "random_crop", "crop_jitter")}


def test_figures_and_claims_without_the_paper_factors(dec_no_position, tmp_path):
    dec = dec_no_position
    counts = diagnostics.class_counts("shape:3,orientation:8,color:6")
    chance = {f: 1.0 / k for f, k in counts.items()}
    fig, panels = fig_dsprites.decodability_figure(dec, "t", chance=chance)
    assert panels == 3 * 5
    rows = [fig.axes[5 * i].get_ylabel() for i in range(3)]
    assert [r.split(" ")[0] for r in rows] == ["color", "shape", "orientation"]
    dashed = [ln.get_ydata()[0] for ln in fig.axes[5].get_lines() if ln.get_linestyle() == "--"]
    assert dashed == [pytest.approx(1 / 3)]  # shape's chance, not dsprites_mod's
    plt.close(fig)
    paths, _ = figures.decodability(dec, str(tmp_path / "fig3"), "t", chance=chance)
    paths += figures.decodability_over_seeds({0: dec, 1: dec}, str(tmp_path / "fig3_seeds"), "t",
                                             chance=chance)[0]
    table = claims_lib.invariance_table(dec)
    paths += figures.invariance_bars(table, str(tmp_path / "inv"), "t")[0]
    paths += figures.invariance_bars_over_seeds({0: table, 1: table}, str(tmp_path / "inv_s"), "t")[0]
    paths += figures.invariance_heatmap(diagnostics.invariance_map(dec), str(tmp_path / "map"), "t")[0]
    n = 50
    comps = {l: np.random.default_rng(1).normal(size=(n, 2)) for l in LAYERS}
    labels = {"shape": np.arange(n) % 3, "orientation": np.arange(n) % 8, "color": np.arange(n) % 6}
    paths += figures.pca_scatter(comps, labels, str(tmp_path / "pca"), "t",
                                 palette=sprites.palette(6))[0]
    assert all(png_ok(p) for p in paths if p.endswith(".png")) and len(paths) == 12
    verdicts = {c.name: c.applicable for c in claims_lib.check_dsprites(dec)}
    assert verdicts == {"D1": False, "D2": False, "D3": True}  # D3 reads color only
