"""Qdrant Edge (`qdrant-edge-py`): the real Qdrant engine in-process, as an engine of QdrantBackend.

The Qdrant plans (backends/qdrant.py) yield requests in qdrant-client's terms; `EdgeClient`
answers them over Edge shards, so every operation stays written once. This is the only module
that imports `qdrant_edge`. It translates, both ways: filters, queries, ids, results, errors.

- Layout: one collection = one Edge shard directory `<path>/<collection>` (Edge's own
  `edge_config.json`, `wal/`, `segments/`). No path: a temporary directory, removed on close.
- One writer per directory: Edge's write-ahead log locks it. Stores of one process share the
  open shard (refcounted); another process gets `StorageLockedError` naming the path and the
  holder. The WAL is never disabled (without it nothing locks and a second writer's data is
  silently lost), and after a SIGKILL it replays every acknowledged write.
- What Edge lacks, emulated exactly over Edge's own queries: grouping (`query_points_groups`,
  local mode's semantics: groups in order of their best hit, prefetches widened to the whole
  collection), recommend and discover by stored id (the ids' vectors are looked up and the
  ids excluded from the results, as the server does), the average_vector recommend strategy
  (one nearest query on avg(pos) + (avg(pos) - avg(neg)), the server's formula).
  Snapshots, quantization and server options (sharding, replication) raise UnsupportedError.
- Indexing policy: nothing is indexed behind the user's back. `optimize()` (HNSW build and
  segment merge) blocks and holds the GIL for its whole run (about a minute at 20k 384-dim
  points on 2 cores), so it runs only when asked (`EdgeClient.optimize`, the backend's
  `optimize()`, `rag-stores qdrant optimize`). Searches below `EXACT_BELOW` points are exact
  (brute force costs under ~20 ms there and keeps exact orders); above it they use the HNSW index
  where `optimize()` built one, with `HNSW_EF` candidates (measured: benchmarks/bench_edge.py),
  and brute force on what is not indexed yet. `exact=` / `hnsw_ef=` of the store override this.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import qdrant_edge as qe
from qdrant_client.http import models  # (qdrant_client.models.QueryResponse is fastembed's)
from qdrant_client.local.payload_value_extractor import value_by_key
from qdrant_client.local.qdrant_local import INVALID_NAME_CHARS

from ..core.query import StorageLockedError, UnsupportedError

# Below this many points searches are exact. Measured on 2 cores, 384 dims (bench_edge.py):
# brute force answers in ~2 ms at 20k points and ~18 ms at 100k, within every latency target,
# with recall 1.0; HNSW (after optimize) was no faster at 20k and only ~2x faster at 100k.
EXACT_BELOW = 100_000
# HNSW search effort above EXACT_BELOW: recall@10 vs exact >= 0.95 on CISI embeddings (README).
HNSW_EF = 256
# Qdrant's default RRF constant (qdrant-client's fusion.DEFAULT_RANKING_CONSTANT_K, the server's).
RRF_K = 2
_CONFIG = "edge_config.json"
_METADATA = "rag_stores_metadata.json"  # collection metadata (update_collection)
_DISTANCES = {models.Distance.COSINE: qe.Distance.Cosine, models.Distance.DOT: qe.Distance.Dot,
              models.Distance.EUCLID: qe.Distance.Euclid,
              models.Distance.MANHATTAN: qe.Distance.Manhattan}
_DISTANCE_NAMES = {"Cosine": models.Distance.COSINE, "Dot": models.Distance.DOT,
                   "Euclid": models.Distance.EUCLID, "Manhattan": models.Distance.MANHATTAN}
_SCHEMAS = {"keyword": qe.PayloadSchemaType.Keyword, "integer": qe.PayloadSchemaType.Integer,
            "float": qe.PayloadSchemaType.Float, "bool": qe.PayloadSchemaType.Bool,
            "datetime": qe.PayloadSchemaType.Datetime, "uuid": qe.PayloadSchemaType.Uuid,
            "text": qe.PayloadSchemaType.Text, "geo": qe.PayloadSchemaType.Geo}
# Collection options that belong to servers (sharding, replication) or that Edge lacks.
_SERVER_ONLY = ("shard_number", "replication_factor", "write_consistency_factor",
                "sharding_method", "quantization_config", "strict_mode_config", "wal_config",
                "init_from", "timeout", "metadata")


def check_collection_name(name: Any, exists: bool = False) -> str:
    """`name` if the Qdrant server would take it for a new collection (qdrant-client's local
    mode applies the same rules; Edge, whose collection is a directory, must too, or a name
    fails deep in the engine or works here and nowhere else); else a ValueError naming it.

    `exists=True` (a collection already on disk): only what no directory can be named is
    refused, so collections made under older, looser rules stay readable.
    """
    chars = ("/", "\\", "\0") if exists else INVALID_NAME_CHARS
    if (isinstance(name, str) and name not in ("", ".", "..")
            and len(name.encode("utf-8", "surrogatepass")) <= 255
            and not any(c in name for c in chars)):
        return name
    shown = repr(name) if len(repr(name)) <= 60 else repr(name)[:50] + "...' (truncated)"
    raise ValueError(f"collection_name {shown} is not a valid Qdrant collection name: expected "
                     f"1 to 255 bytes of UTF-8, not '.' or '..', without any of "
                     f"{' '.join(map(repr, chars))}"
                     + ("" if exists else " (the Qdrant server's rules for a new collection)"))


def is_edge_folder(path: str) -> bool:
    """True when `path` holds Edge shards (and no local-mode storage)."""
    if not os.path.isdir(path) or os.path.exists(os.path.join(path, "meta.json")):
        return False
    return any(os.path.isfile(os.path.join(path, name, _CONFIG)) for name in os.listdir(path))


# --- shards shared in this process, one per directory ------------------------------------
_OPEN: dict[str, list[Any]] = {}  # realpath -> [shard, users]
_OPEN_LOCK = threading.Lock()


def _holder(path: str) -> str:
    """Who holds the WAL lock of `path`: a process from /proc/locks when it can be told."""
    try:
        inodes = {os.stat(os.path.join(path, "wal")).st_ino}  # the WAL flocks its directory
        with open("/proc/locks") as locks:
            for line in locks:
                parts = line.split()
                pid, inode = parts[4], parts[5].rsplit(":", 1)[-1]
                if inode.isdigit() and int(inode) in inodes and int(pid) != os.getpid():
                    try:
                        with open(f"/proc/{pid}/cmdline", "rb") as f:
                            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                    except OSError:
                        cmd = "?"
                    return f"process {pid} ({cmd[:120]})"
    except (OSError, IndexError):
        pass
    return "another process"


def _acquire(path: str, config: Any | None) -> Any:
    key = os.path.realpath(path)
    with _OPEN_LOCK:
        entry = _OPEN.get(key)
        if entry is None:
            try:
                shard = qe.EdgeShard.create(path, config) if config is not None \
                    else qe.EdgeShard.load(path)
            except Exception as exc:
                if "WouldBlock" in str(exc):
                    raise StorageLockedError(
                        f"Qdrant Edge shard {path} is open in {_holder(path)}: one process "
                        "writes a shard at a time. Close the store there (or use a Qdrant "
                        "server for several processes).") from None
                raise
            entry = _OPEN[key] = [shard, 0]
        entry[1] += 1
        return entry[0]


def _release(path: str) -> None:
    key = os.path.realpath(path)
    with _OPEN_LOCK:
        entry = _OPEN.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] <= 0:
            del _OPEN[key]
            entry[0].flush()
            entry[0].close()


class EdgeClient:
    """qdrant-client-shaped calls over Edge shards under one folder (see the module docstring).

    The Qdrant backend drives it through `call`; the method names and keyword arguments are
    qdrant-client's, so the backend's plans need no Edge branch.
    """

    def __init__(self, path: str | None = None) -> None:
        self._temporary = path is None
        self.path = tempfile.mkdtemp(prefix="rag-stores-edge-") if path is None else str(path)
        os.makedirs(self.path, exist_ok=True)
        self._shards: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.closed = False

    # --- plumbing -----------------------------------------------------------------------
    def call(self, request: tuple[str, dict[str, Any]]) -> Any:
        method, kwargs = request
        handler = getattr(self, method, None)
        if handler is None or method.startswith("_"):
            raise UnsupportedError(f"Qdrant Edge has no {method!r} (qdrant-edge-py 0.9.0)")
        return handler(**kwargs)

    def _dir(self, name: str) -> str:
        return os.path.join(self.path, check_collection_name(name, exists=True))

    def _shard(self, name: str) -> Any:
        if self.closed:
            raise RuntimeError(f"this Qdrant Edge client ({self.path}) is closed")
        with self._lock:
            shard = self._shards.get(name)
            if shard is None:
                if not self.collection_exists(name):
                    raise ValueError(f"Collection {name} not found")
                shard = self._shards[name] = _acquire(self._dir(name), None)
            return shard

    @contextmanager
    def _errors(self, name: str) -> Iterator[None]:
        """Edge raises bare Exceptions: the project's errors, by message."""
        try:
            yield
        except Exception as exc:
            if type(exc) is not Exception:
                raise
            text = str(exc)
            if "dimension error" in text:
                raise ValueError(f"vector: {text} (collection {name!r})") from None
            if "Not existing vector name" in text:
                raise ValueError(f"using / vector name: {text} (collection {name!r})") from None
            if "WouldBlock" in text:
                raise StorageLockedError(f"Qdrant Edge shard {self._dir(name)} is locked by "
                                         f"{_holder(self._dir(name))}") from None
            if "not initialized" in text:
                raise RuntimeError(f"Qdrant Edge shard {self._dir(name)} is closed") from None
            raise RuntimeError(f"Qdrant Edge ({self._dir(name)}): {text}") from None

    def close(self) -> None:
        """Release this client's shards (closed when no store of the process uses them)."""
        with self._lock:
            for name in list(self._shards):
                self._shards.pop(name)
                _release(self._dir(name))
            self.closed = True
        if self._temporary:
            shutil.rmtree(self.path, ignore_errors=True)

    # --- collections --------------------------------------------------------------------
    def collection_exists(self, collection_name: str) -> bool:
        return os.path.isfile(os.path.join(self._dir(collection_name), _CONFIG))

    def get_collection(self, collection_name: str) -> models.CollectionInfo:
        shard = self._shard(collection_name)
        with open(os.path.join(self._dir(collection_name), _CONFIG)) as f:
            config = json.load(f)
        vectors = {name: models.VectorParams(size=v["size"], distance=_DISTANCE_NAMES[v["distance"]])
                   for name, v in (config.get("vectors") or {}).items()}
        sparse = {name: models.SparseVectorParams(
            modifier=models.Modifier.IDF if v.get("modifier") == "idf" else None)
            for name, v in (config.get("sparse_vectors") or {}).items()}
        with self._errors(collection_name):
            info = shard.info()
        params = models.CollectionParams.model_construct(vectors=vectors, sparse_vectors=sparse)
        return models.CollectionInfo.model_construct(
            status=models.CollectionStatus.GREEN, points_count=info.points_count,
            indexed_vectors_count=info.indexed_vectors_count, segments_count=info.segments_count,
            config=models.CollectionConfig.model_construct(
                params=params, metadata=self._metadata(collection_name)), payload_schema={})

    def _metadata(self, name: str) -> dict[str, Any]:
        """Collection metadata (Edge keeps none: a JSON file beside the shard's config)."""
        path = os.path.join(self._dir(name), _METADATA)
        if not os.path.isfile(path):
            return {}
        with open(path) as f:
            return dict(json.load(f))

    def update_collection(self, collection_name: str, metadata: dict[str, Any] | None = None,
                          **options: Any) -> bool:
        """Metadata only (merged key by key, as servers do); other settings: UnsupportedError."""
        given = [k for k, v in options.items() if v is not None]
        if given:
            raise UnsupportedError(f"Qdrant Edge cannot update {given} of a collection")
        self._shard(collection_name)
        if metadata:
            with self._lock:
                merged = {**self._metadata(collection_name), **metadata}
                path = os.path.join(self._dir(collection_name), _METADATA)
                with open(path + ".tmp", "w") as f:
                    json.dump(merged, f)
                os.replace(path + ".tmp", path)
        return True

    def create_collection(self, collection_name: str, vectors_config: Any,
                          sparse_vectors_config: dict[str, Any] | None = None,
                          on_disk_payload: bool | None = None, hnsw_config: Any = None,
                          optimizers_config: Any = None, **options: Any) -> bool:
        given = [k for k, v in options.items() if v is not None]
        if any(k not in _SERVER_ONLY for k in given):
            raise TypeError(f"unknown create_collection option(s) {given}")
        if given:
            raise UnsupportedError(f"Qdrant Edge has no {given} (server or cluster options); "
                                   "use a Qdrant server for them")
        if isinstance(vectors_config, models.VectorParams):
            vectors_config = {"": vectors_config}
        vectors = {name: qe.EdgeVectorParams(size=p.size, distance=_DISTANCES[p.distance],
                                             on_disk=p.on_disk)
                   for name, p in vectors_config.items()}
        sparse = {name: qe.EdgeSparseVectorParams(
            modifier=qe.Modifier.Idf if p.modifier == models.Modifier.IDF else None)
            for name, p in (sparse_vectors_config or {}).items()}
        # Payloads cached in RAM unless on_disk_payload=True: filters without a payload index
        # read every point's payload (20k points: 26 ms cached, 66 ms cold)
        memory = qe.Memory.Cold if on_disk_payload else qe.Memory.Cached
        config = qe.EdgeConfig(vectors=vectors, sparse_vectors=sparse or None,
                               payload_memory=memory, hnsw_config=_hnsw(hnsw_config),
                               optimizers=_optimizers(optimizers_config))
        with self._lock:
            if self.collection_exists(collection_name):
                raise ValueError(f"Collection {collection_name} already exists")
            check_collection_name(collection_name)
            self._shards[collection_name] = _acquire(self._dir(collection_name), config)
        return True

    def delete_collection(self, collection_name: str, **_: Any) -> bool:
        path = self._dir(collection_name)
        with self._lock:
            if collection_name in self._shards:
                self._shards.pop(collection_name)
                _release(path)
            if os.path.realpath(path) in _OPEN:
                raise StorageLockedError(f"Qdrant Edge shard {path} is in use by another store "
                                         "of this process: close it before dropping")
            existed = os.path.isdir(path)
            shutil.rmtree(path, ignore_errors=True)
        return existed

    def create_payload_index(self, collection_name: str, field_name: str, field_schema: Any,
                             **_: Any) -> None:
        if isinstance(field_schema, models.KeywordIndexParams):
            schema: Any = qe.KeywordIndexParams(is_tenant=field_schema.is_tenant)
        else:
            name = getattr(field_schema, "value", field_schema)
            if name not in _SCHEMAS:
                raise ValueError(f"field_schema {field_schema!r} is not one of {sorted(_SCHEMAS)}")
            schema = _SCHEMAS[name]
        self._update(collection_name, qe.UpdateOperation.create_field_index(field_name, schema))

    def optimize(self, collection_name: str) -> bool:
        """Build HNSW indexes and merge segments; blocks (and holds the GIL) until done."""
        shard = self._shard(collection_name)
        with self._errors(collection_name):
            return bool(shard.optimize())

    # --- writes ---------------------------------------------------------------------------
    def _update(self, name: str, operation: Any) -> None:
        shard = self._shard(name)
        with self._errors(name):
            shard.update(operation)

    def upsert(self, collection_name: str, points: Any, **_: Any) -> None:
        if isinstance(points, models.Batch):
            vectors = points.vectors
            count = len(points.ids)
            if isinstance(vectors, dict):
                per_point = [{name: _vector(values[i]) for name, values in vectors.items()}
                             for i in range(count)]
            else:
                per_point = [{"": list(v)} for v in vectors]
            payloads: list[Any] = list(points.payloads) if points.payloads else [None] * count
            edge = [qe.Point(id=_id(i), vector=v, payload=p)
                    for i, v, p in zip(points.ids, per_point, payloads, strict=True)]
        else:
            edge = [qe.Point(id=_id(p.id), vector=_named(p.vector), payload=p.payload)
                    for p in points]
        self._update(collection_name, qe.UpdateOperation.upsert_points(edge))

    def delete(self, collection_name: str, points_selector: Any, **_: Any) -> None:
        if isinstance(points_selector, models.FilterSelector):
            operation = qe.UpdateOperation.delete_points_by_filter(
                to_edge_filter(points_selector.filter) or qe.Filter())
        elif isinstance(points_selector, models.PointIdsList):
            operation = qe.UpdateOperation.delete_points([_id(i) for i in points_selector.points])
        else:
            raise UnsupportedError(f"points_selector {type(points_selector).__name__}")
        self._update(collection_name, operation)

    # --- reads ----------------------------------------------------------------------------
    def retrieve(self, collection_name: str, ids: Sequence[Any], with_payload: Any = True,
                 with_vectors: Any = False, **_: Any) -> list[models.Record]:
        shard = self._shard(collection_name)
        with self._errors(collection_name):
            found = shard.retrieve([_id(i) for i in ids], _payload(with_payload),
                                   _with_vector(with_vectors))
        return [_record(p) for p in found]

    def scroll(self, collection_name: str, scroll_filter: Any = None, limit: int = 10,
               offset: Any = None, with_payload: Any = True, with_vectors: Any = False,
               **_: Any) -> tuple[list[models.Record], Any]:
        shard = self._shard(collection_name)
        with self._errors(collection_name):
            points, next_offset = shard.scroll(qe.ScrollRequest(
                offset=None if offset is None else _id(offset), limit=limit,
                filter=to_edge_filter(scroll_filter), with_payload=_payload(with_payload),
                with_vector=_with_vector(with_vectors)))
        return [_record(p) for p in points], _out_id(next_offset)

    def count(self, collection_name: str, count_filter: Any = None, exact: bool = True,
              **_: Any) -> models.CountResult:
        shard = self._shard(collection_name)
        with self._errors(collection_name):
            n = shard.count(qe.CountRequest(exact=exact, filter=to_edge_filter(count_filter)))
        return models.CountResult(count=n)

    def query_points(self, collection_name: str, query: Any = None, using: str | None = None,
                     prefetch: Any = None, query_filter: Any = None, limit: int = 10,
                     offset: int | None = None, with_payload: Any = True,
                     with_vectors: Any = False, score_threshold: float | None = None,
                     search_params: Any = None, **_: Any) -> models.QueryResponse:
        shard = self._shard(collection_name)
        edge_query, exclude = self._query(collection_name, query, using)
        flt = to_edge_filter(_without(query_filter, exclude))
        request = qe.QueryRequest(
            limit=limit, offset=offset, query=edge_query, filter=flt,
            prefetches=[self._prefetch(collection_name, p) for p in _listed(prefetch)] or None,
            with_payload=_payload(with_payload), with_vector=_with_vector(with_vectors),
            score_threshold=score_threshold, params=self._params(shard, search_params))
        with self._errors(collection_name):
            found = shard.query(request)
        return models.QueryResponse(points=[_scored(p) for p in found])

    def query_points_groups(self, collection_name: str, group_by: str, limit: int = 10,
                            group_size: int = 3, prefetch: Any = None, **kwargs: Any
                            ) -> models.GroupsResult:
        """Emulated as local mode does it: the ranking over the whole collection (prefetches
        widened to every point), bucketed by the values of `group_by` in rank order; pages
        double until `limit` groups are full or the ranking ends."""
        shard = self._shard(collection_name)
        total = max(shard.info().points_count, 1)
        if prefetch is not None:
            prefetch = [_widened(p, total) for p in _listed(prefetch)]
        groups: dict[Any, list[models.ScoredPoint]] = {}
        page, start = max(limit * group_size * 2, 16), 0
        while True:
            got = self.query_points(collection_name, prefetch=prefetch, limit=page, offset=start,
                                    **{**kwargs, "with_payload": True}).points
            for point in got:
                for value in _group_values(point.payload or {}, group_by):
                    hits = groups.setdefault(value, [])
                    if len(hits) < group_size:
                        hits.append(point)
            start += len(got)
            first = list(groups.values())[:limit]
            if len(got) < page or (len(first) == limit and
                                   all(len(h) == group_size for h in first)):
                break
            page *= 2
        return models.GroupsResult(groups=[models.PointGroup(id=key, hits=hits)
                                           for key, hits in list(groups.items())[:limit]])

    # --- query translation ----------------------------------------------------------------
    def _params(self, shard: Any, params: Any) -> Any:
        if params is not None:
            return qe.SearchParams(hnsw_ef=params.hnsw_ef, exact=bool(params.exact))
        if shard.info().points_count < EXACT_BELOW:
            return qe.SearchParams(exact=True)
        return qe.SearchParams(hnsw_ef=HNSW_EF)

    def _prefetch(self, name: str, p: models.Prefetch) -> Any:
        if p.query is None:
            raise UnsupportedError("a prefetch without a query on Qdrant Edge")
        query, exclude = self._query(name, p.query, p.using)
        shard = self._shard(name)
        return qe.Prefetch(limit=p.limit or 10, query=query,
                           prefetches=[self._prefetch(name, q) for q in _listed(p.prefetch)] or None,
                           params=self._params(shard, p.params),
                           filter=to_edge_filter(_without(p.filter, exclude)),
                           score_threshold=p.score_threshold)

    def _vectors(self, name: str, using: str, examples: Sequence[Any]) -> tuple[list[Any], list[Any]]:
        """Vectors of recommend/discover examples: stored ids looked up (and returned, to be
        excluded from the results, as the server does), vectors as given."""
        ids = [e for e in examples if isinstance(e, str | int | uuid.UUID)]
        found: dict[str, Any] = {}
        if ids:
            for record in self.retrieve(name, ids, with_payload=False, with_vectors=[using]):
                vec = record.vector
                found[str(record.id)] = vec.get(using) if isinstance(vec, dict) else vec
        vectors = []
        for example in examples:
            if isinstance(example, str | int | uuid.UUID):
                if str(_out_id(_id(example))) not in found:
                    raise ValueError(f"example point {example!r} is not in collection {name!r}")
                vectors.append(found[str(_out_id(_id(example)))])
            else:
                vectors.append(_vector(example))
        return vectors, ids

    def _query(self, name: str, query: Any, using: str | None) -> tuple[Any, list[Any]]:
        """(the Edge scoring query, the example ids to exclude) for a qdrant-client query."""
        using = using or ""
        if query is None:
            return None, []
        if isinstance(query, list | models.SparseVector):
            return qe.Query.Nearest(_vector(query), using=using), []
        if isinstance(query, models.NearestQuery):
            if query.mmr is None:
                return qe.Query.Nearest(_vector(query.nearest), using=using), []
            diversity = 0.5 if query.mmr.diversity is None else query.mmr.diversity
            return qe.Mmr(_vector(query.nearest), lambda_=1.0 - diversity,
                          candidates_limit=query.mmr.candidates_limit or 100, using=using), []
        if isinstance(query, models.FusionQuery):
            if query.fusion == models.Fusion.DBSF:
                return qe.Fusion.Dbsf(), []
            return qe.Fusion.Rrf(k=RRF_K), []
        if isinstance(query, models.RrfQuery):
            return qe.Fusion.Rrf(k=query.rrf.k or RRF_K, weights=query.rrf.weights), []
        if isinstance(query, models.RecommendQuery):
            rec = query.recommend
            positive, pos_ids = self._vectors(name, using, rec.positive or [])
            negative, neg_ids = self._vectors(name, using, rec.negative or [])
            strategy = rec.strategy or models.RecommendStrategy.AVERAGE_VECTOR
            if strategy == models.RecommendStrategy.AVERAGE_VECTOR:
                if not positive:
                    raise ValueError("recommend with strategy average_vector needs a positive "
                                     "example")
                return qe.Query.Nearest(_average(positive, negative), using=using), \
                    pos_ids + neg_ids
            make = qe.Query.RecommendBestScore if strategy == models.RecommendStrategy.BEST_SCORE \
                else qe.Query.RecommendSumScores
            return make(qe.RecommendQuery(positive, negative), using=using), pos_ids + neg_ids
        if isinstance(query, models.DiscoverQuery | models.ContextQuery):
            pairs: list[Any] = _listed(query.discover.context if isinstance(
                query, models.DiscoverQuery) else query.context)
            flat = [e for pair in pairs for e in (pair.positive, pair.negative)]
            if isinstance(query, models.DiscoverQuery):
                flat.append(query.discover.target)
            vectors, ids = self._vectors(name, using, flat)
            edge_pairs = [qe.ContextPair(vectors[i], vectors[i + 1])
                          for i in range(0, 2 * len(pairs), 2)]
            if isinstance(query, models.DiscoverQuery):
                return qe.Query.Discover(qe.DiscoverQuery(vectors[-1], edge_pairs),
                                         using=using), ids
            return qe.Query.Context(qe.ContextQuery(edge_pairs), using=using), ids
        raise UnsupportedError(f"Qdrant Edge has no {type(query).__name__} queries here")


