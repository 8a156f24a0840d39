"""WeaviateBackend against the real Weaviate server (hand-made vectors, no model).

Collections use the flat (exact) index unless a test says otherwise, so orders are exact;
where hits tie (c and d are both orthogonal to most queries), the engine may order them
either way, and the tests accept either.
"""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest
import weaviate
from weaviate.classes.config import DataType, Property
from weaviate.classes.query import Filter

from rag_stores.backends.weaviate import (
    WeaviateBackend,
    WeaviateWriteError,
    normalize_collection_name,
)
from rag_stores.core.filters import from_dict
from rag_stores.core.query import CollectionNotFoundError, Query, UnsupportedError
from rag_stores.core.records import Record

pytestmark = pytest.mark.weaviate

_names = itertools.count()


@pytest.fixture(scope="session")
def server(weaviate_server):
    return weaviate_server


@pytest.fixture(scope="session")
def client(server) -> Iterator[weaviate.WeaviateClient]:
    c = server.connect()
    yield c
    c.close()


@pytest.fixture
async def aclient(server) -> AsyncIterator[weaviate.WeaviateAsyncClient]:
    """Per test: an async client belongs to its event loop, and each test has its own."""
    c = await server.connect_async()
    yield c
    await c.close()


@pytest.fixture
def name(client) -> Iterator[str]:
    collection = f"WvTest{next(_names)}"
    yield collection
    client.collections.delete(collection)


@pytest.fixture
def backend(client, aclient, name) -> WeaviateBackend:
    return WeaviateBackend(name, client=client, async_client=aclient, index="flat")


# a, a2 near a, b, c, d orthogonal; q close to a.
VECS = {
    "a": [1.0, 0.0, 0.0, 0.0],
    "a2": [0.98, 0.2, 0.0, 0.0],
    "b": [0.0, 1.0, 0.0, 0.0],
    "c": [0.0, 0.0, 1.0, 0.0],
    "d": [0.0, 0.0, 0.0, 1.0],
}
Q = [0.95, 0.02, 0.05, 0.0]
TEXTS = {"a": "apple pie", "a2": "apple tart", "b": "banana bread", "c": "cherry cake",
         "d": "dates and more dates"}


def records(**metadata_by_id: dict) -> list[Record]:
    return [Record(id=i, text=TEXTS[i], metadata=metadata_by_id.get(i, {"n": n}), vector=v)
            for n, (i, v) in enumerate(VECS.items())]


def ids(hits) -> list[str]:
    return [h.record.id for h in hits]


def tie_free(hits) -> list:
    """Hits in score order with ties in id order: tied hits may come in any order."""
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    return sorted(hits, key=lambda h: (-round(h.score, 5), h.record.id))


# --- names and construction -----------------------------------------------------------------
def test_collection_names_follow_weaviate_rules() -> None:
    assert normalize_collection_name("docs_2") == "Docs_2"
    for bad in ("2docs", "my-docs", "", "_x", "dé"):
        with pytest.raises(ValueError, match="collection name"):
            normalize_collection_name(bad)
    with pytest.raises(ValueError, match="tenant"):
        WeaviateBackend("X", client=object(), tenant="bad tenant")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="distance"):
        WeaviateBackend("X", client=object(), distance="hamming")  # type: ignore[arg-type]


def test_urls_choose_server_or_cloud() -> None:
    from rag_stores.backends.weaviate import _connection_spec

    cloud = _connection_spec("https://abc.c0.europe-west3.gcp.weaviate.cloud", None, None, None,
                             "key", None, None)
    assert (cloud["kind"], cloud["cluster_url"]) == ("cloud", "abc.c0.europe-west3.gcp.weaviate.cloud")
    server = _connection_spec("https://search.example.com", None, None, None, "key", None, None)
    assert (server["kind"], server["http_port"], server["grpc_port"], server["grpc_secure"]) == \
        ("custom", 443, 443, True)
    plain = _connection_spec("http://10.0.0.5:8080", None, None, 50052, None, None, None)
    assert (plain["http_host"], plain["http_port"], plain["grpc_port"], plain["http_secure"]) == \
        ("10.0.0.5", 8080, 50052, False)
    with pytest.raises(ValueError, match="api_key"):
        _connection_spec("https://abc.weaviate.cloud", None, None, None, None, None, None)
    with pytest.raises(ValueError, match="url must"):
        _connection_spec("localhost:8080", None, None, None, None, None, None)


