"""The LlamaIndex retrievers on every backend variant, and in a RetrieverQueryEngine.

Real components: Qdrant local modes and the Weaviate server (`variant`), the real dense
model (`llama_embed_model`), FastEmbed BM25 (`sparse_encoder`), MockLLM for the engine.
"""

from __future__ import annotations

import pytest
from llama_index.core import VectorStoreIndex
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.core.vector_stores.types import (
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from rag_stores.core.query import UnsupportedError
from retrievers.llama_index import (
    BM25Retriever,
    DiscoverRetriever,
    GroupedRetriever,
    HybridRetriever,
    MMRRetriever,
    RecommendRetriever,
)
from tests.conformance import Variant, fresh_name
from tests.test_retrievers import DOCS, assert_discovered


@pytest.fixture
async def store(variant: Variant, llama_embed_model, sparse_encoder):
    """A hybrid-ready LlamaIndex store holding DOCS as nodes (node ids = DOCS keys)."""
    store = variant.llama_store(fresh_name("LRet"), enable_hybrid=True,
                                sparse_encoder=sparse_encoder)
    texts = [t for t, _ in DOCS.values()]
    vectors = llama_embed_model.get_text_embedding_batch(texts)
    nodes = [TextNode(id_=key, text=text, metadata=meta, embedding=vector)
             for (key, (text, meta)), vector in zip(DOCS.items(), vectors, strict=True)]
    await variant.call(store, "add", nodes)
    return store


def ids(nodes: list[NodeWithScore]) -> list[str]:
    return [n.node.node_id for n in nodes]


async def test_every_retriever_returns_scored_nodes(variant: Variant, store, llama_embed_model):
    common = {"vector_store": store, "embed_model": llama_embed_model, "similarity_top_k": 2}
    retrievers = [HybridRetriever(**common), BM25Retriever(**common, operator="and"),
                  MMRRetriever(**common, fetch_k=8, lambda_mult=0.9),
                  RecommendRetriever(**common, negative_texts=["dogs"]),
                  GroupedRetriever(**common, group_by="source", search_type="hybrid")]
    for retriever in retrievers:
        found = await variant.call(retriever, "retrieve", "cat mat")
        assert ids(found)[0] == "cat", type(retriever).__name__
        assert all(isinstance(n, NodeWithScore) and n.score is not None for n in found)
        node = found[0].node
        assert (node.get_content(), node.metadata) == DOCS["cat"]
    assert len(await variant.call(retrievers[1], "retrieve", "cat mat")) == 1  # "and"


async def test_hybrid_filters_and_threshold(variant: Variant, store, llama_embed_model) -> None:
    filters = MetadataFilters(filters=[MetadataFilter(key="year", value=2008,
                                                      operator=FilterOperator.GTE)])
    retriever = HybridRetriever(store, llama_embed_model, similarity_top_k=8, filters=filters,
                                alpha=0.5)
    found = await variant.call(retriever, "retrieve", "cats and kittens")
    assert found and all(n.node.metadata["year"] >= 2008 for n in found)
    assert ids(found)[0] == "kitten"
    cut = HybridRetriever(store, llama_embed_model, similarity_top_k=8, filters=filters,
                          alpha=0.5, score_threshold=found[0].score)
    assert ids(await variant.call(cut, "retrieve", "cats and kittens")) == ["kitten"]


async def test_query_bundle_embedding_is_used(variant: Variant, store) -> None:
    """A bundle that carries its embedding needs no embed model for the query itself."""
    class NoEmbedding:
        def get_query_embedding(self, text):
            raise AssertionError("the bundle's embedding should have been used")

        async def aget_query_embedding(self, text):
            raise AssertionError("the bundle's embedding should have been used")

    vector = store.backend.get(["stocks"], with_vectors=True)[0].vector \
        if not variant.is_async else (await store.backend.aget(["stocks"], with_vectors=True))[0].vector
    retriever = HybridRetriever(store, NoEmbedding(), alpha=1.0, similarity_top_k=1)
    found = await variant.call(retriever, "retrieve", QueryBundle("anything", embedding=vector))
    assert ids(found) == ["stocks"]


async def test_grouped_and_discover(variant: Variant, store, llama_embed_model) -> None:
    grouped = GroupedRetriever(store, llama_embed_model, similarity_top_k=2, group_by="source",
                               group_size=3)
    groups = await variant.call(grouped, "retrieve_groups", "kittens and cats")
    assert groups[0][0] == "pets" and len(groups) == 2
    assert all({n.node.metadata["source"] for n in nodes} == {key} for key, nodes in groups)
    discover = DiscoverRetriever(store, llama_embed_model, similarity_top_k=3,
                                 context=[("kitten", "stocks")])
    if variant.name.startswith("weaviate"):
        with pytest.raises(UnsupportedError):
            await variant.call(discover, "retrieve", "science")
        return
    found = ids(await variant.call(discover, "retrieve", "science"))
    await assert_discovered(variant, store.backend, found)


async def test_query_engine_with_mock_llm(variant: Variant, store, llama_embed_model,
                                          seeded_models) -> None:
    retriever = HybridRetriever(store, llama_embed_model, similarity_top_k=2)
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM(max_tokens=8))
    response = await variant.call(engine, "query", "Where did the cat sit?")
    assert ids(response.source_nodes)[0] == "cat"
    assert isinstance(response.response, str) and response.response


