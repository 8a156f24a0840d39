"""Weaviate batch writes and plain vector searches, without weaviate-client's per-object
conversion.

`collection.data.insert_many` turns each object into its gRPC message through generic type
checks (every property value tested against a dozen shapes, each vector validated element
by element, one `Struct.update` per property) and reads the reply back into a uuid and a
result object per object: ~50 us of Python per object of our layout, 60-70% of the client's
CPU in a write (README: Weaviate write figures), and on a server sharing the client's cores
that time is taken from the server. Our layout's properties have few shapes (strings, and
lists of strings, numbers or bools), so the same `BatchObjectsRequest` is filled here
directly and sent with the handle's connection (`grpc_batch_objects`: weaviate-client's
headers, API key, timeout, retries and exceptions). Tested equal to weaviate-client's own
message (tests/test_weaviate_wire.py).

Searches: a dense `near_vector` on our layout returns five text properties per object, yet
the client reads each reply through generic per-value type tests, ~60% of its CPU per query
(0.49 of ~0.8 ms for k=10); 32 queries in flight are bound by that CPU. `near_vector` here
builds the request with the client's own builder (its argument checks skipped: the backend
made the arguments) and reads the reply's few fields directly
(tested equal to the client's results, tests/test_weaviate_wire.py).
"""

from __future__ import annotations

import copy
import inspect
import struct
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.struct_pb2 import Struct
from weaviate.classes.config import ConsistencyLevel
from weaviate.classes.data import DataObject
from weaviate.classes.query import MetadataQuery
from weaviate.proto.v1 import base_pb2, batch_pb2, search_get_pb2

from . import weaviate_layout as layout

_LEVELS = {ConsistencyLevel.ONE: base_pb2.ConsistencyLevel.CONSISTENCY_LEVEL_ONE,
           ConsistencyLevel.QUORUM: base_pb2.ConsistencyLevel.CONSISTENCY_LEVEL_QUORUM,
           ConsistencyLevel.ALL: base_pb2.ConsistencyLevel.CONSISTENCY_LEVEL_ALL}
_SCALARS = (str, float, int, bool)
_SINGLE = base_pb2.Vectors.VECTOR_TYPE_SINGLE_FP32
# Retries of a batch on a transient gRPC error inside weaviate-client (as its insert_many).
_CLIENT_RETRIES = 2


def insert_many(collection: Any, objects: Sequence[DataObject[Any, None]]) -> Any:
    """Write `objects` through `collection` (a sync or async handle, tenant and consistency
    level included): {index in objects: error message} for the objects the server refused,
    or a coroutine of it for an async handle."""
    connection = collection._connection
    return connection.grpc_batch_objects(
        batch_request(collection.name, collection.tenant, collection.consistency_level,
                      objects),
        timeout=connection.timeout_config.insert, max_retries=_CLIENT_RETRIES)


def batch_request(name: str, tenant: str | None, level: ConsistencyLevel | None,
                  objects: Sequence[DataObject[Any, None]]) -> batch_pb2.BatchObjectsRequest:
    """The request weaviate-client's insert_many would send for these objects."""
    return batch_pb2.BatchObjectsRequest(
        objects=[_object(name, tenant, obj) for obj in objects],
        consistency_level=_LEVELS[level] if level is not None else None)


def _object(name: str, tenant: str | None, obj: DataObject[Any, None]) -> batch_pb2.BatchObject:
    vector: Any = obj.vector  # a list, or {target: list} for named vectors
    if isinstance(vector, dict):
        unnamed, named = None, [base_pb2.Vectors(name=target, vector_bytes=_floats(v),
                                                 type=_SINGLE) for target, v in vector.items()]
    else:
        unnamed, named = (_floats(vector) if vector is not None else None), None
    return batch_pb2.BatchObject(collection=name, uuid=str(obj.uuid), tenant=tenant,
                                 properties=_properties(obj.properties), vector_bytes=unnamed,
                                 vectors=named)


def _floats(vector: Sequence[float]) -> bytes:
    return struct.pack(f"<{len(vector)}f", *vector)


