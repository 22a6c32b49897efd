"""The feature-suppression experiment (DESIGN §5.2): claims S1-S3 on crafted
results both ways, pooled over seeds, the experiment's plan (cells, folders,
seeds) from flags, the bits' decoders, and its figure."""
from __future__ import annotations

import os
import shlex

import numpy as np
import pytest

from simclr_controlled import claims, figures, names
from simclr_controlled.figures import suppression as suppression_fig
from simclr_controlled.probes import decoding

LAYERS = names.TAPS


def crafted(drop=0.3, t_gap=0.1, bits_out=1.0, temps=(0.05, 0.2), bit_counts=(0, 5, 20)):
    """sup[T][k][layer][factor]: real factors lose `drop` x k / max(k) at
    head_input, the highest temperature `t_gap` more; bits at `bits_out`."""
    kmax = max(bit_counts)
    sup = {}
    for i, t in enumerate(temps):
        sup[t] = {}
        for k in bit_counts:
            loss = drop * k / kmax + (t_gap * (k > 0) if i == len(temps) - 1 else 0.0)
            cell = {}
            for layer in LAYERS:
                cell[layer] = {"color": 0.9 - loss, "scale": 0.8 - loss, "position": 0.5 - loss / 2}
                if k:
                    cell[layer][names.BITS] = bits_out
            sup[t][k] = cell
    return sup


def test_claims_hold_on_suppression_with_a_resisting_low_temperature():
    s1, s2, s3 = claims.check_suppression(crafted())
    assert (s1.reproduced, s2.reproduced, s3.reproduced) == (True, True, True)
    assert len(s1.evidence) == 2 * 3  # temperatures x real factors
    assert len(s3.evidence) == 2 * 2  # temperatures x bit counts above 0
    e = s2.evidence[0]
    # 5 bits lose 0.3 * 5 / 20 = 0.075 (position half), 20 bits 0.3.
    assert e["a"] == pytest.approx(np.mean([0.9 - 0.075, 0.8 - 0.075, 0.5 - 0.0375, 0.9 - 0.3, 0.8 - 0.3,
                                            0.5 - 0.15]))


def test_claims_fail_when_bits_do_not_suppress_or_the_temperature_order_flips():
    s1, s2, s3 = claims.check_suppression(crafted(drop=0.0, t_gap=-0.1, bits_out=0.9))
    assert not s1.reproduced and not s2.reproduced and not s3.reproduced
    assert all(not e["holds"] for e in s1.evidence)  # equal is not "lower"
    # One factor that gains at one temperature is enough to fail S1.
    sup = crafted()
    sup[0.2][20]["head_input"]["scale"] = 0.95
    s1 = claims.check_s1(sup)
    assert not s1.reproduced and sum(not e["holds"] for e in s1.evidence) == 1


def test_claims_not_applicable_without_the_cells_they_compare():
    sup = crafted(temps=(0.1,), bit_counts=(5, 20))
    s1, s2, s3 = claims.check_suppression(sup)
    assert not s1.applicable and "0 bits" in s1.statement  # no 0-bit model
    assert not s2.applicable  # one temperature
    assert s3.applicable and s3.reproduced
    sup = crafted()
    del sup[0.05][5]["head_out"][names.BITS]
    assert not claims.check_s3(sup).applicable


def test_claims_pool_over_seeds():
    per_seed = {s: claims.check_suppression(crafted(drop=0.3 + 0.01 * s)) for s in range(3)}
    pooled = claims.pool_claims(per_seed)
    assert [c.name for c in pooled] == ["S1", "S2", "S3"]
    assert all(c.reproduced and c.held_in == 3 for c in pooled)
    # Suppression in one seed of three only: not reproduced pooled.
    per_seed = {0: claims.check_suppression(crafted()),
                1: claims.check_suppression(crafted(drop=-0.05)),
                2: claims.check_suppression(crafted(drop=-0.05))}
    s1 = claims.pool_claims(per_seed)[0]
    assert not s1.reproduced and s1.held_in == 1


