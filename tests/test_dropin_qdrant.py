"""Drop-in for langchain-qdrant and llama-index-vector-stores-qdrant: their spellings reach our
classes (README: Switching from the official integrations). Qdrant local mode, real engine;
the peers' own suites (../shared/peer-suites) are the wider measure."""

from __future__ import annotations

import uuid

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode
from qdrant_client import AsyncQdrantClient, QdrantClient, models

from embedders.sparse import SparseVector
from rag_stores.core.ids import to_point_id
from rag_stores.core.query import UnsupportedError
from rag_stores.langchain import QdrantVectorStore
from rag_stores.llama_index import QdrantVectorStore as LlamaQdrantVectorStore

EMB = DeterministicFakeEmbedding(size=8)
UID = uuid.UUID("fa38d572-4c31-4579-aedc-1960d79df6df")


class Sparse:
    """A tiny sparse embedding: one index per distinct word."""

    def embed_documents(self, texts: list[str]) -> list[SparseVector]:
        return [self.embed_query(t) for t in texts]

    def embed_query(self, text: str) -> SparseVector:
        words = sorted({sum(map(ord, w)) % 997 for w in text.split()})
        return SparseVector(indices=words, values=[1.0] * len(words))


def test_int_and_uuid_ids_are_point_ids_and_come_back_in_their_form() -> None:
    client = QdrantClient(":memory:")
    store = QdrantVectorStore(EMB, "ids", client=client)
    assert store.add_texts(["a", "b", "c"], ids=[432, UID, "x"]) == [432, str(UID), "x"]
    assert {p.id for p in client.scroll("ids")[0]} == {432, str(UID), to_point_id("x")}
    (doc,) = store.get_by_ids([432])
    assert (doc.id, doc.page_content) == ("432", "a")
    assert store.get_by_ids(["432"]) == []  # the string "432" is another id (its UUIDv5)
    store.delete([432, UID])
    assert [d.page_content for d in store.get_by_ids([432, str(UID), "x"])] == ["c"]
    with pytest.raises(ValueError, match="unsigned 64-bit"):
        store.add_texts(["d"], ids=[-1])


def test_langchain_qdrant_spellings_get_its_layout_and_documents() -> None:
    from langchain_qdrant import RetrievalMode

    store = QdrantVectorStore.from_texts(
        ["foo", "bar"], EMB, metadatas=[{"page": 0}, {"page": 1}], ids=[1, 2],
        location=":memory:", collection_name="lc", distance=models.Distance.DOT,
        retrieval_mode=RetrievalMode.HYBRID, sparse_embedding=Sparse())
    point = store.client.retrieve("lc", [1], with_vectors=True)[0]
    assert point.payload == {"page_content": "foo", "metadata": {"page": 0}}
    assert set(point.vector) == {"", "langchain-sparse"}  # the peer's vector names
    flt = models.Filter(must=[models.FieldCondition(key="metadata.page",
                                                    match=models.MatchValue(value=1))])
    (doc,) = store.similarity_search("bar", k=1, filter=flt)
    assert doc.metadata == {"page": 1, "_id": 2, "_collection_name": "lc"}
    # The peer's positional order, and from_existing_collection(collection_name, embedding).
    again = QdrantVectorStore(store.client, "lc", EMB, RetrievalMode.HYBRID,
                              distance=models.Distance.DOT, sparse_embedding=Sparse())
    assert len(again.get_by_ids([1, 2])) == 2
    assert QdrantVectorStore.from_existing_collection(
        "lc", EMB, client=store.client, distance="dot").get_by_ids([2])[0].page_content == "bar"


def test_a_wrong_distance_or_size_is_langchain_qdrants_error() -> None:
    from langchain_qdrant.qdrant import QdrantVectorStoreError

    client = QdrantClient(":memory:")
    QdrantVectorStore(EMB, "d", client=client).add_texts(["a"])
    with pytest.raises(QdrantVectorStoreError, match="8-dim cosine"):
        QdrantVectorStore(EMB, "d", client=client, distance="euclid")
    with pytest.raises(ValueError, match="this store embeds 4-dim"):
        QdrantVectorStore(DeterministicFakeEmbedding(size=4), "d", client=client)
    # force_recreate=: the peer's way to start over, explicitly.
    store = QdrantVectorStore(EMB, "d", client=client, distance="euclid", force_recreate=True)
    assert store.backend.count() == 0


def test_create_options_and_peer_collection_create_options() -> None:
    client = QdrantClient(":memory:")
    QdrantVectorStore(EMB, "o", client=client, collection_options={"on_disk_payload": True})
    QdrantVectorStore(EMB, "p", client=client, collection_create_options={
        "on_disk_payload": True}, vector_params={"on_disk": True})
    assert client.get_collection("p").config.params.vectors[""].on_disk is True
    with pytest.raises(ValueError, match="disagree"):
        QdrantVectorStore(EMB, "q", client=client, on_disk_payload=False,
                          collection_options={"on_disk_payload": True})