async def test_vector_store_query_mode_matches_the_retriever(variant: Variant, store,
                                                             llama_embed_model) -> None:
    """index.as_retriever(vector_store_query_mode=...) reaches the same engine search."""
    index = VectorStoreIndex.from_vector_store(store, embed_model=llama_embed_model)
    by_mode = index.as_retriever(vector_store_query_mode="hybrid", similarity_top_k=3, alpha=0.6,
                                 vector_store_kwargs={"fusion": "rrf"})
    ours = HybridRetriever(store, llama_embed_model, similarity_top_k=3, alpha=0.6, fusion="rrf")
    query = "felines on woven rugs"
    assert ids(await variant.call(by_mode, "retrieve", query)) == \
        ids(await variant.call(ours, "retrieve", query))
    # Defaults too: no alpha means the retrievers' default weighting on both paths.
    default_mode = index.as_retriever(vector_store_query_mode="hybrid", similarity_top_k=4)
    default_ours = HybridRetriever(store, llama_embed_model, similarity_top_k=4)
    found = await variant.call(default_mode, "retrieve", "wool")
    assert [n.score for n in found] == \
        [n.score for n in await variant.call(default_ours, "retrieve", "wool")]
    mmr_mode = index.as_retriever(vector_store_query_mode="mmr", similarity_top_k=2,
                                  vector_store_kwargs={"mmr_prefetch_k": 8})
    mmr = MMRRetriever(store, llama_embed_model, similarity_top_k=2, fetch_k=8)
    assert ids(await variant.call(mmr_mode, "retrieve", query)) == \
        ids(await variant.call(mmr, "retrieve", query))


def test_bad_arguments(llama_embed_model) -> None:
    from rag_stores.llama_index import QdrantVectorStore

    store = QdrantVectorStore("bad_args")
    with pytest.raises(TypeError, match="rag_stores.llama_index store"):
        HybridRetriever(object(), llama_embed_model)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Hybrid"):
        HybridRetriever(store, llama_embed_model, lambda_mult=0.3)
    with pytest.raises(ValueError, match="alpha must be in"):
        HybridRetriever(store, llama_embed_model, alpha=3)
    with pytest.raises(TypeError, match="search_type='hybrid' only"):
        GroupedRetriever(store, llama_embed_model, group_by="x", alpha=0.5)
    with pytest.raises(ValueError, match="needs a sparse encoder"):
        BM25Retriever(store).retrieve("cat")
    store.close()
