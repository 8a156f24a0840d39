"""LangChain `VectorStore`s over Qdrant and Weaviate.

One class does the LangChain work (`BackendVectorStore`); `QdrantVectorStore` and
`WeaviateVectorStore` only choose the backend. Documents map to core records one to
one: `page_content` <-> text, `metadata` <-> metadata, `Document.id` <-> the user id.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import math
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from enum import Enum
from itertools import repeat
from typing import Any, Literal, TypeVar

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from retrievers.langchain import SEARCH_TYPES

from .core.backend import Backend
from .core.filters import parse_any
from .core.ids import is_int_id, new_id, qdrant_point_id
from .core.ingest import (
    EMBED_WINDOW,
    apipeline,
    batched,
    check_batch_size,
    check_parallel,
    parallelism,
    pipeline,
)
from .core.mmr import mmr_select
from .core.options import check_options, parameters
from .core.plans import closed_on_error
from .core.query import CollectionNotFoundError, Mode, Query
from .core.records import Group, Hit, Record, check_record
from .core.scores import relevance_score
from .core.strategies import DEFAULT_FUSION, DEFAULT_PREFETCH_LIMIT, Hybrid
from .documents import to_document

RetrievalMode = Literal["dense", "sparse", "hybrid"]
# A user id: any string; on Qdrant also a uuid.UUID or an unsigned 64-bit int (core.ids).
Id = str | int | uuid.UUID
# One input document: text, metadata, id (None: a new one).
Item = tuple[str, "dict[str, Any] | None", "Id | None"]
_MISSING: Any = object()
T = TypeVar("T")


def _as_list(vector: Any) -> list[float]:
    """The embedding as a list, copied only when it is not one (copies cost GC time)."""
    return vector if isinstance(vector, list) else list(vector)


def _items(texts: Iterable[str], metadatas: Iterable[dict[str, Any] | None] | None,
           ids: Iterable[Id | None] | None) -> tuple[Iterable[Item], int | None]:
    """The inputs as (text, metadata, id) and their number (None: a stream). Lengths of
    sized inputs are checked now; a stream's as it goes."""
    if isinstance(texts, Sized):
        metas = None if metadatas is None else _listed(metadatas)
        given = None if ids is None else _listed(ids)
        for name, column in (("metadatas", metas), ("ids", given)):
            if column is not None and len(column) != len(texts):
                raise ValueError(f"got {len(texts)} texts but {len(column)} {name}")
        return zip(texts, metas if metas is not None else repeat(None),
                   given if given is not None else repeat(None), strict=False), len(texts)
    return _zip_checked(texts, "texts", ("metadatas", metadatas), ("ids", ids)), None  # type: ignore[return-value]


def _listed(values: Iterable[T]) -> Sequence[T]:
    return values if isinstance(values, Sequence) else list(values)


def _zip_checked(first: Iterable[Any], first_name: str,
                 *others: tuple[str, Iterable[Any] | None]) -> Iterator[tuple[Any, ...]]:
    """`first` zipped with the other columns (None: None values), lengths checked as it goes."""
    columns = [(name, iter(c) if c is not None else None) for name, c in others]
    for n, value in enumerate(first):
        row = [value]
        for name, column in columns:
            other = None if column is None else next(column, _MISSING)
            if other is _MISSING:
                raise ValueError(f"got more {first_name} than {name} ({n})")
            row.append(other)
        yield tuple(row)
    for name, column in columns:
        if column is not None and next(column, _MISSING) is not _MISSING:
            raise ValueError(f"got more {name} than {first_name}")


def _document_items(documents: Iterable[Document], ids: Iterable[Id | None] | None
                    ) -> tuple[Iterable[Item], int | None]:
    if isinstance(documents, Sized):
        docs = list(documents)
        return _items([d.page_content for d in docs], [d.metadata for d in docs],
                      ids if ids is not None else [d.id for d in docs])
    if ids is None:
        return ((d.page_content, d.metadata, d.id) for d in documents), None
    return ((d.page_content, d.metadata, i)
            for d, i in _zip_checked(documents, "documents", ("ids", ids))), None


def _to_record(item: Item, int_ids: bool = False) -> Record:
    text, metadata, id_ = item
    if isinstance(id_, uuid.UUID):
        id_ = str(id_)
    if id_ is not None and (not isinstance(id_, str) or not id_) and not (
            int_ids and is_int_id(id_)):
        raise ValueError(f"ids must be non-empty strings{', uuid.UUIDs or unsigned 64-bit ints' if int_ids else ''} "
                         f"(None: a generated id), got {id_!r}")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise TypeError(f"metadatas must be dicts (or None), got {type(metadata).__name__} "
                        f"{metadata!r}")
    record = Record(id=id_ if id_ is not None else new_id(), text=text,  # type: ignore[arg-type]
                    metadata=dict(metadata) if metadata else {})
    check_record(record)
    return record


def _record_id(record: Record) -> str:
    return record.id


