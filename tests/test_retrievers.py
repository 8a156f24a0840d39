"""Retrieval strategies through the LangChain retrievers, on every backend variant.

Real components: Qdrant local modes and the Weaviate server (the `variant` fixture), the
real dense model (`lc_embeddings`) and FastEmbed BM25 (`sparse_encoder`), hand-made data.
Each test runs sync or async as its variant says (`variant.call`: invoke / ainvoke).
"""

from __future__ import annotations

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.language_models import FakeListLLM
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_core.vectorstores import VectorStoreRetriever

from rag_stores.core import strategies as s
from rag_stores.core.query import Query, UnsupportedError, text_only
from retrievers.langchain import (
    BM25Retriever,
    DiscoverRetriever,
    GroupedRetriever,
    HybridRetriever,
    MMRRetriever,
    RecommendRetriever,
)
from tests.conformance import Variant, fresh_name
from tests.test_conformance import FRUIT, TableEmbeddings

DOCS = {
    "cat": ("The cat sat on the mat", {"source": "pets", "year": 2001}),
    "dog": ("Dogs are loyal companions for families", {"source": "pets", "year": 2005}),
    "kitten": ("Kittens love chasing balls of yarn", {"source": "pets", "year": 2010}),
    "qubit": ("Quantum computers store information in qubits", {"source": "physics", "year": 2019}),
    "einstein": ("Einstein's relativity changed physics forever", {"source": "physics", "year": 1915}),
    "stocks": ("Stock markets fell sharply today", {"source": "finance", "year": 2020}),
    "rates": ("Central banks raise interest rates to fight inflation", {"source": "finance", "year": 2022}),
    "rug": ("The mat was woven from wool by hand", {"source": "crafts", "year": 1990}),
}


@pytest.fixture
async def store(variant: Variant, lc_embeddings, sparse_encoder):
    """A hybrid-ready store holding DOCS (ids are the DOCS keys)."""
    if variant.name.endswith("-cluster"):
        pytest.skip("keyword scores on a sharded collection come from per-shard statistics "
                    "(IDF, lengths), so these expected orders do not hold; the conformance "
                    "suite covers clusters")
    store = variant.lc_store(lc_embeddings, fresh_name("Ret"), retrieval_mode="hybrid",
                             sparse_embedding=sparse_encoder)
    await variant.call(store, "add_texts", [t for t, _ in DOCS.values()],
                       [m for _, m in DOCS.values()], ids=list(DOCS))
    return store


def ids(docs: list[Document]) -> list[str | None]:
    return [d.id for d in docs]


async def test_hybrid_finds_by_meaning_and_keywords(variant: Variant, store) -> None:
    retriever = HybridRetriever(vectorstore=store, k=3)
    docs = await variant.call(retriever, "invoke", "a cat on a mat")
    assert len(docs) == 3 and docs[0].id == "cat"
    # Stored documents come back exactly: id, text, metadata (no score unless asked).
    assert docs[0] == Document(id="cat", page_content=DOCS["cat"][0], metadata=DOCS["cat"][1])


async def test_hybrid_alpha_ends_are_dense_and_keywords(variant: Variant, store) -> None:
    query = "felines and their woven rugs"
    dense = await variant.call(store, "similarity_search_by_vector",
                               store.embedding.embed_query(query), k=3)
    only_dense = await variant.call(HybridRetriever(vectorstore=store, k=3, alpha=1.0), "invoke", query)
    assert ids(only_dense) == ids(dense)
    keywords = await variant.call(BM25Retriever(vectorstore=store, k=3), "invoke", "woven mat")
    only_keywords = await variant.call(HybridRetriever(vectorstore=store, k=3, alpha=0.0),
                                       "invoke", "woven mat")
    assert keywords and ids(only_keywords)[:len(keywords)] == ids(keywords)


