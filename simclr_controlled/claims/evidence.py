"""The record of a claim: its judged comparisons (`Evidence`) and `Claim`.

A claim (docs/DESIGN.md §5) carries its verdict and every number behind it;
a claim that does not hold is reported as such, and a claim the results
cannot show is NOT REPRODUCED with ``applicable=False``.
`claims_to_json` writes the records of ``analysis/claims.json``.
"""
from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from simclr_controlled.claims.statistics import (paired_bootstrap_ci,
                                                 two_sample_bootstrap_ci)
from simclr_controlled.errors import UsageError

# Per-item "A > B" (H5) is paired when at least this many items have both
# values, otherwise two-sample (docs/DESIGN.md §5).
MIN_PAIRED_ITEMS = 10


def jsonable(x: Any) -> Any:
    """Plain JSON values: numpy scalars to Python, non-finite floats to None."""
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return [jsonable(v) for v in x.tolist()]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else None
    if x is None or isinstance(x, str):
        return x
    return str(x)


_ALWAYS = ("what", "a", "b", "diff", "ci_lo", "ci_hi", "holds")


@dataclasses.dataclass(frozen=True, eq=False)
class Evidence(Mapping):
    """One judged comparison "A > B": its means, difference, 95% CI, verdict.

    Read like the dict it is written as (``e["holds"]``, ``e.get("n")``):
    the seven first keys always, then each optional field that is not None,
    in field order. CI keys are None for single-number comparisons (D1-D3);
    `a`, `b` may be orders of names (H5 (iii)). `n`: references compared,
    or ``[n_a, n_b]`` when unpaired.
    """
    what: str
    a: Any
    b: Any
    diff: float | None
    ci_lo: float | None
    ci_hi: float | None
    holds: bool
    n: int | list[int] | None = None
    kendall_tau: float | None = None
    method: str | None = None
    part: str | None = None
    in_one_split_only: list[str] | None = None

    def __iter__(self) -> Iterator[str]:
        for f in dataclasses.fields(self):
            if f.name in _ALWAYS or getattr(self, f.name) is not None:
                yield f.name

    def __getitem__(self, key: str) -> Any:
        if key in _ALWAYS or (key in self.__dataclass_fields__
                              and getattr(self, key) is not None):
            return getattr(self, key)
        raise KeyError(key)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def to_json(self) -> dict:
        """The dict written to claims.json."""
        return jsonable(self)

    def as_reported(self) -> dict:
        """The numbers without the verdict, for a comparison not judged."""
        return {k: v for k, v in self.items() if k != "holds"}

    @classmethod
    def not_judged(cls, what: str, method: str, *, a: Any = None,
                   b: Any = None, n: Any = None, part: str | None = None
                   ) -> Evidence:
        """A comparison the results cannot show: it does not hold."""
        return cls(what, a, b, None, None, None, False, n=n, method=method,
                   part=part)

    @classmethod
    def single(cls, what: str, a: float, b: float, holds: bool,
               part: str | None = None) -> Evidence:
        """Single numbers (best validation accuracies): no interval."""
        return cls(what, float(a), float(b), float(a - b), None, None,
                   bool(holds), part=part)

    @classmethod
    def paired(cls, what: str, a: np.ndarray, b: np.ndarray, seed: int,
               part: str | None = None) -> Evidence:
        """A > B per reference: bootstrap CI of mean(a - b) above zero."""
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if a.shape != b.shape or a.ndim != 1:
            raise UsageError(
                f"{what}: paired arrays must be one-dimensional of equal "
                f"length, got shapes {a.shape} and {b.shape}")
        diff = a - b
        lo, hi = paired_bootstrap_ci(diff, seed=seed)
        return cls(what, float(a.mean()), float(b.mean()), float(diff.mean()),
                   lo, hi, bool(lo > 0.0), n=int(a.size), method="paired",
                   part=part)

    @classmethod
    def per_item(cls, what: str, a: np.ndarray, b: np.ndarray, seed: int,
                 part: str | None = None) -> Evidence:
        """A > B on per-item values, NaN where an item has no value (H5).

        Paired over the items that have both when at least MIN_PAIRED_ITEMS
        do; otherwise a two-sample bootstrap of the two sets (resampled
        independently; an approximation, since the sets overlap); with fewer
        than 2 items on either side it cannot show "A > B" and does not hold.
        """
        if a.size and b.size and a.size != b.size:
            raise UsageError(
                f"{what}: per-item lists must cover the same items, got "
                f"lengths {a.size} and {b.size}")
        fa, fb = np.isfinite(a), np.isfinite(b)
        if a.size and b.size and int((fa & fb).sum()) >= MIN_PAIRED_ITEMS:
            both = fa & fb
            return cls.paired(what, a[both], b[both], seed, part)
        va, vb = a[fa], b[fb]
        n = [int(va.size), int(vb.size)]
        if va.size < 2 or vb.size < 2:
            return cls.not_judged(
                what, "too few items to judge", n=n, part=part,
                a=float(va.mean()) if va.size else None,
                b=float(vb.mean()) if vb.size else None)
        lo, hi = two_sample_bootstrap_ci(va, vb, seed=seed)
        return cls(what, float(va.mean()), float(vb.mean()),
                   float(va.mean() - vb.mean()), lo, hi, bool(lo > 0.0),
                   n=n, method="unpaired", part=part)


@dataclasses.dataclass
class Claim:
    """One claim (docs/DESIGN.md §5) with its verdict and the numbers behind it.

    `evidence`: the judged comparisons (`Evidence`, or their dicts read back
    from claims.json). `reported`: numbers printed but not judged.
    `applicable` is False where the results cannot show the claim at all
    (then `reproduced` is False).
    """
    name: str
    reproduced: bool
    statement: str
    evidence: list[Evidence | Mapping] = dataclasses.field(default_factory=list)
    reported: list[dict] = dataclasses.field(default_factory=list)
    applicable: bool = True

    @property
    def verdict(self) -> str:
        return "REPRODUCED" if self.reproduced else "NOT REPRODUCED"

    def to_json(self) -> dict:
        """A dict that `json.dumps(..., allow_nan=False)` accepts."""
        return jsonable({
            "name": self.name,
            "verdict": self.verdict,
            "reproduced": bool(self.reproduced),
            "applicable": bool(self.applicable),
            "statement": self.statement,
            "evidence": self.evidence,
            "reported": self.reported,
        })


def not_applicable(name: str, claim_text: str, why: str,
                   reported: list[dict] | None = None) -> Claim:
    """A claim the results cannot show: NOT REPRODUCED, with the reason."""
    return Claim(name, False, f"{claim_text} Not applicable: {why}",
                 [], list(reported or []), applicable=False)


def verdict_from(name: str, claim_text: str, evidence: list[Evidence],
                 reported: list[dict]) -> Claim:
    """REPRODUCED when there is evidence and every comparison holds."""
    n_hold = sum(bool(e["holds"]) for e in evidence)
    ok = bool(evidence) and n_hold == len(evidence)
    return Claim(name, ok,
                 f"{claim_text} {n_hold}/{len(evidence)} comparisons hold.",
                 evidence, reported)


def claims_to_json(claims: Sequence[Claim]) -> str:
    """Strict JSON text of a list of claims."""
    return json.dumps([c.to_json() for c in claims], indent=1, allow_nan=False)
