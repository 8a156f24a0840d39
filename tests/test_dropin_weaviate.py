"""Drop-in for langchain-weaviate (issue 28): its spellings, and collections it wrote read
and written in place, on the real Weaviate server. The peer package writes and reads."""

from __future__ import annotations

import uuid

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from rag_stores.langchain import WeaviateVectorStore

langchain_weaviate = pytest.importorskip("langchain_weaviate")


def test_collection_written_by_langchain_weaviate(weaviate_client):
    emb = DeterministicFakeEmbedding(size=16)
    name = f"Peer_{uuid.uuid4().hex}"
    peer = langchain_weaviate.WeaviateVectorStore(weaviate_client, name, "text", embedding=emb)
    peer.add_texts(["alpha", "beta"], [{"page": 1}, {"page": 2}])

    ours = WeaviateVectorStore(emb, name, client=weaviate_client)  # our spelling, peer's data
    assert ours.backend.info().flat
    [doc] = ours.similarity_search("alpha", k=1, filter={"page": 1})
    assert (doc.page_content, doc.metadata) == ("alpha", {"page": 1})
    ids = ours.add_texts(["gamma"], [{"page": 3}])
    assert ours.get_by_ids(ids)[0].metadata == {"page": 3}

    texts = {d.page_content: d.metadata for d in peer.similarity_search("gamma", k=3)}
    assert texts["gamma"] == {"page": 3}  # the peer reads what we added


def test_peer_spellings_tenant_per_call(weaviate_client):
    emb = DeterministicFakeEmbedding(size=16)
    store = WeaviateVectorStore(weaviate_client, f"Mt_{uuid.uuid4().hex}", "text",
                                embedding=emb, use_multi_tenancy=True)
    ids = store.add_texts(["a", "b"], tenant="T1")
    assert [d.page_content for d in store.similarity_search("a", k=1, tenant="T1", alpha=1)] \
        == ["a"]
    with pytest.raises(ValueError, match="multi-tenant"):
        store.similarity_search("a", k=1)
    store.delete(ids, tenant="T1")
    assert store.similarity_search("a", k=1, tenant="T1") == []
    with pytest.raises(ValueError, match="No ids provided"):
        store.delete()


def test_our_layout_stays_default(weaviate_client):
    store = WeaviateVectorStore(DeterministicFakeEmbedding(size=8), f"Own_{uuid.uuid4().hex}",
                                client=weaviate_client)
    store.add_texts(["x"], ids=["id-1"])
    assert not store.backend.info().flat
    assert store.get_by_ids(["id-1"])[0].id == "id-1"