# --- conversions ---------------------------------------------------------------------------
def _id(point_id: Any) -> Any:
    """Edge takes unsigned ints and UUIDs (as strings)."""
    return point_id if isinstance(point_id, int) else str(point_id)


def _out_id(point_id: Any) -> Any:
    """qdrant-client's form of an id: UUIDs as strings."""
    return str(point_id) if isinstance(point_id, uuid.UUID) else point_id


def _vector(value: Any) -> Any:
    if isinstance(value, models.SparseVector):
        return qe.SparseVector(list(value.indices), list(value.values))
    return list(value)


def _named(vector: Any) -> Any:
    if isinstance(vector, dict):
        return {name: _vector(v) for name, v in vector.items()}
    return {"": list(vector)}


def _vector_out(vector: Any) -> Any:
    if isinstance(vector, dict):
        return {name: models.SparseVector.model_construct(indices=list(v.indices),
                                                          values=list(v.values))
                if isinstance(v, qe.SparseVector) else v for name, v in vector.items()}
    return vector


def _record(point: Any) -> models.Record:
    return models.Record.model_construct(id=_out_id(point.id), payload=point.payload,
                                         vector=_vector_out(point.vector), shard_key=None,
                                         order_value=None)


def _scored(point: Any) -> models.ScoredPoint:
    return models.ScoredPoint.model_construct(
        id=_out_id(point.id), version=point.version, score=point.score, payload=point.payload,
        vector=_vector_out(point.vector), shard_key=None, order_value=None)


