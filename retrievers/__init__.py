"""Retrievers over both engines, for both frameworks: thin faces over the strategies.

- `retrievers.langchain`: LangChain `BaseRetriever`s over our LangChain stores (which build
  them for `as_retriever(search_type=...)`), and the `RerankCompressor`.
- `retrievers.llama_index`: LlamaIndex `BaseRetriever`s over our LlamaIndex stores, and the
  `RerankPostprocessor`.

Below them, and below the stores: `rag_stores.core.strategies` (each strategy once,
framework-free, as a plan any engine adapter runs), `rag_stores.documents` (records as
Documents and nodes) and `embedders.rerank` (the reranking stage: FastEmbed cross-encoders
or any scorer). This package re-exports the strategies and the `Reranker`.
"""

from embedders.rerank import Reranker
from rag_stores.core.strategies import (
    BM25,
    DEFAULT_ALPHA,
    DEFAULT_ALPHAS,
    DEFAULT_FUSION,
    DEFAULT_PREFETCH_LIMIT,
    MMR,
    BackendEngine,
    Dense,
    Discover,
    Grouped,
    Hybrid,
    Recommend,
    Strategy,
    arun,
    run,
)

__all__ = ["BM25", "DEFAULT_ALPHA", "DEFAULT_ALPHAS", "DEFAULT_FUSION", "DEFAULT_PREFETCH_LIMIT",
           "MMR", "BackendEngine", "Dense", "Discover", "Grouped", "Hybrid", "Recommend",
           "Reranker", "Strategy", "arun", "run"]
