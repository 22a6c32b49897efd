"""Which label-free diagnostic predicts what a model keeps (docs/DESIGN.md §4.6).

Pure functions of the saved probe records (no TensorFlow, no files):

- `diagnostic_points`: one point per (model, checkpoint step, layer) with
  the label-free metrics (§4.5) and every factor's decodability (§4.3);
- `spearman_table`: Spearman's rho of each label-free metric against each
  factor's decodability, per layer and pooled over layers, with a seeded
  percentile-bootstrap 95 % interval (points resampled with replacement);
- `invariance_map` / `invariance_map_over_seeds`: the decodability change
  of each augmentation preset against the `none` preset, per layer and
  factor, and its mean and 95 % interval over seeds;
- `class_counts`, the chance levels' class counts; `format_*`, the text tables.

Sign conventions (positive rho = a larger metric value goes with a larger
decodability): alignment is the mean squared distance between the two
views' L2-normalized embeddings, lower = the views agree more; uniformity
is the log of the mean Gaussian potential exp(-2 ||z_i - z_j||^2), in
[-8, 0], lower = MORE uniform; effective rank (RankMe) is higher = more
dimensions used. So "more uniform goes with more decodable" is rho < 0.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata

from simclr_controlled import data_spec, names
from simclr_controlled.claims.statistics import _check_bootstrap_args, seed_interval

METRICS = ("alignment", "uniformity", "effective_rank")
ALL_LAYERS = "all_layers"  # the pooled-over-layers column of `spearman_table`
MIN_POINTS = 3  # below this, rho (and its interval) is None
BASELINE = "none"  # the invariance map's reference preset
METHOD = ("Spearman rho over (model, checkpoint, layer) points; 95% percentile bootstrap "
          "of the points (resamples where rho is undefined left out)")


def _ordered(seen: Iterable[str], canonical: Sequence[str]) -> list[str]:
    seen = list(dict.fromkeys(seen))
    return [n for n in canonical if n in seen] + [n for n in seen if n not in canonical]


def _number(x: Any) -> float | None:
    """A finite float, or None for an absent/None/non-finite value."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def diagnostic_points(records_by_model: Mapping[str, Sequence[Mapping]]) -> list[dict]:
    """Points {"model", "step", "layer", "label_free": {metric: float|None},
    "decodability": {factor: float}} from every record of every model.

    `records_by_model[model]`: its probe records (`final` and
    `over_training` of results.json, in any order); a step seen twice (the
    final record is also the last of `over_training`) counts once, the first
    seen kept. A record without `label_free` or `decodability` (results from
    before label-free metrics were stored), or a layer missing from either,
    gives no point.
    """
    points = []
    for model, records in records_by_model.items():
        steps = set()
        for rec in records or ():
            if not isinstance(rec, Mapping):
                continue
            step = rec.get("step")
            if step in steps:
                continue
            steps.add(step)
            lf, dec = rec.get("label_free"), rec.get("decodability")
            if not isinstance(lf, Mapping) or not isinstance(dec, Mapping):
                continue
            for layer in _ordered([l for l in dec if l in lf], names.TAPS):
                acc = {f: _number(v.get("best_val_accuracy") if isinstance(v, Mapping) else v)
                       for f, v in (dec[layer] or {}).items()}
                points.append({"model": model, "step": step, "layer": layer,
                               "label_free": {m: _number((lf[layer] or {}).get(m)) for m in METRICS},
                               "decodability": {f: a for f, a in acc.items() if a is not None}})
    return points


