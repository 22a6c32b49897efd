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

from simclr_controlled.claims.statistics import (Draw, constant_draws,
                                                 item_draws,
                                                 paired_bootstrap_ci,
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
# Kept for pooling over seeds (`claims.seeds`), never written.
_HIDDEN = ("side", "draw")
# The claimed side of the difference a - b: "above" zero (A > B), "below"
# (A < B) or "not_above" (A is not > B; D3 (b)).
SIDES = ("above", "below", "not_above")


def _mean_last(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=-1)


def _two_sample_draws(a: np.ndarray, b: np.ndarray) -> Draw:
    def draw(rng: np.random.Generator, n_resamples: int) -> np.ndarray:
        ia = rng.integers(0, a.size, size=(int(n_resamples), a.size))
        ib = rng.integers(0, b.size, size=(int(n_resamples), b.size))
        return a[ia].mean(axis=1) - b[ib].mean(axis=1)
    return draw


def holds_on_side(side: str, diff: float | None, ci_lo: float | None,
                  ci_hi: float | None) -> bool:
    """Whether a comparison holds: its interval (or, without one, its
    difference) lies entirely on the claimed `side` of zero."""
    if ci_lo is None and ci_hi is None:
        if diff is None or not np.isfinite(diff):
            return False
        lo = hi = float(diff)
    else:
        lo, hi = float(ci_lo), float(ci_hi)
    if side == "above":
        return bool(lo > 0.0)
    if side == "below":
        return bool(hi < 0.0)
    if side == "not_above":
        return bool(hi <= 0.0)
    raise UsageError(f"side: allowed: {', '.join(SIDES)}, got {side!r}")


@dataclasses.dataclass(frozen=True, eq=False)
class Evidence(Mapping):
    """One judged comparison "A > B": its means, difference, 95% CI, verdict.

    Read like the dict it is written as (``e["holds"]``, ``e.get("n")``):
    the seven first keys always, then each optional field that is not None,
    in field order. CI keys are None for single-number comparisons (D1-D3).
    `n`: references compared, or ``[n_a, n_b]`` when unpaired; `held_in`:
    "k of n seeds" of a pooled comparison. Not in the mapping: `side` (the
    claimed side of a - b, `SIDES`) and `draw` (the item-resampled
    difference, `claims.statistics.Draw`; None when not judged), which
    `claims.seeds` pools over seeds.
    """
    what: str
    a: Any
    b: Any
    diff: float | None
    ci_lo: float | None
    ci_hi: float | None
    holds: bool
    n: int | list[int] | None = None
    method: str | None = None
    part: str | None = None
    held_in: str | None = None
    side: str = dataclasses.field(default="above", repr=False)
    draw: Draw | None = dataclasses.field(default=None, repr=False)

    def __iter__(self) -> Iterator[str]:
        for f in dataclasses.fields(self):
            if f.name in _HIDDEN:
                continue
            if f.name in _ALWAYS or getattr(self, f.name) is not None:
                yield f.name

    def __getitem__(self, key: str) -> Any:
        if key in _ALWAYS or (key in self.__dataclass_fields__ and key not in _HIDDEN
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
    def single(cls, what: str, a: float, b: float, side: str = "above",
               part: str | None = None) -> Evidence:
        """Single numbers (best validation accuracies): no interval; holds
        when a - b is strictly on `side` (strict above/below; not_above: <= 0)."""
        diff = float(a) - float(b)
        return cls(what, float(a), float(b), diff, None, None,
                   holds_on_side(side, diff, None, None), part=part, side=side,
                   draw=constant_draws(diff))

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
                   part=part, draw=item_draws(_mean_last, [diff]))

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
                   n=n, method="unpaired", part=part,
                   draw=_two_sample_draws(va, vb))


@dataclasses.dataclass
class Claim:
    """One claim (docs/DESIGN.md §5) with its verdict and the numbers behind it.

    `evidence`: the judged comparisons (`Evidence`, or their dicts read back
    from claims.json). `reported`: numbers printed but not judged.
    `applicable` is False where the results cannot show the claim at all
    (then `reproduced` is False). `text`: the claim itself, before the
    counts `statement` adds. `seeds`: the replicates judged (None: not
    said); `held_in`: for a claim pooled over seeds, in how many of them
    the claim holds on its own (None otherwise).
    """
    name: str
    reproduced: bool
    statement: str
    evidence: list[Evidence | Mapping] = dataclasses.field(default_factory=list)
    reported: list[dict] = dataclasses.field(default_factory=list)
    applicable: bool = True
    text: str = ""
    seeds: list[int] | None = None
    held_in: int | None = None

    @property
    def verdict(self) -> str:
        return "REPRODUCED" if self.reproduced else "NOT REPRODUCED"

    @property
    def label(self) -> str:
        """The verdict as printed: pooled with k of n, or marked one seed."""
        if self.held_in is not None and self.seeds:
            return f"pooled {self.verdict}, held in {self.held_in} of {len(self.seeds)} seeds"
        if self.seeds is not None and len(self.seeds) == 1:
            return f"{self.verdict} (one seed: {self.seeds[0]})"
        return self.verdict

    def to_json(self) -> dict:
        """A dict that `json.dumps(..., allow_nan=False)` accepts."""
        return jsonable({
            "name": self.name,
            "verdict": self.verdict,
            "label": self.label,
            "reproduced": bool(self.reproduced),
            "applicable": bool(self.applicable),
            "seeds": self.seeds,
            "held_in": self.held_in,
            "statement": self.statement,
            "evidence": self.evidence,
            "reported": self.reported,
        })


def not_applicable(name: str, claim_text: str, why: str,
                   reported: list[dict] | None = None) -> Claim:
    """A claim the results cannot show: NOT REPRODUCED, with the reason."""
    return Claim(name, False, f"{claim_text} Not applicable: {why}",
                 [], list(reported or []), applicable=False, text=claim_text)


def _parts_summary(evidence: Sequence[Mapping]) -> str:
    parts = []
    for e in evidence:
        if e.get("part") and e["part"] not in parts:
            parts.append(e["part"])
    if len(parts) < 2:
        return ""
    held = [f"({p}) {'holds' if all(e['holds'] for e in evidence if e.get('part') == p) else 'does not hold'}"
            for p in parts]
    return " " + "; ".join(held) + "."


def verdict_from(name: str, claim_text: str, evidence: list[Evidence],
                 reported: list[dict]) -> Claim:
    """REPRODUCED when there is evidence and every comparison holds.

    The statement adds, to the claim's text, whether each part holds (when
    the comparisons name two or more parts) and how many comparisons hold.
    """
    n_hold = sum(bool(e["holds"]) for e in evidence)
    ok = bool(evidence) and n_hold == len(evidence)
    return Claim(name, ok,
                 f"{claim_text}{_parts_summary(evidence)} {n_hold}/{len(evidence)} comparisons hold.",
                 evidence, reported, text=claim_text)


def claims_to_json(claims: Sequence[Claim]) -> str:
    """Strict JSON text of a list of claims."""
    return json.dumps([c.to_json() for c in claims], indent=1, allow_nan=False)