# --- writes and reads ------------------------------------------------------------------------
def test_round_trip_keeps_ids_text_metadata_and_vectors(backend: WeaviateBackend) -> None:
    odd = ["1", "doc/with space", "550e8400-e29b-41d4-a716-446655440000", "ünïcode", "x" * 300]
    metadata = [{"odd key-é.x": True, "Year": 2001, "year": "two", "tags": ["t", f"tag{i}"],
                 "nested": {"k": [1, {"z": None}]}, " pad ": " v "} for i in range(5)]
    recs = [Record(id=i, text=t, metadata=m, vector=v, ref_doc_id="parent" if n == 0 else None,
                   relationships={"1": {"node_id": "parent"}} if n == 0 else None)
            for n, (i, t, m, v) in enumerate(zip(odd, TEXTS.values(), metadata, VECS.values(),
                                                 strict=True))]
    backend.upsert(recs)
    got = backend.get([odd[3], "missing", odd[0]], with_vectors=True)
    assert [r.id for r in got] == [odd[3], odd[0]]
    assert got[0].metadata == metadata[3] and got[0].text == TEXTS["c"]
    assert got[1].ref_doc_id == "parent" and got[1].relationships == {"1": {"node_id": "parent"}}
    assert got[1].vector == pytest.approx(VECS["a"])
    assert backend.get([odd[1]])[0].vector is None
    assert sorted(r.id for r in backend.scroll()) == sorted(odd)
    assert backend.dimension() == 4 and backend.has_sparse() and backend.exists()
    # filters on odd keys, and on a key that is an int in one place and a string elsewhere
    assert backend.count(from_dict({"odd key-é.x": True})) == 5
    assert backend.count(from_dict({"tags": "tag3"})) == 1
    assert backend.count(from_dict({" pad ": " v "})) == 5
    assert backend.count(from_dict({"Year": 2001, "year": "two"})) == 5


def test_re_adding_an_id_overwrites(backend: WeaviateBackend) -> None:
    backend.upsert(records())
    backend.upsert([Record(id="a", text="changed", metadata={"v": 2}, vector=VECS["b"])])
    assert backend.count() == 5
    (rec,) = backend.get(["a"], with_vectors=True)
    assert (rec.text, rec.metadata, rec.vector) == ("changed", {"v": 2}, VECS["b"])
    # the same id twice in one batch: the last one wins
    backend.upsert([Record(id="z", text="one", vector=VECS["c"]),
                    Record(id="z", text="two", vector=VECS["c"])])
    assert [r.text for r in backend.get(["z"])] == ["two"]


def test_bad_input_writes_nothing(backend: WeaviateBackend) -> None:
    backend.upsert(records())
    with pytest.raises(ValueError, match="dimensions"):
        backend.upsert([Record(id="ok", text="ok", vector=[1.0, 0, 0, 0]),
                        Record(id="short", text="short", vector=[1.0, 0.0])])
    with pytest.raises(TypeError, match="JSON"):
        backend.upsert([Record(id="ok", text="ok", metadata={"x": object()}, vector=VECS["a"])])
    with pytest.raises(ValueError, match="no vector"):
        backend.upsert([Record(id="ok", text="ok")])
    assert backend.count() == 5 and backend.get(["ok"]) == []
    with pytest.raises(ValueError, match="4-dim"):
        backend.ensure_collection(8, False)


def test_a_refused_write_names_every_failed_id(client, backend: WeaviateBackend, name) -> None:
    backend.upsert(records())
    # Another tool gave the property of key "k"'s strings another type: Weaviate refuses those.
    client.collections.use(name).config.add_property(Property(name="md_k__s", data_type=DataType.INT))
    batch = [Record(id=f"bad{i}", text="x", metadata={"k": "str"}, vector=VECS["a"])
             for i in range(3)] + [Record(id="good", text="x", metadata={"n": 1}, vector=VECS["b"])]
    with pytest.raises(WeaviateWriteError, match="refused 3 of 4") as caught:
        backend.upsert(batch)
    assert sorted(caught.value.failures) == ["bad0", "bad1", "bad2"]
    assert "md_k__s" in caught.value.failures["bad0"]
    assert [r.id for r in backend.get(["good", "bad0"])] == ["good"]


