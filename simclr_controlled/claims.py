"""Checks of the paper's claims (SPEC §4) as pure functions of saved results.

Every check takes the saved analysis results (plain dicts of floats / numpy
arrays, as written by the analyses of SPEC §3), returns a `Claim` with the
verdict and every number behind it, and never edits a number. A claim that
does not hold is reported as such.

Input schemas
-------------
- Channel preference at the end of training (Fig. 2, B.1), one source
  (`train` or `random`): ``cp[temperature][layer][probe] -> array [n]``,
  probes ``level_0`` .. ``level_{L-1}`` and ``baseline``; entry i is the
  cosine similarity of reference item i to that probe. The reference items
  are the same across probes and temperatures, so comparisons are paired.
- Hierarchically constrained similarity (Fig. B.2, B.3):
  ``sim[temperature][split][layer]`` with ``split`` in (train, validation) is
  ``{"level_l": {"within", "within_pairs", "across", "across_pairs",
  "within_per_item", "across_per_item"}, "across_view", "across_view_pairs",
  "across_view_per_item"}``; a statistic with no pairs is absent.
- Decodability (Fig. 3): ``dec[model][layer][factor] -> best validation
  accuracy``.

Temperature keys may be floats or strings (JSON round trip); they are ordered
by their float value.

Statistics (SPEC §4)
--------------------
"A > B" between similarities: the per-reference paired difference A - B has a
95% percentile-bootstrap confidence interval (1,000 resamples of the
references, seeded) entirely above zero. Every comparison of one check uses
the same seed, so equal-size comparisons share their resample indices.
Decodability comparisons are single numbers (best validation accuracy over
epochs and grid, SPEC §3): "above" is strictly greater; no interval.

Decisions where the SPEC is silent
----------------------------------
- A claim that cannot be judged from the results (H2 with fewer than 3
  levels, H3 with fewer than 3 levels or a single temperature, a model or a
  layer missing from the results) is NOT REPRODUCED with
  ``applicable=False`` and a statement that says why: nothing was shown.
- H3: if any bootstrap resample gives a non-finite G (level-0 similarity
  equal to baseline in a resample), the interval is NaN and the comparison
  does not hold; G's point values per temperature are reported.
- H5, within > across at a level: paired per item (items that have both a
  within- and an across-class value at that level, each the mean over that
  item's partners) when at least `MIN_PAIRED_ITEMS` items have both;
  otherwise a two-sample bootstrap of the two sets of per-item values
  (resampled independently; an approximation, since the sets overlap); with
  fewer than 2 items on either side the comparison cannot show "A > B" and
  does not hold. A statistic with no pairs (e.g. within-class at the leaf
  level, one item per leaf class) is not compared; its absence is reported.
  The same rule serves "level-0 across-class is the lowest statistic".
- H5, train and validation agree: at every temperature and layer the
  statistics present in both splits, sorted by their means (the pair-level
  values of the results), are in exactly the same order. Kendall's tau
  between the two orders is reported alongside.
"""
from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from simclr_controlled.errors import UsageError

LAYERS = ("head_input", "head_1", "head_2", "head_out")
FACTORS = ("color", "scale", "position")
MODELS = ("untrained", "none", "color_jitter", "random_crop", "crop_jitter")
SPLITS = ("train", "validation")
MIN_PAIRED_ITEMS = 10


# --------------------------------------------------------------------------
# Bootstrap
# --------------------------------------------------------------------------

def _check_bootstrap_args(n_resamples: int, level: float) -> None:
    if int(n_resamples) < 1:
        raise UsageError(
            f"n_resamples: must be a positive integer, got {n_resamples}")
    if not 0.0 < float(level) < 1.0:
        raise UsageError(f"level: must be in (0, 1), got {level}")


def _percentile_interval(stats: np.ndarray, level: float) -> tuple[float, float]:
    if not np.all(np.isfinite(stats)):
        return (math.nan, math.nan)
    alpha = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(stats, [alpha, 100.0 - alpha])
    return (float(lo), float(hi))


