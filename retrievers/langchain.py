"""LangChain retrievers for every strategy, over our LangChain stores (both engines).

    retriever = HybridRetriever(vectorstore=store, k=4, alpha=0.7)
    docs = retriever.invoke("query")                  # or await retriever.ainvoke(...)
    docs = retriever.invoke("query", k=2, filter={"year": {"$gte": 2000}}, alpha=0.3)

Each retriever is a thin face over `rag_stores.core.strategies`: the constructor fields are the
strategy's settings, and `invoke(..., **options)` changes any field for one call. The async
path uses the store's async search and the embedding's async methods.

Documents come back exactly as stored (`id`, `page_content`, `metadata`). Scores are left
out unless `include_score=True`: then each document is a copy whose metadata also holds
the engine's raw score under `score_key` ("score"), replacing a stored value of that key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, cast, runtime_checkable

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
    Callbacks,
)
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import VectorStore
from pydantic import ConfigDict, Field, field_validator, model_validator

from embedders.rerank import Reranker, scores_of
from embedders.sparse import SparseVector
from rag_stores.core import strategies as s
from rag_stores.core.filters import parse_any
from rag_stores.core.query import Example, Fusion, Query, RecommendStrategy
from rag_stores.core.records import Group, Hit
from rag_stores.documents import to_document

__all__ = ["HybridRetriever", "BM25Retriever", "MMRRetriever", "RecommendRetriever",
           "DiscoverRetriever", "GroupedRetriever", "RerankCompressor", "Reranker",
           "SEARCH_TYPES"]


@runtime_checkable
class SearchableStore(Protocol):
    """What the retrievers use of a store (`rag_stores.langchain.BackendVectorStore` has it;
    typed by shape so that module can build these retrievers without a circular import)."""

    embedding: Embeddings
    sparse_embedding: Any
    backend: Any

    def search_hits(self, query: Query) -> list[Hit]: ...
    async def asearch_hits(self, query: Query) -> list[Hit]: ...
    def search_groups(self, query: Query) -> list[Group]: ...
    async def asearch_groups(self, query: Query) -> list[Group]: ...


class StoreEngine:
    """A strategies `Engine` over a LangChain store: its embeddings and its searches."""

    def __init__(self, store: SearchableStore) -> None:
        self.store = store

    def _sparse_encoder(self) -> Any:
        if getattr(self.store.backend, "builtin_bm25", False):
            return None
        if self.store.sparse_embedding is None:
            raise ValueError("keyword search needs a sparse encoder, and this store has none: "
                             "create it with retrieval_mode='hybrid' or 'sparse' "
                             "(or sparse_embedding=...)")
        return self.store.sparse_embedding

    def dense(self, text: str) -> list[float]:
        return self.store.embedding.embed_query(text)

    async def adense(self, text: str) -> list[float]:
        return await self.store.embedding.aembed_query(text)

    def sparse(self, text: str) -> SparseVector | None:
        return s.encode_sparse(self._sparse_encoder(), text)

    async def asparse(self, text: str) -> SparseVector | None:
        return await s.aencode_sparse(self._sparse_encoder(), text)

    def search(self, query: Query) -> list[Hit]:
        return self.store.search_hits(query)

    async def asearch(self, query: Query) -> list[Hit]:
        return await self.store.asearch_hits(query)

    def search_groups(self, query: Query) -> list[Group]:
        return self.store.search_groups(query)

    async def asearch_groups(self, query: Query) -> list[Group]:
        return await self.store.asearch_groups(query)


class StrategyRetriever(BaseRetriever):
    """Shared fields and plumbing; subclasses name their strategy and its settings."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    # Fields of the retriever that are settings of the strategy (besides k, filter, threshold).
    _settings: ClassVar[tuple[str, ...]] = ()

    vectorstore: VectorStore
    """A rag-stores LangChain store (`QdrantVectorStore`, `WeaviateVectorStore`)."""
    k: int = 4
    filter: Any = None
    """A Mongo-style dict ({"year": {"$gte": 2000}}), a filter tree, or a native engine filter."""
    score_threshold: float | None = None
    include_score: bool = False
    score_key: str = "score"

    @field_validator("vectorstore")
    @classmethod
    def _check_store(cls, store: VectorStore) -> VectorStore:
        if not isinstance(store, SearchableStore):
            raise ValueError("vectorstore must be a rag-stores LangChain store "
                             "(rag_stores.langchain.QdrantVectorStore or WeaviateVectorStore), "
                             f"got {type(store).__name__}")
        return store

    def _engine(self) -> StoreEngine:
        return StoreEngine(cast(SearchableStore, self.vectorstore))

    @model_validator(mode="after")
    def _validate(self) -> StrategyRetriever:
        self.make_strategy()  # bad settings fail here, not at the first query
        return self

    def _make(self, **settings: Any) -> s.Strategy:
        raise NotImplementedError

    def make_strategy(self) -> s.Strategy:
        """The framework-free strategy with this retriever's settings."""
        settings = {name: getattr(self, name) for name in self._settings}
        return self._make(k=self.k, filter=parse_any(self.filter),
                          score_threshold=self.score_threshold, **settings)

    def with_options(self, **options: Any) -> Any:
        """A copy with some fields changed (what `invoke(query, **options)` uses)."""
        if not options:
            return self
        if "prefetch_k" in options and "prefetch_limit" in type(self).model_fields:
            options["prefetch_limit"] = options.pop("prefetch_k")  # the older name
        allowed = set(type(self).model_fields) - {"vectorstore", "tags", "metadata"}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no option(s) {unknown}; "
                            f"known: {sorted(allowed)}")
        copy = self.model_copy(update=options)
        copy.make_strategy()  # validates the new values
        return copy

    def _document(self, hit: Hit) -> Document:
        doc = to_document(hit.record)
        if self.include_score:
            doc = Document(id=doc.id, page_content=doc.page_content,
                           metadata={**doc.metadata, self.score_key: hit.score})
        return doc

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                **kwargs: Any) -> list[Document]:
        r = self.with_options(**kwargs)
        hits = s.run(r.make_strategy().plan(query), r._engine())
        return [r._document(h) for h in hits]

    async def _aget_relevant_documents(self, query: str, *,
                                       run_manager: AsyncCallbackManagerForRetrieverRun,
                                       **kwargs: Any) -> list[Document]:
        r = self.with_options(**kwargs)
        hits = await s.arun(r.make_strategy().plan(query), r._engine())
        return [r._document(h) for h in hits]


