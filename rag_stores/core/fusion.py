"""Hybrid fusion, once: what each fusion means, on every engine, and the client-side version.

A hybrid search ranks two legs, dense (the query vector) and keyword (BM25), each
`prefetch_k` candidates deep, and fuses them. `alpha` is the weight of the dense leg and
1 - alpha that of the keyword leg (1 = dense only, 0 = keywords only). With r the 0-based
rank of a hit in a leg and s its raw score there, a hit scores the weighted sum over the
legs that hold it (a leg that misses it adds 0) of:

- "rrf" (alias "ranked"): 1 / (rrf_k + r), reciprocal rank fusion; rrf_k default 60.
- "dbsf": (s - (m - 3 sd)) / (6 sd), distribution-based score fusion (m, sd: mean and
  sample standard deviation of the leg's scores; 0.5 when the leg has one hit or sd = 0).
- "convex" (alias "relative_score"): (s - min) / (max - min), a convex combination of
  min-max normalised scores (Weaviate's relativeScoreFusion; 1 when max = min).

Where each runs (README: Retrievers):
- Qdrant server and local mode: server-side, every fusion but "convex": each leg is fused
  alone (a prefetch over the leg with the fusion's query, which normalises that leg), then a
  formula query sums alpha * $score[0] + (1 - alpha) * $score[1]. Qdrant's own weighted RRF
  (`Rrf(weights=...)`) scores 1 / ((r + 1) / w + k - 1), not w / (k + r), so it is not used.
- Weaviate: server-side `hybrid` for "rrf" with rrf_k 60 (rankedFusion's constant is fixed
  at 60: usecases/traverser/hybrid/hybrid_fusion.go) and "convex" (relativeScoreFusion),
  when `prefetch_k` is None (each leg is then max(QUERY_HYBRID_MAXIMUM_RESULTS, limit) deep:
  100 by default, a server setting). Other settings: client-side.
- Client-side (`fuse`): both legs are fetched, `prefetch_k` deep each, and fused here, by the
  backend's own search plan (Weaviate: "dbsf", another rrf_k, a chosen depth; Qdrant:
  "convex"; Qdrant Edge, which has no formula queries: every fusion).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from .records import Hit

FusionName = Literal["rrf", "dbsf", "convex"]
# Accepted names -> the fusion they mean.
FUSION_ALIASES: dict[str, FusionName] = {"rrf": "rrf", "ranked": "rrf", "dbsf": "dbsf",
                                         "convex": "convex", "relative_score": "convex"}
DEFAULT_RRF_K = 60
# Candidates per leg when a query names none (retrievers send theirs explicitly).
DEFAULT_PREFETCH_K = 200


def canonical(fusion: str) -> FusionName:
    """The fusion a name means ("ranked" -> "rrf", "relative_score" -> "convex")."""
    try:
        return FUSION_ALIASES[fusion]
    except KeyError:
        raise ValueError(f"fusion must be one of {sorted(FUSION_ALIASES)}, got {fusion!r}") from None


def leg_depth(prefetch_k: int | None, k: int, offset: int = 0) -> int:
    """Candidates per leg: `prefetch_k` (default DEFAULT_PREFETCH_K), at least k + offset."""
    return max(prefetch_k or DEFAULT_PREFETCH_K, k + offset)


def weights(alpha: float | None) -> tuple[float, float]:
    """(dense weight, keyword weight); None = equal weights."""
    a = 0.5 if alpha is None else float(alpha)
    return a, 1.0 - a


def normalise(fusion: str, scores: Sequence[float]) -> list[float]:
    """A leg's per-hit contribution before weighting, in rank order (see module docstring)."""
    name = canonical(fusion)
    n = len(scores)
    if name == "rrf":
        raise ValueError("rrf works on ranks; use rrf_terms")
    if n == 0:
        return []
    if name == "dbsf":
        if n == 1:
            return [0.5]
        mean = sum(scores) / n
        sd = math.sqrt(sum((s - mean) ** 2 for s in scores) / (n - 1))
        if sd == 0:
            return [0.5] * n
        low = mean - 3 * sd
        return [(s - low) / (6 * sd) for s in scores]
    lo, hi = min(scores), max(scores)
    if hi == lo:
        return [1.0] * n
    return [(s - lo) / (hi - lo) for s in scores]


def fuse(dense: Sequence[Hit], keyword: Sequence[Hit], *, fusion: str = "rrf",
         alpha: float | None = None, rrf_k: int | None = None) -> list[Hit]:
    """Client-side fusion of two ranked legs (best first); hits keyed by record id.

    Returns every hit of either leg, best fused score first (ties: the dense leg's order,
    then the keyword leg's), each a `Hit` carrying the fused score and, in `extra`, the
    per-leg ranks and raw scores ("dense_rank", "keyword_rank", "dense_score",
    "keyword_score") and "fusion": "client".
    """
    name = canonical(fusion)
    k = DEFAULT_RRF_K if rrf_k is None else rrf_k
    if k < 1:
        raise ValueError(f"rrf_k must be >= 1, got {k}")
    w = weights(alpha)
    fused: dict[str, float] = {}
    first: dict[str, Hit] = {}
    extra: dict[str, dict[str, float]] = {}
    for leg_name, weight, leg in (("dense", w[0], dense), ("keyword", w[1], keyword)):
        if name == "rrf":
            terms = [1.0 / (k + r) for r in range(len(leg))]
        else:
            terms = normalise(name, [h.score for h in leg])
        seen: set[str] = set()
        for rank, (hit, term) in enumerate(zip(leg, terms, strict=True)):
            key = hit.record.id
            if key in seen:  # a leg lists a record once; keep its best rank
                continue
            seen.add(key)
            first.setdefault(key, hit)
            fused[key] = fused.get(key, 0.0) + weight * term
            info = extra.setdefault(key, {})
            info[f"{leg_name}_rank"] = rank
            info[f"{leg_name}_score"] = hit.score
    order = {key: i for i, key in enumerate(first)}
    ranked = sorted(fused, key=lambda key: (-fused[key], order[key]))
    return [Hit(first[key].record, fused[key],
                {**first[key].extra, **extra[key], "fusion": "client"}) for key in ranked]


def window(hits: list[Hit], k: int, offset: int = 0,
           score_threshold: float | None = None) -> list[Hit]:
    """The page a query asked for, after a client-side fusion."""
    if score_threshold is not None:
        hits = [h for h in hits if h.score >= score_threshold]
    return hits[offset:offset + k]
