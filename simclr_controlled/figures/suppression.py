"""The feature-suppression figure (docs/DESIGN.md §5.2): decodability of each
factor, and of the random bits, against the number of bits, one line per
temperature, one column per layer (Chen, Luo & Li 2021's RandBits table
drawn as curves).

Decisions: rows are the real factors then `bits` (mean per-bit accuracy),
columns the head layers; the dashed line is chance (1 / classes; 0.5 for
the bits). Over seeds the line is the mean and the band the 95% bootstrap
interval over seeds (`common._seed_band`); a cell a seed lacks is left out
of that seed's values.
"""
from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np

from simclr_controlled import names
from simclr_controlled.figures.common import (_RC, _grid, _layer_color, _ordered,
                                              _seed_band, _seeds_title, _value)


def _axes_of(sup_by_seed: Mapping) -> tuple[list, list, list[str], list[str]]:
    temps, bits, layers, factors = [], [], [], []
    for sup in sup_by_seed.values():
        for t, cells in sup.items():
            temps.append(float(t))
            for k, cell in cells.items():
                bits.append(int(float(k)))
                for layer, facs in cell.items():
                    layers.append(layer)
                    factors += list(facs)
    factors = _ordered(factors, names.DSPRITES_FACTORS)
    factors = [f for f in factors if f != names.BITS] + ([names.BITS] if names.BITS in factors else [])
    return (sorted(set(temps)), sorted(set(bits)), _ordered(layers, names.TAPS), factors)


def _lookup(sup: Mapping, t: float, k: int, layer: str, factor: str) -> float:
    for tk, cells in sup.items():
        if float(tk) != t:
            continue
        for kk, cell in cells.items():
            if int(float(kk)) == k:
                return _value(cell.get(layer, {}).get(factor))
    return np.nan


def suppression_figure(sup_by_seed: Mapping, title: str, chance: Mapping[str, float]):
    """`sup_by_seed`: seed -> temperature -> bits -> layer -> factor -> accuracy
    (one seed: a mapping with one key). Returns (figure, panels)."""
    temps, bits, layers, factors = _axes_of(sup_by_seed)
    seeds = list(sup_by_seed)
    with plt.rc_context(_RC):
        fig, axes = _grid(len(factors), len(layers), 2.1, 1.7)
        for i, f in enumerate(factors):
            for j, layer in enumerate(layers):
                ax = axes[i, j]
                for c, t in enumerate(temps):
                    values = np.array([[_lookup(sup_by_seed[s], t, k, layer, f) for k in bits]
                                       for s in seeds])
                    mean, lo, hi = _seed_band(values)
                    ax.plot(bits, mean, "o-", ms=3, color=_layer_color(c), label=f"T={t:g}")
                    if len(seeds) > 1:
                        ax.fill_between(bits, lo, hi, color=_layer_color(c), alpha=0.2, lw=0)
                if f in chance:
                    ax.axhline(chance[f], ls="--", lw=0.8, color="gray")
                ax.set_ylim(0, 1.02)
                ax.set_xticks(bits)
                if i == 0:
                    ax.set_title(layer)
                if i == len(factors) - 1:
                    ax.set_xlabel("random bits")
                if j == 0:
                    ax.set_ylabel(f"{f} decodability")
        # Below the panels, where it hides no line.
        fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center",
                   ncol=len(temps), frameon=False)
        shown = title if len(seeds) == 1 else _seeds_title(title, len(seeds), "band")
        fig.suptitle(shown)
    return fig, len(factors) * len(layers)


def colab_table(sup_by_seed: Mapping, layer: str = "head_input") -> str:
    """The colab's table for our factors: one row per temperature and factor,
    one column per bit count, the decodability at `layer` (mean over seeds)."""
    temps, bits, _, factors = _axes_of(sup_by_seed)
    head = f"{'temperature':>11s}  {'factor':10s}" + "".join(f"{k:>8d}" for k in bits)
    lines = [f"decodability at {layer} by number of random bits"
             + (f" (mean over {len(sup_by_seed)} seeds)" if len(sup_by_seed) > 1 else ""), head]
    for t in temps:
        for f in factors:
            vals = [np.nanmean([_lookup(s, t, k, layer, f) for s in sup_by_seed.values()])
                    if any(np.isfinite(_lookup(s, t, k, layer, f)) for s in sup_by_seed.values())
                    else np.nan for k in bits]
            lines.append(f"{t:>11g}  {f:10s}" + "".join(
                f"{v:8.3f}" if np.isfinite(v) else f"{'-':>8s}" for v in vals))
    return "\n".join(lines)