def _payload(with_payload: Any) -> Any:
    if isinstance(with_payload, list):
        return qe.PayloadSelector.Include(with_payload)
    return bool(with_payload)


def _with_vector(with_vectors: Any) -> Any:
    return list(with_vectors) if isinstance(with_vectors, list) else bool(with_vectors)


def _listed(value: Any) -> list[Any]:
    return [] if value is None else list(value) if isinstance(value, list) else [value]


def _average(positive: list[Any], negative: list[Any]) -> list[float]:
    """The server's average_vector query: avg(pos) + (avg(pos) - avg(neg))."""
    avg_pos = [sum(col) / len(positive) for col in zip(*positive, strict=True)]
    if not negative:
        return avg_pos
    avg_neg = [sum(col) / len(negative) for col in zip(*negative, strict=True)]
    return [p + p - n for p, n in zip(avg_pos, avg_neg, strict=True)]


def _without(flt: Any, ids: list[Any]) -> Any:
    """`flt` that also excludes the point ids `ids`."""
    if not ids:
        return flt
    exclude = models.HasIdCondition(has_id=[_id(i) for i in ids])
    if flt is None:
        return models.Filter(must_not=[exclude])
    return models.Filter(must=[flt], must_not=[exclude])


def _widened(prefetch: models.Prefetch, limit: int) -> models.Prefetch:
    return prefetch.model_copy(update={
        "limit": limit, "prefetch": [_widened(p, limit) for p in _listed(prefetch.prefetch)] or None})


