"""H1-H5: the hierarchy experiment's claims (Sec. 2, Fig. 2, B.1-B.3).

Each check is a function of saved results (schemas: `claims.results`) and
returns a `Claim`. Decisions where the paper is silent (docs/DESIGN.md §5, §6):
- H2 or H3 with fewer than 3 levels, H3 with a single temperature or no
  layer common to all temperatures: not applicable.
- H3: if any bootstrap resample gives a non-finite G (level-0 similarity
  equal to baseline in a resample), the interval is NaN and the comparison
  does not hold; G's point values per temperature are reported.
- H5 (a)-(c) compare per item (`Evidence.per_item`). A statistic with no
  pairs (e.g. within-class at the leaf level, one item per leaf class) is
  not compared; it is absent from the reported pair counts' means.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from simclr_controlled.claims.evidence import (Claim, Evidence, not_applicable,
                                               verdict_from)
from simclr_controlled.claims.results import (SPLITS, layers, n_levels, temps,
                                              tname)
from simclr_controlled.claims.statistics import (bootstrap_ci, gradedness,
                                                 item_draws)

_H1_TEXT = ("at the end of training, at every layer and temperature, the "
            "level-0 probe is more similar to the reference than every other "
            "probe (paired 95% bootstrap CI of the difference above zero)")


def _level0_beats_all(cp: Mapping, seed: int) -> list[Evidence]:
    evidence = []
    for t in temps(cp):
        for layer in layers(cp[t]):
            probes = cp[t][layer]
            others = [f"level_{l}" for l in range(1, n_levels(probes))]
            others += ["baseline"] if "baseline" in probes else []
            for p in others:
                evidence.append(Evidence.paired(
                    f"{tname(t)} {layer}: level_0 > {p}",
                    probes["level_0"], probes[p], seed))
    return evidence


def check_h1(cp_train: Mapping, seed: int = 0, *, name: str = "H1",
             figure: str = "Fig. 2", source: str = "train masks") -> Claim:
    """H1 (Fig. 2): level-0 probe > every other probe, every layer and T."""
    text = f"{name} ({figure}): {_H1_TEXT}; {source}."
    if not cp_train:
        return not_applicable(name, text, "no channel-preference results.")
    return verdict_from(name, text, _level0_beats_all(cp_train, seed), [])


def check_h4(cp_random: Mapping, seed: int = 0) -> Claim:
    """H4 (Fig. B.1): H1 with references and probes from fresh random masks."""
    return check_h1(cp_random, seed, name="H4", figure="Fig. B.1",
                    source="random masks")


def check_h2(cp_train: Mapping, seed: int = 0) -> Claim:
    """H2 (Fig. 2): at the lowest T, level 0 > level 1 > ... > level L-2.

    Consecutive paired comparisons at every layer. Leaf vs baseline is
    reported with its interval, not judged.
    """
    text = ("H2 (Fig. 2): at the lowest temperature, at every layer, "
            "similarity falls in a graded way, level_0 > level_1 > ... > "
            "level_{L-2} (consecutive paired comparisons); leaf vs baseline "
            "reported, not judged.")
    if not cp_train:
        return not_applicable("H2", text, "no channel-preference results.")
    t = temps(cp_train)[0]
    evidence, reported = [], []
    levels_seen = []
    for layer in layers(cp_train[t]):
        probes = cp_train[t][layer]
        n_lev = n_levels(probes)
        levels_seen.append(n_lev)
        for l in range(n_lev - 2):
            evidence.append(Evidence.paired(
                f"{tname(t)} {layer}: level_{l} > level_{l + 1}",
                probes[f"level_{l}"], probes[f"level_{l + 1}"], seed))
        if n_lev >= 1 and "baseline" in probes:
            leaf = f"level_{n_lev - 1}"
            reported.append(Evidence.paired(
                f"{tname(t)} {layer}: {leaf} vs baseline (not judged)",
                probes[leaf], probes["baseline"], seed).as_reported())
    if not evidence:
        return not_applicable(
            "H2", text,
            f"the hierarchy has {max(levels_seen, default=0)} level(s); a "
            "graded fall-off over levels 0..L-2 needs at least 3.", reported)
    return verdict_from("H2", text, evidence, reported)


def _stack_for_g(cp_t: Mapping, layer_names: list[str], n_lev: int) -> np.ndarray:
    probes = [f"level_{l}" for l in range(n_lev - 1)] + ["baseline"]
    return np.stack([np.stack([np.asarray(cp_t[layer][p], dtype=np.float64)
                               for p in probes]) for layer in layer_names])


def check_h3(cp_train: Mapping, seed: int = 0) -> Claim:
    """H3 (Fig. 2): lower temperature resolves lower levels more.

    G(T) = mean over layers and levels 1..L-2 of (s_l - s_base)/(s_0 - s_base).
    Judged: the bootstrap CI of G(lowest T) - G(highest T), references
    resampled jointly over every layer, probe and both temperatures, lies
    entirely above zero. G at every temperature is reported.
    """
    text = ("H3 (Fig. 2): lower temperature resolves lower levels more: "
            "gradedness G = mean over layers and levels 1..L-2 of "
            "(s_l - s_base)/(s_0 - s_base) is larger at the lowest temperature "
            "than at the highest (bootstrap CI of the difference above zero).")
    if not cp_train:
        return not_applicable("H3", text, "no channel-preference results.")
    ts = temps(cp_train)
    common = [l for l in layers(cp_train[ts[0]])
              if all(l in cp_train[t] for t in ts)]
    if not common:
        return not_applicable("H3", text, "no layer common to all temperatures.")
    n_lev = min(n_levels(cp_train[t][l]) for t in ts for l in common)
    if n_lev < 3:
        return not_applicable(
            "H3", text, f"the hierarchy has {n_lev} level(s); G needs levels "
            "1..L-2, i.e. at least 3 levels.")
    stacks = {t: _stack_for_g(cp_train[t], common, n_lev) for t in ts}
    with np.errstate(divide="ignore", invalid="ignore"):
        reported = [{"what": f"G at {tname(t)}",
                     "value": float(gradedness(stacks[t]))} for t in ts]
    if len(ts) < 2:
        return not_applicable(
            "H3", text, "only one temperature; there is no lowest vs highest.",
            reported)
    lo_t, hi_t = ts[0], ts[-1]
    both = np.stack([stacks[lo_t], stacks[hi_t]])  # [2, layer, probe, n]

    def g_diff(x: np.ndarray) -> np.ndarray:
        g = gradedness(x)
        return g[..., 0] - g[..., 1]

    with np.errstate(divide="ignore", invalid="ignore"):
        g_lo = float(gradedness(stacks[lo_t]))
        g_hi = float(gradedness(stacks[hi_t]))
    lo, hi = bootstrap_ci(g_diff, [both], seed=seed)
    evidence = [Evidence(f"G at {tname(lo_t)} > G at {tname(hi_t)}",
                         g_lo, g_hi, g_lo - g_hi, lo, hi, bool(lo > 0.0),
                         n=int(both.shape[-1]), method="joint bootstrap",
                         draw=item_draws(g_diff, [both]))]
    if math.isnan(lo):
        text += (" A resample gave a non-finite G (level-0 similarity equal "
                 "to baseline), so the interval is undefined.")
    return verdict_from("H3", text, evidence, reported)


def _present(x: Any) -> bool:
    return x is not None and isinstance(x, (int, float, np.number)) \
        and math.isfinite(float(x))


def _per_item(values: Any) -> np.ndarray:
    if values is None:
        return np.zeros(0)
    return np.array([math.nan if v is None else float(v) for v in values],
                    dtype=np.float64)


def _statistics(stats: Mapping) -> dict[str, tuple[float, np.ndarray]]:
    """name -> (mean, per-item values with NaN where an item has no partner).

    Names: within_l, across_l, across_view; absent statistics are left out.
    """
    out = {}
    for l in range(n_levels(stats)):
        lv = stats[f"level_{l}"]
        for kind in ("within", "across"):
            if _present(lv.get(kind)) and lv.get(f"{kind}_pairs", 1) != 0:
                out[f"{kind}_{l}"] = (float(lv[kind]),
                                      _per_item(lv.get(f"{kind}_per_item")))
    if _present(stats.get("across_view")) and stats.get("across_view_pairs", 1) != 0:
        out["across_view"] = (float(stats["across_view"]),
                              _per_item(stats.get("across_view_per_item")))
    return out


def _pair_counts(layer_stats: Mapping, tag: str) -> list[dict]:
    """Within vs across at each level, with pair counts: reported, not judged."""
    out = []
    for l in range(n_levels(layer_stats)):
        lv = layer_stats[f"level_{l}"]
        out.append({"what": f"{tag} level_{l}: within vs across (not judged)",
                    **{k: lv.get(k) for k in ("within", "within_pairs", "across", "across_pairs")}})
    if "across_view" in layer_stats:
        out.append({"what": f"{tag}: across-view", "across_view": layer_stats.get("across_view"),
                    "pairs": layer_stats.get("across_view_pairs")})
    return out


def _h5_split(layer_stats: Mapping, tag: str, seed: int, graded: bool,
              parts: tuple[str, str]) -> list[Evidence]:
    """H5 (a) on one split and layer, and (b) when `graded` (lowest T)."""
    stats = _statistics(layer_stats)
    n_lev = n_levels(layer_stats)
    part_a, part_b = parts
    evidence = []
    if "across_0" not in stats:
        evidence.append(Evidence.not_judged(f"{tag}: (a) across_0 is lowest",
                                            "across_0 absent (no pairs)", part=part_a))
    else:
        others = [f"within_{l}" for l in range(n_lev)] + [f"across_{l}" for l in range(1, n_lev)]
        for k in others:
            if k in stats:
                evidence.append(Evidence.per_item(
                    f"{tag}: (a) {k} > across_0", stats[k][1], stats["across_0"][1],
                    seed, part=part_a))
    if graded:
        for l in range(n_lev - 2):
            lo, hi = f"across_{l}", f"across_{l + 1}"
            if lo in stats and hi in stats:
                evidence.append(Evidence.per_item(
                    f"{tag}: (b) {hi} > {lo}", stats[hi][1], stats[lo][1], seed, part=part_b))
            else:
                evidence.append(Evidence.not_judged(
                    f"{tag}: (b) {hi} > {lo}", "absent (no pairs)", part=part_b))
    return evidence


def check_h5(sim: Mapping, seed: int = 0) -> Claim:
    """H5 (Fig. B.2, B.3; docs/DESIGN.md §5), per item:

    (a) at every temperature and layer, level-0 across-class similarity is
    below every other within- and across-class statistic (``part="a"``);
    (b) at the lowest temperature, at every layer, across-class similarity
    rises with the level at which a pair first differs, across_0 < across_1
    < ... < across_{L-2} (``part="b"``); both on the training items;
    (c) (a) and (b) on the validation items (``part="c"``).
    Within vs across at each level is reported with its pair counts, not
    judged (too few pairs share a deep class at the paper's 200 items).
    """
    text = ("H5 (Fig. B.2, B.3): (a) at every temperature and layer, items with "
            "different top-level classes are the least similar pairs (every "
            "within- and across-class statistic > level-0 across-class); (b) at "
            "the lowest temperature, at every layer, across-class similarity rises "
            "with the level at which a pair first differs (across_0 < across_1 < "
            "... < across_{L-2}); (c) (a) and (b) hold on the validation items too. "
            "Within vs across at each level reported with pair counts, not judged.")
    if not sim:
        return not_applicable("H5", text, "no similarity results.")
    evidence, reported = [], []
    lowest = temps(sim)[0]
    missing = [s for s in SPLITS if not any(s in sim[t] for t in temps(sim))]
    for t in temps(sim):
        for split in [s for s in SPLITS if s in sim[t]]:
            parts = ("a", "b") if split == "train" else ("c", "c")
            for layer in layers(sim[t][split]):
                tag = f"{tname(t)} {layer} {split}"
                evidence += _h5_split(sim[t][split][layer], tag, seed, t == lowest, parts)
                reported += _pair_counts(sim[t][split][layer], tag)
    for split in missing:
        evidence.append(Evidence.not_judged(f"{split} items", f"no {split} results",
                                            part="c" if split == "validation" else "a"))
    return verdict_from("H5", text, evidence, reported)


def check_hierarchy(cp_train: Mapping | None, cp_random: Mapping | None,
                    sim: Mapping | None, seed: int = 0) -> list[Claim]:
    """H1-H5 from the saved hierarchy results; None = not run."""
    return [check_h1(cp_train or {}, seed), check_h2(cp_train or {}, seed),
            check_h3(cp_train or {}, seed), check_h4(cp_random or {}, seed),
            check_h5(sim or {}, seed)]
