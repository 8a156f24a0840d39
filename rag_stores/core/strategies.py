"""Retrieval strategies, once, free of any framework.

A strategy is a small dataclass of settings (`Hybrid`, `BM25`, `MMR`, `Recommend`,
`Discover`, `Grouped`, and plain `Dense`). `strategy.plan(text)` is a generator that
yields the steps it needs, `("dense", text)`, `("sparse", text)`, `("search", Query)` or
`("groups", Query)`, and returns the ranked hits. `run` drives a plan with sync calls,
`arun` with async ones, against anything with the `Engine` methods; the LangChain and
LlamaIndex faces only supply such an engine (their store + their embedding model), so
every strategy behaves the same in both frameworks and on both backends.

Settings mean the same on both engines (the formulas: `rag_stores.core.fusion`):
- hybrid `fusion`: "rrf" (reciprocal rank fusion, constant `rrf_k`, default 60), "dbsf"
  (distribution-based score fusion) or "convex" (min-max normalised scores, Weaviate's
  relativeScoreFusion); "ranked" and "relative_score" are the Weaviate names of the first
  and the last. `alpha` is the weight of the dense leg, 1 - alpha that of the keyword leg
  (1 = dense only, 0 = keywords only; None = the fusion's measured default, DEFAULT_ALPHAS).
  `prefetch_limit` (alias `prefetch_k`) is how many candidates each leg contributes
  (default DEFAULT_PREFETCH_LIMIT, at least k; None = the engine's own depth). Qdrant fuses
  server-side (per-leg fusion + a formula query), except "convex" and on Qdrant Edge;
  Weaviate's `hybrid` fuses "rrf" with rrf_k 60 and "convex" when prefetch_limit is None;
  everything else is fused client-side by the backend (both legs fetched, then
  `core.fusion.fuse`), with the same results.
- `reranker` (Dense, BM25, Hybrid): a second stage over the best `rerank_candidates` hits,
  a `embedders.rerank.Reranker` or any callable (query, texts) -> scores; hits come back in
  the reranker's order with its score.
- BM25 is the engine's: Qdrant scores FastEmbed BM25 sparse vectors (stopwords and
  stemming of the encoder's language, avg_len fitted to the collection: embedders.sparse_fit)
  with IDF; Weaviate uses its own BM25 index (English stopwords, no stemming). `operator="and"`
  needs every query term in a hit: Weaviate applies it in the index; on Qdrant it is
  applied here, client-side, to the best `fetch_k` keyword candidates.
- `query_properties` (BM25 and hybrid): the fields keywords are matched in, "text" and
  metadata keys, with Weaviate boosts ("title^2"); None = the text. Weaviate only, for keys
  declared with `WeaviateBackend(searchable_keys=...)`; Qdrant's keyword index is one sparse
  vector of the text, so it refuses any field but "text" (UnsupportedError).
- `score_threshold` compares with the engine's raw score (README: Scores): for hybrid
  that is the fused score, whose scale depends on the engine and the fusion.

Defaults (DEFAULT_FUSION, DEFAULT_ALPHAS, DEFAULT_PREFETCH_LIMIT, DEFAULT_RRF_K) were
chosen with benchmarks/bench_quality.py on one half of CISI's judged queries (the tuning
half) and checked on the other (the held-out half); the figures are in the README
(Benchmarks) and in `DEFAULTS_MEASURED` below.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from embedders.rerank import scores_of
from embedders.sparse import SparseVector

from .fusion import DEFAULT_RRF_K, FUSION_ALIASES, canonical
from .plans import adrive, drive
from .query import (
    Example,
    Fusion,
    Query,
    RecommendStrategy,
    UnsupportedError,
    check_query_properties,
)
from .records import Group, Hit

Operator = Literal["or", "and"]
Step = tuple[str, Any]
Plan = Generator[Step, Any, Any]

def encode_sparse(encoder: Any, text: str) -> SparseVector | None:
    """The sparse query vector, or None for engines with their own keyword index."""
    return None if encoder is None else encoder.embed_query(text)


async def aencode_sparse(encoder: Any, text: str) -> SparseVector | None:
    if encoder is None:
        return None
    if hasattr(encoder, "aembed_query"):
        return await encoder.aembed_query(text)
    return await asyncio.to_thread(encoder.embed_query, text)


# Hybrid defaults, chosen on the tuning half of CISI (see the module docstring).
DEFAULT_FUSION: Fusion = "dbsf"
# The dense weight when alpha is None, per fusion (each the best of its sweep, tuning half).
DEFAULT_ALPHAS: dict[str, float] = {"rrf": 0.8, "dbsf": 0.7, "convex": 0.7}
DEFAULT_ALPHA = DEFAULT_ALPHAS[DEFAULT_FUSION]
DEFAULT_PREFETCH_LIMIT: int | None = 200  # candidates per leg (None: the engine's own)
DEFAULT_PREFETCH_K = DEFAULT_PREFETCH_LIMIT  # the older name
DEFAULT_RERANK_CANDIDATES = 50
# What the defaults were chosen from (benchmarks/bench_quality.py, CISI: 1,460 abstracts, 76
# judged queries split by id order into a tuning and a held-out half; nDCG@10, all / tune /
# held-out). Rule: the best mean nDCG@10 over both engines on the tuning half.
DEFAULTS_MEASURED: dict[str, dict[str, tuple[float, float, float]]] = {
    "qdrant": {"dense": (0.418, 0.475, 0.361), "bm25": (0.333, 0.385, 0.280),
               "hybrid default": (0.452, 0.511, 0.394)},
    "weaviate": {"dense": (0.418, 0.475, 0.361), "bm25": (0.340, 0.378, 0.302),
                 "hybrid default": (0.445, 0.522, 0.368)},
}

FUSIONS = tuple(FUSION_ALIASES)
STRATEGIES = ("average_vector", "best_score", "sum_scores")


class Engine(Protocol):
    """What a plan needs: embed text, and search a store (sync and async)."""

    def dense(self, text: str) -> list[float]: ...
    def sparse(self, text: str) -> SparseVector | None:
        """None when the engine indexes keywords itself (Weaviate BM25)."""
    def search(self, query: Query) -> list[Hit]: ...
    def search_groups(self, query: Query) -> list[Group]: ...
    async def adense(self, text: str) -> list[float]: ...
    async def asparse(self, text: str) -> SparseVector | None: ...
    async def asearch(self, query: Query) -> list[Hit]: ...
    async def asearch_groups(self, query: Query) -> list[Group]: ...


_STEPS = {"dense": ("dense", "adense"), "sparse": ("sparse", "asparse"),
          "search": ("search", "asearch"), "groups": ("search_groups", "asearch_groups")}


def run(plan: Plan, engine: Any) -> Any:
    """Drive a plan with the engine's sync methods (errors go back into the plan)."""
    return drive(plan, lambda step: getattr(engine, _STEPS[step[0]][0])(step[1]))


