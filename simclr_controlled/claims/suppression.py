"""S1-S3: the feature-suppression experiment's claims (docs/DESIGN.md §5.2;
Chen, Luo & Li 2021, "Intriguing properties of contrastive losses", their
RandBits table).

Each check is a function of the saved decodability of every cell,
``sup[temperature][bits][layer][factor]`` (best validation accuracy,
docs/DESIGN.md §4.3; the factor `bits` is the mean over the random bits and
is present only where the cell has bits). Real factors: every decoded factor
but `bits`. As for D1-D3 the comparisons are single numbers ("above" and
"below" strict, no interval within one seed); pooled over seeds by
`claims.seeds` (seeds resampled). A temperature, bit count, layer or factor
missing makes the claim not applicable.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from simclr_controlled import names
from simclr_controlled.claims.evidence import (Claim, Evidence, not_applicable,
                                               verdict_from)
from simclr_controlled.claims.results import tname

# S3: "near perfectly decodable" = mean per-bit accuracy above this (chance 0.5).
NEAR_PERFECT = 0.95


def _sorted_keys(d: Mapping) -> list:
    return sorted(d, key=float)


def real_factors(sup: Mapping) -> list[str]:
    """The decoded factors other than the bits, in saved order (from any cell)."""
    for t in sup.values():
        for cell in t.values():
            for layer in cell.values():
                return [f for f in layer if f != names.BITS]
    return []


def _value(sup: Mapping, t, k, layer: str, factor: str) -> float | None:
    try:
        return float(sup[t][k][layer][factor])
    except (KeyError, TypeError, ValueError):
        return None


def _reported(sup: Mapping, layer: str, factors: list[str]) -> list[dict]:
    """Per temperature and factor: decodability at `layer` for every bit count
    (the colab's table, one row per temperature and factor)."""
    out = []
    for t in _sorted_keys(sup):
        for f in factors:
            row = {str(k): _value(sup, t, k, layer, f) for k in _sorted_keys(sup[t])}
            if any(v is not None for v in row.values()):
                out.append({"what": f"{tname(t)} {f} decodability at {layer} by bit count", **row})
    return out


def check_s1(sup: Mapping) -> Claim:
    """S1: at every temperature, every real factor decodes worse at head_input
    with the most bits than with none."""
    text = ("S1: at every temperature, the decodability of every real factor at head_input "
            "is lower with the most bits than with none.")
    factors = real_factors(sup)
    evidence, missing = [], []
    for t in _sorted_keys(sup):
        ks = _sorted_keys(sup[t])
        if not ks or float(ks[0]) != 0 or len(ks) < 2:
            missing.append(f"{tname(t)}: needs 0 bits and a positive bit count")
            continue
        k0, kmax = ks[0], ks[-1]
        for f in factors:
            a, b = _value(sup, t, kmax, "head_input", f), _value(sup, t, k0, "head_input", f)
            if a is None or b is None:
                missing.append(f"{tname(t)}/{f}")
                continue
            evidence.append(Evidence.single(f"{tname(t)} {f} at head_input: {kmax} bits < 0 bits",
                                            a, b, "below"))
    if missing or not factors:
        return not_applicable("S1", text, "missing results " + (", ".join(missing) or "(no factor)"))
    return verdict_from("S1", text, evidence, _reported(sup, "head_input", factors))


def check_s2(sup: Mapping) -> Claim:
    """S2: averaged over the bit counts above 0 (and the real factors), the
    lowest temperature keeps more decodability at head_input than the highest."""
    text = ("S2: averaged over the bit counts above 0 and the real factors, the lowest "
            "temperature keeps more real-factor decodability at head_input than the highest.")
    ts = _sorted_keys(sup)
    factors = real_factors(sup)
    if len(ts) < 2 or not factors:
        return not_applicable("S2", text, "needs two temperatures and a real factor")
    lo_t, hi_t = ts[0], ts[-1]

    def mean_with_bits(t) -> float | None:
        vals = [_value(sup, t, k, "head_input", f) for k in sup[t] if float(k) > 0 for f in factors]
        return None if not vals or any(v is None for v in vals) else float(np.mean(vals))

    a, b = mean_with_bits(lo_t), mean_with_bits(hi_t)
    bits_lo = sorted(float(k) for k in sup[lo_t] if float(k) > 0)
    bits_hi = sorted(float(k) for k in sup[hi_t] if float(k) > 0)
    if a is None or b is None or bits_lo != bits_hi:
        return not_applicable("S2", text, f"needs the same bit counts above 0 at {tname(lo_t)} and "
                              f"{tname(hi_t)}, each with every real factor")
    per_factor = [{"what": f"{f} at head_input, mean over bit counts > 0",
                   **{tname(t): float(np.mean([_value(sup, t, k, 'head_input', f)
                                               for k in sup[t] if float(k) > 0])) for t in (lo_t, hi_t)}}
                  for f in factors]
    evidence = [Evidence.single(f"mean over bit counts > 0 and factors at head_input: "
                                f"{tname(lo_t)} > {tname(hi_t)}", a, b, "above")]
    return verdict_from("S2", text, evidence, per_factor)


def check_s3(sup: Mapping) -> Claim:
    """S3: wherever there are bits, they decode near perfectly at head_out
    (mean per-bit accuracy above NEAR_PERFECT)."""
    text = (f"S3: wherever the input has random bits, they are near perfectly decodable at "
            f"head_out (mean per-bit accuracy above {NEAR_PERFECT}; chance 0.5).")
    evidence, missing = [], []
    for t in _sorted_keys(sup):
        for k in _sorted_keys(sup[t]):
            if float(k) == 0:
                continue
            a = _value(sup, t, k, "head_out", names.BITS)
            if a is None:
                missing.append(f"{tname(t)}/{k} bits")
                continue
            evidence.append(Evidence.single(f"{tname(t)}, {k} bits: bits at head_out > {NEAR_PERFECT}",
                                            a, NEAR_PERFECT, "above"))
    if missing or not evidence:
        return not_applicable("S3", text, "missing results " + (", ".join(missing) or "(no cell with bits)"))
    return verdict_from("S3", text, evidence, _reported(sup, "head_out", [names.BITS]))


def check_suppression(sup: Mapping) -> list[Claim]:
    """S1-S3 from the saved decodability of every cell."""
    return [check_s1(sup), check_s2(sup), check_s3(sup)]
