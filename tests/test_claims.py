"""Tests of the claim checks (DESIGN §5) on crafted results."""
from __future__ import annotations

import json

import numpy as np
import pytest

from simclr_controlled import claims as C
from simclr_controlled.errors import UsageError

N = 200
TEMPS = (0.1, 0.5, 1.0)


def _cp(means_by_temp, n=N, seed=0, noise=0.05):
    """cp[t][layer][probe] with per-reference noise around given means.

    means_by_temp[t] = [m_level_0, ..., m_level_{L-1}, m_baseline].
    """
    rng = np.random.default_rng(seed)
    out = {}
    for t, means in means_by_temp.items():
        out[t] = {}
        for layer in C.LAYERS:
            common = rng.normal(0, noise, n)  # reference-level shared offset
            probes = {f"level_{l}": m + common + rng.normal(0, noise, n)
                      for l, m in enumerate(means[:-1])}
            probes["baseline"] = means[-1] + common + rng.normal(0, noise, n)
            out[t][layer] = probes
    return out


GRADED = [0.8, 0.6, 0.4, 0.2, 0.2]     # level 0 > 1 > 2 > 3 = baseline
FLAT = [0.8, 0.2, 0.2, 0.2, 0.2]       # only level 0 stands out
NOTHING = [0.3, 0.3, 0.3, 0.3, 0.3]    # no preference at all


def test_bootstrap_positive_and_null_and_seeded():
    rng = np.random.default_rng(1)
    pos = 0.5 + rng.normal(0, 1, 200)
    lo, hi = C.paired_bootstrap_ci(pos)
    assert 0 < lo < pos.mean() < hi
    noise = rng.normal(0, 1, 200)
    noise -= noise.mean()
    lo, hi = C.paired_bootstrap_ci(noise)
    assert lo < 0 < hi
    assert C.paired_bootstrap_ci(noise, seed=3) == C.paired_bootstrap_ci(noise, seed=3)
    assert C.paired_bootstrap_ci(noise, seed=3) != C.paired_bootstrap_ci(noise, seed=4)
    # The generic version with the mean is the same draw.
    assert C.bootstrap_ci(lambda d: d.mean(-1), [noise], seed=3) == \
        C.paired_bootstrap_ci(noise, seed=3)
    lo90, hi90 = C.paired_bootstrap_ci(noise, level=0.9)
    lo95, hi95 = C.paired_bootstrap_ci(noise, level=0.95)
    assert lo95 <= lo90 < hi90 <= hi95
    with pytest.raises(UsageError, match="level"):
        C.paired_bootstrap_ci(noise, level=1.5)
    with pytest.raises(UsageError, match="arrays"):
        C.bootstrap_ci(lambda a, b: a.mean(-1), [noise, noise[:10]])


def test_bootstrap_joint_resampling_keeps_pairs():
    # a and b differ by a constant per reference; a joint resample keeps
    # the difference exact, an independent one would not.
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 100)
    b = a - 0.25
    lo, hi = C.bootstrap_ci(lambda x, y: x.mean(-1) - y.mean(-1), [a, b])
    assert lo == pytest.approx(0.25) and hi == pytest.approx(0.25)
    # Multi-dimensional arrays resample the last axis.
    stacked = np.stack([a, b])
    lo2, hi2 = C.bootstrap_ci(lambda x: x[:, 0].mean(-1) - x[:, 1].mean(-1), [stacked])
    assert (lo2, hi2) == (lo, hi)


def test_h1_h4_hold_and_fail():
    good = _cp({t: GRADED for t in TEMPS})
    c = C.check_h1(good)
    assert c.reproduced and c.name == "H1"
    assert len(c.evidence) == len(TEMPS) * 4 * 4  # 3 levels + baseline
    assert all(e["ci_lo"] > 0 for e in c.evidence)
    # One temperature with no preference breaks it.
    bad = _cp({0.1: GRADED, 0.5: NOTHING, 1.0: GRADED})
    c = C.check_h1(bad)
    assert not c.reproduced
    assert any(not e["holds"] and "T=0.5" in e["what"] for e in c.evidence)
    assert C.check_h4(good).reproduced and C.check_h4(good).name == "H4"
    assert not C.check_h4(bad).reproduced


