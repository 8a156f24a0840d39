"""LangChain `VectorStore`s over Qdrant and Weaviate.

One class does the LangChain work (`BackendVectorStore`); `QdrantVectorStore` and
`WeaviateVectorStore` only choose the backend. Documents map to core records one to
one: `page_content` <-> text, `metadata` <-> metadata, `Document.id` <-> the user id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from itertools import repeat
from typing import Any, Literal, TypeVar

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from retrievers.langchain import SEARCH_TYPES

from .core.backend import Backend
from .core.filters import parse_any
from .core.ids import new_id
from .core.ingest import (
    EMBED_WINDOW,
    apipeline,
    batched,
    check_batch_size,
    check_parallel,
    parallelism,
    pipeline,
)
from .core.options import check_options, parameters
from .core.plans import closed_on_error
from .core.query import CollectionNotFoundError, Mode, Query
from .core.records import Group, Hit, Record, check_record
from .core.scores import relevance_score
from .core.strategies import DEFAULT_FUSION, DEFAULT_PREFETCH_LIMIT, Hybrid
from .documents import to_document

RetrievalMode = Literal["dense", "sparse", "hybrid"]
# One input document: text, metadata, id (None: a new one).
Item = tuple[str, "dict[str, Any] | None", "str | None"]
_MISSING: Any = object()
T = TypeVar("T")


def _as_list(vector: Any) -> list[float]:
    """The embedding as a list, copied only when it is not one (copies cost GC time)."""
    return vector if isinstance(vector, list) else list(vector)


def _items(texts: Iterable[str], metadatas: Iterable[dict[str, Any] | None] | None,
           ids: Iterable[str | None] | None) -> tuple[Iterable[Item], int | None]:
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


def _document_items(documents: Iterable[Document], ids: Iterable[str | None] | None
                    ) -> tuple[Iterable[Item], int | None]:
    if isinstance(documents, Sized):
        docs = list(documents)
        return _items([d.page_content for d in docs], [d.metadata for d in docs],
                      ids if ids is not None else [d.id for d in docs])
    if ids is None:
        return ((d.page_content, d.metadata, d.id) for d in documents), None
    return ((d.page_content, d.metadata, i)
            for d, i in _zip_checked(documents, "documents", ("ids", ids))), None


def _to_record(item: Item) -> Record:
    text, metadata, id_ = item
    if id_ is not None and (not isinstance(id_, str) or not id_):
        raise ValueError(f"ids must be non-empty strings (None: a generated id), got {id_!r}")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise TypeError(f"metadatas must be dicts (or None), got {type(metadata).__name__} "
                        f"{metadata!r}")
    record = Record(id=id_ if id_ is not None else new_id(), text=text,
                    metadata=dict(metadata) if metadata else {})
    check_record(record)
    return record


def _record_id(record: Record) -> str:
    return record.id


class BackendVectorStore(VectorStore):
    """A LangChain `VectorStore` over any `Backend` (sync and async, same results)."""

    def __init__(
        self,
        embedding: Embeddings,
        backend: Backend,
        *,
        retrieval_mode: RetrievalMode = "dense",
        sparse_embedding: Any = None,
        batch_size: int = 64,
        create_collection: bool = True,
        dim: int | None = None,
        progress: bool | None = None,
        parallel: int | None = None,
    ) -> None:
        if retrieval_mode not in ("dense", "sparse", "hybrid"):
            raise ValueError(f"retrieval_mode must be dense, sparse or hybrid, got {retrieval_mode!r}")
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
        self._dim = dim
        self._create = create_collection
        # A backend with only an async client gets its collection on the first async call.
        self._ready = False
        if getattr(backend, "supports_sync", True):
            self._ready = self._make_ready()

    def _make_ready(self) -> bool:
        if not self.backend.exists():
            if not self._create:
                raise CollectionNotFoundError(
                    f"collection {self.backend.collection_name!r} does not exist")
            self.backend.ensure_collection(self._dimension(), self._sparse)
        return True

    async def _amake_ready(self) -> None:
        if self._ready:
            return
        if not await self.backend.aexists():
            if not self._create:
                raise CollectionNotFoundError(
                    f"collection {self.backend.collection_name!r} does not exist")
            dim = await asyncio.to_thread(self._dimension)
            await self.backend.aensure_collection(dim, self._sparse)
        self._ready = True

    # --- plumbing -------------------------------------------------------------------------
    @property
    def embeddings(self) -> Embeddings:
        return self.embedding

    @property
    def client(self) -> Any:
        """The engine client underneath (as langchain-qdrant's `client`)."""
        return getattr(self.backend, "client", None)

    def _dimension(self) -> int:
        if self._dim is None:
            self._dim = len(self.embedding.embed_query("dimension probe"))
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

    def _select_relevance_score_fn(self) -> Any:
        return lambda score: relevance_score(score, self.retrieval_mode, self._distance())

    def _distance(self) -> str:
        return str(getattr(self.backend, "distance", "cosine"))

    # --- writes ---------------------------------------------------------------------------
    def _batches(self, items: Iterable[Item], total: int | None, batch_size: int | None
                 ) -> tuple[Iterator[list[Record]], list[str]]:
        """Batches of checked records, and the list their ids are gathered into (input order).
        A sized input is checked whole before anything is written; a stream batch by batch,
        each batch before it is written (bounded memory)."""
        records: Iterable[Record] = map(_to_record, items)
        size = batch_size or self.batch_size
        if total is not None:
            records = list(records)
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
        vectors = self.embedding.embed_documents(texts)
        sparse = self.sparse_embedding.embed_documents(texts) if self.sparse_embedding else None
        return [Record(id=r.id, text=r.text, metadata=r.metadata, vector=_as_list(vectors[i]),
                       sparse=sparse[i] if sparse else None) for i, r in enumerate(records)]

    def _add(self, items: Iterable[Item], total: int | None, batch_size: int | None,
             parallel: int | None) -> list[str]:
        batches, ids = self._batches(items, total, batch_size)
        if total != 0 and not self.backend.exists():
            self.backend.ensure_collection(self._dimension(), self._sparse)
        pipeline(batches, self._embed, self.backend.upsert, total=total, progress=self.progress,
                 parallel=parallelism(self.backend, parallel, self.parallel), key=_record_id,
                 window=EMBED_WINDOW)  # embedders sort a window by length (less padding)
        return ids

    async def _aadd(self, items: Iterable[Item], total: int | None, batch_size: int | None,
                    parallel: int | None) -> list[str]:
        batches, ids = self._batches(items, total, batch_size)
        await self._amake_ready()
        if total != 0 and not await self.backend.aexists():  # dropped since the store was made
            dim = await asyncio.to_thread(self._dimension)
            await self.backend.aensure_collection(dim, self._sparse)
        await apipeline(batches, self._embed, self.backend.aupsert, total=total,
                        progress=self.progress,
                        parallel=parallelism(self.backend, parallel, self.parallel),
                        key=_record_id, window=EMBED_WINDOW)
        return ids

    def add_texts(self, texts: Iterable[str],
                  metadatas: Iterable[dict[str, Any] | None] | None = None, *,
                  ids: Iterable[str | None] | None = None, batch_size: int | None = None,
                  parallel: int | None = None, **kwargs: Any) -> list[str]:
        """Embed and upsert; returns the ids (given or new). `texts`, `metadatas` and `ids`
        may be any iterables: a list is checked whole before anything is written, a
        generator streams in bounded memory (each batch checked before it is written).
        `parallel`: writes in flight (default: the store's `parallel`, else the backend's)."""
        return self._add(*_items(texts, metadatas, ids), batch_size, parallel)

    async def aadd_texts(self, texts: Iterable[str],
                         metadatas: Iterable[dict[str, Any] | None] | None = None, *,
                         ids: Iterable[str | None] | None = None, batch_size: int | None = None,
                         parallel: int | None = None, **kwargs: Any) -> list[str]:
        return await self._aadd(*_items(texts, metadatas, ids), batch_size, parallel)

    def add_documents(self, documents: Iterable[Document], **kwargs: Any) -> list[str]:  # type: ignore[override]
        """LangChain's `add_documents` for any iterable of documents (a generator streams, as
        in `add_texts`); `ids=` takes precedence over the documents' own ids."""
        items, total = _document_items(documents, kwargs.pop("ids", None))
        return self._add(items, total, kwargs.pop("batch_size", None), kwargs.pop("parallel", None))

    async def aadd_documents(self, documents: Iterable[Document], **kwargs: Any) -> list[str]:  # type: ignore[override]
        items, total = _document_items(documents, kwargs.pop("ids", None))
        return await self._aadd(items, total, kwargs.pop("batch_size", None),
                                kwargs.pop("parallel", None))

    def delete(self, ids: list[str] | None = None, *, filter: Any = None,
               **kwargs: Any) -> bool | None:
        """Delete by ids, or by `filter=` (a dict, filter tree or native filter)."""
        if ids is None and filter is None:
            raise ValueError("delete needs ids or filter=")
        if ids:
            self.backend.delete(ids)
        if filter is not None:
            self.backend.delete_where(parse_any(filter))
        return True

    async def adelete(self, ids: list[str] | None = None, *, filter: Any = None,
                      **kwargs: Any) -> bool | None:
        if ids is None and filter is None:
            raise ValueError("delete needs ids or filter=")
        await self._amake_ready()
        if ids:
            await self.backend.adelete(ids)
        if filter is not None:
            await self.backend.adelete_where(parse_any(filter))
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return [to_document(r) for r in self.backend.get(list(ids))]

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        await self._amake_ready()
        return [to_document(r) for r in await self.backend.aget(list(ids))]

    # --- queries ------------------------------------------------------------------------------
    def _text_query(self, text: str, k: int, filter: Any, mode: Mode | None = None,
                    **options: Any) -> Query:
        mode = mode or self.retrieval_mode
        vector = self.embedding.embed_query(text) if mode != "sparse" else None
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
        return [(to_document(h.record), h.score) for h in self.backend.search(q)]

    async def asimilarity_search_with_score(self, query: str, k: int = 4, filter: Any = None,
                                            **kwargs: Any) -> list[tuple[Document, float]]:
        q = await asyncio.to_thread(self._text_query, query, k, filter, **_options(kwargs))
        return [(to_document(h.record), h.score) for h in await self.asearch_hits(q)]

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
        return [(to_document(h.record), h.score) for h in self.backend.search(q)]

    async def asimilarity_search_with_score_by_vector(self, embedding: list[float], k: int = 4,
                                                      filter: Any = None, **kwargs: Any
                                                      ) -> list[tuple[Document, float]]:
        q = Query(mode="dense", k=k, vector=list(embedding), filter=parse_any(filter),
                  **_options(kwargs))
        return [(to_document(h.record), h.score) for h in await self.asearch_hits(q)]

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
        vector = self.embedding.embed_query(query)
        return self.max_marginal_relevance_search_by_vector(vector, k, fetch_k, lambda_mult,
                                                            filter, **kwargs)

    async def amax_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20,
                                             lambda_mult: float = 0.5, filter: Any = None,
                                             **kwargs: Any) -> list[Document]:
        vector = await asyncio.to_thread(self.embedding.embed_query, query)
        return await self.amax_marginal_relevance_search_by_vector(vector, k, fetch_k,
                                                                   lambda_mult, filter, **kwargs)

    def max_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4,
                                                fetch_k: int = 20, lambda_mult: float = 0.5,
                                                filter: Any = None, **kwargs: Any
                                                ) -> list[Document]:
        """lambda_mult = 1: pure relevance; 0: maximal diversity (on every engine)."""
        q = Query(mode="mmr", k=k, vector=list(embedding), fetch_k=fetch_k,
                  lambda_mult=lambda_mult, filter=parse_any(filter), **_options(kwargs))
        return [to_document(h.record) for h in self.backend.search(q)]

    async def amax_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4,
                                                       fetch_k: int = 20,
                                                       lambda_mult: float = 0.5,
                                                       filter: Any = None, **kwargs: Any
                                                       ) -> list[Document]:
        q = Query(mode="mmr", k=k, vector=list(embedding), fetch_k=fetch_k,
                  lambda_mult=lambda_mult, filter=parse_any(filter), **_options(kwargs))
        return [to_document(h.record) for h in await self.asearch_hits(q)]

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
                  "consistency"}


