"""The paper's figures (Fig. 2, 3, 4, B.1, B.2, B.3, B.5) and the CKA heat
maps, from saved results (docs/DESIGN.md §4).

Every function takes plain data (dicts, lists, numpy arrays) and a path stem
without extension, writes `<stem>.png` and `<stem>.pdf` atomically through
`files.atomic_write` (a killed process never leaves half a figure), closes the
figure and returns `(paths, number_of_panels)`.

- `common`: the atomic save, layer/factor orders, palettes, text style;
- `hierarchy`: Fig. 2, B.1 (§4.1) and B.2, B.3 (§4.2), over training;
- `dsprites`: Fig. 3 (§4.3), Fig. 4, B.5 (§4.4), the invariance bars;
- `cka`: the linear-CKA heat maps (§4.4);
- `factors`: label-free metrics against decodability, the invariance map (§4.6).

The `*_over_seeds` functions draw the same figures for a multi-seed
experiment (`experiment_dir/seed_<S>/`, one replicate each): the mean over
seeds, with a band / whiskers = the 95% bootstrap interval over seeds
(`claims.statistics.seed_interval`); their first argument maps each seed to
what the one-seed function takes.

The submodules draw; the functions here write what they draw, through
`_save` looked up in this package (so replacing `figures._save`, as the tests
do, reaches every figure). The decisions where the paper is silent are in
the submodules' docstrings.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window or need a display

import numpy as np  # noqa: E402

from simclr_controlled.figures import cka as _cka  # noqa: E402
from simclr_controlled.figures import dsprites as _dsprites  # noqa: E402
from simclr_controlled.figures import factors as _factors  # noqa: E402
from simclr_controlled.figures import hierarchy as _hierarchy  # noqa: E402
from simclr_controlled.figures import suppression as _suppression  # noqa: E402
from simclr_controlled.figures.common import (ACROSS_VIEW_COLOR,  # noqa: E402,F401
                                              BASELINE_COLOR, CHANCE, DPI,
                                              FACTOR_TITLES, FACTORS,
                                              LAYER_COLORS, LAYERS,
                                              LEVEL_COLORS, PCA_FACTORS, _save,
                                              level_color)
from simclr_controlled.figures.dsprites import invariance_table  # noqa: E402

__all__ = [
    "LAYERS", "FACTORS", "PCA_FACTORS", "CHANCE", "FACTOR_TITLES", "DPI",
    "BASELINE_COLOR", "ACROSS_VIEW_COLOR", "LEVEL_COLORS", "LAYER_COLORS",
    "level_color", "channel_preference_over_training", "similarity_over_training",
    "decodability", "pca_scatter", "cka_heatmap", "invariance_table",
    "invariance_bars", "channel_preference_over_seeds", "similarity_over_seeds",
    "decodability_over_seeds", "invariance_bars_over_seeds",
    "label_free_scatter", "invariance_heatmap",
]


def channel_preference_over_training(records_by_temperature: Mapping[Any, list[dict]],
                                     source: str, stem: str, title: str
                                     ) -> tuple[list[str], int]:
    """Fig. 2 (source "train") / Fig. B.1 (source "random"), written to `stem`
    (`hierarchy.channel_preference_figure`)."""
    fig, panels = _hierarchy.channel_preference_figure(records_by_temperature, source, title)
    return _save(fig, stem), panels


def similarity_over_training(records_by_temperature: Mapping[Any, list[dict]], split: str,
                             stem: str, title: str) -> tuple[list[str], int]:
    """Fig. B.2 (split "train") / Fig. B.3 (split "validation"), written to
    `stem` (`hierarchy.similarity_figure`)."""
    fig, panels = _hierarchy.similarity_figure(records_by_temperature, split, title)
    return _save(fig, stem), panels


def decodability(dec: Mapping[str, Mapping[str, Mapping[str, float]]], stem: str, title: str,
                 chance: Mapping[str, float] | None = None) -> tuple[list[str], int]:
    """Fig. 3, written to `stem` (`dsprites.decodability_figure`; `chance`:
    factor -> chance level, default dsprites_mod's)."""
    fig, panels = _dsprites.decodability_figure(dec, title, chance=chance)
    return _save(fig, stem), panels


def pca_scatter(components: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray],
                stem: str, title: str, layers: Sequence[str] | None = None,
                palette: np.ndarray | None = None) -> tuple[list[str], int]:
    """Fig. 4 / B.5, written to `stem` (`dsprites.pca_figure`)."""
    fig, panels = _dsprites.pca_figure(components, labels, title, layers=layers,
                                       palette=palette)
    return _save(fig, stem), panels


