"""Upserts and nearest-vector queries encoded for a Qdrant server without qdrant-client's
pydantic work.

A 256 x 384 `models.Batch` costs qdrant-client 7 ms to turn into JSON (pydantic serialises
every float through the vector-struct union) and 4 ms into gRPC messages (its generic
converters); written for the batches our plans send, the same request bodies cost 1.7 ms
(orjson) and 2.2 ms (messages filled in place). On a server sharing the client's cores that
is 20 and 10 us of CPU per point given back to the server (README: Qdrant server
figures). A top-10 query costs qdrant-client ~0.4 ms of Python around a 2 ms server call
(its query model, vector union, the conversion and re-validation of every hit): the same
request written here and its hits read as plain objects bring it to the server's time plus
the records (README: Qdrant server figures). Everything else (any other shape of
`points`, fused, recommend, MMR and grouped queries) goes through qdrant-client as given;
every request still runs on the client's own HTTP or gRPC connection (headers, API key,
timeouts) and fails with its exceptions.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from qdrant_client import grpc, models
from qdrant_client.conversions.conversion import GrpcToRest, RestToGrpc

# The query_points arguments a nearest-vector query of our plans sends.
_QUERY_ARGS = {"collection_name", "query", "using", "query_filter", "limit", "offset",
               "with_payload", "with_vectors", "search_params", "score_threshold", "consistency"}


def upsert(client: Any, kwargs: dict[str, Any]) -> Any:
    """`client.upsert(**kwargs)` for a sync or async server client (an async client returns
    a coroutine), its `Batch` encoded here; the result is the server's acknowledgement."""
    batch = kwargs["points"]
    if not isinstance(batch, models.Batch) or set(kwargs) - {"collection_name", "points",
                                                             "wait", "ordering"}:
        return client.upsert(**kwargs)
    ordering = kwargs.get("ordering")
    if client.init_options.get("prefer_grpc"):
        return client.grpc_points.Upsert(grpc.UpsertPoints(
            collection_name=kwargs["collection_name"], wait=kwargs.get("wait"),
            points=grpc_points(batch), ordering=None if ordering is None else
            RestToGrpc.convert_write_ordering(models.WriteOrdering(ordering))),
            timeout=grpc_timeout(client))
    try:
        body = json_body(batch)
    except orjson.JSONEncodeError:  # e.g. an int beyond 64 bits: as qdrant-client writes it
        return client.upsert(**kwargs)
    return client.http.points_api.upsert_points(
        collection_name=kwargs["collection_name"], wait=kwargs.get("wait"),
        ordering=ordering, point_insert_operations=body)


def grpc_timeout(client: Any) -> int:
    """The deadline qdrant-client gives its own gRPC calls: `timeout=` rounded up, else 5 s."""
    timeout = client.init_options.get("timeout")
    return math.ceil(timeout) if timeout is not None else 5


def json_body(batch: models.Batch) -> bytes:
    """The REST body of an upsert of `batch`: what pydantic writes, byte for byte."""
    vectors = batch.vectors
    if isinstance(vectors, dict):
        vectors = {name: [_json_vector(v) for v in column] for name, column in vectors.items()}
    body: dict[str, Any] = {"ids": batch.ids, "vectors": vectors}
    if batch.payloads is not None:
        body["payloads"] = batch.payloads
    # Metadata keys that are not strings are written as strings, as json.dumps would.
    return orjson.dumps({"batch": body}, option=orjson.OPT_NON_STR_KEYS)


def _json_vector(vector: Any) -> Any:
    if isinstance(vector, models.SparseVector):
        return {"indices": vector.indices, "values": vector.values}
    return vector


def grpc_points(batch: models.Batch) -> list[grpc.PointStruct]:
    """The gRPC points of `batch`, equal to qdrant-client's conversion of it."""
    payloads: list[Any] = batch.payloads or [None] * len(batch.ids)
    columns = batch.vectors if isinstance(batch.vectors, dict) else None
    points = []
    for i, (point_id, payload) in enumerate(zip(batch.ids, payloads, strict=True)):
        point = grpc.PointStruct(payload=RestToGrpc.convert_payload(payload)
                                 if payload is not None else None)
        if isinstance(point_id, str):
            point.id.uuid = point_id
        else:
            point.id.num = point_id
        if columns is None:
            _fill(point.vectors.vector, batch.vectors[i])  # type: ignore[index]
        else:
            for name, column in columns.items():
                _fill(point.vectors.vectors.vectors[name], column[i])
        points.append(point)
    return points