async def test_a_refused_async_write_names_every_failed_id(client, backend, name) -> None:
    await backend.aupsert(records())
    client.collections.use(name).config.add_property(Property(name="md_k__s", data_type=DataType.INT))
    batch = [Record(id="bad", text="x", metadata={"k": "s"}, vector=VECS["a"]),
             Record(id="good", text="x", vector=VECS["b"])]
    with pytest.raises(WeaviateWriteError, match="refused 1 of 2") as caught:
        await backend.aupsert(batch)
    assert list(caught.value.failures) == ["bad"]
    assert [r.id for r in await backend.aget(["good", "bad"])] == ["good"]


def test_delete_by_id_and_by_filter(backend: WeaviateBackend) -> None:
    backend.upsert(records())
    backend.delete(["a", "never-added"])
    backend.delete_where(from_dict({"n": {"$gte": 3}}))
    assert sorted(r.id for r in backend.scroll()) == ["a2", "b"]
    backend.delete_where(from_dict({"n": "no such value"}))  # a filter matching nothing
    backend.delete_where(Filter.by_property("md_n__n").equal(1.0))  # a native filter
    assert [r.id for r in backend.scroll()] == ["b"]


def test_native_filter_on_a_metadata_key(backend: WeaviateBackend) -> None:
    """Filter.by_property("n") names the metadata key, as on the peers' flat collections."""
    backend.upsert(records())
    native = Filter.by_property("n").greater_or_equal(2) & Filter.by_property("n").less_than(4)
    assert sorted(ids(backend.search(Query(mode="dense", k=10, vector=Q, filter=native)))) == ["b", "c"]
    backend.delete_where(Filter.by_property("n").equal(0))
    assert sorted(r.id for r in backend.scroll()) == ["a2", "b", "c", "d"]


def test_scroll_pages_with_and_without_filter(backend: WeaviateBackend) -> None:
    many = [Record(id=f"r{i}", text="t", metadata={"even": i % 2 == 0}, vector=VECS["a"])
            for i in range(1203)]
    backend.upsert(many)
    assert len({r.id for r in backend.scroll()}) == 1203
    assert len(backend.scroll(limit=7)) == 7
    evens = backend.scroll(from_dict({"even": True}))
    assert len({r.id for r in evens}) == 602
    assert backend.count(from_dict({"even": False})) == 601


def test_missing_collection_is_an_error_on_reads_and_deletes(client, name) -> None:
    missing = WeaviateBackend(name, client=client)
    assert not missing.exists() and missing.dimension() is None and not missing.has_sparse()
    for call in (lambda: missing.search(Query(vector=Q)), lambda: missing.get(["a"]),
                 missing.count, missing.scroll, lambda: missing.delete(["a"]),
                 lambda: missing.delete_where(from_dict({"n": 1}))):
        with pytest.raises(CollectionNotFoundError, match=name):
            call()


# --- searches ---------------------------------------------------------------------------------
def test_dense_scores_are_similarities_with_the_distance_kept(backend: WeaviateBackend) -> None:
    backend.upsert(records())
    hits = backend.search(Query(vector=Q, k=3))
    assert ids(hits) == ["a", "a2", "c"]
    q = np.asarray(Q)
    for hit in hits:
        v = np.asarray(VECS[hit.record.id])
        cosine = float(q @ v / np.linalg.norm(q) / np.linalg.norm(v))
        assert hit.score == pytest.approx(cosine, abs=1e-5)
        assert hit.extra["distance"] == pytest.approx(1 - cosine, abs=1e-5)
    assert ids(backend.search(Query(vector=Q, k=5, score_threshold=0.5))) == ["a", "a2"]
    assert ids(backend.search(Query(vector=Q, k=2, offset=1))) == ["a2", "c"]
    assert ids(backend.search(Query(vector=Q, k=5, filter=from_dict({"n": {"$in": [1, 3]}})))) \
        == ["a2", "c"]
    assert backend.search(Query(vector=Q, filter=from_dict({"n": "nothing"}))) == []
    (with_vec,) = backend.search(Query(vector=Q, k=1, with_vectors=True))
    assert with_vec.record.vector == pytest.approx(VECS["a"])


