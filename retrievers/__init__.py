"""Retrieval strategies over both engines, for both frameworks.

- `retrievers.strategies`: the strategies once, framework-free (Hybrid, BM25, MMR,
  Recommend, Discover, Grouped, Dense), as plans any engine adapter can run.
- `retrievers.langchain`: LangChain `BaseRetriever`s over our LangChain stores.
- `retrievers.llama_index`: LlamaIndex `BaseRetriever`s over our LlamaIndex stores.
- `retrievers.rerank`: the reranking stage (FastEmbed cross-encoders or any scorer), used by
  the retrievers' `reranker=` option, LangChain's `RerankCompressor` and LlamaIndex's
  `RerankPostprocessor`.
"""

from .rerank import Reranker
from .strategies import (
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