def bootstrap_ci(stat_fn: Callable[..., np.ndarray],
                 arrays: Sequence[np.ndarray],
                 n_resamples: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of `stat_fn` over references (SPEC §4).

    Every array's LAST axis is the reference axis, of one common length n;
    all arrays are resampled jointly with one ``[n_resamples, n]`` index draw
    from ``np.random.default_rng(seed)``. `stat_fn` receives the resampled
    arrays, each of shape ``[n_resamples, ..., n]``, and must return shape
    ``[n_resamples]`` (reduce the last axis, broadcast over the leading one).
    Returns ``(lo, hi)``; NaN, NaN if any resampled statistic is not finite.
    """
    _check_bootstrap_args(n_resamples, level)
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    if not arrays:
        raise UsageError("arrays: need at least one array, got none")
    n = arrays[0].shape[-1]
    if any(a.shape[-1] != n for a in arrays):
        raise UsageError(
            "arrays: all must share the reference axis length, got "
            f"{[a.shape[-1] for a in arrays]}")
    if n == 0:
        raise UsageError("arrays: need at least one reference, got 0")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(int(n_resamples), n))
    # take along the last axis gives [..., R, n]; the resample axis goes first.
    resampled = [np.moveaxis(np.take(a, idx, axis=-1), -2, 0) for a in arrays]
    with np.errstate(divide="ignore", invalid="ignore"):
        stats = np.asarray(stat_fn(*resampled), dtype=np.float64)
    if stats.shape != (int(n_resamples),):
        raise UsageError(
            f"stat_fn: must return shape ({int(n_resamples)},), got {stats.shape}")
    return _percentile_interval(stats, float(level))


def _mean_last(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=-1)


def paired_bootstrap_ci(diff: np.ndarray, n_resamples: int = 1000,
                        seed: int = 0, level: float = 0.95
                        ) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of a paired difference.

    `diff` is [n], one entry per reference item (SPEC §4). With n = 1 the
    interval is the single value.
    """
    diff = np.asarray(diff, dtype=np.float64)
    if diff.ndim != 1:
        raise UsageError(f"diff: must be one-dimensional, got shape {diff.shape}")
    return bootstrap_ci(_mean_last, [diff], n_resamples, seed, level)


def two_sample_bootstrap_ci(a: np.ndarray, b: np.ndarray,
                            n_resamples: int = 1000, seed: int = 0,
                            level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of mean(a) - mean(b), a and b resampled independently."""
    _check_bootstrap_args(n_resamples, level)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise UsageError(
            f"a, b: need at least one value each, got {a.size} and {b.size}")
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, a.size, size=(int(n_resamples), a.size))
    ib = rng.integers(0, b.size, size=(int(n_resamples), b.size))
    stats = a[ia].mean(axis=1) - b[ib].mean(axis=1)
    return _percentile_interval(stats, float(level))


# --------------------------------------------------------------------------
# Claim record
# --------------------------------------------------------------------------

def _jsonable(x: Any) -> Any:
    """Plain JSON values: numpy scalars to Python, non-finite floats to None."""
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_jsonable(v) for v in x.tolist()]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else None
    if x is None or isinstance(x, str):
        return x
    return str(x)


@dataclasses.dataclass
class Claim:
    """One claim of SPEC §4 with its verdict and the numbers behind it.

    `evidence`: the judged comparisons, each a dict with ``what, a, b, diff,
    ci_lo, ci_hi, holds`` (CI keys None for single-number comparisons).
    `reported`: numbers printed but not judged. `applicable` is False where
    the results cannot show the claim at all (then `reproduced` is False).
    """
    name: str
    reproduced: bool
    statement: str
    evidence: list[dict] = dataclasses.field(default_factory=list)
    reported: list[dict] = dataclasses.field(default_factory=list)
    applicable: bool = True

    @property
    def verdict(self) -> str:
        return "REPRODUCED" if self.reproduced else "NOT REPRODUCED"

    def to_json(self) -> dict:
        """A dict that `json.dumps(..., allow_nan=False)` accepts."""
        return _jsonable({
            "name": self.name,
            "verdict": self.verdict,
            "reproduced": bool(self.reproduced),
            "applicable": bool(self.applicable),
            "statement": self.statement,
            "evidence": self.evidence,
            "reported": self.reported,
        })


def _not_applicable(name: str, claim_text: str, why: str,
                    reported: list[dict] | None = None) -> Claim:
    return Claim(name, False, f"{claim_text} Not applicable: {why}",
                 [], list(reported or []), applicable=False)


def _verdict_from(name: str, claim_text: str, evidence: list[dict],
                  reported: list[dict]) -> Claim:
    n_hold = sum(bool(e["holds"]) for e in evidence)
    ok = bool(evidence) and n_hold == len(evidence)
    return Claim(name, ok,
                 f"{claim_text} {n_hold}/{len(evidence)} comparisons hold.",
                 evidence, reported)


# --------------------------------------------------------------------------
# Helpers on the result dicts
# --------------------------------------------------------------------------

def _temps(results: Mapping) -> list:
    """Temperature keys ordered by value (keys may be strings after JSON)."""
    return sorted(results, key=float)


def _tname(t) -> str:
    return f"T={float(t):g}"


def _layers(d: Mapping) -> list[str]:
    """Layers present, paper order first, then any others in saved order."""
    known = [l for l in LAYERS if l in d]
    return known + [l for l in d if l not in LAYERS]


def _n_levels(probes: Mapping) -> int:
    n = 0
    while f"level_{n}" in probes:
        n += 1
    return n


def _paired(what: str, a: np.ndarray, b: np.ndarray, seed: int) -> dict:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise UsageError(
            f"{what}: paired arrays must be one-dimensional of equal length, "
            f"got shapes {a.shape} and {b.shape}")
    diff = a - b
    lo, hi = paired_bootstrap_ci(diff, seed=seed)
    return {"what": what, "a": float(a.mean()), "b": float(b.mean()),
            "diff": float(diff.mean()), "ci_lo": lo, "ci_hi": hi,
            "holds": bool(lo > 0.0), "n": int(a.size), "method": "paired"}


# --------------------------------------------------------------------------
# H1-H4: channel preference (Fig. 2, B.1)
# --------------------------------------------------------------------------

_H1_TEXT = ("at the end of training, at every layer and temperature, the "
            "level-0 probe is more similar to the reference than every other "
            "probe (paired 95% bootstrap CI of the difference above zero)")


def _level0_beats_all(cp: Mapping, seed: int) -> list[dict]:
    evidence = []
    for t in _temps(cp):
        for layer in _layers(cp[t]):
            probes = cp[t][layer]
            others = [f"level_{l}" for l in range(1, _n_levels(probes))]
            others += ["baseline"] if "baseline" in probes else []
            for p in others:
                evidence.append(_paired(
                    f"{_tname(t)} {layer}: level_0 > {p}",
                    probes["level_0"], probes[p], seed))
    return evidence


def check_h1(cp_train: Mapping, seed: int = 0, *, name: str = "H1",
             figure: str = "Fig. 2", source: str = "train masks") -> Claim:
    """H1 (Fig. 2): level-0 probe > every other probe, every layer and T."""
    text = f"{name} ({figure}): {_H1_TEXT}; {source}."
    if not cp_train:
        return _not_applicable(name, text, "no channel-preference results.")
    return _verdict_from(name, text, _level0_beats_all(cp_train, seed), [])


def check_h4(cp_random: Mapping, seed: int = 0) -> Claim:
    """H4 (Fig. B.1): H1 with references and probes from fresh random masks."""
    return check_h1(cp_random, seed, name="H4", figure="Fig. B.1",
                    source="random masks")


def check_h2(cp_train: Mapping, seed: int = 0) -> Claim:
    """H2 (Fig. 2): at the lowest T, level 0 > level 1 > ... > level L-2.

    Consecutive paired comparisons at every layer. Leaf vs baseline is
    reported with its interval, not judged (SPEC §4).
    """
    text = ("H2 (Fig. 2): at the lowest temperature, at every layer, "
            "similarity falls in a graded way, level_0 > level_1 > ... > "
            "level_{L-2} (consecutive paired comparisons); leaf vs baseline "
            "reported, not judged.")
    if not cp_train:
        return _not_applicable("H2", text, "no channel-preference results.")
    t = _temps(cp_train)[0]
    evidence, reported = [], []
    n_levels = []
    for layer in _layers(cp_train[t]):
        probes = cp_train[t][layer]
        n_lev = _n_levels(probes)
        n_levels.append(n_lev)
        for l in range(n_lev - 2):
            evidence.append(_paired(
                f"{_tname(t)} {layer}: level_{l} > level_{l + 1}",
                probes[f"level_{l}"], probes[f"level_{l + 1}"], seed))
        if n_lev >= 1 and "baseline" in probes:
            leaf = f"level_{n_lev - 1}"
            r = _paired(f"{_tname(t)} {layer}: {leaf} vs baseline (not judged)",
                        probes[leaf], probes["baseline"], seed)
            r.pop("holds")
            reported.append(r)
    if not evidence:
        return _not_applicable(
            "H2", text,
            f"the hierarchy has {max(n_levels, default=0)} level(s); a graded "
            "fall-off over levels 0..L-2 needs at least 3.", reported)
    return _verdict_from("H2", text, evidence, reported)


def _gradedness(stack: np.ndarray) -> np.ndarray:
    """G from per-reference similarities stacked as [..., layer, probe, n].

    Probe axis: level_0, level_1 .. level_{L-2}, baseline. G = mean over
    layers and levels 1..L-2 of (s_l - s_base) / (s_0 - s_base), s = means
    over references (SPEC §4 H3). Returns [...].
    """
    s = stack.mean(axis=-1)
    s0, mid, base = s[..., 0:1], s[..., 1:-1], s[..., -1:]
    return ((mid - base) / (s0 - base)).mean(axis=(-2, -1))


def _stack_for_g(cp_t: Mapping, layers: list[str], n_lev: int) -> np.ndarray:
    probes = [f"level_{l}" for l in range(n_lev - 1)] + ["baseline"]
    return np.stack([np.stack([np.asarray(cp_t[layer][p], dtype=np.float64)
                               for p in probes]) for layer in layers])


def check_h3(cp_train: Mapping, seed: int = 0) -> Claim:
    """H3 (Fig. 2): lower temperature resolves lower levels more.

    G(T) = mean over layers and levels 1..L-2 of (s_l - s_base)/(s_0 - s_base).
    Judged: the bootstrap CI of G(lowest T) - G(highest T), references
    resampled jointly over every layer, probe and both temperatures, lies
    entirely above zero. G at every temperature is reported. Not applicable
    with fewer than 3 levels (levels 1..L-2 empty) or a single temperature.
    """
    text = ("H3 (Fig. 2): lower temperature resolves lower levels more: "
            "gradedness G = mean over layers and levels 1..L-2 of "
            "(s_l - s_base)/(s_0 - s_base) is larger at the lowest temperature "
            "than at the highest (bootstrap CI of the difference above zero).")
    if not cp_train:
        return _not_applicable("H3", text, "no channel-preference results.")
    temps = _temps(cp_train)
    layers = [l for l in _layers(cp_train[temps[0]])
              if all(l in cp_train[t] for t in temps)]
    if not layers:
        return _not_applicable("H3", text, "no layer common to all temperatures.")
    n_lev = min(_n_levels(cp_train[t][l]) for t in temps for l in layers)
    if n_lev < 3:
        return _not_applicable(
            "H3", text, f"the hierarchy has {n_lev} level(s); G needs levels "
            "1..L-2, i.e. at least 3 levels.")
    stacks = {t: _stack_for_g(cp_train[t], layers, n_lev) for t in temps}
    with np.errstate(divide="ignore", invalid="ignore"):
        reported = [{"what": f"G at {_tname(t)}",
                     "value": float(_gradedness(stacks[t]))} for t in temps]
    if len(temps) < 2:
        return _not_applicable(
            "H3", text, "only one temperature; there is no lowest vs highest.",
            reported)
    lo_t, hi_t = temps[0], temps[-1]
    both = np.stack([stacks[lo_t], stacks[hi_t]])  # [2, layer, probe, n]

    def g_diff(x: np.ndarray) -> np.ndarray:
        g = _gradedness(x)
        return g[..., 0] - g[..., 1]

    with np.errstate(divide="ignore", invalid="ignore"):
        g_lo = float(_gradedness(stacks[lo_t]))
        g_hi = float(_gradedness(stacks[hi_t]))
    lo, hi = bootstrap_ci(g_diff, [both], seed=seed)
    evidence = [{"what": f"G at {_tname(lo_t)} > G at {_tname(hi_t)}",
                 "a": g_lo, "b": g_hi, "diff": g_lo - g_hi,
                 "ci_lo": lo, "ci_hi": hi, "holds": bool(lo > 0.0),
                 "n": int(both.shape[-1]), "method": "joint bootstrap"}]
    if math.isnan(lo):
        text += (" A resample gave a non-finite G (level-0 similarity equal "
                 "to baseline), so the interval is undefined.")
    return _verdict_from("H3", text, evidence, reported)


# --------------------------------------------------------------------------
# H5: hierarchically constrained similarity (Fig. B.2, B.3)
# --------------------------------------------------------------------------

def _present(x: Any) -> bool:
    return x is not None and isinstance(x, (int, float, np.number)) \
        and math.isfinite(float(x))


def _statistics(stats: Mapping) -> dict[str, tuple[float, np.ndarray]]:
    """name -> (mean, per-item values with NaN where an item has no partner).

    Names: within_l, across_l, across_view; absent statistics are left out.
    """
    out = {}
    n_lev = _n_levels(stats)
    for l in range(n_lev):
        lv = stats[f"level_{l}"]
        for kind in ("within", "across"):
            if _present(lv.get(kind)) and lv.get(f"{kind}_pairs", 1) != 0:
                out[f"{kind}_{l}"] = (float(lv[kind]),
                                      _per_item(lv.get(f"{kind}_per_item")))
    if _present(stats.get("across_view")) and stats.get("across_view_pairs", 1) != 0:
        out["across_view"] = (float(stats["across_view"]),
                              _per_item(stats.get("across_view_per_item")))
    return out


def _per_item(values: Any) -> np.ndarray:
    if values is None:
        return np.zeros(0)
    return np.array([math.nan if v is None else float(v) for v in values],
                    dtype=np.float64)


def _item_comparison(what: str, a: np.ndarray, b: np.ndarray, seed: int) -> dict:
    """'A > B' on per-item values; paired where enough items have both."""
    if a.size and b.size and a.size != b.size:
        raise UsageError(
            f"{what}: per-item lists must cover the same items, got lengths "
            f"{a.size} and {b.size}")
    fa, fb = np.isfinite(a), np.isfinite(b)
    if a.size and b.size and int((fa & fb).sum()) >= MIN_PAIRED_ITEMS:
        both = fa & fb
        return _paired(what, a[both], b[both], seed)
    va, vb = a[fa], b[fb]
    if va.size < 2 or vb.size < 2:
        return {"what": what,
                "a": float(va.mean()) if va.size else None,
                "b": float(vb.mean()) if vb.size else None,
                "diff": None, "ci_lo": None, "ci_hi": None, "holds": False,
                "n": [int(va.size), int(vb.size)],
                "method": "too few items to judge"}
    lo, hi = two_sample_bootstrap_ci(va, vb, seed=seed)
    return {"what": what, "a": float(va.mean()), "b": float(vb.mean()),
            "diff": float(va.mean() - vb.mean()), "ci_lo": lo, "ci_hi": hi,
            "holds": bool(lo > 0.0), "n": [int(va.size), int(vb.size)],
            "method": "unpaired"}


def _kendall_tau(order_a: list[str], order_b: list[str]) -> float:
    if len(order_a) < 2:
        return math.nan
    rank_b = {name: i for i, name in enumerate(order_b)}
    r = np.array([rank_b[name] for name in order_a])
    s = np.sign(r[None, :] - r[:, None])[np.triu_indices(len(r), 1)]
    return float(s.mean())


def check_h5(sim: Mapping, seed: int = 0) -> Claim:
    """H5 (Fig. B.2, B.3), at every temperature, layer and split.

    (i) level-0 across-class similarity is below every other statistic
    (``part="lowest"``; within_0 > across_0 is judged once, under (ii));
    (ii) within-class > across-class at each level where both exist
    (``part="within>across"``);
    (iii) train and validation order the statistics' means identically
    (``part="agree"``).
    Per-item rules: see the module docstring.
    """
    text = ("H5 (Fig. B.2, B.3): at every temperature, layer and split, items "
            "with different top-level classes are the least similar pairs "
            "(every statistic > level-0 across-class), within-class > "
            "across-class at each level, and train and validation order the "
            "statistics' means identically.")
    if not sim:
        return _not_applicable("H5", text, "no similarity results.")
    evidence, reported = [], []
    for t in _temps(sim):
        splits = [s for s in SPLITS if s in sim[t]] + \
                 [s for s in sim[t] if s not in SPLITS]
        layers = []
        for s in splits:
            layers += [l for l in _layers(sim[t][s]) if l not in layers]
        for layer in layers:
            orders = {}
            for split in splits:
                if layer not in sim[t][split]:
                    continue
                stats = _statistics(sim[t][split][layer])
                tag = f"{_tname(t)} {layer} {split}"
                orders[split] = sorted(stats, key=lambda k: -stats[k][0])
                reported.append({"what": f"{tag}: means",
                                 **{k: v[0] for k, v in stats.items()}})
                n_lev = _n_levels(sim[t][split][layer])
                missing = [f"{k}_{l}" for l in range(n_lev)
                           for k in ("within", "across") if f"{k}_{l}" not in stats]
                if missing:
                    reported.append({"what": f"{tag}: absent (no pairs)",
                                     "statistics": missing})
                if "across_0" not in stats:
                    evidence.append({"what": f"{tag}: across_0 is lowest",
                                     "a": None, "b": None, "diff": None,
                                     "ci_lo": None, "ci_hi": None,
                                     "holds": False,
                                     "method": "across_0 absent (no pairs)",
                                     "part": "lowest"})
                else:
                    # within_0 > across_0 is judged once, in the loop below;
                    # it serves both parts.
                    for k in orders[split]:
                        if k not in ("across_0", "within_0"):
                            evidence.append(dict(_item_comparison(
                                f"{tag}: {k} > across_0", stats[k][1],
                                stats["across_0"][1], seed), part="lowest"))
                for l in range(n_lev):
                    w, a = f"within_{l}", f"across_{l}"
                    if w in stats and a in stats:
                        evidence.append(dict(_item_comparison(
                            f"{tag}: {w} > {a}", stats[w][1], stats[a][1], seed),
                            part="within>across"))
            what = f"{_tname(t)} {layer}: train and validation order agree"
            if not all(s in orders for s in SPLITS):
                evidence.append({"what": what, "a": orders.get("train"),
                                 "b": orders.get("validation"), "diff": None,
                                 "ci_lo": None, "ci_hi": None, "holds": False,
                                 "method": "a split is missing",
                                 "part": "agree"})
                continue
            common = set(orders["train"]) & set(orders["validation"])
            tr = [k for k in orders["train"] if k in common]
            va = [k for k in orders["validation"] if k in common]
            only = sorted(set(orders["train"]) ^ set(orders["validation"]))
            evidence.append({"what": what, "a": " > ".join(tr),
                             "b": " > ".join(va), "diff": None,
                             "ci_lo": None, "ci_hi": None,
                             "holds": bool(tr == va and len(tr) > 0),
                             "kendall_tau": _kendall_tau(tr, va),
                             "method": "same order of means", "part": "agree",
                             **({"in_one_split_only": only} if only else {})})
    return _verdict_from("H5", text, evidence, reported)


def check_hierarchy(cp_train: Mapping | None, cp_random: Mapping | None,
                    sim: Mapping | None, seed: int = 0) -> list[Claim]:
    """H1-H5 (SPEC §4) from the saved hierarchy results; None = not run."""
    return [check_h1(cp_train or {}, seed), check_h2(cp_train or {}, seed),
            check_h3(cp_train or {}, seed), check_h4(cp_random or {}, seed),
            check_h5(sim or {}, seed)]


# --------------------------------------------------------------------------
# D1-D3: decodability (Fig. 3)
# --------------------------------------------------------------------------

def _missing(dec: Mapping, need: list[tuple[str, str, str]]) -> list[str]:
    out = []
    for m, l, f in need:
        try:
            float(dec[m][l][f])
        except (KeyError, TypeError):
            out.append(f"{m}/{l}/{f}")
    return out


def _single(what: str, a: float, b: float, holds: bool) -> dict:
    return {"what": what, "a": float(a), "b": float(b), "diff": float(a - b),
            "ci_lo": None, "ci_hi": None, "holds": bool(holds)}


def _dec_reported(dec: Mapping, models: Sequence[str],
                  factors: Sequence[str]) -> list[dict]:
    return [{"what": f"{m} {f} decodability",
             **{l: float(dec[m][l][f]) for l in _layers(dec[m]) if f in dec[m][l]}}
            for m in models if m in dec for f in factors]


def check_d1(dec: Mapping) -> Claim:
    """D1 (Fig. 3): crop+jitter: each factor decodes better at head_input
    than at head_out (strictly greater best validation accuracy)."""
    text = ("D1 (Fig. 3): in the crop+jitter model, each factor (color, "
            "scale, position) is more decodable at head_input than at "
            "head_out.")
    need = [("crop_jitter", l, f) for f in FACTORS for l in ("head_input", "head_out")]
    if miss := _missing(dec, need):
        return _not_applicable("D1", text, "missing results " + ", ".join(miss))
    m = dec["crop_jitter"]
    evidence = [_single(f"crop_jitter {f}: head_input > head_out",
                        m["head_input"][f], m["head_out"][f],
                        float(m["head_input"][f]) > float(m["head_out"][f]))
                for f in FACTORS]
    return _verdict_from("D1", text, evidence,
                         _dec_reported(dec, ["crop_jitter"], FACTORS))


def check_d2(dec: Mapping) -> Claim:
    """D2 (Fig. 3): averaged over the four layers, color jitter decodes color
    worse and position better than no augmentation (strict)."""
    text = ("D2 (Fig. 3): averaged over the four head layers, the "
            "color-jitter model's color decodability is below the "
            "no-augmentation model's, and its position decodability is "
            "above it.")
    need = [(m, l, f) for m in ("color_jitter", "none") for l in LAYERS
            for f in ("color", "position")]
    if miss := _missing(dec, need):
        return _not_applicable("D2", text, "missing results " + ", ".join(miss))

    def avg(m: str, f: str) -> float:
        return float(np.mean([float(dec[m][l][f]) for l in LAYERS]))

    cj_c, no_c = avg("color_jitter", "color"), avg("none", "color")
    cj_p, no_p = avg("color_jitter", "position"), avg("none", "position")
    evidence = [
        _single("color, mean over layers: color_jitter < none", cj_c, no_c,
                cj_c < no_c),
        _single("position, mean over layers: color_jitter > none", cj_p, no_p,
                cj_p > no_p),
    ]
    return _verdict_from("D2", text, evidence,
                         _dec_reported(dec, ["color_jitter", "none"],
                                       ("color", "position")))


def check_d3(dec: Mapping) -> Claim:
    """D3 (Fig. 3): (a) random crop's color decodability is above no
    augmentation's at head_input, head_1, head_2; (b) at head_out it is not.
    Reported separately; REPRODUCED only when both hold."""
    text = ("D3 (Fig. 3): random crop alone drives up color decodability in "
            "all but the final head layer: (a) the random-crop model's color "
            "decodability is above the no-augmentation model's at "
            "head_input, head_1 and head_2; (b) at head_out it is not.")
    need = [(m, l, "color") for m in ("random_crop", "none") for l in LAYERS]
    if miss := _missing(dec, need):
        return _not_applicable("D3", text, "missing results " + ", ".join(miss))
    rc, no = dec["random_crop"], dec["none"]
    ev_a = [dict(_single(f"(a) color at {l}: random_crop > none",
                         rc[l]["color"], no[l]["color"],
                         float(rc[l]["color"]) > float(no[l]["color"])),
                 part="a") for l in ("head_input", "head_1", "head_2")]
    ev_b = [dict(_single("(b) color at head_out: random_crop not > none",
                         rc["head_out"]["color"], no["head_out"]["color"],
                         not float(rc["head_out"]["color"])
                         > float(no["head_out"]["color"])), part="b")]
    a_ok = all(e["holds"] for e in ev_a)
    b_ok = all(e["holds"] for e in ev_b)
    text += (f" (a) {'holds' if a_ok else 'does not hold'}; "
             f"(b) {'holds' if b_ok else 'does not hold'}.")
    return _verdict_from("D3", text, ev_a + ev_b,
                         _dec_reported(dec, ["random_crop", "none"], ("color",)))


def check_dsprites(dec: Mapping) -> list[Claim]:
    """D1-D3 (SPEC §4) from the saved decodability results."""
    return [check_d1(dec), check_d2(dec), check_d3(dec)]


def invariance_table(dec: Mapping) -> dict[str, dict[str, float]]:
    """Decodability at head_input minus at head_out, per model and factor.

    Positive = the head output lost information the head input had (the
    invariance the projection head adds, Sec. 3). Models lacking either
    layer are left out.
    """
    out = {}
    for m in [m for m in MODELS if m in dec] + [m for m in dec if m not in MODELS]:
        if "head_input" not in dec[m] or "head_out" not in dec[m]:
            continue
        hi, ho = dec[m]["head_input"], dec[m]["head_out"]
        out[m] = {f: float(hi[f]) - float(ho[f])
                  for f in [f for f in FACTORS if f in hi] +
                  [f for f in hi if f not in FACTORS] if f in ho}
    return out


def format_invariance_table(table: Mapping[str, Mapping[str, float]]) -> str:
    """Text table of `invariance_table` (rows models, columns factors)."""
    factors = []
    for row in table.values():
        factors += [f for f in row if f not in factors]
    lines = ["decodability at head_input minus at head_out",
             f"{'model':<14}" + "".join(f"{f:>11}" for f in factors)]
    for m, row in table.items():
        lines.append(f"{m:<14}" + "".join(
            f"{row[f]:>+11.4f}" if f in row else f"{'-':>11}" for f in factors))
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Text output
# --------------------------------------------------------------------------

def _num(x: Any) -> str:
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return "nan" if math.isnan(x) else f"{x:.4f}"
    if x is None:
        return "-"
    return str(x)


def _format_comparison(e: Mapping) -> str:
    extra = {k: v for k, v in e.items()
             if k not in ("what", "a", "b", "diff", "ci_lo", "ci_hi", "holds", "part")}
    tail = "  ".join(f"{k}={_num(v)}" for k, v in extra.items())
    verdict = "holds" if e.get("holds") else "FAILS"
    numeric = all(isinstance(e.get(k), (int, float, np.number)) or e.get(k) is None
                  for k in ("a", "b"))
    if not numeric:
        return (f"  [{verdict}] {e['what']}\n      a: {_num(e.get('a'))}\n"
                f"      b: {_num(e.get('b'))}" + (f"\n      {tail}" if tail else ""))
    ci = ""
    if e.get("ci_lo") is not None or e.get("ci_hi") is not None:
        ci = f"  95% CI [{_num(e.get('ci_lo'))}, {_num(e.get('ci_hi'))}]"
    return (f"  [{verdict}] {e['what']}: a={_num(e.get('a'))} "
            f"b={_num(e.get('b'))} diff={_num(e.get('diff'))}{ci}"
            + (f"  {tail}" if tail else ""))


def _format_reported(r: Mapping) -> str:
    body = "  ".join(f"{k}={_num(v)}" for k, v in r.items() if k != "what")
    return f"  (reported) {r.get('what', '')}: {body}"


def format_table(claims: Sequence[Claim]) -> str:
    """One block per claim: name, verdict, statement, every comparison with
    its numbers (a, b, diff = a - b, 95% CI), then the reported numbers."""
    blocks = []
    for c in claims:
        head = f"{c.name}: {c.verdict}" + ("" if c.applicable else " (not applicable)")
        lines = ["=" * 78, head, f"  {c.statement}"]
        lines += [_format_comparison(e) for e in c.evidence]
        lines += [_format_reported(r) for r in c.reported]
        blocks.append("\n".join(lines))
    return "\n".join(blocks) + ("\n" if blocks else "")


def claims_to_json(claims: Sequence[Claim]) -> str:
    """Strict JSON text of a list of claims."""
    return json.dumps([c.to_json() for c in claims], indent=1, allow_nan=False)
