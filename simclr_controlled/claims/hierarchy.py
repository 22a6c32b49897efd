"""H1-H5: the hierarchy experiment's claims (Sec. 2, Fig. 2, B.1-B.3).

Each check is a function of saved results (schemas: `claims.results`) and
returns a `Claim`. Decisions where the paper is silent (docs/DESIGN.md §5, §6):
- H2 or H3 with fewer than 3 levels, H3 with a single temperature or no
  layer common to all temperatures: not applicable.
- H3: if any bootstrap resample gives a non-finite G (level-0 similarity
  equal to baseline in a resample), the interval is NaN and the comparison
  does not hold; G's point values per temperature are reported.
- H5, within > across at a level, and "level-0 across-class is the lowest
  statistic": per item (`Evidence.per_item`). A statistic with no pairs
  (e.g. within-class at the leaf level, one item per leaf class) is not
  compared; its absence is reported.
- H5, train and validation agree: at every temperature and layer the
  statistics present in both splits, sorted by their means (the pair-level
  values of the results), are in exactly the same order. Kendall's tau
  between the two orders is reported alongside.
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
                                                 kendall_tau)

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
                         n=int(both.shape[-1]), method="joint bootstrap")]
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


def _split_evidence(layer_stats: Mapping, tag: str, seed: int,
                    evidence: list, reported: list) -> list[str]:
    """H5 (i) and (ii) on one split; returns the statistics by falling mean."""
    stats = _statistics(layer_stats)
    order = sorted(stats, key=lambda k: -stats[k][0])
    reported.append({"what": f"{tag}: means", **{k: v[0] for k, v in stats.items()}})
    n_lev = n_levels(layer_stats)
    missing = [f"{k}_{l}" for l in range(n_lev)
               for k in ("within", "across") if f"{k}_{l}" not in stats]
    if missing:
        reported.append({"what": f"{tag}: absent (no pairs)", "statistics": missing})
    if "across_0" not in stats:
        evidence.append(Evidence.not_judged(
            f"{tag}: across_0 is lowest", "across_0 absent (no pairs)",
            part="lowest"))
    else:
        # within_0 > across_0 is judged once, in the loop below; it serves both parts.
        for k in order:
            if k not in ("across_0", "within_0"):
                evidence.append(Evidence.per_item(
                    f"{tag}: {k} > across_0", stats[k][1], stats["across_0"][1],
                    seed, part="lowest"))
    for l in range(n_lev):
        w, a = f"within_{l}", f"across_{l}"
        if w in stats and a in stats:
            evidence.append(Evidence.per_item(
                f"{tag}: {w} > {a}", stats[w][1], stats[a][1], seed,
                part="within>across"))
    return order


def _agreement(what: str, orders: Mapping[str, list[str]]) -> Evidence:
    """H5 (iii): train and validation order the common statistics alike."""
    if not all(s in orders for s in SPLITS):
        return Evidence.not_judged(what, "a split is missing", part="agree",
                                   a=orders.get("train"), b=orders.get("validation"))
    common = set(orders["train"]) & set(orders["validation"])
    tr = [k for k in orders["train"] if k in common]
    va = [k for k in orders["validation"] if k in common]
    only = sorted(set(orders["train"]) ^ set(orders["validation"]))
    return Evidence(what, " > ".join(tr), " > ".join(va), None, None, None,
                    bool(tr == va and len(tr) > 0), kendall_tau=kendall_tau(tr, va),
                    method="same order of means", part="agree",
                    in_one_split_only=only or None)


def check_h5(sim: Mapping, seed: int = 0) -> Claim:
    """H5 (Fig. B.2, B.3), at every temperature, layer and split.

    (i) level-0 across-class similarity is below every other statistic
    (``part="lowest"``; within_0 > across_0 is judged once, under (ii));
    (ii) within-class > across-class at each level where both exist
    (``part="within>across"``);
    (iii) train and validation order the statistics' means identically
    (``part="agree"``).
    """
    text = ("H5 (Fig. B.2, B.3): at every temperature, layer and split, items "
            "with different top-level classes are the least similar pairs "
            "(every statistic > level-0 across-class), within-class > "
            "across-class at each level, and train and validation order the "
            "statistics' means identically.")
    if not sim:
        return not_applicable("H5", text, "no similarity results.")
    evidence, reported = [], []
    for t in temps(sim):
        splits = [s for s in SPLITS if s in sim[t]] + \
                 [s for s in sim[t] if s not in SPLITS]
        layer_names = []
        for s in splits:
            layer_names += [l for l in layers(sim[t][s]) if l not in layer_names]
        for layer in layer_names:
            orders = {split: _split_evidence(sim[t][split][layer],
                                             f"{tname(t)} {layer} {split}",
                                             seed, evidence, reported)
                      for split in splits if layer in sim[t][split]}
            evidence.append(_agreement(
                f"{tname(t)} {layer}: train and validation order agree", orders))
    return verdict_from("H5", text, evidence, reported)


def check_hierarchy(cp_train: Mapping | None, cp_random: Mapping | None,
                    sim: Mapping | None, seed: int = 0) -> list[Claim]:
    """H1-H5 from the saved hierarchy results; None = not run."""
    return [check_h1(cp_train or {}, seed), check_h2(cp_train or {}, seed),
            check_h3(cp_train or {}, seed), check_h4(cp_random or {}, seed),
            check_h5(sim or {}, seed)]
