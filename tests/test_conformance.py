"""One conformance suite for every backend variant, through both framework facades.

Variants come from the `variant` fixture (tests/conftest.py): Qdrant in memory, on disk,
with only an async client, and the real Weaviate server. Vectors are hand-made
(`TableEmbeddings`) so that expected orders are exact; the semantic test with the real
model lives in test_semantics.py.
"""

from __future__ import annotations

import math

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

from rag_stores.core.query import CollectionNotFoundError, Query, UnsupportedError
from rag_stores.langchain import BackendVectorStore
from rag_stores.llama_index import BackendLlamaStore
from tests.conformance import Variant, fresh_name

DIM = 4
# Unit-ish vectors with known geometry: a, a2 (near-duplicate of a), b, c orthogonal-ish.
TABLE = {
    "apple pie": [1.0, 0.0, 0.0, 0.0],
    "apple tart": [0.98, 0.2, 0.0, 0.0],
    "banana bread": [0.0, 1.0, 0.0, 0.0],
    "cherry cake": [0.0, 0.0, 1.0, 0.0],
    "dates": [0.0, 0.0, 0.0, 1.0],
    "query apple": [0.95, 0.02, 0.05, 0.0],
}


class TableEmbeddings(Embeddings):
    """Fixed vectors for known texts; other texts hash to a fixed vector."""

    def _one(self, text: str) -> list[float]:
        if text in TABLE:
            return list(TABLE[text])
        h = abs(hash(text)) % 997
        return [math.sin(h + i) for i in range(DIM)]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._one(text)


def lc_store(variant: Variant, name: str | None = None, **kwargs) -> BackendVectorStore:
    return variant.lc_store(TableEmbeddings(), name or fresh_name(), **kwargs)


def llama_store(variant: Variant, name: str | None = None, **kwargs) -> BackendLlamaStore:
    return variant.llama_store(name or fresh_name(), **kwargs)


def node(text: str, node_id: str, ref_doc_id: str | None = None, **metadata) -> TextNode:
    relationships = {}
    if ref_doc_id:
        relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=ref_doc_id)
    return TextNode(id_=node_id, text=text, metadata=metadata, embedding=TABLE[text],
                    relationships=relationships)


FRUIT = ["apple pie", "apple tart", "banana bread", "cherry cake", "dates"]
IDS = ["1", "doc/with space", "550e8400-e29b-41d4-a716-446655440000", "ünïcode-id", "x" * 80]


async def test_round_trip_keeps_ids_text_and_metadata(variant: Variant) -> None:
    store = lc_store(variant)
    metadatas = [{"i": i, "tags": ["t", str(i)], "nested": {"k": [1, {"z": None}]},
                  "odd key-é.x": True} for i in range(5)]
    ids = await variant.call(store, "add_texts", FRUIT, metadatas, ids=IDS)
    assert ids == IDS
    got = await variant.call(store, "get_by_ids", [IDS[3], "missing", IDS[0]])
    assert got == [Document(id=IDS[3], page_content=FRUIT[3], metadata=metadatas[3]),
                   Document(id=IDS[0], page_content=FRUIT[0], metadata=metadatas[0])]


async def test_re_adding_an_id_overwrites(variant: Variant) -> None:
    store = lc_store(variant)
    await variant.call(store, "add_texts", FRUIT, ids=IDS)
    await variant.call(store, "add_texts", ["cherry cake"], [{"v": 2}], ids=[IDS[0]])
    assert await variant.call(store.backend, "count") == 5
    (doc,) = await variant.call(store, "get_by_ids", [IDS[0]])
    assert (doc.page_content, doc.metadata) == ("cherry cake", {"v": 2})


