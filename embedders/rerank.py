"""A reranking stage: reorder retrieved hits by a (query, text) scorer.

    reranker = Reranker("Xenova/ms-marco-MiniLM-L-6-v2")        # FastEmbed TextCrossEncoder
    reranker = Reranker(lambda query, texts: [...])              # any scorer
    HybridRetriever(vectorstore=store, k=5, reranker=reranker, rerank_candidates=50)
    RerankCompressor(reranker=reranker, top_n=5)                 # LangChain document compressor
    RerankPostprocessor(reranker=reranker, top_n=5)              # LlamaIndex node postprocessor

A cross-encoder model loads through `embedders.encoders.load_model`, with the project's
model-resolution rules: `model_path=` (a folder holding the model's files), then a seeded
folder (`$RAG_STORES_MODELS`, then ~/.cache/rag-stores/models, laid out as
<root>/<model name>/...), then FastEmbed's download. No cross-encoder ships in a PyPI
package that this project seeds from, so offline machines need `model_path=` or a seeded
folder; the scorer form (any callable) needs no model at all.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

Scorer = Callable[[str, list[str]], Sequence[float]]
DEFAULT_CROSS_ENCODER = "Xenova/ms-marco-MiniLM-L-6-v2"

__all__ = ["DEFAULT_CROSS_ENCODER", "Reranker", "Scorer", "scores_of"]


class Reranker:
    """Scores (query, text) pairs, higher = more relevant.

    `model`: a FastEmbed cross-encoder name (`TextCrossEncoder.list_supported_models()`),
    loaded on first use, or a callable (query, texts) -> scores. `model_path`, `cache_dir`,
    `threads`, `providers` and other keywords go to the model loader; `batch_size` pairs per
    ONNX run.
    """

    def __init__(self, model: str | Scorer = DEFAULT_CROSS_ENCODER, *,
                 model_path: str | os.PathLike[str] | None = None, batch_size: int = 32,
                 **options: Any) -> None:
        if not (isinstance(model, str) or callable(model)):
            raise TypeError("model must be a cross-encoder name or a callable "
                            f"(query, texts) -> scores, got {type(model).__name__}")
        if callable(model) and (model_path is not None or options):
            raise TypeError("model_path and loader options apply to a named model, not a scorer")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.model_path = model_path
        self.batch_size = batch_size
        self.options = options
        self._loaded: Any = None

    def __repr__(self) -> str:
        name = self.model if isinstance(self.model, str) else getattr(
            self.model, "__name__", type(self.model).__name__)
        return f"Reranker({name!r})"

    @property
    def cross_encoder(self) -> Any:
        """The FastEmbed TextCrossEncoder (loaded once per process for the same options)."""
        if not isinstance(self.model, str):
            raise TypeError("this reranker is a scorer, not a model")
        if self._loaded is None:
            from .encoders import load_model

            self._loaded = load_model("rerank", self.model, model_path=self.model_path,
                                      **self.options)
        return self._loaded

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}")
        texts = list(texts)
        if not texts:
            return []
        if isinstance(self.model, str):
            got = self.cross_encoder.rerank(query, texts, batch_size=self.batch_size)
        else:
            got = self.model(query, texts)
        scores = [float(x) for x in got]
        if len(scores) != len(texts):
            raise ValueError(f"the reranker returned {len(scores)} scores for {len(texts)} texts")
        return scores

    async def ascore(self, query: str, texts: Sequence[str]) -> list[float]:
        import asyncio

        return await asyncio.to_thread(self.score, query, texts)

    __call__ = score


def scores_of(reranker: Any, query: str, texts: list[str]) -> list[float]:
    """Scores from a `Reranker` (or anything with `score`) or a plain callable."""
    if hasattr(reranker, "score"):
        return list(reranker.score(query, texts))
    return Reranker(reranker).score(query, texts)
