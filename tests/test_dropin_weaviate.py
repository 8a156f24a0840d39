"""Drop-in for langchain-weaviate and llama-index-vector-stores-weaviate (issue 28): their
spellings, and collections they wrote read and written in place, on the real Weaviate
server. The peer packages write and read."""

from __future__ import annotations

import gc
import logging
import uuid

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode

from rag_stores.langchain import WeaviateVectorStore
from rag_stores.llama_index import WeaviateVectorStore as LlamaWeaviateStore

langchain_weaviate = pytest.importorskip("langchain_weaviate")
llama_weaviate = pytest.importorskip("llama_index.vector_stores.weaviate")


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


# --- langchain-weaviate: tenants, schema dicts, reserved keys -------------------------------
def test_peer_tenant_creation_logged_once(weaviate_client, caplog):
    store = WeaviateVectorStore(weaviate_client, f"Log_{uuid.uuid4().hex}", "text",
                                embedding=DeterministicFakeEmbedding(size=8),
                                use_multi_tenancy=True)
    message = f"Tenant Foo does not exist in index {store.backend.collection_name}"
    with caplog.at_level(logging.INFO):
        store.add_texts(["a"], tenant="Foo")
    assert message in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        store.add_texts(["b"], tenant="Foo")
    assert message not in caplog.text


def test_peer_schema_dicts(weaviate_client):
    emb = DeterministicFakeEmbedding(size=8)
    name = f"Schema_{uuid.uuid4().hex}"
    schema = {"class": name, "properties": [{"name": "body", "dataType": ["text"]},
                                            {"name": "page", "dataType": ["int"]}]}
    store = WeaviateVectorStore(weaviate_client, name, "body", embedding=emb, schema=schema)
    assert store.schema is schema
    props = {p.name: p.data_type.value for p in
             weaviate_client.collections.get(name).config.get().properties}
    assert props == {"body": "text", "page": "int"}  # created from the dict, as given
    store.add_texts(["x"], [{"page": 2}])
    assert store.similarity_search("x", k=1)[0].metadata["page"] == 2

    config = {"enabled": True, "autoTenantCreation": True, "autoTenantActivation": False}
    other = WeaviateVectorStore(weaviate_client, f"Mt_{uuid.uuid4().hex}", "text",
                                embedding=emb, use_multi_tenancy=config)
    assert other.schema["MultiTenancyConfig"] == config
    created = weaviate_client.collections.get(other.backend.collection_name).config.get()
    assert created.multi_tenancy_config.enabled
    assert not created.multi_tenancy_config.auto_tenant_activation
    with pytest.raises(ValueError, match="multi_tenancy must be a bool"):
        WeaviateVectorStore(weaviate_client, f"Bad_{uuid.uuid4().hex}", "text",
                            embedding=emb, use_multi_tenancy="yes")


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_reserved_metadata_key_refused_before_any_write(weaviate_client, asynchronous):
    emb = DeterministicFakeEmbedding(size=8)
    name = f"Reserved_{uuid.uuid4().hex}"
    store = WeaviateVectorStore(weaviate_client, name, "text", embedding=emb, batch_size=1)
    docs = [Document(page_content="foo", metadata={"page": 0}),
            Document(page_content="bar", metadata={"_additional": 1})]
    with pytest.raises(ValueError, match="'_additional' .* reserved property name"):
        if asynchronous:
            await store.aadd_documents(docs, ids=["good", "bad"])
        else:
            store.add_documents(docs, ids=["good", "bad"])
    assert weaviate_client.collections.get(name).aggregate.over_all(
        total_count=True).total_count == 0  # the good record (its own batch) was not written
    # our own layout keeps such keys as metadata: nothing reserved there
    ours = WeaviateVectorStore(emb, f"Own_{uuid.uuid4().hex}", client=weaviate_client)
    ours.add_documents(docs, ids=["good", "bad"])
    assert ours.get_by_ids(["bad"])[0].metadata == {"_additional": 1}


# --- llama-index-vector-stores-weaviate ---------------------------------------------------------
def _nodes() -> list[TextNode]:
    return [TextNode(text="Hello world.", id_=str(uuid.uuid4()), metadata={"page": 1},
                     embedding=[0.0, 0.0, 0.3],
                     relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id="doc-a")}),
            TextNode(text="This is a test.", id_=str(uuid.uuid4()), metadata={"page": 2},
                     embedding=[0.3, 0.0, 0.0],
                     relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id="doc-b")})]


def _query(vector: list[float], k: int = 10, text: str | None = "test",
           mode: VectorStoreQueryMode = VectorStoreQueryMode.DEFAULT) -> VectorStoreQuery:
    return VectorStoreQuery(query_embedding=vector, similarity_top_k=k, query_str=text,
                            mode=mode)


