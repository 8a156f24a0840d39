"""Tenants sharing a Qdrant collection stay apart whatever their names hold, on every Qdrant
engine; collections written with the earlier (ambiguous) tenant point ids keep working; a
record no engine could read back never reaches one (README: Security model)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import (
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)
from qdrant_client import QdrantClient, models

from rag_stores.backends.qdrant import IDS_MARKER, QdrantBackend
from rag_stores.core.ids import legacy_tenant_point_id, tenant_point_id
from rag_stores.langchain import QdrantVectorStore
from rag_stores.llama_index import QdrantVectorStore as LlamaQdrantStore
from tests.conformance import fresh_name

EMB = DeterministicFakeEmbedding(size=8)
Make = Callable[..., dict[str, Any]]


@pytest.fixture(params=["memory", "local-disk", "edge", "server"])
def connect(request, tmp_path) -> Iterator[Make]:
    """Store options that reach one shared engine of each Qdrant kind."""
    closers: list[Any] = []
    if request.param == "memory":
        client = QdrantClient(":memory:")
        closers.append(client)
        options: dict[str, Any] = {"client": client}
    elif request.param == "local-disk":
        client = QdrantClient(path=str(tmp_path / "local"))
        closers.append(client)
        options = {"client": client}
    elif request.param == "edge":
        options = {"engine": "edge", "path": str(tmp_path / "edge")}
    else:
        options = request.getfixturevalue("qdrant_server").connect_kwargs(False)
    yield lambda: dict(options)
    for client in closers:
        client.close()


def test_tenant_names_holding_a_slash_never_meet(connect: Make) -> None:
    name = fresh_name("slash")
    acme = QdrantVectorStore(EMB, name, tenant="acme", **connect())
    prod = QdrantVectorStore(EMB, name, tenant="acme/prod", **connect())
    prod.add_texts(["secret"], ids=["s"])
    assert acme.get_by_ids(["prod/s"]) == []
    acme.add_texts(["mine"], ids=["prod/s"])  # the id that used to reach prod's record
    assert prod.get_by_ids(["s"]) == [Document(id="s", page_content="secret")]
    acme.delete(["prod/s"])
    assert prod.get_by_ids(["s"]) == [Document(id="s", page_content="secret")]
    prod.delete(["prod/s", "s/"])  # nothing of prod's, nothing of acme's
    assert prod.backend.count() == 1
    assert acme.backend.count() == 0
    acme.close(), prod.close()


def test_llama_node_ids_match_in_a_tenant_store(connect: Make) -> None:
    name = fresh_name("nodes")
    store = LlamaQdrantStore(name, tenant="acme", **connect())
    other = LlamaQdrantStore(name, tenant="globex", **connect())
    nodes = [TextNode(id_=f"n{i}", text=f"text {i}", metadata={"i": i}, embedding=[float(i + 1)] * 8)
             for i in range(3)]
    store.add(nodes)
    other.add([TextNode(id_="n1", text="globex", metadata={"i": 1}, embedding=[2.0] * 8)])
    assert [n.node_id for n in store.get_nodes(node_ids=["n0", "n2"])] == ["n0", "n2"]
    found = store.query(VectorStoreQuery(query_embedding=[1.0] * 8, similarity_top_k=5,
                                         node_ids=["n1"]))
    assert [(n.node_id, n.text) for n in found.nodes] == [("n1", "text 1")]
    store.delete_nodes(node_ids=["n0", "n1"], filters=MetadataFilters(
        filters=[MetadataFilter(key="i", value=1, operator=FilterOperator.GTE)]))
    assert sorted(n.node_id for n in store.get_nodes(node_ids=["n0", "n1", "n2"])) == ["n0", "n2"]
    assert [n.text for n in other.get_nodes(node_ids=["n1"])] == ["globex"]
    store.close(), other.close()


def _make_legacy(backend: QdrantBackend, records: list[tuple[str, str, str]]) -> None:
    """Rewrite `backend`'s collection as an earlier release left it: no ids marker, and
    (tenant, id, text) records at the ambiguous legacy point ids, in the same payload."""
    client = backend.client
    client.update_collection(backend.collection_name, metadata={IDS_MARKER: None})
    client.upsert(backend.collection_name, points=[models.PointStruct(
        id=legacy_tenant_point_id(tenant, user_id), vector={"dense": EMB.embed_query(text)},
        payload={"text": text, "metadata": {"tenant": tenant}, "doc_id": user_id,
                 "tenant": tenant}) for tenant, user_id, text in records], wait=True)


def test_a_collection_written_with_legacy_tenant_ids_keeps_working(connect: Make) -> None:
    name = fresh_name("legacy")
    setup = QdrantVectorStore(EMB, name, **connect())
    setup.add_texts(["created"], ids=["tmp"])
    setup.delete(["tmp"])
    # ("acme/prod", "s") and ("acme", "prod/s") shared this point id
    _make_legacy(setup.backend, [("acme/prod", "s", "secret"), ("acme", "old", "acme old")])
    setup.close()
    acme = QdrantVectorStore(EMB, name, tenant="acme", **connect())
    prod = QdrantVectorStore(EMB, name, tenant="acme/prod", **connect())
    assert acme.get_by_ids(["prod/s"]) == []  # prod's record sits at that legacy id
    assert prod.get_by_ids(["s"]) == [Document(id="s", page_content="secret",
                                               metadata={"tenant": "acme/prod"})]
    assert [d.id for d in acme.similarity_search("anything", k=5)] == ["old"]
    acme.add_texts(["acme new"], ids=["prod/s"])  # a new point: prod's legacy one stays
    assert prod.get_by_ids(["s"])[0].page_content == "secret"
    acme.add_texts(["acme old, replaced"], ids=["old"])  # replaces, never duplicates
    assert acme.backend.count() == 2
    assert acme.get_by_ids(["old"])[0].page_content == "acme old, replaced"
    # recommend by the id of a legacy record of this tenant's
    prod.add_texts(["another"], ids=["t"])
    recommended = prod.backend.search(_recommend(["s"]))
    assert [h.record.id for h in recommended] == ["t"]
    prod.delete(["s"])
    assert prod.get_by_ids(["s"]) == [] and prod.backend.count() == 1
    assert acme.backend.count() == 2
    acme.close(), prod.close()


def _recommend(positive: list[str]) -> Any:
    from rag_stores.core.query import Query

    return Query(mode="recommend", k=5, positive=positive)


def test_new_collections_use_unambiguous_tenant_ids(connect: Make) -> None:
    name = fresh_name("ids")
    store = QdrantVectorStore(EMB, name, tenant="acme/prod", **connect())
    store.add_texts(["x"], ids=["s"])
    (hit,) = store.backend.search(_dense())
    assert hit.extra["point_id"] == tenant_point_id("acme/prod", "s")
    assert tenant_point_id("acme/prod", "s") != tenant_point_id("acme", "prod/s")
    assert store.backend.collection_metadata()[IDS_MARKER] == 2
    store.close()


def _dense() -> Any:
    from rag_stores.core.query import Query

    return Query(mode="dense", k=1, vector=EMB.embed_query("x"))


def test_a_tenant_store_refuses_a_collection_in_the_llama_peer_layout(connect: Make) -> None:
    name = fresh_name("peerlayout")
    peer = LlamaQdrantStore(name, layout="llama", **connect())
    peer.add([TextNode(id_="n", text="t", embedding=[1.0] * 8)])
    peer.close()
    with pytest.raises(ValueError, match="llama layout, which keeps no tenant field"):
        QdrantVectorStore(EMB, name, tenant="acme", **connect()).add_texts(["x"], ids=["y"])
    again = LlamaQdrantStore(name, **connect())
    assert again.backend.count() == 1  # nothing written
    again.close()


def test_llama_layout_metadata_keeps_keys_that_clash_with_the_layout(connect: Make) -> None:
    name = fresh_name("clash")
    store = LlamaQdrantStore(name, layout="llama", **connect())
    metadata = {"doc_id": "mine", "ref_doc_id": "r", "document_id": "d", "_node_type": "x",
                "k": 1}
    store.add([TextNode(id_="n", text="t", metadata=metadata, embedding=[1.0] * 8)])
    assert store.get_nodes(node_ids=["n"])[0].metadata == metadata
    store.close()


def test_edge_reopens_after_refusing_deep_metadata(tmp_path) -> None:
    """The defect: Edge accepted 130 levels, then no read worked and the shard never
    reopened. Refused before the write, the shard holds what it held and reopens."""
    deep: dict = {}
    level = deep
    for _ in range(130):
        level["a"] = {}
        level = level["a"]
    with QdrantVectorStore(EMB, "c", engine="edge", path=str(tmp_path)) as store:
        store.add_texts(["kept"], ids=["1"])
        with pytest.raises(ValueError, match="nested deeper than 64 levels"):
            store.add_texts(["a", "b"], [{}, {"deep": deep}], ids=["2", "3"])
    with QdrantVectorStore(EMB, "c", engine="edge", path=str(tmp_path)) as store:
        assert [d.id for d in store.similarity_search("kept", k=5)] == ["1"]


@pytest.mark.parametrize("face", ["langchain", "llama_index"])
def test_a_store_that_fails_to_set_up_leaves_its_folder_free(tmp_path, face) -> None:
    path = str(tmp_path / "local")
    QdrantClient(path=path).close()  # a local-mode folder
    with pytest.raises(ValueError, match="batch_size must be"):
        if face == "langchain":
            QdrantVectorStore(EMB, "c", path=path, batch_size=0)
        else:
            LlamaQdrantStore("c", path=path, batch_size=0)
    with QdrantVectorStore(EMB, "c", path=path) as store:  # not "already accessed"
        store.add_texts(["a"])
        assert store.backend.engine == "local"


def test_a_tenant_store_sees_only_its_own_collection_metadata(connect: Make) -> None:
    name = fresh_name("meta")
    a = QdrantVectorStore(EMB, name, tenant="a", **connect())
    b = QdrantVectorStore(EMB, name, tenant="a/b", **connect())
    a.add_texts(["x"])
    a.backend.update_collection_metadata({"rag_stores_bm25/tenant/a": {"docs": 1}})
    b.backend.update_collection_metadata({"rag_stores_bm25/tenant/a/b": {"docs": 2}})
    assert {k for k in a.backend.collection_metadata() if "/tenant/" in k} == {
        "rag_stores_bm25/tenant/a"}
    assert b.backend.collection_metadata()["rag_stores_bm25/tenant/a/b"] == {"docs": 2}
    assert "rag_stores_bm25/tenant/a" not in b.backend.collection_metadata()
    with pytest.raises(PermissionError, match=r"cannot set other tenants' .*tenant/a'\]"):
        b.backend.update_collection_metadata({"rag_stores_bm25/tenant/a": {"docs": 0}})
    assert a.backend.collection_metadata()["rag_stores_bm25/tenant/a"] == {"docs": 1}
    a.close(), b.close()