def test_decode_columns_is_decode_per_column():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 12)).astype(np.float32)
    y = np.stack([x[:, 0] > 0, x[:, 1] - x[:, 2] > 0, rng.integers(0, 2, 240) > 0], 1).astype(np.int64)
    kw = dict(epochs=20, batch_size=32, seed=3)
    many = decoding.decode_columns(x[:160], y[:160], x[160:], y[160:], 2, **kw)
    for k in range(3):
        one = decoding.decode(x[:160], y[:160, k], x[160:], y[160:, k], 2, **kw)
        np.testing.assert_allclose(many[k]["val_accuracy"], one["val_accuracy"], atol=1.01 / 80)
    assert many[0]["best_val_accuracy"] > 0.8 > many[2]["best_val_accuracy"]  # decodable; random
    with pytest.raises(Exception, match="train_y: must be a 2-D"):
        decoding.decode_columns(x[:160], y[:160, 0], x[160:], y[160:], 2, **kw)


def test_plan_has_one_model_per_cell_and_seed(tmp_path, monkeypatch, capsys):
    import run
    monkeypatch.chdir(tmp_path)
    status = run.main(["run.py", "--mode=plan", "--experiment=feature_suppression",
                       "--experiment_dir=fs", "--bit_counts=0,3", "--temperatures=0.05,0.2",
                       "--seeds=0,1", "--max_items=300"])
    assert status == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 * 2 * 2
    seen = set()
    for line in lines:
        words = shlex.split(line)
        flags = dict(w[2:].split("=", 1) for w in words if w.startswith("--") and "=" in w)
        assert flags["dataset"] == "factors" and flags["max_items"] == "300"
        bits, t = int(flags.get("random_bits", 0)), float(flags["temperature"])
        seed = int(flags.get("seed", 0))
        folder = os.path.join(str(tmp_path), "fs", f"seed_{seed}", f"bits_{bits}_temperature_{t:g}")
        assert flags["model_dir"] == folder
        seen.add((seed, bits, t))
    assert seen == {(s, k, t) for s in (0, 1) for k in (0, 3) for t in (0.05, 0.2)}
    assert os.path.isfile(tmp_path / "fs" / "seed_1" / "experiment.json")


def test_bad_bit_counts_are_refused_in_one_line(tmp_path, monkeypatch, capsys):
    import run
    monkeypatch.chdir(tmp_path)
    for value, words in (("0,65", "distinct integers in [0, 64]"), ("0,0", "distinct"),
                         ("a", "expected comma-separated integers")):
        with pytest.raises(SystemExit) as e:
            run.main(["run.py", "--mode=plan", "--experiment=feature_suppression",
                      "--experiment_dir=fs", f"--bit_counts={value}"])
        err = capsys.readouterr().err.strip().splitlines()
        assert e.value.code == 2 and len(err) == 1 and "--bit_counts" in err[0] and words in err[0]
    assert not os.path.exists(tmp_path / "fs")


def test_figure_and_table_over_seeds(tmp_path):
    sup = {s: crafted(drop=0.3 + 0.02 * s) for s in range(3)}
    chance = {"color": 0.1, "scale": 1 / 6, "position": 1 / 256, names.BITS: 0.5}
    paths, panels = figures.suppression_curves(sup, str(tmp_path / "sup"), "t", chance)
    assert panels == 4 * 4 and all(os.path.getsize(p) > 0 for p in paths)
    assert [os.path.splitext(p)[1] for p in paths] == [".png", ".pdf"]
    table = suppression_fig.colab_table(sup)
    rows = table.splitlines()
    assert "mean over 3 seeds" in rows[0] and rows[1].split()[-3:] == ["0", "5", "20"]
    bits_row = next(r for r in rows if r.split()[:2] == ["0.05", "bits"])
    assert bits_row.split()[2:] == ["-", "1.000", "1.000"]
    color_row = next(r for r in rows if r.split()[:2] == ["0.05", "color"])
    assert float(color_row.split()[2]) == pytest.approx(0.9)
