"""Qdrant and Weaviate agree: exact search on the same vectors gives the same ids in the
same order, for the same queries and filters (Qdrant local mode searches exhaustively, and so
does Qdrant Edge below its EXACT_BELOW; Weaviate uses its `flat` index, also exhaustive)."""

from __future__ import annotations

import random

import pytest
from qdrant_client import QdrantClient

from rag_stores.backends.qdrant import QdrantBackend
from rag_stores.backends.weaviate import WeaviateBackend
from rag_stores.core.filters import from_dict, from_llama
from rag_stores.core.query import Query, UnsupportedError
from rag_stores.core.records import Record
from tests.conformance import fresh_name
from tests.filter_cases import CASES, DATASET

DIM = 16


def _vector(rng: random.Random) -> list[float]:
    return [rng.gauss(0.0, 1.0) for _ in range(DIM)]


@pytest.fixture(scope="module")
def engines(weaviate_server, qdrant_server):
    rng = random.Random(7)
    # The filter dataset, ten times over with varied ids, each with a random vector.
    records = [Record(id=f"{rid}-{copy}", text=text, metadata=dict(meta), ref_doc_id=ref,
                      vector=_vector(rng))
               for copy in range(10) for rid, text, meta, ref in DATASET]
    qdrant = QdrantBackend("parity", client=QdrantClient(":memory:"))
    weaviate_client = weaviate_server.connect()
    weaviate = WeaviateBackend(fresh_name("Parity"), client=weaviate_client, index="flat")
    server = QdrantBackend(fresh_name("parity"), **qdrant_server.connect_kwargs(), exact=True)
    edge = QdrantBackend("parity", engine="edge")
    for backend in (qdrant, weaviate, server, edge):
        backend.ensure_collection(DIM, False)
        backend.upsert(records)
    queries = [_vector(rng) for _ in range(10)]
    yield qdrant, weaviate, server, edge, queries
    server.drop()
    server.close()
    edge.close()
    qdrant.client.close()
    weaviate_client.close()


def _ids(backend, query: Query) -> list[str]:
    return [h.record.id for h in backend.search(query)]


def test_unfiltered_exact_search_agrees(engines) -> None:
    qdrant, weaviate, server, edge, queries = engines
    for vector in queries:
        query = Query(k=15, vector=vector)
        assert _ids(qdrant, query) == _ids(weaviate, query) == _ids(server, query) \
            == _ids(edge, query)
        scores_q = [h.score for h in qdrant.search(query)]
        scores_w = [h.score for h in weaviate.search(query)]
        scores_s = [h.score for h in server.search(query)]
        assert scores_q == pytest.approx(scores_w, abs=1e-4)  # both cosine similarity
        assert scores_q == pytest.approx(scores_s, abs=1e-4)
        assert scores_q == pytest.approx([h.score for h in edge.search(query)], abs=1e-4)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_filtered_exact_search_agrees(engines, case) -> None:
    qdrant, weaviate, server, edge, queries = engines
    node = from_dict(case.langchain) if case.langchain is not None else from_llama(case.llama)
    for vector in queries[:3]:
        query = Query(k=12, vector=vector, filter=node)
        if case.name.startswith("text_match"):  # the tested server predates MatchSubstring
            assert _ids(qdrant, query) == _ids(weaviate, query) == _ids(edge, query)
            with pytest.raises(UnsupportedError, match="MatchSubstring"):
                server.search(query)
            continue
        assert _ids(qdrant, query) == _ids(weaviate, query) == _ids(server, query) \
            == _ids(edge, query)


def test_bm25_cannot_agree_exactly_but_finds_the_same_rare_term(engines) -> None:
    """BM25 scores differ by design: Qdrant scores FastEmbed's client-side tokens (English
    stemming, stopwords removed) with its IDF modifier, Weaviate tokenises and scores on the
    server (no stemming, its own k1/b and length statistics). Orders of near ties may differ,
    so only what both must agree on is checked: the documents holding a rare word come first."""
    qdrant, weaviate, _, _, _ = engines
    # Weaviate ranks from the query text; Qdrant from the query's sparse vector.
    from embedders import SparseEncoder

    sparse = SparseEncoder()
    assert qdrant.has_sparse() is False  # this collection is dense-only on Qdrant
    sparse_backend = QdrantBackend("parity-bm25", client=QdrantClient(":memory:"))
    records = [Record(id=rid, text=text, metadata={}, vector=[1.0] * DIM, sparse=vec)
               for (rid, text, _, _), vec in zip(DATASET, sparse.embed_documents(
                   [d[1] for d in DATASET]), strict=True)]
    sparse_backend.ensure_collection(DIM, True)
    sparse_backend.upsert(records)
    q = Query(mode="sparse", k=3, text="dragons wizards", sparse=sparse.embed_query("dragons wizards"))
    top_qdrant = _ids(sparse_backend, q)
    # The Weaviate collection holds ten copies of the dataset: all ten copies of r02 lead.
    top_weaviate = [h.record.id for h in weaviate.search(Query(mode="sparse", k=11,
                                                               text="dragons wizards"))]
    assert top_qdrant[0] == "r02"
    assert sorted(top_weaviate[:10]) == sorted(f"r02-{c}" for c in range(10))
    assert len(top_weaviate) == 10  # nothing else holds either word
    sparse_backend.client.close()
