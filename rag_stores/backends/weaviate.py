"""Weaviate backend: embedded Weaviate, a server, Weaviate Cloud, or clients you pass in.

Like the Qdrant backend, every operation is written once as a plan: a generator that
yields calls `(target, "dotted.method", kwargs)` and receives their results. `_run`
drives a plan with the sync `WeaviateClient`, `_arun` with a real `WeaviateAsyncClient`
(Weaviate's sync and async collection APIs share method names), writes included:
insert_many requests of `batch_size` objects (one gRPC call each, encoded by `weaviate_wire`;
the client's background batching costs about a second per call to settle), every failed
object reported.

Storage (weaviate_layout documents the properties and the mapping of metadata keys):
- one object per record, uuid = `core.ids.to_point_id(user id)`, the user id in `doc_id`;
- the dense vector in the named vector `vector_name` (self-provided, no vectorizer);
- the text in `text`, BM25-indexed: Weaviate ranks keywords itself, so no sparse
  vector is stored and `has_sparse()` is True when that property is searchable;
- new metadata keys get their properties (`config.add_property`) before the objects that
  use them are written, never through Weaviate's auto-schema. The layout gives each value
  kind its own property, so a key that holds an int in one record and a string in another
  is not a conflict;
- metadata keys named in `searchable_keys` also get a word-tokenized, BM25-indexed copy
  (`md_<stem>__w`), so keyword and hybrid search can read them: `Query.query_properties`
  ("text", metadata keys, Weaviate boosts such as "title^2") becomes the `query_properties`
  of Weaviate's bm25 / hybrid;
- the vector size in the collection description (`dim=<n>`): Weaviate's schema has no
  vector size. Collections made by other tools (no `dim=`) have theirs read from one
  stored object's vector.

Scores (core/scores.py): dense hits have a higher-is-better similarity: cosine
`1 - distance`, dot `-distance` (= the dot product), euclid `-sqrt(l2-squared)`,
manhattan `-distance`; Weaviate's raw distance is kept in `Hit.extra["distance"]`.
BM25 and hybrid hits carry Weaviate's own score.

Hybrid search is Weaviate's `hybrid` (text + our query vector, `alpha` default 0.5) where
it computes what `rag_stores.core.fusion` defines: fusion "rrf" with rrf_k 60 -> RANKED
(its constant is fixed at 60), "convex" -> RELATIVE_SCORE, both with `prefetch_k` None
(Weaviate sizes each leg max(QUERY_HYBRID_MAXIMUM_RESULTS, limit), 100 by default).
Anything else (fusion "dbsf", which Weaviate lacks; another rrf_k; a chosen `prefetch_k`)
fetches both legs, `near_vector` and `bm25`, and fuses them client-side with
`core.fusion.fuse`. A `Query.operator` of "and" / "or" becomes Weaviate's BM25
operator; `Query.query_properties` chooses the BM25 fields (default: the text only), each
metadata key mapped to its `__w` property with its boost kept (a key not in
`searchable_keys` is a ValueError). Grouped search is dense only: Weaviate's `group_by`
returns no scores for keyword or hybrid results.

Where Weaviate has no server-side equivalent, the work is client-side and said so:
- mmr: `fetch_k` candidates with vectors by `near_vector`, then `core.mmr.mmr_select`
  (Weaviate 1.38 accepts a diversity selection but does not apply it);
- recommend: "average_vector" is one `near_vector` on avg_pos + (avg_pos - avg_neg), as
  Qdrant computes it; "best_score" and "sum_scores" rescore, client-side with Qdrant's
  formulas, the candidates found near each positive example (at least one positive is
  needed). Examples given as ids are looked up, and excluded from the results as Qdrant does;
- discover: UnsupportedError (Weaviate has no discovery / context search).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import logging
import math
import re
import threading
import weakref
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import grpc
import numpy as np
import weaviate
from weaviate.classes.config import (
    Configure,
    ConsistencyLevel,
    StopwordsPreset,
    VectorDistances,
    VectorIndexConfigCreate,
)
from weaviate.classes.data import DataObject
from weaviate.classes.init import AdditionalConfig, Timeout
from weaviate.classes.query import (
    BM25Operator,
    Filter,
    GroupBy,
    HybridFusion,
    MetadataQuery,
    Sort,
)
from weaviate.classes.tenants import Tenant
from weaviate.exceptions import (
    AuthenticationFailedError,
    UnexpectedStatusCodeError,
    WeaviateBaseError,
    WeaviateConnectionError,
    WeaviateGRPCUnavailableError,
    WeaviateTimeoutError,
)

from ..core.filters import Node
from ..core.fusion import DEFAULT_RRF_K, canonical, fuse, leg_depth, window
from ..core.ids import to_point_id
from ..core.loops import PerLoop
from ..core.mmr import mmr_select
from ..core.plans import PlanBackend
from ..core.query import (
    TEXT_FIELD,
    CollectionNotFoundError,
    Query,
    UnsupportedError,
    check_query_vector,
    split_boost,
)
from ..core.records import Group, Hit, Record, check_records
from ..core.retry import RetryPolicy, as_policy, is_transient_rpc
from ..core.scores import DISTANCES
from . import weaviate_layout as layout
from . import weaviate_wire
from .weaviate_filters import MATCH_NONE, needed_properties, to_weaviate, to_weaviate_flat

_log = logging.getLogger(__name__)
_DISTANCE = {
    "cosine": VectorDistances.COSINE,
    "dot": VectorDistances.DOT,
    "euclid": VectorDistances.L2_SQUARED,
    "manhattan": VectorDistances.MANHATTAN,
}
_FUSION = {"rrf": HybridFusion.RANKED, "convex": HybridFusion.RELATIVE_SCORE}
_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,254}")
_TENANT_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DIM_RE = re.compile(r"\bdim=(\d+)\b")
_CLOUD_SUFFIXES = (".weaviate.cloud", ".weaviate.network", ".weaviate.io")
# Objects per request for reads by id, deletes by id and paged scrolls.
_PAGE = 500
# Requests that may run twice with the same outcome: retried on transient faults.
_IDEMPOTENT = {"data.insert_many", "data.insert_many_native", "data.delete_many", "collections.exists", "config.get",
               "tenants.exists", "aggregate.over_all"} | {
    f"query.{m}" for m in ("fetch_objects", "fetch_objects_by_ids", "near_vector", "bm25",
                           "hybrid", "near_object")}
# What reads return (the md_* properties exist only for filters).
_RETURNED = [layout.TEXT, layout.DOC_ID, layout.REF_DOC_ID, layout.METADATA_JSON,
             layout.RELATIONSHIPS_JSON]

Call = tuple[str, str, dict[str, Any]]
Obj = DataObject[dict[str, Any], None]
Plan = Generator[Call, Any, Any]


def _method(handle: Any, path: str) -> Any:
    """The callable a request names on a client or collection handle. insert_many is
    encoded by weaviate_wire (it returns {index: message} of the refused objects), and so
    are near_vector searches of our layout's text properties."""
    if path == "collections.create_from_dict":  # positionally, as langchain-weaviate calls it
        return lambda config: handle.collections.create_from_dict(config)
    if path == "data.insert_many":
        return functools.partial(weaviate_wire.insert_many, handle)
    if path == "data.insert_many_native":  # the peers' layout: any property values
        return handle.data.insert_many
    if path == "query.near_vector":
        return functools.partial(weaviate_wire.near_vector, handle)
    for part in path.split("."):
        handle = getattr(handle, part)
    return handle


class WeaviateWriteError(RuntimeError):
    """Weaviate refused some objects of a write; `failures` maps user id -> reason."""

    def __init__(self, collection: str, failures: dict[str, str], total: int) -> None:
        self.failures = failures
        shown = "; ".join(f"{i!r}: {m}" for i, m in list(failures.items())[:10])
        more = f" (and {len(failures) - 10} more)" if len(failures) > 10 else ""
        super().__init__(f"Weaviate collection {collection!r} refused {len(failures)} of {total} "
                         f"records (the others were written): {shown}{more}")