def invariance_bars(table: Mapping[str, Mapping[str, float]], stem: str, title: str
                    ) -> tuple[list[str], int]:
    """The invariance bars of `invariance_table`, written to `stem`
    (`dsprites.invariance_figure`)."""
    fig, panels = _dsprites.invariance_figure(table, title)
    return _save(fig, stem), panels


def channel_preference_over_seeds(records_by_seed: Mapping[int, Mapping[Any, list[dict]]],
                                  source: str, stem: str, title: str
                                  ) -> tuple[list[str], int]:
    """Fig. 2 / Fig. B.1 over seeds: seed -> temperature -> records; lines =
    mean over seeds of the mean over references, band = 95% bootstrap
    interval over seeds."""
    fig, panels = _hierarchy.channel_preference_figure(records_by_seed, source, title,
                                                       over_seeds=True)
    return _save(fig, stem), panels


def similarity_over_seeds(records_by_seed: Mapping[int, Mapping[Any, list[dict]]], split: str,
                          stem: str, title: str) -> tuple[list[str], int]:
    """Fig. B.2 / Fig. B.3 over seeds: seed -> temperature -> records; lines =
    mean over the seeds holding the statistic, band = 95% bootstrap interval."""
    fig, panels = _hierarchy.similarity_figure(records_by_seed, split, title, over_seeds=True)
    return _save(fig, stem), panels


def decodability_over_seeds(dec_by_seed: Mapping[int, Mapping[str, Mapping[str, Mapping[str,
                                                                                    float]]]],
                            stem: str, title: str, chance: Mapping[str, float] | None = None
                            ) -> tuple[list[str], int]:
    """Fig. 3 over seeds: seed -> model -> layer -> factor -> accuracy; bars =
    mean, whiskers = 95% bootstrap interval over seeds, one dot per seed."""
    fig, panels = _dsprites.decodability_figure(dec_by_seed, title, over_seeds=True, chance=chance)
    return _save(fig, stem), panels


def invariance_bars_over_seeds(tables_by_seed: Mapping[int, Mapping[str, Mapping[str, float]]],
                               stem: str, title: str) -> tuple[list[str], int]:
    """The invariance bars over seeds: seed -> `invariance_table`; bars =
    mean, whiskers = 95% bootstrap interval over seeds, one dot per seed."""
    fig, panels = _dsprites.invariance_figure(tables_by_seed, title, over_seeds=True)
    return _save(fig, stem), panels


def cka_heatmap(names: Sequence[str], matrix: np.ndarray, stem: str, title: str
                ) -> tuple[list[str], int]:
    """Annotated linear-CKA heat map, written to `stem` (`cka.cka_figure`)."""
    fig, panels = _cka.cka_figure(names, matrix, title)
    return _save(fig, stem), panels


def label_free_scatter(points: Sequence[Mapping], table: Mapping, layer: str,
                       class_counts: Mapping[str, int], stem: str, title: str
                       ) -> tuple[list[str], int]:
    """Label-free metrics against decodability at `layer`, rho in each panel,
    written to `stem` (`factors.scatter_figure`)."""
    fig, panels = _factors.scatter_figure(points, table, layer, class_counts, title)
    return _save(fig, stem), panels


def invariance_heatmap(inv: Mapping[str, Mapping[str, Mapping[str, Any]]], stem: str, title: str
                       ) -> tuple[list[str], int]:
    """The augmentation x factor invariance map, one panel per layer, written
    to `stem` (`factors.invariance_map_figure`); one seed or over seeds."""
    fig, panels = _factors.invariance_map_figure(inv, title)
    return _save(fig, stem), panels


def suppression_curves(sup_by_seed: Mapping, stem: str, title: str,
                       chance: Mapping[str, float]) -> tuple[list[str], int]:
    """Decodability against the number of random bits, one line per
    temperature, per factor (rows) and layer (columns); seed -> temperature
    -> bits -> layer -> factor -> accuracy (`suppression.suppression_figure`)."""
    fig, panels = _suppression.suppression_figure(sup_by_seed, title, chance)
    return _save(fig, stem), panels