def test_sparse_only_store_without_embedding() -> None:
    store = QdrantVectorStore(None, "s", retrieval_mode="sparse", sparse_embedding=Sparse())
    store.add_texts(["zebra crossing", "apple pie"])
    assert store.similarity_search("zebra", k=1)[0].page_content == "zebra crossing"
    assert store.embeddings is None
    with pytest.raises(ValueError, match="needs dense vectors"):
        store.max_marginal_relevance_search("zebra")
    with pytest.raises(ValueError, match="embedding=None works with retrieval_mode='sparse'"):
        QdrantVectorStore(None, "t")


def test_relevance_score_fn_and_hybrid_fusion() -> None:
    store = QdrantVectorStore(EMB, "r", relevance_score_fn=lambda s: 0.25,
                              retrieval_mode="hybrid", sparse_embedding=Sparse())
    store.add_texts(["one two", "three"])
    assert {s for _, s in store.similarity_search_with_relevance_scores("one", k=2)} == {0.25}
    hits = store.similarity_search("one", k=1,
                                   hybrid_fusion=models.FusionQuery(fusion=models.Fusion.DBSF))
    assert hits[0].page_content == "one two"


def test_collections_written_before_keep_reading() -> None:
    """A rag-layout collection opened by a peer-spelled store stays in its layout."""
    client = QdrantClient(":memory:")
    QdrantVectorStore(EMB, "old", client=client).add_texts(["kept"], ids=["k"])
    peer_spelled = QdrantVectorStore(client, "old", embedding=EMB)
    (doc,) = peer_spelled.get_by_ids(["k"])
    assert (doc.id, doc.page_content, doc.metadata) == ("k", "kept", {})


async def test_llama_index_qdrant_spellings() -> None:
    client, aclient = QdrantClient(":memory:"), AsyncQdrantClient(":memory:")

    def encode(texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
        vectors = Sparse().embed_documents(texts)
        return [list(v.indices) for v in vectors], [list(v.values) for v in vectors]

    store = LlamaQdrantVectorStore("ll", client=client, aclient=aclient, enable_hybrid=True,
                                   sparse_doc_fn=encode, sparse_query_fn=encode)
    nodes = [TextNode(id_=str(uuid.UUID(int=i)), text=t, embedding=[1.0, float(i)],
                      metadata={"n": i}) for i, t in enumerate(["red fox", "blue whale"])]
    store.add(nodes)
    await store.async_add(nodes)  # the async client is another :memory: instance
    assert set(client.get_collection("ll").config.params.vectors) == {"text-dense"}
    assert "_node_content" in client.scroll("ll")[0][0].payload
    native = models.Filter(must=[models.FieldCondition(key="n", match=models.MatchValue(value=1))])
    query = VectorStoreQuery(query_embedding=[1.0, 0.0], similarity_top_k=2)
    result = store.query(query, qdrant_filters=native)
    assert [n.text for n in result.nodes] == ["blue whale"]
    hybrid = VectorStoreQuery(query_embedding=[1.0, 0.0], query_str="whale", similarity_top_k=1,
                              hybrid_top_k=1, mode=VectorStoreQueryMode.HYBRID)
    assert (await store.aquery(hybrid)).nodes


def _nodes(*specs: tuple[int, str, str]) -> list[TextNode]:
    """TextNodes (uuid from n, text, source document) with 2-dim embeddings."""
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo

    return [TextNode(id_=str(uuid.UUID(int=n)), text=text, embedding=[1.0, float(n)],
                     metadata={"n": n},
                     relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc)})
            for n, text, doc in specs]


