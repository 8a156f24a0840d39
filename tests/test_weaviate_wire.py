"""backends.weaviate_wire sends the batch request weaviate-client's insert_many would send,
and on a real server reports the refused objects as weaviate-client does, sync and async."""

from __future__ import annotations

import uuid

import pytest
from weaviate.classes.config import Configure, ConsistencyLevel, DataType, Property
from weaviate.classes.data import DataObject
from weaviate.classes.query import MetadataQuery
from weaviate.collections.batch.grpc_batch import _BatchGRPC
from weaviate.collections.classes.batch import _BatchObject
from weaviate.exceptions import WeaviateInsertManyAllFailedError
from weaviate.proto.v1 import batch_pb2
from weaviate.util import _ServerVersion

from rag_stores.backends import weaviate_layout as layout
from rag_stores.backends import weaviate_wire
from tests.conformance import fresh_name

pytestmark = pytest.mark.weaviate

METADATA = [
    {"year": 2024, "score": 0.5, "ok": True, "tag": " padded ", "when": "2024-05-01T10:00:00Z",
     "tags": ["a", "B"], "mixed": [1, "x", False], "deep": {"k": [1, 2]}, "none": None,
     "empty": []},
    {},
]
VECTOR = [0.1, -0.2, 1e-30, 0.30000001192092896]


def layout_objects(named: bool) -> list[DataObject]:
    """Objects as the backend writes them: every kind of metadata value of the layout."""
    objects = []
    for i, metadata in enumerate(METADATA):
        props = layout.object_properties(f"text é {i}", metadata, f"id-{i}",
                                         "ref" if i else None, {"1": {"x": 1}} if i else None,
                                         searchable_keys=["tag", "tags"])
        objects.append(DataObject(properties=props, uuid=str(uuid.UUID(int=i + 1)),
                                  vector={"dense": VECTOR} if named else VECTOR))
    return objects


OTHER_LISTS = [DataObject(properties={"ints": [1, 2, 3], "bools": [True, False], "s": "x",
                                      "n": 3, "f": 1.5, "b": False}, uuid=str(uuid.UUID(int=9)),
                          vector=VECTOR)]


def theirs(name: str, tenant: str | None, level: ConsistencyLevel | None,
           objects: list[DataObject]) -> batch_pb2.BatchObjectsRequest:
    grpc = _BatchGRPC(_ServerVersion(1, 38, 11), level, None)
    batch = [_BatchObject(collection=name, vector=o.vector, uuid=str(o.uuid),
                          properties=o.properties, tenant=tenant, references=None, index=i)
             for i, o in enumerate(objects)]
    return batch_pb2.BatchObjectsRequest(objects=grpc.grpc_objects(batch),
                                         consistency_level=grpc._consistency_level)


@pytest.mark.parametrize("objects", [layout_objects(True), layout_objects(False), OTHER_LISTS],
                         ids=["named", "unnamed", "other lists"])
@pytest.mark.parametrize("tenant, level", [(None, None), ("t1", ConsistencyLevel.ONE),
                                           (None, ConsistencyLevel.QUORUM),
                                           ("t2", ConsistencyLevel.ALL)])
def test_request_is_what_weaviate_client_sends(objects, tenant, level) -> None:
    ours = weaviate_wire.batch_request("Docs", tenant, level, objects)
    assert ours == theirs("Docs", tenant, level, objects)
    assert ours.SerializeToString(deterministic=True) == theirs(
        "Docs", tenant, level, objects).SerializeToString(deterministic=True)


@pytest.mark.parametrize("value, expected", [
    ({"k": 1}, "property 'k': dict is not a value of the rag-stores layout"),
    ([1, "a"], "property 'k': a list mixing kinds"),
])
def test_a_value_outside_the_layout_is_refused_by_name(value, expected) -> None:
    obj = DataObject(properties={"k": value}, uuid=str(uuid.UUID(int=1)), vector=VECTOR)
    with pytest.raises(TypeError, match=expected):
        weaviate_wire.batch_request("Docs", None, None, [obj])


def _collection(client, name: str):
    return client.collections.create(
        name, vector_config=[Configure.Vectors.self_provided(name="dense")],
        properties=[Property(name="n", data_type=DataType.INT)])


def _batch() -> list[DataObject]:
    """Objects 1 and 3 give the INT property "n" a string: the server refuses those two."""
    return [DataObject(properties={"n": i if i % 2 == 0 else f"no {i}"},
                       uuid=str(uuid.UUID(int=i + 1)), vector={"dense": VECTOR})
            for i in range(4)]


def test_refused_objects_are_reported_as_weaviate_client_reports_them(weaviate_client) -> None:
    ours_name, their_name = fresh_name("WireOurs"), fresh_name("WireTheirs")
    try:
        ours = weaviate_wire.insert_many(_collection(weaviate_client, ours_name), _batch())
        result = _collection(weaviate_client, their_name).data.insert_many(_batch())
        assert sorted(ours) == sorted(result.errors) == [1, 3]
        assert {i: m.replace(ours_name, "C") for i, m in ours.items()} == {
            i: e.message.replace(their_name, "C") for i, e in result.errors.items()}
        stored = weaviate_client.collections.use(ours_name).query.fetch_objects(
            include_vector=True)
        assert sorted(o.properties["n"] for o in stored.objects) == [0, 2]
        assert all(o.vector["dense"] == pytest.approx(VECTOR) for o in stored.objects)
    finally:
        weaviate_client.collections.delete([ours_name, their_name])