async def arun(plan: Plan, engine: Any) -> Any:
    """Drive a plan with the engine's async methods (errors go back into the plan)."""
    return await adrive(plan, lambda step: getattr(engine, _STEPS[step[0]][1])(step[1]))


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


@dataclass
class Strategy:
    """Settings every strategy shares. `filter`: a filter tree or a native engine filter."""

    k: int = 4
    filter: Any = None
    score_threshold: float | None = None

    def __post_init__(self) -> None:
        _check(isinstance(self.k, int) and self.k >= 1, f"k must be an int >= 1, got {self.k!r}")

    def with_options(self, **options: Any) -> Any:
        """A copy with some settings changed (per-call options); unknown names are an error."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no option(s) {unknown}; "
                            f"known: {sorted(names)}")
        return dataclasses.replace(self, **options)

    def _base(self) -> dict[str, Any]:
        return {"k": self.k, "filter": self.filter, "score_threshold": self.score_threshold}

    def build(self, text: str) -> Plan:
        """Yield embedding steps, return the `Query`."""
        raise NotImplementedError
        yield  # pragma: no cover

    def fetch(self, query: Query) -> Plan:
        """Yield the search steps of a built query, return the ranked hits."""
        return (yield "search", query)

    def plan(self, text: str) -> Plan:
        """Yield embedding and search steps, return the ranked hits."""
        query = yield from self.build(text)
        return (yield from self.fetch(query))


@dataclass
class Rerankable(Strategy):
    """A strategy whose hits a second stage may reorder (`reranker`, `rerank_candidates`).

    With a reranker, the engine is asked for max(k, rerank_candidates) hits, the reranker
    scores (query, text) pairs, and the best k by its score come back, each carrying it as
    `Hit.score` (the engine's score moves to `extra["retrieval_score"]`). A reranker is a
    `embedders.rerank.Reranker` or any callable (query, texts) -> scores (higher = better).
    """

    reranker: Any = None
    rerank_candidates: int = DEFAULT_RERANK_CANDIDATES

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.reranker is None or callable(self.reranker)
               or hasattr(self.reranker, "score"),
               f"reranker must be a callable (query, texts) -> scores or a Reranker, got "
               f"{type(self.reranker).__name__}")
        _check(isinstance(self.rerank_candidates, int) and self.rerank_candidates >= 1,
               f"rerank_candidates must be an int >= 1, got {self.rerank_candidates!r}")

    def plan(self, text: str) -> Plan:
        query = yield from self.build(text)
        if self.reranker is None:
            return (yield from self.fetch(query))
        k = query.k
        query.k = max(k, self.rerank_candidates)
        hits = yield from self.fetch(query)
        return rerank_hits(self.reranker, text, hits, k)


def rerank_hits(reranker: Any, query: str, hits: list[Hit], k: int | None = None) -> list[Hit]:
    """Hits reordered by the reranker's scores (stable for ties), the best k of them."""
    if not hits:
        return []
    scores = scores_of(reranker, query, [h.record.text for h in hits])
    order = sorted(range(len(hits)), key=lambda i: -scores[i])
    out = []
    for i in order[:k]:
        hit = hits[i]
        out.append(Hit(hit.record, scores[i], {**hit.extra, "retrieval_score": hit.score,
                                               "retrieval_rank": i}))
    return out


@dataclass
class Dense(Rerankable):
    """Nearest neighbours of the query's dense vector."""

    def build(self, text: str) -> Plan:
        vector = yield "dense", text
        return Query(mode="dense", vector=vector, text=text, **self._base())


@dataclass
class BM25(Rerankable):
    """Keyword search with the engine's BM25 (module docstring: `operator`, `query_properties`)."""

    operator: Operator = "or"
    fetch_k: int = 100
    query_properties: list[str] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.operator in ("or", "and"), f"operator must be 'or' or 'and', got {self.operator!r}")
        _check(self.fetch_k >= 1, f"fetch_k must be >= 1, got {self.fetch_k}")
        check_query_properties(self.query_properties)

    def build(self, text: str) -> Plan:
        sparse = yield "sparse", text
        # Engines with their own BM25 index apply the operator; on the others, `fetch` does.
        return Query(mode="sparse", sparse=sparse, text=text, **self._base(),
                     operator=self.operator if sparse is None else None,
                     query_properties=self.query_properties)

    def client_side_and(self, query: Query) -> bool:
        return self.operator == "and" and query.sparse is not None

    def fetch(self, query: Query) -> Plan:
        if not self.client_side_and(query):  # "or", or an engine-side operator
            return (yield "search", query)
        # Qdrant: keep the candidates that hold every query term.
        assert query.sparse is not None
        terms, k = set(query.sparse.indices), query.k
        query.k, query.with_vectors = max(self.fetch_k, k), True
        hits = yield "search", query
        kept = [h for h in hits if h.record.sparse is not None
                and terms <= set(h.record.sparse.indices)][:k]
        for hit in kept:
            hit.record.vector = hit.record.sparse = None
        return kept


