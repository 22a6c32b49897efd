"""Text output of the claims and of the invariance table (Sec. 3).

Works on `Claim`s as checked and on those rebuilt from claims.json, whose
evidence is plain dicts.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from simclr_controlled.claims.evidence import Claim


def _num(x: Any) -> str:
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return "nan" if math.isnan(x) else f"{x:.4f}"
    if x is None:
        return "-"
    return str(x)


def _format_comparison(e: Mapping) -> str:
    extra = {k: v for k, v in e.items()
             if k not in ("what", "a", "b", "diff", "ci_lo", "ci_hi", "holds", "part")}
    tail = "  ".join(f"{k}={_num(v)}" for k, v in extra.items())
    verdict = "holds" if e.get("holds") else "FAILS"
    numeric = all(isinstance(e.get(k), (int, float, np.number)) or e.get(k) is None
                  for k in ("a", "b"))
    if not numeric:
        return (f"  [{verdict}] {e['what']}\n      a: {_num(e.get('a'))}\n"
                f"      b: {_num(e.get('b'))}" + (f"\n      {tail}" if tail else ""))
    ci = ""
    if e.get("ci_lo") is not None or e.get("ci_hi") is not None:
        ci = f"  95% CI [{_num(e.get('ci_lo'))}, {_num(e.get('ci_hi'))}]"
    return (f"  [{verdict}] {e['what']}: a={_num(e.get('a'))} "
            f"b={_num(e.get('b'))} diff={_num(e.get('diff'))}{ci}"
            + (f"  {tail}" if tail else ""))


def _format_reported(r: Mapping) -> str:
    body = "  ".join(f"{k}={_num(v)}" for k, v in r.items() if k != "what")
    return f"  (reported) {r.get('what', '')}: {body}"


def format_table(claims: Sequence[Claim]) -> str:
    """One block per claim: name, verdict, statement, every comparison with
    its numbers (a, b, diff = a - b, 95% CI), then the reported numbers."""
    blocks = []
    for c in claims:
        head = f"{c.name}: {c.label}" + ("" if c.applicable else " (not applicable)")
        lines = ["=" * 78, head, f"  {c.statement}"]
        lines += [_format_comparison(e) for e in c.evidence]
        lines += [_format_reported(r) for r in c.reported]
        blocks.append("\n".join(lines))
    return "\n".join(blocks) + ("\n" if blocks else "")


def format_invariance_table(table: Mapping[str, Mapping[str, Any]]) -> str:
    """Text table of `invariance_table` (rows models, columns factors), or
    of `invariance_over_seeds` (each cell the mean and its 95% interval)."""
    factors = []
    for row in table.values():
        factors += [f for f in row if f not in factors]
    over_seeds = any(isinstance(v, Mapping) for row in table.values() for v in row.values())
    w = 26 if over_seeds else 11

    def cell(v: Any) -> str:
        if isinstance(v, Mapping):
            return f"{v['mean']:+.4f} [{_num(v['ci_lo'])}, {_num(v['ci_hi'])}]"
        return f"{v:+.4f}"

    title = "decodability at head_input minus at head_out"
    lines = [title + (" (mean over seeds [95% interval])" if over_seeds else ""),
             f"{'model':<14}" + "".join(f"{f:>{w}}" for f in factors)]
    for m, row in table.items():
        lines.append(f"{m:<14}" + "".join(
            f"{cell(row[f]):>{w}}" if f in row else f"{'-':>{w}}" for f in factors))
    return "\n".join(lines)
