"""Hybrid fusion settings, reranking, on every engine: each setting means the same thing.

The check that can fail: for every fusion setting, the hybrid hits an engine returns (ids and
scores) are what `rag_stores.core.fusion` defines over that engine's own two legs (its dense
search and its BM25 search, each `prefetch_limit` deep), whether the engine fused them
server-side (Qdrant formula queries, Weaviate's hybrid) or the backend fused them here.
Real engines: Qdrant local mode, Qdrant Edge, a Qdrant 1.18 server, the Weaviate server;
the real dense model and FastEmbed BM25.
"""

from __future__ import annotations

import math

import pytest
from langchain_core.documents import Document

from embedders.rerank import Reranker
from rag_stores.core import fusion as f
from rag_stores.core import strategies as s
from rag_stores.core.query import Query
from rag_stores.core.records import Hit, Record
from retrievers.langchain import BM25Retriever, HybridRetriever, RerankCompressor
from retrievers.llama_index import HybridRetriever as LlamaHybrid
from retrievers.llama_index import RerankPostprocessor
from tests.conformance import Variant, fresh_name

ENGINES = ["qdrant-memory", "qdrant-edge", "qdrant-server", "qdrant-server-grpc-async",
           "weaviate", "weaviate-async"]
engines = pytest.mark.parametrize("variant", ENGINES, indirect=True)

WORDS = ["library", "catalog", "index", "retrieval", "search", "citation", "journal",
         "abstract", "thesaurus", "query"]
# 30 documents whose words overlap unevenly, so legs, depths and weights all matter.
TEXTS = {f"d{i}": " ".join(WORDS[(i * j) % len(WORDS)] for j in range(1, 2 + i % 5))
         + f" document {i} about {'information systems' if i % 3 else 'books and readers'}"
         for i in range(30)}
QUERY = "library catalog search for books"

SETTINGS = [  # (fusion, alpha, rrf_k, prefetch_limit)
    ("rrf", None, None, None),
    ("rrf", 0.3, 5, 8),
    ("ranked", 0.5, 60, 12),
    ("dbsf", None, None, None),
    ("dbsf", 0.8, None, 6),
    ("convex", 0.6, None, None),
    ("relative_score", 0.2, None, 7),
]


@pytest.fixture
async def store(variant: Variant, lc_embeddings, sparse_encoder):
    store = variant.lc_store(lc_embeddings, fresh_name("Fus"), retrieval_mode="hybrid",
                             sparse_embedding=sparse_encoder)
    await variant.call(store, "add_texts", list(TEXTS.values()), ids=list(TEXTS))
    return store


async def legs(variant: Variant, store, depth: int) -> tuple[list[Hit], list[Hit]]:
    """The engine's own dense and BM25 rankings, `depth` deep."""
    dense = await variant.call(store, "search_hits", Query(
        mode="dense", k=depth, vector=store.embedding.embed_query(QUERY), text=QUERY))
    sparse = store.sparse_embedding.embed_query(QUERY) if store.sparse_embedding else None
    keyword = await variant.call(store, "search_hits", Query(
        mode="sparse", k=depth, sparse=sparse, text=QUERY))
    return dense, keyword


def assert_fused(hits: list[Document], expected: list[Hit], k: int) -> None:
    """The returned documents are a best-k of `expected`, each with its expected score."""
    want = {h.record.id: h.score for h in expected}
    got = [(d.id, d.metadata["score"]) for d in hits]
    assert len(got) == min(k, len(want))
    for doc_id, score in got:
        assert doc_id in want, doc_id
        assert math.isclose(score, want[doc_id], rel_tol=1e-4, abs_tol=1e-6), (doc_id, score,
                                                                               want[doc_id])
    assert [sc for _, sc in got] == sorted((sc for _, sc in got), reverse=True)
    left_out = [sc for i, sc in want.items() if i not in dict(got)]
    assert not left_out or max(left_out) <= got[-1][1] + 1e-6


@engines
@pytest.mark.parametrize("setting", SETTINGS, ids=lambda x: "-".join(map(str, x)))
async def test_fused_scores_follow_the_definition(variant: Variant, store, setting) -> None:
    fusion, alpha, rrf_k, prefetch = setting
    retriever = HybridRetriever(vectorstore=store, k=6, fusion=fusion, alpha=alpha, rrf_k=rrf_k,
                                prefetch_limit=prefetch, include_score=True)
    hybrid = s.Hybrid(fusion=fusion, alpha=alpha, rrf_k=rrf_k, prefetch_limit=prefetch)
    # prefetch None: the engine's own depth (Weaviate: max(100, k) per leg; here: everything)
    depth = f.leg_depth(prefetch, 6) if prefetch is not None else 100
    dense, keyword = await legs(variant, store, depth)
    expected = f.fuse(dense, keyword, fusion=fusion, alpha=hybrid.effective_alpha,
                      rrf_k=hybrid.effective_rrf_k)
    assert_fused(await variant.call(retriever, "invoke", QUERY), expected, 6)