@pytest.mark.parametrize("spelling", ["peer", "ours"])
def test_collection_written_by_llama_index_weaviate(weaviate_client, spelling):
    name = f"LlamaPeer_{uuid.uuid4().hex}"
    peer = llama_weaviate.WeaviateVectorStore(weaviate_client=weaviate_client, index_name=name)
    nodes = _nodes()
    peer.add(nodes)

    ours = (LlamaWeaviateStore(weaviate_client=weaviate_client, index_name=name)
            if spelling == "peer" else LlamaWeaviateStore(name, client=weaviate_client))
    assert ours.backend.info().flat
    found = {n.node_id: n for n in ours.get_nodes(node_ids=[n.node_id for n in nodes])}
    for node in nodes:
        assert found[node.node_id].text == node.text
        assert found[node.node_id].metadata == node.metadata  # no _node_content, doc_id, ...
        assert found[node.node_id].ref_doc_id == node.ref_doc_id
    result = ours.query(_query([0.3, 0.0, 0.0], k=1))
    assert [n.node_id for n in result.nodes] == [nodes[1].node_id]

    added = TextNode(text="Added by us.", id_=str(uuid.uuid4()), metadata={"page": 3},
                     embedding=[0.0, 0.3, 0.0],
                     relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id="doc-c")})
    ours.add([added])
    [read] = peer.query(_query([0.0, 0.3, 0.0], k=1)).nodes  # the peer reads what we added
    assert (read.node_id, read.text, read.metadata, read.ref_doc_id) == (
        added.node_id, "Added by us.", {"page": 3}, "doc-c")
    ours.delete("doc-a")
    assert {n.node_id for n in peer.query(_query([0.0, 0.0, 0.3])).nodes} == {
        nodes[1].node_id, added.node_id}


def test_llama_peer_spellings_make_the_peer_layout(weaviate_client):
    store = LlamaWeaviateStore(weaviate_client=weaviate_client)
    name = store.backend.collection_name
    assert name.startswith("LlamaIndex_")
    assert weaviate_client.collections.exists(name)  # created at once, as the peer does
    nodes = _nodes()
    store.add(nodes)
    props = weaviate_client.collections.get(name).query.fetch_object_by_id(
        nodes[0].node_id).properties
    assert props["_node_content"] and props["ref_doc_id"] == "doc-a" and props["page"] == 1
    peer = llama_weaviate.WeaviateVectorStore(weaviate_client=weaviate_client, index_name=name)
    assert {n.node_id for n in peer.query(_query([0.3, 0.0, 0.0])).nodes} == {
        n.node_id for n in nodes}
    peer.delete("doc-a")  # exact: our schema keeps document ids unsplit ("a" is a stopword)
    assert [n.node_id for n in store.query(_query([0.3, 0.0, 0.0])).nodes] == [
        nodes[1].node_id]
    store.clear()


def test_llama_peer_spellings_refused_clearly(weaviate_client):
    with pytest.raises(ValueError, match="capital letter.*'lower'"):
        LlamaWeaviateStore(weaviate_client=weaviate_client, index_name="lower")
    with pytest.raises(ValueError, match="custom_batch.*'wrong'"):
        LlamaWeaviateStore(weaviate_client=weaviate_client, index_name="Cb",
                           client_kwargs={"custom_batch": "wrong"})
    with pytest.raises(ValueError, match="weaviate_client must be.*str"):
        LlamaWeaviateStore(weaviate_client="http://localhost", index_name="Wc")
    with pytest.raises(ValueError, match="client_kwargs.*unused"):
        LlamaWeaviateStore(weaviate_client=weaviate_client, index_name="Ck",
                           client_kwargs={"skip_init_checks": True})


def test_llama_max_vector_distance(weaviate_client):
    name = f"Dist_{uuid.uuid4().hex}"
    ours = LlamaWeaviateStore(name, client=weaviate_client)
    nodes = _nodes()
    ours.add(nodes)
    exact = ours.query(_query([0.3, 0.0, 0.0]), max_vector_distance=0.01)
    assert [n.node_id for n in exact.nodes] == [nodes[1].node_id]
    assert len(ours.query(_query([0.3, 0.0, 0.0]), max_vector_distance=1.5).nodes) == 2
    with pytest.raises(ValueError, match="max_vector_distance=0.0 limits dense queries"):
        ours.query(_query([0.3, 0.0, 0.0], mode=VectorStoreQueryMode.HYBRID),
                   max_vector_distance=0.0)
    peer_spelled = LlamaWeaviateStore(weaviate_client=weaviate_client, index_name=name)
    hybrid = _query([0.0, 0.3, 0.0], text="world", mode=VectorStoreQueryMode.HYBRID)
    assert len(peer_spelled.query(hybrid).nodes) == 2
    assert peer_spelled.query(hybrid, max_vector_distance=0.0).nodes == []  # Weaviate's own