_UNSET: Any = object()


@dataclass
class Hybrid(Rerankable):
    """Dense + BM25, fused (module docstring; formulas in `rag_stores.core.fusion`).

    `fusion` "rrf" / "dbsf" / "convex", `alpha` the dense weight (None: DEFAULT_ALPHAS of
    the fusion), `rrf_k` the RRF constant (None: 60; "rrf" only), `prefetch_limit` the
    candidates per leg (`prefetch_k` is the same setting under its older name).
    """

    alpha: float | None = None
    fusion: Fusion = DEFAULT_FUSION
    prefetch_limit: int | None = DEFAULT_PREFETCH_LIMIT
    query_properties: list[str] | None = None
    rrf_k: int | None = None
    prefetch_k: Any = _UNSET

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.prefetch_k is not _UNSET:  # the older name of prefetch_limit
            _check(self.prefetch_limit in (DEFAULT_PREFETCH_LIMIT, self.prefetch_k),
                   "give prefetch_limit or prefetch_k (the same setting), not both")
            self.prefetch_limit = self.prefetch_k
        self.prefetch_k = _UNSET
        _check(self.alpha is None or (isinstance(self.alpha, int | float)
                                      and 0.0 <= self.alpha <= 1.0),
               f"alpha must be in [0, 1] or None, got {self.alpha!r}")
        _check(self.fusion in FUSIONS, f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        _check(self.prefetch_limit is None or (isinstance(self.prefetch_limit, int)
                                               and self.prefetch_limit >= 1),
               f"prefetch_limit must be an int >= 1 or None, got {self.prefetch_limit!r}")
        _check(self.rrf_k is None or (isinstance(self.rrf_k, int) and self.rrf_k >= 1),
               f"rrf_k must be an int >= 1 or None, got {self.rrf_k!r}")
        _check(self.rrf_k is None or canonical(self.fusion) == "rrf",
               f"rrf_k is the constant of fusion='rrf', not of {self.fusion!r}")
        check_query_properties(self.query_properties)

    def with_options(self, **options: Any) -> Any:
        if "prefetch_k" in options:  # the older name
            options["prefetch_limit"] = options.pop("prefetch_k")
        return super().with_options(**options)

    def build(self, text: str) -> Plan:
        vector = yield "dense", text
        sparse = yield "sparse", text
        return Query(mode="hybrid", vector=vector, sparse=sparse, text=text,
                     alpha=self.effective_alpha, fusion=self.fusion,
                     prefetch_k=self.prefetch_limit, rrf_k=self.effective_rrf_k,
                     query_properties=self.query_properties, **self._base())

    @property
    def effective_alpha(self) -> float:
        """The dense weight sent: alpha, or the fusion's DEFAULT_ALPHAS entry."""
        if self.alpha is not None:
            return float(self.alpha)
        return DEFAULT_ALPHAS[canonical(self.fusion)]

    @property
    def effective_rrf_k(self) -> int | None:
        """The RRF constant sent (DEFAULT_RRF_K for "rrf"; None for the other fusions)."""
        if canonical(self.fusion) != "rrf":
            return None
        return DEFAULT_RRF_K if self.rrf_k is None else self.rrf_k


@dataclass
class MMR(Strategy):
    """Maximal marginal relevance over `fetch_k` dense candidates (1 = relevance only)."""

    fetch_k: int = 20
    lambda_mult: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.fetch_k >= 1, f"fetch_k must be >= 1, got {self.fetch_k}")
        _check(0.0 <= self.lambda_mult <= 1.0, f"lambda_mult must be in [0, 1], got {self.lambda_mult}")

    def build(self, text: str) -> Plan:
        vector = yield "dense", text
        return Query(mode="mmr", vector=vector, text=text, fetch_k=self.fetch_k,
                     lambda_mult=self.lambda_mult, **self._base())


