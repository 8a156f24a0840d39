"""LlamaIndex vector stores over Qdrant and Weaviate (they store text: stores_text=True).

Nodes map to core records: node_id <-> id, text <-> text, metadata <-> metadata,
ref_doc_id and relationships kept beside them, so LangChain reads what LlamaIndex wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.schema import (
    BaseNode,
    MetadataMode,
)
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)

from .core.backend import Backend
from .core.filters import DOC_ID, REF_DOC_ID, Field, Node, and_, parse_any
from .core.ingest import (
    apipeline,
    batched,
    check_batch_size,
    check_parallel,
    parallelism,
    pipeline,
)
from .core.options import check_options, parameters
from .core.plans import closed_on_error
from .core.query import Mode, Query, UnsupportedError
from .core.records import Hit, Record, SparseVector, check_record
from .core.strategies import DEFAULT_FUSION, DEFAULT_PREFETCH_LIMIT, Hybrid
from .documents import to_node

_MODES: dict[VectorStoreQueryMode, Mode] = {
    VectorStoreQueryMode.DEFAULT: "dense",
    VectorStoreQueryMode.SPARSE: "sparse",
    VectorStoreQueryMode.TEXT_SEARCH: "sparse",
    VectorStoreQueryMode.HYBRID: "hybrid",
    VectorStoreQueryMode.MMR: "mmr",
}


# Nodes arrive embedded, so a batch is only a write: larger batches than an embedding model's.
BATCH_SIZE = 256


def _node(record: Record) -> BaseNode:
    """The node of a record; an int id (Qdrant integer point ids) as its string."""
    if not isinstance(record.id, str):
        record = dataclasses.replace(record, id=str(record.id))
    return to_node(record)


def _record_id(record: Record) -> str:
    return record.id


def to_record(node: BaseNode) -> Record:
    relationships = {str(getattr(k, "value", k)): v.to_dict() if hasattr(v, "to_dict")
                     else [x.to_dict() for x in v] for k, v in node.relationships.items()}
    record = Record(id=node.node_id, text=node.get_content(metadata_mode=MetadataMode.NONE),
                    metadata=dict(node.metadata), ref_doc_id=node.ref_doc_id,
                    relationships=relationships or None)
    check_record(record)
    return record


def _check(backend: Backend, records: list[Record]) -> None:
    """Refuse what the engine would refuse record by record, before any batch is written."""
    check = getattr(backend, "check_records", None)
    if check is not None:
        check(records)


def _filter(filters: MetadataFilters | dict[str, Any] | None, doc_ids: list[str] | None = None,
            node_ids: list[str] | None = None) -> Node | Any | None:
    """MetadataFilters, a LangChain filter dict, a tree or a native filter, within the ids."""
    return and_(parse_any(filters),
                Field(REF_DOC_ID, "in", list(doc_ids)) if doc_ids else None,
                Field(DOC_ID, "in", list(node_ids)) if node_ids else None)


def _check_delete(node_ids: list[str] | None, filters: MetadataFilters | None,
                  whole_collection: bool) -> None:
    if node_ids is None and filters is None and whole_collection:
        raise ValueError("delete_nodes needs node_ids or filters (or, in a custom-sharded "
                         "Qdrant collection, shard_identifier=: everything in that shard); "
                         "clear() deletes the whole collection")


# The keyword arguments `query` reads (BackendLlamaStore._query), besides an engine's own.
QUERY_KWARGS = frozenset({"score_threshold", "fusion", "prefetch_k", "rrf_k", "mmr_prefetch_k",
                          "mmr_prefetch_factor"})


class BackendLlamaStore(BasePydanticVectorStore):
    """A LlamaIndex vector store over any `Backend`."""

    stores_text: bool = True
    flat_metadata: bool = False
    enable_hybrid: bool = False
    batch_size: int = BATCH_SIZE
    # Writes in flight (core.ingest); None: as many as the backend allows.
    parallel: int | None = None

    _backend: Any = PrivateAttr()
    _sparse_encoder: Any = PrivateAttr(default=None)
    # The engine's own keyword arguments: of `query` (besides QUERY_KWARGS), of every call.
    _engine_query_kwargs: ClassVar[frozenset[str]] = frozenset()
    _engine_call_kwargs: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, backend: Backend, *, enable_hybrid: bool = False,
                 sparse_encoder: Any = None, batch_size: int = BATCH_SIZE,
                 parallel: int | None = None) -> None:
        super().__init__(enable_hybrid=enable_hybrid,  # type: ignore[call-arg]
                         batch_size=check_batch_size(batch_size),
                         parallel=None if parallel is None else check_parallel(parallel))
        self._backend = backend
        if enable_hybrid and sparse_encoder is None and not getattr(backend, "builtin_bm25", False):
            from embedders import SparseEncoder

            sparse_encoder = SparseEncoder()
        if hasattr(sparse_encoder, "for_collection"):  # BM25 avg_len of this collection
            sparse_encoder = sparse_encoder.for_collection(backend)
        self._sparse_encoder = sparse_encoder

    @property
    def backend(self) -> Backend:
        return self._backend

    @property
    def client(self) -> Any:
        return getattr(self._backend, "client", None)

    def close(self) -> None:
        self._backend.close()

    async def aclose(self) -> None:
        await self._backend.aclose()

    # --- writes -------------------------------------------------------------------------
    def _records(self, nodes: Sequence[BaseNode]) -> list[Record]:
        """Every node as a checked record with its embedding (before anything is written)."""
        records = []
        for node in nodes:
            record = to_record(node)
            embedding = node.get_embedding()
            record.vector = embedding if isinstance(embedding, list) else list(embedding)
            records.append(record)
        return records

    def _sparse(self, records: list[Record]) -> list[Record]:
        """A batch's sparse vectors (hybrid), in the pipeline's worker thread."""
        if self._sparse_encoder is not None:
            for record, sparse in zip(records, self._sparse_encoder.embed_documents(
                    [r.text for r in records]), strict=True):
                record.sparse = sparse
        return records

    def _collection_args(self, nodes: Sequence[BaseNode]) -> tuple[int, bool]:
        return len(nodes[0].get_embedding()), self.enable_hybrid

    def _scoped(self, kwargs: dict[str, Any], query: bool = False) -> Any:
        """The backend a call runs on, given the call's keyword arguments: unknown ones are
        refused (a subclass may also scope the backend, e.g. Qdrant's `shard_identifier=`)."""
        known = (QUERY_KWARGS | self._engine_query_kwargs if query else frozenset()) | \
            self._engine_call_kwargs
        check_options(kwargs, known, f"{type(self).__name__}.{'query' if query else 'write/read'}")
        return self._backend

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Upsert in batches of `batch_size`, `parallel` writes in flight (core.ingest)."""
        backend = self._scoped(kwargs)
        if not nodes:
            return []
        records = self._records(nodes)
        backend.ensure_collection(*self._collection_args(nodes))
        _check(backend, records)
        pipeline(batched(records, self.batch_size), self._sparse, backend.upsert,
                 total=len(records), progress=False,
                 parallel=parallelism(self._backend, self.parallel), key=_record_id)
        return [r.id for r in records]

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        backend = self._scoped(kwargs)
        if not nodes:
            return []
        records = await asyncio.to_thread(self._records, nodes)
        await backend.aensure_collection(*self._collection_args(nodes))
        _check(backend, records)
        await apipeline(batched(records, self.batch_size), self._sparse, backend.aupsert,
                        total=len(records), progress=False,
                        parallel=parallelism(self._backend, self.parallel),
                        key=_record_id)
        return [r.id for r in records]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of the document (ref_doc_id is stored and filterable)."""
        backend = self._scoped(delete_kwargs)
        if backend.exists():
            backend.delete_where(Field(REF_DOC_ID, "eq", ref_doc_id))

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        backend = self._scoped(delete_kwargs)
        if await backend.aexists():
            await backend.adelete_where(Field(REF_DOC_ID, "eq", ref_doc_id))

    def delete_nodes(self, node_ids: list[str] | None = None,
                     filters: MetadataFilters | None = None, **delete_kwargs: Any) -> None:
        backend = self._scoped(delete_kwargs)
        _check_delete(node_ids, filters, backend is self._backend)
        if node_ids is not None and filters is None:
            backend.delete(node_ids)
        else:
            backend.delete_where(_filter(filters, node_ids=node_ids))

    async def adelete_nodes(self, node_ids: list[str] | None = None,
                            filters: MetadataFilters | None = None, **delete_kwargs: Any) -> None:
        backend = self._scoped(delete_kwargs)
        _check_delete(node_ids, filters, backend is self._backend)
        if node_ids is not None and filters is None:
            await backend.adelete(node_ids)
        else:
            await backend.adelete_where(_filter(filters, node_ids=node_ids))

    def clear(self) -> None:
        if self._backend.exists():
            self._backend.drop()

    async def aclear(self) -> None:
        if await self._backend.aexists():
            await self._backend.adrop()

    # --- reads --------------------------------------------------------------------------
    def get_nodes(self, node_ids: list[str] | None = None,
                  filters: MetadataFilters | None = None, limit: int | None = None,
                  **kwargs: Any) -> list[BaseNode]:
        """The nodes with these ids and/or matching `filters` (at most `limit`)."""
        backend = self._scoped(kwargs)
        if node_ids is not None and filters is None:
            return [_node(r) for r in backend.get(node_ids, with_vectors=True)][:limit]
        return [_node(r) for r in backend.scroll(_filter(filters, node_ids=node_ids),
                                                   limit=limit, with_vectors=True)]

    async def aget_nodes(self, node_ids: list[str] | None = None,
                         filters: MetadataFilters | None = None, limit: int | None = None,
                         **kwargs: Any) -> list[BaseNode]:
        backend = self._scoped(kwargs)
        if node_ids is not None and filters is None:
            return [_node(r) for r in await backend.aget(node_ids, with_vectors=True)][:limit]
        records = await backend.ascroll(_filter(filters, node_ids=node_ids), limit=limit,
                                        with_vectors=True)
        return [_node(r) for r in records]

    def _query(self, query: VectorStoreQuery, kwargs: dict[str, Any]) -> Query:
        mode = _MODES.get(query.mode)
        if mode is None:
            raise UnsupportedError(f"query mode {query.mode.value!r} is not supported; "
                                   f"use one of {[m.value for m in _MODES]}")
        sparse = None
        if mode in ("sparse", "hybrid"):
            if not query.query_str:
                raise ValueError(f"{query.mode.value} queries need query_str")
            if self._sparse_encoder is not None:
                sparse = self._sparse_encoder.embed_query(query.query_str)
        k = query.similarity_top_k
        if mode == "sparse" and query.sparse_top_k:
            k = query.sparse_top_k
        if mode == "hybrid" and query.hybrid_top_k:
            k = query.hybrid_top_k
        options: dict[str, Any] = {}
        if mode == "mmr":
            # LlamaIndex's mmr_threshold is the relevance weight: LangChain's lambda_mult.
            options["lambda_mult"] = query.mmr_threshold if query.mmr_threshold is not None else 0.5
            options["fetch_k"] = int(kwargs.get("mmr_prefetch_k")
                                     or k * float(kwargs.get("mmr_prefetch_factor", 4.0)))
        for key in ("score_threshold", "fusion", "prefetch_k", "rrf_k", "search_params"):
            if key in kwargs:
                options[key] = kwargs[key]
        if mode == "hybrid":  # the same defaults as retrievers.llama_index.HybridRetriever
            hybrid = Hybrid(alpha=query.alpha, fusion=options.get("fusion", DEFAULT_FUSION),
                            rrf_k=options.get("rrf_k"),
                            prefetch_limit=options.get("prefetch_k", DEFAULT_PREFETCH_LIMIT))
            options.update(alpha=hybrid.effective_alpha, fusion=hybrid.fusion,
                           rrf_k=hybrid.effective_rrf_k, prefetch_k=hybrid.prefetch_limit)
        # llama-index-vector-stores-qdrant: a native filter that replaces query.filters
        native = kwargs.get("qdrant_filters")
        return Query(mode=mode, k=k, vector=query.query_embedding, sparse=sparse,
                     text=query.query_str,
                     filter=_filter(None if native is not None else query.filters,
                                    query.doc_ids, query.node_ids) if native is None
                     else and_(native, _filter(None, query.doc_ids, query.node_ids)),
                     **options)

    @staticmethod
    def _result(hits: list[Hit]) -> VectorStoreQueryResult:
        return VectorStoreQueryResult(nodes=[_node(h.record) for h in hits],
                                      similarities=[h.score for h in hits],
                                      ids=[h.record.id for h in hits])

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        backend = self._scoped(kwargs, query=True)
        return self._result(backend.search(self._query(query, kwargs)))

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        backend = self._scoped(kwargs, query=True)
        q = await asyncio.to_thread(self._query, query, kwargs)
        return self._result(await backend.asearch(q))


class _SparseFunctions:
    """llama-index-vector-stores-qdrant's `sparse_doc_fn` / `sparse_query_fn` (texts ->
    (indices per text, values per text)) as a sparse encoder."""

    def __init__(self, doc_fn: Any, query_fn: Any) -> None:
        self.doc_fn, self.query_fn = doc_fn, query_fn or doc_fn

    @staticmethod
    def _vectors(encoded: Any) -> list[SparseVector]:
        indices, values = encoded
        return [SparseVector(list(i), list(v)) for i, v in zip(indices, values, strict=True)]

    def embed_documents(self, texts: list[str]) -> list[SparseVector]:
        return self._vectors(self.doc_fn(texts))

    def embed_query(self, text: str) -> SparseVector:
        return self._vectors(self.query_fn([text]))[0]


# Spellings of llama-index-vector-stores-qdrant that are ours under another name, or that only
# it has: one of them makes new collections take its layout (README: Switching ...).
_LLAMA_QDRANT_RENAMED = {"aclient": "async_client", "dense_vector_name": "vector_name",
                         "max_retries": "retry"}
_LLAMA_QDRANT_ONLY = {*_LLAMA_QDRANT_RENAMED, "client_kwargs", "payload_indexes", "dense_config", "sparse_config",
                      "fastembed_sparse_model", "sparse_doc_fn", "sparse_query_fn",
                      "index_doc_id", "text_key", "shard_key_selector_fn", "hybrid_fusion_fn"}
# The store's own (not the backend's) among them.
_LLAMA_QDRANT_STORE = ("shard_key_selector_fn", "hybrid_fusion_fn")


def _from_llama_index_qdrant(sparse_encoder: Any, options: dict[str, Any]
                             ) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """llama-index-vector-stores-qdrant's spellings -> ours: (sparse encoder, the store's own
    options, backend options). With one of them, new collections take its layout
    (`_node_content`, flat metadata, vectors "text-dense" / "text-sparse-new")."""
    store = {k: options.pop(k) for k in _LLAMA_QDRANT_STORE if k in options}
    for name, fn in store.items():
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be a callable, got {fn!r}")
    if not _LLAMA_QDRANT_ONLY & (set(options) | set(store)):
        return sparse_encoder, store, options
    options = dict(options)
    options.setdefault("new_layout", "llama")
    for peer, ours in _LLAMA_QDRANT_RENAMED.items():
        if peer in options:
            if ours in options:
                raise TypeError(f"{peer}= and {ours}= are the same option; give one")
            options[ours] = options.pop(peer)
    options.update(options.pop("client_kwargs", None) or {})
    for peer, ours in (("dense_config", "vector_params"), ("sparse_config", "sparse_vector_params")):
        config = options.pop(peer, None)
        if config is not None:
            options[ours] = {k: v for k, v in config.model_dump(exclude_none=True).items()
                             if k not in ("size", "distance")}
            if peer == "dense_config" and "distance" in config.model_fields_set:
                options["distance"] = config.distance.value.lower()
    indexes = options.get("payload_indexes")
    if isinstance(indexes, list):  # the peer's [{"field_name": ..., "field_schema": ...}]
        options["payload_indexes"] = {i["field_name"]: i["field_schema"] for i in indexes}
    options.pop("index_doc_id", None)  # doc_id / ref_doc_id are indexed on servers anyway
    doc_fn, query_fn = options.pop("sparse_doc_fn", None), options.pop("sparse_query_fn", None)
    model = options.pop("fastembed_sparse_model", None)
    if doc_fn is not None or query_fn is not None:
        if sparse_encoder is not None or model is not None:
            raise TypeError("give sparse_doc_fn / sparse_query_fn, fastembed_sparse_model or "
                            "sparse_encoder, not several")
        if doc_fn is None:
            raise TypeError("sparse_query_fn= needs sparse_doc_fn= too")
        sparse_encoder = _SparseFunctions(doc_fn, query_fn)
    elif model is not None:
        if sparse_encoder is not None:
            raise TypeError("give fastembed_sparse_model= or sparse_encoder=, not both")
        from embedders import SparseEncoder

        sparse_encoder = SparseEncoder(model)
    return sparse_encoder, store, options


class QdrantVectorStore(BackendLlamaStore):
    """LlamaIndex store over Qdrant. No connection argument: embedded in-memory Qdrant;
    `path=` on disk; `url=`/`host=` a server; `client=`/`async_client=` existing clients."""

    _shard_key_selector_fn: Any = PrivateAttr(default=None)
    # llama-index-vector-stores-qdrant's keyword arguments
    _engine_query_kwargs: ClassVar[frozenset[str]] = frozenset({"qdrant_filters",
                                                                "search_params"})
    _engine_call_kwargs: ClassVar[frozenset[str]] = frozenset({"shard_identifier"})
    _hybrid_fusion_fn: Any = PrivateAttr(default=None)

    def __init__(self, collection_name: str = "docs", client: Any = None, *,
                 enable_hybrid: bool = False, sparse_encoder: Any = None,
                 batch_size: int = BATCH_SIZE, parallel: int | None = None,
                 **backend_options: Any) -> None:
        """`QdrantVectorStore(collection_name, **options)`; llama-index-vector-stores-qdrant's
        spellings work too (`_from_llama_index_qdrant`)."""
        from .backends.qdrant import QdrantBackend

        if client is not None:
            backend_options["client"] = client
        sparse_encoder, own, backend_options = _from_llama_index_qdrant(sparse_encoder,
                                                                        backend_options)
        with closed_on_error(QdrantBackend(collection_name, **backend_options)) as backend:
            if backend.supports_sync:  # as the peer: the collection's vector names at once
                backend.detect_vector_names()
            super().__init__(backend, enable_hybrid=enable_hybrid,
                             sparse_encoder=sparse_encoder, batch_size=batch_size,
                             parallel=parallel)
        self._shard_key_selector_fn = own.get("shard_key_selector_fn")
        self._hybrid_fusion_fn = own.get("hybrid_fusion_fn")

    def _scoped(self, kwargs: dict[str, Any], query: bool = False) -> Any:
        """Refuses unknown keyword arguments; `shard_identifier=` (custom sharding) runs the
        call in the shard key `shard_key_selector_fn(shard_identifier)` (without that
        function: the identifier is the shard key)."""
        backend = super()._scoped(kwargs, query)
        identifier = kwargs.pop("shard_identifier", None)
        if identifier is None:
            return backend
        select = self._shard_key_selector_fn
        return self._backend.for_shard_key(identifier if select is None else select(identifier))

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """A hybrid query with `hybrid_fusion_fn=` runs its dense and sparse legs and fuses
        them with that function, as the peer does; otherwise fused by Qdrant."""
        if self._hybrid_fusion_fn is None or _MODES.get(query.mode) != "hybrid":
            return super().query(query, **kwargs)
        backend = self._scoped(kwargs, query=True)
        dense, sparse = (self._result(backend.search(q)) for q in self._legs(query, kwargs))
        return self._fused(query, dense, sparse)

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        if self._hybrid_fusion_fn is None or _MODES.get(query.mode) != "hybrid":
            return await super().aquery(query, **kwargs)
        backend = self._scoped(kwargs, query=True)
        legs = await asyncio.to_thread(self._legs, query, kwargs)
        dense, sparse = [self._result(await backend.asearch(q)) for q in legs]
        return self._fused(query, dense, sparse)

    def _legs(self, query: VectorStoreQuery, kwargs: dict[str, Any]) -> list[Query]:
        """The dense leg (similarity_top_k) and the sparse leg (sparse_top_k) of a hybrid query."""
        q = self._query(query, kwargs)
        return [dataclasses.replace(q, mode="dense", k=query.similarity_top_k),
                dataclasses.replace(q, mode="sparse",
                                    k=query.sparse_top_k or query.similarity_top_k)]

    def _fused(self, query: VectorStoreQuery, dense: VectorStoreQueryResult,
               sparse: VectorStoreQueryResult) -> VectorStoreQueryResult:
        assert self._hybrid_fusion_fn is not None
        return self._hybrid_fusion_fn(dense, sparse,
                                      alpha=query.alpha if query.alpha is not None else 0.5,
                                      top_k=query.hybrid_top_k or query.similarity_top_k)

    @property
    def collection_name(self) -> str:
        """The Qdrant collection (llama-index-vector-stores-qdrant's attribute)."""
        return str(self._backend.collection_name)

    @property
    def dense_vector_name(self) -> str:
        """The dense vector's name (llama-index-vector-stores-qdrant's attribute)."""
        return str(self._backend.vector_name)

    @dense_vector_name.setter
    def dense_vector_name(self, name: str) -> None:
        self._backend.vector_name = name

    @property
    def sparse_vector_name(self) -> str:
        return str(self._backend.sparse_vector_name)

    def parse_to_query_result(self, response: list[Any]) -> VectorStoreQueryResult:
        """Qdrant points (scored or not) as a query result, as the peer's method of that name."""
        records = [self._backend.record_of(point) for point in response]
        return VectorStoreQueryResult(
            nodes=[_node(r) for r in records],
            similarities=[float(getattr(p, "score", None) or 1.0) for p in response],
            ids=[str(r.id) for r in records])

    @classmethod
    def class_name(cls) -> str:
        return "RagStoresQdrantVectorStore"


# Spellings only llama-index-vector-stores-weaviate has: one of them makes new collections
# take its layout (weaviate_layout: the node form) and DEFAULT / HYBRID queries its hybrid.
_LLAMA_WEAVIATE_ONLY = {"weaviate_client", "index_name", "class_prefix", "client_kwargs",
                        "auth_config"}


def _from_llama_index_weaviate(first: Any, options: dict[str, Any]
                               ) -> tuple[bool, str, dict[str, Any]]:
    """llama-index-vector-stores-weaviate's spellings -> ours: (whether they were used, the
    collection name, backend options). `weaviate_client=` (a sync or async client, also as
    the first positional argument), `index_name=` (default `LlamaIndex_<hex>`; a capital
    first letter), `class_prefix=` (`<prefix>_Node`), `client_kwargs=` (a
    `weaviate.WeaviateClient(**client_kwargs)` the store opens and closes; its `custom_batch`
    is checked, then unused: writes are insert_many requests of `batch_size`),
    `auth_config=` (an auth object or {"api_key": ...}), `url=`, `text_key=`."""
    import weaviate

    if isinstance(first, weaviate.WeaviateClient | weaviate.WeaviateAsyncClient):
        if "weaviate_client" in options:
            raise TypeError("WeaviateVectorStore got multiple values for 'weaviate_client'")
        options, first = {**options, "weaviate_client": first}, None
    if not _LLAMA_WEAVIATE_ONLY & set(options):
        return False, "Docs" if first is None else first, options
    options = dict(options)
    client = options.pop("weaviate_client", None)
    if isinstance(client, weaviate.WeaviateClient):
        options["client"] = client
    elif isinstance(client, weaviate.WeaviateAsyncClient):
        options["async_client"] = client
    elif client is not None:
        raise ValueError(f"weaviate_client must be a weaviate.WeaviateClient or "
                         f"WeaviateAsyncClient (None: the store opens one from client_kwargs), "
                         f"got {type(client).__name__}")
    prefix, name = options.pop("class_prefix", None), options.pop("index_name", None)
    if first is not None and name is not None:
        raise TypeError("give index_name= or collection_name, not both")
    name = f"{prefix}_Node" if prefix is not None else name or first or \
        f"LlamaIndex_{uuid.uuid4().hex}"
    if not isinstance(name, str) or not name[:1].isupper():
        raise ValueError(f"index_name must start with a capital letter, e.g. 'LlamaIndex', "
                         f"got {name!r}")
    client_kwargs = dict(options.pop("client_kwargs", None) or {})
    batch = client_kwargs.pop("custom_batch", None)
    if batch is not None and not (isinstance(batch, AbstractContextManager) and
                                  type(batch).__module__.startswith("weaviate.collections.batch")):
        raise ValueError(f"client_kwargs['custom_batch'] must be client.batch.dynamic() or "
                         f"client.batch.fixed_size(...), got {batch!r}")
    auth = options.pop("auth_config", None)
    if isinstance(auth, dict):
        if set(auth) != {"api_key"}:
            raise ValueError(f"auth_config as a dict must be {{'api_key': ...}}, got keys "
                             f"{sorted(auth)}; or pass a weaviate Auth object")
        auth = weaviate.auth.AuthApiKey(auth["api_key"])
    if not {"client", "async_client", "url", "host"} & set(options):  # the peer's own client
        options["client_kwargs"] = {**client_kwargs, **(
            {"auth_client_secret": auth} if auth is not None else {})}
    else:
        if client_kwargs:
            raise ValueError(f"client_kwargs {sorted(client_kwargs)} are for the client the "
                             "store opens; with weaviate_client= or url= they would be unused")
        if auth is not None:
            if options.get("url") is None or not hasattr(auth, "api_key"):
                raise ValueError("auth_config= works with url= and an API key here; a client "
                                 "you pass keeps its own credentials")
            options.setdefault("api_key", auth.api_key)
    options.setdefault("new_layout", "llama")
    return True, name, options


class WeaviateVectorStore(BackendLlamaStore):
    """LlamaIndex store over Weaviate. No connection argument: embedded Weaviate;
    `url=`/`host=` a server or Weaviate Cloud; `client=`/`async_client=`; `tenant=`.
    llama-index-vector-stores-weaviate's spellings work too (`_from_llama_index_weaviate`):
    then DEFAULT and HYBRID queries are its Weaviate hybrid, with its query keywords."""

    _peer: bool = PrivateAttr(default=False)
    _engine_query_kwargs: ClassVar[frozenset[str]] = frozenset({"max_vector_distance"})

    def __init__(self, collection_name: Any = None, *, enable_hybrid: bool = True,
                 batch_size: int = BATCH_SIZE, parallel: int | None = None,
                 **backend_options: Any) -> None:
        from .backends.weaviate import WeaviateBackend

        peer, name, backend_options = _from_llama_index_weaviate(collection_name,
                                                                 backend_options)
        check_options(backend_options, parameters(WeaviateBackend.__init__), "Weaviate store")
        with closed_on_error(WeaviateBackend(name, **backend_options)) as backend:
            super().__init__(backend, enable_hybrid=enable_hybrid, batch_size=batch_size,
                             parallel=parallel)
            if peer and backend.supports_sync and not backend.exists():
                backend.ensure_collection(0, False)  # the peer creates its schema at once
        self._peer = peer

    def __del__(self) -> None:
        """A store that opened its own client closes it when collected (yours stay open)."""
        backend = getattr(self, "_backend", None)
        if backend is not None:
            with contextlib.suppress(Exception):
                backend.close()

    def _exact(self, ref_doc_id: str, records: list[Record]) -> list[str]:
        """The ids of the records of exactly `ref_doc_id`: a peer's `ref_doc_id` property is
        word-tokenized, where a filter on "doc-a" also matches "doc-b" ("a" is a stopword)."""
        return [r.id for r in records if r.ref_doc_id == ref_doc_id]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        if not (self._backend.exists() and self._backend.info().flat):
            return super().delete(ref_doc_id, **delete_kwargs)
        ids = self._exact(ref_doc_id, self._backend.scroll(Field(REF_DOC_ID, "eq", ref_doc_id)))
        if ids:
            self._backend.delete(ids)

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        if not (await self._backend.aexists() and (await self._backend.ainfo()).flat):
            return await super().adelete(ref_doc_id, **delete_kwargs)
        ids = self._exact(ref_doc_id,
                          await self._backend.ascroll(Field(REF_DOC_ID, "eq", ref_doc_id)))
        if ids:
            await self._backend.adelete(ids)

    def _query(self, query: VectorStoreQuery, kwargs: dict[str, Any]) -> Query:
        """`max_vector_distance=` (Weaviate's distance) as the score threshold it means."""
        kwargs = dict(kwargs)
        distance = kwargs.pop("max_vector_distance", None)
        q = super()._query(query, kwargs)
        if distance is None:
            return q
        if q.mode != "dense":
            raise ValueError(f"max_vector_distance={distance!r} limits dense queries, not "
                             f"{query.mode.value!r} ones (or build the store with "
                             "weaviate_client= for Weaviate's hybrid keywords)")
        threshold = self._backend.score_of(distance)
        return dataclasses.replace(q, score_threshold=threshold if q.score_threshold is None
                                   else max(threshold, q.score_threshold))

    def _peer_args(self, query: VectorStoreQuery, kwargs: dict[str, Any]
                   ) -> dict[str, Any] | None:
        """llama-index-vector-stores-weaviate's hybrid arguments (None: our own query):
        alpha 1 (vectors only) unless HYBRID, `filter=` a native filter, the other keywords
        Weaviate's (`max_vector_distance`, `auto_limit`, ...)."""
        if not self._peer or query.mode not in (VectorStoreQueryMode.DEFAULT,
                                                VectorStoreQueryMode.HYBRID):
            return None
        kwargs = dict(kwargs)
        tree, native = _filter(query.filters, query.doc_ids, query.node_ids), kwargs.pop("filter", None)
        if tree is not None and native is not None:
            raise ValueError("give MetadataFilters / doc_ids / node_ids or a native filter=, "
                             "not both")
        alpha = 1.0
        if query.mode == VectorStoreQueryMode.HYBRID and query.query_embedding is not None \
                and query.query_str:
            alpha = 0.5 if query.alpha is None else query.alpha
        return {"query": query.query_str, "vector": query.query_embedding, "alpha": alpha,
                "limit": query.similarity_top_k, "filters": tree if native is None else native,
                "return_metadata": ["distance", "score"], "include_vector": True, **kwargs}

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        args = self._peer_args(query, kwargs)
        if args is None:
            return super().query(query, **kwargs)
        return self._result(self._backend.search_native("hybrid", **args))

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        args = self._peer_args(query, kwargs)
        if args is None:
            return await super().aquery(query, **kwargs)
        return self._result(await self._backend.asearch_native("hybrid", **args))

    @classmethod
    def class_name(cls) -> str:
        return "RagStoresWeaviateVectorStore"