async def test_hybrid_fusions_filter_threshold_and_per_call_options(variant: Variant, store) -> None:
    for fusion in ("rrf", "dbsf"):
        retriever = HybridRetriever(vectorstore=store, k=4, fusion=fusion, alpha=None,
                                    filter={"source": "pets"}, include_score=True)
        docs = await variant.call(retriever, "invoke", "cat on the mat")
        assert docs[0].id == "cat"
        assert {d.metadata["source"] for d in docs} == {"pets"}
        scores = [d.metadata["score"] for d in docs]
        assert scores == sorted(scores, reverse=True)
        # A threshold at the second score keeps the first two.
        kept = await variant.call(retriever, "invoke", "cat on the mat", score_threshold=scores[1])
        assert ids(kept) == ids(docs)[:2]
    one = await variant.call(HybridRetriever(vectorstore=store), "invoke", "cat", k=1,
                             filter={"year": {"$gte": 2008}}, prefetch_k=8)
    assert len(one) == 1 and one[0].metadata["year"] >= 2008
    with pytest.raises(TypeError, match="lambda_mult"):
        await variant.call(HybridRetriever(vectorstore=store), "invoke", "cat", lambda_mult=0.5)


async def test_bm25_ranks_by_terms_with_stemming_and_operator(variant: Variant, store) -> None:
    retriever = BM25Retriever(vectorstore=store, k=5)
    assert ids(await variant.call(retriever, "invoke", "yarn"))[:1] == ["kitten"]
    either = ids(await variant.call(retriever, "invoke", "cat mat"))
    assert set(either) == {"cat", "rug"}
    both = ids(await variant.call(retriever, "invoke", "cat mat", operator="and"))
    assert both == ["cat"]
    assert await variant.call(retriever, "invoke", "zeppelin") == []
    if variant.name.startswith("qdrant"):  # FastEmbed BM25 stems English ("chased" ~ "chasing")
        assert ids(await variant.call(retriever, "invoke", "chased"))[:1] == ["kitten"]


async def test_mmr_trades_relevance_for_diversity(variant: Variant) -> None:
    store = variant.lc_store(TableEmbeddings(), fresh_name("Mmr"))
    await variant.call(store, "add_texts", FRUIT, ids=FRUIT)
    relevant = MMRRetriever(vectorstore=store, k=2, fetch_k=5, lambda_mult=1.0)
    assert ids(await variant.call(relevant, "invoke", "query apple")) == ["apple pie", "apple tart"]
    diverse = await variant.call(relevant, "invoke", "query apple", lambda_mult=0.0)
    assert diverse[0].id == "apple pie" and diverse[1].id != "apple tart"


async def test_recommend_from_ids_texts_and_vectors(variant: Variant, store) -> None:
    by_id = RecommendRetriever(vectorstore=store, k=2, positive=["kitten"], use_query=False)
    found = ids(await variant.call(by_id, "invoke", ""))
    assert "kitten" not in found and "cat" in found  # examples given by id are left out
    vector = store.embedding.embed_query("stock markets and interest rates")
    by_vector = RecommendRetriever(vectorstore=store, k=2, positive=[vector], use_query=False)
    assert set(ids(await variant.call(by_vector, "invoke", ""))) == {"stocks", "rates"}
    for strategy in ("average_vector", "best_score", "sum_scores"):
        steer = RecommendRetriever(vectorstore=store, k=3, strategy=strategy,
                                   positive_texts=["pets at home"], negative_texts=["dogs"])
        got = ids(await variant.call(steer, "invoke", "small furry animals"))
        assert got[0] in ("cat", "kitten"), strategy
        assert "dog" not in got[:2], strategy
    with pytest.raises(ValueError, match="recommend needs examples"):
        await variant.call(RecommendRetriever(vectorstore=store, use_query=False), "invoke", "x")