def test_vector_index_config_is_what_new_collections_get(client, name) -> None:
    from weaviate.classes.config import Configure, VectorDistances

    hnsw = Configure.VectorIndex.hnsw(ef_construction=64, max_connections=16)
    backend = WeaviateBackend(name, client=client, distance="dot", vector_index_config=hnsw)
    backend.upsert(records())
    index = client.collections.get(name).config.get().vector_config["dense"].vector_index_config
    assert (index.ef_construction, index.max_connections, index.distance_metric) == \
        (64, 16, VectorDistances.DOT)  # the config's unset distance is distance=
    assert len(backend.search(Query(vector=Q, k=5))) == 5
    flat = Configure.VectorIndex.flat(distance_metric=VectorDistances.COSINE)
    for bad, message in ((dict(vector_index_config={"efConstruction": 64}),
                          "vector_index_config must be a weaviate Configure.VectorIndex"),
                         (dict(vector_index_config=flat, distance="dot"),
                          "distance 'cosine' but distance='dot'"),
                         (dict(vector_index_config=hnsw, index="flat"),
                          "index='flat' or vector_index_config=, not both")):
        with pytest.raises(ValueError, match=message):
            WeaviateBackend(name, client=client, **bad)


@pytest.mark.parametrize("distance", ["dot", "euclid", "manhattan"])
def test_other_distances_score_higher_is_better(client, name, distance) -> None:
    backend = WeaviateBackend(name, client=client, distance=distance, index="flat")
    backend.upsert(records())
    hits = backend.search(Query(vector=Q, k=5))
    q = np.asarray(Q)
    expected = {
        "dot": lambda v: float(q @ v),
        "euclid": lambda v: -float(np.linalg.norm(q - v)),
        "manhattan": lambda v: -float(np.abs(q - v).sum()),
    }[distance]
    for hit in hits:
        assert hit.score == pytest.approx(expected(np.asarray(VECS[hit.record.id])), abs=1e-4)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    threshold = hits[1].score - 1e-4
    assert ids(backend.search(Query(vector=Q, k=5, score_threshold=threshold))) == ids(hits[:2])
    if distance != "dot":  # a positive threshold on a negated distance keeps only exact matches
        assert backend.search(Query(vector=Q, score_threshold=0.5)) == []


def test_keyword_and_hybrid_search(backend: WeaviateBackend) -> None:
    backend.upsert(records())
    sparse = backend.search(Query(mode="sparse", text="dates", k=3))
    assert ids(sparse) == ["d"] and sparse[0].score > 0
    assert set(ids(backend.search(Query(mode="sparse", text="apple banana", k=5)))) == {"a", "a2", "b"}
    # alpha=0: keyword only; alpha=1: vector only
    assert ids(backend.search(Query(mode="hybrid", text="banana", vector=Q, k=1, alpha=0.0))) == ["b"]
    assert ids(backend.search(Query(mode="hybrid", text="banana", vector=Q, k=1, alpha=1.0))) == ["a"]
    for fusion in ("rrf", "relative_score", "dbsf", "ranked"):
        hits = backend.search(Query(mode="hybrid", text="banana", vector=Q, k=5, fusion=fusion))
        assert {"a", "b"} <= set(ids(hits)), fusion
    with pytest.raises(ValueError, match="query text"):
        backend.search(Query(mode="sparse", k=3))


