"""The dsprites_mod figures: linear decodability (Fig. 3; docs/DESIGN.md
§4.3), PCA scatter (Fig. 4, B.5; docs/DESIGN.md §4.4) and the invariance
bars (decodability lost through the head).

Each `*_figure` function draws and returns `(figure, number_of_panels)`;
the package's functions of the same figure write it.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from simclr_controlled.errors import UsageError
from simclr_controlled.figures.common import (_RC, CHANCE, FACTOR_TITLES,
                                              FACTORS, LAYERS, PCA_FACTORS,
                                              _grid, _layer_color, _ordered,
                                              _seed_band, _seed_keys,
                                              _seeds_title, _value)


def _bars(ax, x: np.ndarray, per_seed: np.ndarray, color, width: float, over_seeds: bool,
          **kw) -> None:
    """Bars at `x` of `per_seed` [seeds, len(x)] (absent = NaN, not drawn).
    One seed: its values. Over seeds: the mean over the seeds that hold the
    value, a black whisker over the 95% bootstrap interval and one dot per
    seed. `color`: one colour, or one per bar."""
    mean, lo, hi = _seed_band(per_seed) if over_seeds else (per_seed[0], None, None)
    ok = np.isfinite(mean)
    ax.bar(x[ok], mean[ok], width=width, **kw,
           color=color if isinstance(color, str) else [color[k] for k in np.flatnonzero(ok)])
    if not over_seeds:
        return
    ax.vlines(x[ok], lo[ok], hi[ok], color="black", lw=0.9, zorder=3)
    n = per_seed.shape[0]
    offsets = np.linspace(-0.25, 0.25, n) * width if n > 1 else np.zeros(1)
    dot_x = np.broadcast_to(x[None, :] + offsets[:, None], per_seed.shape)
    has = np.isfinite(per_seed)
    ax.scatter(dot_x[has], per_seed[has], s=5, color="black", lw=0, alpha=0.7, zorder=4)


def _decodability_array(decs: list[Mapping], what: str):
    """models, layers, factors and the accuracies [seeds, factor, model, layer]."""
    models = list(dict.fromkeys(m for d in decs for m in d))
    layers = _ordered((layer for d in decs for per in d.values()
                       for layer in (per or {})), LAYERS)
    factors = _ordered((f for d in decs for per in d.values()
                        for acc in (per or {}).values() for f in (acc or {})), FACTORS)
    if not layers or not factors:
        raise UsageError(f"{what}: no model holds any layer/factor accuracy")
    vals = np.asarray([[[[_value((((d.get(m) or {}).get(layer)) or {}).get(f))
                          for layer in layers] for m in models] for f in factors]
                       for d in decs], dtype=float)
    return models, layers, factors, vals


def decodability_figure(dec: Mapping[str, Mapping[str, Mapping[str, float]]], title: str,
                        over_seeds: bool = False, chance: Mapping[str, float] | None = None
                        ) -> tuple[plt.Figure, int]:
    """Fig. 3: rows = the factors present (color, scale, position first) with
    dashed chance lines (`chance`: factor -> level, default dsprites_mod's
    CHANCE; a factor without one gets none), columns = models in the given
    order, one bar per layer; y in [0, 1]. With `over_seeds`, `dec` is seed
    -> model -> layer -> factor -> accuracy: bars = mean over seeds,
    whiskers = 95% bootstrap interval, a dot per seed (DESIGN §4.3)."""
    chance = CHANCE if chance is None else chance
    if over_seeds:
        decs = [dec[s] for s in _seed_keys(dec, "dec_by_seed", "{model: {layer: {factor: "
                                                                "accuracy}}}")]
    elif not isinstance(dec, Mapping) or not dec:
        raise UsageError("dec: must map each model to {layer: {factor: accuracy}}, got none")
    else:
        decs = [dec]
    models, layers, factors, vals = _decodability_array(
        decs, "dec_by_seed" if over_seeds else "dec")
    colors = [_layer_color(k) for k in range(len(layers))]
    with plt.rc_context(_RC):
        fig, axes = _grid(len(factors), len(models), 1.9, 1.7, sharey=True)
        xs = np.arange(len(layers))
        for i, factor in enumerate(factors):
            for j, model in enumerate(models):
                ax = axes[i, j]
                _bars(ax, xs, vals[:, i, j], colors, 0.8, over_seeds)
                if factor in chance:
                    ax.axhline(chance[factor], color="black", ls="--", lw=0.8)
                ax.set_ylim(0, 1)
                ax.set_xticks(xs)
                ax.set_xticklabels([])
                ax.set_xlim(-0.6, len(layers) - 0.4)
                ax.grid(True, axis="y", lw=0.3, alpha=0.5)
                if i == 0:
                    ax.set_title(model)
                if j == 0:
                    level = f" (chance {chance[factor]:.3g})" if factor in chance else ""
                    ax.set_ylabel(f"{FACTOR_TITLES.get(factor, factor)}{level}\nval. accuracy")
        handles = [plt.Rectangle((0, 0), 1, 1, color=_layer_color(k)) for k in range(len(layers))]
        handles.append(Line2D([], [], color="black", ls="--", lw=0.8))
        fig.legend(handles, list(layers) + ["chance"], loc="outside right upper", frameon=False)
        fig.suptitle(_seeds_title(title, len(decs), "whiskers") if over_seeds else title)
    return fig, len(factors) * len(models)


def pca_figure(components: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray],
               title: str, layers: Sequence[str] | None = None,
               palette: np.ndarray | None = None) -> tuple[plt.Figure, int]:
    """Fig. 4 / B.5: rows = layers, columns = the labelled factors (color,
    scale, x, y first; any cross's others after); PC1 vs PC2 coloured by the factor. `palette` [k, 3] RGB in [0, 1] (the
    sprites' own colours) colours the "color" column; without it, tab10."""
    if not isinstance(components, Mapping) or not components:
        raise UsageError("components: must map each layer to PCA components [n, 2], got none")
    if not isinstance(labels, Mapping) or not labels:
        raise UsageError("labels: must map each factor to integer labels [n], got none")
    layers = _ordered(components, LAYERS) if layers is None else list(layers)
    missing = [layer for layer in layers if layer not in components]
    if missing or not layers:
        raise UsageError(f"layers: each must be one of {sorted(components)}, got {list(layers)}")
    factors = _ordered(labels, PCA_FACTORS)
    comps = {}
    for layer in layers:
        c = np.asarray(components[layer], dtype=float)
        if c.ndim != 2 or c.shape[1] < 2:
            raise UsageError(f"components: layer {layer!r} must be [n, 2+], got shape {c.shape}")
        comps[layer] = c
    n = next(iter(comps.values())).shape[0]
    labs = {}
    for f in factors:
        y = np.asarray(labels[f]).reshape(-1)
        if y.shape[0] != n or any(c.shape[0] != n for c in comps.values()):
            raise UsageError(f"labels: factor {f!r} has {y.shape[0]} labels; every layer's "
                             f"components must have the same number of rows ({n})")
        labs[f] = y
    if palette is not None:
        palette = np.asarray(palette, dtype=float)
        if palette.ndim != 2 or palette.shape[1] != 3:
            raise UsageError(f"palette: must be RGB [k, 3], got shape {palette.shape}")
        if "color" in labs and labs["color"].size and (
                labs["color"].min() < 0 or labs["color"].max() >= len(palette)):
            raise UsageError(f"palette: has {len(palette)} colours, but color labels reach "
                             f"{int(labs['color'].max())}")
    with plt.rc_context(_RC):
        fig, axes = _grid(len(layers), len(factors), 1.8, 1.7, extra_w=0.4, extra_h=1.0)
        for j, f in enumerate(factors):
            y = labs[f]
            last = None
            for i, layer in enumerate(layers):
                ax = axes[i, j]
                c = comps[layer]
                if f == "color" and palette is not None:
                    last = None
                    ax.scatter(c[:, 0], c[:, 1], c=palette[y.astype(int)], s=4, lw=0,
                               rasterized=True)
                else:
                    # Orientation is an angle: a cyclic map keeps 0 and the last step adjacent.
                    cmap = {"color": "tab10", "orientation": "twilight"}.get(f, "viridis")
                    last = ax.scatter(c[:, 0], c[:, 1], c=y, cmap=cmap, s=4, lw=0,
                                      rasterized=True)
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    ax.set_title(FACTOR_TITLES.get(f, f))
                if i == len(layers) - 1:
                    ax.set_xlabel("PC 1")
                if j == 0:
                    ax.set_ylabel(f"{layer}\nPC 2")
            if last is not None:
                fig.colorbar(last, ax=list(axes[:, j]), location="bottom", shrink=0.8,
                             aspect=25, label=f"{FACTOR_TITLES.get(f, f)} label")
        fig.suptitle(title)
    return fig, len(layers) * len(factors)


def invariance_table(dec: Mapping[str, Mapping[str, Mapping[str, float]]],
                     early: str = LAYERS[0], late: str = LAYERS[-1]
                     ) -> dict[str, dict[str, float]]:
    """model -> factor -> decodability at `early` minus at `late` (NaN when
    either is absent): the input to `invariance_figure`."""
    out = {}
    for model, per in dec.items():
        a, b = (per or {}).get(early) or {}, (per or {}).get(late) or {}
        out[model] = {f: _value(a.get(f)) - _value(b.get(f))
                      for f in _ordered(list(a) + list(b), FACTORS)}
    return out


def invariance_figure(table: Mapping[str, Mapping[str, float]], title: str,
                      over_seeds: bool = False) -> tuple[plt.Figure, int]:
    """Grouped bars of decodability lost through the head (head_input minus
    head_out, see `invariance_table`), per model (groups) and factor (bars);
    a zero line; above zero = the head output is more invariant. With
    `over_seeds`, `table` is seed -> model -> factor -> difference: bars =
    mean over seeds, whiskers = 95% bootstrap interval, a dot per seed."""
    if over_seeds:
        tables = [table[s] for s in _seed_keys(table, "tables_by_seed",
                                               "{model: {factor: difference}}")]
    elif not isinstance(table, Mapping) or not table:
        raise UsageError("table: must map each model to {factor: difference}, got none")
    else:
        tables = [table]
    models = list(dict.fromkeys(m for t in tables for m in t))
    factors = _ordered((f for t in tables for per in t.values() for f in (per or {})), FACTORS)
    if not factors:
        raise UsageError(f"{'tables_by_seed' if over_seeds else 'table'}: no model holds any "
                         "factor")
    vals = np.asarray([[[_value((t.get(m) or {}).get(f)) for m in models] for f in factors]
                       for t in tables], dtype=float)  # [seed, factor, model]
    width = 0.8 / len(factors)
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(max(3.5, 0.9 * len(models) + 2.4),
                                        3.0 if over_seeds else 2.8), layout="constrained")
        xs = np.arange(len(models))
        for k, f in enumerate(factors):
            _bars(ax, xs + (k - (len(factors) - 1) / 2) * width, vals[:, k], _layer_color(k),
                  width, over_seeds, label=FACTOR_TITLES.get(f, f))
        ax.axhline(0.0, color="black", lw=0.8)
        ax.set_xticks(xs)
        ax.set_xticklabels(models, rotation=20, ha="right")
        ax.set_ylabel("accuracy: head_input − head_out")
        ax.grid(True, axis="y", lw=0.3, alpha=0.5)
        fig.legend(loc="outside right upper", frameon=False)
        ax.set_title(_seeds_title(title, len(tables), "whiskers") if over_seeds else title)
    return fig, 1