def _fill(target: grpc.Vector, vector: Any) -> None:
    if isinstance(vector, models.SparseVector):
        target.sparse.indices.extend(vector.indices)
        target.sparse.values.extend(vector.values)
    else:  # our plans send dense and sparse vectors only
        target.dense.data.extend(vector)


@dataclass(slots=True)
class ScoredPoint:
    """A hit as our records read it (models.ScoredPoint's fields, without validation)."""

    id: Any  # an int or a UUID string
    score: float
    payload: dict[str, Any] | None
    vector: Any


@dataclass(slots=True)
class QueryResponse:
    points: list[ScoredPoint]


def query_points(client: Any, kwargs: dict[str, Any]) -> Any:
    """`client.query_points(**kwargs)` for a sync or async server client; a nearest query
    by a dense or sparse vector, with its payloads, is encoded and read here."""
    query = kwargs.get("query")
    if set(kwargs) - _QUERY_ARGS or kwargs.get("with_payload") is not True or \
            not isinstance(query, list | models.SparseVector):
        return client.query_points(**kwargs)
    if client.init_options.get("prefer_grpc"):
        return _then(client.grpc_points.Query(grpc_query(kwargs), timeout=grpc_timeout(client)),
                     _grpc_response)
    try:
        body = query_body(kwargs)
    except orjson.JSONEncodeError:  # a vector of some other number type: qdrant-client's
        return client.query_points(**kwargs)
    consistency = kwargs.get("consistency")
    return _then(client.http.client.request(
        type_=dict, method="POST", url="/collections/{collection_name}/points/query",
        path_params={"collection_name": kwargs["collection_name"]},
        params={} if consistency is None else {"consistency": str(consistency)},
        headers={"Content-Type": "application/json"}, content=body),
        _json_response)


def query_body(kwargs: dict[str, Any]) -> bytes:
    """The REST body of a nearest query: what qdrant-client writes, byte for byte."""
    query = kwargs["query"]
    body: dict[str, Any] = {"query": {"nearest": _json_vector(query)}}
    for key, field in (("using", "using"), ("query_filter", "filter"), ("search_params", "params"),
                       ("score_threshold", "score_threshold"), ("limit", "limit"),
                       ("offset", "offset")):
        value = kwargs.get(key)
        if value is not None:
            body[field] = value.model_dump(mode="json", by_alias=True, exclude_unset=True,
                                           exclude_none=True) \
                if isinstance(value, models.Filter | models.SearchParams) else value
    body["with_vector"] = kwargs.get("with_vectors", False)
    body["with_payload"] = True
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)  # numpy floats from embedders


def grpc_query(kwargs: dict[str, Any]) -> grpc.QueryPoints:
    """The gRPC request of a nearest query, equal to qdrant-client's."""
    query = kwargs["query"]
    vector = grpc.VectorInput()
    _fill(vector, query)
    flt, params, consistency = (kwargs.get(k) for k in ("query_filter", "search_params",
                                                         "consistency"))
    return grpc.QueryPoints(
        collection_name=kwargs["collection_name"], query=grpc.Query(nearest=vector),
        using=kwargs.get("using"), limit=kwargs.get("limit"), offset=kwargs.get("offset"),
        filter=None if flt is None else RestToGrpc.convert_filter(flt),
        params=None if params is None else RestToGrpc.convert_search_params(params),
        score_threshold=kwargs.get("score_threshold"),
        with_payload=grpc.WithPayloadSelector(enable=True),
        with_vectors=grpc.WithVectorsSelector(enable=bool(kwargs.get("with_vectors"))),
        read_consistency=None if consistency is None
        else RestToGrpc.convert_read_consistency(consistency))


def _then(sent: Any, read: Callable[[Any], QueryResponse]) -> Any:
    """read(sent), or for an async client a coroutine that awaits it first."""
    if not inspect.isawaitable(sent):
        return read(sent)

    async def read_when_done() -> QueryResponse:
        return read(await sent)
    return read_when_done()


def _json_response(response: dict[str, Any]) -> QueryResponse:
    return QueryResponse([ScoredPoint(p["id"], p["score"], p.get("payload"),
                                      _json_vectors(p.get("vector")))
                          for p in response["result"]["points"]])


def _json_vectors(vector: Any) -> Any:
    if not isinstance(vector, dict):
        return vector
    return {name: models.SparseVector(**v) if isinstance(v, dict) else v
            for name, v in vector.items()}


def _grpc_response(response: grpc.QueryResponse) -> QueryResponse:
    return QueryResponse([ScoredPoint(
        GrpcToRest.convert_point_id(p.id), p.score, GrpcToRest.convert_payload(p.payload),
        GrpcToRest.convert_vectors_output(p.vectors) if p.HasField("vectors") else None)
        for p in response.result])