def test_client_fused_hybrid_is_the_fusion_of_the_two_legs(backend: WeaviateBackend) -> None:
    """dbsf / prefetch_k fuse here: legs of ids and scores, then the window's objects."""
    from rag_stores.core.fusion import fuse

    backend.upsert(records(a={"n": 0, "tag": "x"}))
    for offset, with_vectors in ((0, False), (1, True)):
        query = Query(mode="hybrid", text="apple banana", vector=Q, k=3, offset=offset,
                      fusion="dbsf", alpha=0.7, prefetch_k=5, with_vectors=with_vectors)
        legs = [backend.search(Query(mode=m, text="apple banana", vector=Q, k=5,
                                     with_vectors=with_vectors)) for m in ("dense", "sparse")]
        expected = fuse(*legs, fusion="dbsf", alpha=0.7)[offset:offset + 3]
        hits = backend.search(query)
        assert [(h.record, h.score) for h in hits] == [(h.record, h.score) for h in expected]
        assert all(h.extra["fusion"] == "client" and "uuid" in h.extra for h in hits)


# Keyword search over declared metadata keys (searchable_keys, Query.query_properties).
TITLED = [
    Record(id="t1", text="a story about a zebra", metadata={"title": "Savanna life"},
           vector=VECS["a"]),
    Record(id="t2", text="notes on orchards", metadata={"title": "The zebra herd", "n": 2},
           vector=VECS["b"]),
    Record(id="t3", text="bread recipes", vector=VECS["c"],
           metadata={"title": 3, "tags": ["Zebra-striped", 7, {"x": "zebra"}], "other": "zebra"}),
]


def keyword(backend: WeaviateBackend, fields: list[str] | None, text: str = "zebra",
            **options) -> list[str]:
    return ids(backend.search(Query(mode="sparse", text=text, k=5, query_properties=fields,
                                    **options)))


def test_layout_gives_declared_keys_a_word_indexed_copy() -> None:
    from weaviate.classes.config import Tokenization

    from rag_stores.backends import weaviate_layout as layout

    meta = TITLED[2].metadata
    w = layout.property_for_key("tags", "w")
    assert w == "md_tags__w"
    assert layout.searchable_properties(meta, ["tags", "title", "missing"]) == \
        {w: ["Zebra-striped"]}  # strings only: the int title and the dict get no copy
    assert not any(n.endswith("__w") for n in layout.object_properties("t", meta, "x"))
    assert layout.object_properties("t", meta, "x", searchable_keys=["tags"])[w] == ["Zebra-striped"]
    prop = layout.property_definition(w)
    assert (prop.dataType, prop.tokenization, prop.indexSearchable, prop.indexFilterable) == \
        (DataType.TEXT_ARRAY, Tokenization.WORD, True, False)


def test_bm25_over_declared_metadata_keys_with_boosts(client, aclient, name) -> None:
    backend = WeaviateBackend(name, client=client, async_client=aclient, index="flat",
                              searchable_keys=["title", "tags", "summary"])
    backend.upsert(TITLED)
    assert keyword(backend, None) == keyword(backend, ["text"]) == ["t1"]
    assert keyword(backend, ["title"]) == ["t2"]  # a word only in its title
    assert keyword(backend, ["tags"]) == ["t3"]  # word tokenization: "Zebra-striped" holds "zebra"
    assert keyword(backend, ["summary"]) == []  # declared, never written: no record matches
    assert keyword(backend, ["text", "title^5"]) == ["t2", "t1"]
    assert keyword(backend, ["text^5", "title"]) == ["t1", "t2"]
    assert keyword(backend, ["title^0.5", "tags"]) == ["t3", "t2"]
    assert keyword(backend, ["text", "title"], "zebra herd", operator="and") == ["t2"]
    hybrid = Query(mode="hybrid", text="zebra", vector=VECS["c"], k=1, alpha=0.0,
                   query_properties=["title"])
    assert ids(backend.search(hybrid)) == ["t2"]
    assert ids(backend.search(Query(mode="hybrid", text="zebra", vector=VECS["c"], k=1,
                                    alpha=0.0))) == ["t1"]
    # Filters still read the exact copy; metadata round-trips unchanged.
    assert backend.count(from_dict({"title": "The zebra herd"})) == 1
    assert backend.count(from_dict({"title": "zebra"})) == 0
    assert backend.count(from_dict({"tags": "Zebra-striped"})) == 1
    assert backend.get(["t3"])[0].metadata == TITLED[2].metadata
    with pytest.raises(ValueError, match="'other'.*searchable_keys"):
        keyword(backend, ["other"])
    with pytest.raises(ValueError, match="query_properties must be"):
        Query(mode="sparse", text="zebra", query_properties="title")  # type: ignore[arg-type]
    for bad in ([], ["^2"], [""]):
        with pytest.raises(ValueError, match="query_properties must be"):
            Query(mode="sparse", text="zebra", query_properties=bad)
    for bad_keys in ("title", ["text"], [""]):
        with pytest.raises(ValueError, match="searchable_keys"):
            WeaviateBackend(name, client=client, searchable_keys=bad_keys)