class BackendVectorStore(VectorStore):
    """A LangChain `VectorStore` over any `Backend` (sync and async, same results)."""

    def __init__(
        self,
        embedding: Embeddings | None,
        backend: Backend,
        *,
        retrieval_mode: RetrievalMode = "dense",
        sparse_embedding: Any = None,
        batch_size: int = 64,
        create_collection: bool = True,
        dim: int | None = None,
        progress: bool | None = None,
        parallel: int | None = None,
        relevance_score_fn: Any = None,
        dense: bool | None = None,
        validate: bool = False,
    ) -> None:
        """`dense`: store dense vectors (default: when there is an embedding); `validate`:
        check an existing collection against the store when it opens (size, distance)."""
        retrieval_mode = getattr(retrieval_mode, "value", retrieval_mode)  # a peer's enum
        if retrieval_mode not in ("dense", "sparse", "hybrid"):
            raise ValueError(f"retrieval_mode must be dense, sparse or hybrid, got {retrieval_mode!r}")
        if embedding is None and retrieval_mode != "sparse":
            raise ValueError(f"embedding=None works with retrieval_mode='sparse' only (a "
                             f"sparse-only store), not {retrieval_mode!r}")
        if relevance_score_fn is not None and not callable(relevance_score_fn):
            raise TypeError(f"relevance_score_fn must be a callable (score -> relevance), got "
                            f"{relevance_score_fn!r}")
        self.override_relevance_score_fn = relevance_score_fn
        self.embedding = embedding
        self.backend = backend
        self.retrieval_mode: RetrievalMode = retrieval_mode
        self.batch_size = check_batch_size(batch_size)
        self.progress = progress
        # Writes in flight (core.ingest); None: as many as the backend allows.
        self.parallel = None if parallel is None else check_parallel(parallel)
        # Engines with their own keyword index (Weaviate) need no client-side sparse vectors.
        self._builtin_bm25 = bool(getattr(backend, "builtin_bm25", False))
        wants_sparse = retrieval_mode != "dense" or sparse_embedding is not None
        if wants_sparse and sparse_embedding is None and not self._builtin_bm25:
            from embedders import SparseEncoder

            sparse_embedding = SparseEncoder()
        if hasattr(sparse_embedding, "for_collection"):  # BM25 avg_len of this collection
            sparse_embedding = sparse_embedding.for_collection(backend)
        self.sparse_embedding = sparse_embedding if not self._builtin_bm25 else None
        self._sparse = wants_sparse
        self._dense = embedding is not None if dense is None else dense
        self._dim = dim if self._dense else 0
        self._create = create_collection
        self._validate = validate
        # A backend with only an async client gets its collection on the first async call.
        self._ready = False
        if getattr(backend, "supports_sync", True):
            self._ready = self._make_ready()

    def _make_ready(self) -> bool:
        exists = self.backend.exists()
        if not exists and not self._create:
            raise CollectionNotFoundError(
                f"collection {self.backend.collection_name!r} does not exist")
        if not exists or self._validate:  # created, or checked against this store
            self.backend.ensure_collection(self._dimension(), self._sparse)
        return True

    async def _amake_ready(self) -> None:
        if self._ready:
            return
        exists = await self.backend.aexists()
        if not exists and not self._create:
            raise CollectionNotFoundError(
                f"collection {self.backend.collection_name!r} does not exist")
        if not exists or self._validate:
            dim = await asyncio.to_thread(self._dimension)
            await self.backend.aensure_collection(dim, self._sparse)
        self._ready = True

    # --- plumbing -------------------------------------------------------------------------
    @property
    def embeddings(self) -> Embeddings | None:  # type: ignore[override]
        """The dense embedding (None: a sparse-only store)."""
        return self.embedding

    @property
    def client(self) -> Any:
        """The engine client underneath (as langchain-qdrant's `client`)."""
        return getattr(self.backend, "client", None)

    def _config_error(self, message: str) -> ValueError:
        """The error of a store that does not fit its collection (a subclass per engine)."""
        return ValueError(message)

    def _require_dense(self, operation: str) -> None:
        if not self._dense:
            raise self._config_error(
                f"{operation} needs dense vectors, and this store keeps sparse vectors only "
                f"(collection {self.backend.collection_name!r}, retrieval_mode='sparse')")

    def _embedder(self, operation: str) -> Embeddings:
        if self.embedding is None:
            raise ValueError(f"{operation} needs an embedding; this store has embedding=None "
                             "(sparse only)")
        return self.embedding

    def _dimension(self) -> int:
        """The dense vectors' size (0: a sparse-only store)."""
        if self._dim is None:
            self._dim = 0 if self.embedding is None else \
                len(self.embedding.embed_documents(["dimension probe"])[0])
        return self._dim

    def close(self) -> None:
        self.backend.close()

    async def aclose(self) -> None:
        await self.backend.aclose()

    def __enter__(self) -> BackendVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> BackendVectorStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _document(self, record: Record) -> Document:
        return to_document(record)

    def _select_relevance_score_fn(self) -> Any:
        if self.override_relevance_score_fn is not None:
            return self.override_relevance_score_fn
        return lambda score: relevance_score(score, self.retrieval_mode, self._distance())

    def _distance(self) -> str:
        return str(getattr(self.backend, "distance", "cosine"))

    # --- writes ---------------------------------------------------------------------------
    def _batches(self, items: Iterable[Item], total: int | None, batch_size: int | None
                 ) -> tuple[Iterator[list[Record]], list[str]]:
        """Batches of checked records, and the list their ids are gathered into (input order).
        A sized input is checked whole before anything is written; a stream batch by batch,
        each batch before it is written (bounded memory)."""
        int_ids = bool(getattr(self.backend, "int_ids", False))
        records: Iterable[Record] = (_to_record(item, int_ids) for item in items)
        size = batch_size or self.batch_size
        if total is not None:
            records = list(records)
            check = getattr(self.backend, "check_records", None)  # what the engine would refuse
            if check is not None:
                check(records)
            return batched(records, size), [r.id for r in records]
        ids: list[str] = []

        def taken() -> Iterator[list[Record]]:
            for batch in batched(records, size):
                ids.extend(r.id for r in batch)
                yield batch

        return taken(), ids

    def _embed(self, records: list[Record]) -> list[Record]:
        """Embedded copies (the caller's records never hold the vectors of a whole input)."""
        texts = [r.text for r in records]
        vectors = self.embedding.embed_documents(texts) \
            if self._dense and self.embedding is not None else None
        sparse = self.sparse_embedding.embed_documents(texts) if self.sparse_embedding else None
        return [Record(id=r.id, text=r.text, metadata=r.metadata,
                       vector=_as_list(vectors[i]) if vectors is not None else None,
                       sparse=sparse[i] if sparse else None) for i, r in enumerate(records)]

    def _write_backend(self, kwargs: dict[str, Any], what: str) -> Backend:
        """The backend a write runs on; its keyword arguments beyond the signature are
        refused with the close match (a subclass takes its engine's first)."""
        check_options(kwargs, ("ids", "batch_size", "parallel", "filter"), what)
        return self.backend

    def _add(self, items: Iterable[Item], total: int | None, batch_size: int | None,
             parallel: int | None, backend: Backend | None = None) -> list[str]:
        backend = backend or self.backend
        batches, ids = self._batches(items, total, batch_size)
        if total != 0 and not backend.exists():
            backend.ensure_collection(self._dimension(), self._sparse)
        pipeline(batches, self._embed, backend.upsert, total=total, progress=self.progress,
                 parallel=parallelism(backend, parallel, self.parallel), key=_record_id,
                 window=EMBED_WINDOW)  # embedders sort a window by length (less padding)
        return ids

    async def _aadd(self, items: Iterable[Item], total: int | None, batch_size: int | None,
                    parallel: int | None, backend: Backend | None = None) -> list[str]:
        backend = backend or self.backend
        batches, ids = self._batches(items, total, batch_size)
        await self._amake_ready()
        if total != 0 and not await backend.aexists():  # dropped since the store was made
            dim = await asyncio.to_thread(self._dimension)
            await backend.aensure_collection(dim, self._sparse)
        await apipeline(batches, self._embed, backend.aupsert, total=total,
                        progress=self.progress,
                        parallel=parallelism(backend, parallel, self.parallel),
                        key=_record_id, window=EMBED_WINDOW)
        return ids

    def add_texts(self, texts: Iterable[str],
                  metadatas: Iterable[dict[str, Any] | None] | None = None, *,
                  ids: Iterable[Id | None] | None = None, batch_size: int | None = None,
                  parallel: int | None = None, **kwargs: Any) -> list[str]:
        """Embed and upsert; returns the ids (given or new). `texts`, `metadatas` and `ids`
        may be any iterables: a list is checked whole before anything is written, a
        generator streams in bounded memory (each batch checked before it is written).
        `parallel`: writes in flight (default: the store's `parallel`, else the backend's)."""
        backend = self._write_backend(kwargs, "add_texts")
        return self._add(*_items(texts, metadatas, ids), batch_size, parallel, backend)

    async def aadd_texts(self, texts: Iterable[str],
                         metadatas: Iterable[dict[str, Any] | None] | None = None, *,
                         ids: Iterable[Id | None] | None = None, batch_size: int | None = None,
                         parallel: int | None = None, **kwargs: Any) -> list[str]:
        backend = self._write_backend(kwargs, "aadd_texts")
        return await self._aadd(*_items(texts, metadatas, ids), batch_size, parallel, backend)

    def add_documents(self, documents: Iterable[Document], **kwargs: Any) -> list[str]:  # type: ignore[override]
        """LangChain's `add_documents` for any iterable of documents (a generator streams, as
        in `add_texts`); `ids=` takes precedence over the documents' own ids."""
        items, total = _document_items(documents, kwargs.pop("ids", None))
        batch_size, parallel = kwargs.pop("batch_size", None), kwargs.pop("parallel", None)
        return self._add(items, total, batch_size, parallel,
                         self._write_backend(kwargs, "add_documents"))

    async def aadd_documents(self, documents: Iterable[Document], **kwargs: Any) -> list[str]:  # type: ignore[override]
        items, total = _document_items(documents, kwargs.pop("ids", None))
        batch_size, parallel = kwargs.pop("batch_size", None), kwargs.pop("parallel", None)
        return await self._aadd(items, total, batch_size, parallel,
                                self._write_backend(kwargs, "aadd_documents"))

    def delete(self, ids: list[str] | None = None, *, filter: Any = None,
               **kwargs: Any) -> bool | None:
        """Delete by ids, or by `filter=` (a dict, filter tree or native filter)."""
        backend = self._write_backend(kwargs, "delete")
        if ids is None and filter is None:
            raise ValueError("delete needs ids or filter=")
        if ids:
            backend.delete(ids)
        if filter is not None:
            backend.delete_where(parse_any(filter))
        return True

    async def adelete(self, ids: list[str] | None = None, *, filter: Any = None,
                      **kwargs: Any) -> bool | None:
        backend = self._write_backend(kwargs, "adelete")
        if ids is None and filter is None:
            raise ValueError("delete needs ids or filter=")
        await self._amake_ready()
        if ids:
            await backend.adelete(ids)
        if filter is not None:
            await backend.adelete_where(parse_any(filter))
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return [self._document(r) for r in self.backend.get(list(ids))]

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        await self._amake_ready()
        return [self._document(r) for r in await self.backend.aget(list(ids))]

    # --- queries ------------------------------------------------------------------------------
    def _text_query(self, text: str, k: int, filter: Any, mode: Mode | None = None,
                    **options: Any) -> Query:
        mode = mode or self.retrieval_mode
        vector = self._embedder("dense search").embed_query(text) if mode != "sparse" else None
        sparse = None
        if mode in ("sparse", "hybrid") and self.sparse_embedding is not None:
            sparse = self.sparse_embedding.embed_query(text)
        if mode == "hybrid":  # the same defaults as retrievers.langchain.HybridRetriever
            hybrid = Hybrid(alpha=options.get("alpha"), fusion=options.get("fusion", DEFAULT_FUSION),
                            rrf_k=options.get("rrf_k"),
                            prefetch_limit=options.get("prefetch_k", DEFAULT_PREFETCH_LIMIT))
            options.update(alpha=hybrid.effective_alpha, fusion=hybrid.fusion,
                           rrf_k=hybrid.effective_rrf_k, prefetch_k=hybrid.prefetch_limit)
        return Query(mode=mode, k=k, vector=vector, sparse=sparse, text=text,
                     filter=parse_any(filter), **options)

    def search_hits(self, query: Query) -> list[Hit]:
        """The raw hits of any `Query` (retrievers build on this)."""
        return self.backend.search(query)

    async def asearch_hits(self, query: Query) -> list[Hit]:
        await self._amake_ready()
        return await self.backend.asearch(query)

    def search_groups(self, query: Query) -> list[Group]:
        return self.backend.search_groups(query)

    async def asearch_groups(self, query: Query) -> list[Group]:
        await self._amake_ready()
        return await self.backend.asearch_groups(query)

    def similarity_search(self, query: str, k: int = 4, filter: Any = None,
                          **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    async def asimilarity_search(self, query: str, k: int = 4, filter: Any = None,
                                 **kwargs: Any) -> list[Document]:
        pairs = await self.asimilarity_search_with_score(query, k, filter, **kwargs)
        return [doc for doc, _ in pairs]

    def similarity_search_with_score(self, query: str, k: int = 4, filter: Any = None,
                                     **kwargs: Any) -> list[tuple[Document, float]]:
        """(document, raw score) pairs; higher is better in every mode (README: Scores)."""
        q = self._text_query(query, k, filter, **_options(kwargs))
        return [(self._document(h.record), h.score) for h in self.backend.search(q)]

    async def asimilarity_search_with_score(self, query: str, k: int = 4, filter: Any = None,
                                            **kwargs: Any) -> list[tuple[Document, float]]:
        q = await asyncio.to_thread(self._text_query, query, k, filter, **_options(kwargs))
        return [(self._document(h.record), h.score) for h in await self.asearch_hits(q)]

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, filter: Any = None,
                                    **kwargs: Any) -> list[Document]:
        return [d for d, _ in self.similarity_search_with_score_by_vector(embedding, k, filter, **kwargs)]

    async def asimilarity_search_by_vector(self, embedding: list[float], k: int = 4,
                                           filter: Any = None, **kwargs: Any) -> list[Document]:
        pairs = await self.asimilarity_search_with_score_by_vector(embedding, k, filter, **kwargs)
        return [d for d, _ in pairs]

    def similarity_search_with_score_by_vector(self, embedding: list[float], k: int = 4,
                                               filter: Any = None, **kwargs: Any
                                               ) -> list[tuple[Document, float]]:
        q = Query(mode="dense", k=k, vector=list(embedding), filter=parse_any(filter),
                  **_options(kwargs))
        return [(self._document(h.record), h.score) for h in self.backend.search(q)]

    async def asimilarity_search_with_score_by_vector(self, embedding: list[float], k: int = 4,
                                                      filter: Any = None, **kwargs: Any
                                                      ) -> list[tuple[Document, float]]:
        q = Query(mode="dense", k=k, vector=list(embedding), filter=parse_any(filter),
                  **_options(kwargs))
        return [(self._document(h.record), h.score) for h in await self.asearch_hits(q)]

    def _similarity_search_with_relevance_scores(self, query: str, k: int = 4,
                                                 **kwargs: Any) -> list[tuple[Document, float]]:
        to_relevance = self._select_relevance_score_fn()
        return [(d, to_relevance(s)) for d, s in self.similarity_search_with_score(query, k, **kwargs)]

    async def _asimilarity_search_with_relevance_scores(self, query: str, k: int = 4,
                                                        **kwargs: Any
                                                        ) -> list[tuple[Document, float]]:
        to_relevance = self._select_relevance_score_fn()
        pairs = await self.asimilarity_search_with_score(query, k, **kwargs)
        return [(d, to_relevance(s)) for d, s in pairs]

    def max_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20,
                                      lambda_mult: float = 0.5, filter: Any = None,
                                      **kwargs: Any) -> list[Document]:
        self._require_dense("max_marginal_relevance_search")
        vector = self._embedder("max_marginal_relevance_search").embed_query(query)
        return self.max_marginal_relevance_search_by_vector(vector, k, fetch_k, lambda_mult,
                                                            filter, **kwargs)

    async def amax_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20,
                                             lambda_mult: float = 0.5, filter: Any = None,
                                             **kwargs: Any) -> list[Document]:
        self._require_dense("max_marginal_relevance_search")
        vector = await asyncio.to_thread(
            self._embedder("max_marginal_relevance_search").embed_query, query)
        return await self.amax_marginal_relevance_search_by_vector(vector, k, fetch_k,
                                                                   lambda_mult, filter, **kwargs)

    def max_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4,
                                                fetch_k: int = 20, lambda_mult: float = 0.5,
                                                filter: Any = None, **kwargs: Any
                                                ) -> list[Document]:
        """lambda_mult = 1: pure relevance; 0: maximal diversity (on every engine)."""
        self._require_dense("max_marginal_relevance_search")
        q = Query(mode="mmr", k=k, vector=list(embedding), fetch_k=fetch_k,
                  lambda_mult=lambda_mult, filter=parse_any(filter), **_options(kwargs))
        return [self._document(h.record) for h in self.backend.search(q)]

    async def amax_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4,
                                                       fetch_k: int = 20,
                                                       lambda_mult: float = 0.5,
                                                       filter: Any = None, **kwargs: Any
                                                       ) -> list[Document]:
        self._require_dense("max_marginal_relevance_search")
        q = Query(mode="mmr", k=k, vector=list(embedding), fetch_k=fetch_k,
                  lambda_mult=lambda_mult, filter=parse_any(filter), **_options(kwargs))
        return [self._document(h.record) for h in await self.asearch_hits(q)]

    def as_retriever(self, **kwargs: Any) -> Any:
        """LangChain's search types, plus "hybrid", "bm25", "recommend", "discover" and
        "grouped": those return the `retrievers.langchain` retriever, `search_kwargs` as its
        settings (e.g. `as_retriever(search_type="hybrid", search_kwargs={"k": 5, "alpha": 0.5})`)."""
        search_type = kwargs.get("search_type", "similarity")
        if search_type not in SEARCH_TYPES:
            known = ("similarity", "similarity_score_threshold", "mmr", *SEARCH_TYPES)
            if search_type not in known:
                raise ValueError(f"unknown search_type {search_type!r}; choose one of {known}")
            return super().as_retriever(**kwargs)
        kwargs.pop("search_type")
        settings = dict(kwargs.pop("search_kwargs", None) or {})
        return SEARCH_TYPES[search_type](vectorstore=self, **settings, **kwargs)

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings,
                   metadatas: list[dict[str, Any]] | None = None, *, ids: list[str] | None = None,
                   **kwargs: Any) -> Any:
        store = cls(embedding=embedding, **kwargs)  # type: ignore[call-arg]
        store.add_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    async def afrom_texts(cls, texts: list[str], embedding: Embeddings,
                          metadatas: list[dict[str, Any]] | None = None, *,
                          ids: list[str] | None = None, **kwargs: Any) -> Any:
        store = await asyncio.to_thread(lambda: cls(embedding=embedding, **kwargs))  # type: ignore[call-arg]
        await store.aadd_texts(texts, metadatas, ids=ids)
        return store


