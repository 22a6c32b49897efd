"""What every figure shares: the atomic save to PNG + PDF, the layer and
factor orders, the palettes and the text style (docs/DESIGN.md §4).

Decisions where the paper is silent:
- Layers are drawn in the order head_input, head_1, head_2, head_out; any
  other layer name found in the data follows, in its first-seen order.
- A statistic that is absent, None or NaN is not drawn (never as zero); a gap
  in the series breaks the line.
- Level colours are fixed: level 0 pink as in the paper, baseline black,
  across-view purple (no level uses purple).
- Over seeds (replicates): the drawn value is the mean over the seeds that
  hold it, the band / whiskers the 95% percentile-bootstrap interval over
  seeds (`claims.statistics.seed_interval`, 1,000 resamples, seed 0); the
  title's second line says so.
- PNGs are small (dpi 90) because the README embeds them; scatter points are
  rasterised inside the PDF so it stays small too. The PDF carries no
  creation date, so re-rendering the same data gives the same bytes.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from simclr_controlled import names
from simclr_controlled.claims.statistics import seed_interval
from simclr_controlled.errors import UsageError
from simclr_controlled.files import atomic_write

LAYERS = names.TAPS
FACTORS = names.DSPRITES_FACTORS
PCA_FACTORS = names.DSPRITES_PCA_FACTORS
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


def _grid(rows: int, cols: int, w: float, h: float, extra_w: float = 1.4, extra_h: float = 0.6,
          **kw):
    fig, axes = plt.subplots(rows, cols, figsize=(w * cols + extra_w, h * rows + extra_h),
                             squeeze=False, layout="constrained", **kw)
    return fig, axes


SEED_LEVEL = 0.95


def _seed_band(values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, lo, hi) over the FIRST (seed) axis; NaN where no seed has a value."""
    with warnings.catch_warnings():  # entries with no finite value: NaN, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        return seed_interval(np.asarray(values, dtype=float), level=SEED_LEVEL)


def _seeds_title(title: str, n_seeds: int, spread: str) -> str:
    """`title` plus the line that says what is drawn over seeds."""
    return (f"{title}\nmean over {n_seeds} seed{'s' if n_seeds != 1 else ''}; "
            f"{spread}: {SEED_LEVEL:.0%} bootstrap interval over seeds")


def _seed_keys(by_seed: Any, what: str, inner: str) -> list:
    """The seeds of a non-empty mapping seed -> non-empty mapping, else UsageError."""
    if not isinstance(by_seed, Mapping) or not by_seed:
        raise UsageError(f"{what}: must map each seed to {inner}, got none")
    bad = [s for s, v in by_seed.items() if not isinstance(v, Mapping) or not v]
    if bad:
        raise UsageError(f"{what}: seed(s) {bad} must map to a non-empty {inner}")
    return list(by_seed)