def _check_examples(name: str, examples: Sequence[Any]) -> None:
    for e in examples:
        _check(isinstance(e, str) or (isinstance(e, Sequence) and all(
            isinstance(x, int | float) for x in e)),
            f"{name} examples must be stored ids (str) or vectors (lists of floats), got {e!r}")


@dataclass
class Recommend(Strategy):
    """More like the positive examples, less like the negative ones.

    Examples are stored ids or vectors (`positive`, `negative`) or texts to embed
    (`positive_texts`, `negative_texts`); the query text is one more positive example
    unless `use_query=False`. `strategy`: Qdrant's average_vector, best_score, sum_scores
    (Weaviate: the same formulas, see the Weaviate backend; `fetch_k` candidates per
    positive example when it rescores client-side).
    """

    positive: list[Example] = field(default_factory=list)
    negative: list[Example] = field(default_factory=list)
    positive_texts: list[str] = field(default_factory=list)
    negative_texts: list[str] = field(default_factory=list)
    strategy: RecommendStrategy = "average_vector"
    use_query: bool = True
    fetch_k: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.strategy in STRATEGIES, f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        _check_examples("positive", self.positive)
        _check_examples("negative", self.negative)
        _check(self.fetch_k >= 1, f"fetch_k must be >= 1, got {self.fetch_k}")

    def build(self, text: str) -> Plan:
        positive: list[Example] = [list(e) if not isinstance(e, str) else e for e in self.positive]
        negative: list[Example] = [list(e) if not isinstance(e, str) else e for e in self.negative]
        for t in ([text] if self.use_query else []) + list(self.positive_texts):
            positive.append((yield "dense", t))
        for t in self.negative_texts:
            negative.append((yield "dense", t))
        if not positive and not negative:
            raise ValueError("recommend needs examples: positive/negative ids or vectors, "
                             "positive_texts/negative_texts, or use_query=True")
        return Query(mode="recommend", positive=positive, negative=negative, text=text,
                     strategy=self.strategy, fetch_k=self.fetch_k, **self._base())


