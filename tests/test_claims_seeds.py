"""Claims over seeds: the two-level bootstrap and the pooled verdicts
(docs/DESIGN.md §5 "Across seeds") on crafted per-seed results with a known
answer."""
from __future__ import annotations

import json

import numpy as np
import pytest

from simclr_controlled import claims as C
from simclr_controlled.claims import evidence as E
from simclr_controlled.claims import statistics as st
from simclr_controlled.errors import UsageError

N_ITEMS = 200


def _claim(name, diffs_by_what, rng):
    """A claim of paired comparisons, each per-item a ~ b + diff with noise 0.05."""
    ev = []
    for what, diff in diffs_by_what.items():
        b = rng.normal(0.3, 0.1, N_ITEMS)
        a = b + diff + rng.normal(0, 0.05, N_ITEMS)
        ev.append(C.Evidence.paired(what, a, b, seed=0))
    return E.verdict_from(name, f"{name}: crafted.", ev, [])


def _per_seed(diffs_per_seed):
    rng = np.random.default_rng(0)
    return {s: [_claim("X", {"x > y": d}, rng)] for s, d in enumerate(diffs_per_seed)}


def test_two_level_bootstrap_of_constants_is_the_seed_bootstrap():
    lo, hi = st.two_level_bootstrap_ci([st.constant_draws(v) for v in (0.1, 0.2, 0.3, 0.4, 0.5)])
    mean, lo2, hi2 = st.seed_interval(np.array([0.1, 0.2, 0.3, 0.4, 0.5]))
    assert mean == pytest.approx(0.3)
    assert 0.1 <= lo < 0.3 < hi <= 0.5
    assert lo == pytest.approx(float(lo2), abs=0.03) and hi == pytest.approx(float(hi2), abs=0.03)


def test_two_level_bootstrap_adds_item_noise_to_seed_noise():
    rng = np.random.default_rng(3)
    items = [rng.normal(0.5, 1.0, 50) for _ in range(5)]
    within = st.two_level_bootstrap_ci([st.item_draws(lambda x: x.mean(-1), [v]) for v in items])
    means_only = st.two_level_bootstrap_ci([st.constant_draws(v.mean()) for v in items])
    assert within[1] - within[0] > means_only[1] - means_only[0]
    # seeded: the same seed gives the same interval, another seed another
    again = st.two_level_bootstrap_ci([st.item_draws(lambda x: x.mean(-1), [v]) for v in items])
    other = st.two_level_bootstrap_ci([st.item_draws(lambda x: x.mean(-1), [v]) for v in items], seed=1)
    assert again == within and other != within


def test_two_level_bootstrap_one_seed_is_the_item_bootstrap_width():
    rng = np.random.default_rng(4)
    v = rng.normal(0.2, 0.5, 400)
    lo, hi = st.two_level_bootstrap_ci([st.item_draws(lambda x: x.mean(-1), [v])])
    lo1, hi1 = st.paired_bootstrap_ci(v)
    assert hi - lo == pytest.approx(hi1 - lo1, rel=0.15)


def test_claim_that_holds_in_every_seed_is_pooled_reproduced():
    per_seed = _per_seed([0.10, 0.12, 0.08, 0.11, 0.09])
    [c] = C.pool_claims(per_seed)
    assert c.reproduced and c.held_in == 5 and c.seeds == [0, 1, 2, 3, 4]
    assert c.label == "pooled REPRODUCED, held in 5 of 5 seeds"
    [e] = c.evidence
    assert e["held_in"] == "5 of 5 seeds" and e["ci_lo"] > 0
    assert e["diff"] == pytest.approx(np.mean([s[0].evidence[0]["diff"] for s in per_seed.values()]))


def test_claim_that_holds_in_one_of_five_seeds_is_not_pooled_reproduced():
    per_seed = _per_seed([0.10, 0.0, -0.01, -0.005, 0.0])
    assert [s[0].reproduced for s in per_seed.values()] == [True, False, False, False, False]
    [c] = C.pool_claims(per_seed)
    assert not c.reproduced and c.held_in == 1
    assert c.label == "pooled NOT REPRODUCED, held in 1 of 5 seeds"
    assert c.evidence[0]["ci_lo"] <= 0 < c.evidence[0]["ci_hi"]