async def assert_discovered(variant: Variant, backend, found: list[str]) -> None:
    """Discovery with the pair (kitten, stocks) ranks first what lies on kitten's side."""
    records = await variant.call(backend, "get", [*found, "kitten", "stocks"], with_vectors=True)
    vec = {r.id: np.asarray(r.vector) for r in records}
    assert len(found) == 3 and not {"kitten", "stocks"} & set(found)
    positive_side = [bool(vec[i] @ vec["kitten"] > vec[i] @ vec["stocks"]) for i in found]
    assert positive_side[0] and positive_side == sorted(positive_side, reverse=True)


async def test_discover_on_qdrant_unsupported_on_weaviate(variant: Variant, store) -> None:
    retriever = DiscoverRetriever(vectorstore=store, k=3, context=[("kitten", "stocks")])
    if variant.name.startswith("weaviate"):
        with pytest.raises(UnsupportedError, match="discover"):
            await variant.call(retriever, "invoke", "science")
        return
    found = ids(await variant.call(retriever, "invoke", "science"))
    await assert_discovered(variant, store.backend, found)
    context_only = DiscoverRetriever(vectorstore=store, k=2, context_only=True,
                                     context_texts=[("physics research", "money")])
    assert len(await variant.call(context_only, "invoke", "")) == 2
    with pytest.raises(ValueError, match="context search needs context pairs"):
        await variant.call(DiscoverRetriever(vectorstore=store, context_only=True), "invoke", "x")


@pytest.mark.parametrize("search_type", ["similarity", "bm25", "hybrid"])
async def test_grouped_by_metadata_field(variant: Variant, store, search_type: str) -> None:
    query = "cat and kitten on a mat" if search_type != "bm25" else "cat kittens mat"
    retriever = GroupedRetriever(vectorstore=store, k=2, group_by="source", group_size=2,
                                 search_type=search_type)
    groups = await variant.call(retriever, "get_groups", query)
    assert [key for key, _ in groups][:1] == ["pets"] and len(groups) <= 2
    for key, docs in groups:
        assert 1 <= len(docs) <= 2 and {d.metadata["source"] for d in docs} == {key}
    flat = await variant.call(retriever, "invoke", query)
    assert ids(flat) == [d.id for _, docs in groups for d in docs]
    one_each = await variant.call(retriever, "invoke", query, group_size=1, k=3)
    sources = [d.metadata["source"] for d in one_each]
    assert len(sources) == len(set(sources)) <= 3


def test_as_retriever_reaches_the_strategies(lc_embeddings, sparse_encoder) -> None:
    from rag_stores.langchain import QdrantVectorStore

    with QdrantVectorStore(lc_embeddings, "as_retriever", retrieval_mode="hybrid",
                           sparse_embedding=sparse_encoder) as store:
        store.add_texts([t for t, _ in DOCS.values()], [m for _, m in DOCS.values()], ids=list(DOCS))
        hybrid = store.as_retriever(search_type="hybrid", search_kwargs={"k": 2, "alpha": 0.5},
                                    tags=["mine"])
        assert isinstance(hybrid, HybridRetriever) and hybrid.alpha == 0.5 and hybrid.tags == ["mine"]
        assert ids(hybrid.invoke("cat on the mat"))[0] == "cat"
        assert isinstance(store.as_retriever(search_type="bm25"), BM25Retriever)
        grouped = store.as_retriever(search_type="grouped", search_kwargs={"group_by": "source"})
        assert isinstance(grouped, GroupedRetriever)
        assert isinstance(store.as_retriever(search_type="recommend"), RecommendRetriever)
        assert isinstance(store.as_retriever(search_type="discover"), DiscoverRetriever)
        assert isinstance(store.as_retriever(), VectorStoreRetriever)
        mmr = store.as_retriever(search_type="mmr", search_kwargs={"k": 2})
        assert isinstance(mmr, VectorStoreRetriever) and len(mmr.invoke("cat")) == 2
        with pytest.raises(ValueError, match="search_type"):
            store.as_retriever(search_type="nonsense")