# Search keywords that pass through to `Query`; anything else is a mistake worth reporting.
_QUERY_OPTIONS = {"score_threshold", "offset", "fusion", "alpha", "prefetch_k", "rrf_k", "with_vectors",
                  "consistency", "search_params", "shard_key"}


def _options(kwargs: dict[str, Any]) -> dict[str, Any]:
    if "shard_key_selector" in kwargs:  # langchain-qdrant passes it on to query_points
        kwargs["shard_key"] = kwargs.pop("shard_key_selector")
    if "hybrid_fusion" in kwargs:  # langchain-qdrant: a FusionQuery (RRF or DBSF)
        given = kwargs.pop("hybrid_fusion")
        fusion = getattr(getattr(given, "fusion", given), "value", given)
        if given is not None:
            kwargs.setdefault("fusion", fusion)
    check_options(kwargs, _QUERY_OPTIONS, "search")
    return kwargs


@functools.cache
def _qdrant_store_error() -> type[ValueError]:
    """QdrantVectorStoreError: a ValueError that is also langchain-qdrant's error class when
    that package is installed, so its users' `except QdrantVectorStoreError` keeps working."""
    peer: type[Exception] = Exception
    try:
        from langchain_qdrant.qdrant import QdrantVectorStoreError as peer
    except ImportError:
        pass
    return type("QdrantVectorStoreError", (ValueError, peer), {
        "__module__": __name__,
        "__doc__": "An existing Qdrant collection does not fit the store (size, distance, names)."})