def test_claim_with_opposite_signs_is_not_pooled_reproduced():
    per_seed = _per_seed([0.2, -0.2, 0.2, -0.2, 0.2])
    [c] = C.pool_claims(per_seed)
    assert not c.reproduced and c.held_in == 3
    e = c.evidence[0]
    assert e["ci_lo"] < 0 < e["ci_hi"]


def test_small_effects_pooled_over_seeds_can_hold_where_single_seeds_do_not():
    # Each seed alone is too noisy (few items); five agreeing seeds resolve it.
    rng = np.random.default_rng(11)
    per_seed = {}
    for s in range(5):
        b = rng.normal(0.3, 0.1, 12)
        a = b + 0.03 + rng.normal(0, 0.06, 12)
        per_seed[s] = [E.verdict_from("X", "X.", [C.Evidence.paired("x > y", a, b, 0)], [])]
    [c] = C.pool_claims(per_seed)
    assert c.held_in < 5 and c.reproduced


def test_not_above_side_and_constant_draws():
    # D3 (b)-like: a is not above b; pooled holds when the interval is <= 0.
    claims = {s: [E.verdict_from(
        "D", "D.", [C.Evidence.single("(b) x not > y", a, 1.0, "not_above", part="b")], [])]
        for s, a in enumerate([1.0, 0.9, 1.0])}
    [c] = C.pool_claims(claims)
    assert c.reproduced and c.evidence[0]["ci_hi"] <= 0
    claims[1] = [E.verdict_from(
        "D", "D.", [C.Evidence.single("(b) x not > y", 1.0, 0.9, "not_above", part="b")], [])]
    [c] = C.pool_claims(claims)
    assert not c.reproduced and c.held_in == 2


def test_comparison_missing_in_a_seed_is_not_pooled():
    per_seed = _per_seed([0.1, 0.1, 0.1])
    rng = np.random.default_rng(1)
    per_seed[2] = [_claim("X", {"x > y": 0.1, "only here": 0.1}, rng)]
    [c] = C.pool_claims(per_seed)
    missing = next(e for e in c.evidence if e["what"] == "only here")
    assert not missing["holds"] and "1 of 3 seeds" in missing["method"]
    assert not c.reproduced and c.held_in == 3


def test_not_applicable_in_a_seed_is_not_applicable_pooled():
    per_seed = _per_seed([0.1, 0.1])
    per_seed[1] = [E.not_applicable("X", "X: crafted.", "no results.")]
    [c] = C.pool_claims(per_seed)
    assert not c.applicable and not c.reproduced and "seed(s) 1" in c.statement


def test_pooled_hierarchy_claims_from_real_checks_and_json():
    from tests.test_claims import GOOD_SIM, _sim
    per_seed = {s: [C.check_h5(_sim(GOOD_SIM, seed=s), seed=0)] for s in range(3)}
    [c] = C.pool_claims(per_seed, seed=0)
    assert c.reproduced and c.held_in == 3
    assert {e["part"] for e in c.evidence} == {"a", "b", "c"}
    back = json.loads(C.claims_to_json([c]))[0]
    assert back["label"] == "pooled REPRODUCED, held in 3 of 3 seeds" and back["held_in"] == 3
    assert "side" not in back["evidence"][0] and "draw" not in back["evidence"][0]
    assert "pooled REPRODUCED, held in 3 of 3 seeds" in C.format_table([c])


def test_pool_claims_refuses_mismatched_seeds():
    per_seed = _per_seed([0.1, 0.1])
    per_seed[1] = per_seed[1] + per_seed[1]
    with pytest.raises(UsageError):
        C.pool_claims(per_seed)
    with pytest.raises(UsageError):
        C.pool_claims({})


def test_one_seed_label():
    [c] = _per_seed([0.1])[0]
    c.seeds = [3]
    assert c.label == "REPRODUCED (one seed: 3)"
