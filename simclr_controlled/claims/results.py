"""The saved results the checks read, and how they are walked.

- Channel preference at the end of training (Fig. 2, B.1;
  docs/DESIGN.md §4.1), one source (`train` or `random` masks):
  ``cp[temperature][layer][probe] -> array [n]``, probes ``level_0`` ..
  ``level_{L-1}`` and ``baseline``; entry i is the cosine similarity of
  reference item i to that probe. The reference items are the same across
  probes and temperatures, so comparisons are paired.
- Hierarchically constrained similarity (Fig. B.2, B.3; docs/DESIGN.md
  §4.2): ``sim[temperature][split][layer]`` with ``split`` in (train,
  validation) is ``{"level_l": {"within", "within_pairs", "across",
  "across_pairs", "within_per_item", "across_per_item"}, "across_view",
  "across_view_pairs", "across_view_per_item"}``; a statistic with no pairs
  is absent.
- Decodability (Fig. 3; docs/DESIGN.md §4.3):
  ``dec[model][layer][factor] -> best validation accuracy``.

Temperature keys may be floats or strings (JSON round trip); they are
ordered by their float value.
"""
from __future__ import annotations

from collections.abc import Mapping

from simclr_controlled import names

LAYERS = names.TAPS
FACTORS = names.DSPRITES_FACTORS
MODELS = names.DSPRITES_MODELS
SPLITS = ("train", "validation")


def temps(results: Mapping) -> list:
    """Temperature keys ordered by value (keys may be strings after JSON)."""
    return sorted(results, key=float)


def tname(t) -> str:
    """``T=0.1``: a temperature as the comparisons name it."""
    return f"T={float(t):g}"


def layers(d: Mapping) -> list[str]:
    """Layers present, paper order first, then any others in saved order."""
    known = [l for l in LAYERS if l in d]
    return known + [l for l in d if l not in LAYERS]


def n_levels(probes: Mapping) -> int:
    """Number of consecutive ``level_0``, ``level_1``, ... keys."""
    n = 0
    while f"level_{n}" in probes:
        n += 1
    return n