def __getattr__(name: str) -> Any:
    if name == "QdrantVectorStoreError":
        return _qdrant_store_error()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _positional(args: tuple[Any, ...], options: dict[str, Any]
                ) -> tuple[Any, str | None, tuple[Any, ...]]:
    """(embedding or client, collection_name, the rest) from positional and keyword arguments;
    a client given first is langchain-qdrant's order, its embedding then a keyword or third."""
    from qdrant_client import AsyncQdrantClient, QdrantClient

    if args and isinstance(args[0], QdrantClient | AsyncQdrantClient):
        if "collection_name" in options and len(args) > 1:
            raise TypeError("QdrantVectorStore got multiple values for argument 'collection_name'")
        return args[0], options.pop("collection_name", args[1] if len(args) > 1 else None), args[2:]
    names = ("embedding", "collection_name")
    given = dict(zip(names, args, strict=False))
    for name in names:
        if name in options:
            if name in given:
                raise TypeError(f"QdrantVectorStore got multiple values for argument {name!r}")
            given[name] = options.pop(name)
    return given.get("embedding"), given.get("collection_name"), args[2:]


# langchain-qdrant 1.1.0's constructor, positionally after (client, collection_name).
_LC_QDRANT_POSITIONAL = ("embedding", "retrieval_mode", "vector_name", "content_payload_key",
                         "metadata_payload_key", "distance", "sparse_embedding",
                         "sparse_vector_name", "validate_embeddings", "validate_collection_config")