def test_lcel_composition(lc_embeddings, sparse_encoder) -> None:
    from rag_stores.langchain import QdrantVectorStore

    with QdrantVectorStore(lc_embeddings, "lcel", retrieval_mode="hybrid",
                           sparse_embedding=sparse_encoder) as store:
        store.add_texts([t for t, _ in DOCS.values()], ids=list(DOCS))
        retriever = HybridRetriever(vectorstore=store, k=2)
        seen: list[str] = []

        def context(docs: list[Document]) -> str:
            seen.append(docs[0].page_content)
            return "\n".join(d.page_content for d in docs)

        prompt = ChatPromptTemplate.from_template("Context: {context}\nQuestion: {question}")
        chain = ({"context": retriever | RunnableLambda(context), "question": RunnablePassthrough()}
                 | prompt | FakeListLLM(responses=["a cat"]) | StrOutputParser())
        assert chain.invoke("where did the cat sit?") == "a cat"
        assert seen == [DOCS["cat"][0]]
        batch = retriever.batch(["cat", "interest rates"])
        assert [b[0].id for b in batch] == ["cat", "rates"]


def test_bad_settings_fail_at_construction(lc_embeddings) -> None:
    from pydantic import ValidationError

    from rag_stores.langchain import QdrantVectorStore

    with QdrantVectorStore(lc_embeddings, "bad") as store:
        with pytest.raises(ValidationError, match="alpha must be in"):
            HybridRetriever(vectorstore=store, alpha=1.5)
        with pytest.raises(ValidationError, match="fusion"):
            HybridRetriever(vectorstore=store, fusion="max")
        with pytest.raises(ValidationError, match="k must be an int >= 1"):
            MMRRetriever(vectorstore=store, k=0)
        with pytest.raises(ValidationError, match="group_by must name a metadata key"):
            GroupedRetriever(vectorstore=store, group_by="")
        with pytest.raises(ValidationError, match="search_type='hybrid' only"):
            GroupedRetriever(vectorstore=store, group_by="source", alpha=0.3)
        with pytest.raises(ValidationError, match="operator"):
            BM25Retriever(vectorstore=store, operator="xor")
        with pytest.raises(ValidationError, match="strategy"):
            RecommendRetriever(vectorstore=store, strategy="best")
        with pytest.raises(ValidationError, match="positive"):
            RecommendRetriever(vectorstore=store, positive=[{"id": 1}])
        with pytest.raises(ValidationError):  # not a VectorStore at all
            HybridRetriever(vectorstore=object())
        from langchain_core.vectorstores import InMemoryVectorStore

        with pytest.raises(ValidationError, match="vectorstore must be a rag-stores LangChain "
                                                  "store.*got InMemoryVectorStore"):
            HybridRetriever(vectorstore=InMemoryVectorStore(lc_embeddings))
        # A dense-only Qdrant store has no sparse encoder for keywords: said plainly.
        with pytest.raises(ValueError, match="needs a sparse encoder"):
            BM25Retriever(vectorstore=store).invoke("cat")


def test_strategy_plans_are_engine_free() -> None:
    """A plan only yields steps; any engine answering them can run it."""
    plan = s.Hybrid(k=2, alpha=0.3).plan("hello")
    assert next(plan) == ("dense", "hello")
    assert plan.send([1.0, 0.0]) == ("sparse", "hello")
    kind, query = plan.send(None)
    assert kind == "search" and (query.mode, query.k, query.alpha, query.vector) == \
        ("hybrid", 2, 0.3, [1.0, 0.0])
    with pytest.raises(StopIteration) as stop:
        plan.send(["hits"])
    assert stop.value.value == ["hits"]
    with pytest.raises(TypeError, match="has no option"):
        s.MMR().with_options(alpha=0.5)