def _group_values(payload: dict[str, Any], key: str) -> list[Any]:
    """The group ids of a point, as local mode and the server take them: str and int values
    (never bool), a point with any other value in none."""
    values = value_by_key(payload, key)
    if values is None or any(type(v) not in (str, int) for v in values):
        return []
    return list(dict.fromkeys(values))


def to_edge_filter(flt: Any) -> Any:
    """A qdrant_client Filter (or condition) as an Edge Filter; None stays None."""
    if flt is None:
        return None
    if not isinstance(flt, models.Filter):
        return qe.Filter(must=[_condition(flt)])

    def side(conditions: Any) -> list[Any] | None:
        return None if conditions is None else [_condition(c) for c in _listed(conditions)]

    min_should = None
    if flt.min_should is not None:
        min_should = qe.MinShould([_condition(c) for c in flt.min_should.conditions],
                                  flt.min_should.min_count)
    return qe.Filter(must=side(flt.must), should=side(flt.should), must_not=side(flt.must_not),
                     min_should=min_should)


def _condition(c: Any) -> Any:
    if isinstance(c, models.Filter):
        return to_edge_filter(c)
    if isinstance(c, models.FieldCondition):
        return qe.FieldCondition(c.key, match=_match(c.match), range=_range(c.range),
                                 values_count=None if c.values_count is None else qe.ValuesCount(
                                     lt=c.values_count.lt, gt=c.values_count.gt,
                                     lte=c.values_count.lte, gte=c.values_count.gte),
                                 is_empty=c.is_empty, is_null=c.is_null)
    if isinstance(c, models.IsEmptyCondition):
        return qe.IsEmptyCondition(c.is_empty.key)
    if isinstance(c, models.IsNullCondition):
        return qe.IsNullCondition(c.is_null.key)
    if isinstance(c, models.HasIdCondition):
        return qe.HasIdCondition({_id(i) for i in c.has_id})
    if isinstance(c, models.HasVectorCondition):
        return qe.HasVectorCondition(c.has_vector)
    if isinstance(c, models.NestedCondition):
        return qe.NestedCondition(c.nested.key, to_edge_filter(c.nested.filter))
    raise UnsupportedError(f"filter condition {type(c).__name__} on Qdrant Edge")


