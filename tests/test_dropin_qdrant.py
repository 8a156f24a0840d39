"""Drop-in for langchain-qdrant and llama-index-vector-stores-qdrant: their spellings reach our
classes (README: Switching from the official integrations). Qdrant local mode, real engine;
the peers' own suites (../shared/peer-suites) are the wider measure."""

from __future__ import annotations

import uuid

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode
from qdrant_client import AsyncQdrantClient, QdrantClient, models

from embedders.sparse import SparseVector
from rag_stores.core.ids import to_point_id
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