async def test_bm25_over_metadata_async(client, aclient, name) -> None:
    backend = WeaviateBackend(name, client=client, async_client=aclient, index="flat",
                              searchable_keys=["title"])
    await backend.aupsert(TITLED)
    query = Query(mode="sparse", text="zebra", k=5, query_properties=["text", "title^5"])
    assert ids(await backend.asearch(query)) == ["t2", "t1"]
    assert await backend.asearch(query) == backend.search(query)


def test_a_key_declared_later_is_indexed_from_the_next_write(client, name) -> None:
    WeaviateBackend(name, client=client).upsert(TITLED)
    later = WeaviateBackend(name, client=client, searchable_keys=["title"])
    reader = WeaviateBackend(name, client=client, searchable_keys=["title"])
    with pytest.raises(ValueError, match="no keyword index.*next write"):
        keyword(later, ["title"])
    assert reader.count() == 3  # caches the schema, still without the title's copy
    later.upsert([Record(id="t4", text="plain", metadata={"title": "zebra"}, vector=VECS["d"])])
    # Records written before keep no copy until they are written again.
    assert keyword(later, ["title"]) == ["t4"]
    later.upsert([TITLED[1]])
    assert sorted(keyword(later, ["title"])) == ["t2", "t4"]
    # The reader re-reads the schema for the property another backend added.
    assert sorted(keyword(reader, ["title"])) == ["t2", "t4"]


def test_mmr_lambda_one_is_relevance_zero_is_diversity(backend: WeaviateBackend) -> None:
    backend.upsert(records())
    relevance = backend.search(Query(mode="mmr", vector=Q, k=3, fetch_k=5, lambda_mult=1.0))
    assert ids(relevance) == ids(backend.search(Query(vector=Q, k=3)))
    diverse = backend.search(Query(mode="mmr", vector=Q, k=2, fetch_k=5, lambda_mult=0.0))
    assert ids(diverse)[0] == "a" and ids(diverse)[1] != "a2"
    assert all(h.record.vector is None for h in diverse)
    assert ids(backend.search(Query(mode="mmr", vector=Q, k=1, fetch_k=5, offset=1,
                                    lambda_mult=1.0))) == ["a2"]


def test_recommend_strategies_and_discover(backend: WeaviateBackend) -> None:
    backend.upsert(records())
    # average_vector: a + (a - b); examples given by id are left out. c and d are both
    # orthogonal to a and b: they tie, in either order.
    avg = backend.search(Query(mode="recommend", positive=["a"], negative=["b"], k=4))
    assert ids(avg)[0] == "a2" and sorted(ids(avg)[1:]) == ["c", "d"]
    assert avg[1].score == pytest.approx(avg[2].score, abs=1e-6)
    for strategy in ("average_vector", "best_score", "sum_scores"):
        hits = backend.search(Query(mode="recommend", positive=["a"], negative=[VECS["b"]],
                                    strategy=strategy, k=4))
        assert ids(hits)[0] == "a2" and set(ids(hits)[1:3]) == {"c", "d"}, strategy
        assert ids(hits)[3] == "b", strategy  # a negative example given as a vector: last
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    with pytest.raises(ValueError, match="'nope'"):
        backend.search(Query(mode="recommend", positive=["nope"]))
    with pytest.raises(UnsupportedError, match="positive"):
        backend.search(Query(mode="recommend", negative=["a"]))
    with pytest.raises(UnsupportedError, match="discovery"):
        backend.search(Query(mode="discover", target="a", context=[("a", "b")]))


