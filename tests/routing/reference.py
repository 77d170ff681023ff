"""Plain-Python reference of the routing policies, written from docs/method.md.

Deliberately naive and independent of ``lynx.routing``: Python lists and loops, exact
``fractions.Fraction`` arithmetic for LYNX's bins and votes, no torch. Inputs are the
logits of the *valid* tokens only (lists of floats); outputs are each token's experts,
best first, plus float64 weights.
"""

from __future__ import annotations

import math
from fractions import Fraction


def ranking(z: list[float]) -> list[int]:
    """Experts by descending logit; equal logits: lower index first."""
    return sorted(range(len(z)), key=lambda e: (-z[e], e))


def topk_reference(rows: list[list[float]], k: int) -> list[list[int]]:
    return [ranking(z)[:k] for z in rows]


def lynx_reference(rows: list[list[float]], k: int, alpha: float, beta: int) -> list[list[int]]:
    """LYNX (AffinityBinning) over one batch of valid tokens."""
    batch = len(rows)
    if batch == 0:
        return []
    n = len(rows[0])
    a = Fraction(alpha)
    # 1-2. affinity and bins, exactly
    bins = []
    for z in rows:
        top = Fraction(max(z))
        bins.append([max(math.ceil(a * (Fraction(v) - top)), -beta) for v in z])
    # 3. votes h = B**q and batch score s
    votes = [[Fraction(batch) ** q for q in row] for row in bins]
    s = [sum(votes[t][e] for t in range(batch)) for e in range(n)]
    # 4-5. preference m, each token's top-k of m (ties -> the token's own ranking), union A
    active: set[int] = set()
    for t, z in enumerate(rows):
        m = [bins[t][e] + (s[e] - votes[t][e]) / batch for e in range(n)]
        own = ranking(z)
        active.update(sorted(range(n), key=lambda e: (-m[e], own.index(e)))[:k])
    # 6. remap: top-k of the original logits restricted to A
    return [[e for e in ranking(z) if e in active][:k] for z in rows]


def oea_reference(rows: list[list[float]], k: int, k0: int) -> list[list[int]]:
    """OEA, plus Lynx's fill rule for tokens that run out of experts in S."""
    ranks = [ranking(z) for z in rows]
    base: set[int] = set()
    for r in ranks:
        base.update(r[:k0])
    out = []
    for r in ranks:
        chosen = list(r[:k0])
        for e in r[k0:]:
            if len(chosen) < k and e in base:
                chosen.append(e)
        for e in r[k0:]:  # fill: own next-best experts outside S
            if len(chosen) < k and e not in chosen:
                chosen.append(e)
        out.append(sorted(chosen, key=r.index))
    return out


def scores_reference(z: list[float], scoring: str) -> list[float]:
    if scoring == "sigmoid":
        return [1.0 / (1.0 + math.exp(-v)) for v in z]
    top = max(z)
    ex = [math.exp(v - top) for v in z]
    total = sum(ex)
    return [v / total for v in ex]


def weights_reference(
    z: list[float], chosen: list[int], k: int, scoring: str, renormalize: bool
) -> list[float]:
    p = scores_reference(z, scoring)
    w = [p[e] for e in chosen]
    target = 1.0 if renormalize else sum(p[e] for e in ranking(z)[:k])
    return [v * target / sum(w) for v in w]


def distinct_experts(choices: list[list[int]]) -> int:
    return len({e for row in choices for e in row})