@dataclass
class Discover(Strategy):
    """Discovery (a target constrained by context pairs) or, without target, context search.

    The target is the query text, unless `target` (a stored id or vector) is given or
    `context_only=True`. Context pairs (positive, negative) are ids or vectors
    (`context`) or texts to embed (`context_texts`). Qdrant only: Weaviate raises
    `UnsupportedError`.
    """

    target: Example | None = None
    context: list[tuple[Example, Example]] = field(default_factory=list)
    context_texts: list[tuple[str, str]] = field(default_factory=list)
    context_only: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(not (self.context_only and self.target is not None),
               "context_only=True searches without a target; do not give target= too")
        for pair in [*self.context, *self.context_texts]:
            _check(isinstance(pair, tuple | list) and len(pair) == 2,
                   f"context pairs are (positive, negative), got {pair!r}")
        _check_examples("context", [e for pair in self.context for e in pair])

    def build(self, text: str) -> Plan:
        target: Example | None = self.target
        if target is None and not self.context_only:
            target = yield "dense", text
        context: list[tuple[Example, Example]] = [(p, n) for p, n in self.context]
        for p, n in self.context_texts:
            context.append(((yield "dense", p), (yield "dense", n)))
        if target is None and not context:
            raise ValueError("context search needs context pairs (context= or context_texts=)")
        return Query(mode="discover", target=target, context=context, text=text, **self._base())


GroupSearch = Literal["similarity", "bm25", "hybrid"]


