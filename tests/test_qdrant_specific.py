"""Qdrant-only behaviour: adopting peers' collections, client ownership, payload indexes."""

from __future__ import annotations

from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from qdrant_client import QdrantClient

from rag_stores.backends.qdrant import QdrantBackend
from rag_stores.core.ids import to_point_id
from rag_stores.langchain import QdrantVectorStore
from rag_stores.llama_index import QdrantVectorStore as LlamaQdrantVectorStore

EMB = DeterministicFakeEmbedding(size=8)


def test_opens_a_langchain_qdrant_collection_without_reingesting() -> None:
    from langchain_qdrant import QdrantVectorStore as PeerStore

    peer = PeerStore.from_texts(["hello world", "goodbye"], EMB, metadatas=[{"a": 1}, {"a": 2}],
                                location=":memory:", collection_name="peer")
    client = peer.client
    ours = QdrantVectorStore(EMB, "peer", client=client, create_collection=False)
    assert ours.similarity_search("hello world", k=1, filter={"a": 1})[0].page_content == "hello world"
    ours.add_texts(["new text"], [{"a": 3}], ids=["n1"])
    # The peer still reads what we wrote, and we return the user id.
    assert peer.similarity_search("new text", k=1)[0].page_content == "new text"
    # Documents of the peer's layout look like the peer's: the point id and the collection
    # in the metadata (a non-UUID id's point is its UUIDv5), the user's id as Document.id.
    assert ours.get_by_ids(["n1"]) == [Document(
        id="n1", page_content="new text",
        metadata={"a": 3, "_id": to_point_id("n1"), "_collection_name": "peer"})]


def test_opens_a_llama_index_qdrant_collection_without_reingesting() -> None:
    from llama_index.vector_stores.qdrant import QdrantVectorStore as PeerStore

    client = QdrantClient(":memory:")
    peer = PeerStore("peer", client=client)
    node_id = "7f9c1f0e-5f4c-4c4e-9d5b-0a0a0a0a0a0a"
    peer.add([TextNode(id_=node_id, text="hi there", metadata={"b": 2}, embedding=[0.1] * 8,
                       relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id="d1")})])
    ours = LlamaQdrantVectorStore("peer", client=client)
    (got,) = ours.get_nodes([node_id])
    assert (got.text, got.metadata, got.ref_doc_id) == ("hi there", {"b": 2}, "d1")
    lc = QdrantVectorStore(EMB, "peer", client=client, create_collection=False)
    assert lc.similarity_search("x", k=1, filter={"b": 2})[0].page_content == "hi there"
    ours.delete("d1")
    assert ours.backend.count() == 0


def test_store_closes_its_own_client_never_a_given_one(tmp_path) -> None:
    given = QdrantClient(path=str(tmp_path / "given"))
    with QdrantVectorStore(EMB, "c", client=given) as store:
        store.add_texts(["a"])
    assert given.count("c").count == 1  # still open
    given.close()
    with QdrantVectorStore(EMB, "c", path=str(tmp_path / "own")) as store:
        store.add_texts(["a"])
    # Closed: the folder lock is free, so it reopens in this same process.
    with QdrantVectorStore(EMB, "c", path=str(tmp_path / "own")) as again:
        assert again.backend.count() == 1


def test_payload_indexes_are_created_on_servers_for_declared_fields() -> None:
    """A server in strict mode refuses unindexed filters: the create plan indexes the
    record fields and every declared metadata field (local mode has no indexes)."""
    backend = QdrantBackend("c", url="http://127.0.0.1:1", payload_indexes={"year": "integer"})
    # The first request asks whether the collection exists: answer "no", collect the rest.
    plan = backend._ensure(4, False)
    requests = [next(plan)]
    try:
        requests.append(plan.send(False))
        while True:
            requests.append(plan.send(None))
    except StopIteration:
        pass
    indexed = {r[1]["field_name"]: r[1]["field_schema"] for r in requests
               if r[0] == "create_payload_index"}
    assert requests[1][0] == "create_collection"
    assert indexed == {"doc_id": "keyword", "ref_doc_id": "keyword",
                                 "metadata.year": "integer"}


def test_keyword_search_over_metadata_fields_is_refused() -> None:
    """One sparse vector per record: Qdrant's BM25 reads the text only (Weaviate can read
    declared metadata fields too, `searchable_keys=`)."""
    import pytest

    from rag_stores.core.query import UnsupportedError
    from retrievers.langchain import BM25Retriever

    store = QdrantVectorStore(EMB, "kw", retrieval_mode="hybrid")
    store.add_texts(["zebra crossing"], [{"title": "stripes"}])
    assert BM25Retriever(vectorstore=store, query_properties=["text"]).invoke("zebra")
    with pytest.raises(UnsupportedError, match="text only"):
        BM25Retriever(vectorstore=store, query_properties=["title"]).invoke("stripes")
