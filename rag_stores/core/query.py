"""What a search asks of a backend, independent of engine and framework."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from embedders.sparse import SparseVector

from .filters import Node

Mode = Literal["dense", "sparse", "hybrid", "mmr", "recommend", "discover"]
# rag_stores.core.fusion says what each means; "ranked" = "rrf", "relative_score" = "convex".
Fusion = Literal["rrf", "dbsf", "convex", "ranked", "relative_score"]
RecommendStrategy = Literal["average_vector", "best_score", "sum_scores"]
# A recommend/discover example: a stored user id, or a dense vector.
Example = str | list[float]
# The record text in `Query.query_properties` (any other name is a metadata key).
TEXT_FIELD = "text"
_BOOST = re.compile(r"\^(\d+(?:\.\d*)?|\.\d+)$")


@dataclass
class Query:
    """One search. Fields that a mode does not use are ignored by it.

    - dense: `vector`; sparse: `sparse` (and `text`, for engines that index text themselves);
      hybrid: `vector` + `sparse`/`text`, fused by `fusion`, `alpha` = weight of the dense
      branch (1 = dense only, 0 = keyword only; None = equal), `prefetch_k` candidates per
      branch (None: the engine's default), `rrf_k` the RRF constant (None: 60); the
      formulas and where each runs are in `rag_stores.core.fusion`.
    - mmr: `vector`, `fetch_k` candidates, `lambda_mult` (1 = pure relevance, 0 = max diversity).
    - recommend: `positive` / `negative` examples with `strategy`.
    - discover: `target` plus `context` pairs (positive, negative).
    - `group_by` (a metadata key) with `group_size`: grouped search, `k` = number of groups.
    - `query_properties`: the fields keyword search (sparse, hybrid) reads: "text" (the record
      text) or metadata keys, each optionally boosted Weaviate-style ("title^2"); None = the
      text only. Engines that keep one keyword index of the text refuse other fields
      (`text_only`).
    """

    mode: Mode = "dense"
    k: int = 4
    vector: list[float] | None = None
    sparse: SparseVector | None = None
    text: str | None = None
    # Keyword matching: "and" = every query term must occur, "or" = any; None: engine default.
    operator: Literal["and", "or"] | None = None
    filter: Node | Any | None = None  # a filter tree, or a native engine filter passed through
    score_threshold: float | None = None
    offset: int = 0
    with_vectors: bool = False
    fusion: Fusion = "rrf"
    alpha: float | None = None
    prefetch_k: int | None = None
    rrf_k: int | None = None
    fetch_k: int = 20
    lambda_mult: float = 0.5
    positive: list[Example] = field(default_factory=list)
    negative: list[Example] = field(default_factory=list)
    strategy: RecommendStrategy = "average_vector"
    target: Example | None = None
    context: list[tuple[Example, Example]] = field(default_factory=list)
    group_by: str | None = None
    group_size: int = 1
    query_properties: list[str] | None = None  # e.g. ["text", "title^2"]; None: text only
    # Read consistency of this query, in the engine's terms (Qdrant: an int or "majority" /
    # "quorum" / "all"); None: the store's setting.
    consistency: Any = None
    # Qdrant's search parameters of this query (a `models.SearchParams` or its dict: hnsw_ef,
    # exact, quantization, ...); None: the store's `exact=` / `hnsw_ef=`.
    search_params: Any = None
    # Qdrant custom sharding: the shard key selector of this query; None: the store's.
    shard_key: Any = None

    def __post_init__(self) -> None:
        for name, low in (("k", 1), ("offset", 0), ("fetch_k", 1), ("group_size", 1),
                          ("prefetch_k", 1)):
            value = getattr(self, name)
            if (value is not None or name != "prefetch_k") and (
                    not isinstance(value, int) or isinstance(value, bool) or value < low):
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        for name in ("lambda_mult", "alpha", "score_threshold"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int | float)
                                      or isinstance(value, bool) or not math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if not 0.0 <= self.lambda_mult <= 1.0:
            raise ValueError(f"lambda_mult must be in [0, 1], got {self.lambda_mult}")
        if self.alpha is not None and not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.prefetch_k is not None and self.prefetch_k < 1:
            raise ValueError(f"prefetch_k must be >= 1, got {self.prefetch_k}")
        if self.rrf_k is not None and (not isinstance(self.rrf_k, int) or self.rrf_k < 1):
            raise ValueError(f"rrf_k must be an int >= 1, got {self.rrf_k!r}")
        check_query_properties(self.query_properties)


def check_query_properties(fields: Any) -> None:
    """ValueError unless `fields` is None or a non-empty list of field names."""
    if fields is not None and (isinstance(fields, str) or not fields or not all(
            isinstance(f, str) and split_boost(f)[0] for f in fields)):
        raise ValueError("query_properties must be a non-empty list of field names (\"text\" "
                         f"or metadata keys, e.g. [\"text\", \"title^2\"]), got {fields!r}")


def split_boost(name: str) -> tuple[str, str]:
    """("title", "^2") for "title^2"; (name, "") when it ends in no numeric boost."""
    match = _BOOST.search(name)
    return (name, "") if match is None else (name[:match.start()], match.group(0))


def check_query_vector(query: Query, dim: int | None, collection: str) -> None:
    """The query vector and vector examples hold finite numbers (Qdrant refuses NaN and
    infinities, Weaviate would rank by them) and have the collection's size (an engine would
    fail with a shape error, or search with a truncated vector). Both backends call this
    before any search request."""
    named: list[tuple[str, Any]] = [("vector", query.vector), ("target", query.target),
                                    *((f"positive[{i}]", e) for i, e in enumerate(query.positive)),
                                    *((f"negative[{i}]", e) for i, e in enumerate(query.negative)),
                                    *((f"context[{i}][{j}]", e) for i, pair in
                                      enumerate(query.context) for j, e in enumerate(pair))]
    for name, vector in named:
        if vector is None or isinstance(vector, str):
            continue  # no vector, or a stored id
        if not _all_finite(vector):
            bad = next(i for i, x in enumerate(vector) if not _all_finite([x]))
            raise ValueError(f"query {name} must hold finite numbers; element {bad} is "
                             f"{vector[bad]!r}")
        if dim is not None and len(vector) != dim:
            raise ValueError(f"the query vector has {len(vector)} dimensions; collection "
                             f"{collection!r} holds {dim}-dim vectors")


def _all_finite(vector: Any) -> bool:
    try:
        return all(map(math.isfinite, vector))
    except TypeError:  # not numbers
        return False


def text_only(query: Query, engine: str = "this backend") -> None:
    """Refuse keyword search over anything but the text, for engines whose keyword index is
    one sparse vector of the text (Qdrant). A boost on the text alone changes no order."""
    fields = query.query_properties or []
    others = [f for f in fields if split_boost(f)[0] != TEXT_FIELD]
    if others and query.mode in ("sparse", "hybrid"):
        raise UnsupportedError(
            f"{engine} keyword search reads the text only (one sparse vector per record), not "
            f"metadata fields {others}: use Weaviate with searchable_keys=, or put the words "
            "in the text")


class UnsupportedError(NotImplementedError):
    """The engine cannot do what was asked (said plainly instead of doing something else)."""


class CollectionNotFoundError(LookupError):
    """A read or delete on a collection that does not exist."""


class StorageLockedError(RuntimeError):
    """An embedded store's folder is held by another writer (the message names both)."""