def _older_prefetch_name(data: Any) -> Any:
    """`prefetch_k=` is the older name of `prefetch_limit=`."""
    if isinstance(data, dict) and "prefetch_k" in data:
        data = dict(data)
        if "prefetch_limit" in data and data["prefetch_limit"] != data["prefetch_k"]:
            raise ValueError("give prefetch_limit or prefetch_k (the same setting), not both")
        data["prefetch_limit"] = data.pop("prefetch_k")
    return data


class HybridRetriever(StrategyRetriever):
    """Dense + BM25, fused (formulas: `rag_stores.core.fusion`; engines: `rag_stores.core.strategies`).

    `fusion`: "dbsf" (default), "rrf" (alias "ranked") or "convex" (alias "relative_score");
    `alpha`: dense weight (1 = dense only, 0 = keywords only; None = the fusion's measured
    default, `strategies.DEFAULT_ALPHAS`); `rrf_k`: the RRF constant (None = 60);
    `prefetch_limit` (older name `prefetch_k`): candidates per leg (default 200; None = the
    engine's own depth); `query_properties`: the keyword fields, e.g. ["text", "title^2"]
    (Weaviate `searchable_keys`; None = the text); `reranker` (a `embedders.rerank.Reranker`
    or a callable (query, texts) -> scores) reorders the best `rerank_candidates` hits.
    """

    _settings = ("alpha", "fusion", "prefetch_limit", "rrf_k", "query_properties", "reranker",
                 "rerank_candidates")
    alpha: float | None = None
    fusion: Fusion = s.DEFAULT_FUSION
    prefetch_limit: int | None = s.DEFAULT_PREFETCH_LIMIT
    rrf_k: int | None = None
    query_properties: list[str] | None = None
    reranker: Any = None
    rerank_candidates: int = s.DEFAULT_RERANK_CANDIDATES

    @model_validator(mode="before")
    @classmethod
    def _older_names(cls, data: Any) -> Any:
        return _older_prefetch_name(data)

    def _make(self, **settings: Any) -> s.Strategy:
        return s.Hybrid(**settings)