async def test_an_async_handle_reports_every_refused_object(weaviate_client,
                                                            weaviate_async_client) -> None:
    """weaviate-client raises when every object is refused; the wire reports each of them."""
    name = fresh_name("WireAsync")
    _collection(weaviate_client, name)
    try:
        batch = [DataObject(properties={"n": "text"}, uuid=str(uuid.UUID(int=i + 1)),
                            vector={"dense": VECTOR}) for i in range(3)]
        handle = weaviate_async_client.collections.use(name)
        refused = await weaviate_wire.insert_many(handle, batch)
        assert sorted(refused) == [0, 1, 2]
        with pytest.raises(WeaviateInsertManyAllFailedError) as caught:
            await handle.data.insert_many(batch)
        assert all(message in str(caught.value) for message in refused.values())
        assert (await handle.aggregate.over_all(total_count=True)).total_count == 0
    finally:
        weaviate_client.collections.delete(name)


# --- near_vector searches ---------------------------------------------------------------------
def _searched(records: int = 12):
    """Records of our layout with metadata of every kind, and the search arguments our
    backend sends for a filtered dense query."""
    from weaviate.classes.query import Filter

    from rag_stores.backends.weaviate import _RETURNED
    from rag_stores.core.records import Record

    records_ = [Record(id=f"doc-{i}", text=f"text é {i}" if i else " padded ",
                       metadata={**METADATA[i % 2], "i": i},
                       vector=[float(i % 5), 1.0, float(i % 3) - 1, 0.5],
                       ref_doc_id="ref" if i % 3 else None,
                       relationships={"1": {"x": i}} if i % 4 else None)
                for i in range(records)]
    args = {"near_vector": VECTOR, "target_vector": "dense", "limit": 5, "offset": None,
            "filters": Filter.by_property("doc_id").not_equal("doc-3"),
            "include_vector": False, "return_properties": _RETURNED,
            "return_metadata": MetadataQuery(distance=True)}
    return records_, args


def _same(ours, theirs) -> None:
    assert [o.uuid for o in ours.objects] == [str(o.uuid) for o in theirs.objects]
    assert [o.properties for o in ours.objects] == [o.properties for o in theirs.objects]
    assert [o.metadata.distance for o in ours.objects] == [
        o.metadata.distance for o in theirs.objects]
    assert [o.metadata.score for o in ours.objects] == [o.metadata.score for o in theirs.objects]


@pytest.mark.parametrize("tenant", [None, "acme"])
def test_a_search_reads_what_weaviate_client_reads(weaviate_client, tenant) -> None:
    from rag_stores.backends.weaviate import WeaviateBackend

    name = fresh_name("WireSearch")
    records, args = _searched()
    backend = WeaviateBackend(name, client=weaviate_client, tenant=tenant)
    try:
        backend.upsert(records)
        if tenant:  # another tenant's objects never show
            WeaviateBackend(name, client=weaviate_client, tenant="globex").upsert(records[:4])
        handle = weaviate_client.collections.use(name)
        handle = handle.with_tenant(tenant) if tenant else handle
        ours, theirs = weaviate_wire.near_vector(handle, **args), handle.query.near_vector(**args)
        assert len(ours.objects) == 5 and "doc-3" not in [o.properties["doc_id"]
                                                          for o in ours.objects]
        _same(ours, theirs)
        threshold = {**args, "distance": theirs.objects[2].metadata.distance}
        _same(weaviate_wire.near_vector(handle, **threshold),
              handle.query.near_vector(**threshold))
        # a user's native query goes through the client: vectors, more metadata, any property
        found = weaviate_wire.near_vector(handle, **{**args, "include_vector": True})
        assert all(o.vector["dense"] for o in found.objects)
        more = {**args, "return_metadata": MetadataQuery(distance=True, certainty=True)}
        assert all(o.metadata.certainty for o in weaviate_wire.near_vector(handle, **more).objects)
        every = {**args, "return_properties": None}
        assert any(prop.startswith("md_") for o in weaviate_wire.near_vector(
            handle, **every).objects for prop in o.properties)
    finally:
        weaviate_client.collections.delete(name)


async def test_an_async_search_reads_what_weaviate_client_reads(
        weaviate_client, weaviate_async_client) -> None:
    from rag_stores.backends.weaviate import WeaviateBackend

    name = fresh_name("WireSearchAsync")
    records, args = _searched()
    WeaviateBackend(name, client=weaviate_client).upsert(records)
    try:
        handle = weaviate_async_client.collections.use(name)
        _same(await weaviate_wire.near_vector(handle, **args),
              await handle.query.near_vector(**args))
    finally:
        weaviate_client.collections.delete(name)


def test_a_property_that_is_not_text_is_named() -> None:
    from weaviate.proto.v1 import properties_pb2

    with pytest.raises(TypeError, match="property 'n' holds a int_value, not text"):
        weaviate_wire._text("n", properties_pb2.Value(int_value=3))
