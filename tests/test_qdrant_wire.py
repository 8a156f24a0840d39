"""backends.qdrant_wire writes the upsert bodies qdrant-client would write, faster; on a
server the metadata comes back as local mode gives it back, over REST and gRPC."""

from __future__ import annotations

import json
import uuid

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from qdrant_client import models
from qdrant_client.conversions.conversion import RestToGrpc

from rag_stores.backends import qdrant_wire
from rag_stores.langchain import QdrantVectorStore
from tests.conformance import fresh_name

IDS = [str(uuid.UUID(int=7)), 12]
PAYLOADS = [{"text": "é ✓", "metadata": {"n": 1, "x": 0.1, "ok": True, "none": None,
                                         "list": [1, "a", {"deep": [2.5]}]}},
            {"text": "", "metadata": {}}]
DENSE = [[0.1, -0.2, 1e-30], [0.30000001192092896, 0.0, -1.0]]
SPARSE = [models.SparseVector(indices=[1, 5], values=[0.5, 0.25]),
          models.SparseVector(indices=[], values=[])]
BATCHES = {
    "named dense": models.Batch(ids=IDS, vectors={"dense": DENSE}, payloads=PAYLOADS),
    "dense and sparse": models.Batch(ids=IDS, vectors={"dense": DENSE, "sparse": SPARSE},
                                     payloads=PAYLOADS),
    "unnamed": models.Batch(ids=IDS, vectors=DENSE, payloads=PAYLOADS),
    "no payloads": models.Batch(ids=IDS, vectors={"dense": DENSE}),
}


@pytest.mark.parametrize("name", list(BATCHES))
def test_json_body_is_what_qdrant_client_writes(name) -> None:
    batch = BATCHES[name]
    theirs = models.PointsBatch(batch=batch).model_dump_json(
        by_alias=True, exclude_unset=True, exclude_none=True)
    assert qdrant_wire.json_body(batch) == theirs.encode()


@pytest.mark.parametrize("name", list(BATCHES))
def test_grpc_points_are_what_qdrant_client_converts(name) -> None:
    batch = BATCHES[name]
    vectors = RestToGrpc.convert_batch_vector_struct(batch.vectors, len(batch.ids))
    theirs = [RestToGrpc.convert_point_struct(models.PointStruct(
        id=batch.ids[i], vector=batch.vectors[i] if isinstance(batch.vectors, list)
        else {k: v[i] for k, v in batch.vectors.items()},
        payload=batch.payloads[i] if batch.payloads else None)) for i in range(len(batch.ids))]
    ours = qdrant_wire.grpc_points(batch)
    assert ours == theirs
    assert [p.vectors for p in ours] == vectors


def test_keys_that_are_not_strings_are_written_as_json_writes_them() -> None:
    batch = models.Batch(ids=IDS[:1], vectors=DENSE[:1], payloads=[{"metadata": {1: "a"}}])
    assert json.loads(qdrant_wire.json_body(batch))["batch"]["payloads"] == [
        json.loads(json.dumps({"metadata": {1: "a"}}))]


METADATA = [{"n": 1, "big": 2**62, "x": 0.1, "ok": False, "none": None, "s": "é ✓ \u0000",
             "list": [1, "a", {"deep": [2.5, None]}], "empty": {}, "1": "key"},
            {}]


@pytest.mark.parametrize("grpc", [False, True], ids=["rest", "grpc"])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "hybrid"])
async def test_a_server_gives_back_what_local_mode_gives_back(qdrant_server, grpc,
                                                              sparse) -> None:
    emb = DeterministicFakeEmbedding(size=8)
    # hybrid: sparse vectors too, and a write ordering (sent as its own field on each transport)
    options = {"retrieval_mode": "hybrid"} if sparse else {}
    served_options = {"write_ordering": "strong"} if sparse else {}
    texts, ids = ["first text", "second text"], ["a", "b"]
    with QdrantVectorStore(emb, "local", **options) as local, QdrantVectorStore(
            emb, fresh_name("wire"), **options, **served_options,
            **qdrant_server.connect_kwargs(grpc)) as served:
        local.add_texts(texts, METADATA, ids=ids)
        served.add_texts(texts, METADATA, ids=ids)
        assert served.get_by_ids(ids) == local.get_by_ids(ids)
        await served.aadd_texts(["third"], [{"async": [1]}], ids=["c"])
        (third,) = served.get_by_ids(["c"])
        assert (third.page_content, third.metadata) == ("third", {"async": [1]})
        assert served.backend.count() == 3
        served.backend.drop()


def test_grpc_deadline_is_qdrant_clients_own() -> None:
    from qdrant_client import QdrantClient

    for timeout, seconds in ((None, 5), (2.5, 3), (30, 30)):
        options = {} if timeout is None else {"timeout": timeout}
        client = QdrantClient(url="http://127.0.0.1:1", prefer_grpc=True,
                              check_compatibility=False, **options)
        assert qdrant_wire.grpc_timeout(client) == seconds == client._client._timeout
        client.close()


def test_what_orjson_cannot_write_goes_through_qdrant_client(qdrant_server) -> None:
    batch = models.Batch(ids=IDS[:1], vectors=DENSE[:1], payloads=[{"big": 2**70}])
    with pytest.raises(TypeError):  # orjson.JSONEncodeError
        qdrant_wire.json_body(batch)
    emb = DeterministicFakeEmbedding(size=8)
    with QdrantVectorStore(emb, fresh_name("wire"), **qdrant_server.connect_kwargs(False)) as store:
        store.add_texts(["a", "b"], [{"big": 2**70}, {"small": 1}], ids=["a", "b"])
        got = [d.metadata for d in store.get_by_ids(["a", "b"])]
        assert got == [{"big": pytest.approx(2**70)}, {"small": 1}]  # the server keeps a float
        store.backend.drop()
