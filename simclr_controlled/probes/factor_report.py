"""The factor metrics of one checkpoint, at every head layer (DESIGN §4.5):
what `--mode=probe` stores under `factor_metrics` and `label_free` for the
sprite datasets (dsprites_mod, factors).

Decisions where the sources are silent:
- Factors: every label but `position` (x and y are their own factors);
  R² for the ordinal ones (scale, orientation, x, y), DCI, MIG and SAP over
  all of them, each factor's values taken as classes.
- Items: R², DCI and SAP fit on a seeded 80 % of all items and are scored on
  the other 20 % (one split for every layer; an item split, unlike the
  held-out-value splits of decodability, because these metrics ask how a
  factor is laid out, not whether it generalizes to unseen values); MIG on
  all items.
- Label-free metrics: alignment and uniformity on two augmented views (the
  model's own training augmentation, seeded, on a stream of their own) of
  `NUM_VIEW_ITEMS` seeded training items; effective rank on the
  un-augmented activations of every item.
"""
from __future__ import annotations

import numpy as np

from simclr_controlled.probes import disentanglement, label_free, recovery

ORDINAL = ("scale", "orientation", "x", "y")
NUM_VIEW_ITEMS = 1000
TRAIN_FRACTION = 0.8


def factor_table(labels: dict) -> tuple[list[str], np.ndarray]:
    """The factor names and values [N, k] (every label but `position`)."""
    names = [k for k in labels if k != "position"]
    return names, np.stack([np.asarray(labels[k]) for k in names], axis=1)


def item_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train / validation item indices (TRAIN_FRACTION of the items to train)."""
    perm = np.random.default_rng([seed, 11]).permutation(n)
    cut = int(round(TRAIN_FRACTION * n))
    return np.sort(perm[:cut]), np.sort(perm[cut:])


def factor_metrics(acts: dict, labels: dict, seed: int) -> dict:
    """layer -> {"r2": {factor: R²}, "dci": {...}, "mig": {...}, "sap": {...}}."""
    names, values = factor_table(labels)
    tr, va = item_split(values.shape[0], seed)
    ordinal = [i for i, k in enumerate(names) if k in ORDINAL]
    out = {}
    for layer, a in acts.items():
        a = np.asarray(a, np.float64)
        rec = {}
        if ordinal:
            rec["r2"] = recovery.r2_scores(a[tr], values[tr][:, ordinal], a[va], values[va][:, ordinal],
                                           [names[i] for i in ordinal])
        rec["dci"] = disentanglement.dci(a[tr], values[tr], a[va], values[va], names)
        rec["mig"] = disentanglement.mig(a, values, names)
        rec["sap"] = disentanglement.sap(a[tr], values[tr], a[va], values[va], names)
        out[layer] = rec
    return out


def label_free_metrics(view_a: dict, view_b: dict, acts: dict) -> dict:
    """layer -> {"alignment", "uniformity", "effective_rank", "view_items"}
    from the activations of two views of the same items and of every
    un-augmented item.

    An all-zero row (a ReLU layer silent for that view) has no direction to
    L2-normalize: alignment uses the items whose two views are both nonzero,
    uniformity the nonzero first views (`view_items` counts the former);
    with fewer than 2 such items the metric is None.
    """
    out = {}
    for layer in acts:
        a, b = np.asarray(view_a[layer], np.float64), np.asarray(view_b[layer], np.float64)
        live_a, live_b = np.any(a != 0, axis=1), np.any(b != 0, axis=1)
        both = live_a & live_b
        out[layer] = {
            "alignment": label_free.alignment(a[both], b[both]) if both.sum() >= 2 else None,
            "uniformity": label_free.uniformity(a[live_a]) if live_a.sum() >= 2 else None,
            "effective_rank": label_free.effective_rank(np.asarray(acts[layer], np.float64)),
            "view_items": int(both.sum())}
    return out