async def test_dense_search_order_and_scores(variant: Variant) -> None:
    store = lc_store(variant)
    await variant.call(store, "add_texts", FRUIT, ids=FRUIT)
    pairs = await variant.call(store, "similarity_search_with_score", "query apple", k=3)
    assert [d.id for d, _ in pairs] == ["apple pie", "apple tart", "cherry cake"]
    scores = [s for _, s in pairs]
    assert scores == sorted(scores, reverse=True)
    rel = await variant.call(store, "similarity_search_with_relevance_scores", "query apple", k=5)
    assert all(0.0 <= s <= 1.0 for _, s in rel)
    assert [d.id for d, _ in rel][:2] == ["apple pie", "apple tart"]


async def test_score_threshold_and_offset(variant: Variant) -> None:
    store = lc_store(variant)
    await variant.call(store, "add_texts", FRUIT, ids=FRUIT)
    kept = await variant.call(store, "similarity_search_with_score", "query apple", k=5,
                              score_threshold=0.5)
    assert [d.id for d, _ in kept] == ["apple pie", "apple tart"]
    shifted = await variant.call(store, "similarity_search", "query apple", k=2, offset=1)
    assert [d.id for d in shifted] == ["apple tart", "cherry cake"]


async def test_mmr_lambda_one_is_relevance_zero_is_diversity(variant: Variant) -> None:
    store = lc_store(variant)
    await variant.call(store, "add_texts", FRUIT, ids=FRUIT)
    relevance = await variant.call(store, "max_marginal_relevance_search", "query apple", k=2,
                                   fetch_k=5, lambda_mult=1.0)
    assert [d.id for d in relevance] == ["apple pie", "apple tart"]
    diverse = await variant.call(store, "max_marginal_relevance_search", "query apple", k=2,
                                 fetch_k=5, lambda_mult=0.0)
    assert diverse[0].id == "apple pie" and diverse[1].id != "apple tart"


async def test_delete_by_id_and_by_filter(variant: Variant) -> None:
    store = lc_store(variant)
    await variant.call(store, "add_texts", FRUIT, [{"n": i} for i in range(5)], ids=FRUIT)
    await variant.call(store, "delete", ["apple pie", "never-added"])
    await variant.call(store, "delete", filter={"n": {"$gte": 3}})
    left = await variant.call(store, "get_by_ids", FRUIT)
    assert [d.id for d in left] == ["apple tart", "banana bread"]


async def test_filtered_search_as_dict_and_llama_filters_agree(variant: Variant) -> None:
    lc = lc_store(variant)
    await variant.call(lc, "add_texts", FRUIT, [{"n": i, "kind": "pie" if i < 2 else "other"}
                                                for i in range(5)], ids=FRUIT)
    docs = await variant.call(lc, "similarity_search", "query apple", k=5,
                              filter={"$or": [{"kind": "pie"}, {"n": {"$in": [4]}}]})
    llama = llama_store(variant, lc.backend.collection_name)
    filters = MetadataFilters(filters=[MetadataFilter(key="kind", value="pie"),
                                       MetadataFilter(key="n", value=[4],
                                                      operator=FilterOperator.IN)],
                              condition="or")
    result = await variant.call(llama, "query", VectorStoreQuery(
        query_embedding=TABLE["query apple"], similarity_top_k=5, filters=filters))
    assert [d.id for d in docs] == result.ids == ["apple pie", "apple tart", "dates"]


async def test_unknown_filter_operator_is_a_clear_error(variant: Variant) -> None:
    store = lc_store(variant)
    with pytest.raises(ValueError, match=r"\$regex"):
        await variant.call(store, "similarity_search", "x", filter={"n": {"$regex": "a"}})


async def test_keyword_search_on_a_dense_collection(variant: Variant) -> None:
    """Qdrant: a clear error, never a silent dense search. Weaviate indexes text for BM25
    in every collection, so keyword and hybrid search always work there."""
    dense = lc_store(variant)
    await variant.call(dense, "add_texts", FRUIT, ids=FRUIT)
    query = Query(mode="hybrid", vector=TABLE["dates"], text="banana")
    if getattr(dense.backend, "builtin_bm25", False):
        hits = await variant.call(dense, "search_hits", query)
        assert {h.record.id for h in hits} >= {"banana bread", "dates"}
    else:
        with pytest.raises(UnsupportedError, match="sparse"):
            await variant.call(dense, "search_hits", query)


