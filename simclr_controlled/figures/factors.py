"""The factor-lab figures (docs/DESIGN.md §4.6): each label-free metric
against each factor's decodability, and the augmentation x factor
invariance map.

Decisions:
- One scatter figure per layer (rows = label-free metrics, columns =
  factors; one colour per model, every checkpoint a point): a metric's
  scale differs between layers, so the per-layer rho is the one a panel can
  show; the pooled-over-layers rho is in the table and claims.json.
- Decodability is the y axis (what the metric should predict), its chance
  level (1 / number of classes) a dashed line.
- The invariance map has one panel per layer (rows = factors, columns =
  presets), a diverging colour scale centred at 0 and shared by the panels;
  over seeds each cell shows the mean and its 95 % interval.

Each `*_figure` function draws and returns `(figure, number_of_panels)`.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from simclr_controlled.errors import UsageError
from simclr_controlled.figures.common import (_RC, FACTOR_TITLES, FACTORS, LAYERS, _grid,
                                              _layer_color, _ordered, _seeds_title, _value)

METRICS = ("alignment", "uniformity", "effective_rank")
METRIC_LABELS = {"alignment": "alignment\n(lower = views closer)",
                 "uniformity": "uniformity\n(lower = more uniform)",
                 "effective_rank": "effective rank\n(higher = more dims)"}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _rho_title(cell: Mapping | None) -> str:
    if not cell or cell.get("rho") is None:
        return f"ρ undefined (n = {(cell or {}).get('n', 0)})"
    return f"ρ = {cell['rho']:+.2f} [{cell['ci_lo']:+.2f}, {cell['ci_hi']:+.2f}], n = {cell['n']}"


def scatter_figure(points: Sequence[Mapping], table: Mapping, layer: str,
                   class_counts: Mapping[str, int], title: str) -> tuple[plt.Figure, int]:
    """Rows = label-free metrics, columns = factors, at `layer`: each
    point's metric (x) against its decodability (y), one colour per model;
    panel titles = `table[metric][factor][layer]` (`claims.diagnostics.
    spearman_table`'s "table"); dashed line = chance (1 / class count)."""
    pts = [p for p in points if p.get("layer") == layer]
    if not pts:
        raise UsageError(f"points: none at layer {layer!r}")
    factors = _ordered((f for p in pts for f in p["decodability"]), FACTORS)
    if not factors:
        raise UsageError(f"points: no decodability at layer {layer!r}")
    models = list(dict.fromkeys(p["model"] for p in pts))
    with plt.rc_context(_RC):
        fig, axes = _grid(len(METRICS), len(factors), 2.4, 2.0)
        for i, metric in enumerate(METRICS):
            for j, factor in enumerate(factors):
                ax = axes[i, j]
                for k, model in enumerate(models):
                    xy = np.array([[_value(p["label_free"].get(metric)),
                                    _value(p["decodability"].get(factor))]
                                   for p in pts if p["model"] == model], dtype=float).reshape(-1, 2)
                    ok = np.isfinite(xy).all(axis=1)
                    ax.scatter(xy[ok, 0], xy[ok, 1], s=12, color=_layer_color(k),
                               marker=MARKERS[k % len(MARKERS)], lw=0, alpha=0.8, rasterized=True)
                if factor in class_counts:
                    ax.axhline(1.0 / class_counts[factor], color="black", ls="--", lw=0.8)
                ax.set_ylim(0, 1.02)
                ax.grid(True, lw=0.3, alpha=0.5)
                cell = ((table.get(metric) or {}).get(factor) or {}).get(layer)
                ax.set_title(f"{FACTOR_TITLES.get(factor, factor)}\n{_rho_title(cell)}")
                ax.set_xlabel(METRIC_LABELS[metric])
                ax.set_ylabel(f"{FACTOR_TITLES.get(factor, factor)} val. accuracy")
        handles = [Line2D([], [], color=_layer_color(k), marker=MARKERS[k % len(MARKERS)], lw=0)
                   for k in range(len(models))]
        handles.append(Line2D([], [], color="black", ls="--", lw=0.8))
        fig.legend(handles, models + ["chance"], loc="outside right upper", frameon=False)
        fig.suptitle(f"{title}\nat {layer}; ρ = Spearman, [95% bootstrap interval over points]")
    return fig, len(METRICS) * len(factors)


def _cell(v: Any) -> tuple[float, str]:
    """(value to colour, annotation) of one map cell: a float, or over seeds
    {"mean", "ci_lo", "ci_hi"}."""
    if isinstance(v, Mapping):
        m, lo, hi = _value(v.get("mean")), _value(v.get("ci_lo")), _value(v.get("ci_hi"))
        if not np.isfinite(m):
            return np.nan, "–"
        return m, f"{m:+.2f}" + (f"\n[{lo:+.2f}, {hi:+.2f}]" if np.isfinite(lo) else "")
    x = _value(v)
    return x, ("–" if not np.isfinite(x) else f"{x:+.2f}")


def invariance_map_figure(inv: Mapping[str, Mapping[str, Mapping[str, Any]]], title: str
                          ) -> tuple[plt.Figure, int]:
    """One heat map per layer of `claims.diagnostics.invariance_map` (or its
    over-seeds form): rows = factors, columns = presets, colour = the
    decodability change against `none` (blue = lost, red = gained; 0 white)."""
    if not isinstance(inv, Mapping) or not inv:
        raise UsageError("inv: must map each layer to {factor: {preset: change}}, got none")
    layers = _ordered(inv, LAYERS)
    factors = _ordered((f for row in inv.values() for f in row), FACTORS)
    presets = list(dict.fromkeys(p for row in inv.values() for per in row.values() for p in per))
    cells = [[[_cell(((inv[l].get(f)) or {}).get(p)) for p in presets] for f in factors]
             for l in layers]
    vals = np.array([[[c[0] for c in row] for row in per] for per in cells], dtype=float)
    seeds = {len(v.get("per_seed", {})) for row in inv.values() for per in row.values()
             for v in per.values() if isinstance(v, Mapping)}
    over_seeds = bool(seeds)
    vmax = float(np.nanmax(np.abs(vals))) if np.isfinite(vals).any() else 1.0
    vmax = vmax if vmax > 0 else 1.0
    with plt.rc_context(_RC):
        fig, axes = _grid(1, len(layers), 0.75 * len(presets) + 0.3, 0.5 * len(factors) + 1.0,
                          extra_w=1.4, sharey=True)
        for k, layer in enumerate(layers):
            ax = axes[0, k]
            im = ax.imshow(np.ma.masked_invalid(vals[k]), cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                           aspect="auto")
            for i in range(len(factors)):
                for j in range(len(presets)):
                    v, text = cells[k][i][j]
                    dark = np.isfinite(v) and abs(v) > 0.6 * vmax
                    ax.text(j, i, text, ha="center", va="center", fontsize=6,
                            color="white" if dark else "black")
            ax.set_xticks(range(len(presets)))
            ax.set_xticklabels(presets, rotation=30, ha="right")
            ax.set_yticks(range(len(factors)))
            ax.set_yticklabels([FACTOR_TITLES.get(f, f) for f in factors])
            ax.set_title(layer)
            ax.set_xlabel("augmentation preset")
            if k == 0:
                ax.set_ylabel("factor")
        fig.colorbar(im, ax=list(axes[0]), shrink=0.9, label="val. accuracy change vs none")
        n = max(seeds) if over_seeds else 1
        fig.suptitle(_seeds_title(title, n, "cells") if over_seeds else title)
    return fig, len(layers)
