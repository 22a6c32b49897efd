"""The hierarchy figures over training: channel preference (Fig. 2, B.1;
docs/DESIGN.md §4.1) and hierarchically constrained similarity (Fig. B.2,
B.3; docs/DESIGN.md §4.2).

Each `*_figure` function draws and returns `(figure, number_of_panels)`;
the package's functions of the same figure write it.

Decisions where the paper is silent:
- Over-training curves use the epoch on the x axis; when several records share
  an epoch (evaluations inside an epoch) the training step is used instead.
- Each over-training panel scales its own y axis: similarity ranges differ a
  lot between head_input and head_out, and a shared axis would flatten the
  level ordering in the narrower layer.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable, Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from simclr_controlled.errors import UsageError
from simclr_controlled.figures.common import (_RC, ACROSS_VIEW_COLOR,
                                              BASELINE_COLOR, LAYERS, _grid,
                                              _ordered, _value, level_color)

_LEVEL_RE = re.compile(r"^level_(\d+)$")


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


def _over_training(records_by_temperature: Mapping, title: str,
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
    return fig, len(temps) * len(layers)


def _levels(keys) -> list[str]:
    found = [k for k in keys if _LEVEL_RE.match(str(k))]
    return sorted(set(found), key=lambda k: int(_LEVEL_RE.match(k).group(1)))


def channel_preference_figure(records_by_temperature: Mapping[Any, list[dict]],
                              source: str, title: str) -> tuple[plt.Figure, int]:
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

    return _over_training(records_by_temperature, title, pick, draw, legend,
                          "cosine similarity", f"channel_preference[{source!r}]")


def _level_index(name: str) -> int:
    return int(_LEVEL_RE.match(name).group(1))


def similarity_figure(records_by_temperature: Mapping[Any, list[dict]], split: str,
                      title: str) -> tuple[plt.Figure, int]:
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

    return _over_training(records_by_temperature, title, pick, draw, legend,
                          "cosine similarity", f"similarity[{split!r}]")