@engines
async def test_settings_change_the_ranking(variant: Variant, store) -> None:
    def run(**settings):
        return variant.call(HybridRetriever(vectorstore=store, include_score=True,
                                            **{"k": 8, **settings}), "invoke", QUERY)

    dense, keyword = await legs(variant, store, 30)
    # alpha = 1: the dense order; alpha = 0: the keyword order first.
    for fusion in ("rrf", "dbsf", "convex"):
        assert [d.id for d in await run(fusion=fusion, alpha=1.0)] == \
            [h.record.id for h in dense[:8]], fusion
        top = [d.id for d in await run(fusion=fusion, alpha=0.0)][:3]
        by_id = {h.record.id: h.score for h in keyword}  # ties may come in either order
        assert [by_id[i] for i in top] == pytest.approx([h.score for h in keyword[:3]]), fusion
    # prefetch_limit: every hit comes from the top of one leg or the other.
    two = await run(prefetch_limit=2, k=4)
    allowed = {h.record.id for h in dense[:4] + keyword[:4]}  # depth = max(2, k)
    assert {d.id for d in two} <= allowed and len(two) == 4
    # rrf_k: a small constant favours top ranks, a large one evens them out.
    small, large = await run(fusion="rrf", rrf_k=1), await run(fusion="rrf", rrf_k=1000)
    assert small[0].metadata["score"] > 10 * large[0].metadata["score"]


@engines
async def test_default_hybrid_is_the_measured_one(variant: Variant, store) -> None:
    default = HybridRetriever(vectorstore=store, k=5, include_score=True)
    explicit = HybridRetriever(vectorstore=store, k=5, include_score=True,
                               fusion=s.DEFAULT_FUSION, alpha=s.DEFAULT_ALPHA,
                               prefetch_limit=s.DEFAULT_PREFETCH_LIMIT)
    got = await variant.call(default, "invoke", QUERY)
    same = await variant.call(explicit, "invoke", QUERY)
    assert [d.id for d in got] == [d.id for d in same]
    assert [d.metadata["score"] for d in got] == pytest.approx(
        [d.metadata["score"] for d in same], rel=1e-5)
    # The older name of prefetch_limit still works, per call too.
    older = await variant.call(default, "invoke", QUERY, prefetch_k=s.DEFAULT_PREFETCH_LIMIT)
    assert [d.id for d in older] == [d.id for d in got]


@engines
async def test_llama_index_face_fuses_the_same(variant: Variant, store, llama_embed_model) -> None:
    from rag_stores.llama_index import BackendLlamaStore

    llama = BackendLlamaStore(store.backend, enable_hybrid=True,
                              sparse_encoder=store.sparse_embedding)
    for fusion, alpha, rrf_k, prefetch in SETTINGS[:5]:
        lc = HybridRetriever(vectorstore=store, k=5, fusion=fusion, alpha=alpha, rrf_k=rrf_k,
                             prefetch_limit=prefetch, include_score=True)
        li = LlamaHybrid(llama, llama_embed_model, similarity_top_k=5, fusion=fusion,
                         alpha=alpha, rrf_k=rrf_k, prefetch_limit=prefetch)
        docs = await variant.call(lc, "invoke", QUERY)
        nodes = await variant.call(li, "retrieve", QUERY)
        assert [n.node.node_id for n in nodes] == [d.id for d in docs]
        assert [n.score for n in nodes] == pytest.approx([d.metadata["score"] for d in docs],
                                                         rel=1e-4)


def word_overlap(query: str, texts: list[str]) -> list[float]:
    """A small deterministic scorer: shared words, then shorter texts first."""
    q = set(query.lower().split())
    return [len(q & set(t.lower().split())) - len(t) / 1000 for t in texts]


@engines
async def test_reranker_option_reorders_candidates(variant: Variant, store) -> None:
    plain = await variant.call(HybridRetriever(vectorstore=store, k=10), "invoke", QUERY)
    reranked = await variant.call(HybridRetriever(
        vectorstore=store, k=3, reranker=word_overlap, rerank_candidates=10, include_score=True),
        "invoke", QUERY)
    scores = word_overlap(QUERY, [d.page_content for d in plain])
    best = sorted(range(10), key=lambda i: -scores[i])[:3]
    assert [d.id for d in reranked] == [plain[i].id for i in best]
    assert [d.metadata["score"] for d in reranked] == pytest.approx([scores[i] for i in best])
    bm25 = await variant.call(BM25Retriever(vectorstore=store, k=2, reranker=Reranker(
        word_overlap), rerank_candidates=5), "invoke", QUERY)
    assert len(bm25) == 2