def normalize_collection_name(name: str) -> str:
    """Weaviate's rule: a letter, then letters, digits or '_' (at most 255 characters);
    the first letter is stored upper-cased, so "docs" and "Docs" are the same collection."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ValueError(
            f"invalid Weaviate collection name {name!r}: it must start with a letter and hold "
            "only letters, digits and '_' (at most 255 characters)")
    return name[0].upper() + name[1:]


@dataclass
class Info:
    """What the backend needs to know of an existing collection."""

    dim: int | None
    distance: str
    # The named vector searched; None for a collection with one unnamed (legacy) vector.
    target: str | None
    multi_tenant: bool
    properties: dict[str, Any]  # property name -> DataType
    searchable: bool  # the text property is BM25-indexed
    # The peers' layout (langchain-weaviate, llama-index-vector-stores-weaviate): the text in
    # `text_key`, every metadata key a property of its own (weaviate_layout: flat layout).
    flat: bool = False


def _bm25_config(bm25: dict[str, Any] | None) -> Any:
    """`bm25={"stopwords": "en" | "none" | [words], "k1": 1.2, "b": 0.75}`: Weaviate's BM25
    index settings, fixed when the collection is made. Weaviate has no stemming; its stopword
    presets are English and none (a list: no preset, these words)."""
    if bm25 is None:
        return None
    unknown = sorted(set(bm25) - {"stopwords", "k1", "b"})
    if unknown:
        raise TypeError(f"unknown bm25 option(s) {unknown}: use stopwords, k1, b (Weaviate "
                        "has no stemming)")
    stopwords = bm25.get("stopwords", "en")
    words: list[str] | None = None
    if isinstance(stopwords, str):
        if stopwords not in ("en", "none"):
            raise ValueError(f"Weaviate's stopword presets are 'en' and 'none', not "
                             f"{stopwords!r}; pass a list of words for another language")
        preset = StopwordsPreset(stopwords)
    else:
        preset, words = StopwordsPreset.NONE, [str(w) for w in stopwords]
    return Configure.inverted_index(bm25_k1=bm25.get("k1"), bm25_b=bm25.get("b"),
                                    stopwords_preset=preset, stopwords_additions=words)


def _vector_index(config: Any, index: str, distance: str) -> VectorIndexConfigCreate:
    """The vector index new collections get: `index=` with `distance=`, or the config given."""
    metric = _DISTANCE[distance]
    if config is None:
        factory = Configure.VectorIndex.flat if index == "flat" else Configure.VectorIndex.hnsw
        return factory(distance_metric=metric)
    if not isinstance(config, VectorIndexConfigCreate):
        raise ValueError("vector_index_config must be a weaviate Configure.VectorIndex.hnsw(...), "
                         f".flat(...) or .dynamic(...) config, got {config!r}")
    if index != "hnsw":
        raise ValueError(f"pass index={index!r} or vector_index_config=, not both "
                         "(Configure.VectorIndex.flat(...) is the flat index)")
    if config.distance is None:
        return config.model_copy(update={"distance": metric})
    if config.distance != metric:
        raise ValueError(f"vector_index_config has distance {config.distance.value!r} but "
                         f"distance={distance!r}: leave the config's distance unset or make "
                         "them agree")
    return config


class WeaviateBackend(PlanBackend):
    """The `Backend` protocol over Weaviate. Closes only the clients it opened itself.

    Connection, by what is given:
    - nothing: embedded Weaviate (this project's server binary), data under
      `persistence_path` (default `~/.local/share/rag-stores/weaviate`): one server per
      folder shared by every process that opens it (servers.embedded), on free ports unless
      `port` / `grpc_port` are given; it stops once no process has used it for a while;
    - `url=`: a server ("http://host:8080"; gRPC on `grpc_port`, default 50051, or 443 for
      https) or, for https hosts under weaviate.cloud / weaviate.network, Weaviate Cloud;
    - `host=` (+ `port=`, `grpc_port=`): a plain-http server;
    - `client=` / `async_client=`: clients you opened; async methods need `async_client`
      (the sync client's connection settings are private to weaviate-client). A client you
      pass is used as given, so your async client works in the event loop it was opened in.
    - `client_kwargs=`: the arguments of a `weaviate.WeaviateClient(...)` the backend opens
      and owns (llama-index-vector-stores-weaviate's way, e.g. `embedded_options=`).
    The async clients the backend opens itself are one per event loop (core.loops): the
    backend works from any loop, in any thread; each is closed in its own loop.
    `api_key=` and `headers=` apply to the connections the backend opens itself. Embedded
    Weaviate accepts only its folder's own key (servers.embedded), which the backend reads
    by itself: leave `api_key` unset there; any other key is refused with a ValueError.

    `tenant=`: the collection is created multi-tenant and the tenant on first write;
    every read and write stays in that tenant, and `drop()` removes the tenant only.
    `index="flat"` gives exact brute-force search instead of HNSW.
    `vector_index_config=`: your own `Configure.VectorIndex.hnsw(...)` (or `.flat`,
    `.dynamic`) for new collections, e.g. a cheaper build (`ef_construction=`,
    `max_connections=`) or a quantizer; its distance, if unset, is `distance=`.

    `searchable_keys=`: metadata keys whose strings (or list elements that are strings) also
    get a BM25-searchable copy, for `Query.query_properties` (e.g. ["text", "title^2"]).
    Declared here because each costs a BM25 index and Weaviate properties cannot be removed.
    A key declared on an existing collection gets its property on the next write; records
    written before have no copy until rewritten. "text" always means the record text.

    `bm25=`: the BM25 index settings, `{"stopwords": "en" | "none" | [words], "k1", "b"}`,
    fixed when the collection is made (Weaviate keeps its own average length, and has no
    stemming; its stopword presets are English and none).
    """

    builtin_bm25 = True

    def __init__(
        self,
        collection_name: str = "Docs",
        *,
        url: str | None = None,
        host: str | None = None,
        port: int | None = None,
        grpc_port: int | None = None,
        api_key: str | None = None,
        headers: dict[str, str] | None = None,
        client: weaviate.WeaviateClient | None = None,
        async_client: weaviate.WeaviateAsyncClient | None = None,
        persistence_path: str | None = None,
        vector_name: str = "dense",
        tenant: str | None = None,
        consistency_level: str | ConsistencyLevel | None = None,
        distance: str = "cosine",
        index: str = "hnsw",
        vector_index_config: VectorIndexConfigCreate | None = None,
        batch_size: int = 100,
        generative_config: Any = None,
        searchable_keys: Sequence[str] = (),
        replication_factor: int | None = None,
        shard_number: int | None = None,
        async_replication: bool | None = None,
        retry: RetryPolicy | int | None = None,
        timeout: float | Timeout | None = None,
        bm25: dict[str, Any] | None = None,
        text_key: str = layout.TEXT,
        new_layout: str = "rag_stores",
        multi_tenancy: bool | dict[str, Any] = False,
        schema: dict[str, Any] | None = None,
        client_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if new_layout not in ("rag_stores", "flat", "llama"):
            raise ValueError(f"new_layout must be 'rag_stores', 'flat' (langchain-weaviate's "
                             f"layout) or 'llama' (llama-index-vector-stores-weaviate's), got "
                             f"{new_layout!r}")
        if not isinstance(text_key, str) or not _NAME_RE.fullmatch(text_key):
            raise ValueError(f"text_key must be a valid Weaviate property name, got {text_key!r}")
        self.text_key, self.new_layout = text_key, new_layout
        # Tenants chosen per call (langchain-weaviate's use_multi_tenancy): the collection is
        # created multi-tenant although this backend has no tenant of its own.
        if not isinstance(multi_tenancy, bool | dict):
            raise ValueError(f"multi_tenancy must be a bool or a Weaviate MultiTenancyConfig "
                             f"dict, got {multi_tenancy!r}")
        if schema is not None and (not isinstance(schema, dict) or new_layout != "flat"):
            raise ValueError(f"schema= is the dict a new collection of the flat layout "
                             f"(new_layout='flat') is created from, got {schema!r} with "
                             f"new_layout={new_layout!r}")
        self.multi_tenancy = bool(multi_tenancy) or tenant is not None or (
            schema is not None and layout.schema_multi_tenant(schema))
        self._tenants: dict[str, WeaviateBackend] = {}
        self.bm25 = _bm25_config(bm25)
        additional_config = _additional_config(timeout)
        if timeout is not None and (client is not None or async_client is not None):
            raise ValueError("timeout= sets the clients this backend opens; the clients you "
                             "pass keep their own (weaviate AdditionalConfig(timeout=...))")
        for name, value in (("replication_factor", replication_factor),
                            ("shard_number", shard_number)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
        self.replication_factor, self.shard_number = replication_factor, shard_number
        self.async_replication = async_replication
        self.retry = as_policy(retry)
        if distance not in DISTANCES:
            raise ValueError(f"unknown distance {distance!r}; choose one of {DISTANCES}")
        if index not in ("hnsw", "flat"):
            raise ValueError(f"index must be 'hnsw' or 'flat', got {index!r}")
        self.vector_index_config = _vector_index(vector_index_config, index, distance)
        if tenant is not None and (not isinstance(tenant, str) or not _TENANT_RE.fullmatch(tenant)):
            raise ValueError(f"invalid Weaviate tenant name {tenant!r}: 1 to 64 letters, digits, "
                             "'_' or '-'")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if isinstance(searchable_keys, str) or not all(
                isinstance(k, str) and k and k != TEXT_FIELD for k in searchable_keys):
            raise ValueError("searchable_keys must be a list of metadata keys (non-empty "
                             f"strings other than {TEXT_FIELD!r}), got {searchable_keys!r}")
        self.searchable_keys = tuple(dict.fromkeys(searchable_keys))
        self.collection_name = normalize_collection_name(collection_name)
        # The schema dict new collections of a peer's layout are created from.
        self.schema = schema if schema is not None else layout.flat_schema(
            self.collection_name, text_key, multi_tenancy) if new_layout == "flat" else \
            layout.llama_schema(self.collection_name) if new_layout == "llama" else None
        self.vector_name = vector_name
        self.tenant = tenant
        self.consistency_level = (ConsistencyLevel(consistency_level.upper())
                                  if isinstance(consistency_level, str) else consistency_level)
        self.distance = distance
        self.batch_size = batch_size
        # A `Configure.Generative.*` module for server-side generation (rag_stores.generate).
        self.generative_config = generative_config
        self._info: Info | None = None
        self._tenant_ready = False
        self._lock = threading.Lock()
        # Collection handles by client (see _target); gone with their client or this backend.
        self._handles: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], Any]] = \
            weakref.WeakKeyDictionary()
        self._client = client
        self._aclient = async_client
        self._owns_client = False
        self._aclients: PerLoop[weaviate.WeaviateAsyncClient] = PerLoop(
            self._open_async, lambda aclient: aclient.close())
        self._spec: dict[str, Any] | None = None
        if client_kwargs is not None:
            given = [n for n, v in (("client", client), ("async_client", async_client),
                                    ("url", url), ("host", host)) if v is not None]
            if not isinstance(client_kwargs, dict):
                raise ValueError(f"client_kwargs must be a dict of weaviate.WeaviateClient "
                                 f"arguments, got {client_kwargs!r}")
            if given:
                raise ValueError(f"client_kwargs= opens a client of its own; {given} open "
                                 "another: give one of them")
            self._spec = {"kind": "kwargs", "kwargs": client_kwargs,
                          "where": "the Weaviate of client_kwargs"}
        elif client is None and async_client is None:
            self._spec = _connection_spec(url, host, port, grpc_port, api_key, headers,
                                          persistence_path)
            self._spec["additional_config"] = additional_config
            if self._spec["kind"] == "embedded":
                # Starting the server is synchronous; do it now rather than inside a loop.
                self.client  # noqa: B018

    # --- clients ------------------------------------------------------------------
    @property
    def supports_sync(self) -> bool:
        return self._client is not None or self._spec is not None

    @property
    def client(self) -> weaviate.WeaviateClient:
        """The sync client, opened on first use when the backend connects itself."""
        if self._client is None:
            if self._spec is None:
                raise RuntimeError(
                    "this backend was given only a WeaviateAsyncClient: use the async methods, "
                    "or pass client=WeaviateClient too")
            with self._lock:
                if self._client is None:
                    self._client = _open_sync(self._spec)
                    self._owns_client = True
        return self._client

    async def _async_client(self) -> weaviate.WeaviateAsyncClient:
        if self._aclient is not None:
            return self._aclient
        if self._spec is None:
            raise RuntimeError(
                "this backend was given only a sync WeaviateClient: pass "
                "async_client=WeaviateAsyncClient (weaviate.use_async_with_local(...) etc.) "
                "to use the async methods")
        return await self._aclients.get()

    async def _open_async(self) -> weaviate.WeaviateAsyncClient:
        assert self._spec is not None
        aclient = _new_async(self._spec)
        try:
            await aclient.connect()
        except WeaviateBaseError as exc:
            await aclient.close()
            raise _connect_error(self._spec, exc) from exc
        return aclient

    def close(self) -> None:
        """Close the sync client this backend opened and let go of its async clients (each
        is closed in its own loop; after async use, `await aclose()` closes it at once)."""
        if self._owns_client and self._client is not None:
            self._client.close()
        if self._owns_client:
            self._client, self._owns_client = None, False
        self._aclients.close()
        if self._spec is not None and self._spec.get("lease") is not None:
            self._spec.pop("lease").release()  # the shared embedded server may idle out
            self._spec["lease"] = None

    async def aclose(self) -> None:
        """Close the running loop's async client this backend opened, then as close()."""
        await self._aclients.aclose()
        self.close()

    # --- drivers --------------------------------------------------------------------
    def _target(self, client: Any, target: str) -> Any:
        """The client, or its handle of the collection (as this store's tenant and
        consistency level) for the request. Handles are kept per client: weaviate-client
        builds each with a thread pool, ~10% of the client's CPU per batch when made anew."""
        if target == "client":
            return client
        key = (target, self.collection_name, self.tenant, self.consistency_level)
        handles = self._handles.setdefault(client, {})
        handle = handles.get(key)
        if handle is None:
            handle = handles[key] = self._handle(client, target)
        return handle

    def _handle(self, client: Any, target: str) -> Any:
        collection = client.collections.use(self.collection_name)
        if target == "schema":
            return collection
        if self.tenant is not None:
            collection = collection.with_tenant(self.tenant)
        if self.consistency_level is not None:
            collection = collection.with_consistency_level(self.consistency_level)
        return collection

    def _sync_caller(self) -> Any:
        client = self.client

        def call_one(request: tuple[str, str, dict[str, Any]]) -> Any:
            target, path, kwargs = request
            return _method(self._target(client, target), path)(**kwargs)

        return call_one

    async def _async_caller(self) -> Any:
        if self._aclient is None and self._spec is None:
            return None  # only a sync client: its calls run in a worker thread
        aclient = await self._async_client()

        async def call_one(request: tuple[str, str, dict[str, Any]]) -> Any:
            target, path, kwargs = request
            result = _method(self._target(aclient, target), path)(**kwargs)
            return await result if inspect.isawaitable(result) else result

        return call_one

    def _describe(self, request: Any) -> str:
        target, path, kwargs = request
        where = self._spec["where"] if self._spec is not None else "the given client's server"
        batch = f" of {len(kwargs['objects'])} objects" if "objects" in kwargs else ""
        return f"Weaviate {path}{batch} on collection {self.collection_name!r} at {where}"

    def _is_idempotent(self, request: Any) -> bool:
        """Writes by uuid, deletes, and reads may run twice; schema changes may not."""
        return request[1] in _IDEMPOTENT

    def _is_transient(self, exc: BaseException) -> bool:
        if isinstance(exc, UnexpectedStatusCodeError):
            return exc.status_code in (502, 503, 504)
        if isinstance(exc, WeaviateConnectionError | WeaviateTimeoutError |
                      WeaviateGRPCUnavailableError | ConnectionError | TimeoutError):
            return True
        # weaviate-client keeps only a gRPC error's text ("Deadline Exceeded", "Received
        # RST_STREAM ..." for a batch); the RpcError it came from, when chained, tells more
        origin = exc.__cause__ or exc.__context__
        if isinstance(origin, grpc.RpcError):
            return is_transient_rpc(origin)
        text = str(exc).lower()
        return isinstance(exc, WeaviateBaseError) and any(
            sign in text for sign in ("deadline_exceeded", "deadline exceeded", "unavailable",
                                      "connection refused", "no read replica found"))

    def _translate(self, exc: Exception) -> Exception:
        text = str(exc)
        if "could not find class" in text or (
                isinstance(exc, UnexpectedStatusCodeError) and exc.status_code == 404):
            self._info, self._tenant_ready = None, False
            return CollectionNotFoundError(
                f"Weaviate collection {self.collection_name!r} does not exist")
        if "tenant not found" in text:
            self._tenant_ready = False
            return CollectionNotFoundError(
                f"Weaviate collection {self.collection_name!r} has no tenant {self.tenant!r} "
                "yet (it is created on the first write)")
        if isinstance(exc, WeaviateBaseError) and "has multi-tenancy enabled" in text:
            return ValueError(f"Weaviate collection {self.collection_name!r} is multi-tenant: "
                              "pass tenant=")
        return exc

    # --- collection plans -------------------------------------------------------------
    def _exists(self) -> Plan:
        found = yield "client", "collections.exists", {"name": self.collection_name}
        if not found:
            self._info, self._tenant_ready = None, False
            return False
        if self.tenant is None or self._tenant_ready:
            return True
        yield from self._load_info()  # checks the collection is multi-tenant
        self._tenant_ready = bool((yield "schema", "tenants.exists", {"tenant": self.tenant}))
        return self._tenant_ready

    def _load_info(self, refresh: bool = False) -> Plan:
        if self._info is None or refresh:
            config = yield "schema", "config.get", {}
            info = self._parse_info(config)
            # A collection made by another tool: read one vector (in a tenant, if it has them).
            if info.dim is None and (self.tenant is not None or not info.multi_tenant):
                try:
                    found = yield "collection", "query.fetch_objects", {
                        "limit": 1, "include_vector": [info.target] if info.target else True}
                except CollectionNotFoundError:
                    found = None
                for obj in getattr(found, "objects", []):
                    vector = obj.vector.get(info.target or "default")
                    info.dim = len(vector) if vector else None
            self._info = info
        return self._info

    def _parse_info(self, config: Any) -> Info:
        named = config.vector_config or {}
        if self.vector_name in named:
            target: str | None = self.vector_name
        elif len(named) == 1:  # adopt a collection with one differently named vector
            target = self.vector_name = next(iter(named))
        elif not named:
            target = None
        else:
            raise ValueError(f"Weaviate collection {self.collection_name!r} has vectors "
                             f"{sorted(named)}, none named {self.vector_name!r}: pass vector_name=")
        index = named[target].vector_index_config if target else config.vector_index_config
        metric = getattr(index, "distance_metric", VectorDistances.COSINE)
        distance = next((k for k, v in _DISTANCE.items() if v == metric), None)
        if distance is None:
            raise UnsupportedError(f"Weaviate collection {self.collection_name!r} uses distance "
                                   f"{metric}, which this backend does not map")
        match = _DIM_RE.search(config.description or "")
        multi_tenant = bool(config.multi_tenancy_config.enabled)
        if multi_tenant and self.tenant is None and not self.multi_tenancy:
            raise ValueError(f"Weaviate collection {self.collection_name!r} is multi-tenant: "
                             "pass tenant=")
        if self.tenant is not None and not multi_tenant:
            raise ValueError(f"Weaviate collection {self.collection_name!r} is not multi-tenant; "
                             f"it cannot hold tenant {self.tenant!r}")
        props = {p.name: p.data_type for p in config.properties}
        flat = layout.METADATA_JSON not in props  # a peer's collection (module doc)
        text = self.text_key if flat else layout.TEXT
        searchable = any(p.name == text and p.index_searchable for p in config.properties)
        return Info(dim=int(match.group(1)) if match else None, distance=distance, target=target,
                    multi_tenant=multi_tenant, properties=props, searchable=searchable, flat=flat)

    def for_tenant(self, tenant: str | None) -> WeaviateBackend:
        """This backend in `tenant` (langchain-weaviate's per-call `tenant=`): same clients."""
        if tenant is None or tenant == self.tenant:
            return self
        if not isinstance(tenant, str) or not _TENANT_RE.fullmatch(tenant):
            raise ValueError(f"invalid Weaviate tenant name {tenant!r}: 1 to 64 letters, "
                             "digits, '_' or '-'")
        with self._lock:
            if tenant not in self._tenants:
                other = copy.copy(self)
                other.tenant, other._tenant_ready, other._tenants = tenant, False, {}
                other._owns_client = False  # closed by this backend only
                self._tenants[tenant] = other
            return self._tenants[tenant]

    def _create_args(self, dim: int) -> dict[str, Any]:
        return {
            "name": self.collection_name,
            "description": f"rag-stores collection; vector {self.vector_name!r} dim={dim}",
            "vector_config": [Configure.Vectors.self_provided(
                name=self.vector_name,
                vector_index_config=self.vector_index_config)],
            "properties": layout.base_properties(),
            "multi_tenancy_config": Configure.multi_tenancy(
                enabled=True, auto_tenant_creation=True, auto_tenant_activation=True)
            if self.multi_tenancy else None,
            "generative_config": self.generative_config,
            # Weaviate >= 1.38 runs async replication for every replicated collection and
            # drops the flag; older servers take it.
            "replication_config": self._replication(),
            "sharding_config": Configure.sharding(desired_count=self.shard_number)
            if self.shard_number is not None and self.tenant is None else None,
            "inverted_index_config": self.bm25,
        }

    def _replication(self) -> Any:
        if self.replication_factor is None and self.async_replication is None:
            return None
        factor = self.replication_factor or 1
        if self.async_replication is None:
            return Configure.replication(factor=factor)
        return Configure.replication(factor=factor, async_enabled=self.async_replication)

    def _ensure(self, dim: int, sparse: bool) -> Plan:
        if (yield "client", "collections.exists", {"name": self.collection_name}):
            info = yield from self._load_info()
            if (info.dim is not None and info.dim != dim) or info.distance != self.distance:
                raise ValueError(
                    f"Weaviate collection {self.collection_name!r} holds {info.dim}-dim "
                    f"{info.distance} vectors; this store has {dim}-dim {self.distance} vectors. "
                    "Use another collection_name or the matching embedding.")
            if sparse and not info.searchable:
                raise ValueError(f"Weaviate collection {self.collection_name!r} has no "
                                 f"BM25-indexed text property {layout.TEXT!r}")
        else:
            try:
                if self.schema is not None:  # a peer's layout, created as the peer does
                    yield "client", "collections.create_from_dict", {"config": self.schema}
                else:
                    yield "client", "collections.create", self._create_args(dim)
            except WeaviateBaseError as exc:
                if "already exists" not in str(exc):  # else: created meanwhile by another writer
                    raise ValueError(f"Weaviate refused to create collection "
                                     f"{self.collection_name!r}: {exc}") from exc
            self._info = info = None  # read when first needed (one request less per store)
        yield from self._ensure_tenant()
        return info

    def _ensure_tenant(self) -> Plan:
        if self.tenant is None or self._tenant_ready:
            return
        if not (yield "schema", "tenants.exists", {"tenant": self.tenant}):
            # langchain-weaviate's message, which its users (and tests) look for
            _log.info("Tenant %s does not exist in index %s; creating it", self.tenant,
                      self.collection_name)
            try:
                yield "schema", "tenants.create", {"tenants": [Tenant(name=self.tenant)]}
            except WeaviateBaseError as exc:
                if "already exists" not in str(exc):
                    raise
        self._tenant_ready = True

    def _ensure_properties(self, objects: Sequence[Obj], info: Info) -> Plan:
        """Add the properties new metadata keys need, before any object is written."""
        names = dict.fromkeys(name for obj in objects for name in obj.properties)
        names.update(dict.fromkeys(self._searchable_properties()))  # declared, even if unused
        if any(name not in info.properties for name in names):
            info = yield from self._load_info(refresh=True)  # another writer may have added them
        for prop in layout.missing_properties(names, info.properties):
            try:
                yield "schema", "config.add_property", {"prop": prop}
            except WeaviateBaseError as exc:
                if "already exists" not in str(exc):
                    raise ValueError(f"Weaviate refused property {prop.name!r} in collection "
                                     f"{self.collection_name!r}: {exc}") from exc
            info.properties[prop.name] = prop.dataType

    def _dimension(self) -> Plan:
        if not (yield from self._exists()):
            return None
        return (yield from self._load_info()).dim

    def _has_sparse(self) -> Plan:
        if not (yield "client", "collections.exists", {"name": self.collection_name}):
            return False
        return (yield from self._load_info()).searchable

    def _drop(self) -> Plan:
        self._info, self._tenant_ready = None, False
        if self.tenant is None:
            yield "client", "collections.delete", {"name": self.collection_name}
        elif (yield "client", "collections.exists", {"name": self.collection_name}):
            yield "schema", "tenants.remove", {"tenants": [self.tenant]}

    # --- conversions ----------------------------------------------------------------------
    def _where(self, node: Node | Any | None) -> Plan:
        """The Weaviate filter for a tree (None: everything, MATCH_NONE: nothing).

        The translator needs the collection's property names; they are re-read first
        when the tree names one this backend has not seen (another writer may have added it).
        """
        if node is None:
            return None
        info = yield from self._load_info()
        if info.flat:
            return to_weaviate_flat(node, self.text_key)
        if any(name not in info.properties for name in needed_properties(node)):
            info = yield from self._load_info(refresh=True)
        return to_weaviate(node, info.properties)

    def check_records(self, records: Sequence[Record]) -> None:
        """Refuse, before anything is written, what Weaviate would refuse record by record:
        reserved metadata keys in a collection of the flat layout (weaviate_layout)."""
        if self._info.flat if self._info is not None else self.new_layout != "rag_stores":
            for record in records:
                layout.check_flat_keys(self.text_key, record.id, to_point_id(record.id),
                                       record.metadata)

    def _object(self, record: Record, info: Info) -> Obj:
        vector = list(record.vector or [])
        if info.flat:
            props = layout.node_properties(
                self.text_key, record.id, record.text, record.metadata, record.ref_doc_id,
                record.relationships) if self._node_form(info) else layout.flat_properties(
                self.text_key, record.text, record.metadata)
            obj: Obj = DataObject(properties=props, uuid=to_point_id(record.id),
                vector=None if record.vector is None else
                {info.target: vector} if info.target else vector)
            return obj
        props = layout.object_properties(record.text, record.metadata, record.id,
                                         record.ref_doc_id, record.relationships,
                                         self.searchable_keys)
        obj = DataObject(properties=props, uuid=to_point_id(record.id),
                              vector={info.target: vector} if info.target else vector)
        return obj

    def _node_form(self, info: Info) -> bool:
        """Flat objects as llama-index-vector-stores-weaviate writes them (weaviate_layout)."""
        return self.new_layout == "llama" or layout.NODE_CONTENT in info.properties

    def _record(self, obj: Any, info: Info) -> Record:
        vector = (obj.vector or {}).get(info.target or "default")
        if info.flat:  # the uuid is the id (the peers keep no other), or the node's id
            fields = layout.flat_fields(self.text_key, obj.properties)
            return Record(id=fields.pop("id", None) or str(obj.uuid), **fields,
                          vector=list(vector) if vector is not None else None)
        fields = layout.record_fields(obj.properties)
        return Record(id=fields["doc_id"], text=fields["text"], metadata=fields["metadata"],
                      vector=list(vector) if vector is not None else None,
                      ref_doc_id=fields["ref_doc_id"], relationships=fields["relationships"])

    def score_of(self, distance: float) -> float:
        """Our score of a Weaviate vector distance (higher is better; module doc)."""
        if self.distance == "cosine":
            return 1.0 - distance
        if self.distance == "euclid":
            return -math.sqrt(max(distance, 0.0))
        return -distance  # dot (Weaviate's dot distance is the negated product), manhattan

    def _max_distance(self, threshold: float) -> float | None:
        """The Weaviate distance at or under which the score is >= threshold (None: none is)."""
        if self.distance == "cosine":
            return 1.0 - threshold
        if self.distance == "euclid":
            return threshold * threshold if threshold <= 0 else None
        if self.distance == "manhattan" and threshold > 0:
            return None
        return -threshold

    def _hit(self, obj: Any, info: Info, record: Record | None = None) -> Hit:
        record = self._record(obj, info) if record is None else record
        extra: dict[str, Any] = {"uuid": str(obj.uuid)}
        if obj.metadata.distance is not None:
            extra["distance"] = obj.metadata.distance
            score = self.score_of(obj.metadata.distance)
        else:
            score = float(obj.metadata.score or 0.0)
        return Hit(record, score, extra)

    def _similarities(self, vectors: np.ndarray, example: np.ndarray) -> np.ndarray:
        """Our score of each vector against an example, as the server would give it."""
        if self.distance == "cosine":
            norms = np.linalg.norm(vectors, axis=1) * max(float(np.linalg.norm(example)), 1e-12)
            return (vectors @ example) / np.clip(norms, 1e-12, None)
        if self.distance == "dot":
            return vectors @ example
        if self.distance == "euclid":
            return -np.linalg.norm(vectors - example, axis=1)
        return -np.abs(vectors - example).sum(axis=1)

    # --- write plans --------------------------------------------------------------------
    # Upserts (batches) in flight by default (core.ingest.parallelism; a store's or a call's
    # `parallel=` wins). Each is insert_many over gRPC, idempotent by uuid; new properties are
    # added before a batch's objects and "already exists" from a concurrent batch is fine.
    # Measured: benchmarks/bench_weaviate_server.py (README: Weaviate write figures).
    write_parallelism = 4

    def _upsert(self, records: Sequence[Record]) -> Plan:
        if not records:
            return
        dim = len(records[0].vector or [])
        check_records(records, dim or None)
        missing = [r.id for r in records if r.vector is None]
        info = self._info
        if missing and not (self.new_layout != "rag_stores" if info is None else info.flat):
            raise ValueError(f"records {missing[:5]} have no vector; Weaviate stores "
                             "self-provided vectors only (the peers' layout: a vectorizer)")
        if info is None or (self.tenant is not None and not self._tenant_ready):
            info = (yield from self._ensure(dim, False)) or (yield from self._load_info())
        if dim and info.dim is not None and info.dim != dim:
            check_records(records, info.dim)  # names the first record of the wrong size
        self.check_records(records)
        # The last record of an id wins, as it would written one after the other.
        by_uuid = {to_point_id(r.id): r for r in records}
        objects = [self._object(r, info) for r in by_uuid.values()]
        if not info.flat:  # the peers' properties come from Weaviate's auto-schema, as theirs
            yield from self._ensure_properties(objects, info)
        failures: list[tuple[str, str]] = []
        for start in range(0, len(objects), self.batch_size):
            chunk = objects[start:start + self.batch_size]
            if info.flat:
                result = yield "collection", "data.insert_many_native", {"objects": chunk}
                refused = {i: e.message for i, e in result.errors.items()}
            else:
                refused = yield "collection", "data.insert_many", {"objects": chunk}
            failures += [(str(chunk[i].uuid), message) for i, message in refused.items()]
        if failures:
            raise WeaviateWriteError(self.collection_name, {
                by_uuid[u].id if u in by_uuid else u: m for u, m in failures}, len(objects))
        if info.dim is None and dim:
            info.dim = dim

    def _delete(self, ids: Sequence[str]) -> Plan:
        yield from self._load_info()  # a missing collection is an error, as on Qdrant
        uuids = list(dict.fromkeys(to_point_id(i) for i in ids))
        for start in range(0, len(uuids), _PAGE):
            yield from self._delete_many(Filter.by_id().contains_any(uuids[start:start + _PAGE]))

    def _delete_many(self, where: Any) -> Plan:
        while True:  # the server deletes at most QUERY_MAXIMUM_RESULTS objects per call
            result = yield "collection", "data.delete_many", {"where": where}
            if result.failed:
                raise RuntimeError(f"Weaviate failed to delete {result.failed} of "
                                   f"{result.matches} objects in {self.collection_name!r}")
            if not result.successful:
                return

    def _delete_where(self, node: Node | Any) -> Plan:
        if node is None:
            raise ValueError("delete_where needs a filter; use drop() to delete everything")
        where = yield from self._where(node)
        if where is None:  # the filter holds for every record
            where = Filter.by_id().not_equal(to_point_id("rag-stores: no such record"))
        if where is not MATCH_NONE:
            yield from self._delete_many(where)

    # --- read plans -----------------------------------------------------------------------
    def _fetch_args(self, info: Info, with_vectors: bool) -> dict[str, Any]:
        return {"include_vector": ([info.target] if info.target else True) if with_vectors
                else False, "return_properties": None if info.flat else _RETURNED}

    def _get(self, ids: Sequence[str], with_vectors: bool) -> Plan:
        info = yield from self._load_info()
        uuids = list(dict.fromkeys(to_point_id(i) for i in ids))
        found: dict[str, Record] = {}
        for start in range(0, len(uuids), _PAGE):
            chunk = uuids[start:start + _PAGE]
            result = yield "collection", "query.fetch_objects", {
                "filters": Filter.by_id().contains_any(chunk), "limit": len(chunk),
                **self._fetch_args(info, with_vectors)}
            found.update((str(o.uuid), self._record(o, info)) for o in result.objects)
        return [found[u] for u in uuids if u in found]

    def _scroll(self, node: Node | Any | None, limit: int | None, with_vectors: bool) -> Plan:
        info = yield from self._load_info()
        where = yield from self._where(node)
        records: list[Record] = []
        after = None
        while where is not MATCH_NONE and (limit is None or len(records) < limit):
            page = _PAGE if limit is None else min(_PAGE, limit - len(records))
            args = {"limit": page, **self._fetch_args(info, with_vectors)}
            if where is None:  # the cursor API; Weaviate refuses it with a filter
                args["after"] = after
            else:  # offsets: at most QUERY_MAXIMUM_RESULTS records (a server error beyond),
                # in one stable order across pages
                args.update(filters=where, offset=len(records), sort=self._order(info))
            result = yield "collection", "query.fetch_objects", args
            records.extend(self._record(o, info) for o in result.objects)
            if len(result.objects) < page:
                break
            after = result.objects[-1].uuid
        return records

    def _scroll_page(self, node: Node | Any | None, limit: int, offset: Any,
                     with_vectors: bool) -> Plan:
        """Unfiltered: Weaviate's cursor (`after` the last uuid), any size. Filtered: offsets,
        which the server serves up to QUERY_MAXIMUM_RESULTS records (an error beyond)."""
        info = yield from self._load_info()
        where = yield from self._where(node)
        if where is MATCH_NONE:
            return [], None
        args = {"limit": limit, **self._fetch_args(info, with_vectors)}
        if where is None:
            args["after"] = offset
        else:  # offsets need one stable order across pages
            args.update(filters=where, offset=offset or 0, sort=self._order(info))
        result = yield "collection", "query.fetch_objects", args
        records = [self._record(o, info) for o in result.objects]
        if len(records) < limit:
            return records, None
        return records, result.objects[-1].uuid if where is None else (offset or 0) + limit

    @staticmethod
    def _order(info: Info) -> Any:
        return Sort.by_property("_id" if info.flat else layout.DOC_ID)

    def _count(self, node: Node | Any | None) -> Plan:
        where = yield from self._where(node)
        if where is MATCH_NONE:
            return 0
        if node is None:
            yield from self._load_info()
        result = yield "collection", "aggregate.over_all", {"total_count": True, "filters": where}
        return int(result.total_count or 0)

    def _vectors_of(self, examples: Sequence[Any]) -> Plan:
        """Dense vectors of recommend examples: vectors as given, ids looked up."""
        ids = [e for e in examples if isinstance(e, str)]
        found = {}
        if ids:
            found = {r.id: r.vector for r in (yield from self._get(ids, True))}
        vectors = []
        for example in examples:
            if isinstance(example, str):
                if found.get(example) is None:
                    raise ValueError(f"recommend example id {example!r} is not in Weaviate "
                                     f"collection {self.collection_name!r}")
                vectors.append(found[example])
            else:
                vectors.append(list(example))
        if not vectors:
            return np.empty((0, 0))
        return np.asarray(vectors, dtype=np.float64).reshape(len(vectors), -1)

    def _searchable_properties(self) -> list[str]:
        return [layout.property_for_key(k, layout.SEARCHABLE) for k in self.searchable_keys]

    def _keyword_properties(self, query: Query, info: Info) -> list[str]:
        """Weaviate's `query_properties` for `query.query_properties` (None: the text)."""
        props = []
        for field in query.query_properties or [TEXT_FIELD]:
            key, boost = split_boost(field)
            if key == TEXT_FIELD:
                props.append((self.text_key if info.flat else layout.TEXT) + boost)
                continue
            if key not in self.searchable_keys:
                raise ValueError(
                    f"query_properties names metadata key {key!r}, which is not keyword-"
                    f"searchable: declare it with WeaviateBackend(searchable_keys=[{key!r}, ...])")
            name = layout.property_for_key(key, layout.SEARCHABLE)
            if name not in info.properties:
                raise ValueError(
                    f"metadata key {key!r} has no keyword index in Weaviate collection "
                    f"{self.collection_name!r} yet: it is added by the next write of a backend "
                    f"with searchable_keys holding {key!r} (records written before keep no copy)")
            props.append(name + boost)
        return props

    def _search_args(self, query: Query, info: Info, where: Any) -> tuple[str, dict[str, Any]]:
        """The query method and its arguments for dense, sparse and hybrid searches."""
        mode = query.mode
        args: dict[str, Any] = {"limit": query.k, "offset": query.offset or None,
                                "filters": where, **self._fetch_args(info, query.with_vectors)}
        if mode in ("dense", "hybrid") and query.vector is None:
            raise ValueError(f"{mode} search needs a query vector")
        check_query_vector(query, info.dim, self.collection_name)
        if mode in ("sparse", "hybrid") and not query.text:
            raise ValueError(f"{mode} search on Weaviate needs the query text (Query.text): "
                             "Weaviate ranks keywords with its own BM25 index")
        if mode in ("sparse", "hybrid") and not info.searchable:
            raise UnsupportedError(f"{mode} search needs a BM25-indexed text property "
                                   f"{layout.TEXT!r}, which {self.collection_name!r} lacks")
        operator = query.operator
        if operator not in (None, "and", "or"):
            raise ValueError(f"operator must be 'and' or 'or', got {operator!r}")
        bm25_operator = None if operator is None else (
            BM25Operator.and_() if operator == "and" else BM25Operator.or_(minimum_match=1))
        if mode == "dense":
            args.update(near_vector=list(query.vector or []), target_vector=info.target,
                        return_metadata=MetadataQuery(distance=True))
            if query.score_threshold is not None:
                args["distance"] = self._max_distance(query.score_threshold)
            return "near_vector", args
        if mode == "sparse":
            args.update(query=query.text, query_properties=self._keyword_properties(query, info),
                        operator=bm25_operator, return_metadata=MetadataQuery(score=True))
            return "bm25", args
        if mode == "hybrid":
            fusion = canonical(query.fusion)
            if self._client_fusion(query):
                raise UnsupportedError(f"Weaviate's hybrid cannot fuse {fusion!r} with rrf_k="
                                       f"{query.rrf_k} and prefetch_k={query.prefetch_k}")
            args.update(query=query.text, vector=list(query.vector or []),
                        target_vector=info.target,
                        query_properties=self._keyword_properties(query, info),
                        alpha=0.5 if query.alpha is None else query.alpha,
                        fusion_type=_FUSION[fusion], bm25_operator=bm25_operator,
                        return_metadata=MetadataQuery(score=True))
            return "hybrid", args
        raise ValueError(f"unknown search mode {mode!r}")

    def search_native(self, method: str, **kwargs: Any) -> list[Hit]:
        """Weaviate's own `query.<method>(**kwargs)` (langchain-weaviate passes its search
        keywords to `hybrid` as they are: `alpha`, `filters`, `return_metadata`, `auto_limit`,
        ...); each hit's `extra["metadata"]` holds the metadata Weaviate returned."""
        return self._run(self._native(method, kwargs))  # type: ignore[no-any-return]

    async def asearch_native(self, method: str, **kwargs: Any) -> list[Hit]:
        return await self._arun(self._native(method, kwargs))  # type: ignore[no-any-return]

    def _native(self, method: str, kwargs: dict[str, Any]) -> Plan:
        if method not in ("hybrid", "near_vector", "near_text", "bm25", "fetch_objects"):
            raise ValueError(f"unknown Weaviate query method {method!r}")
        info = yield from self._load_info()
        if kwargs.get("filters") is not None:
            kwargs["filters"] = yield from self._where(kwargs["filters"])
            if kwargs["filters"] is MATCH_NONE:
                return []
        if kwargs.get("include_vector") is True and info.target:
            kwargs["include_vector"] = [info.target]
        if method in ("hybrid", "near_vector") and info.target:
            kwargs.setdefault("target_vector", info.target)
        if not info.flat:
            kwargs.setdefault("return_properties", _RETURNED)
        result = yield "collection", f"query.{method}", kwargs
        hits = []
        for obj in result.objects:
            metadata = {k: v for k, v in vars(obj.metadata).items() if v is not None}
            hits.append(Hit(self._record(obj, info), float(obj.metadata.score or 0.0),
                            {"uuid": str(obj.uuid), "metadata": metadata}))
        return hits

    @staticmethod
    def _client_fusion(query: Query) -> bool:
        """True when Weaviate's hybrid cannot compute the fusion asked (module docstring)."""
        if query.mode != "hybrid":
            return False
        fusion = canonical(query.fusion)
        return query.prefetch_k is not None or fusion == "dbsf" or (
            fusion == "rrf" and query.rrf_k not in (None, DEFAULT_RRF_K))

    def _fused_here(self, query: Query, info: Info, where: Any) -> Plan:
        """Hybrid fused client-side (core.fusion): the near_vector and bm25 legs, each
        `prefetch_k` deep (default core.fusion.DEFAULT_PREFETCH_K), return ids and scores
        only; then the fused window's objects are fetched by id. Two legs of 200 full objects
        cost ~2x the time of this (sending and parsing them), one request more included."""
        depth = leg_depth(query.prefetch_k, query.k, query.offset)
        legs = []
        for mode in ("dense", "sparse"):
            leg = dataclasses.replace(query, mode=mode, k=depth, offset=0, score_threshold=None,
                                      with_vectors=False)
            method, args = self._search_args(leg, info, where)
            result = yield "collection", f"query.{method}", {**args, "return_properties": []}
            legs.append([self._hit(o, info, Record(id=str(o.uuid), text=""))
                         for o in result.objects])
        fused = window(fuse(legs[0], legs[1], fusion=query.fusion, alpha=query.alpha,
                            rrf_k=query.rrf_k), query.k, query.offset, query.score_threshold)
        if not fused:
            return []
        uuids = [h.record.id for h in fused]
        result = yield "collection", "query.fetch_objects", {
            "filters": Filter.by_id().contains_any(uuids), "limit": len(uuids),
            **self._fetch_args(info, query.with_vectors)}
        records = {str(o.uuid): self._record(o, info) for o in result.objects}
        return [dataclasses.replace(h, record=records[h.record.id]) for h in fused
                if h.record.id in records]

    def _threshold(self, hits: list[Hit], query: Query) -> list[Hit]:
        if query.score_threshold is None:
            return hits
        return [h for h in hits if h.score >= query.score_threshold - 1e-6]

    def _qdrant_only(self, query: Query) -> None:
        """Query options Weaviate has no per-query form of: an error, never ignored."""
        for name, instead in (("search_params", "vector_index_config= when the collection is "
                               "made (HNSW ef and the like)"),
                              ("shard_key", "tenants (tenant=)"),
                              ("consistency", "the store's consistency_level=")):
            if getattr(query, name) is not None:
                raise UnsupportedError(f"{name}={getattr(query, name)!r} is a Qdrant search "
                                       f"option; on Weaviate use {instead}")

    def _search(self, query: Query) -> Plan:
        if query.group_by is not None:
            raise ValueError("grouped queries go through search_groups")
        self._qdrant_only(query)
        if query.mode == "discover":
            raise UnsupportedError("Weaviate has no discovery / context search; use Qdrant "
                                   "for mode='discover'")
        info = yield from self._load_info()
        check_query_vector(query, info.dim, self.collection_name)  # NaN, size: before any query
        where = yield from self._where(query.filter)
        if where is MATCH_NONE or (query.score_threshold is not None and query.mode == "dense"
                                   and self._max_distance(query.score_threshold) is None):
            return []
        if query.mode == "mmr":
            return (yield from self._mmr(query, info, where))
        if query.mode == "recommend":
            return (yield from self._recommend(query, info, where))
        keys = {split_boost(f)[0] for f in query.query_properties or []}
        if query.mode in ("sparse", "hybrid") and any(
                layout.property_for_key(k, layout.SEARCHABLE) not in info.properties
                for k in keys & set(self.searchable_keys)):
            info = yield from self._load_info(refresh=True)  # another writer may have added it
        if self._client_fusion(query):
            return (yield from self._fused_here(query, info, where))
        method, args = self._search_args(query, info, where)
        result = yield "collection", f"query.{method}", args
        return self._threshold([self._hit(o, info) for o in result.objects], query)

    def _nearest(self, vector: Sequence[float], limit: int, where: Any, info: Info,
                 threshold: float | None) -> Plan:
        """Candidates with their vectors, for client-side reranking."""
        if threshold is not None and self._max_distance(threshold) is None:
            return []
        result = yield "collection", "query.near_vector", {
            "near_vector": list(vector), "target_vector": info.target, "limit": limit,
            "filters": where, **self._fetch_args(info, True),
            "distance": None if threshold is None else self._max_distance(threshold),
            "return_metadata": MetadataQuery(distance=True)}
        return [self._hit(o, info) for o in result.objects]

    def _mmr(self, query: Query, info: Info, where: Any) -> Plan:
        if query.vector is None:
            raise ValueError("mmr search needs a query vector")
        check_query_vector(query, info.dim, self.collection_name)
        wanted = query.k + query.offset
        candidates = yield from self._nearest(query.vector, max(query.fetch_k, wanted), where,
                                              info, query.score_threshold)
        picked = mmr_select(query.vector, [h.record.vector or [] for h in candidates], wanted,
                            query.lambda_mult)
        return _strip([candidates[i] for i in picked][query.offset:], query.with_vectors)

    def _recommend(self, query: Query, info: Info, where: Any) -> Plan:
        if not query.positive:
            raise UnsupportedError("recommend on Weaviate needs at least one positive example")
        positive = yield from self._vectors_of(query.positive)
        negative = yield from self._vectors_of(query.negative)
        # Qdrant leaves the examples given by id out of the results; so do we.
        example_ids = [to_point_id(e) for e in (*query.positive, *query.negative)
                       if isinstance(e, str)]
        if example_ids:
            not_examples = Filter.by_id().contains_none(example_ids)
            where = not_examples if where is None else (where & not_examples)
        wanted = query.k + query.offset
        if query.strategy == "average_vector":
            avg = positive.mean(axis=0)
            target = avg + (avg - negative.mean(axis=0)) if len(negative) else avg
            hits = yield from self._nearest(target, wanted, where, info, query.score_threshold)
        elif query.strategy in ("best_score", "sum_scores"):
            pool: dict[str, Hit] = {}
            for vector in positive:
                found = yield from self._nearest(vector, max(query.fetch_k, wanted), where, info,
                                                 None)
                pool.update((h.extra["uuid"], h) for h in found)
            hits = list(pool.values())
            if hits:
                vectors = np.asarray([h.record.vector for h in hits], dtype=np.float64)
                scores = self._recommend_scores(vectors, positive, negative, query.strategy)
                for hit, score in zip(hits, scores, strict=True):
                    hit.score = float(score)
                    hit.extra.pop("distance", None)
            hits = self._threshold(sorted(hits, key=lambda h: -h.score), query)
        else:
            raise ValueError(f"unknown recommend strategy {query.strategy!r}")
        return _strip(hits[query.offset:wanted], query.with_vectors)

    def _recommend_scores(self, vectors: np.ndarray, positive: np.ndarray, negative: np.ndarray,
                          strategy: str) -> np.ndarray:
        """Qdrant's best_score / sum_scores, over this backend's similarities."""
        pos = np.array([self._similarities(vectors, e) for e in positive])
        neg = np.array([self._similarities(vectors, e) for e in negative]) if len(negative) \
            else np.full((1, len(vectors)), -np.inf if strategy == "best_score" else 0.0)
        if strategy == "sum_scores":
            return pos.sum(axis=0) - neg.sum(axis=0)
        best_pos, best_neg = pos.max(axis=0), neg.max(axis=0)

        def sigmoid(x: np.ndarray) -> np.ndarray:  # Qdrant's scaled fast sigmoid
            return 0.5 * (x / (1.0 + np.abs(x)) + 1.0)

        with np.errstate(invalid="ignore"):  # -inf (no negatives) in the branch not taken
            return np.where(best_pos > best_neg, sigmoid(best_pos), -sigmoid(best_neg))

    def _search_groups(self, query: Query) -> Plan:
        if query.group_by is None:
            raise ValueError("search_groups needs query.group_by")
        self._qdrant_only(query)
        if query.mode != "dense":
            raise UnsupportedError(
                f"grouped search on Weaviate is dense only, not {query.mode!r}: Weaviate's "
                "group_by returns no scores for keyword or hybrid results")
        info = yield from self._load_info()
        check_query_vector(query, info.dim, self.collection_name)
        where = yield from self._where(query.filter)
        prop = self._group_property(query.group_by, info)
        if prop is None:
            info = yield from self._load_info(refresh=True)
            prop = self._group_property(query.group_by, info)
        if prop is None or where is MATCH_NONE:
            return []  # no record has a value to group by
        method, args = self._search_args(query, info, where)
        args.pop("offset")
        # Weaviate forms the groups from the `limit` best objects.
        args["limit"] = max(query.fetch_k, query.k * query.group_size * 4)
        args["group_by"] = GroupBy(prop=prop, number_of_groups=query.k,
                                   objects_per_group=query.group_size)
        result = yield "collection", f"query.{method}", args
        groups = []
        for name, group in result.groups.items():
            hits = self._threshold([self._hit(o, info) for o in group.objects], query)
            if hits:
                groups.append(Group(key=hits[0].record.metadata.get(query.group_by, name),
                                    hits=hits))
        groups.sort(key=lambda g: -g.hits[0].score)
        return groups[:query.k]

    @staticmethod
    def _group_property(key: str, info: Info) -> str | None:
        """The property to group by: the key's strings, else its numbers, else its bools."""
        for kind in ("s", "n", "b"):
            name = layout.property_for_key(key, kind)
            if name in info.properties:
                return name
        return None


def _strip(hits: list[Hit], with_vectors: bool) -> list[Hit]:
    """Drop the vectors fetched for client-side work when the caller did not ask for them."""
    if not with_vectors:
        for hit in hits:
            hit.record.vector = None
    return hits


# --- connections ------------------------------------------------------------------------------
def _connection_spec(url: str | None, host: str | None, port: int | None, grpc_port: int | None,
                     api_key: str | None, headers: dict[str, str] | None,
                     persistence_path: str | None) -> dict[str, Any]:
    """How to open clients: embedded, a custom server, or Weaviate Cloud."""
    common = {"headers": headers, "api_key": api_key}
    if url is not None:
        if host is not None:
            raise ValueError("pass url= or host=, not both")
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"url must look like http://host:8080 or https://host, got {url!r}")
        secure = parsed.scheme == "https"
        hostname = parsed.hostname
        if secure and hostname.endswith(_CLOUD_SUFFIXES):
            if not api_key:
                raise ValueError(f"Weaviate Cloud ({hostname}) needs api_key=")
            return {"kind": "cloud", "where": url, "cluster_url": hostname, **common}
        return {"kind": "custom", "where": url, "http_host": hostname,
                "http_port": parsed.port or (443 if secure else 80), "http_secure": secure,
                "grpc_host": hostname, "grpc_port": grpc_port or (443 if secure else 50051),
                "grpc_secure": secure, **common}
    if host is not None:
        return {"kind": "custom", "where": f"http://{host}:{port or 8080}", "http_host": host,
                "http_port": port or 8080, "http_secure": False, "grpc_host": host,
                "grpc_port": grpc_port or 50051, "grpc_secure": False, **common}
    return {"kind": "embedded", "where": f"embedded Weaviate ({persistence_path or 'default folder'})",
            "port": port, "grpc_port": grpc_port, "persistence_path": persistence_path,
            "lease": None, **common}


def _additional_config(timeout: float | Timeout | None) -> AdditionalConfig | None:
    """`timeout=`: seconds for each query and each insert (weaviate-client's defaults: 30 and
    90), or a weaviate `Timeout`. A request that times out is retried by the retry policy
    while its deadline has not passed, so keep the timeout below that deadline."""
    if timeout is None:
        return None
    if isinstance(timeout, Timeout):
        return AdditionalConfig(timeout=timeout)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds or a weaviate Timeout, "
                         f"got {timeout!r}")
    return AdditionalConfig(timeout=Timeout(query=timeout, insert=timeout))


def _connect_error(spec: dict[str, Any], exc: Exception) -> Exception:
    where = spec["where"]
    if isinstance(exc, AuthenticationFailedError) or getattr(exc, "status_code", None) in (401, 403):
        return PermissionError(f"Weaviate at {where} refused the credentials "
                               f"(check api_key=): {exc}")
    return ConnectionError(f"cannot connect to Weaviate at {where}: {exc}")


def _open_sync(spec: dict[str, Any]) -> weaviate.WeaviateClient:
    kind = spec["kind"]
    try:
        if kind == "kwargs":  # weaviate.WeaviateClient(**client_kwargs), as the llama peer
            client = weaviate.WeaviateClient(**spec["kwargs"])
            try:
                client.connect()
            except BaseException:
                client.close()
                raise
            return client
        if kind == "embedded":  # the folder's shared server (servers.embedded), ours or not
            from ..servers.embedded import attach
            from ..servers.weaviate import HOST, default_embedded_dir, ensure_binary

            ensure_binary()
            if spec["lease"] is None:
                spec["lease"] = _embedded_lease(attach(
                    spec["persistence_path"] or default_embedded_dir(), spec["port"],
                    spec["grpc_port"]), spec["api_key"])
            lease = spec["lease"]
            spec["where"] = f"embedded Weaviate at http://{HOST}:{lease.http_port}"
            try:
                return weaviate.connect_to_local(
                    host=HOST, port=lease.http_port, grpc_port=lease.grpc_port,
                    headers=spec["headers"], auth_credentials=_lease_auth(lease),
                    additional_config=spec["additional_config"])
            except BaseException:
                spec["lease"] = None
                lease.release()  # a store that failed to open keeps no server busy
                raise
        if kind == "cloud":
            return weaviate.connect_to_weaviate_cloud(
                cluster_url=spec["cluster_url"], auth_credentials=spec["api_key"],
                headers=spec["headers"], additional_config=spec["additional_config"])
        return weaviate.connect_to_custom(**_custom_args(spec))
    except WeaviateBaseError as exc:
        raise _connect_error(spec, exc) from exc


def _embedded_lease(lease: Any, api_key: str | None) -> Any:
    """`lease` if `api_key` is unset or the folder's own key; any other is refused at once,
    since the embedded server accepts only that key (servers.embedded)."""
    if api_key is not None and api_key != lease.api_key:
        lease.release()
        from ..servers.embedded import KEY_FILE, STATE_DIR

        raise ValueError(f"api_key= does not match the key of the embedded Weaviate of "
                         f"{lease.data}: leave api_key unset (the key in "
                         f"{lease.data / STATE_DIR / KEY_FILE} is used) or pass that key")
    return lease


def _lease_auth(lease: Any) -> Any:
    """The embedded server's key; None for a keeper of an older version (anonymous)."""
    from weaviate.classes.init import Auth

    return Auth.api_key(lease.api_key) if lease.api_key is not None else None


def _new_async(spec: dict[str, Any]) -> weaviate.WeaviateAsyncClient:
    """An unconnected async client to the same place the sync client goes."""
    kind = spec["kind"]
    if kind == "kwargs":
        return weaviate.WeaviateAsyncClient(**spec["kwargs"])
    if kind == "embedded":  # the sync client attached to the shared server; so does this one
        from ..servers.weaviate import HOST

        lease = spec["lease"]
        return weaviate.use_async_with_local(host=HOST, port=lease.http_port,
                                             grpc_port=lease.grpc_port, headers=spec["headers"],
                                             auth_credentials=_lease_auth(lease),
                                             additional_config=spec["additional_config"])
    if kind == "cloud":
        return weaviate.use_async_with_weaviate_cloud(
            cluster_url=spec["cluster_url"], auth_credentials=spec["api_key"],
            headers=spec["headers"], additional_config=spec["additional_config"])
    return weaviate.use_async_with_custom(**_custom_args(spec))


def _custom_args(spec: dict[str, Any]) -> dict[str, Any]:
    keys = ("http_host", "http_port", "http_secure", "grpc_host", "grpc_port", "grpc_secure",
            "headers", "additional_config")
    return {**{k: spec[k] for k in keys}, "auth_credentials": spec["api_key"]}