async def test_llama_index_qdrant_custom_sharding_on_a_cluster(qdrant_cluster) -> None:
    """sharding_method=CUSTOM, shard_keys= created with the collection, shard_key_selector_fn,
    per-call shard_identifier= routing writes, reads, queries and deletes."""
    url = qdrant_cluster.nodes[0].url
    name = f"shards_{uuid.uuid4().hex[:8]}"
    client, aclient = QdrantClient(url=url), AsyncQdrantClient(url=url)
    try:
        store = LlamaQdrantVectorStore(
            name, client=client, aclient=aclient, sharding_method=models.ShardingMethod.CUSTOM,
            shard_keys=["even", "odd"], shard_key_selector_fn=lambda n: ["even", "odd"][n % 2])
        store.add(_nodes((1, "one", "d1"), (3, "three", "d2")), shard_identifier=1)
        await store.async_add(_nodes((2, "two", "d1")), shard_identifier=2)
        info = client.http.distributed_api.collection_cluster_info(name).result
        assert {s.shard_key for s in info.local_shards + info.remote_shards} == {"even", "odd"}
        assert len(store.get_nodes()) == 3  # no identifier: every shard
        assert [n.text for n in store.get_nodes(shard_identifier=4)] == ["two"]
        assert len(await store.aget_nodes(shard_identifier=7)) == 2
        query = VectorStoreQuery(query_embedding=[1.0, 0.0], similarity_top_k=5)
        assert [n.text for n in store.query(query, shard_identifier=0).nodes] == ["two"]
        assert len((await store.aquery(query, shard_identifier=1)).nodes) == 2
        store.delete("d1", shard_identifier=1)  # d1 in the odd shard only
        assert sorted(n.text for n in store.get_nodes()) == ["three", "two"]
        await store.adelete_nodes(shard_identifier=2)  # everything in the even shard
        assert [n.text for n in store.get_nodes()] == ["three"]
        with pytest.raises(ValueError, match="delete_nodes needs node_ids or filters"):
            store.delete_nodes()  # no shard: never the whole collection
        with pytest.raises(ValueError, match="no shard key was given"):
            LlamaQdrantVectorStore(name, client=client).add(_nodes((5, "five", "d3")))
        with pytest.raises(TypeError, match="did you mean 'shard_identifier'"):
            store.get_nodes(shard_identifer=1)
    finally:
        client.delete_collection(name)
        client.close()
        await aclient.close()


def test_custom_sharding_needs_a_distributed_server(qdrant_server) -> None:
    with pytest.raises(UnsupportedError, match="sharding_method= / shard_keys= / shard_key="):
        LlamaQdrantVectorStore("s", shard_keys=[1])  # embedded local mode
    with pytest.raises(UnsupportedError, match="engine='edge'"):
        LlamaQdrantVectorStore("s", engine="edge", sharding_method="custom", shard_keys=["a"])
    with pytest.raises(ValueError, match="sharding_method='custom' needs shard_keys="):
        LlamaQdrantVectorStore("s", url=qdrant_server.url, sharding_method="custom")
    with pytest.raises(ValueError, match="a Qdrant shard key is an int >= 0"):
        LlamaQdrantVectorStore("s", url=qdrant_server.url, shard_keys=[-1])
    store = LlamaQdrantVectorStore(f"s_{uuid.uuid4().hex[:8]}", url=qdrant_server.url,
                                   shard_keys=["a"], shard_key="a")
    with pytest.raises(UnsupportedError, match="without distributed mode"):
        store.add(_nodes((1, "one", "d")))
    store.close()


def test_llama_index_qdrant_detects_the_sparse_vector_name_on_open() -> None:
    """Collections of older peer versions have "text-sparse"; newer "text-sparse-new"."""
    client = QdrantClient(":memory:")
    for name, sparse in (("legacy", "text-sparse"), ("new", "text-sparse-new")):
        client.create_collection(
            name, vectors_config={"text-dense": models.VectorParams(size=2, distance="Cosine")},
            sparse_vectors_config={sparse: models.SparseVectorParams()})
        store = LlamaQdrantVectorStore(name, client=client)
        assert (store.sparse_vector_name, store.dense_vector_name) == (sparse, "text-dense")
    given = LlamaQdrantVectorStore("legacy", client=client, sparse_vector_name="custom")
    assert given.sparse_vector_name == "custom"  # given names are never replaced


async def test_llama_index_qdrant_query_options_text_key_and_unknown_kwargs() -> None:
    client = QdrantClient(":memory:")
    client.create_collection("tk", vectors_config=models.VectorParams(size=2, distance="Cosine"))
    client.upsert("tk", [models.PointStruct(id=1, vector=[1.0, 0.0],
                                            payload={"body": "hello", "lang": "en"})])
    store = LlamaQdrantVectorStore("tk", client=client, text_key="body")
    (node,) = store.get_nodes()
    assert (node.text, node.metadata) == ("hello", {"lang": "en"})
    query = VectorStoreQuery(query_embedding=[1.0, 0.0], similarity_top_k=1)
    assert store.query(query, search_params=models.SearchParams(exact=True)).nodes[0].text == \
        "hello"
    assert store.query(query, search_params={"hnsw_ef": 16}).nodes[0].text == "hello"
    with pytest.raises(ValueError, match="search_params must be a qdrant_client"):
        store.query(query, search_params="exact")
    with pytest.raises(TypeError, match="did you mean 'qdrant_filters'"):
        store.query(query, qdrant_filter=None)
    with pytest.raises(TypeError, match="did you mean 'similarity_top_k'|unknown"):
        await store.aquery(query, similarity_topk=3)
    with pytest.raises(ValueError, match="text_key must be a non-empty string"):
        LlamaQdrantVectorStore("tk", client=client, text_key="")