async def test_bad_input_names_the_problem_and_changes_nothing(variant: Variant) -> None:
    store = lc_store(variant)
    await variant.call(store, "add_texts", FRUIT[:2], ids=["a", "b"])
    with pytest.raises(TypeError, match="str"):
        await variant.call(store, "add_texts", ["ok", 42], ids=["c", "d"])
    with pytest.raises(TypeError, match="JSON"):
        await variant.call(store, "add_texts", ["ok"], [{"when": object()}], ids=["e"])
    llama = llama_store(variant, store.backend.collection_name)
    wrong = TextNode(id_="f", text="wrong size", embedding=[1.0, 2.0])
    with pytest.raises(ValueError, match="dimensions"):
        await variant.call(llama, "add", [node("dates", "g"), wrong])
    assert await variant.call(store.backend, "count") == 2


async def test_missing_collection_on_read(variant: Variant) -> None:
    with pytest.raises(CollectionNotFoundError, match="Nope"):
        store = lc_store(variant, fresh_name("Nope"), create_collection=False)
        await variant.call(store, "similarity_search", "x")


async def test_llama_writes_langchain_reads_and_back(variant: Variant) -> None:
    llama = llama_store(variant)
    await variant.call(llama, "add", [node("apple pie", "n1", "docA", year=2001),
                                      node("banana bread", "n2", "docA", year=2002)])
    lc = lc_store(variant, llama.backend.collection_name)
    docs = await variant.call(lc, "get_by_ids", ["n1", "n2"])
    assert docs == [Document(id="n1", page_content="apple pie", metadata={"year": 2001}),
                    Document(id="n2", page_content="banana bread", metadata={"year": 2002})]
    await variant.call(lc, "add_texts", ["cherry cake"], [{"year": 2003}], ids=["n3"])
    nodes = await variant.call(llama, "get_nodes", ["n3", "n1"])
    assert [(n.node_id, n.text, n.metadata) for n in nodes] == [
        ("n3", "cherry cake", {"year": 2003}), ("n1", "apple pie", {"year": 2001})]
    assert nodes[1].ref_doc_id == "docA"


async def test_llama_delete_ref_doc_removes_every_node(variant: Variant) -> None:
    llama = llama_store(variant)
    await variant.call(llama, "add", [node("apple pie", "n1", "docA"),
                                      node("apple tart", "n2", "docA"),
                                      node("dates", "n3", "docB")])
    await variant.call(llama, "delete", "docA")
    left = await variant.call(llama, "get_nodes", None, None)
    assert [n.node_id for n in left] == ["n3"]


async def test_llama_query_modes(variant: Variant) -> None:
    llama = llama_store(variant, enable_hybrid=True)
    await variant.call(llama, "add", [node(t, t) for t in FRUIT])
    dense = await variant.call(llama, "query", VectorStoreQuery(
        query_embedding=TABLE["query apple"], similarity_top_k=2))
    assert dense.ids == ["apple pie", "apple tart"]
    for mode in (VectorStoreQueryMode.SPARSE, VectorStoreQueryMode.TEXT_SEARCH,
                 VectorStoreQueryMode.HYBRID):
        result = await variant.call(llama, "query", VectorStoreQuery(
            query_embedding=TABLE["query apple"], query_str="banana", similarity_top_k=2,
            mode=mode, alpha=0.5))
        assert "banana bread" in result.ids, mode
    mmr = await variant.call(llama, "query", VectorStoreQuery(
        query_embedding=TABLE["query apple"], similarity_top_k=2,
        mode=VectorStoreQueryMode.MMR, mmr_threshold=0.0))
    assert mmr.ids[0] == "apple pie" and mmr.ids[1] != "apple tart"


