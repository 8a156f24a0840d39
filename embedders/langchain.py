"""LangChain faces of the encoders: `FastEmbedEmbeddings` (dense) and `FastEmbedSparse`.

Async methods run the CPU-bound embedding in a worker thread (langchain-core's
`run_in_executor`, which keeps context variables such as callbacks and tracing). ONNX Runtime
releases the GIL while it computes, so the event loop keeps serving other tasks meanwhile;
there is no remote call that a native coroutine could overlap.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import run_in_executor

from .encoders import DEFAULT_BATCH_SIZE, DenseEncoder, SparseEncoder
from .offline import DEFAULT_DENSE_MODEL
from .sparse import SparseVector

__all__ = ["FastEmbedEmbeddings", "FastEmbedSparse"]


class FastEmbedEmbeddings(Embeddings):
    """LangChain embeddings over a shared FastEmbed model (default all-MiniLM-L6-v2, 384 dims).

    Options are those of `embedders.DenseEncoder` (cache_dir, threads, batch_size, parallel,
    providers, model_path); any other keyword goes to `fastembed.TextEmbedding` untouched.
    An existing encoder can be passed as `encoder=` to share it explicitly.
    """

    def __init__(
        self,
        model_name: str = DEFAULT_DENSE_MODEL,
        *,
        encoder: DenseEncoder | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        threads: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        parallel: int | None = None,
        providers: Sequence[Any] | None = None,
        model_path: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.encoder = encoder or DenseEncoder(
            model_name,
            cache_dir=cache_dir,
            threads=threads,
            batch_size=batch_size,
            parallel=parallel,
            providers=providers,
            model_path=model_path,
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"FastEmbedEmbeddings({self.model_name!r})"

    @property
    def model_name(self) -> str:
        return self.encoder.model_name

    @property
    def cache_dir(self) -> str:
        return self.encoder.cache_dir

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encoder.embed_documents(texts)

    def embed_documents_iter(self, texts: Iterable[str]) -> Iterator[list[float]]:
        """Streaming form for large corpora: vectors come out batch by batch."""
        return self.encoder.embed_documents_iter(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.encoder.embed_query(text)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await run_in_executor(None, self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await run_in_executor(None, self.embed_query, text)


class FastEmbedSparse:
    """Sparse embeddings with the interface of langchain-qdrant's `SparseEmbeddings`.

    `embed_documents` / `embed_query` return objects with `indices` and `values`, so an
    instance also works as langchain-qdrant's `sparse_embedding`. Default: BM25, English.
    """

    def __init__(
        self, model_name: str | None = None, *, encoder: SparseEncoder | None = None, **options: Any
    ) -> None:
        if encoder is None:
            encoder = (
                SparseEncoder(model_name, **options) if model_name else SparseEncoder(**options)
            )
        self.encoder = encoder

    def __repr__(self) -> str:
        return f"FastEmbedSparse({self.model_name!r})"

    @property
    def model_name(self) -> str:
        return self.encoder.model_name

    def embed_documents(self, texts: list[str]) -> list[SparseVector]:
        return self.encoder.embed_documents(texts)

    def embed_query(self, text: str) -> SparseVector:
        return self.encoder.embed_query(text)

    async def aembed_documents(self, texts: list[str]) -> list[SparseVector]:
        return await run_in_executor(None, self.embed_documents, texts)

    async def aembed_query(self, text: str) -> SparseVector:
        return await run_in_executor(None, self.embed_query, text)

    @property
    def avg_len(self) -> float | None:
        """BM25's mean document length: the collection's when fitted, else the model's."""
        value = getattr(self.encoder, "avg_len", None)
        if value is None and getattr(self.encoder, "is_bm25", False):
            value = self.encoder.bm25.avg_len
        return None if value is None else float(value)

    def for_collection(self, backend: Any) -> Any:
        """Fitted to `backend`'s collection (avg_len: embedders.sparse_fit), else itself."""
        fitted = self.encoder.for_collection(backend)
        return self if fitted is self.encoder else FastEmbedSparse(encoder=fitted)
