"""A PNG grid of sample images of a dataset, so a user can look at the data
(`--mode=show`, in `modes/show.py`). Hierarchy: one row per
top-level class, each item drawn as its L channels side by side (top level
first). dsprites_mod: one row per colour, columns sweep scale and then
position. factors: one row per value of the first factor (at most 10),
columns evenly spaced over that row's items (item order: the last factor
varies fastest)."""
from __future__ import annotations

import numpy as np

from simclr_controlled import files
from simclr_controlled.datasets import Dataset


def sample_grid(dataset: Dataset, columns: int = 6) -> tuple[np.ndarray, list[str]]:
    """[rows, columns] grid of images (as HxWx3 or HxW) and the row labels."""
    labels = dataset.labels
    if dataset.name == "hierarchy":
        top = labels["level_0"]
        rows, names = [], []
        for c in np.unique(top)[:10]:
            items = np.flatnonzero(top == c)[:columns]
            # channels side by side, separated by a 2-pixel white gap
            imgs = dataset.images[items]
            gap = np.ones(imgs.shape[:2] + (2,), np.float32)
            tiles = [np.concatenate(sum(([img[..., k], gap[0]] for k in range(img.shape[-1])), [])[:-1], axis=1)
                     for img in imgs]
            rows.append(tiles)
            names.append(f"level_0 class {c}")
        return rows, names
    if dataset.name != "dsprites_mod":
        first = next(k for k in labels if k != "position")
        rows, names = [], []
        for v in np.unique(labels[first])[:10]:
            items = np.flatnonzero(labels[first] == v)
            pick = items[np.linspace(0, len(items) - 1, min(columns, len(items))).astype(int)]
            rows.append([dataset.images[i] for i in pick])
            names.append(f"{first} {v}")
        return rows, names
    rows, names = [], []
    mid = labels["x"].max() // 2
    for color in np.unique(labels["color"]):
        sel = (labels["color"] == color)
        by_scale = [np.flatnonzero(sel & (labels["scale"] == s) & (labels["x"] == mid) & (labels["y"] == mid))[0]
                    for s in np.unique(labels["scale"])][:columns // 2 or 1]
        by_pos = [np.flatnonzero(sel & (labels["scale"] == labels["scale"].max()) &
                                 (labels["x"] == p) & (labels["y"] == p))[0]
                  for p in np.linspace(0, labels["x"].max(), columns - len(by_scale)).astype(int)]
        rows.append([dataset.images[i] for i in by_scale + by_pos])
        names.append(f"color {color}")
    return rows, names


def save_samples(dataset: Dataset, path: str, columns: int = 6) -> None:
    """Writes the sample grid to `path` (PNG) atomically."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, names = sample_grid(dataset, columns)
    ncols = max(len(r) for r in rows)
    aspect = rows[0][0].shape[1] / rows[0][0].shape[0]
    fig, axes = plt.subplots(len(rows), ncols, figsize=(1.3 * ncols * aspect, 1.3 * len(rows)), squeeze=False)
    for r, (row, name) in enumerate(zip(rows, names)):
        for c in range(ncols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(row):
                ax.imshow(row[c], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            if c == 0:
                ax.set_ylabel(name, fontsize=7)
    fig.suptitle(f"{dataset.name} samples ({dataset.num_items} items)", fontsize=9)
    fig.tight_layout()
    files.atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=80))
    plt.close(fig)