def test_groups(backend: WeaviateBackend) -> None:
    meta = {"a": {"book": "x"}, "a2": {"book": "x"}, "b": {"book": "y"}, "c": {"book": "z"},
            "d": {"book": "z"}}
    backend.upsert(records(**meta))
    groups = backend.search_groups(Query(vector=Q, k=2, group_by="book", group_size=2))
    assert [(g.key, ids(g.hits)) for g in groups] == [("x", ["a", "a2"]), ("z", ["c", "d"])]
    with pytest.raises(UnsupportedError, match="no scores"):
        backend.search_groups(Query(mode="sparse", text="dates", k=3, group_by="book"))
    assert [g.key for g in backend.search_groups(
        Query(vector=Q, k=3, group_by="book", filter=from_dict({"book": {"$ne": "x"}})))] \
        == ["z", "y"]
    assert backend.search_groups(Query(vector=Q, group_by="never_written")) == []


async def test_async_twins_give_the_same_results(backend: WeaviateBackend) -> None:
    await backend.aupsert(records())
    assert await backend.aexists() and await backend.adimension() == 4
    assert await backend.ahas_sparse() and await backend.acount() == 5
    queries = [Query(vector=Q, k=3), Query(mode="hybrid", text="banana", vector=Q, k=3),
               Query(mode="mmr", vector=Q, k=3, lambda_mult=0.3),
               Query(vector=Q, k=5, filter=from_dict({"n": {"$lt": 3}}))]
    for query in queries:
        assert await backend.asearch(query) == backend.search(query), query.mode
    # With ties ("apple" scores a and a2 alike; c and d tie in recommend), wholly inside k.
    for query in (Query(mode="sparse", text="apple", k=3),
                  Query(mode="recommend", positive=["a"], negative=["b"], k=4)):
        assert tie_free(await backend.asearch(query)) == tie_free(backend.search(query)), \
            query.mode
    grouped = Query(vector=Q, k=2, group_by="n")
    assert await backend.asearch_groups(grouped) == backend.search_groups(grouped)
    assert await backend.aget(["b", "a"]) == backend.get(["b", "a"])
    assert await backend.ascroll(limit=2) == backend.scroll(limit=2)
    await backend.adelete(["a"])
    await backend.adelete_where(from_dict({"n": 4}))
    assert sorted(r.id for r in backend.scroll()) == ["a2", "b", "c"]
    await backend.adrop()
    assert not backend.exists()


# --- tenants, other readers, clients ----------------------------------------------------------
async def test_tenants_are_isolated(client, aclient, name) -> None:
    alice = WeaviateBackend(name, client=client, async_client=aclient, tenant="alice")
    bob = WeaviateBackend(name, client=client, async_client=aclient, tenant="bob")
    alice.upsert(records())
    assert not bob.exists()
    with pytest.raises(CollectionNotFoundError, match="bob"):
        bob.search(Query(vector=Q))
    await bob.aupsert(records()[:2])
    assert (alice.count(), bob.count(), await bob.acount()) == (5, 2, 2)
    assert ids(bob.search(Query(vector=Q, k=5))) == ["a", "a2"]
    with pytest.raises(ValueError, match="multi-tenant"):
        WeaviateBackend(name, client=client).count()
    alice.drop()  # removes the tenant only
    assert not alice.exists() and bob.count() == 2


def test_a_reader_sees_keys_another_writer_added(client, name) -> None:
    writer = WeaviateBackend(name, client=client)
    writer.upsert(records())
    reader = WeaviateBackend(name, client=client)
    assert reader.count(from_dict({"color": "red"})) == 0  # loads the schema: no "color" yet
    writer.upsert([Record(id="r", text="red thing", metadata={"color": "red"}, vector=VECS["a"])])
    assert reader.count(from_dict({"color": "red"})) == 1
    reader2 = WeaviateBackend(name, client=client)
    assert reader2.count(from_dict({"shade": {"$ilike": "DAR"}})) == 0
    writer.upsert([Record(id="s", text="dark", metadata={"shade": "Dark"}, vector=VECS["a"])])
    assert reader2.count(from_dict({"shade": {"$ilike": "DAR"}})) == 1