def _rank_corr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman rho of each row pair of x, y [..., n] (average ranks for
    ties); NaN for a row where either is constant."""
    rx, ry = rankdata(x, axis=-1), rankdata(y, axis=-1)
    rx = rx - rx.mean(axis=-1, keepdims=True)
    ry = ry - ry.mean(axis=-1, keepdims=True)
    den = np.sqrt((rx * rx).sum(-1) * (ry * ry).sum(-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(den > 0, (rx * ry).sum(-1) / den, np.nan)
    return np.clip(rho, -1.0, 1.0)  # rounding can step just past +-1


def spearman_cell(x, y, seed: int = 0, n_resamples: int = 1000, level: float = 0.95) -> dict:
    """{"rho", "ci_lo", "ci_hi", "n"} of paired values x, y [n].

    The interval resamples the n pairs with replacement, all resamples at
    once ([n_resamples, n] indices from `default_rng(seed)`); a resample
    where rho is undefined (one side constant) is left out, so a perfectly
    monotone relation has the interval [1, 1]. rho and the interval are None
    with fewer than MIN_POINTS pairs or a constant side.
    """
    _check_bootstrap_args(n_resamples, level)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n = int(x.shape[0])
    out = {"rho": None, "ci_lo": None, "ci_hi": None, "n": n}
    if n < MIN_POINTS:
        return out
    rho = float(_rank_corr(x, y))
    if not math.isfinite(rho):
        return out
    idx = np.random.default_rng(seed).integers(0, n, size=(int(n_resamples), n))
    boot = _rank_corr(x[idx], y[idx])
    boot = boot[np.isfinite(boot)]
    alpha = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(boot, [alpha, 100.0 - alpha]) if boot.size else (rho, rho)
    return {"rho": rho, "ci_lo": float(lo), "ci_hi": float(hi), "n": n}


def spearman_table(points: Sequence[Mapping], seed: int = 0, n_resamples: int = 1000,
                   level: float = 0.95) -> dict:
    """{"method", "seed", "n_resamples", "level", "table"}: table[metric][factor]
    [layer or ALL_LAYERS] = `spearman_cell` of the metric against the factor's
    decodability over the points holding both (a None metric is left out).

    Every cell uses the same seed. Pooled over layers, the points of one
    model's layers are resampled as if independent (they are not: the
    interval is narrower than a model-level bootstrap would give).
    """
    layers = _ordered((p["layer"] for p in points), names.TAPS)
    factors = _ordered((f for p in points for f in p["decodability"]), names.DSPRITES_FACTORS)
    table: dict = {}
    for metric in METRICS if factors else ():  # no point at all: an empty table
        table[metric] = {}
        for factor in factors:
            both = [p for p in points if p["label_free"].get(metric) is not None
                    and p["decodability"].get(factor) is not None]
            cells = {}
            for layer in layers + [ALL_LAYERS]:
                sel = [p for p in both if layer in (ALL_LAYERS, p["layer"])]
                cells[layer] = spearman_cell([p["label_free"][metric] for p in sel],
                                             [p["decodability"][factor] for p in sel],
                                             seed, n_resamples, level)
            table[metric][factor] = cells
    return {"method": METHOD, "seed": int(seed), "n_resamples": int(n_resamples),
            "level": float(level), "table": table}


def _presets(models: Iterable[str]) -> list[str]:
    """The augmentation presets of the map's columns: every model but the
    baseline and the untrained one (not an augmentation)."""
    return [m for m in _ordered(models, names.DSPRITES_MODELS) if m not in (BASELINE, names.UNTRAINED)]


def invariance_map(dec: Mapping[str, Mapping[str, Mapping[str, float]]]) -> dict:
    """layer -> factor -> preset -> dec[preset][layer][factor] - dec["none"]
    [layer][factor]: negative = the augmentation made the layer more
    invariant to the factor than training without augmentation. {} without
    a `none` model; an entry either side lacks is left out."""
    if BASELINE not in dec:
        return {}
    base, out = dec[BASELINE] or {}, {}
    for layer in _ordered(base, names.TAPS):
        for factor in _ordered(base[layer] or {}, names.DSPRITES_FACTORS):
            b = _number(base[layer][factor])
            row = {}
            for p in _presets(dec):
                v = _number(((dec[p] or {}).get(layer) or {}).get(factor))
                if v is not None and b is not None:
                    row[p] = v - b
            if row:
                out.setdefault(layer, {})[factor] = row
    return out


def invariance_map_over_seeds(maps_by_seed: Mapping[int, Mapping], seed: int = 0) -> dict:
    """`invariance_map` over replicates: per cell {"mean", "ci_lo", "ci_hi",
    "per_seed"} (`seed_interval`: seeds resampled, seeded; a seed lacking the
    cell is left out of it). {} when no seed has a map."""
    seeds = sorted(maps_by_seed)
    cells = list(dict.fromkeys((l, f, p) for s in seeds for l, row in maps_by_seed[s].items()
                               for f, per in row.items() for p in per))
    if not cells:
        return {}
    def value(m: Mapping, l: str, f: str, p: str) -> float:
        v = _number(((m.get(l) or {}).get(f) or {}).get(p))
        return np.nan if v is None else v

    values = np.array([[value(maps_by_seed[s], *c) for c in cells] for s in seeds], dtype=np.float64)
    mean, lo, hi = seed_interval(values, seed=seed)
    out: dict = {}
    for k, (l, f, p) in enumerate(cells):
        out.setdefault(l, {}).setdefault(f, {})[p] = {
            "mean": float(mean[k]), "ci_lo": float(lo[k]), "ci_hi": float(hi[k]),
            "per_seed": {str(s): float(values[i, k]) for i, s in enumerate(seeds)
                         if np.isfinite(values[i, k])}}
    return out


def class_counts(factors: str | None = None) -> dict[str, int]:
    """factor -> number of classes, for the chance levels (1 / count), from a
    `--factors` spec (dataset_params["factors"]; dsprites_mod's when None):
    each listed factor, `position` = x * y, and each random bit two classes."""
    counts = dict(data_spec.parse_factors(factors or names.DSPRITES_MOD_FACTORS))
    if "x" in counts and "y" in counts:
        counts["position"] = counts["x"] * counts["y"]
    counts[names.BITS] = 2
    return counts


def chance_levels(factors: str | None = None) -> dict[str, float]:
    """factor -> chance accuracy, 1 / `class_counts(factors)`."""
    return {f: 1.0 / k for f, k in class_counts(factors).items()}


def _ci(lo: Any, hi: Any) -> str:
    return "" if lo is None else f" [{lo:+.2f},{hi:+.2f}]"


def format_spearman_table(result: Mapping) -> str:
    """One block per label-free metric: rows factors, columns layers and
    pooled; cells rho [95% interval] n."""
    table = result.get("table") or {}
    lines = ["label-free metric vs decodability: Spearman rho [95% interval] n "
             "(uniformity: lower = more uniform)"]
    for metric, rows in table.items():
        cols = list(dict.fromkeys(l for per in rows.values() for l in per))
        lines.append(f"{metric:<16}" + "".join(f"{c:>27}" for c in cols))
        for factor, per in rows.items():
            cells = [("-" if c["rho"] is None else f"{c['rho']:+.2f}") + _ci(c["ci_lo"], c["ci_hi"])
                     + f" n={c['n']}" for c in (per[col] for col in cols)]
            lines.append(f"  {factor:<14}" + "".join(f"{c:>27}" for c in cells))
    return "\n".join(lines)


def format_invariance_map(inv: Mapping) -> str:
    """One block per layer: rows factors, columns presets; cells the
    decodability change against `none` (over seeds: mean [95% interval])."""
    lines = ["decodability change against the `none` preset, per layer"]
    for layer, rows in inv.items():
        cols = _presets(p for per in rows.values() for p in per)
        lines.append(f"{layer:<16}" + "".join(f"{c:>22}" for c in cols))
        for factor, per in rows.items():
            cells = []
            for c in cols:
                v = per.get(c)
                if isinstance(v, Mapping):
                    cells.append(f"{v['mean']:+.3f}" + _ci(_number(v["ci_lo"]), _number(v["ci_hi"])))
                else:
                    cells.append("-" if v is None else f"{v:+.3f}")
            lines.append(f"  {factor:<14}" + "".join(f"{c:>22}" for c in cells))
    return "\n".join(lines)


def format_diagnostics(result: Mapping) -> str:
    """The text of `format_spearman_table` and `format_invariance_map` for
    what `result` (claims.json's "label_free_vs_decodability" and
    "invariance_map") holds; "" when it holds neither."""
    parts = []
    if (result.get("label_free_vs_decodability") or {}).get("table"):
        parts.append(format_spearman_table(result["label_free_vs_decodability"]))
    if result.get("invariance_map"):
        parts.append(format_invariance_map(result["invariance_map"]))
    return "\n".join(parts)