def test_llama_collection_with_object_array_property(weaviate_client):
    from weaviate.classes.config import DataType, Property

    name = f"Nested_{uuid.uuid4().hex}"
    weaviate_client.collections.create(name, properties=[
        Property(name="text", data_type=DataType.TEXT),
        Property(name="items", data_type=DataType.OBJECT_ARRAY,
                 nested_properties=[Property(name="label", data_type=DataType.TEXT)])])
    weaviate_client.collections.get(name).data.insert(
        {"text": "nested", "items": [{"label": "x"}]}, vector=[1.0, 0.0, 0.0])
    [node] = LlamaWeaviateStore(name, client=weaviate_client).query(_query([1.0, 0.0, 0.0])).nodes
    assert (node.text, node.metadata) == ("nested", {"items": [{"label": "x"}]})


def test_llama_store_closes_its_own_client_when_collected(weaviate_server, weaviate_client):
    from weaviate.connect import ConnectionParams

    params = ConnectionParams.from_params(
        http_host="127.0.0.1", http_port=weaviate_server.http_port, http_secure=False,
        grpc_host="127.0.0.1", grpc_port=weaviate_server.grpc_port, grpc_secure=False)
    store = LlamaWeaviateStore(client_kwargs={"connection_params": params},
                               index_name=f"Own_{uuid.uuid4().hex}")
    store.add(_nodes())
    own = store.client
    assert own.is_connected()
    del store
    gc.collect()
    assert not own.is_connected()
    lent = LlamaWeaviateStore(weaviate_client=weaviate_client)
    lent.clear()
    del lent
    gc.collect()
    assert weaviate_client.is_connected()  # a client you pass stays yours


async def test_llama_peer_spellings_async_client(weaviate_async_client):
    store = LlamaWeaviateStore(weaviate_client=weaviate_async_client,
                               index_name=f"Async_{uuid.uuid4().hex}")
    nodes = _nodes()
    await store.async_add(nodes)
    result = await store.aquery(_query([0.3, 0.0, 0.0]))
    assert [n.node_id for n in result.nodes] == [nodes[1].node_id, nodes[0].node_id]
    assert result.similarities[0] == pytest.approx(1.0)
    await store.adelete("doc-b")
    assert [n.node_id for n in (await store.aquery(_query([0.3, 0.0, 0.0]))).nodes] == [
        nodes[0].node_id]
    await store.aclear()


def test_llama_reserved_key_refused_before_any_write(weaviate_client):
    store = LlamaWeaviateStore(weaviate_client=weaviate_client, batch_size=1)
    nodes = _nodes()
    nodes[1].metadata["_additional"] = 1
    with pytest.raises(ValueError, match="'_additional' of record .* reserved property name"):
        store.add(nodes)
    nodes[1].metadata = {"text": "clash"}
    with pytest.raises(ValueError, match="'text' of record .* text property"):
        store.add(nodes)
    name = store.backend.collection_name
    assert weaviate_client.collections.get(name).aggregate.over_all(
        total_count=True).total_count == 0
    store.clear()


def test_langchain_store_closes_its_own_client_when_collected(weaviate_server, weaviate_client):
    emb = DeterministicFakeEmbedding(size=8)
    url = f"http://127.0.0.1:{weaviate_server.http_port}"
    store = WeaviateVectorStore(emb, f"Gc_{uuid.uuid4().hex}", url=url,
                                grpc_port=weaviate_server.grpc_port, tenant=None,
                                multi_tenancy=True)
    store.add_texts(["a"], tenant="T1")  # a per-call tenant view shares the client ...
    gc.collect()
    own = store.client
    assert own.is_connected()  # ... and closes nothing when it goes
    del store
    gc.collect()
    assert not own.is_connected()
    lent = WeaviateVectorStore(emb, f"Gc_{uuid.uuid4().hex}", client=weaviate_client)
    del lent
    gc.collect()
    assert weaviate_client.is_connected()


def test_options_weaviate_cannot_honour_are_refused(weaviate_client):
    """Unknown keywords of the LlamaIndex store, and Qdrant's per-query search options, are
    errors on Weaviate: never silently ignored."""
    store = LlamaWeaviateStore(f"Opts_{uuid.uuid4().hex}", client=weaviate_client)
    with pytest.raises(TypeError, match="did you mean 'score_threshold'"):
        store.query(_query([1.0, 0.0, 0.0]), score_treshold=0.5)
    with pytest.raises(TypeError, match="unknown WeaviateVectorStore.write/read option 'bogus'"):
        store.add(_nodes(), bogus=1)
    assert not store.backend.exists()  # refused before anything was written
    store.add(_nodes())
    assert len(store.query(_query([1.0, 0.0, 0.0]), max_vector_distance=2.0).nodes) > 0

    lc = WeaviateVectorStore(DeterministicFakeEmbedding(size=3), f"Opts_{uuid.uuid4().hex}",
                             client=weaviate_client)
    lc.add_texts(["x"])
    for option, instead in (("search_params", "vector_index_config"), ("shard_key", "tenant"),
                            ("consistency", "consistency_level")):
        with pytest.raises(NotImplementedError, match=f"{option}=.*Qdrant.*{instead}"):
            lc.similarity_search("x", k=1, **{option: {"hnsw_ef": 8} if option == "search_params"
                                              else "all"})
