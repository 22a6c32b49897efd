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
- Over seeds, curves are drawn at the evaluations every seed has (the mean
  over a changing subset of seeds would jump between them); seeds that share
  none are drawn at every seed's evaluations.
"""
from __future__ import annotations

import functools
import math
import re
from typing import Any, Callable, Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from simclr_controlled.errors import UsageError
from simclr_controlled.figures.common import (_RC, ACROSS_VIEW_COLOR,
                                              BASELINE_COLOR, LAYERS, _grid,
                                              _ordered, _seed_band, _seed_keys,
                                              _seeds_title, _value, level_color)

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


_X_KINDS = (("epoch", "epoch"), ("step", "training step"))


def _x_of(records: list[dict], key: str) -> np.ndarray | None:
    vals = [r.get(key) for r in records]
    if None not in vals and len(set(vals)) == len(vals):
        return np.asarray(vals, dtype=float)
    return None


def _x_axis(records: list[dict]) -> tuple[np.ndarray, str]:
    """x values: epoch, or training step when epochs repeat."""
    xs, label = _x_axes([records])
    return xs[0], label


def _x_axes(runs: list[list[dict]]) -> tuple[list[np.ndarray], str]:
    """`_x_axis` for several seeds' runs at once: the first kind (epoch, then
    step, then evaluation index) that every run can use, so that records of
    different seeds align by their x value."""
    for key, label in _X_KINDS:
        xs = [_x_of(recs, key) for recs in runs]
        if all(x is not None for x in xs):
            return xs, label
    return [np.arange(len(recs), dtype=float) for recs in runs], "evaluation"


def _by_time(records) -> list[dict]:
    return sorted(records, key=lambda r: (_value(r.get("epoch")) if r.get("epoch") is not None
                                          else -math.inf,
                                          _value(r.get("step")) if r.get("step") is not None
                                          else -math.inf))


# series(per_record) -> {line key: (y [n_records], spread [n_records] or None)};
# style(key) -> (color, linestyle, linewidth, marker?).
Series = Callable[[list], dict[Any, tuple[np.ndarray, np.ndarray | None]]]
Style = Callable[[Any], tuple[str, str, float, bool]]


def _line(ax, x, y, band, style: tuple[str, str, float, bool]) -> None:
    color, ls, lw, marker = style
    if marker:
        ax.plot(x, y, color=color, ls=ls, lw=lw, marker="." if len(x) < 15 else None, ms=3)
    else:
        ax.plot(x, y, color=color, ls=ls, lw=lw)
    if band is not None:
        ax.fill_between(x, band[0], band[1], color=color, alpha=0.2, lw=0)


def _draw_one(ax, xs, per_seed, style: Style) -> None:
    """One seed: the series as they are, shaded +-spread where there is one."""
    for key, (y, spread) in per_seed[0].items():
        if np.isfinite(y).any():
            _line(ax, xs[0], y, None if spread is None else (y - spread, y + spread), style(key))


def _common_x(xs) -> np.ndarray:
    """The x values every seed evaluated, else (no x shared) every seed's x.
    A mean over a subset of seeds that changes from one x to the next jumps
    by the spread between seeds: a sawtooth when one replicate's records are
    thinned (docs/runs/keep.py keeps every second evaluation)."""
    if not xs:
        return np.zeros(0)
    common = np.unique(functools.reduce(np.intersect1d, xs))
    return common if len(common) else np.unique(np.concatenate(xs))


def _draw_seeds(ax, xs, per_seed, style: Style) -> None:
    """Several seeds aligned by x at the x values they share (`_common_x`; a
    statistic absent from a seed's record is NaN there): the mean over seeds,
    shaded by the bootstrap interval over seeds."""
    x = _common_x(xs)
    hits = [np.isin(xi, x) for xi in xs]  # each seed's records at the shared x
    cols = [np.searchsorted(x, xi[hit]) for xi, hit in zip(xs, hits)]
    for key in dict.fromkeys(k for series in per_seed for k in series):
        grid = np.full((len(per_seed), len(x)), np.nan)
        for s, series in enumerate(per_seed):
            if key in series:
                grid[s, cols[s]] = np.asarray(series[key][0])[hits[s]]
        mean, lo, hi = _seed_band(grid)
        if np.isfinite(mean).any():
            _line(ax, x, mean, (lo, hi), style(key))


def _over_training(records_by_seed: Mapping, title: str, pick: Callable[[dict], Mapping | None],
                   series: Series, style: Style, legend: Callable[[], tuple[list, list]],
                   ylabel: str, what: str, over_seeds: bool = False):
    """Shared grid: rows = temperatures ascending, columns = layers.
    `records_by_seed`: seed -> temperature -> records (one seed unless
    `over_seeds`); each panel draws every seed's `series` of the picked layer."""
    runs = {s: {t: _by_time(recs or []) for t, recs in by_t.items()}
            for s, by_t in records_by_seed.items()}
    temps = _sorted_temperatures({t: None for by_t in runs.values() for t in by_t})
    layers = _ordered((layer for by_t in runs.values() for recs in by_t.values() for r in recs
                       for layer in (pick(r) or {})), LAYERS)
    if not layers:
        raise UsageError(f"{'records_by_seed' if over_seeds else 'records_by_temperature'}: "
                         f"no record holds {what}")
    with plt.rc_context(_RC):
        fig, axes = _grid(len(temps), len(layers), 2.3, 1.9, sharex="row")
        for i, t in enumerate(temps):
            per_seed = [by_t[t] for by_t in runs.values() if by_t.get(t)]
            xs, xlabel = _x_axes(per_seed) if per_seed else ([np.zeros(0)], "epoch")
            for j, layer in enumerate(layers):
                ax = axes[i, j]
                drawn = [series([(pick(r) or {}).get(layer) for r in recs])
                         for recs in per_seed or [[]]]
                (_draw_seeds if over_seeds else _draw_one)(ax, xs, drawn, style)
                if i == 0:
                    ax.set_title(layer)
                if i == len(temps) - 1:
                    ax.set_xlabel(xlabel)
                if j == 0:
                    ax.set_ylabel(f"τ = {t}\n{ylabel}")
                ax.grid(True, lw=0.3, alpha=0.5)
        handles, labels = legend()
        fig.legend(handles, labels, loc="outside right upper", frameon=False)
        fig.suptitle(_seeds_title(title, len(runs), "band") if over_seeds else title)
    return fig, len(temps) * len(layers)


def _by_seed(records: Mapping, over_seeds: bool) -> Mapping:
    """seed -> temperature -> records, validated; one seed is {None: records}."""
    if not over_seeds:
        _sorted_temperatures(records)
        return {None: records}
    seeds = _seed_keys(records, "records_by_seed", "{temperature: [records]}")
    for s in seeds:
        try:
            _sorted_temperatures(records[s])
        except UsageError as e:
            raise UsageError(f"records_by_seed[{s!r}]: {e}") from None
    return records


def _levels(keys) -> list[str]:
    found = [k for k in keys if _LEVEL_RE.match(str(k))]
    return sorted(set(found), key=lambda k: int(_LEVEL_RE.match(k).group(1)))


def channel_preference_figure(records_by_temperature: Mapping[Any, list[dict]],
                              source: str, title: str, over_seeds: bool = False
                              ) -> tuple[plt.Figure, int]:
    """Fig. 2 (source "train") / Fig. B.1 (source "random").

    Rows = temperatures (ascending), columns = layers; x = epoch, y = mean
    cosine similarity over references, one line per probe level (level 0
    pink) plus the baseline in black, shaded +-1 standard error of the mean.
    With `over_seeds`, the first argument is seed -> temperature -> records
    and each line is the mean over seeds of the per-seed means over
    references, shaded by the 95% bootstrap interval over seeds.
    """
    data = _by_seed(records_by_temperature, over_seeds)
    all_levels: set[str] = set()

    def pick(r: dict):
        cp = (r.get("channel_preference") or {}).get(source)
        if cp:
            for per in cp.values():
                all_levels.update(_levels(per or {}))
        return cp

    # Pass over the data once so every panel and the legend share the levels.
    for by_t in data.values():
        for recs in by_t.values():
            for r in recs or []:
                pick(r)
    levels = _levels(all_levels)

    def series(per_record):
        out = {}
        for name in levels + ["baseline"]:
            mean = np.full(len(per_record), np.nan)
            sem = np.full(len(per_record), np.nan)
            for k, probes in enumerate(per_record):
                vals = (probes or {}).get(name)
                if vals is None:
                    continue
                v = _floats(vals)
                v = v[np.isfinite(v)]
                if v.size:
                    mean[k] = v.mean()
                    sem[k] = v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else 0.0
            out[name] = (mean, sem)
        return out

    def style(name):
        color = BASELINE_COLOR if name == "baseline" else level_color(_level_index(name))
        return color, "-", 1.2, True

    def legend():
        handles = [Line2D([], [], color=level_color(_level_index(n)), lw=1.5) for n in levels]
        labels = [f"matches level {_level_index(n)}" for n in levels]
        return handles + [Line2D([], [], color=BASELINE_COLOR, lw=1.5)], labels + ["baseline"]

    return _over_training(data, title, pick, series, style, legend,
                          "cosine similarity", f"channel_preference[{source!r}]", over_seeds)


def _floats(vals) -> np.ndarray:
    """Per-reference values as floats (None -> NaN), vectorized when numeric."""
    try:
        return np.asarray(vals, dtype=float).ravel()
    except (TypeError, ValueError):
        return np.asarray([_value(u) for u in np.ravel(np.asarray(vals, dtype=object))])


def _level_index(name: str) -> int:
    return int(_LEVEL_RE.match(name).group(1))


def similarity_figure(records_by_temperature: Mapping[Any, list[dict]], split: str,
                      title: str, over_seeds: bool = False) -> tuple[plt.Figure, int]:
    """Fig. B.2 (split "train") / Fig. B.3 (split "validation").

    Rows = temperatures, columns = layers; per level a colour, solid =
    within-class, dashed = across-class; dotted purple = across-view. An
    absent statistic (no pairs) is not drawn. With `over_seeds`, the first
    argument is seed -> temperature -> records and each line is the mean over
    the seeds that hold the statistic, shaded by the 95% bootstrap interval.
    """
    data = _by_seed(records_by_temperature, over_seeds)
    all_levels: set[str] = set()

    def pick(r: dict):
        sim = (r.get("similarity") or {}).get(split)
        if sim:
            for per in sim.values():
                all_levels.update(_levels(per if isinstance(per, Mapping) else {}))
        return sim

    for by_t in data.values():
        for recs in by_t.values():
            for r in recs or []:
                pick(r)
    levels = _levels(all_levels)

    def values(per_record, get) -> np.ndarray:
        return np.asarray([_value(get(s)) if isinstance(s, Mapping) else math.nan
                           for s in per_record], dtype=float)

    def series(per_record):
        out = {(name, stat): (values(per_record, lambda s: (s.get(name) or {}).get(stat)), None)
               for name in levels for stat in ("within", "across")}
        out["across_view"] = (values(per_record, lambda s: s.get("across_view")), None)
        return out

    def style(key):
        if key == "across_view":
            return ACROSS_VIEW_COLOR, ":", 1.6, False
        name, stat = key
        return level_color(_level_index(name)), "-" if stat == "within" else "--", 1.2, True

    def legend():
        handles = [Line2D([], [], color=level_color(_level_index(n)), lw=1.5) for n in levels]
        labels = [f"level {_level_index(n)}" for n in levels]
        handles += [Line2D([], [], color="grey", ls="-", lw=1.2),
                    Line2D([], [], color="grey", ls="--", lw=1.2),
                    Line2D([], [], color=ACROSS_VIEW_COLOR, ls=":", lw=1.6)]
        labels += ["within-class", "across-class", "across-view"]
        return handles, labels

    return _over_training(data, title, pick, series, style, legend,
                          "cosine similarity", f"similarity[{split!r}]", over_seeds)