def test_h1_on_shuffled_probes_fails():
    good = _cp({t: GRADED for t in TEMPS})
    rng = np.random.default_rng(5)
    shuffled = {}
    for t, layers in good.items():
        shuffled[t] = {}
        for layer, probes in layers.items():
            names = list(probes)
            values = np.stack([probes[p] for p in names])
            # Per reference, assign the probe values to random probe names.
            perm = rng.permuted(np.tile(np.arange(len(names)), (N, 1)), axis=1).T
            values = np.take_along_axis(values, perm, axis=0)
            shuffled[t][layer] = dict(zip(names, values))
    assert not C.check_h1(shuffled).reproduced


def test_h2_hold_fail_and_leaf_reported():
    c = C.check_h2(_cp({0.1: GRADED, 1.0: FLAT}))
    assert c.reproduced
    assert all("T=0.1" in e["what"] for e in c.evidence)
    assert len(c.evidence) == 4 * 2   # level_0>1, level_1>2 per layer
    assert len(c.reported) == 4 and all("holds" not in r for r in c.reported)
    assert all("level_3 vs baseline" in r["what"] for r in c.reported)
    # Lowest temperature is flat below level 0: not graded.
    c = C.check_h2(_cp({0.1: FLAT, 1.0: GRADED}))
    assert not c.reproduced and c.applicable
    # String temperature keys (after JSON) are ordered by value.
    c = C.check_h2({str(t): v for t, v in _cp({0.1: GRADED, 1.0: FLAT}).items()})
    assert c.reproduced


def test_h2_h3_not_applicable_with_two_levels():
    cp = _cp({0.1: [0.8, 0.2, 0.1], 1.0: [0.8, 0.2, 0.1]})
    for check in (C.check_h2, C.check_h3):
        c = check(cp)
        assert not c.reproduced and not c.applicable
        assert "Not applicable" in c.statement


def test_h3_hold_and_fail():
    c = C.check_h3(_cp({0.1: GRADED, 0.5: GRADED, 1.0: FLAT}))
    assert c.reproduced
    (e,) = c.evidence
    # G(GRADED) = mean(0.4/0.6, 0.2/0.6) = 0.5; G(FLAT) = 0.
    assert e["a"] == pytest.approx(0.5, abs=0.05)
    assert e["b"] == pytest.approx(0.0, abs=0.05)
    assert e["ci_lo"] > 0
    assert [r["what"] for r in c.reported] == ["G at T=0.1", "G at T=0.5", "G at T=1"]
    # Reversed: the highest temperature is the graded one.
    c = C.check_h3(_cp({0.1: FLAT, 1.0: GRADED}))
    assert not c.reproduced and c.applicable and c.evidence[0]["ci_hi"] < 0
    # Same gradedness at both: interval straddles zero.
    c = C.check_h3(_cp({0.1: GRADED, 1.0: GRADED}, noise=0.2))
    assert not c.reproduced and c.evidence[0]["ci_lo"] < 0 < c.evidence[0]["ci_hi"]
    # A single temperature cannot be judged.
    c = C.check_h3(_cp({0.5: GRADED}))
    assert not c.applicable and not c.reproduced and len(c.reported) == 1


def test_h3_deterministic_with_seed():
    cp = _cp({0.1: GRADED, 1.0: FLAT})
    a = C.check_h3(cp, seed=7).evidence[0]
    b = C.check_h3(cp, seed=7).evidence[0]
    d = C.check_h3(cp, seed=8).evidence[0]
    assert a == b and (a["ci_lo"], a["ci_hi"]) != (d["ci_lo"], d["ci_hi"])