def test_consistency_level_and_hnsw(client, name) -> None:
    backend = WeaviateBackend(name, client=client, consistency_level="all")
    backend.upsert(records())
    # Exact even on HNSW: over five points every node links to every other and the search
    # visits them all (ef >= 100), and a, a2 lead the rest by far (no near tie).
    assert ids(backend.search(Query(vector=Q, k=2))) == ["a", "a2"]


async def test_given_clients_are_never_closed(client, aclient, name) -> None:
    backend = WeaviateBackend(name, client=client, async_client=aclient)
    backend.upsert(records())
    await backend.aclose()
    backend.close()
    assert client.is_connected() and aclient.is_connected()
    assert await aclient.collections.exists(name)


async def test_one_sided_backends_say_what_is_missing(client, aclient, name) -> None:
    # Only a sync client: the async methods run it in a worker thread (as the peers do).
    only_sync = WeaviateBackend(name, client=client)
    assert not await only_sync.aexists()
    await only_sync.aupsert(records())
    assert await only_sync.acount() == 5
    only_sync.drop()
    only_async = WeaviateBackend(name, async_client=aclient)
    assert not only_async.supports_sync
    with pytest.raises(RuntimeError, match="client=WeaviateClient"):
        only_async.exists()
    await only_async.aupsert(records())
    assert await only_async.acount() == 5


async def test_backend_opens_and_closes_its_own_clients(server, name) -> None:
    backend = WeaviateBackend(name, url=server.url, grpc_port=server.grpc_port, index="flat")
    backend.upsert(records())
    assert ids(await backend.asearch(Query(vector=Q, k=2))) == ["a", "a2"]
    sync_client, async_client = backend.client, backend._aclients.current()
    await backend.aclose()
    assert not sync_client.is_connected() and async_client is not None
    assert not async_client.is_connected()
    same = WeaviateBackend(name, host="127.0.0.1", port=server.http_port,
                           grpc_port=server.grpc_port)
    assert same.count() == 5
    same.drop()
    same.close()


def test_connection_problems_are_named(weaviate_auth_server) -> None:
    from rag_stores.servers import free_port

    port = free_port()  # nothing listens there
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port}"):
        WeaviateBackend("X", url=f"http://127.0.0.1:{port}", grpc_port=free_port()).exists()
    secured = weaviate_auth_server
    wrong = WeaviateBackend("X", url=secured.url, grpc_port=secured.grpc_port, api_key="wrong")
    with pytest.raises(PermissionError, match="api_key"):
        wrong.exists()
    right = WeaviateBackend("Never_created", url=secured.url, grpc_port=secured.grpc_port,
                            api_key=secured.api_key)
    assert right.exists() is False
    right.close()


async def test_embedded_default(tmp_path, monkeypatch) -> None:
    from rag_stores.servers import free_port
    from rag_stores.servers.embedded import ENV_IDLE

    monkeypatch.setenv(ENV_IDLE, "1")  # the shared server idles out 1 s after its last user
    port = free_port()
    backend = WeaviateBackend(persistence_path=str(tmp_path), port=port, grpc_port=free_port())
    try:
        backend.upsert(records())
        assert backend.collection_name == "Docs"
        assert ids(backend.search(Query(vector=Q, k=2))) == ["a", "a2"]
        assert ids(await backend.asearch(Query(mode="sparse", text="banana", k=1))) == ["b"]
    finally:
        await backend.aclose()
    assert any(tmp_path.iterdir())  # the data lives where it was asked
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the shared server stops once idle
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                break
        time.sleep(0.2)
    else:
        pytest.fail("the embedded server still listens 20 s after its last user closed")


def test_collection_handles_are_kept_per_client_tenant_and_consistency(client, name) -> None:
    from weaviate.classes.config import ConsistencyLevel

    plain = WeaviateBackend(name, client=client)
    handle = plain._target(client, "data")
    assert plain._target(client, "data") is handle  # built once per client
    assert plain._target(client, "schema") is not handle
    acme = WeaviateBackend(name, client=client, tenant="acme")
    assert acme._target(client, "data").tenant == "acme"
    quorum = WeaviateBackend(name, client=client, consistency_level=ConsistencyLevel.QUORUM)
    assert quorum._target(client, "data").consistency_level == ConsistencyLevel.QUORUM
    assert handle.tenant is None and handle.consistency_level is None
