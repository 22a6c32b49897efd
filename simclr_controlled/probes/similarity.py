"""Hierarchically constrained similarity (DESIGN §4.2; paper App. A.1, Fig. B.2/B.3).

Decisions where the paper is silent:
- Two views per item. The similarity of an item PAIR (i, j) is the mean of
  the four cosine similarities between a view of i and a view of j, i.e. the
  2n x 2n view-similarity matrix restricted to views of distinct items, every
  view pair weighted equally. With unit view vectors u, that mean equals
  m_i . m_j where m_i = (u_a_i + u_b_i) / 2, which is how it is computed.
- Cosine similarity of a zero vector is 0 (as `cosine_similarity_rows`).
- Class indices must be global per level (level l has its own index space,
  as the `hierarchy` dataset labels are), so "same level-l class" implies
  "same level-(l-1) class"; labels that break this raise UsageError.
- Statistics are computed from per-class sums of the m_i (O(n d) memory, no
  n x n matrix), so they scale to the whole dataset.
- A statistic with no pairs is absent (its key, pair count and per-item list
  omitted), never 0. A level with no statistic at all maps to {}.
- Per-item lists: item i's mean similarity to its partners (same level-l
  class; or different level-l class with the same parent); None (JSON
  null) where the item has no partner. The level mean is over pairs, not
  over items, so it is generally not the mean of the per-item list.
"""
from __future__ import annotations

import numpy as np

from simclr_controlled.errors import UsageError


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0.0)


def _group_sums(values: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-item sum of `values` over the item's group, and the group size."""
    _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    sums = np.zeros((counts.size, values.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse, values)
    return sums[inverse], counts[inverse]


def _per_item(total: np.ndarray, count: np.ndarray) -> list:
    safe = np.where(count > 0, count, 1)
    means = total / safe
    return [float(v) if c > 0 else None for v, c in zip(means.tolist(), count.tolist())]


def _check_labels(labels: np.ndarray, n: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim == 1:
        labels = labels[:, None]
    if labels.ndim != 2 or labels.shape[0] != n or labels.shape[1] < 1:
        raise UsageError(
            f"labels: must be an int array [n, L] with n = {n} rows and L >= 1, "
            f"got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise UsageError(f"labels: must be integer class indices, got dtype {labels.dtype}")
    for l in range(1, labels.shape[1]):
        pairs = np.unique(labels[:, l - 1:l + 1], axis=0)
        if np.unique(pairs[:, 1]).size != pairs.shape[0]:
            raise UsageError(
                f"labels: level-{l} class indices must be global (each level-{l} "
                f"class has one level-{l - 1} parent); column {l} reuses an "
                "index under different parents")
    return labels.astype(np.int64)


def hierarchical_similarity(view_a: np.ndarray, view_b: np.ndarray,
                            labels: np.ndarray) -> dict:
    """Within-, across-class and across-view cosine similarity per level.

    view_a, view_b: [n, d] activations of the two augmented views of n items
    (same item order). labels: int [n, L], column l = class at level l
    (0 = top). Returns a JSON-serialisable dict:
      {"level_l": {"within", "within_pairs", "within_per_item",
                   "across", "across_pairs", "across_per_item"},  # each if any pair
       "across_view", "across_view_pairs", "across_view_per_item"}
    Across-class at level l pairs items of different level-l classes with the
    same level-(l-1) class (level 0: any two items of different top classes).
    Pair counts count unordered pairs of distinct items.
    """
    a = np.asarray(view_a, dtype=np.float64)
    b = np.asarray(view_b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape or a.shape[0] < 1:
        raise UsageError(
            f"view_a, view_b: must be 2-D arrays of the same shape [n, d] with "
            f"n >= 1, got {a.shape} and {b.shape}")
    n = a.shape[0]
    labels = _check_labels(labels, n)
    ua, ub = _unit_rows(a), _unit_rows(b)
    m = 0.5 * (ua + ub)
    self_sim = np.einsum("ij,ij->i", m, m)  # the (i, i) term the sums include

    out: dict = {}
    parent_sum = np.broadcast_to(m.sum(axis=0), m.shape)  # level 0: one root
    parent_cnt = np.full(n, n)
    for l in range(labels.shape[1]):
        class_sum, class_cnt = _group_sums(m, labels[:, l])
        stats: dict = {}
        # Same class, distinct items.
        w_tot = np.einsum("ij,ij->i", m, class_sum) - self_sim
        w_cnt = class_cnt - 1
        if w_cnt.sum() > 0:
            stats["within"] = float(w_tot.sum() / w_cnt.sum())
            stats["within_pairs"] = int(w_cnt.sum() // 2)
            stats["within_per_item"] = _per_item(w_tot, w_cnt)
        # Same parent, different class: the parent group minus the own class.
        x_tot = np.einsum("ij,ij->i", m, parent_sum - class_sum)
        x_cnt = parent_cnt - class_cnt
        if x_cnt.sum() > 0:
            stats["across"] = float(x_tot.sum() / x_cnt.sum())
            stats["across_pairs"] = int(x_cnt.sum() // 2)
            stats["across_per_item"] = _per_item(x_tot, x_cnt)
        out[f"level_{l}"] = stats
        parent_sum, parent_cnt = class_sum, class_cnt

    view_sim = np.clip(np.einsum("ij,ij->i", ua, ub), -1.0, 1.0)
    out["across_view"] = float(view_sim.mean())
    out["across_view_pairs"] = int(n)
    out["across_view_per_item"] = [float(v) for v in view_sim.tolist()]
    return out