class BM25Retriever(StrategyRetriever):
    """The engine's BM25. `operator="and"` keeps only hits holding every query term;
    `query_properties` chooses the fields, e.g. ["text", "title^2"] (Weaviate
    `searchable_keys`; None = the text)."""

    _settings = ("operator", "fetch_k", "query_properties", "reranker", "rerank_candidates")
    operator: s.Operator = "or"
    fetch_k: int = 100
    query_properties: list[str] | None = None
    reranker: Any = None
    rerank_candidates: int = s.DEFAULT_RERANK_CANDIDATES

    def _make(self, **settings: Any) -> s.Strategy:
        return s.BM25(**settings)


class MMRRetriever(StrategyRetriever):
    """Maximal marginal relevance: Qdrant server-side, Weaviate client-side."""

    _settings = ("fetch_k", "lambda_mult")
    fetch_k: int = 20
    lambda_mult: float = 0.5

    def _make(self, **settings: Any) -> s.Strategy:
        return s.MMR(**settings)


class RecommendRetriever(StrategyRetriever):
    """More like `positive` examples, less like `negative` ones (ids or vectors; texts in
    `positive_texts` / `negative_texts`). The query text is a positive example unless
    `use_query=False`. `strategy`: average_vector, best_score or sum_scores."""

    _settings = ("positive", "negative", "positive_texts", "negative_texts", "strategy",
                 "use_query", "fetch_k")
    positive: list[Example] = Field(default_factory=list)
    negative: list[Example] = Field(default_factory=list)
    positive_texts: list[str] = Field(default_factory=list)
    negative_texts: list[str] = Field(default_factory=list)
    strategy: RecommendStrategy = "average_vector"
    use_query: bool = True
    fetch_k: int = 20

    def _make(self, **settings: Any) -> s.Strategy:
        return s.Recommend(**settings)


class DiscoverRetriever(StrategyRetriever):
    """Qdrant discovery: the query text is the target (or `target=`, an id or vector),
    steered by `context` pairs (positive, negative) of ids or vectors, or `context_texts`.
    `context_only=True`: context search without a target. Weaviate: UnsupportedError."""

    _settings = ("target", "context", "context_texts", "context_only")
    target: Example | None = None
    context: list[tuple[Example, Example]] = Field(default_factory=list)
    context_texts: list[tuple[str, str]] = Field(default_factory=list)
    context_only: bool = False

    def _make(self, **settings: Any) -> s.Strategy:
        return s.Discover(**settings)


