"""Weaviate batch writes encoded here, without weaviate-client's per-object conversion.

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
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from google.protobuf.struct_pb2 import Struct
from weaviate.classes.config import ConsistencyLevel
from weaviate.classes.data import DataObject
from weaviate.proto.v1 import base_pb2, batch_pb2

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