def _properties(props: dict[str, Any]) -> batch_pb2.BatchObject.Properties:
    scalars: dict[str, Any] = {}
    texts, numbers, ints, bools, empty = [], [], [], [], []
    for key, value in props.items():
        if value is None or isinstance(value, _SCALARS):
            scalars[key] = value
        elif not isinstance(value, list):
            raise TypeError(f"property {key!r}: {type(value).__name__} is not a value of the "
                            "rag-stores layout (str, number, bool or a list of one of them)")
        elif not value:
            empty.append(key)
        elif all(isinstance(v, str) for v in value):
            texts.append(base_pb2.TextArrayProperties(prop_name=key, values=value))
        elif all(isinstance(v, bool) for v in value):
            bools.append(base_pb2.BooleanArrayProperties(prop_name=key, values=value))
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            ints.append(base_pb2.IntArrayProperties(prop_name=key, values=value))
        elif all(isinstance(v, float) for v in value):
            numbers.append(base_pb2.NumberArrayProperties(
                prop_name=key, values_bytes=struct.pack(f"<{len(value)}d", *value)))
        else:
            raise TypeError(f"property {key!r}: a list mixing kinds is not a value of the "
                            "rag-stores layout (one kind per list)")
    fields = Struct()
    fields.update(scalars)
    return batch_pb2.BatchObject.Properties(
        non_ref_properties=fields, text_array_properties=texts, number_array_properties=numbers,
        int_array_properties=ints, boolean_array_properties=bools, empty_list_props=empty)


@dataclass
class Metadata:
    distance: float | None = None
    score: float | None = None


@dataclass
class Found:
    """What the backend reads of a found object (the attributes of weaviate-client's own)."""

    uuid: str
    properties: dict[str, Any]
    metadata: Metadata
    vector: dict[str, Any] = field(default_factory=dict)


@dataclass
class Results:
    objects: list[Found]


# The near_vector searches read here: the backend's own (these arguments, distances, the
# layout's text properties). Any other (vectors or more metadata returned, other properties,
# grouping, reranking, autocut: a user's native query) goes through weaviate-client.
_PLAIN = {"near_vector", "target_vector", "limit", "offset", "filters", "distance",
          "return_metadata", "return_properties", "include_vector"}
_TEXTS = {layout.TEXT, layout.DOC_ID, layout.REF_DOC_ID, layout.METADATA_JSON,
          layout.RELATIONSHIPS_JSON}
_DISTANCE = MetadataQuery(distance=True)


def _ours(args: dict[str, Any]) -> bool:
    properties = args.get("return_properties")
    return (args.keys() <= _PLAIN and not args.get("include_vector")
            and args.get("return_metadata") == _DISTANCE and isinstance(properties, list)
            and set(properties) <= _TEXTS)


def near_vector(collection: Any, **args: Any) -> Any:
    """`collection.query.near_vector(**args)` (a sync or async handle): Results of Found
    objects, or a coroutine of them, for the backend's own searches (`_ours`)."""
    query = collection.query
    if not _ours(args):
        return query.near_vector(**args)
    request = _builder(query).near_vector(
        near_vector=args["near_vector"], target_vector=args.get("target_vector"),
        limit=args.get("limit"), offset=args.get("offset"), filters=args.get("filters"),
        distance=args.get("distance"),
        return_metadata=query._parse_return_metadata(args.get("return_metadata"), False),
        return_properties=query._parse_return_properties(args["return_properties"]))
    reply = collection._connection.grpc_search(request)
    if inspect.isawaitable(reply):
        async def read() -> Results:
            return results(await reply)
        return read()
    return results(reply)


_builders: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _builder(query: Any) -> Any:
    """The handle's request builder without its per-call argument checks (0.2 ms, a quarter
    of the client's CPU per query): the backend built and checked these arguments itself.
    What `skip_argument_validation=True` gives a whole handle, for these requests only."""
    builder = _builders.get(query)
    if builder is None:
        builder = _builders[query] = copy.copy(query._query)
        builder._validate_arguments = False
    return builder


def results(reply: search_get_pb2.SearchReply) -> Results:
    return Results([Found(str(uuid.UUID(bytes=r.metadata.id_as_bytes)),
                          {name: _text(name, value)
                           for name, value in r.properties.non_ref_props.fields.items()},
                          Metadata(r.metadata.distance if r.metadata.distance_present else None,
                                   r.metadata.score if r.metadata.score_present else None))
                    for r in reply.results])


def _text(name: str, value: Any) -> str | None:
    kind = value.WhichOneof("kind")
    if kind == "text_value":
        return value.text_value  # type: ignore[no-any-return]
    if kind == "null_value" or kind is None:
        return None
    raise TypeError(f"property {name!r} holds a {kind}, not text as the rag-stores layout "
                    "returns it")