def _match(m: Any) -> Any:
    if m is None:
        return None
    if isinstance(m, models.MatchValue):
        # qdrant-edge-py 0.9.0 reads a Python bool as the int 1/0 (int is tried first), which
        # matches no stored bool; numpy's bool is not an int, so it arrives as a bool.
        value: Any = np.bool_(m.value) if isinstance(m.value, bool) else m.value
        return qe.MatchValue(value)
    if isinstance(m, models.MatchAny):
        return qe.MatchAny(list(m.any))  # type: ignore[arg-type]
    if isinstance(m, models.MatchExcept):
        return qe.MatchExcept(list(m.except_))  # type: ignore[arg-type]
    if isinstance(m, models.MatchText):
        return qe.MatchText(m.text)
    if isinstance(m, models.MatchSubstring):
        return qe.MatchSubstring(m.substring)
    if isinstance(m, models.MatchPhrase):
        return qe.MatchPhrase(m.phrase)
    if isinstance(m, models.MatchTextAny):
        return qe.MatchTextAny(m.text_any)
    raise UnsupportedError(f"match {type(m).__name__} on Qdrant Edge")


def _range(r: Any) -> Any:
    if r is None:
        return None
    if isinstance(r, models.DatetimeRange):
        def iso(v: Any) -> str | None:
            return None if v is None else v.isoformat() if hasattr(v, "isoformat") else str(v)

        return qe.RangeDateTime(gte=iso(r.gte), gt=iso(r.gt), lte=iso(r.lte), lt=iso(r.lt))
    return qe.RangeFloat(gte=r.gte, gt=r.gt, lte=r.lte, lt=r.lt)


def _hnsw(config: Any) -> Any:
    """HnswConfigDiff -> Edge's HnswIndexConfig (Qdrant's defaults for what is unset)."""
    if config is None:
        return None
    return qe.HnswIndexConfig(m=config.m if config.m is not None else 16,
                              ef_construct=config.ef_construct or 100,
                              full_scan_threshold=config.full_scan_threshold or 10_000,
                              max_indexing_threads=config.max_indexing_threads or 0,
                              on_disk=config.on_disk, payload_m=config.payload_m)


def _optimizers(config: Any) -> Any:
    if config is None:
        return None
    return qe.EdgeOptimizersConfig(
        deleted_threshold=config.deleted_threshold,
        vacuum_min_vector_number=config.vacuum_min_vector_number,
        default_segment_number=config.default_segment_number,
        max_segment_size=config.max_segment_size,
        indexing_threshold=config.indexing_threshold)
