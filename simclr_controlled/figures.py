"""The paper's figures (Fig. 2, 3, 4, B.1, B.2, B.3, B.5) from saved results.

Every function takes plain data (dicts, lists, numpy arrays) and a path stem
without extension, writes `<stem>.png` and `<stem>.pdf` atomically through
`files.atomic_write` (a killed process never leaves half a figure), closes the
figure and returns `(paths, number_of_panels)`.

Decisions where SPEC §3 is silent:
- Layers are drawn in the order head_input, head_1, head_2, head_out; any
  other layer name found in the data follows, in its first-seen order.
- Over-training curves use the epoch on the x axis; when several records share
  an epoch (evaluations inside an epoch) the training step is used instead.
- Each over-training panel scales its own y axis: similarity ranges differ a
  lot between head_input and head_out, and a shared axis would flatten the
  level ordering in the narrower layer.
- A statistic that is absent, None or NaN is not drawn (never as zero); a gap
  in the series breaks the line.
- Level colours are fixed: level 0 pink as in the paper, baseline black,
  across-view purple (no level uses purple).
- PNGs are small (dpi 90) because the README embeds them; scatter points are
  rasterised inside the PDF so it stays small too. The PDF carries no
  creation date, so re-rendering the same data gives the same bytes.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window or need a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from simclr_controlled.errors import UsageError  # noqa: E402
from simclr_controlled.files import atomic_write  # noqa: E402

LAYERS = ("head_input", "head_1", "head_2", "head_out")
FACTORS = ("color", "scale", "position")
PCA_FACTORS = ("color", "scale", "x", "y")
# Fig. 3 chance levels: 10 colours, 6 scales, 16 x 16 positions.
CHANCE = {"color": 1 / 10, "scale": 1 / 6, "position": 1 / 256}
FACTOR_TITLES = {"color": "color", "scale": "scale", "position": "position",
                 "x": "x-position", "y": "y-position"}

DPI = 90
BASELINE_COLOR = "black"
ACROSS_VIEW_COLOR = "#7b2cbf"  # purple, as Fig. B.2's across-view line
# Level 0 pink like the paper; then well-separated hues with no purple.
LEVEL_COLORS = ("#e7298a", "#1f77b4", "#2ca02c", "#ff7f0e", "#17becf",
                "#8c564b", "#bcbd22", "#d62728", "#7f7f7f", "#393b79")
LAYER_COLORS = ("#4c72b0", "#55a868", "#dd8452", "#c44e52", "#8172b3", "#937860")
_RC = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8,
       "legend.fontsize": 7, "xtick.labelsize": 7, "ytick.labelsize": 7,
       "figure.titlesize": 10}
_LEVEL_RE = re.compile(r"^level_(\d+)$")


def level_color(level: int) -> str:
    """Fixed colour of hierarchy level `level` (0 = top = pink)."""
    return LEVEL_COLORS[int(level) % len(LEVEL_COLORS)]


def _layer_color(i: int) -> str:
    return LAYER_COLORS[i % len(LAYER_COLORS)]


def _save(fig, stem: str) -> list[str]:
    """Writes <stem>.png and <stem>.pdf atomically; always closes `fig`."""
    if not isinstance(stem, str) or not stem:
        raise UsageError(f"stem: must be a non-empty path without extension, got {stem!r}")
    paths = []
    try:
        for fmt in ("png", "pdf"):
            path = f"{stem}.{fmt}"
            # PDF CreationDate would make identical data give different bytes.
            meta = {"CreationDate": None} if fmt == "pdf" else None
            atomic_write(path, lambda tmp, fmt=fmt, meta=meta: fig.savefig(
                tmp, format=fmt, dpi=DPI, metadata=meta))
            paths.append(path)
    finally:
        plt.close(fig)
    return paths


def _ordered(names, canonical: Sequence[str]) -> list[str]:
    """Canonical names first (in canonical order), then the others as seen."""
    seen = list(dict.fromkeys(names))
    return [n for n in canonical if n in seen] + [n for n in seen if n not in canonical]


def _value(x: Any) -> float:
    """float, or NaN for an absent/None/non-finite statistic (so it is not drawn)."""
    if x is None:
        return math.nan
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def _sorted_temperatures(records_by_temperature: Mapping) -> list:
    if not isinstance(records_by_temperature, Mapping) or not records_by_temperature:
        raise UsageError("records_by_temperature: must map each temperature to its list of "
                         "records, got none")
    try:
        return sorted(records_by_temperature, key=float)
    except (TypeError, ValueError):
        raise UsageError("records_by_temperature: keys must be temperatures (numbers), got "
                         f"{list(records_by_temperature)}") from None


def _x_axis(records: list[dict]) -> tuple[np.ndarray, str]:
    """x values: epoch, or training step when epochs repeat."""
    epochs = [r.get("epoch") for r in records]
    if None not in epochs and len(set(epochs)) == len(epochs):
        return np.asarray(epochs, dtype=float), "epoch"
    steps = [r.get("step") for r in records]
    if None not in steps and len(set(steps)) == len(steps):
        return np.asarray(steps, dtype=float), "training step"
    return np.arange(len(records), dtype=float), "evaluation"


def _by_time(records) -> list[dict]:
    return sorted(records, key=lambda r: (_value(r.get("epoch")) if r.get("epoch") is not None
                                          else -math.inf,
                                          _value(r.get("step")) if r.get("step") is not None
                                          else -math.inf))


def _grid(rows: int, cols: int, w: float, h: float, extra_w: float = 1.4, extra_h: float = 0.6,
          **kw):
    fig, axes = plt.subplots(rows, cols, figsize=(w * cols + extra_w, h * rows + extra_h),
                             squeeze=False, layout="constrained", **kw)
    return fig, axes


def _over_training(records_by_temperature: Mapping, stem: str, title: str,
                   pick: Callable[[dict], Mapping | None],
                   draw: Callable[[Any, np.ndarray, list[Mapping | None]], None],
                   legend: Callable[[], tuple[list, list]], ylabel: str, what: str):
    """Shared grid: rows = temperatures ascending, columns = layers."""
    temps = _sorted_temperatures(records_by_temperature)
    runs = {t: _by_time(records_by_temperature[t] or []) for t in temps}
    layers = _ordered((layer for t in temps for r in runs[t] for layer in (pick(r) or {})), LAYERS)
    if not layers:
        raise UsageError(f"records_by_temperature: no record holds {what}")
    with plt.rc_context(_RC):
        fig, axes = _grid(len(temps), len(layers), 2.3, 1.9, sharex="row")
        for i, t in enumerate(temps):
            recs = runs[t]
            x, xlabel = _x_axis(recs) if recs else (np.zeros(0), "epoch")
            for j, layer in enumerate(layers):
                ax = axes[i, j]
                draw(ax, x, [(pick(r) or {}).get(layer) for r in recs])
                if i == 0:
                    ax.set_title(layer)
                if i == len(temps) - 1:
                    ax.set_xlabel(xlabel)
                if j == 0:
                    ax.set_ylabel(f"τ = {t}\n{ylabel}")
                ax.grid(True, lw=0.3, alpha=0.5)
        handles, labels = legend()
        fig.legend(handles, labels, loc="outside right upper", frameon=False)
        fig.suptitle(title)
    return _save(fig, stem), len(temps) * len(layers)


def _levels(keys) -> list[str]:
    found = [k for k in keys if _LEVEL_RE.match(str(k))]
    return sorted(set(found), key=lambda k: int(_LEVEL_RE.match(k).group(1)))


def channel_preference_over_training(records_by_temperature: Mapping[Any, list[dict]],
                                     source: str, stem: str, title: str
                                     ) -> tuple[list[str], int]:
    """Fig. 2 (source "train") / Fig. B.1 (source "random").

    Rows = temperatures (ascending), columns = layers; x = epoch, y = mean
    cosine similarity over references, one line per probe level (level 0
    pink) plus the baseline in black, shaded +-1 standard error of the mean.
    """
    all_levels: set[str] = set()

    def pick(r: dict):
        cp = (r.get("channel_preference") or {}).get(source)
        if cp:
            for per in cp.values():
                all_levels.update(_levels(per or {}))
        return cp

    # Pass over the data once so every panel and the legend share the levels.
    for recs in (records_by_temperature or {}).values():
        for r in recs or []:
            pick(r)
    levels = _levels(all_levels)

    def draw(ax, x, per_record):
        for name in levels + ["baseline"]:
            mean = np.full(len(x), np.nan)
            sem = np.full(len(x), np.nan)
            for k, probes in enumerate(per_record):
                vals = (probes or {}).get(name)
                if vals is None:
                    continue
                v = np.asarray([_value(u) for u in np.ravel(np.asarray(vals, dtype=object))])
                v = v[np.isfinite(v)]
                if v.size:
                    mean[k] = v.mean()
                    sem[k] = v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else 0.0
            if not np.isfinite(mean).any():
                continue
            color = BASELINE_COLOR if name == "baseline" else level_color(_level_index(name))
            ax.plot(x, mean, color=color, lw=1.2, marker="." if len(x) < 15 else None, ms=3)
            ax.fill_between(x, mean - sem, mean + sem, color=color, alpha=0.2, lw=0)

    def legend():
        handles = [Line2D([], [], color=level_color(_level_index(n)), lw=1.5) for n in levels]
        labels = [f"matches level {_level_index(n)}" for n in levels]
        return handles + [Line2D([], [], color=BASELINE_COLOR, lw=1.5)], labels + ["baseline"]

    return _over_training(records_by_temperature, stem, title, pick, draw, legend,
                          "cosine similarity", f"channel_preference[{source!r}]")


def _level_index(name: str) -> int:
    return int(_LEVEL_RE.match(name).group(1))


def similarity_over_training(records_by_temperature: Mapping[Any, list[dict]], split: str,
                             stem: str, title: str) -> tuple[list[str], int]:
    """Fig. B.2 (split "train") / Fig. B.3 (split "validation").

    Rows = temperatures, columns = layers; per level a colour, solid =
    within-class, dashed = across-class; dotted purple = across-view. An
    absent statistic (no pairs) is not drawn.
    """
    all_levels: set[str] = set()

    def pick(r: dict):
        sim = (r.get("similarity") or {}).get(split)
        if sim:
            for per in sim.values():
                all_levels.update(_levels(per if isinstance(per, Mapping) else {}))
        return sim

    for recs in (records_by_temperature or {}).values():
        for r in recs or []:
            pick(r)
    levels = _levels(all_levels)

    def series(per_record, get) -> np.ndarray:
        return np.asarray([_value(get(s)) if isinstance(s, Mapping) else math.nan
                           for s in per_record], dtype=float)

    def draw(ax, x, per_record):
        for name in levels:
            color = level_color(_level_index(name))
            for stat, ls in (("within", "-"), ("across", "--")):
                y = series(per_record, lambda s: (s.get(name) or {}).get(stat))
                if np.isfinite(y).any():
                    ax.plot(x, y, color=color, ls=ls, lw=1.2,
                            marker="." if len(x) < 15 else None, ms=3)
        y = series(per_record, lambda s: s.get("across_view"))
        if np.isfinite(y).any():
            ax.plot(x, y, color=ACROSS_VIEW_COLOR, ls=":", lw=1.6)

    def legend():
        handles = [Line2D([], [], color=level_color(_level_index(n)), lw=1.5) for n in levels]
        labels = [f"level {_level_index(n)}" for n in levels]
        handles += [Line2D([], [], color="grey", ls="-", lw=1.2),
                    Line2D([], [], color="grey", ls="--", lw=1.2),
                    Line2D([], [], color=ACROSS_VIEW_COLOR, ls=":", lw=1.6)]
        labels += ["within-class", "across-class", "across-view"]
        return handles, labels

    return _over_training(records_by_temperature, stem, title, pick, draw, legend,
                          "cosine similarity", f"similarity[{split!r}]")


def decodability(dec: Mapping[str, Mapping[str, Mapping[str, float]]], stem: str, title: str
                 ) -> tuple[list[str], int]:
    """Fig. 3: rows = factors (color, scale, position) with dashed chance lines,
    columns = models in the given order, one bar per layer; y in [0, 1]."""
    if not isinstance(dec, Mapping) or not dec:
        raise UsageError("dec: must map each model to {layer: {factor: accuracy}}, got none")
    models = list(dec)
    layers = _ordered((layer for m in models for layer in (dec[m] or {})), LAYERS)
    factors = _ordered((f for m in models for per in (dec[m] or {}).values()
                        for f in (per or {})), FACTORS)
    if not layers or not factors:
        raise UsageError("dec: no model holds any layer/factor accuracy")
    with plt.rc_context(_RC):
        fig, axes = _grid(len(factors), len(models), 1.9, 1.7, sharey=True)
        xs = np.arange(len(layers))
        for i, factor in enumerate(factors):
            for j, model in enumerate(models):
                ax = axes[i, j]
                vals = np.asarray([_value(((dec[model] or {}).get(layer) or {}).get(factor))
                                   for layer in layers])
                ok = np.isfinite(vals)
                ax.bar(xs[ok], vals[ok], color=[_layer_color(k) for k in np.flatnonzero(ok)],
                       width=0.8)
                if factor in CHANCE:
                    ax.axhline(CHANCE[factor], color="black", ls="--", lw=0.8)
                ax.set_ylim(0, 1)
                ax.set_xticks(xs)
                ax.set_xticklabels([])
                ax.set_xlim(-0.6, len(layers) - 0.4)
                ax.grid(True, axis="y", lw=0.3, alpha=0.5)
                if i == 0:
                    ax.set_title(model)
                if j == 0:
                    chance = f" (chance {CHANCE[factor]:.3g})" if factor in CHANCE else ""
                    ax.set_ylabel(f"{FACTOR_TITLES.get(factor, factor)}{chance}\nval. accuracy")
        handles = [plt.Rectangle((0, 0), 1, 1, color=_layer_color(k)) for k in range(len(layers))]
        handles.append(Line2D([], [], color="black", ls="--", lw=0.8))
        fig.legend(handles, list(layers) + ["chance"], loc="outside right upper", frameon=False)
        fig.suptitle(title)
    return _save(fig, stem), len(factors) * len(models)


def pca_scatter(components: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray],
                stem: str, title: str, layers: Sequence[str] | None = None,
                palette: np.ndarray | None = None) -> tuple[list[str], int]:
    """Fig. 4 / B.5: rows = layers, columns = factors (color, scale, x, y);
    PC1 vs PC2 coloured by the factor. `palette` [k, 3] RGB in [0, 1] (the
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
                    cmap = "tab10" if f == "color" else "viridis"
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
    return _save(fig, stem), len(layers) * len(factors)


def cka_heatmap(names: Sequence[str], matrix: np.ndarray, stem: str, title: str
                ) -> tuple[list[str], int]:
    """Annotated linear-CKA heat map, colour scale fixed to [0, 1]."""
    m = np.asarray(matrix, dtype=float)
    names = [str(n) for n in names]
    if m.ndim != 2 or m.shape != (len(names), len(names)) or not names:
        raise UsageError(f"matrix: must be [k, k] with k = len(names) = {len(names)}, got "
                         f"shape {m.shape}")
    k = len(names)
    with plt.rc_context(_RC):
        side = min(max(2.8, 0.55 * k + 1.6), 9.0)
        fig, ax = plt.subplots(figsize=(side + 0.8, side), layout="constrained")
        im = ax.imshow(m, vmin=0.0, vmax=1.0, cmap="magma")
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
        ax.set_xticklabels(names, rotation=45, ha="right")
        ax.set_yticklabels(names)
        if k <= 20:  # beyond that the numbers no longer fit their cells
            ii, jj = np.meshgrid(range(k), range(k), indexing="ij")
            for a, b, v in zip(ii.ravel(), jj.ravel(), m.ravel()):
                txt = "–" if not np.isfinite(v) else f"{v:.2f}"
                ax.text(b, a, txt, ha="center", va="center", fontsize=6,
                        color="black" if np.isfinite(v) and v > 0.5 else "white")
        fig.colorbar(im, ax=ax, shrink=0.8, label="linear CKA")
        ax.set_title(title)
    return _save(fig, stem), 1


def invariance_table(dec: Mapping[str, Mapping[str, Mapping[str, float]]],
                     early: str = "head_input", late: str = "head_out"
                     ) -> dict[str, dict[str, float]]:
    """model -> factor -> decodability at `early` minus at `late` (NaN when
    either is absent): the input to `invariance_bars`."""
    out = {}
    for model, per in dec.items():
        a, b = (per or {}).get(early) or {}, (per or {}).get(late) or {}
        out[model] = {f: _value(a.get(f)) - _value(b.get(f))
                      for f in _ordered(list(a) + list(b), FACTORS)}
    return out


def invariance_bars(table: Mapping[str, Mapping[str, float]], stem: str, title: str
                    ) -> tuple[list[str], int]:
    """Grouped bars of decodability lost through the head (head_input minus
    head_out, see `invariance_table`), per model (groups) and factor (bars);
    a zero line; above zero = the head output is more invariant."""
    if not isinstance(table, Mapping) or not table:
        raise UsageError("table: must map each model to {factor: difference}, got none")
    models = list(table)
    factors = _ordered((f for m in models for f in (table[m] or {})), FACTORS)
    if not factors:
        raise UsageError("table: no model holds any factor")
    width = 0.8 / len(factors)
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(max(3.5, 0.9 * len(models) + 2.4), 2.8),
                               layout="constrained")
        xs = np.arange(len(models))
        for k, f in enumerate(factors):
            vals = np.asarray([_value((table[m] or {}).get(f)) for m in models])
            ok = np.isfinite(vals)
            ax.bar(xs[ok] + (k - (len(factors) - 1) / 2) * width, vals[ok], width=width,
                   color=_layer_color(k), label=FACTOR_TITLES.get(f, f))
        ax.axhline(0.0, color="black", lw=0.8)
        ax.set_xticks(xs)
        ax.set_xticklabels(models, rotation=20, ha="right")
        ax.set_ylabel("accuracy: head_input − head_out")
        ax.grid(True, axis="y", lw=0.3, alpha=0.5)
        fig.legend(loc="outside right upper", frameon=False)
        ax.set_title(title)
    return _save(fig, stem), 1