def test_query_properties_reach_the_query_and_only_text_is_portable() -> None:
    for strategy in (s.BM25(query_properties=["text", "title^2"]),
                     s.Hybrid(query_properties=["text", "title^2"])):
        plan = strategy.plan("zebra")
        step = next(plan)
        while step[0] != "search":
            step = plan.send([1.0, 0.0] if step[0] == "dense" else None)
        assert step[1].query_properties == ["text", "title^2"], type(strategy).__name__
    assert next(s.BM25().plan("x")) == ("sparse", "x")
    for bad in ("title", [], ["^3"]):
        with pytest.raises(ValueError, match="query_properties must be"):
            s.BM25(query_properties=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="query_properties must be"):
            s.Hybrid(query_properties=bad)  # type: ignore[arg-type]
    # What an engine with one keyword index of the text (Qdrant) checks.
    for fields in (None, ["text"], ["text^2"]):
        text_only(Query(mode="sparse", text="x", query_properties=fields), "Qdrant")
    text_only(Query(mode="dense", vector=[1.0], query_properties=["title"]), "Qdrant")
    for mode in ("sparse", "hybrid"):
        with pytest.raises(UnsupportedError, match=r"Qdrant.*\['title\^2'\]"):
            text_only(Query(mode=mode, text="x", query_properties=["text", "title^2"]), "Qdrant")


TITLED = {  # the word "zebra" is in one text and in another's title
    "story": ("A story about a zebra", {"title": "Savanna life"}),
    "herd": ("Notes on grazing animals", {"title": "The zebra herd"}),
    "bread": ("Bread recipes", {"title": "Baking"}),
}


async def test_query_properties_reach_weaviate_from_both_faces(
        weaviate_client, weaviate_async_client, lc_embeddings, llama_embed_model) -> None:
    from rag_stores.langchain import WeaviateVectorStore
    from rag_stores.llama_index import WeaviateVectorStore as LlamaWeaviateStore
    from retrievers import llama_index as li

    name = fresh_name("Qp")
    clients = {"client": weaviate_client, "async_client": weaviate_async_client}
    store = WeaviateVectorStore(lc_embeddings, name, searchable_keys=["title"], **clients)
    try:
        store.add_texts([t for t, _ in TITLED.values()], [m for _, m in TITLED.values()],
                        ids=list(TITLED))
        bm25 = BM25Retriever(vectorstore=store, k=3)
        assert ids(bm25.invoke("zebra")) == ["story"]
        assert ids(bm25.invoke("zebra", query_properties=["title"])) == ["herd"]
        titled = BM25Retriever(vectorstore=store, k=3, query_properties=["text", "title^5"])
        assert ids(titled.invoke("zebra")) == ["herd", "story"]
        assert ids(await titled.ainvoke("zebra")) == ["herd", "story"]
        hybrid = HybridRetriever(vectorstore=store, k=1, alpha=0.0, query_properties=["title"])
        assert ids(hybrid.invoke("zebra")) == ["herd"]
        via = store.as_retriever(search_type="bm25", search_kwargs={"query_properties": ["title"]})
        assert ids(via.invoke("zebra")) == ["herd"]
        with pytest.raises(ValueError, match="'author'.*searchable_keys"):
            bm25.invoke("zebra", query_properties=["author"])
        # LlamaIndex reads the same collection and layout.
        lstore = LlamaWeaviateStore(name, searchable_keys=["title"], **clients)
        common = {"vector_store": lstore, "embed_model": llama_embed_model, "similarity_top_k": 3}
        lbm25 = li.BM25Retriever(**common, query_properties=["title"])
        assert [n.node.node_id for n in lbm25.retrieve("zebra")] == ["herd"]
        assert [n.node.node_id for n in await lbm25.aretrieve("zebra")] == ["herd"]
        lhybrid = li.HybridRetriever(**common, alpha=0.0, query_properties=["text", "title^5"])
        assert [n.node.node_id for n in lhybrid.retrieve("zebra")][:2] == ["herd", "story"]
        with pytest.raises(ValueError, match="query_properties must be"):
            li.BM25Retriever(**common, query_properties="title")
    finally:
        store.backend.drop()
