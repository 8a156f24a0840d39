"""Qdrant backend: embedded (local mode or Qdrant Edge, memory or disk), a server, or Qdrant Cloud.

Every operation is written once, as a plan: a generator that yields client calls
`(method name, kwargs)` and receives their results. `_run` drives a plan with the sync
client and `_arun` with the async one; `QdrantClient` and `AsyncQdrantClient` share method
names, so sync and async are the same code (the httpx idea, without I/O in the logic).

Payload layout (the data contract, shared with LlamaIndex and LangChain facades):
`{"text": ..., "metadata": {...}, "doc_id": <user id>, "ref_doc_id": ..., "relationships": ...}`.
Collections written by other integrations open without re-ingesting (`layout=`, detected
from a stored point when "auto"):
- "langchain" (langchain-qdrant): `{"page_content": ..., "metadata": {...}}`, vector "" or named;
- "llama" (llama-index-vector-stores-qdrant): metadata flat at the top level, the node as JSON
  in `_node_content`, `doc_id`/`ref_doc_id` = the source document, vectors unnamed or
  "text-dense" / "text-sparse".
New points are written in the collection's own layout, so the other tool still reads them.

Embedded engines (`engine=`): "local" is qdrant-client's local mode (pure Python); "edge" is
Qdrant Edge, the real engine in-process (backends/qdrant_edge.py answers the same requests).
Default: Edge for `path=` (local mode writes ~56 docs/s to disk), except for folders local
mode wrote, which keep opening with it; local mode in memory (an in-memory Edge store is a
temporary shard folder: ~0.2 s and 64 MB of write-ahead log to open, for small stores).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from qdrant_client import AsyncQdrantClient, QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from ..core.filters import RANGE_OPERATORS, And, Field, FilterError, Node, Not, Or, parse_date
from ..core.fusion import DEFAULT_RRF_K, canonical, fuse, leg_depth, weights, window
from ..core.ids import legacy_tenant_point_id, qdrant_point_id, tenant_point_id
from ..core.loops import PerLoop
from ..core.options import check_options, parameters
from ..core.plans import Plan, PlanBackend
from ..core.query import (
    CollectionNotFoundError,
    Query,
    UnsupportedError,
    check_query_vector,
    text_only,
)
from ..core.records import Group, Hit, Record, SparseVector, check_records
from ..core.retry import RetryPolicy, as_policy, is_transient_rpc
from ..core.scores import DISTANCES
from . import qdrant_wire

if TYPE_CHECKING:
    from .qdrant_edge import EdgeClient

_DISTANCE = {
    "cosine": models.Distance.COSINE,
    "dot": models.Distance.DOT,
    "euclid": models.Distance.EUCLID,
    "manhattan": models.Distance.MANHATTAN,
}
_FUSION = {"rrf": models.Fusion.RRF, "dbsf": models.Fusion.DBSF}
ENGINES = ("local", "edge")
# Scroll page size for reads without a limit.
_PAGE = 256

LAYOUTS = ("auto", "rag", "langchain", "llama")
# The (dense, sparse) vector names of new collections per layout: ours and the peers'.
_VECTOR_NAMES = {"rag": ("dense", "sparse"), "langchain": ("", "langchain-sparse"),
                 "llama": ("text-dense", "text-sparse-new")}
_ORDERINGS = ("weak", "medium", "strong")
# Strict mode's refusal of a filter on an unindexed field (REST and gRPC word it alike).
_INDEX_REQUIRED = re.compile(r'Index required but not found for \\*"(.+?)\\*"'
                             r"(?: of one of the following types: \[([^\]]*)\])?")
# How servers refuse a condition they do not know (MatchSubstring before 1.20), REST and gRPC.
_UNKNOWN_CONDITION = ("MatchInterface", "Malformed Match condition",
                      "Expected some form of condition")
# gRPC waits up to 120 s between reconnects to a server that went away; a restarted server
# (or a replacement node) should be found within the retry policy's seconds.
_GRPC_RECONNECT = {"grpc.initial_reconnect_backoff_ms": 100, "grpc.min_reconnect_backoff_ms": 100,
                   "grpc.max_reconnect_backoff_ms": 1000}
# Upserts in flight on a server by default (see QdrantBackend.write_parallelism).
SERVER_WRITE_PARALLELISM = 4
# The payload key holding a record's tenant (rag layout), indexed with is_tenant on servers.
TENANT_KEY = "tenant"
# Collection metadata set when this version creates a collection: its tenant point ids are
# core.ids.tenant_point_id. Collections without it may hold the ambiguous legacy ids, which
# tenant stores still read, delete and replace, always checking the stored tenant and id.
IDS_MARKER, IDS_VERSION = "rag_stores_point_ids", 2
# Collection metadata {payload path: schema} of the indexes a Qdrant Edge store created when it
# first filtered on a field (a filter without one reads every payload: 11x slower at 20k points).
AUTO_INDEXES = "rag_stores_auto_indexes"
# Collection metadata: the layout this library created the collection in (read when empty).
LAYOUT_KEY = "rag_stores_layout"
# Requests that may run twice with the same outcome: retried on transient faults.
_IDEMPOTENT = {"upsert", "delete", "retrieve", "scroll", "count", "query_points",
               "query_points_groups", "get_collection", "collection_exists",
               "delete_collection"}
# Requests qdrant_wire encodes for a server.
_WIRE = {"upsert": qdrant_wire.upsert, "query_points": qdrant_wire.query_points}
_CLIENT_OPTIONS = parameters(QdrantClient.__init__) | {"limits"}  # limits: through **kwargs
_CREATE_OPTIONS = parameters(QdrantClient.create_collection) - {
    "collection_name", "vectors_config", "sparse_vectors_config"}


class CollectionMissingError(CollectionNotFoundError, ValueError):
    """A missing collection; a ValueError too, as qdrant-client's local mode raises it."""


class CollectionConfigError(ValueError):
    """An existing collection does not fit the store (vector size, distance, vector names)."""


def _call(client: Any, request: tuple[str, dict[str, Any]], server: bool) -> Any:
    """Run one plan request on a client (a coroutine for an async client); upserts and
    queries to a server are encoded by qdrant_wire."""
    method, kwargs = request
    if server and method in _WIRE:
        return _WIRE[method](client, kwargs)
    return getattr(client, method)(**kwargs)


def _check_client_kwargs(kwargs: dict[str, Any]) -> None:
    """Store options and QdrantClient arguments are accepted; anything else is a mistake."""
    check_options(kwargs, _CLIENT_OPTIONS | parameters(QdrantBackend.__init__), "Qdrant store")


def _embedded_engine(engine: str | None, *, location: str | None, path: str | None,
                     server: bool, client: Any, async_client: Any) -> str | None:
    """The embedded engine to open: "edge", "local", or None (a server or given clients)."""
    if engine is not None and engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES} or None, got {engine!r}")
    if engine is not None and (server or client is not None or async_client is not None):
        raise ValueError("engine= chooses an embedded Qdrant; it cannot be combined with "
                         "url= / host= (a server) or client= / async_client= (your clients)")
    if engine == "edge" and location not in (None, ":memory:"):
        raise ValueError(f"engine='edge' takes path= (or nothing: in memory), not location={location!r}")
    if server or client is not None or async_client is not None:
        return None
    if engine is None:  # on disk: Edge, except in folders local mode wrote (README: Qdrant Edge)
        return "edge" if path is not None and not local_mode_folder(path) else "local"
    return engine


