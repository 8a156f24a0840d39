"""backends.qdrant_wire writes the upsert and query requests qdrant-client would write,
faster; on a server the metadata comes back as local mode gives it back, and hits as
qdrant-client reads them, over REST and gRPC."""

from __future__ import annotations

import json
import re
import uuid

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from qdrant_client import models
from qdrant_client.conversions.conversion import RestToGrpc
from qdrant_client.http.api.search_api import jsonable_encoder

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
        store.add_texts(["c"], ids=["c"])
        # The server would keep a rounded float: refused before the write (README: Security)
        with pytest.raises(ValueError, match=r"at \['big'\]: integer 1180591620717411303424"):
            store.add_texts(["a", "b"], [{"small": 1}, {"big": 2**70}], ids=["a", "b"])
        assert [d.id for d in store.get_by_ids(["a", "b", "c"])] == ["c"]
        store.backend.drop()


FILTER = models.Filter(must=[models.FieldCondition(key="metadata.n", range=models.Range(gte=1))],
                       must_not=[models.FieldCondition(key="metadata.s",
                                                       match=models.MatchAny(any=["x", "é"]))])
QUERIES = {
    "dense, unnamed": {"query": DENSE[0], "limit": 3},
    "named, filtered, tuned": {"query": DENSE[1], "using": "dense", "query_filter": FILTER,
                               "search_params": models.SearchParams(exact=True, hnsw_ef=64),
                               "score_threshold": 0.25, "limit": 10, "offset": 2,
                               "consistency": models.ReadConsistencyType.MAJORITY},
    "numpy floats": {"query": list(np.array(DENSE[1])), "limit": 2},
    "sparse, with vectors": {"query": SPARSE[0], "using": "sparse", "limit": 5,
                             "with_vectors": True, "consistency": 2},
}


def _theirs(kwargs: dict) -> dict:
    """query_points' arguments as qdrant-client puts them in its request."""
    return {"query": models.NearestQuery(nearest=kwargs["query"]), "using": kwargs.get("using"),
            "filter": kwargs.get("query_filter"), "params": kwargs.get("search_params"),
            "score_threshold": kwargs.get("score_threshold"), "limit": kwargs["limit"],
            "offset": kwargs.get("offset"), "with_vector": kwargs.get("with_vectors", False),
            "with_payload": True}


@pytest.mark.parametrize("name", list(QUERIES))
def test_query_body_is_what_qdrant_client_writes(name) -> None:
    kwargs = {"collection_name": "c", "with_payload": True, **QUERIES[name]}
    theirs = jsonable_encoder(models.QueryRequest(**_theirs(kwargs)))
    assert qdrant_wire.query_body(kwargs) == theirs.encode()


@pytest.mark.parametrize("name", list(QUERIES))
def test_grpc_query_is_what_qdrant_client_sends(name) -> None:
    from qdrant_client import grpc

    kwargs = {"collection_name": "c", "with_payload": True, **QUERIES[name]}
    args = _theirs(kwargs)
    flt, params, consistency = args["filter"], args["params"], kwargs.get("consistency")
    theirs = grpc.QueryPoints(
        collection_name="c", query=RestToGrpc.convert_query(args["query"]),
        using=args["using"], limit=args["limit"], offset=args["offset"],
        filter=flt and RestToGrpc.convert_filter(flt),
        params=params and RestToGrpc.convert_search_params(params),
        score_threshold=args["score_threshold"],
        with_payload=RestToGrpc.convert_with_payload_interface(True),
        with_vectors=RestToGrpc.convert_with_vectors(args["with_vector"]),
        read_consistency=None if consistency is None
        else RestToGrpc.convert_read_consistency(consistency))
    assert qdrant_wire.grpc_query(kwargs) == theirs


def _hits(points) -> list:
    return [(p.id, p.score, p.payload, p.vector) for p in points]


@pytest.mark.parametrize("grpc", [False, True], ids=["rest", "grpc"])
async def test_query_hits_are_what_qdrant_client_reads(qdrant_server, grpc) -> None:
    from qdrant_client import AsyncQdrantClient

    name = fresh_name("wire_query")
    client = qdrant_server.connect(grpc)
    aclient = AsyncQdrantClient(**qdrant_server.connect_kwargs(grpc))
    try:
        client.create_collection(
            name, vectors_config={"dense": models.VectorParams(size=3, distance="Cosine")},
            sparse_vectors_config={"sparse": models.SparseVectorParams()})
        payloads = [{"metadata": {"n": i, "s": s}, "nested": {"deep": [i, None, "é"]}}
                    for i, s in enumerate(["a", "x", "b", "é", "c", "d"])]
        ids = [str(uuid.UUID(int=i + 1)) if i % 2 else i + 1 for i in range(6)]
        client.upsert(name, models.Batch(
            ids=ids, payloads=payloads,
            vectors={"dense": [[1.0, i / 6, 0.5 - i / 12] for i in range(6)],
                     "sparse": [models.SparseVector(indices=[1, i + 2], values=[0.5, i / 6])
                                for i in range(6)]}))
        for case in ("named, filtered, tuned", "sparse, with vectors"):
            kwargs = {**QUERIES[case], "collection_name": name, "with_payload": True,
                      "offset": None, "score_threshold": None}
            theirs = client.query_points(**kwargs).points
            assert len(theirs) >= 2  # the filter and the window keep something to compare
            assert _hits(qdrant_wire.query_points(client, kwargs).points) == _hits(theirs)
            ahits = (await qdrant_wire.query_points(aclient, kwargs)).points
            assert _hits(ahits) == _hits(theirs)
        # Any other query is qdrant-client's own request and answer.
        other = {"collection_name": name, "query": models.RecommendQuery(
            recommend=models.RecommendInput(positive=[ids[0]])), "using": "dense",
            "limit": 2, "with_payload": True}
        assert all(isinstance(p, models.ScoredPoint)
                   for p in qdrant_wire.query_points(client, other).points)
    finally:
        client.delete_collection(name)
        client.close()
        await aclient.close()


@pytest.mark.parametrize("grpc", [False, True], ids=["rest", "grpc"])
def test_a_query_to_a_missing_collection_fails_as_in_qdrant_client(qdrant_server, grpc) -> None:
    kwargs = {"collection_name": fresh_name("missing"), "query": [1.0, 0.0], "limit": 1,
              "with_payload": True}
    client = qdrant_server.connect(grpc)
    try:
        with pytest.raises(Exception) as theirs:
            client.query_points(**kwargs)
        with pytest.raises(type(theirs.value)) as ours:
            qdrant_wire.query_points(client, kwargs)
    finally:
        client.close()

    def said(error: BaseException) -> str:
        """What the error tells: a gRPC status and details (its debug string orders its
        fields at random), a REST status and body (less the server's time)."""
        if grpc:
            return f"{error.code()}: {error.details()}"  # type: ignore[attr-defined]
        return re.sub(r'"time":[^}]*', "", str(error))
    assert said(ours.value) == said(theirs.value)
    assert "Not found" in said(ours.value)