class GroupedRetriever(StrategyRetriever):
    """The best `k` groups of hits sharing the metadata value `group_by` (e.g. the source
    document), `group_size` hits each, returned group after group. `search_type`:
    "similarity", "bm25" or "hybrid" (with `alpha`, `fusion`, `prefetch_limit`, `rrf_k`).
    Records without the field are left out."""

    _settings = ("group_by", "group_size", "fetch_k")
    group_by: str
    group_size: int = 1
    fetch_k: int = 100
    """Hits grouped client-side where the engine cannot group the search (Weaviate keywords)."""
    search_type: s.GroupSearch = "similarity"
    alpha: float | None = None
    fusion: Fusion = s.DEFAULT_FUSION
    prefetch_limit: int | None = s.DEFAULT_PREFETCH_LIMIT
    rrf_k: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _older_names(cls, data: Any) -> Any:
        return _older_prefetch_name(data)

    def _make(self, **settings: Any) -> s.Strategy:
        hybrid = sorted({"alpha", "fusion", "prefetch_limit", "rrf_k"} & self.model_fields_set)
        if hybrid and self.search_type != "hybrid":
            raise ValueError(f"{hybrid} apply to search_type='hybrid' only")
        inner = s.search_strategy(self.search_type, alpha=self.alpha, fusion=self.fusion,
                                  prefetch_limit=self.prefetch_limit, rrf_k=self.rrf_k)
        return s.Grouped(search=inner, **settings)

    def _grouped(self) -> s.Grouped:
        strategy = self.make_strategy()
        assert isinstance(strategy, s.Grouped)
        return strategy

    def _groups(self, groups: list[Group]) -> list[tuple[Any, list[Document]]]:
        return [(g.key, [self._document(h) for h in g.hits]) for g in groups]

    def get_groups(self, query: str, **options: Any) -> list[tuple[Any, list[Document]]]:
        """(group key, documents) pairs, best group first."""
        r = self.with_options(**options)
        return r._groups(s.run(r._grouped().groups(query), r._engine()))

    async def aget_groups(self, query: str, **options: Any) -> list[tuple[Any, list[Document]]]:
        r = self.with_options(**options)
        return r._groups(await s.arun(r._grouped().groups(query), r._engine()))


# search_type names of `rag_stores.langchain.BackendVectorStore.as_retriever` beyond LangChain's own.
SEARCH_TYPES: dict[str, type[StrategyRetriever]] = {
    "hybrid": HybridRetriever,
    "bm25": BM25Retriever,
    "recommend": RecommendRetriever,
    "discover": DiscoverRetriever,
    "grouped": GroupedRetriever,
}


class RerankCompressor(BaseDocumentCompressor):
    """A LangChain document compressor that reorders documents by a reranker.

        ContextualCompressionRetriever(base_compressor=RerankCompressor(reranker=r, top_n=4),
                                       base_retriever=store.as_retriever(search_kwargs={"k": 50}))

    `reranker`: a `embedders.rerank.Reranker` (a FastEmbed cross-encoder) or any callable
    (query, texts) -> scores; keeps the best `top_n` (None: all), each a copy whose metadata
    holds the reranker's score under `score_key` ("rerank_score").
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    reranker: Any
    top_n: int | None = 4
    score_key: str = "rerank_score"

    @model_validator(mode="after")
    def _validate(self) -> RerankCompressor:
        if not (callable(self.reranker) or hasattr(self.reranker, "score")):
            raise ValueError("reranker must be a Reranker or a callable (query, texts) -> scores")
        if self.top_n is not None and self.top_n < 1:
            raise ValueError(f"top_n must be >= 1 or None, got {self.top_n}")
        return self

    def compress_documents(self, documents: Sequence[Document], query: str,
                           callbacks: Callbacks | None = None) -> Sequence[Document]:
        docs = list(documents)
        if not docs:
            return []
        scores = scores_of(self.reranker, query, [d.page_content for d in docs])
        order = sorted(range(len(docs)), key=lambda i: -scores[i])[:self.top_n]
        return [Document(id=docs[i].id, page_content=docs[i].page_content,
                         metadata={**docs[i].metadata, self.score_key: scores[i]})
                for i in order]

    async def acompress_documents(self, documents: Sequence[Document], query: str,
                                  callbacks: Callbacks | None = None) -> Sequence[Document]:
        import asyncio

        return await asyncio.to_thread(self.compress_documents, documents, query, callbacks)