def test_llama_index_qdrant_hybrid_fusion_fn_gets_both_legs() -> None:
    from llama_index.core.vector_stores.types import VectorStoreQueryResult

    calls = []

    def fuse(dense: VectorStoreQueryResult, sparse: VectorStoreQueryResult, alpha: float,
             top_k: int) -> VectorStoreQueryResult:
        calls.append(([n.text for n in dense.nodes], [n.text for n in sparse.nodes], alpha, top_k))
        return sparse

    def encode(texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
        vectors = Sparse().embed_documents(texts)
        return [list(v.indices) for v in vectors], [list(v.values) for v in vectors]

    store = LlamaQdrantVectorStore("hf", client=QdrantClient(":memory:"), enable_hybrid=True,
                                   sparse_doc_fn=encode, hybrid_fusion_fn=fuse)
    store.add(_nodes((0, "red fox", "a"), (1, "blue whale", "b")))
    hybrid = VectorStoreQuery(query_embedding=[1.0, 0.0], query_str="whale", similarity_top_k=2,
                              sparse_top_k=1, hybrid_top_k=1, alpha=0.3,
                              mode=VectorStoreQueryMode.HYBRID)
    assert [n.text for n in store.query(hybrid).nodes] == ["blue whale"]
    assert calls == [(["red fox", "blue whale"], ["blue whale"], 0.3, 1)]
    with pytest.raises(TypeError, match="hybrid_fusion_fn must be a callable"):
        LlamaQdrantVectorStore("hf2", hybrid_fusion_fn="rrf")


def test_reopening_with_another_distance_is_an_error_in_llama_index_too() -> None:
    client = QdrantClient(":memory:")
    LlamaQdrantVectorStore("dist", client=client).add(_nodes((1, "one", "d")))
    with pytest.raises(ValueError, match="2-dim cosine"):
        LlamaQdrantVectorStore("dist", client=client, distance="euclid").add(
            _nodes((2, "two", "d")))


def test_langchain_qdrant_shard_key_selector_on_a_cluster(qdrant_cluster) -> None:
    """langchain-qdrant's way: collection_create_options={"sharding_method": CUSTOM}, keys by
    client.create_shard_key, `shard_key_selector=` passed on with writes and searches."""
    client = QdrantClient(url=qdrant_cluster.nodes[0].url)
    name = f"lcshards_{uuid.uuid4().hex[:8]}"
    try:
        store = QdrantVectorStore(client, name, EMB, collection_create_options={
            "sharding_method": models.ShardingMethod.CUSTOM})
        for key in ("a", "b"):
            client.create_shard_key(name, key)
        store.add_texts(["in a"], ids=[1], shard_key_selector="a")
        store.add_documents([Document("in b")], ids=[2], shard_key_selector="b")
        assert len(store.similarity_search("in", k=5)) == 2
        (doc,) = store.similarity_search("in", k=5, shard_key_selector="b")
        assert doc.page_content == "in b"
        store.delete([2], shard_key_selector="a")  # not in shard a: nothing deleted
        assert len(store.get_by_ids([1, 2])) == 2
        store.delete([2], shard_key_selector="b")
        assert [d.page_content for d in store.get_by_ids([1, 2])] == ["in a"]
        with pytest.raises(ValueError, match="no shard key was given"):
            store.add_texts(["nowhere"])
    finally:
        client.delete_collection(name)
        client.close()


async def test_langchain_unknown_keywords_are_refused_and_search_params_pass() -> None:
    store = QdrantVectorStore(EMB, "kw")
    with pytest.raises(TypeError, match="unknown add_texts option 'unknown_kw'"):
        store.add_texts(["a"], unknown_kw=1)
    with pytest.raises(TypeError, match="did you mean 'batch_size'"):
        await store.aadd_texts(["a"], batchsize=2)
    with pytest.raises(TypeError, match="did you mean 'ids'"):
        store.add_documents([Document("a")], idz=["x"])
    with pytest.raises(TypeError, match="did you mean 'score_threshold'"):
        store.similarity_search("a", score_treshold=0.5)
    assert store.backend.count() == 0  # nothing was written by the refused calls
    store.add_texts(["a", "b"], ids=["a", "b"])
    assert len(store.similarity_search("a", k=2, search_params=models.SearchParams(
        hnsw_ef=8, exact=True))) == 2
    assert len(await store.asimilarity_search("a", k=1, search_params={"exact": True})) == 1
    with pytest.raises(ValueError, match="search_params must be a qdrant_client"):
        store.similarity_search("a", search_params=8)
    with pytest.raises(TypeError, match="unknown delete option"):
        store.delete(["a"], wait_for=True)
    with pytest.raises(UnsupportedError, match="needs a Qdrant server in distributed mode"):
        store.similarity_search("a", shard_key_selector="x")