# Spellings only langchain-qdrant has: one of them makes the store take its defaults.
_LC_QDRANT_ONLY = {"location", "content_payload_key", "metadata_payload_key", "force_recreate",
                   "collection_create_options", "vector_params", "sparse_vector_params",
                   "validate_embeddings", "validate_collection_config", "client_async"}


def _from_langchain_qdrant(first: Any, collection_name: Any, args: tuple[Any, ...],
                           options: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """langchain-qdrant's spellings -> ours: (whether the peer's spellings were used, the
    options). The peer's way: `QdrantVectorStore(client, collection_name, embedding, ...)`,
    `location=`, `distance=models.Distance.X`, `retrieval_mode=RetrievalMode.X`,
    `collection_create_options=`, `client_async=`, ... (README: Switching from the official
    integrations). The peer's defaults follow: its layout (`page_content` / `metadata`, ids as
    point ids, `_id` / `_collection_name` in returned metadata), vector names "" and
    "langchain-sparse", no dense vector in sparse mode, a random collection name."""
    from qdrant_client import AsyncQdrantClient, QdrantClient, models

    positional_client = isinstance(first, QdrantClient | AsyncQdrantClient)
    if args and not positional_client:
        raise TypeError(f"QdrantVectorStore takes (embedding, collection_name) positionally, "
                        f"or langchain-qdrant's (client, collection_name, embedding, ...); got "
                        f"{len(args) + 2} positional arguments, the first a {type(first).__name__}")
    if len(args) > len(_LC_QDRANT_POSITIONAL):
        raise TypeError(f"too many positional arguments ({len(args) + 2})")
    if positional_client:
        key = "client" if isinstance(first, QdrantClient) else "async_client"
        options[key] = first
        for name, value in zip(_LC_QDRANT_POSITIONAL, args, strict=False):
            if name in options and options[name] is not _MISSING:
                raise TypeError(f"QdrantVectorStore got multiple values for argument {name!r}")
            options[name] = value
    else:
        options["embedding"] = first
    options = {k: v for k, v in options.items() if v is not _MISSING}
    peer = positional_client or bool(_LC_QDRANT_ONLY & set(options)) or any(
        isinstance(options.get(k), Enum) for k in ("retrieval_mode", "distance"))
    if "client_async" in options:
        options["async_client"] = options.pop("client_async")
    if "collection_create_options" in options:
        options["collection_options"] = options.pop("collection_create_options")
    distance = options.get("distance")
    if isinstance(distance, models.Distance):
        options["distance"] = distance.value.lower()
    if "retrieval_mode" in options:
        options["retrieval_mode"] = getattr(options["retrieval_mode"], "value",
                                            options["retrieval_mode"])
    validate_embeddings = options.pop("validate_embeddings", True)
    options["validate"] = options.pop("validate_collection_config", True)
    if peer:
        options.setdefault("new_layout", "langchain")
        if collection_name is None:
            collection_name = uuid.uuid4().hex
        mode = options.get("retrieval_mode", "dense")
        options["dense"] = mode != "sparse"
        if mode == "dense":  # the peer embeds sparse vectors in sparse and hybrid modes only
            options.pop("sparse_embedding", None)
        if validate_embeddings:
            if mode != "sparse" and options.get("embedding") is None:
                raise ValueError(f"'embedding' cannot be None when retrieval mode is {mode!r}")
            if mode != "dense" and options.get("sparse_embedding") is None:
                raise ValueError(f"'sparse_embedding' cannot be None when retrieval mode is "
                                 f"{mode!r} (langchain-qdrant's rule, validate_embeddings=True)")
    options["collection_name"] = "docs" if collection_name is None else collection_name
    return peer, options


class QdrantVectorStore(BackendVectorStore):
    """LangChain store over Qdrant. No connection argument: embedded in-memory Qdrant.

    `path=` embedded on disk; `url=` / `host=` a server or Qdrant Cloud (`api_key=`);
    `client=` / `async_client=` an existing client (never closed by the store).
    langchain-qdrant's spellings work too (`_from_langchain_qdrant`).
    """

    # langchain-qdrant's class attributes: its payload keys and vector names.
    CONTENT_KEY: str = "page_content"
    METADATA_KEY: str = "metadata"
    VECTOR_NAME: str = ""
    SPARSE_VECTOR_NAME: str = "langchain-sparse"

    def __init__(self, *args: Any, retrieval_mode: RetrievalMode | Any = _MISSING,
                 sparse_embedding: Any = _MISSING, batch_size: int = 64,
                 create_collection: bool = True, dim: int | None = None,
                 progress: bool | None = None, parallel: int | None = None,
                 relevance_score_fn: Any = None, force_recreate: bool = False,
                 **backend_options: Any) -> None:
        """`QdrantVectorStore(embedding, collection_name="docs", **options)`, or
        langchain-qdrant's `QdrantVectorStore(client, collection_name, embedding, ...)`."""
        from .backends.qdrant import QdrantBackend

        first, collection_name, peer_args = _positional(args, backend_options)
        peer, options = _from_langchain_qdrant(
            first, collection_name, peer_args,
            {**backend_options, "retrieval_mode": retrieval_mode,
             "sparse_embedding": sparse_embedding,
             **({"force_recreate": True} if force_recreate else {})})
        store = {k: options.pop(k) for k in ("embedding", "retrieval_mode", "sparse_embedding",
                                             "dense", "validate") if k in options}
        options.pop("force_recreate", None)
        self.peer_spellings = peer
        with closed_on_error(QdrantBackend(**options)) as backend:
            if force_recreate and backend.exists():
                backend.drop()
            super().__init__(store.pop("embedding", None), backend, batch_size=batch_size,
                             create_collection=create_collection, dim=dim, progress=progress,
                             parallel=parallel, relevance_score_fn=relevance_score_fn, **store)

    def _config_error(self, message: str) -> ValueError:
        return _qdrant_store_error()(message)

    def _write_backend(self, kwargs: dict[str, Any], what: str) -> Any:
        """`shard_key_selector=` (custom sharding; langchain-qdrant passes it on to upsert):
        the write goes to that shard key."""
        key = kwargs.pop("shard_key_selector", None)
        backend = super()._write_backend(kwargs, what)
        return backend if key is None else backend.for_shard_key(key)  # type: ignore[attr-defined]

    def _make_ready(self) -> bool:
        from .backends.qdrant import CollectionConfigError

        try:
            return super()._make_ready()
        except CollectionConfigError as exc:
            raise _qdrant_store_error()(str(exc)) from None

    async def _amake_ready(self) -> None:
        from .backends.qdrant import CollectionConfigError

        try:
            await super()._amake_ready()
        except CollectionConfigError as exc:
            raise _qdrant_store_error()(str(exc)) from None

    def _document(self, record: Record) -> Document:
        """As langchain-qdrant returns documents of its layout: metadata also holds the point
        id (`_id`) and the collection (`_collection_name`)."""
        doc = to_document(record)
        if getattr(self.backend, "layout", None) == "langchain":
            doc.metadata = {**doc.metadata, "_id": qdrant_point_id(record.id),
                            "_collection_name": self.backend.collection_name}
        return doc

    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings | None = None,
                   metadatas: list[dict[str, Any]] | None = None,
                   ids: Sequence[Id] | None = None, *, batch_size: int = 64,
                   **kwargs: Any) -> QdrantVectorStore:
        store = cls(embedding=embedding, batch_size=batch_size, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    async def afrom_texts(cls, texts: list[str], embedding: Embeddings | None = None,
                          metadatas: list[dict[str, Any]] | None = None,
                          ids: Sequence[Id] | None = None, *, batch_size: int = 64,
                          **kwargs: Any) -> QdrantVectorStore:
        store = await asyncio.to_thread(
            lambda: cls(embedding=embedding, batch_size=batch_size, **kwargs))
        await store.aadd_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    def from_existing_collection(cls, *args: Any, **kwargs: Any) -> QdrantVectorStore:
        """`from_existing_collection(embedding, collection_name, **options)`: open a collection
        that must exist (a clear error otherwise). langchain-qdrant's order,
        `(collection_name, embedding, retrieval_mode, ...)`, works too: told apart by type."""
        if args and isinstance(args[0], str):  # the peer's order
            names = ("collection_name", "embedding", "retrieval_mode")
            if len(args) > len(names):
                raise TypeError("from_existing_collection(collection_name, embedding, "
                                f"retrieval_mode) takes 3 positional arguments, got {len(args)}")
            for name, value in zip(names, args, strict=False):
                if name in kwargs:
                    raise TypeError(f"from_existing_collection got multiple values for {name!r}")
                kwargs[name] = value
            args = ()
        return cls(*args, create_collection=False, **kwargs)


# langchain-weaviate 0.0.8's constructor, positionally.
_LC_WEAVIATE_POSITIONAL = ("client", "index_name", "text_key", "embedding", "schema",
                           "attributes", "relevance_score_fn", "use_multi_tenancy",
                           "client_async")
# Spellings only langchain-weaviate has (with `client=` and no `collection_name=`).
_LC_WEAVIATE_ONLY = {"index_name", "text_key", "use_multi_tenancy", "client_async", "schema",
                     "attributes"}


def _peer_call(options: dict[str, Any]) -> bool:
    return bool(_LC_WEAVIATE_ONLY & set(options)) or (
        "client" in options and "collection_name" not in options)


def _peer_relevance(score: float) -> float:
    """langchain-weaviate's default relevance of a hybrid score: a logistic curve."""
    return float(1 - 1 / (1 + math.exp(max(-709.0, min(709.0, score)))))


def _from_langchain_weaviate(args: tuple[Any, ...], options: dict[str, Any]
                             ) -> tuple[bool, dict[str, Any]]:
    """langchain-weaviate's spellings -> ours: (whether the peer's spellings were used, the
    options). The peer's way: `WeaviateVectorStore(client, index_name, text_key, embedding=,
    schema=, use_multi_tenancy=, client_async=, relevance_score_fn=)` (also as keywords;
    `client=` without `collection_name=` is the peer's). Its defaults follow: the flat layout
    of weaviate_layout for new collections, created from `schema` or the peer's default schema
    dict (multi-tenant when asked: a bool or its MultiTenancyConfig dict), a random
    `LangChain_<hex>` name, searches that are Weaviate's hybrid with the peer's keywords."""
    import weaviate

    positional_client = bool(args) and isinstance(args[0], weaviate.WeaviateClient)
    peer = positional_client or (_peer_call(options) and not args)
    if not peer:
        return False, options
    if len(args) > len(_LC_WEAVIATE_POSITIONAL):
        raise TypeError(f"too many positional arguments ({len(args)})")
    for name, value in zip(_LC_WEAVIATE_POSITIONAL, args, strict=False):
        if name in options:
            raise TypeError(f"WeaviateVectorStore got multiple values for argument {name!r}")
        options[name] = value
    client_async = options.pop("client_async", None)
    if client_async is not None and not isinstance(client_async, weaviate.WeaviateAsyncClient):
        raise TypeError("client_async must be an instance of WeaviateAsyncClient, got "
                        f"{type(client_async).__name__}")
    if options.get("client") is None:
        raise ValueError("client must be an instance of WeaviateClient (langchain-weaviate's "
                         "spelling), got None")
    if client_async is not None:
        options["async_client"] = client_async
    options.pop("attributes", None)  # returned properties: all, as the peer's v4 code does
    name = options.pop("index_name", None)
    options["collection_name"] = name or f"LangChain_{uuid.uuid4().hex}"
    options["multi_tenancy"] = options.pop("use_multi_tenancy", False)  # a bool or its config
    if options.get("schema") is None:  # the backend makes the peer's default schema
        options.pop("schema", None)
    options.setdefault("text_key", "text")
    options.setdefault("new_layout", "flat")
    options.setdefault("relevance_score_fn", _peer_relevance)
    return True, options


class WeaviateVectorStore(BackendVectorStore):
    """LangChain store over Weaviate. No connection argument: embedded Weaviate.

    `url=` / `host=` a server or Weaviate Cloud (`api_key=`, `headers=`); `client=` /
    `async_client=` existing clients (never closed by the store; an async client works in the
    loop it was opened in, while the store's own async clients are one per event loop);
    `tenant=` multi-tenancy. langchain-weaviate's spellings work too
    (`_from_langchain_weaviate`); collections it wrote are read and written in its layout.
    """

    def __init__(self, *args: Any, retrieval_mode: RetrievalMode = "dense", batch_size: int = 64,
                 create_collection: bool = True, dim: int | None = None,
                 progress: bool | None = None, parallel: int | None = None,
                 **backend_options: Any) -> None:
        """`WeaviateVectorStore(embedding, collection_name="Docs", **options)`, or
        langchain-weaviate's `WeaviateVectorStore(client, index_name, text_key, embedding)`."""
        from .backends.weaviate import WeaviateBackend

        peer, options = _from_langchain_weaviate(args, backend_options)
        if not peer:
            for name, value in zip(("embedding", "collection_name"), args, strict=False):
                if name in options:
                    raise TypeError(f"WeaviateVectorStore got multiple values for {name!r}")
                options[name] = value
            if len(args) > 2:
                raise TypeError("WeaviateVectorStore takes (embedding, collection_name) "
                                f"positionally, got {len(args)} positional arguments")
        embedding = options.pop("embedding", None)
        relevance_score_fn = options.pop("relevance_score_fn", None)
        collection_name = options.pop("collection_name", "Docs")
        self.peer_spellings = peer
        if peer:  # hybrid searches; no dimension probe (the peer never embeds one)
            retrieval_mode = "hybrid" if embedding is not None else "sparse"
            dim = 0 if dim is None else dim
        check_options(options, parameters(WeaviateBackend.__init__), "Weaviate store")
        with closed_on_error(WeaviateBackend(collection_name, **options)) as backend:
            super().__init__(embedding, backend,
                             retrieval_mode=retrieval_mode, batch_size=batch_size,
                             create_collection=create_collection, dim=dim, progress=progress,
                             parallel=parallel, relevance_score_fn=relevance_score_fn)

    _view = False

    def __del__(self) -> None:
        """A store that opened its own client closes it when collected (yours stay open)."""
        backend = getattr(self, "backend", None)
        if backend is not None and not self._view:
            with contextlib.suppress(Exception):
                backend.close()

    @property
    def schema(self) -> dict[str, Any] | None:
        """The schema dict a new collection of the peer's layout is created from (None: ours)."""
        return self.backend.schema  # type: ignore[attr-defined,no-any-return]

    @classmethod
    def from_existing_collection(cls, embedding: Embeddings, collection_name: str,
                                 **kwargs: Any) -> WeaviateVectorStore:
        return cls(embedding, collection_name, create_collection=False, **kwargs)

    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings | None = None,
                   metadatas: list[dict[str, Any]] | None = None, *,
                   ids: list[str] | None = None, tenant: str | None = None,
                   **kwargs: Any) -> Any:
        """As BackendVectorStore.from_texts; langchain-weaviate's `client=`, `index_name=`,
        `text_key=`, `tenant=` (a multi-tenant collection) and `uuids=` work too."""
        uuids = kwargs.pop("uuids", None)
        if tenant is not None and not _peer_call(kwargs):  # ours: the store's tenant
            kwargs["tenant"], tenant = tenant, None
        elif tenant is not None:
            kwargs.setdefault("use_multi_tenancy", True)
        store = cls(embedding=embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids if uuids is None else uuids, tenant=tenant)
        return store

    @classmethod
    async def afrom_texts(cls, texts: list[str], embedding: Embeddings | None = None,
                          metadatas: list[dict[str, Any]] | None = None, *,
                          ids: list[str] | None = None, tenant: str | None = None,
                          **kwargs: Any) -> Any:
        uuids = kwargs.pop("uuids", None)
        if tenant is not None and not _peer_call(kwargs):  # ours: the store's tenant
            kwargs["tenant"], tenant = tenant, None
        elif tenant is not None:
            kwargs.setdefault("use_multi_tenancy", True)
        store = await asyncio.to_thread(lambda: cls(embedding=embedding, **kwargs))
        await store.aadd_texts(texts, metadatas, ids=ids if uuids is None else uuids,
                               tenant=tenant)
        return store

    # --- langchain-weaviate's per-call tenant and search keywords ---------------------------
    def _in_tenant(self, tenant: str | None) -> WeaviateVectorStore:
        """This store in `tenant` (per call, as langchain-weaviate): same clients."""
        if tenant is None:
            return self
        store = copy.copy(self)
        store.backend = self.backend.for_tenant(tenant)  # type: ignore[attr-defined]
        store._view = True  # shares this store's clients: closes nothing when collected
        return store

    def add_texts(self, texts: Iterable[str],
                  metadatas: Iterable[dict[str, Any] | None] | None = None,
                  tenant: str | None = None, **kwargs: Any) -> list[str]:
        """BackendVectorStore.add_texts, plus per-call `tenant=` and `uuids=` (its ids)."""
        if "uuids" in kwargs:
            kwargs["ids"] = kwargs.pop("uuids")
        return BackendVectorStore.add_texts(self._in_tenant(tenant), texts, metadatas, **kwargs)

    async def aadd_texts(self, texts: Iterable[str],
                         metadatas: Iterable[dict[str, Any] | None] | None = None,
                         tenant: str | None = None, **kwargs: Any) -> list[str]:
        if "uuids" in kwargs:
            kwargs["ids"] = kwargs.pop("uuids")
        return await BackendVectorStore.aadd_texts(self._in_tenant(tenant), texts, metadatas,
                                                   **kwargs)

    def delete(self, ids: list[str] | None = None, *, filter: Any = None,
               tenant: str | None = None, **kwargs: Any) -> bool | None:
        if self.peer_spellings and ids is None and filter is None:
            raise ValueError("No ids provided to delete.")
        return BackendVectorStore.delete(self._in_tenant(tenant), ids, filter=filter, **kwargs)

    async def adelete(self, ids: list[str] | None = None, *, filter: Any = None,
                      tenant: str | None = None, **kwargs: Any) -> bool | None:
        if self.peer_spellings and ids is None and filter is None:
            raise ValueError("No ids provided to delete.")
        return await BackendVectorStore.adelete(self._in_tenant(tenant), ids, filter=filter,
                                                **kwargs)

    def _peer_search(self, query: str | None, vector: list[float] | None, k: int,
                     kwargs: dict[str, Any]) -> list[tuple[Document, float]]:
        """langchain-weaviate's search: Weaviate's hybrid over the query text and vector,
        its keywords passed through (`alpha`, `filters`, `return_metadata`,
        `return_properties`, `auto_limit`, `include_vector`, ...), per-call `tenant=`;
        `filter=` (our filter language) also works."""
        if self.embedding is None:
            raise ValueError("_embedding cannot be None for similarity_search (this store "
                             "has embedding=None)")
        backend = self.backend.for_tenant(kwargs.pop("tenant", None))  # type: ignore[attr-defined]
        if kwargs.get("filter") is not None:
            if kwargs.get("filters") is not None:
                raise TypeError("pass filter= or filters=, not both")
            kwargs["filters"] = kwargs.pop("filter")
        kwargs.pop("filter", None)
        if kwargs.get("filters") is not None:
            kwargs["filters"] = parse_any(kwargs["filters"])
        wanted = list(kwargs.get("return_metadata") or [])
        kwargs["return_metadata"] = wanted if "score" in wanted else [*wanted, "score"]
        if "return_properties" in kwargs and self.backend.text_key not in kwargs["return_properties"]:  # type: ignore[attr-defined]
            kwargs["return_properties"] = [*kwargs["return_properties"], self.backend.text_key]  # type: ignore[attr-defined]
        return_uuids = kwargs.pop("return_uuids", False)
        if vector is None:
            if query is None:
                raise ValueError("Either query or vector must be provided.")
            vector = self.embedding.embed_query(query)
        hits = backend.search_native("hybrid", query=query, vector=list(vector), limit=k,
                                     **kwargs)
        pairs = []
        for hit in hits:
            extra = {key: v for key, v in hit.extra["metadata"].items() if key != "score"}
            metadata = {**hit.record.metadata, **extra,
                        **({"vector": hit.record.vector} if hit.record.vector else {}),
                        **({"uuid": hit.extra["uuid"]} if return_uuids else {})}
            pairs.append((Document(page_content=hit.record.text, metadata=metadata), hit.score))
        return pairs

    def similarity_search(self, query: str, k: int = 4, filter: Any = None,
                          **kwargs: Any) -> list[Document]:
        if not self.peer_spellings:
            return super().similarity_search(query, k, filter, **kwargs)
        return [d for d, _ in self._peer_search(query, None, k, {"filter": filter, **kwargs})]

    def similarity_search_with_score(self, query: str, k: int = 4, filter: Any = None,
                                     **kwargs: Any) -> list[tuple[Document, float]]:
        if not self.peer_spellings:
            return super().similarity_search_with_score(query, k, filter, **kwargs)
        return self._peer_search(query, None, k, {"filter": filter, **kwargs})

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, filter: Any = None,
                                    **kwargs: Any) -> list[Document]:
        if not self.peer_spellings:
            return super().similarity_search_by_vector(embedding, k, filter, **kwargs)
        return [d for d, _ in self._peer_search(None, embedding, k, {"filter": filter, **kwargs})]

    def max_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20,
                                      lambda_mult: float = 0.5, filter: Any = None,
                                      **kwargs: Any) -> list[Document]:
        if self.peer_spellings and self.embedding is None:
            raise ValueError("max_marginal_relevance_search requires a suitable Embeddings object")
        return super().max_marginal_relevance_search(query, k, fetch_k, lambda_mult, filter,
                                                     **kwargs)

    def max_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4,
                                                fetch_k: int = 20, lambda_mult: float = 0.5,
                                                filter: Any = None, **kwargs: Any
                                                ) -> list[Document]:
        if not self.peer_spellings:
            return super().max_marginal_relevance_search_by_vector(
                embedding, k, fetch_k, lambda_mult, filter, **kwargs)
        pairs = self._peer_search(None, embedding, fetch_k,
                                  {"filter": filter, "include_vector": True, **kwargs})
        picked = mmr_select(embedding, [d.metadata["vector"] for d, _ in pairs], k, lambda_mult)
        docs = [pairs[i][0] for i in picked]
        for doc in docs:
            doc.metadata.pop("vector")
        return docs

    # Without an async client the peer runs its sync methods in an executor; so do we.
    async def asimilarity_search(self, query: str, k: int = 4, filter: Any = None,
                                 **kwargs: Any) -> list[Document]:
        if not self.peer_spellings:
            return await super().asimilarity_search(query, k, filter, **kwargs)
        return await asyncio.to_thread(self.similarity_search, query, k, filter, **kwargs)

    async def asimilarity_search_with_score(self, query: str, k: int = 4, filter: Any = None,
                                            **kwargs: Any) -> list[tuple[Document, float]]:
        if not self.peer_spellings:
            return await super().asimilarity_search_with_score(query, k, filter, **kwargs)
        return await asyncio.to_thread(self.similarity_search_with_score, query, k, filter,
                                       **kwargs)

    async def asimilarity_search_by_vector(self, embedding: list[float], k: int = 4,
                                           filter: Any = None, **kwargs: Any) -> list[Document]:
        if not self.peer_spellings:
            return await super().asimilarity_search_by_vector(embedding, k, filter, **kwargs)
        return await asyncio.to_thread(self.similarity_search_by_vector, embedding, k, filter,
                                       **kwargs)

    async def amax_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20,
                                             lambda_mult: float = 0.5, filter: Any = None,
                                             **kwargs: Any) -> list[Document]:
        if not self.peer_spellings:
            return await super().amax_marginal_relevance_search(query, k, fetch_k, lambda_mult,
                                                                filter, **kwargs)
        return await asyncio.to_thread(self.max_marginal_relevance_search, query, k, fetch_k,
                                       lambda_mult, filter, **kwargs)

    async def amax_marginal_relevance_search_by_vector(
            self, embedding: list[float], k: int = 4, fetch_k: int = 20,
            lambda_mult: float = 0.5, filter: Any = None, **kwargs: Any) -> list[Document]:
        if not self.peer_spellings:
            return await super().amax_marginal_relevance_search_by_vector(
                embedding, k, fetch_k, lambda_mult, filter, **kwargs)
        return await asyncio.to_thread(self.max_marginal_relevance_search_by_vector, embedding,
                                       k, fetch_k, lambda_mult, filter, **kwargs)
