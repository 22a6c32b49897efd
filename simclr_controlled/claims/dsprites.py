"""D1-D3: the dSprites experiment's claims (Sec. 3, Fig. 3).

Each check is a function of the saved decodability, ``dec[model][layer]
[factor]`` (best validation accuracy over epochs and grid, docs/DESIGN.md
§4.3). The comparisons are single numbers: "above" is strictly greater; no
interval. A model, layer or factor missing from the results makes the claim
not applicable (docs/DESIGN.md §5).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from simclr_controlled.claims.evidence import (Claim, Evidence, not_applicable,
                                               verdict_from)
from simclr_controlled.claims.results import FACTORS, LAYERS, MODELS, layers
from simclr_controlled.claims.statistics import seed_interval


def _missing(dec: Mapping, need: list[tuple[str, str, str]]) -> list[str]:
    out = []
    for m, l, f in need:
        try:
            float(dec[m][l][f])
        except (KeyError, TypeError):
            out.append(f"{m}/{l}/{f}")
    return out


def _dec_reported(dec: Mapping, models: Sequence[str],
                  factors: Sequence[str]) -> list[dict]:
    return [{"what": f"{m} {f} decodability",
             **{l: float(dec[m][l][f]) for l in layers(dec[m]) if f in dec[m][l]}}
            for m in models if m in dec for f in factors]


def check_d1(dec: Mapping) -> Claim:
    """D1 (Fig. 3): crop+jitter: each factor decodes better at head_input
    than at head_out (strictly greater best validation accuracy)."""
    text = ("D1 (Fig. 3): in the crop+jitter model, each factor (color, "
            "scale, position) is more decodable at head_input than at "
            "head_out.")
    need = [("crop_jitter", l, f) for f in FACTORS for l in ("head_input", "head_out")]
    if miss := _missing(dec, need):
        return not_applicable("D1", text, "missing results " + ", ".join(miss))
    m = dec["crop_jitter"]
    evidence = [Evidence.single(f"crop_jitter {f}: head_input > head_out",
                                m["head_input"][f], m["head_out"][f], "above")
                for f in FACTORS]
    return verdict_from("D1", text, evidence,
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
        return not_applicable("D2", text, "missing results " + ", ".join(miss))

    def avg(m: str, f: str) -> float:
        return float(np.mean([float(dec[m][l][f]) for l in LAYERS]))

    cj_c, no_c = avg("color_jitter", "color"), avg("none", "color")
    cj_p, no_p = avg("color_jitter", "position"), avg("none", "position")
    evidence = [
        Evidence.single("color, mean over layers: color_jitter < none",
                        cj_c, no_c, "below"),
        Evidence.single("position, mean over layers: color_jitter > none",
                        cj_p, no_p, "above"),
    ]
    return verdict_from("D2", text, evidence,
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
        return not_applicable("D3", text, "missing results " + ", ".join(miss))
    rc, no = dec["random_crop"], dec["none"]
    ev_a = [Evidence.single(f"(a) color at {l}: random_crop > none",
                            rc[l]["color"], no[l]["color"], "above", part="a")
            for l in ("head_input", "head_1", "head_2")]
    ev_b = [Evidence.single("(b) color at head_out: random_crop not > none",
                            rc["head_out"]["color"], no["head_out"]["color"],
                            "not_above", part="b")]
    return verdict_from("D3", text, ev_a + ev_b,
                        _dec_reported(dec, ["random_crop", "none"], ("color",)))


def check_dsprites(dec: Mapping) -> list[Claim]:
    """D1-D3 from the saved decodability results."""
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


def invariance_over_seeds(tables_by_seed: Mapping[int, Mapping[str, Mapping[str, float]]],
                          seed: int = 0) -> dict[str, dict[str, dict]]:
    """`invariance_table` over replicates: per model and factor the mean over
    seeds, its 95% bootstrap interval (seeds resampled, seeded) and every
    seed's value. A seed lacking an entry is left out of that entry."""
    seeds = sorted(tables_by_seed)
    models = []
    for s in seeds:
        models += [m for m in tables_by_seed[s] if m not in models]
    out: dict[str, dict[str, dict]] = {}
    for m in models:
        factors = []
        for s in seeds:
            factors += [f for f in tables_by_seed[s].get(m, {}) if f not in factors]
        values = np.array([[float(tables_by_seed[s].get(m, {}).get(f, np.nan)) for f in factors]
                           for s in seeds])
        mean, lo, hi = seed_interval(values, seed=seed)
        out[m] = {f: {"mean": float(mean[k]), "ci_lo": float(lo[k]), "ci_hi": float(hi[k]),
                      "per_seed": {str(s): float(values[i, k]) for i, s in enumerate(seeds)}}
                  for k, f in enumerate(factors)}
    return out