def _local_client(client: Any) -> bool:
    """A QdrantClient / AsyncQdrantClient in local mode (as qdrant-client decides: location
    ":memory:" or a path; a location that is a URL, or nothing, is a server)."""
    opts = getattr(client, "init_options", None) or {}
    return opts.get("location") == ":memory:" or opts.get("path") is not None


def local_mode_folder(path: str | os.PathLike[str]) -> bool:
    """qdrant-client's local mode keeps `meta.json` at the root of its folder."""
    return os.path.isfile(os.path.join(path, "meta.json"))


def _collection_settings(options: dict[str, Any] | None, **given: Any) -> dict[str, Any]:
    """The create_collection arguments given (None = the server's default): the store's own
    options, then `collection_options` (langchain-qdrant's `collection_create_options`)."""
    options = dict(options or {})
    check_options(options, _CREATE_OPTIONS, "create_collection (collection_options)")
    for name, value in given.items():
        if value is not None and getattr(options.get(name, value), "value",
                                         options.get(name, value)) != value:
            raise ValueError(f"{name}={value!r} and collection_options[{name!r}]="
                             f"{options[name]!r} disagree; give it once")
    return {name: value for name, value in {**given, **options}.items() if value is not None}


def _sharding_method(method: Any, shard_keys: Sequence[Any] | None) -> str | None:
    """"custom" or "auto" (a `models.ShardingMethod` or its value); `shard_keys=` alone means
    custom sharding."""
    method = getattr(method, "value", method)
    if method is not None and method not in ("auto", "custom"):
        raise ValueError(f"sharding_method must be 'auto', 'custom' or a "
                         f"models.ShardingMethod, got {method!r}")
    if shard_keys and method == "auto":
        raise ValueError("shard_keys= are the keys of custom sharding, not of "
                         "sharding_method='auto'")
    if method == "custom" and not shard_keys:
        raise ValueError("sharding_method='custom' needs shard_keys= (the shard keys created "
                         "with the collection), e.g. shard_keys=['tenant_a', 'tenant_b']")
    return "custom" if shard_keys else method


def check_shard_key(key: Any, name: str) -> Any:
    """A Qdrant shard key selector: a key (int >= 0 or non-empty str), a list of keys, or a
    `models.ShardKeyWithFallback`."""
    def one(k: Any) -> bool:
        return (isinstance(k, int) and not isinstance(k, bool) and k >= 0) or \
            (isinstance(k, str) and bool(k))

    if one(key) or isinstance(key, models.ShardKeyWithFallback) or (
            isinstance(key, list) and key and all(map(one, key))):
        return key
    raise ValueError(f"{name}: a Qdrant shard key is an int >= 0 or a non-empty string (or a "
                     f"list of them), got {key!r}")


# Payload keys of the llama layout that are not node metadata.
_LLAMA_KEYS = {"_node_content", "_node_type", "doc_id", "document_id", "ref_doc_id"}


def detect_layout(payload: dict[str, Any], new_layout: str = "rag") -> str:
    """The layout of a stored point. A flat payload without our `doc_id` (points older
    llama-index-vector-stores-qdrant versions wrote without `_node_content`) is the llama
    layout for a store that writes that layout."""
    if "_node_content" in payload:
        return "llama"
    if "page_content" in payload and "text" not in payload:
        return "langchain"
    if new_layout == "llama" and "doc_id" not in payload:
        return "llama"
    return "rag"


@dataclass(frozen=True)
class Info:
    """What the backend needs to know of an existing collection."""

    dim: int  # 0: no dense vector (a sparse-only collection)
    distance: str
    sparse: bool
    # None: the collection's dense vector is unnamed (collections written by other tools).
    vector_name: str | None
    # Created before IDS_MARKER: tenant stores also look up legacy_tenant_point_id.
    legacy_ids: bool = False
    # Qdrant Edge: payload paths this store indexed when first filtering on them (AUTO_INDEXES)
    auto_indexed: frozenset[str] = frozenset()