# --- H5 ---------------------------------------------------------------------

def _sim(means, n=N, seed=0, val_means=None, few_level=None, high_t_means=None):
    """sim[t][split][layer] with per-item values around the given means.

    means: {"within_0":..., "across_0":..., ..., "across_view":...}; a name
    missing from `means` is absent. Items lacking partners get None.
    `val_means` replaces them on validation, `high_t_means` above the lowest T.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for t in TEMPS:
        out[t] = {}
        for split in C.SPLITS:
            m = means if split == "train" or val_means is None else val_means
            if t != min(TEMPS) and high_t_means is not None:
                m = high_t_means
            out[t][split] = {}
            for layer in C.LAYERS:
                stats = {}
                for l in range(4):
                    lv = {}
                    for kind in ("within", "across"):
                        key = f"{kind}_{l}"
                        if key not in m:
                            continue
                        vals = m[key] + rng.normal(0, 0.05, n)
                        has = rng.random(n) < 0.8
                        if few_level == l:
                            has[:] = False
                            has[:6] = True if kind == "within" else False
                            has[3:9] |= kind == "across"
                        per = [float(v) if h else None for v, h in zip(vals, has)]
                        lv[kind] = float(np.mean(vals[has]))
                        lv[f"{kind}_pairs"] = int(has.sum() * 3)
                        lv[f"{kind}_per_item"] = per
                    stats[f"level_{l}"] = lv
                av = m["across_view"] + rng.normal(0, 0.05, n)
                stats["across_view"] = float(av.mean())
                stats["across_view_pairs"] = n
                stats["across_view_per_item"] = av.tolist()
                out[t][split][layer] = stats
    return out


# Pairs that first differ deeper share more channels: across rises with level.
GOOD_SIM = {"within_0": 0.9, "within_1": 0.8, "within_2": 0.7,
            "across_0": 0.0, "across_1": 0.3, "across_2": 0.4, "across_3": 0.5,
            "across_view": 0.95}


def _failing_parts(c):
    return {e["part"] for e in c.evidence if not e["holds"]}


def test_h5_holds():
    c = C.check_h5(_sim(GOOD_SIM))
    assert c.reproduced, C.format_table([c])
    whats = [e["what"] for e in c.evidence]
    assert len(set(whats)) == len(whats)          # nothing judged twice
    assert {e["part"] for e in c.evidence} == {"a", "b", "c"}
    assert "T=0.1 head_1 train: (a) within_1 > across_0" in whats
    assert "T=1 head_1 train: (a) across_3 > across_0" in whats
    assert "T=0.1 head_1 train: (b) across_2 > across_1" in whats
    assert "T=0.1 head_1 validation: (b) across_1 > across_0" in whats
    # (b) up to level L-2 and only at the lowest temperature.
    assert not any("(b) across_3" in w for w in whats)
    assert not any(w.startswith("T=1 ") and "(b)" in w for w in whats)
    # Neither across-view nor within vs across is judged; the latter is reported with pair counts.
    assert not any("across_view" in w for w in whats)
    assert not any("within_1 > across_1" in w for w in whats)
    lv = next(r for r in c.reported if r["what"] == "T=0.1 head_1 train level_1: within vs across (not judged)")
    assert lv["within_pairs"] > 0 and lv["across_pairs"] > 0 and lv["within"] > lv["across"]
    # The leaf has no within-class pairs: absent, not compared.
    assert not any("within_3" in w for w in whats)
    assert "(a) holds; (b) holds; (c) holds." in c.statement


@pytest.mark.parametrize("change,parts", [
    ({"across_0": 0.35}, {"a", "b", "c"}),   # across_0 above across_1: (a) fails, and (b) 1 > 0
    ({"within_2": -0.1}, {"a", "c"}),         # a within-class statistic below across_0
    ({"across_2": 0.2}, {"b", "c"}),          # across falls from level 1 to 2
])
def test_h5_fails_on_train_pattern(change, parts):
    c = C.check_h5(_sim({**GOOD_SIM, **change}, val_means={**GOOD_SIM, **change}))
    assert not c.reproduced and c.applicable
    assert _failing_parts(c) == parts


def test_h5_b_is_judged_at_the_lowest_temperature_only():
    flat = {**GOOD_SIM, "across_1": 0.4, "across_2": 0.4, "across_3": 0.4}
    assert C.check_h5(_sim(GOOD_SIM, high_t_means=flat)).reproduced
    c = C.check_h5(_sim(flat))
    assert not c.reproduced and _failing_parts(c) == {"b", "c"}


def test_h5_c_fails_when_validation_differs():
    val = {**GOOD_SIM, "across_2": 0.2}
    c = C.check_h5(_sim(GOOD_SIM, val_means=val))
    assert not c.reproduced
    assert _failing_parts(c) == {"c"}
    assert "(a) holds; (b) holds; (c) does not hold." in c.statement
    assert all("validation" in e["what"] for e in c.evidence if not e["holds"])


def test_h5_few_items_fall_back_to_unpaired():
    c = C.check_h5(_sim(GOOD_SIM, few_level=2))
    e = next(e for e in c.evidence if e["what"] == "T=0.1 head_1 train: (b) across_2 > across_1")
    assert e["method"] == "unpaired" and e["n"][0] == 6
    assert e["holds"]   # 0.1 apart with noise 0.05: clear even with 6 items
    assert c.reproduced


def test_h5_missing_split_fails():
    sim = _sim(GOOD_SIM)
    for t in sim:
        del sim[t]["validation"]
    c = C.check_h5(sim)
    assert not c.reproduced and _failing_parts(c) == {"c"}


def test_check_hierarchy_lists_five_claims():
    cp = _cp({0.1: GRADED, 1.0: FLAT})
    out = C.check_hierarchy(cp, cp, _sim(GOOD_SIM))
    assert [c.name for c in out] == ["H1", "H2", "H3", "H4", "H5"]
    assert all(c.reproduced for c in out)
    out = C.check_hierarchy(cp, None, None)
    assert not out[3].applicable and not out[4].applicable


# --- D1-D3 ------------------------------------------------------------------

def _dec(overrides=None):
    """Decodability where D1, D2, D3 all hold; overrides {(m, l, f): v}."""
    base = {
        "untrained": 0.3, "none": 0.5, "color_jitter": 0.4,
        "random_crop": 0.6, "crop_jitter": 0.7}
    dec = {}
    for m, v in base.items():
        dec[m] = {}
        for i, l in enumerate(C.LAYERS):
            dec[m][l] = {"color": v - 0.05 * i, "scale": v - 0.04 * i,
                         "position": v - 0.03 * i}
    dec["color_jitter"] = {l: {**dec["color_jitter"][l], "position": 0.9}
                           for l in C.LAYERS}
    dec["random_crop"]["head_out"]["color"] = 0.2   # below none's 0.35
    for (m, l, f), v in (overrides or {}).items():
        dec[m][l][f] = v
    return dec


def test_d_claims_hold():
    out = C.check_dsprites(_dec())
    assert [c.name for c in out] == ["D1", "D2", "D3"]
    assert all(c.reproduced for c in out), C.format_table(out)
    d1 = out[0]
    e = d1.evidence[0]
    assert e["a"] == 0.7 and e["b"] == pytest.approx(0.55)
    assert e["diff"] == pytest.approx(0.15) and e["ci_lo"] is None


def test_d1_fails_and_is_strict():
    assert not C.check_d1(_dec({("crop_jitter", "head_out", "scale"): 0.8})).reproduced
    # Equal is not "above".
    assert not C.check_d1(_dec({("crop_jitter", "head_out", "color"): 0.7})).reproduced


def test_d2_fails_on_each_part():
    high_color = {("color_jitter", l, "color"): 0.9 for l in C.LAYERS}
    c = C.check_d2(_dec(high_color))
    assert not c.reproduced and [e["holds"] for e in c.evidence] == [False, True]
    low_pos = {("color_jitter", l, "position"): 0.1 for l in C.LAYERS}
    c = C.check_d2(_dec(low_pos))
    assert not c.reproduced and [e["holds"] for e in c.evidence] == [True, False]


def test_d3_parts_reported_separately():
    # (a) true, (b) false: random crop also above at head_out.
    c = C.check_d3(_dec({("random_crop", "head_out", "color"): 0.9}))
    assert not c.reproduced
    assert [e["part"] for e in c.evidence] == ["a", "a", "a", "b"]
    assert [e["holds"] for e in c.evidence] == [True, True, True, False]
    assert "(a) holds; (b) does not hold" in c.statement
    assert "NOT REPRODUCED" in C.format_table([c])
    # (a) false at one layer, (b) true.
    c = C.check_d3(_dec({("random_crop", "head_1", "color"): 0.1}))
    assert not c.reproduced and "(a) does not hold; (b) holds" in c.statement
    # Equal at head_out counts as "not above": (b) holds.
    dec = _dec()
    dec["random_crop"]["head_out"]["color"] = dec["none"]["head_out"]["color"]
    c = C.check_d3(dec)
    assert c.reproduced


def test_d_missing_model_not_applicable():
    dec = _dec()
    del dec["none"]
    out = C.check_dsprites(dec)
    assert out[0].reproduced
    assert all(not c.applicable and not c.reproduced for c in out[1:])
    assert "none/head_input/color" in out[1].statement


def test_invariance_table():
    t = C.invariance_table(_dec())
    assert list(t) == list(C.MODELS)
    assert t["crop_jitter"]["color"] == pytest.approx(0.15)
    assert t["random_crop"]["color"] == pytest.approx(0.6 - 0.2)
    text = C.format_invariance_table(t)
    assert "crop_jitter" in text and "+0.1500" in text


# --- output -----------------------------------------------------------------

def test_format_table_and_json():
    cp = _cp({0.1: GRADED, 1.0: FLAT})
    claims = (C.check_hierarchy(cp, _cp({0.1: NOTHING}), _sim(GOOD_SIM))
              + C.check_dsprites(_dec({("random_crop", "head_out", "color"): 0.9}))
              + [C.check_h3(_cp({0.1: [0.5, 0.5, 0.5, 0.5]}))])
    text = C.format_table(claims)
    assert "H1: REPRODUCED" in text and "H4: NOT REPRODUCED" in text
    assert "D3: NOT REPRODUCED" in text and "(not applicable)" in text
    e = claims[0].evidence[0]
    assert f"{e['a']:.4f}" in text and f"{e['ci_lo']:.4f}" in text
    assert "95% CI" in text and "(reported)" in text
    for c in claims:
        s = json.dumps(c.to_json(), allow_nan=False)
        back = json.loads(s)
        assert back["verdict"] == c.verdict and back["name"] == c.name
    json.loads(C.claims_to_json(claims))


def test_to_json_converts_numpy_and_nan():
    c = C.Claim("X", np.bool_(False), "s",
                [{"what": "w", "a": np.float32(1.5), "b": np.int64(2),
                  "diff": float("nan"), "ci_lo": None, "ci_hi": None,
                  "holds": np.bool_(False), "arr": np.arange(3)}],
                [{"what": "r", "value": float("inf")}])
    d = json.loads(json.dumps(c.to_json(), allow_nan=False))
    assert d["evidence"][0]["a"] == 1.5 and d["evidence"][0]["diff"] is None
    assert d["evidence"][0]["arr"] == [0, 1, 2] and d["reported"][0]["value"] is None