@dataclass
class Grouped(Strategy):
    """The best `k` groups of hits sharing a metadata value, `group_size` hits each.

    `search` is the strategy inside the groups (Dense, BM25 or Hybrid; its own k, filter
    and threshold are replaced by the grouped ones). Hits come out group after group, best
    group first; records without the field are left out. Engines group server-side (Qdrant
    query_points_groups, Weaviate group_by); where an engine cannot group a search mode
    (Weaviate: keyword and hybrid), the best `fetch_k` hits are grouped here instead.
    """

    group_by: str = ""
    group_size: int = 1
    search: Dense | BM25 | Hybrid = field(default_factory=Dense)
    fetch_k: int = 100

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(isinstance(self.group_by, str) and bool(self.group_by),
               "group_by must name a metadata key, e.g. group_by='source'")
        _check(self.group_size >= 1, f"group_size must be >= 1, got {self.group_size}")
        _check(self.fetch_k >= 1, f"fetch_k must be >= 1, got {self.fetch_k}")
        _check(isinstance(self.search, Dense | BM25 | Hybrid),
               f"grouped search runs Dense, BM25 or Hybrid, got {type(self.search).__name__}")
        _check(getattr(self.search, "reranker", None) is None,
               "grouped search does not rerank: rerank the hits of each group yourself")

    def build(self, text: str) -> Plan:
        inner = self.search.with_options(**self._base())
        query = yield from inner.build(text)
        query.group_by, query.group_size = self.group_by, self.group_size
        return query

    def groups(self, text: str) -> Plan:
        """Plan returning the groups themselves."""
        inner = self.search.with_options(**self._base())
        query = yield from self.build(text)
        if not (isinstance(inner, BM25) and inner.client_side_and(query)):
            try:
                return (yield "groups", query)
            except UnsupportedError:
                pass
        query.group_by, query.k = None, max(self.fetch_k, self.k * self.group_size)
        hits = yield from inner.fetch(query)
        return group_hits(hits, self.group_by, self.k, self.group_size)

    def plan(self, text: str) -> Plan:
        groups = yield from self.groups(text)
        return [hit for group in groups for hit in group.hits]


def group_hits(hits: list[Hit], key: str, groups: int, size: int) -> list[Group]:
    """Client-side grouping of ranked hits, as Qdrant groups (list values: each element)."""
    found: dict[Any, Group] = {}
    for hit in hits:
        value = hit.record.metadata.get(key)
        for v in value if isinstance(value, list) else [value]:
            if v is None or isinstance(v, dict | list):
                continue
            group = found.get(v)
            if group is None and len(found) < groups:
                group = found[v] = Group(key=v, hits=[])
            if group is not None and len(group.hits) < size:
                group.hits.append(hit)
    return list(found.values())


def search_strategy(search: GroupSearch, **hybrid: Any) -> Dense | BM25 | Hybrid:
    """The inner strategy of a grouped search, by name."""
    if search == "similarity":
        return Dense()
    if search == "bm25":
        return BM25()
    if search == "hybrid":
        return Hybrid(**hybrid)
    raise ValueError(f"grouped search must be 'similarity', 'bm25' or 'hybrid', got {search!r}")


class BackendEngine:
    """An `Engine` over a core `Backend` and plain encoders (no framework).

    `dense`/`sparse`: callables text -> vector, or encoders with `embed_query`. `sparse`
    may be None on engines with their own BM25 (`backend.builtin_bm25`).
    """

    def __init__(self, backend: Any, dense: Any, sparse: Any = None) -> None:
        self.backend = backend
        self._dense = _as_callable(dense)
        self._sparse = _as_callable(sparse) if sparse is not None else None
        self._builtin = bool(getattr(backend, "builtin_bm25", False))

    def dense(self, text: str) -> list[float]:
        if self._dense is None:
            raise ValueError("this engine has no dense encoder")
        return list(self._dense(text))

    def sparse(self, text: str) -> SparseVector | None:
        if self._builtin:
            return None
        if self._sparse is None:
            raise ValueError("keyword search on this backend needs a sparse encoder "
                             "(e.g. embedders.SparseEncoder())")
        return self._sparse(text)

    def search(self, query: Query) -> list[Hit]:
        return self.backend.search(query)

    def search_groups(self, query: Query) -> list[Group]:
        return self.backend.search_groups(query)

    async def adense(self, text: str) -> list[float]:
        return await asyncio.to_thread(self.dense, text)

    async def asparse(self, text: str) -> SparseVector | None:
        return await asyncio.to_thread(self.sparse, text)

    async def asearch(self, query: Query) -> list[Hit]:
        return await self.backend.asearch(query)

    async def asearch_groups(self, query: Query) -> list[Group]:
        return await self.backend.asearch_groups(query)


def _as_callable(encoder: Any) -> Callable[[str], Any] | None:
    if encoder is None or callable(encoder) and not hasattr(encoder, "embed_query"):
        return encoder
    return encoder.embed_query