def _options(kwargs: dict[str, Any]) -> dict[str, Any]:
    unknown = set(kwargs) - _QUERY_OPTIONS
    if unknown:
        raise TypeError(f"unknown search option(s) {sorted(unknown)}; known: {sorted(_QUERY_OPTIONS)}")
    return kwargs


class QdrantVectorStore(BackendVectorStore):
    """LangChain store over Qdrant. No connection argument: embedded in-memory Qdrant.

    `path=` embedded on disk; `url=` / `host=` a server or Qdrant Cloud (`api_key=`);
    `client=` / `async_client=` an existing client (never closed by the store).
    """

    def __init__(self, embedding: Embeddings, collection_name: str = "docs", *,
                 retrieval_mode: RetrievalMode = "dense", sparse_embedding: Any = None,
                 batch_size: int = 64, create_collection: bool = True, dim: int | None = None,
                 progress: bool | None = None, parallel: int | None = None,
                 **backend_options: Any) -> None:
        from .backends.qdrant import QdrantBackend

        with closed_on_error(QdrantBackend(collection_name, **backend_options)) as backend:
            super().__init__(embedding, backend,
                             retrieval_mode=retrieval_mode, sparse_embedding=sparse_embedding,
                             batch_size=batch_size, create_collection=create_collection,
                             dim=dim, progress=progress, parallel=parallel)

    @classmethod
    def from_existing_collection(cls, embedding: Embeddings, collection_name: str,
                                 **kwargs: Any) -> QdrantVectorStore:
        """Open a collection that must exist (a clear error otherwise)."""
        return cls(embedding, collection_name, create_collection=False, **kwargs)


