"""Channel preference analysis (DESIGN §4.1; paper Sec. 2, Fig. 1B, 2, B.1).

For each reference item and each probe (one per hierarchy level, matching
the reference in that level's channel only, plus a `baseline` probe that
matches in no channel) the analysis records the cosine similarity of the
reference's and the probe's activations at every projection head layer
(`head_input`, `head_1`, `head_2`, `head_out`).

Activations come in as dicts layer -> float array [n, d] whose row i belongs
to reference i; building the probe images is the caller's job.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from simclr_controlled.errors import UsageError


def cosine_similarity_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of matching rows of `a` and `b` ([n, d] each) -> [n].

    A row of all zeros (e.g. a dead ReLU layer) has no direction; its cosine
    similarity with anything is defined as 0 rather than NaN so that means
    over references stay finite. Computed in float64.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise UsageError(
            f"a, b: must be 2-D arrays of the same shape [n, d], got "
            f"{a.shape} and {b.shape}")
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = np.einsum("ij,ij->i", a, b)
    safe = np.where(norms > 0.0, norms, 1.0)
    # Clip: rounding can push |cos| of (anti)parallel rows just past 1.
    return np.where(norms > 0.0, np.clip(dots / safe, -1.0, 1.0), 0.0)


def channel_preference(
    reference_acts: Mapping[str, np.ndarray],
    probe_acts: Mapping[str, Mapping[str, np.ndarray]],
) -> dict[str, dict[str, np.ndarray]]:
    """Per-reference cosine similarity of reference and probe activations.

    reference_acts: layer -> [n, d]. probe_acts: probe name (`level_0` ..
    `level_{L-1}`, `baseline`) -> layer -> [n, d], row i being the probe
    built for reference i. Every probe must provide every reference layer.
    Returns layer -> probe name -> float64 [n] (order of `reference_acts`
    and `probe_acts` kept).
    """
    if not reference_acts:
        raise UsageError("reference_acts: must name at least one layer, got none")
    if not probe_acts:
        raise UsageError("probe_acts: must name at least one probe, got none")
    out: dict[str, dict[str, np.ndarray]] = {}
    for layer, ref in reference_acts.items():
        ref = np.asarray(ref)
        per_probe: dict[str, np.ndarray] = {}
        for probe, acts in probe_acts.items():
            if layer not in acts:
                raise UsageError(
                    f"probe_acts: probe {probe!r} lacks layer {layer!r}; it has "
                    f"{sorted(acts)}")
            got = np.asarray(acts[layer])
            if got.shape != ref.shape:
                raise UsageError(
                    f"probe_acts: probe {probe!r} layer {layer!r} has shape "
                    f"{got.shape}, the references have {ref.shape}")
            per_probe[probe] = cosine_similarity_rows(ref, got)
        out[layer] = per_probe
    return out


def summarize(cp: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, dict[str, float]]:
    """Mean over references of `channel_preference` output (the Fig. 2 curves).

    Returns layer -> probe -> plain Python float.
    """
    return {layer: {probe: float(np.mean(v)) for probe, v in per.items()}
            for layer, per in cp.items()}
