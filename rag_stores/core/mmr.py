"""Maximal marginal relevance, for engines without a server-side MMR (Weaviate)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def mmr_select(query: Sequence[float], candidates: Sequence[Sequence[float]], k: int,
               lambda_mult: float) -> list[int]:
    """Indices of `candidates` picked by MMR with cosine similarity.

    lambda_mult = 1 ranks by relevance only; 0 picks for diversity only (after the first).
    """
    if not len(candidates) or k <= 0:
        return []
    cand = np.asarray(candidates, dtype=np.float64)
    cand /= np.linalg.norm(cand, axis=1, keepdims=True).clip(min=1e-12)
    q = np.asarray(query, dtype=np.float64)
    q /= max(float(np.linalg.norm(q)), 1e-12)
    relevance = cand @ q
    pairwise = cand @ cand.T
    chosen = [int(np.argmax(relevance))]
    while len(chosen) < min(k, len(cand)):
        redundancy = pairwise[:, chosen].max(axis=1)
        score = lambda_mult * relevance - (1 - lambda_mult) * redundancy
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    return chosen
