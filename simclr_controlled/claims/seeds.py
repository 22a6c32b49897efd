"""Claims judged over replicates (docs/DESIGN.md §5 "Across seeds").

A seed fixes one replicate of an experiment. Each claim is judged per seed
(the checks of `hierarchy` and `dsprites`, as for one seed) and pooled: every
comparison's statistic under a two-level bootstrap (seeds resampled with
replacement, then items within each drawn seed; 1,000 resamples, seeded),
holding when its pooled interval lies entirely on the claimed side. The
pooled point values are means over seeds. A pooled claim is REPRODUCED when
every pooled comparison holds, and says in how many seeds the claim holds
on its own.

Decisions: a comparison that some seed lacks or could not judge (too few
items) is not pooled and does not hold; a claim not applicable in any seed
is not applicable pooled. Comparisons without items (decodability, D1-D3)
have constant draws, so their pooled interval is the seed bootstrap alone.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from simclr_controlled.claims.evidence import (Claim, Evidence, holds_on_side,
                                               not_applicable, verdict_from)
from simclr_controlled.claims.statistics import two_level_bootstrap_ci
from simclr_controlled.errors import UsageError


def pool_evidence(what: str, per_seed: Sequence[Evidence | None], seed: int = 0) -> Evidence:
    """One comparison over seeds (None: a seed lacks it)."""
    n = len(per_seed)
    judged = [e for e in per_seed if e is not None and e.draw is not None]
    part = next((e.part for e in per_seed if e is not None), None)
    if len(judged) < n:
        return Evidence.not_judged(what, f"judged in {len(judged)} of {n} seeds only; not pooled",
                                   part=part)
    sides = {e.side for e in judged}
    if len(sides) != 1:
        raise UsageError(f"{what}: the seeds claim different sides {sorted(sides)}")
    side = sides.pop()
    lo, hi = two_level_bootstrap_ci([e.draw for e in judged], seed=seed)
    diff = float(np.mean([e.diff for e in judged]))
    held = sum(bool(e.holds) for e in judged)
    return Evidence(what, float(np.mean([e.a for e in judged])), float(np.mean([e.b for e in judged])),
                    diff, lo, hi, holds_on_side(side, diff, lo, hi),
                    method=f"two-level bootstrap over {n} seeds", part=part,
                    held_in=f"{held} of {n} seeds", side=side)


def _ordered_whats(claims: Sequence[Claim]) -> list[str]:
    whats: list[str] = []
    seen = set()
    for c in claims:
        for e in c.evidence:
            if e["what"] not in seen:
                seen.add(e["what"])
                whats.append(e["what"])
    return whats


def pool_claim(per_seed: Mapping[int, Claim], seed: int = 0) -> Claim:
    """One claim over seeds: `per_seed` maps each seed to its own `Claim`
    (as checked, with `Evidence` records)."""
    if not per_seed:
        raise UsageError("per_seed: need the claim of at least one seed, got none")
    seeds = sorted(per_seed)
    claims = [per_seed[s] for s in seeds]
    name = claims[0].name
    held_in = sum(bool(c.reproduced) for c in claims)
    verdicts = {"what": "per seed", **{f"seed {s}": per_seed[s].verdict for s in seeds}}
    not_app = [s for s in seeds if not per_seed[s].applicable]
    if not_app:
        pooled = not_applicable(name, claims[0].text,
                                f"not applicable in seed(s) {', '.join(map(str, not_app))}.",
                                [verdicts])
    else:
        by_what = [{e["what"]: e for e in c.evidence} for c in claims]
        evidence = [pool_evidence(w, [d.get(w) for d in by_what], seed)
                    for w in _ordered_whats(claims)]
        pooled = verdict_from(name, claims[0].text, evidence, [verdicts])
        pooled.statement += f" Pooled over {len(seeds)} seeds; the claim holds on its own in {held_in}."
    pooled.seeds, pooled.held_in = seeds, held_in
    return pooled


def pool_claims(per_seed: Mapping[int, Sequence[Claim]], seed: int = 0) -> list[Claim]:
    """Every claim over seeds, in the order of the checks; `seed` seeds the
    bootstrap (every comparison draws with the same seed)."""
    if not per_seed:
        raise UsageError("per_seed: need the claims of at least one seed, got none")
    seeds = sorted(per_seed)
    names = [c.name for c in per_seed[seeds[0]]]
    for s in seeds:
        if [c.name for c in per_seed[s]] != names:
            raise UsageError(f"seed {s}: its claims {[c.name for c in per_seed[s]]} differ from "
                             f"seed {seeds[0]}'s {names}")
    return [pool_claim({s: per_seed[s][i] for s in seeds}, seed) for i in range(len(names))]