async def test_sync_and_async_give_the_same_results(variant: Variant) -> None:
    if variant.is_async:
        pytest.skip("this variant has only an async client: nothing sync to compare with")
    store = lc_store(variant)
    store.add_texts(FRUIT, ids=FRUIT)
    for method, kwargs in (("similarity_search", {}),
                           ("max_marginal_relevance_search", {"lambda_mult": 0.3})):
        sync = getattr(store, method)("query apple", k=3, **kwargs)
        asynchronous = await getattr(store, "a" + method)("query apple", k=3, **kwargs)
        assert sync == asynchronous, method


@pytest.mark.parametrize("strategy", ["average_vector", "best_score", "sum_scores"])
async def test_recommend_from_stored_ids_and_vectors(variant: Variant, strategy: str) -> None:
    store = lc_store(variant)
    await variant.call(store, "add_texts", FRUIT, ids=FRUIT)
    positive_only = Query(mode="recommend", k=2, positive=["apple pie"], strategy=strategy)
    hits = await variant.call(store, "search_hits", positive_only)
    # The example itself is left out; its near-duplicate comes first.
    assert [h.record.id for h in hits][0] == "apple tart"
    with_negative = Query(mode="recommend", k=4, positive=[TABLE["apple pie"]],
                          negative=["banana bread"], strategy=strategy)
    ids = [h.record.id for h in await variant.call(store, "search_hits", with_negative)]
    assert ids[:2] == ["apple pie", "apple tart"] and ids[-1] != "apple pie"
    assert "banana bread" not in ids[:3]


async def test_discover_is_qdrant_only(variant: Variant) -> None:
    store = lc_store(variant)
    await variant.call(store, "add_texts", FRUIT, ids=FRUIT)
    query = Query(mode="discover", k=2, target=TABLE["query apple"],
                  context=[("apple tart", "banana bread")])
    if variant.name.startswith("weaviate"):
        with pytest.raises(UnsupportedError, match="discover"):
            await variant.call(store, "search_hits", query)
    else:
        hits = await variant.call(store, "search_hits", query)
        assert [h.record.id for h in hits][0] == "apple pie"


async def test_keyword_operator_is_engine_side_or_refused(variant: Variant) -> None:
    """Weaviate's BM25 index applies and/or; Qdrant's sparse search cannot, and says so."""
    llama = llama_store(variant, enable_hybrid=True)
    await variant.call(llama, "add", [node(t, t) for t in FRUIT])
    query = Query(mode="sparse", k=5, text="apple bread", operator="and")
    if getattr(llama.backend, "builtin_bm25", False):
        assert await variant.call(llama.backend, "search", query) == []
        query.operator = "or"
        hits = await variant.call(llama.backend, "search", query)
        assert {h.record.id for h in hits} == {"apple pie", "apple tart", "banana bread"}
    else:
        from embedders import SparseEncoder

        query.sparse = SparseEncoder().embed_query("apple bread")
        with pytest.raises(UnsupportedError, match="operator"):
            await variant.call(llama.backend, "search", query)


async def test_each_face_takes_the_other_frameworks_filter_form(variant: Variant) -> None:
    lc = lc_store(variant)
    await variant.call(lc, "add_texts", FRUIT, [{"n": i, "kind": "pie" if i < 2 else "other"}
                                                for i in range(5)], ids=FRUIT)
    llama = llama_store(variant, lc.backend.collection_name)
    as_dict = {"$or": [{"kind": "pie"}, {"n": {"$in": [4]}}]}
    as_llama = MetadataFilters(filters=[MetadataFilter(key="kind", value="pie"),
                                        MetadataFilter(key="n", value=[4],
                                                       operator=FilterOperator.IN)],
                               condition="or")
    expected = ["apple pie", "apple tart", "dates"]
    for flt in (as_dict, as_llama):
        docs = await variant.call(lc, "similarity_search", "query apple", k=5, filter=flt)
        assert [d.id for d in docs] == expected
        result = await variant.call(llama, "query", VectorStoreQuery(
            query_embedding=TABLE["query apple"], similarity_top_k=5, filters=flt))
        assert result.ids == expected
