"""The linear-CKA heat map (docs/DESIGN.md §4.4): between the head layers
of a model, or between models at one layer.

`cka_figure` draws and returns `(figure, number_of_panels)`; the package's
`cka_heatmap` writes it.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from simclr_controlled.errors import UsageError
from simclr_controlled.figures.common import _RC

def cka_figure(names: Sequence[str], matrix: np.ndarray, title: str
               ) -> tuple[plt.Figure, int]:
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
    return fig, 1