def test_rerank_components_and_errors() -> None:
    docs = [Document(id=str(i), page_content=t) for i, t in enumerate(
        ["books", "library catalog search", "catalog", "search for books in the library"])]
    kept = RerankCompressor(reranker=word_overlap, top_n=2).compress_documents(docs, QUERY)
    assert [d.id for d in kept] == ["3", "1"] and kept[0].metadata["rerank_score"] > 3
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    nodes = [NodeWithScore(node=TextNode(id_=d.id, text=d.page_content), score=0.0) for d in docs]
    post = RerankPostprocessor(reranker=Reranker(word_overlap), top_n=3)
    out = post.postprocess_nodes(nodes, QueryBundle(QUERY))
    assert [n.node.node_id for n in out] == ["3", "1", "0"]
    with pytest.raises(ValueError, match="returned 1 scores for 2 texts"):
        Reranker(lambda q, t: [1.0]).score("q", ["a", "b"])
    with pytest.raises(ValueError, match="reranker must be"):
        s.Hybrid(reranker=42)
    with pytest.raises(ValueError, match="rrf_k is the constant"):
        s.Hybrid(fusion="dbsf", rrf_k=10)
    with pytest.raises(ValueError, match="fusion must be one of"):
        s.Hybrid(fusion="borda")
    with pytest.raises(ValueError, match="prefetch_limit must be"):
        s.Hybrid(prefetch_limit=0)
    with pytest.raises(ValueError, match="grouped search does not rerank"):
        s.Grouped(group_by="source", search=s.Hybrid(reranker=word_overlap))


def test_cross_encoder_follows_model_resolution(tmp_path, monkeypatch) -> None:
    """The TextCrossEncoder path: an explicit folder must hold the model file; without a
    seeded folder or the hub, the error says what to do (no model ships on PyPI)."""
    from embedders import ModelNotAvailableError

    with pytest.raises(FileNotFoundError, match="onnx/model.onnx"):
        Reranker(model_path=tmp_path).score("q", ["a"])
    monkeypatch.setenv("RAG_STORES_MODELS", str(tmp_path / "seeded"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError, match="model_path="):
        Reranker(cache_dir=str(tmp_path / "cache"), local_files_only=True).score("q", ["a"])


def test_client_side_fusion_formulas() -> None:
    def hits(pairs):
        return [Hit(Record(id=i, text=i), sc) for i, sc in pairs]

    dense, keyword = hits([("a", 0.9), ("b", 0.5), ("c", 0.1)]), hits([("c", 4.0), ("d", 2.0)])
    rrf = {h.record.id: h.score for h in f.fuse(dense, keyword, fusion="rrf", alpha=0.8, rrf_k=10)}
    assert rrf == pytest.approx({"a": 0.8 / 10, "b": 0.8 / 11, "c": 0.8 / 12 + 0.2 / 10,
                                 "d": 0.2 / 11})
    convex = {h.record.id: h.score for h in f.fuse(dense, keyword, fusion="convex", alpha=0.5)}
    assert convex == pytest.approx({"a": 0.5, "b": 0.25, "c": 0.5, "d": 0.0})
    dbsf = f.fuse(dense, keyword, fusion="dbsf")
    sd = math.sqrt(((0.9 - 0.5) ** 2 + (0.1 - 0.5) ** 2) / 2)
    assert dbsf[0].record.id == "c" or dbsf[0].score == pytest.approx(
        0.5 * (0.9 - (0.5 - 3 * sd)) / (6 * sd))
    assert f.normalise("dbsf", [3.0]) == [0.5] and f.normalise("convex", [2.0, 2.0]) == [1, 1]


@engines
async def test_store_level_hybrid_uses_the_same_settings(variant: Variant, store,
                                                         llama_embed_model) -> None:
    """similarity_search on a hybrid store and LlamaIndex's HYBRID query mode fuse as the
    retrievers do, defaults and per-call settings alike."""
    from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode

    from rag_stores.llama_index import BackendLlamaStore

    for settings in ({}, {"fusion": "rrf", "rrf_k": 5, "alpha": 0.3, "prefetch_k": 9}):
        pairs = await variant.call(store, "similarity_search_with_score", QUERY, k=5, **settings)
        docs = await variant.call(HybridRetriever(vectorstore=store, k=5, include_score=True,
                                                  **settings), "invoke", QUERY)
        assert [d.id for d, _ in pairs] == [d.id for d in docs]
        assert [sc for _, sc in pairs] == pytest.approx([d.metadata["score"] for d in docs],
                                                        rel=1e-4)
        llama = BackendLlamaStore(store.backend, enable_hybrid=True,
                                  sparse_encoder=store.sparse_embedding)
        extra = {k: v for k, v in settings.items() if k != "alpha"}
        result = await variant.call(llama, "query", VectorStoreQuery(
            query_str=QUERY, query_embedding=llama_embed_model.get_query_embedding(QUERY),
            similarity_top_k=5, mode=VectorStoreQueryMode.HYBRID, alpha=settings.get("alpha")),
            **extra)
        assert [n.node_id for n in result.nodes] == [d.id for d in docs]
        assert result.similarities == pytest.approx([d.metadata["score"] for d in docs], rel=1e-4)
