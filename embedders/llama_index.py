"""LlamaIndex faces of the encoders: `FastEmbedEmbedding` (dense) and `FastEmbedSparseEmbedding`.

`FastEmbedEmbedding` works as `VectorStoreIndex(..., embed_model=...)` and as
`Settings.embed_model`. The sparse class also offers `sparse_doc_fn` / `sparse_query_fn`,
the batch callables LlamaIndex vector stores take for hybrid search.
Async methods run the CPU-bound model in a worker thread: ONNX Runtime releases the GIL,
so the event loop stays responsive; there is no remote call to await natively.
"""

from __future__ import annotations

import asyncio
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.base.embeddings.base_sparse import BaseSparseEmbedding, SparseEmbedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr

from .encoders import DEFAULT_BATCH_SIZE, SORT_WINDOW, DenseEncoder, SparseEncoder
from .offline import DEFAULT_DENSE_MODEL, DEFAULT_SPARSE_MODEL
from .sparse import SparseVector

__all__ = ["FastEmbedEmbedding", "FastEmbedSparseEmbedding"]

BatchSparseEncoding = tuple[list[list[int]], list[list[float]]]


def _split(kwargs: dict[str, Any], base: type) -> tuple[dict[str, Any], dict[str, Any]]:
    """Keywords that are fields of the LlamaIndex base class, and the rest (for FastEmbed)."""
    fields = set(base.model_fields)  # type: ignore[attr-defined]
    return (
        {k: v for k, v in kwargs.items() if k in fields},
        {k: v for k, v in kwargs.items() if k not in fields},
    )


class FastEmbedEmbedding(BaseEmbedding):
    """LlamaIndex embedding over a shared FastEmbed model (default all-MiniLM-L6-v2, 384 dims).

    Keywords that are BaseEmbedding fields (callback_manager, num_workers, embeddings_cache)
    go to LlamaIndex; any other unknown keyword goes to `fastembed.TextEmbedding` untouched.
    `embed_batch_size` is how many texts LlamaIndex hands over at once: the encoder sorts
    them by length before its ONNX runs of `batch_size` (less padding), so it is larger.
    """

    model_name: str = Field(default=DEFAULT_DENSE_MODEL)
    embed_batch_size: int = Field(default=SORT_WINDOW, gt=0, le=2048)
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, gt=0, description="texts per ONNX run")
    cache_dir: str | None = Field(default=None, description="FastEmbed download cache")
    threads: int | None = Field(default=None, description="ONNX Runtime threads")
    parallel: int | None = Field(default=None, description="data-parallel worker processes")
    model_path: str | None = Field(default=None, description="local folder with the model files")
    fastembed_kwargs: dict[str, Any] = Field(default_factory=dict)

    _encoder: DenseEncoder = PrivateAttr()

    def __init__(
        self,
        model_name: str = DEFAULT_DENSE_MODEL,
        *,
        encoder: DenseEncoder | None = None,
        embed_batch_size: int = SORT_WINDOW,
        batch_size: int = DEFAULT_BATCH_SIZE,
        cache_dir: str | None = None,
        threads: int | None = None,
        parallel: int | None = None,
        model_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        base_kwargs, fastembed_kwargs = _split(kwargs, BaseEmbedding)
        if encoder is None:
            encoder = DenseEncoder(
                model_name,
                cache_dir=cache_dir,
                threads=threads,
                batch_size=min(batch_size, embed_batch_size),
                parallel=parallel,
                model_path=model_path,
                **fastembed_kwargs,
            )
        fields: dict[str, Any] = {
            "model_name": encoder.model_name,
            "embed_batch_size": embed_batch_size,
            "batch_size": encoder.batch_size,
            "cache_dir": encoder.cache_dir,
            "threads": threads,
            "parallel": parallel,
            "model_path": str(model_path) if model_path else None,
            "fastembed_kwargs": fastembed_kwargs,
        }
        super().__init__(**fields, **base_kwargs)
        self._encoder = encoder

    @classmethod
    def class_name(cls) -> str:
        return "FastEmbedEmbedding"

    @property
    def encoder(self) -> DenseEncoder:
        return self._encoder

    @property
    def dim(self) -> int:
        return self._encoder.dim

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._encoder.embed_query(query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._encoder.embed_documents([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._encoder.embed_documents(texts)

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)


def _as_dict(vector: SparseVector) -> SparseEmbedding:
    return dict(zip(vector.indices, vector.values, strict=True))


def _as_batch(vectors: list[SparseVector]) -> BatchSparseEncoding:
    return [v.indices for v in vectors], [v.values for v in vectors]


class FastEmbedSparseEmbedding(BaseSparseEmbedding):
    """LlamaIndex sparse embedding (default FastEmbed BM25, English stopwords and stemming)."""

    model_name: str = Field(default=DEFAULT_SPARSE_MODEL)
    embed_batch_size: int = Field(default=DEFAULT_BATCH_SIZE, gt=0, le=2048)
    fastembed_kwargs: dict[str, Any] = Field(default_factory=dict)

    _encoder: SparseEncoder = PrivateAttr()

    def __init__(
        self,
        model_name: str = DEFAULT_SPARSE_MODEL,
        *,
        encoder: SparseEncoder | None = None,
        embed_batch_size: int = DEFAULT_BATCH_SIZE,
        **kwargs: Any,
    ) -> None:
        base_kwargs, fastembed_kwargs = _split(kwargs, BaseSparseEmbedding)
        if encoder is None:
            encoder = SparseEncoder(model_name, batch_size=embed_batch_size, **fastembed_kwargs)
        fields: dict[str, Any] = {
            "model_name": encoder.model_name,
            "embed_batch_size": embed_batch_size,
            "fastembed_kwargs": fastembed_kwargs,
        }
        super().__init__(**fields, **base_kwargs)
        self._encoder = encoder

    @classmethod
    def class_name(cls) -> str:
        return "FastEmbedSparseEmbedding"

    @property
    def encoder(self) -> SparseEncoder:
        return self._encoder

    def sparse_doc_fn(self, texts: list[str]) -> BatchSparseEncoding:
        """Documents as (indices per text, values per text): LlamaIndex's `sparse_doc_fn`."""
        return _as_batch(self._encoder.embed_documents(texts))

    def sparse_query_fn(self, texts: list[str]) -> BatchSparseEncoding:
        """Queries in the same shape: LlamaIndex's `sparse_query_fn`."""
        return _as_batch(self._encoder.embed_queries(texts))

    def _get_query_embedding(self, query: str) -> SparseEmbedding:
        return _as_dict(self._encoder.embed_query(query))

    def _get_text_embedding(self, text: str) -> SparseEmbedding:
        return _as_dict(self._encoder.embed_documents([text])[0])

    def _get_text_embeddings(self, texts: list[str]) -> list[SparseEmbedding]:
        return [_as_dict(v) for v in self._encoder.embed_documents(texts)]

    async def _aget_query_embedding(self, query: str) -> SparseEmbedding:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> SparseEmbedding:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[SparseEmbedding]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)
