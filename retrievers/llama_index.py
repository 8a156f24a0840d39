"""LlamaIndex retrievers for every strategy, over our LlamaIndex stores (both engines).

    retriever = HybridRetriever(vector_store=store, embed_model=embed_model,
                                similarity_top_k=4, alpha=0.7)
    nodes = retriever.retrieve("query")               # or await retriever.aretrieve(...)
    engine = RetrieverQueryEngine.from_args(retriever, llm=llm)

Thin faces over `rag_stores.core.strategies`: keyword settings after the common ones are the
strategy's (see each class). Results are `NodeWithScore` with the engine's raw score.
`embed_model` defaults to `Settings.embed_model`, resolved only when a strategy embeds.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks.base import CallbackManager
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle
from llama_index.core.vector_stores.types import MetadataFilters

from embedders.rerank import Reranker, scores_of
from embedders.sparse import SparseVector
from rag_stores.core import strategies as s
from rag_stores.core.filters import from_llama
from rag_stores.core.query import Query
from rag_stores.core.records import Group, Hit
from rag_stores.documents import to_node
from rag_stores.llama_index import BackendLlamaStore

__all__ = ["HybridRetriever", "BM25Retriever", "MMRRetriever", "RecommendRetriever",
           "DiscoverRetriever", "GroupedRetriever", "RerankPostprocessor", "Reranker"]


class StoreEngine:
    """A strategies `Engine` over a LlamaIndex store and an embedding model.

    `known` holds vectors already computed (a QueryBundle's embedding) by text.
    """

    def __init__(self, store: BackendLlamaStore, embed_model: Any,
                 known: dict[str, list[float]] | None = None) -> None:
        self.store = store
        self._embed_model = embed_model
        self.known = known or {}

    @property
    def embed_model(self) -> Any:
        if self._embed_model is None:
            from llama_index.core import Settings

            return Settings.embed_model
        return self._embed_model

    def _sparse_encoder(self) -> Any:
        if getattr(self.store.backend, "builtin_bm25", False):
            return None
        encoder = self.store._sparse_encoder
        if encoder is None:
            raise ValueError("keyword search needs a sparse encoder, and this store has none: "
                             "create it with enable_hybrid=True (or sparse_encoder=...)")
        return encoder

    def dense(self, text: str) -> list[float]:
        if text in self.known:
            return self.known[text]
        return self.embed_model.get_query_embedding(text)

    async def adense(self, text: str) -> list[float]:
        if text in self.known:
            return self.known[text]
        return await self.embed_model.aget_query_embedding(text)

    def sparse(self, text: str) -> SparseVector | None:
        return s.encode_sparse(self._sparse_encoder(), text)

    async def asparse(self, text: str) -> SparseVector | None:
        return await s.aencode_sparse(self._sparse_encoder(), text)

    def search(self, query: Query) -> list[Hit]:
        return self.store.backend.search(query)

    async def asearch(self, query: Query) -> list[Hit]:
        return await self.store.backend.asearch(query)

    def search_groups(self, query: Query) -> list[Group]:
        return self.store.backend.search_groups(query)

    async def asearch_groups(self, query: Query) -> list[Group]:
        return await self.store.backend.asearch_groups(query)


def parse_filters(filters: Any) -> Any:
    """LlamaIndex `MetadataFilters`, a filter tree, or a native engine filter."""
    return from_llama(filters) if isinstance(filters, MetadataFilters) else filters


class StrategyRetriever(BaseRetriever):
    """Common settings: `similarity_top_k` results, `filters`, `score_threshold` (raw score)."""

    def __init__(self, vector_store: BackendLlamaStore, embed_model: Any = None, *,
                 similarity_top_k: int = 4, filters: Any = None,
                 score_threshold: float | None = None,
                 callback_manager: CallbackManager | None = None, verbose: bool = False,
                 **settings: Any) -> None:
        if not isinstance(vector_store, BackendLlamaStore):
            raise TypeError("vector_store must be a rag_stores.llama_index store "
                            f"(QdrantVectorStore, WeaviateVectorStore), got {type(vector_store).__name__}")
        self.vector_store = vector_store
        self.embed_model = embed_model
        self.strategy = self._make(k=similarity_top_k, filter=parse_filters(filters),
                                   score_threshold=score_threshold, **settings)
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    def _make(self, **settings: Any) -> s.Strategy:
        raise NotImplementedError

    @property
    def similarity_top_k(self) -> int:
        return self.strategy.k

    def _engine(self, bundle: QueryBundle) -> StoreEngine:
        known = {bundle.query_str: list(bundle.embedding)} if bundle.embedding else None
        return StoreEngine(self.vector_store, self.embed_model, known)

    @staticmethod
    def _nodes(hits: list[Hit]) -> list[NodeWithScore]:
        return [NodeWithScore(node=to_node(h.record), score=h.score) for h in hits]

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self._nodes(s.run(self.strategy.plan(query_bundle.query_str),
                                 self._engine(query_bundle)))

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self._nodes(await s.arun(self.strategy.plan(query_bundle.query_str),
                                        self._engine(query_bundle)))


def _checked(cls: type[s.Strategy], settings: dict[str, Any]) -> s.Strategy:
    try:
        return cls(**settings)
    except TypeError as exc:
        raise TypeError(f"{cls.__name__}: {exc}") from exc


class HybridRetriever(StrategyRetriever):
    """Dense + BM25, fused: `fusion` ("dbsf" default, "rrf", "convex"; aliases "ranked",
    "relative_score"), `alpha` (dense weight; None = the fusion's measured default), `rrf_k`
    (RRF constant, None = 60), `prefetch_limit` (older name `prefetch_k`: candidates per leg,
    default 200), `query_properties` (keyword fields, e.g. ["text", "title^2"]; Weaviate
    searchable_keys), `reranker` / `rerank_candidates` (a second stage). Formulas:
    `rag_stores.core.fusion`."""

    def _make(self, **settings: Any) -> s.Strategy:
        return _checked(s.Hybrid, settings)


class BM25Retriever(StrategyRetriever):
    """The engine's BM25: `operator` ("or", "and"), `fetch_k` (candidates for "and" on Qdrant),
    `query_properties` (fields, e.g. ["text", "title^2"]; Weaviate searchable_keys),
    `reranker` / `rerank_candidates` (a second stage)."""

    def _make(self, **settings: Any) -> s.Strategy:
        return _checked(s.BM25, settings)


class MMRRetriever(StrategyRetriever):
    """Maximal marginal relevance: `fetch_k` candidates, `lambda_mult` (1 = relevance only)."""

    def _make(self, **settings: Any) -> s.Strategy:
        return _checked(s.MMR, settings)


class RecommendRetriever(StrategyRetriever):
    """`positive` / `negative` (ids or vectors), `positive_texts` / `negative_texts`,
    `strategy` (average_vector, best_score, sum_scores), `use_query`, `fetch_k`."""

    def _make(self, **settings: Any) -> s.Strategy:
        return _checked(s.Recommend, settings)


class DiscoverRetriever(StrategyRetriever):
    """`target` (id or vector; default the query text), `context` pairs of ids or vectors,
    `context_texts`, `context_only`. Qdrant only (Weaviate raises UnsupportedError)."""

    def _make(self, **settings: Any) -> s.Strategy:
        return _checked(s.Discover, settings)


class GroupedRetriever(StrategyRetriever):
    """`group_by` (metadata key), `group_size`; `similarity_top_k` = number of groups;
    `search_type` ("similarity", "bm25", "hybrid") with `alpha`, `fusion`, `prefetch_limit`
    (or `prefetch_k`), `rrf_k`."""

    def _make(self, **settings: Any) -> s.Strategy:
        search_type = settings.pop("search_type", "similarity")
        hybrid = {key: settings.pop(key) for key in ("alpha", "fusion", "prefetch_limit",
                                                     "prefetch_k", "rrf_k") if key in settings}
        if hybrid and search_type != "hybrid":
            raise TypeError(f"{sorted(hybrid)} apply to search_type='hybrid' only")
        return _checked(s.Grouped, {**settings,
                                    "search": s.search_strategy(search_type, **hybrid)})

    def retrieve_groups(self, query: str | QueryBundle) -> list[tuple[Any, list[NodeWithScore]]]:
        """(group key, nodes) pairs, best group first."""
        bundle = QueryBundle(query) if isinstance(query, str) else query
        assert isinstance(self.strategy, s.Grouped)
        groups = s.run(self.strategy.groups(bundle.query_str), self._engine(bundle))
        return [(g.key, self._nodes(g.hits)) for g in groups]

    async def aretrieve_groups(self, query: str | QueryBundle
                               ) -> list[tuple[Any, list[NodeWithScore]]]:
        bundle = QueryBundle(query) if isinstance(query, str) else query
        assert isinstance(self.strategy, s.Grouped)
        groups = await s.arun(self.strategy.groups(bundle.query_str), self._engine(bundle))
        return [(g.key, self._nodes(g.hits)) for g in groups]


class RerankPostprocessor(BaseNodePostprocessor):
    """A LlamaIndex node postprocessor that reorders nodes by a reranker.

        index.as_query_engine(similarity_top_k=50,
                              node_postprocessors=[RerankPostprocessor(reranker=r, top_n=4)])

    `reranker`: a `embedders.rerank.Reranker` (a FastEmbed cross-encoder) or any callable
    (query, texts) -> scores; keeps the best `top_n` (None: all), each scored by the reranker.
    Texts are the nodes' content (`metadata_mode`, default MetadataMode.NONE: the text).
    """

    reranker: Any
    top_n: int | None = 4
    metadata_mode: MetadataMode = MetadataMode.NONE

    def __init__(self, reranker: Any, top_n: int | None = 4,
                 metadata_mode: MetadataMode = MetadataMode.NONE, **kwargs: Any) -> None:
        if not (callable(reranker) or hasattr(reranker, "score")):
            raise ValueError("reranker must be a Reranker or a callable (query, texts) -> scores")
        if top_n is not None and top_n < 1:
            raise ValueError(f"top_n must be >= 1 or None, got {top_n}")
        super().__init__(reranker=reranker, top_n=top_n,  # type: ignore[call-arg]
                         metadata_mode=metadata_mode, **kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "RerankPostprocessor"

    def _postprocess_nodes(self, nodes: list[NodeWithScore],
                           query_bundle: QueryBundle | None = None) -> list[NodeWithScore]:
        if query_bundle is None:
            raise ValueError("reranking needs the query (a QueryBundle)")
        if not nodes:
            return []
        texts = [n.node.get_content(metadata_mode=self.metadata_mode) for n in nodes]
        scores = scores_of(self.reranker, query_bundle.query_str, texts)
        order = sorted(range(len(nodes)), key=lambda i: -scores[i])[:self.top_n]
        return [NodeWithScore(node=nodes[i].node, score=scores[i]) for i in order]
