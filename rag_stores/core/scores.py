"""What a score means, and how it maps to LangChain's relevance in [0, 1].

Contract for every backend: `Hit.score` is higher-is-better in every mode.
- dense, cosine: cosine similarity in [-1, 1]; dot: the dot product;
  euclid / manhattan: the negated distance (the distance itself is in `Hit.extra["distance"]`).
- sparse (BM25): the BM25 score, >= 0, unbounded.
- hybrid: the fused score (RRF: sum of weighted 1/(k + rank); DBSF and Weaviate's
  fusions: normalised sums), >= 0.
- mmr, recommend, discover: the engine's similarity score of the chosen point
  (Qdrant's discover score counts satisfied context pairs first).
"""

from __future__ import annotations

import math

DISTANCES = ("cosine", "dot", "euclid", "manhattan")


def relevance_score(score: float, mode: str, distance: str) -> float:
    """Map a raw `Hit.score` to [0, 1], monotonically (higher stays higher)."""
    if mode in ("dense", "mmr", "recommend"):
        if distance == "cosine":
            return min(1.0, max(0.0, (1.0 + score) / 2.0))
        if distance == "dot":
            return 1.0 / (1.0 + math.exp(-score))
        return 1.0 / (1.0 - score)  # score = -distance
    # sparse, hybrid, discover: non-negative unbounded scores
    score = max(score, 0.0)
    return score / (1.0 + score)