class QdrantBackend(PlanBackend):
    """The `Backend` protocol over Qdrant. Closes only the clients it opened itself."""

    # User ids may be unsigned 64-bit integers: Qdrant's integer point ids (core.ids).
    int_ids = True

    def __init__(
        self,
        collection_name: str = "docs",
        *,
        location: str | None = None,
        path: str | None = None,
        url: str | None = None,
        host: str | None = None,
        port: int | None = 6333,
        grpc_port: int = 6334,
        api_key: str | None = None,
        prefer_grpc: bool = False,
        https: bool | None = None,
        client: QdrantClient | None = None,
        async_client: AsyncQdrantClient | None = None,
        vector_name: str | None = None,
        sparse_vector_name: str | None = None,
        distance: str = "cosine",
        layout: str = "auto",
        payload_indexes: dict[str, str] | None = None,
        on_disk: bool = False,
        shard_number: int | None = None,
        replication_factor: int | None = None,
        write_consistency_factor: int | None = None,
        on_disk_payload: bool | None = None,
        hnsw_config: Any = None,
        optimizers_config: Any = None,
        quantization_config: Any = None,
        collection_options: dict[str, Any] | None = None,
        read_consistency: Any = None,
        write_ordering: str | None = None,
        exact: bool = False,
        hnsw_ef: int | None = None,
        tenant: str | None = None,
        retry: RetryPolicy | int | None = None,
        engine: str | None = None,
        new_layout: str = "rag",
        content_payload_key: str | None = None,
        metadata_payload_key: str | None = None,
        vector_params: dict[str, Any] | None = None,
        sparse_vector_params: dict[str, Any] | None = None,
        sharding_method: Any = None,
        shard_keys: Sequence[Any] | None = None,
        shard_key: Any = None,
        text_key: str = "text",
        **client_kwargs: Any,
    ) -> None:
        _check_client_kwargs(client_kwargs)
        engine = _embedded_engine(engine, location=location, path=path, server=bool(url or host),
                                  client=client, async_client=async_client)
        for name, value in (("shard_number", shard_number), ("replication_factor", replication_factor),
                            ("write_consistency_factor", write_consistency_factor),
                            ("hnsw_ef", hnsw_ef)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
        if write_ordering is not None and write_ordering not in _ORDERINGS:
            raise ValueError(f"write_ordering must be one of {_ORDERINGS} or None, "
                             f"got {write_ordering!r}")
        if tenant is not None and (not isinstance(tenant, str) or not tenant):
            raise ValueError(f"tenant must be a non-empty string or None, got {tenant!r}")
        if tenant is not None and layout not in ("auto", "rag"):
            raise ValueError(f"tenant= works with the rag layout only, not layout={layout!r}")
        self.collection_settings = _collection_settings(
            collection_options, shard_number=shard_number, replication_factor=replication_factor,
            write_consistency_factor=write_consistency_factor, on_disk_payload=on_disk_payload,
            hnsw_config=hnsw_config, optimizers_config=optimizers_config,
            quantization_config=quantization_config,
            sharding_method=_sharding_method(sharding_method, shard_keys))
        # Custom sharding (servers in distributed mode): the keys created with the collection,
        # and the key this store's reads and writes go to (None: reads span every shard).
        self.shard_keys = [check_shard_key(k, "shard_keys") for k in shard_keys or ()]
        self.shard_key = None if shard_key is None else check_shard_key(shard_key, "shard_key")
        if engine is not None and (self.shard_keys or self.shard_key is not None or
                                   self.collection_settings.get("sharding_method") is not None):
            raise UnsupportedError(
                f"sharding_method= / shard_keys= / shard_key= need a Qdrant server in "
                f"distributed mode (custom sharding); engine={engine!r} (embedded) has one "
                "shard: leave them out, or use url=")
        self.read_consistency = read_consistency
        self.write_ordering = write_ordering
        self.exact, self.hnsw_ef = bool(exact), hnsw_ef
        self.tenant = tenant
        self.retry = as_policy(retry)
        if distance not in DISTANCES:
            raise ValueError(f"unknown distance {distance!r}; choose one of {DISTANCES}")
        if not collection_name or not isinstance(collection_name, str):
            raise ValueError(f"collection_name must be a non-empty string, got {collection_name!r}")
        if engine is not None:  # embedded: refuse a name before a client locks the folder
            from .qdrant_edge import check_collection_name

            stored = (os.path.join(path, "collection", collection_name) if engine == "local"
                      else os.path.join(path, collection_name)) if path else ""
            check_collection_name(collection_name, exists=bool(stored) and os.path.isdir(stored))
        self.collection_name = collection_name
        self.distance = distance
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; choose one of {LAYOUTS}")
        # langchain-qdrant's payload keys: given, they mean its layout (langchain).
        if content_payload_key is not None or metadata_payload_key is not None:
            if layout not in ("auto", "langchain"):
                raise ValueError("content_payload_key= / metadata_payload_key= name the keys "
                                 f"of langchain-qdrant's layout, not of layout={layout!r}")
            layout = "langchain"
        if not isinstance(text_key, str) or not text_key:
            raise ValueError(f"text_key must be a non-empty string, got {text_key!r}")
        # llama layout: the payload key of the text of points without `_node_content`.
        self.text_key = text_key
        self._content_key = content_payload_key or "page_content"
        self._metadata_key = metadata_payload_key or "metadata"
        self.vector_params = dict(vector_params or {})
        self.sparse_vector_params = dict(sparse_vector_params or {})
        if new_layout not in LAYOUTS[1:]:
            raise ValueError(f"unknown new_layout {new_layout!r}; choose one of {LAYOUTS[1:]}")
        self.layout = layout
        # layout="auto": the layout of a new collection, and of an empty one this library did
        # not create (a collection made empty for a peer gets the peer's layout).
        self.new_layout = new_layout
        # Names given are required of an existing collection; the defaults adopt its own.
        self._names_given = (vector_name is not None, sparse_vector_name is not None)
        # New collections in a peer's layout get the peer's vector names.
        dense_default, sparse_default = _VECTOR_NAMES[new_layout if layout == "auto" else layout]
        self.vector_name = dense_default if vector_name is None else vector_name
        self.sparse_vector_name = sparse_default if sparse_vector_name is None else sparse_vector_name
        self.payload_indexes = dict(payload_indexes or {})
        self.on_disk = on_disk
        self._info: Info | None = None
        self._lock = threading.Lock()
        self._client = client
        self._aclient = async_client
        self._owns_client = False
        self._connect: dict[str, Any] | None = None
        self._edge: EdgeClient | None = None
        if engine == "edge":
            from .qdrant_edge import EdgeClient

            if client_kwargs:
                raise TypeError(f"Qdrant Edge takes no client options {sorted(client_kwargs)}")
            self._edge = EdgeClient(path)  # no path: a temporary folder, removed on close
        elif client is None and async_client is None:
            if url or host:
                # A server: sync and async clients can both be opened, each on first use.
                if prefer_grpc:  # reconnect within the retry policy after a restart
                    client_kwargs["grpc_options"] = {**_GRPC_RECONNECT,
                                                     **(client_kwargs.get("grpc_options") or {})}
                self._connect = dict(url=url, host=host, port=port, grpc_port=grpc_port,
                                     api_key=api_key, prefer_grpc=prefer_grpc, https=https,
                                     **client_kwargs)
            else:
                # Embedded local mode: one client only (a folder is locked by its client).
                self._client = QdrantClient(location=location or (None if path else ":memory:"),
                                            path=path, **client_kwargs)
                self._owns_client = True

    # --- clients ------------------------------------------------------------------
    @property
    def supports_sync(self) -> bool:
        return self._client is not None or self._connect is not None or self._edge is not None

    @property
    def engine(self) -> str:
        """"edge", "local" (qdrant-client's local mode) or "server"."""
        return "edge" if self._edge is not None else "local" if self._is_local() else "server"

    @property
    def client(self) -> QdrantClient | EdgeClient:
        """The client underneath; for Qdrant Edge the qdrant-client-shaped `EdgeClient`."""
        if self._edge is not None:
            return self._edge
        if self._client is None:
            if self._connect is None:
                raise RuntimeError(
                    "this backend was given only an AsyncQdrantClient: use the async methods, "
                    "or pass client=QdrantClient(...) too"
                )
            self._client = QdrantClient(**self._connect)
            self._owns_client = True
        return self._client

    @property
    def async_client(self) -> AsyncQdrantClient | None:
        """The async client of the running event loop: the one you passed (used as given, so
        bound to its loop), or for servers the one this backend opened in this loop (None
        before its first use there); None in sync-only local mode."""
        if self._connect is None:
            return self._aclient
        return self._aclients.current()

    @property
    def _aclients(self) -> PerLoop[AsyncQdrantClient]:
        """The async clients this backend opens for a server: one per event loop, since each
        belongs to the loop it was opened in (core.loops)."""
        async def open_one() -> AsyncQdrantClient:
            return AsyncQdrantClient(**(self._connect or {}))

        # setdefault: one table even when two threads ask for it first at the same time
        return self.__dict__.setdefault("_per_loop", PerLoop(open_one, lambda c: c.close()))

    def close(self) -> None:
        """Close the sync client this backend opened and let go of its async clients (each
        is closed in its own loop; after async use, `await aclose()` closes it at once)."""
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client, self._owns_client = None, False
        if self._edge is not None:
            self._edge.close()
        if self._connect is not None:
            self._aclients.close()

    async def aclose(self) -> None:
        """Close the running loop's async client this backend opened, then as close()."""
        if self._connect is not None:
            await self._aclients.aclose()
        self.close()

    # --- drivers (core.plans runs the plans) ------------------------------------------
    def _sync_caller(self) -> Any:
        if self._edge is not None:  # thread-safe: concurrent queries run in parallel
            return self._edge.call
        client = self.client
        if self.engine == "server":  # httpx and gRPC clients are thread-safe
            return lambda request: _call(client, request, server=True)

        def call_one(request: tuple[str, dict[str, Any]]) -> Any:
            with self._lock:  # local mode is not thread-safe; async calls may use threads
                return _call(client, request, server=False)

        return call_one

    async def _async_caller(self) -> Any:
        aclient = self._aclient if self._connect is None else await self._aclients.get()
        if aclient is None:  # local mode with a sync client: plans run in a worker thread
            return None

        server = self.engine == "server"

        async def call_one(request: tuple[str, dict[str, Any]]) -> Any:
            return await _call(aclient, request, server)

        return call_one

    def _where(self) -> str:
        """The server (never the API key) or the local folder, for messages."""
        if self._connect is not None:
            c = self._connect
            return c.get("url") or f"{c.get('host')}:{c.get('port')}"
        if self._edge is not None:
            return f"Qdrant Edge ({self._edge.path})"
        for client in (self._client, self._aclient):
            if client is not None:
                opts = client.init_options
                if not _local_client(client):
                    return str(opts.get("url") or opts.get("location") or
                               f"{opts.get('host') or 'localhost'}:{opts.get('port')}")
                return f"local mode ({opts.get('path') or opts.get('location') or ':memory:'})"
        return "Qdrant"

    def _describe(self, request: Any) -> str:
        return f"Qdrant {request[0]} on collection {self.collection_name!r} at {self._where()}"

    def _is_idempotent(self, request: Any) -> bool:
        return request[0] in _IDEMPOTENT

    def _is_transient(self, exc: BaseException) -> bool:
        if isinstance(exc, UnexpectedResponse):
            return exc.status_code in (502, 503, 504)
        if isinstance(exc, ResponseHandlingException):  # httpx: refused, reset, timed out
            return True
        if isinstance(exc, grpc.RpcError):
            return is_transient_rpc(exc)
        return isinstance(exc, ConnectionError | TimeoutError)

    def _translate(self, exc: Exception) -> Exception:
        text = str(exc)
        status = exc.status_code if isinstance(exc, UnexpectedResponse) else None
        code = exc.code() if isinstance(exc, grpc.RpcError) and hasattr(exc, "code") else None
        if status in (401, 403) or code in (grpc.StatusCode.UNAUTHENTICATED,
                                            grpc.StatusCode.PERMISSION_DENIED):
            return PermissionError(
                f"Qdrant at {self._where()} refused the request "
                f"({f'HTTP {status}' if status else f'gRPC {code.name if code else code}'}): the "
                "API key is missing or wrong; pass api_key= (the key is never shown)")
        if any(sign in text for sign in _UNKNOWN_CONDITION):
            return UnsupportedError(
                f"Qdrant at {self._where()} refused a condition of this filter as malformed. "
                "Substring matches ($like, $ilike, $contains on text, LlamaIndex "
                "TEXT_MATCH / TEXT_MATCH_INSENSITIVE) use MatchSubstring, which servers older "
                "than qdrant-client's 1.20 (such as the tested 1.18.3) lack; local mode has it. "
                "Filter with eq / in on the field, or use a newer server.")
        if "Distributed mode disabled" in text:
            return UnsupportedError(
                f"Qdrant at {self._where()} runs without distributed mode, which custom "
                f"sharding (sharding_method='custom', shard_keys={self.shard_keys!r}) needs: "
                "start it with cluster.enabled (a one-node cluster will do), or leave "
                "sharding_method= / shard_keys= out")
        if "Shard key not specified" in text or re.search(r"Shard key .* not found", text):
            return ValueError(
                f"Qdrant collection {self.collection_name!r} is sharded by custom keys, and "
                f"{'no shard key was given' if self.shard_key is None else f'shard key {self.shard_key!r} does not exist'}"
                f": writes go to one of its keys (shard_key= on the store, or "
                f"shard_identifier= / shard_key_selector= per call); keys are created with "
                f"the collection (shard_keys=) or by client.create_shard_key ({text[:200]})")
        index = _INDEX_REQUIRED.search(text)
        if index is not None:
            field = index.group(1)
            key = field[len("metadata."):] if field.startswith("metadata.") else field
            kinds = index.group(2)
            return FilterError(
                f"Qdrant collection {self.collection_name!r} is in strict mode and refuses "
                f"filters on unindexed field {key!r} (payload key {field!r}; index type one "
                f"of {kinds}): declare it with payload_indexes={{{key!r}: 'keyword'}} (or the "
                f"type that fits) when the store is created, or call "
                f"store.backend.create_payload_index({key!r}, 'keyword')")
        missing = (isinstance(exc, ValueError) and "not found" in text) or (
            isinstance(exc, UnexpectedResponse) and exc.status_code == 404
        )
        if missing and self.collection_name in text:
            self._info = None
            return CollectionMissingError(f"Collection {self.collection_name} not found: Qdrant "
                                          f"collection {self.collection_name!r} does not exist")
        return exc

    # --- collection plans -------------------------------------------------------------
    def _exists(self) -> Plan:
        return (yield "collection_exists", {"collection_name": self.collection_name})

    def _load_info(self) -> Plan:
        if self._info is None:
            described = yield "get_collection", {"collection_name": self.collection_name}
            info = self._parse_info(described)
            if self.layout == "auto":
                points, _ = yield "scroll", {"collection_name": self.collection_name, "limit": 1,
                                             "with_payload": True, "with_vectors": False}
                metadata = getattr(described.config, "metadata", None) or {}
                self.layout = detect_layout(points[0].payload or {}, self.new_layout) if points else \
                    metadata.get(LAYOUT_KEY) or ("rag" if IDS_MARKER in metadata else self.new_layout)
            if self.tenant is not None and self.layout != "rag":
                raise ValueError(
                    f"collection {self.collection_name!r} holds records in the {self.layout} "
                    "layout, which keeps no tenant field: tenant= works with the rag layout "
                    "only (migrate it, or use a collection of its own)")
            self._info = info
        return self._info

    @property
    def metadata_key(self) -> str:
        """Where metadata sits in the payload ("" = at the top level)."""
        return "" if self.layout == "llama" else \
            self._metadata_key if self.layout == "langchain" else "metadata"

    @property
    def content_key(self) -> str:
        return self._content_key if self.layout == "langchain" else "text"

    def _adopt_names(self, params: Any) -> tuple[str | None, Any]:
        """(the dense vector's name, None when unnamed; its params, None when there is no
        dense vector). The collection's own names are adopted where none were given: its one
        dense vector, its one sparse vector (llama-index-vector-stores-qdrant's "text-sparse"
        of older versions, or "text-sparse-new", ...)."""
        vectors = params.vectors
        name: str | None = None
        if isinstance(vectors, dict) and not vectors:  # sparse only
            vp = None
        elif isinstance(vectors, dict):
            if self.vector_name in vectors:
                name = self.vector_name
            elif len(vectors) == 1 and not self._names_given[0]:  # adopt its one vector
                name = next(iter(vectors))
                self.vector_name = name
            else:
                raise CollectionConfigError(
                    f"collection {self.collection_name!r} has dense vectors {sorted(vectors)}, "
                    f"none named {self.vector_name!r}: pass vector_name= one of them"
                )
            vp = vectors[name]
        elif self._names_given[0] and self.vector_name != "":
            raise CollectionConfigError(
                f"collection {self.collection_name!r} has one unnamed dense vector, not "
                f"vector_name={self.vector_name!r}: pass vector_name='' (or leave it out)")
        else:
            vp = vectors
        sparse_names = set((params.sparse_vectors or {}).keys())
        if self.sparse_vector_name not in sparse_names and len(sparse_names) == 1 \
                and not self._names_given[1]:
            self.sparse_vector_name = next(iter(sparse_names))
        return name, vp

    def _detect_names(self) -> Plan:
        """Adopt an existing collection's vector names (`_adopt_names`), reading its
        configuration only; nothing when it does not exist."""
        if (yield from self._exists()):
            described = yield "get_collection", {"collection_name": self.collection_name}
            self._adopt_names(described.config.params)

    def detect_vector_names(self) -> None:
        """Adopt the collection's vector names now (as llama-index-vector-stores-qdrant does
        when it opens), rather than on first use."""
        self._run(self._detect_names())

    def _parse_info(self, described: Any) -> Info:
        params = described.config.params
        name, vp = self._adopt_names(params)
        distance = self.distance if vp is None else \
            next(k for k, v in _DISTANCE.items() if v == vp.distance)
        sparse_names = set((params.sparse_vectors or {}).keys())
        metadata = getattr(described.config, "metadata", None) or {}
        return Info(dim=vp.size if vp is not None else 0, distance=distance,
                    sparse=self.sparse_vector_name in sparse_names, vector_name=name,
                    legacy_ids=metadata.get(IDS_MARKER) != IDS_VERSION,
                    auto_indexed=frozenset(metadata.get(AUTO_INDEXES) or {}))

    def _ensure(self, dim: int, sparse: bool) -> Plan:
        if (yield from self._exists()):
            info = yield from self._load_info()
            if dim and (info.dim != dim or info.distance != self.distance):
                raise CollectionConfigError(
                    f"collection {self.collection_name!r} holds {info.dim}-dim {info.distance} "
                    f"vectors; this store embeds {dim}-dim {self.distance} vectors. "
                    "Use another collection_name or the matching embedding and distance= "
                    "(never a silent recreate: drop it yourself, or force_recreate=True)."
                )
            if sparse and not info.sparse:
                raise CollectionConfigError(
                    f"collection {self.collection_name!r} has no sparse vector "
                    f"{self.sparse_vector_name!r}; it was created for dense search only"
                )
            return
        yield "create_collection", {
            "collection_name": self.collection_name,
            "vectors_config": {self.vector_name: models.VectorParams(**{
                "size": dim, "distance": _DISTANCE[self.distance], "on_disk": self.on_disk or None,
                **self.vector_params})} if dim else {},
            "sparse_vectors_config": {self.sparse_vector_name: models.SparseVectorParams(**{
                "modifier": models.Modifier.IDF, **self.sparse_vector_params})} if sparse else None,
            **self.collection_settings,
        }
        for key in self.shard_keys:  # custom sharding: its keys, before any write
            yield "create_shard_key", {"collection_name": self.collection_name, "shard_key": key}
        # After the creation, not in it: Qdrant Edge's create_collection takes no metadata.
        if self.layout == "auto":
            self.layout = self.new_layout
        yield "update_collection", {"collection_name": self.collection_name,
                                    "metadata": {IDS_MARKER: IDS_VERSION, LAYOUT_KEY: self.layout}}
        self._info = Info(dim=dim, distance=self.distance, sparse=sparse,
                          vector_name=self.vector_name)
        if not self._is_local():
            indexes: dict[str, Any] = {"doc_id": "keyword", "ref_doc_id": "keyword"}
            if self.tenant is not None:
                indexes[TENANT_KEY] = models.KeywordIndexParams(
                    type=models.KeywordIndexType.KEYWORD, is_tenant=True)
            indexes.update({self._field(k): v for k, v in self.payload_indexes.items()})
            for field, schema in indexes.items():
                yield "create_payload_index", {"collection_name": self.collection_name,
                                               "field_name": field, "field_schema": schema}

    def _is_local(self) -> bool:
        """qdrant-client's local mode (which keeps no payload indexes)."""
        return self._connect is None and self._edge is None and any(
            _local_client(c) for c in (self._client, self._aclient) if c is not None)

    def _field(self, key: str) -> str:
        from .qdrant_filters import key_path

        return key_path(key, self.metadata_key)

    # --- collection metadata (embedders.sparse_fit keeps BM25 statistics there) ---------
    def _get_metadata(self) -> Plan:
        described = yield "get_collection", {"collection_name": self.collection_name}
        return dict(getattr(described.config, "metadata", None) or {})

    def _set_metadata(self, values: dict[str, Any]) -> Plan:
        yield "update_collection", {"collection_name": self.collection_name, "metadata": values}

    def collection_metadata(self) -> dict[str, Any]:
        """The collection's metadata (Qdrant's `metadata=`; Edge: a file beside the shard);
        a tenant store sees no other tenant's entries (keys `.../tenant/<other>`)."""
        return self._own_entries(self._run(self._get_metadata()))

    async def acollection_metadata(self) -> dict[str, Any]:
        return self._own_entries(await self._arun(self._get_metadata()))

    def update_collection_metadata(self, values: dict[str, Any]) -> None:
        """Set metadata keys (others are kept); a tenant store sets no other tenant's."""
        self._run(self._set_metadata(self._own_entries(values, writing=True)))

    async def aupdate_collection_metadata(self, values: dict[str, Any]) -> None:
        await self._arun(self._set_metadata(self._own_entries(values, writing=True)))

    def _own_entries(self, values: dict[str, Any], writing: bool = False) -> dict[str, Any]:
        if self.tenant is None:
            return dict(values)
        own = {k: v for k, v in values.items()
               if "/tenant/" not in k or k.split("/tenant/", 1)[1] == self.tenant}
        if writing and len(own) != len(values):
            raise PermissionError(f"a store of tenant {self.tenant!r} cannot set other tenants' "
                                  f"collection metadata {sorted(set(values) - set(own))}")
        return own

    def create_payload_index(self, key: str, schema: str = "keyword") -> None:
        """Index a metadata field (Qdrant servers in strict mode refuse unindexed filters)."""
        self.payload_indexes[key] = schema
        if not self._is_local():
            self._run(self._single("create_payload_index", field_name=self._field(key),
                                   field_schema=schema))

    def optimize(self) -> bool:
        """Qdrant Edge: build the HNSW index and merge segments now. Blocks, and holds the GIL,
        for its whole run (minutes at 100k points): call it when the app may pause, e.g. after
        a bulk ingest (or `rag-stores qdrant optimize`). True if anything was optimized.
        Servers optimize in the background (False); local mode has no index (False)."""
        if self._edge is None:
            return False
        return self._edge.optimize(self.collection_name)

    async def aoptimize(self) -> bool:
        """`optimize` in a worker thread (the event loop still stalls: Edge holds the GIL)."""
        import asyncio

        return await asyncio.to_thread(self.optimize)

    def _single(self, method: str, **kwargs: Any) -> Plan:
        return (yield method, {"collection_name": self.collection_name, **kwargs})

    # --- conversions --------------------------------------------------------------------
    def _filter(self, node: Node | Any | None) -> models.Filter | None:
        """The engine filter for `node`, confined to the store's tenant."""
        if node is None or isinstance(node, models.Filter):
            flt = node
        else:
            from .qdrant_filters import to_qdrant

            flt = to_qdrant(node, metadata_key=self.metadata_key, to_ids=self._point_ids)
        if self.tenant is None:
            return flt
        own = models.FieldCondition(key=TENANT_KEY, match=models.MatchValue(value=self.tenant))
        return models.Filter(must=[own] if flt is None else [own, flt])

    def _point_id(self, user_id: str) -> Any:
        """The point id of a user id (an int id is itself); per tenant, so that tenants never
        overwrite each other."""
        if self.tenant is None:
            return qdrant_point_id(user_id)
        return tenant_point_id(self.tenant, user_id)

    def _legacy_ids(self) -> bool:
        return self.tenant is not None and self._info is not None and self._info.legacy_ids

    def _point_ids(self, user_id: str) -> list[str]:
        """Every point id a record of this store may have: with the legacy one in collections
        created before IDS_MARKER (safe only with the tenant condition, see _owned)."""
        if not self._legacy_ids():
            return [self._point_id(user_id)]
        assert self.tenant is not None
        return [self._point_id(user_id), legacy_tenant_point_id(self.tenant, user_id)]

    def _owned(self, ids: Sequence[str], with_vectors: bool = False,
               legacy_only: bool = False) -> Plan:
        """{user id: [points]} of this tenant's records among `ids`, the current point first:
        each point found is checked for the store's tenant and the user id it was asked for."""
        wanted = {str(p): i for i in ids
                  for p in self._point_ids(i)[1 if legacy_only else 0:]}
        if not wanted:
            return {}
        points = yield "retrieve", {"collection_name": self.collection_name,
                                    "ids": list(wanted), "with_payload": True,
                                    "with_vectors": with_vectors, **self._reads()}
        owned: dict[str, list[Any]] = {}
        for point in sorted(points, key=lambda p: str(p.id) != self._point_id(wanted[str(p.id)])):
            user_id = wanted[str(point.id)]
            payload = point.payload or {}
            if payload.get(TENANT_KEY) == self.tenant and payload.get("doc_id") == user_id:
                owned.setdefault(user_id, []).append(point)
        return owned

    def _writes(self) -> dict[str, Any]:
        return {"wait": True, "ordering": self.write_ordering, **self._shard()}

    def _reads(self, query: Query | None = None) -> dict[str, Any]:
        consistency = query.consistency if query is not None and query.consistency is not None \
            else self.read_consistency
        return {**({"consistency": consistency} if consistency is not None else {}),
                **self._shard(query)}

    def _shard(self, query: Query | None = None) -> dict[str, Any]:
        """The shard key of a custom-sharded collection's requests: the query's, else the
        store's (none: reads span every shard)."""
        key = query.shard_key if query is not None and query.shard_key is not None \
            else self.shard_key
        if key is not None and query is not None and query.shard_key is not None:
            check_shard_key(key, "shard_key_selector")
            if self.engine != "server":
                raise UnsupportedError(f"a shard key ({key!r}) needs a Qdrant server in "
                                       f"distributed mode; this store is {self.engine}")
        return {} if key is None else {"shard_key_selector": key}

    def for_shard_key(self, shard_key: Any) -> QdrantBackend:
        """This backend with its reads and writes in `shard_key` (custom sharding: the
        per-call `shard_identifier=` of llama-index-vector-stores-qdrant, langchain-qdrant's
        `shard_key_selector=`); same clients, closed by this backend only."""
        if shard_key is None or shard_key == self.shard_key:
            return self
        if self.engine != "server":
            raise UnsupportedError(f"a shard key ({shard_key!r}) needs a Qdrant server in "
                                   f"distributed mode; this store is {self.engine} (one shard)")
        other = copy.copy(self)
        other.shard_key = check_shard_key(shard_key, "shard key")
        other._owns_client = False
        other.close = lambda: None  # type: ignore[method-assign]
        return other

    def _point(self, record: Record) -> models.PointStruct:
        vector: dict[str, Any] = {}
        if record.vector is not None:
            vector[self.vector_name] = list(record.vector)
        if record.sparse is not None:
            vector[self.sparse_vector_name] = models.SparseVector(
                indices=list(record.sparse.indices), values=list(record.sparse.values))
        info = self._info
        unnamed = info is not None and info.vector_name is None and info.dim > 0
        return models.PointStruct(
            id=self._point_id(record.id),
            vector=vector.get(self.vector_name, []) if unnamed else vector,
            payload=self._payload(record),
        )

    def _payload(self, record: Record) -> dict[str, Any]:
        if self.layout == "llama":
            node = {"id_": record.id, "text": record.text, "metadata": record.metadata,
                    "relationships": record.relationships or {}, "class_name": "TextNode"}
            return {**record.metadata, "_node_content": json.dumps(node), "_node_type": "TextNode",
                    "doc_id": record.ref_doc_id, "document_id": record.ref_doc_id,
                    "ref_doc_id": record.ref_doc_id}
        payload = {self.content_key: record.text, self.metadata_key: record.metadata}
        if self.layout != "langchain" or qdrant_point_id(record.id) != record.id:
            payload["doc_id"] = record.id  # langchain-qdrant's points: the point id is the id
        if self.tenant is not None:
            payload[TENANT_KEY] = self.tenant
        if record.ref_doc_id is not None:  # absent rather than null: less to store and parse
            payload["ref_doc_id"] = record.ref_doc_id
        if record.relationships is not None:
            payload["relationships"] = record.relationships
        return payload

    def _record(self, point: Any) -> Record:
        payload = point.payload or {}  # read only: the metadata below is a copy
        if self.layout == "llama":
            node = json.loads(payload.get("_node_content") or "{}")
            user_id = node.get("id_") or point.id
            text = node.get("text", payload.get(self.text_key, ""))  # no node: the peer's text_key
            # The node's own copy holds keys that clash with the layout's (doc_id, ...)
            metadata = node["metadata"] if isinstance(node.get("metadata"), dict) else \
                {k: v for k, v in payload.items() if k not in _LLAMA_KEYS and
                 (k != self.text_key or "_node_content" in payload)}
            relationships = node.get("relationships") or None
        else:
            user_id = payload.get("doc_id") or point.id
            text = payload.get(self.content_key, "")
            metadata = dict(payload.get(self.metadata_key) or {})
            relationships = payload.get("relationships")
        dense, sparse = None, None
        vec = point.vector
        if isinstance(vec, dict):
            dense = vec.get(self.vector_name, vec.get(""))
            raw_sparse = vec.get(self.sparse_vector_name)
            if raw_sparse is not None:
                sparse = SparseVector(list(raw_sparse.indices), list(raw_sparse.values))
        elif isinstance(vec, list):
            dense = vec
        return Record(
            # an int id stays an int (Qdrant's integer point ids; core.records.Record.id)
            id=user_id if isinstance(user_id, int) else str(user_id),  # type: ignore[arg-type]
            text=text if isinstance(text, str) else "",
            metadata=metadata, vector=list(dense) if dense is not None else None,
            sparse=sparse, ref_doc_id=payload.get("ref_doc_id"), relationships=relationships,
        )

    def record_of(self, point: Any) -> Record:
        """The record of a Qdrant point (a `Record` / `ScoredPoint` of this collection)."""
        return self._record(point)

    def _hit(self, point: Any, info: Info) -> Hit:
        extra: dict[str, Any] = {"point_id": str(point.id)}
        score = float(point.score)
        if info.distance in ("euclid", "manhattan"):
            extra["distance"] = score
            score = -score
        return Hit(self._record(point), score, extra)

    # --- write plans --------------------------------------------------------------------
    @property
    def write_parallelism(self) -> int:
        """Upserts in flight by default (core.ingest.parallelism): a server applies one
        batch while the client serialises the next (measured: README, Qdrant server
        figures); embedded engines write one batch at a time."""
        return SERVER_WRITE_PARALLELISM if self.engine == "server" else 1

    def _upsert(self, records: Sequence[Record]) -> Plan:
        if not records:
            return
        info = yield from self._load_info()
        check_records(records, info.dim)
        if not info.sparse and any(r.sparse is not None for r in records):
            raise ValueError(f"collection {self.collection_name!r} has no sparse vector; "
                             "records carry sparse vectors")
        yield "upsert", {"collection_name": self.collection_name, "points": self._points(records),
                         **self._writes()}
        if self._legacy_ids():  # replaced: the record now lives at its current point id
            yield from self._delete_owned([r.id for r in records], legacy_only=True)

    def _delete_owned(self, ids: Sequence[str], legacy_only: bool = False) -> Plan:
        owned = yield from self._owned(ids, legacy_only=legacy_only)
        points = [p.id for found in owned.values() for p in found]
        if points:
            yield "delete", {"collection_name": self.collection_name, **self._writes(),
                             "points_selector": models.PointIdsList(points=points)}

    def _points(self, records: Sequence[Record]) -> models.Batch | list[models.PointStruct]:
        """A columnar `Batch` when every record has the same vectors (one pydantic object
        per batch instead of one per point); single points otherwise."""
        if any(r.vector is None for r in records) or len({r.sparse is None for r in records}) > 1:
            return [self._point(r) for r in records]
        dense = [r.vector for r in records if r.vector is not None]
        info = self._info
        if info is not None and info.vector_name is None:
            return models.Batch(ids=[self._point_id(r.id) for r in records], vectors=dense,
                                payloads=[self._payload(r) for r in records])
        vectors: dict[str, Any] = {self.vector_name: dense}
        if records[0].sparse is not None:
            vectors[self.sparse_vector_name] = [
                models.SparseVector(indices=list(r.sparse.indices), values=list(r.sparse.values))
                for r in records if r.sparse is not None]
        return models.Batch(ids=[self._point_id(r.id) for r in records], vectors=vectors,
                            payloads=[self._payload(r) for r in records])

    def _delete(self, ids: Sequence[str]) -> Plan:
        if not ids:
            return
        if self.tenant is not None:  # only points holding this tenant's records
            yield from self._load_info()
            yield from self._delete_owned(ids)
            return
        yield "delete", {"collection_name": self.collection_name, **self._writes(),
                         "points_selector": models.PointIdsList(
                             points=[self._point_id(i) for i in ids])}

    def _delete_where(self, node: Node | Any) -> Plan:
        yield from self._index_filtered_fields(node)
        flt = self._filter(node)
        if flt is None and self.shard_key is not None:  # everything in this shard
            flt = models.Filter()
        if flt is None:
            raise ValueError("delete_where needs a filter; use drop() to delete everything")
        yield "delete", {"collection_name": self.collection_name, **self._writes(),
                         "points_selector": models.FilterSelector(filter=flt)}

    # --- read plans -----------------------------------------------------------------------
    def _get(self, ids: Sequence[str], with_vectors: bool) -> Plan:
        if not ids:
            return []
        yield from self._load_info()
        if self.tenant is not None:  # only points holding this tenant's records
            owned = yield from self._owned(ids, with_vectors)
            return [self._record(owned[i][0]) for i in dict.fromkeys(ids) if i in owned]
        point_ids = [self._point_id(i) for i in ids]
        points = yield "retrieve", {"collection_name": self.collection_name, "ids": point_ids,
                                    "with_payload": True, "with_vectors": with_vectors,
                                    **self._reads()}
        by_id = {str(p.id): self._record(p) for p in points}
        return [by_id[str(p)] for p in dict.fromkeys(point_ids) if str(p) in by_id]

    def _scroll(self, node: Node | Any | None, limit: int | None, with_vectors: bool) -> Plan:
        yield from self._index_filtered_fields(node)
        records: list[Record] = []
        offset = None
        while limit is None or len(records) < limit:
            page = _PAGE if limit is None else min(_PAGE, limit - len(records))
            got, offset = yield from self._scroll_page(node, page, offset, with_vectors)
            records.extend(got)
            if offset is None:
                break
        return records

    def _scroll_page(self, node: Node | Any | None, limit: int, offset: Any,
                     with_vectors: bool) -> Plan:
        points, offset = yield "scroll", {
            "collection_name": self.collection_name, "scroll_filter": self._filter(node),
            "limit": limit, "offset": offset, "with_payload": True, "with_vectors": with_vectors,
            **self._reads()}
        return [self._record(p) for p in points], offset

    def _count(self, node: Node | Any | None) -> Plan:
        yield from self._index_filtered_fields(node)
        result = yield "count", {"collection_name": self.collection_name,
                                 "count_filter": self._filter(node), "exact": True,
                                 **self._shard()}
        return result.count

    def _index_filtered_fields(self, node: Node | Any | None) -> Plan:
        """The collection's Info, after (Qdrant Edge only) indexing the metadata fields `node`
        filters on that have no index yet, typed from the filter's values (keyword, float,
        bool, datetime) and recorded in the collection metadata, so reopened stores and the
        other face skip them. Servers keep indexes explicit (strict mode names the one to
        declare); local mode has none."""
        info = yield from self._load_info()
        if self._edge is None or not isinstance(node, (Field, And, Or, Not)):
            return info
        known = info.auto_indexed | {self._field(k) for k in self.payload_indexes}
        wanted = {path: schema for path, schema in _index_schemas(node, self._field).items()
                  if path not in known}
        if not wanted:
            return info
        for path, schema in wanted.items():
            yield "create_payload_index", {"collection_name": self.collection_name,
                                           "field_name": path, "field_schema": schema}
        described = yield "get_collection", {"collection_name": self.collection_name}
        recorded = dict((getattr(described.config, "metadata", None) or {}).get(AUTO_INDEXES)
                        or {})
        recorded.update(wanted)
        yield "update_collection", {"collection_name": self.collection_name,
                                    "metadata": {AUTO_INDEXES: recorded}}
        self._info = dataclasses.replace(info, auto_indexed=frozenset(recorded))
        return self._info

    def _examples(self, query: Query) -> Plan:
        """{user id: point id} of the examples given by id that sit at legacy point ids."""
        if not self._legacy_ids() or query.mode not in ("recommend", "discover"):
            return {}
        given = [*query.positive, *query.negative, query.target,
                 *(e for pair in query.context for e in pair)]
        owned = yield from self._owned([e for e in given if isinstance(e, str)])
        return {i: str(points[0].id) for i, points in owned.items()}

    def _query_args(self, query: Query, info: Info,
                    examples: dict[str, str] | None = None) -> dict[str, Any]:
        """The `query_points` arguments for one search, by mode (`examples`: _examples)."""
        def example(e: Any) -> Any:
            if not isinstance(e, str):
                return list(e)
            return (examples or {}).get(e) or self._point_id(e)

        using = info.vector_name
        flt = self._filter(query.filter)
        args: dict[str, Any] = {"collection_name": self.collection_name, "query_filter": flt,
                                "limit": query.k, "offset": query.offset or None,
                                "with_payload": True, "with_vectors": query.with_vectors,
                                "search_params": self._search_params(query), **self._reads(query)}
        if query.score_threshold is not None:
            negate = query.mode in ("dense", "mmr", "recommend") and \
                info.distance in ("euclid", "manhattan")
            args["score_threshold"] = -query.score_threshold if negate else query.score_threshold
        mode = query.mode
        text_only(query, "Qdrant")
        if query.operator is not None:
            raise UnsupportedError(
                "Qdrant's sparse search scores documents holding any query term; it has no "
                "and/or operator (retrievers.BM25Retriever applies operator='and' client-side)")
        if mode in ("sparse", "hybrid") and not info.sparse:
            raise UnsupportedError(
                f"{mode} search needs a sparse vector, and collection {self.collection_name!r} "
                "has none: create it with a sparse encoder (retrieval_mode='hybrid' or 'sparse')"
            )
        if mode in ("dense", "hybrid", "mmr") and query.vector is None:
            raise ValueError(f"{mode} search needs a query vector")
        check_query_vector(query, info.dim or None, self.collection_name)
        if mode in ("sparse", "hybrid") and query.sparse is None:
            raise ValueError(f"{mode} search needs a sparse query vector")
        if mode == "dense":
            args.update(query=list(query.vector or []), using=using)
        elif mode == "sparse":
            assert query.sparse is not None
            args.update(query=models.SparseVector(indices=list(query.sparse.indices),
                                                  values=list(query.sparse.values)),
                        using=self.sparse_vector_name)
        elif mode == "hybrid":
            assert query.sparse is not None
            branch_k = leg_depth(query.prefetch_k, query.k, query.offset)
            legs = [
                models.Prefetch(query=list(query.vector or []), using=using, limit=branch_k,
                                filter=flt, params=self._search_params(query)),
                models.Prefetch(query=models.SparseVector(indices=list(query.sparse.indices),
                                                          values=list(query.sparse.values)),
                                using=self.sparse_vector_name, limit=branch_k, filter=flt),
            ]
            args["prefetch"], args["query"] = self._fusion(query, legs, branch_k)
        elif mode == "mmr":
            args.update(query=models.NearestQuery(
                nearest=list(query.vector or []),
                # Qdrant's diversity is the opposite of LangChain's lambda_mult.
                mmr=models.Mmr(diversity=1.0 - query.lambda_mult,
                               candidates_limit=max(query.fetch_k, query.k))), using=using)
        elif mode == "recommend":
            if not query.positive and not query.negative:
                raise ValueError("recommend needs at least one positive or negative example")
            args.update(query=models.RecommendQuery(recommend=models.RecommendInput(
                positive=[example(e) for e in query.positive] or None,
                negative=[example(e) for e in query.negative] or None,
                strategy=models.RecommendStrategy(query.strategy))), using=using)
        elif mode == "discover":
            if query.target is None and not query.context:
                raise ValueError("discover needs a target or context pairs")
            pairs = [models.ContextPair(positive=example(p), negative=example(n))
                     for p, n in query.context]
            if query.target is None:
                args["query"] = models.ContextQuery(context=pairs)
            else:
                args["query"] = models.DiscoverQuery(discover=models.DiscoverInput(
                    target=example(query.target), context=pairs))
            args["using"] = using
        else:
            raise ValueError(f"unknown search mode {mode!r}")
        return args

    def _search_params(self, query: Query | None = None) -> models.SearchParams | None:
        """The query's `search_params`, else the store's: exact=True: brute force on servers
        (local mode is always exact); hnsw_ef: effort."""
        given = None if query is None else query.search_params
        if isinstance(given, dict):
            return models.SearchParams(**given)
        if given is not None:
            if not isinstance(given, models.SearchParams):
                raise ValueError(f"search_params must be a qdrant_client models.SearchParams or "
                                 f"its dict, got {type(given).__name__}")
            return given
        if not self.exact and self.hnsw_ef is None:
            return None
        return models.SearchParams(exact=self.exact, hnsw_ef=self.hnsw_ef)

    def _client_fusion(self, query: Query) -> bool:
        """Hybrid fused here rather than by the engine (core.fusion): "convex" (Qdrant has no
        min-max fusion) and Qdrant Edge (no formula queries)."""
        return query.mode == "hybrid" and (canonical(query.fusion) == "convex"
                                           or self._edge is not None)

    def _fusion(self, query: Query, legs: list[models.Prefetch], depth: int) -> tuple[Any, Any]:
        """(prefetch, query) of a server-side fusion, weighted as core.fusion defines it: each
        leg fused alone (RRF with k, or DBSF: that leg's normalised scores), then a formula
        sums alpha * $score[0] + (1 - alpha) * $score[1] (a hit missing from a leg adds 0)."""
        fusion = canonical(query.fusion)
        if fusion not in _FUSION:
            raise UnsupportedError(f"fusion {query.fusion!r} runs client-side on Qdrant")
        inner: Any = (models.RrfQuery(rrf=models.Rrf(k=query.rrf_k or DEFAULT_RRF_K))
                      if fusion == "rrf" else models.FusionQuery(fusion=models.Fusion.DBSF))
        dense_w, keyword_w = weights(query.alpha)
        prefetch = [models.Prefetch(prefetch=[leg], query=inner, limit=depth) for leg in legs]
        formula = models.FormulaQuery(
            formula=models.SumExpression(sum=[
                models.MultExpression(mult=[dense_w, "$score[0]"]),
                models.MultExpression(mult=[keyword_w, "$score[1]"])]),
            defaults={"$score[0]": 0.0, "$score[1]": 0.0})
        return prefetch, formula

    def _fused_here(self, query: Query, info: Info) -> Plan:
        """A hybrid search fused client-side: both legs fetched, `core.fusion.fuse`."""
        depth = leg_depth(query.prefetch_k, query.k, query.offset)
        legs = []
        for mode in ("dense", "sparse"):
            leg = dataclasses.replace(query, mode=mode, k=depth, offset=0, score_threshold=None)
            result = yield "query_points", self._query_args(leg, info)
            legs.append([self._hit(p, info) for p in result.points])
        fused = fuse(legs[0], legs[1], fusion=query.fusion, alpha=query.alpha, rrf_k=query.rrf_k)
        return window(fused, query.k, query.offset, query.score_threshold)

    def _search(self, query: Query) -> Plan:
        if query.group_by is not None:
            raise ValueError("grouped queries go through search_groups")
        info = yield from self._index_filtered_fields(query.filter)
        if self._client_fusion(query):
            return (yield from self._fused_here(query, info))
        examples = yield from self._examples(query)
        result = yield "query_points", self._query_args(query, info, examples)
        return [self._hit(p, info) for p in result.points]

    def _search_groups(self, query: Query) -> Plan:
        if query.group_by is None:
            raise ValueError("search_groups needs query.group_by")
        info = yield from self._index_filtered_fields(query.filter)
        if self._client_fusion(query):  # retrievers.Grouped then groups the fused hits
            raise UnsupportedError("Qdrant cannot group a hybrid search fused client-side "
                                   f"(fusion {query.fusion!r}{' on Qdrant Edge' if self._edge else ''})")
        examples = yield from self._examples(query)
        args = self._query_args(query, info, examples)
        args.pop("offset")
        args.update(group_by=self._field(query.group_by), group_size=query.group_size)
        result = yield "query_points_groups", args
        return [Group(key=g.id, hits=[self._hit(p, info) for p in g.hits]) for g in result.groups]

    def _dimension(self) -> Plan:
        if not (yield from self._exists()):
            return None
        return (yield from self._load_info()).dim

    def _has_sparse(self) -> Plan:
        if not (yield from self._exists()):
            return False
        return (yield from self._load_info()).sparse

    def _drop(self) -> Plan:
        if self.tenant is not None:  # the tenant's records only; the collection is shared
            if (yield from self._exists()):
                own = self._filter(None)
                assert own is not None
                yield "delete", {"collection_name": self.collection_name, **self._writes(),
                                 "points_selector": models.FilterSelector(filter=own)}
            return
        self._info = None
        yield "delete_collection", {"collection_name": self.collection_name}


def _index_schemas(node: Node, path_of: Any) -> dict[str, str]:
    """{payload path: index schema} for the metadata fields a filter tree compares, typed
    from the values it compares them with (fields of mixed or untyped use are left out)."""
    found: dict[str, set[str | None]] = {}

    def walk(n: Node) -> None:
        if isinstance(n, (And, Or)):
            for child in n.children:
                walk(child)
        elif isinstance(n, Not):
            walk(n.child)
        elif not n.key.startswith("$") and n.op not in ("exists", "text_match",
                                                         "text_match_insensitive"):
            values = n.value if isinstance(n.value, (list, tuple)) else [n.value]
            found.setdefault(n.key, set()).update(_value_schema(v, n.op) for v in values)

    walk(node)
    schemas: dict[str, str] = {}
    for key, kinds in found.items():
        kind = kinds.pop() if len(kinds) == 1 else None
        if kind is not None:
            try:
                schemas[path_of(key)] = kind
            except FilterError:  # a key no Qdrant path expresses cannot be filtered either
                continue
    return schemas


def _value_schema(value: Any, op: str) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "float"  # eq on a number is a Range (qdrant_filters), which float indexes serve
    if isinstance(value, str):
        if op not in RANGE_OPERATORS:
            return "keyword"
        return "datetime" if parse_date(value) is not None else None
    return None
