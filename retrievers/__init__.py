"""Retrieval strategies over both engines, for both frameworks.

- `retrievers.strategies`: the strategies once, framework-free (Hybrid, BM25, MMR,
  Recommend, Discover, Grouped, Dense), as plans any engine adapter can run.
- `retrievers.langchain`: LangChain `BaseRetriever`s over our LangChain stores.
- `retrievers.llama_index`: LlamaIndex `BaseRetriever`s over our LlamaIndex stores.
"""

from .strategies import (
    BM25,
    DEFAULT_ALPHA,
    DEFAULT_FUSION,
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

__all__ = ["BM25", "DEFAULT_ALPHA", "DEFAULT_FUSION", "MMR", "BackendEngine", "Dense",
           "Discover", "Grouped", "Hybrid", "Recommend", "Strategy", "arun", "run"]