class WeaviateVectorStore(BackendVectorStore):
    """LangChain store over Weaviate. No connection argument: embedded Weaviate.

    `url=` / `host=` a server or Weaviate Cloud (`api_key=`, `headers=`); `client=` /
    `async_client=` existing clients (never closed by the store; an async client works in the
    loop it was opened in, while the store's own async clients are one per event loop);
    `tenant=` multi-tenancy.
    """

    def __init__(self, embedding: Embeddings, collection_name: str = "Docs", *,
                 retrieval_mode: RetrievalMode = "dense", batch_size: int = 64,
                 create_collection: bool = True, dim: int | None = None,
                 progress: bool | None = None, parallel: int | None = None,
                 **backend_options: Any) -> None:
        from .backends.weaviate import WeaviateBackend

        check_options(backend_options, parameters(WeaviateBackend.__init__), "Weaviate store")
        with closed_on_error(WeaviateBackend(collection_name, **backend_options)) as backend:
            super().__init__(embedding, backend,
                             retrieval_mode=retrieval_mode, batch_size=batch_size,
                             create_collection=create_collection, dim=dim, progress=progress,
                             parallel=parallel)

    @classmethod
    def from_existing_collection(cls, embedding: Embeddings, collection_name: str,
                                 **kwargs: Any) -> WeaviateVectorStore:
        return cls(embedding, collection_name, create_collection=False, **kwargs)
