"""langchain-tests' RetrieversIntegrationTests for every retriever, on Qdrant and Weaviate.

The suite builds retrievers from `retriever_constructor_params`; an autouse fixture hands
each test class a store filled with a few documents (real dense model, FastEmbed BM25).
Every document has its own `source`, so the grouped retriever (group_size=1) returns k.
Discover runs on Qdrant only: Weaviate has no discovery (tests/test_retrievers.py checks
that it says so).
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests.retrievers import RetrieversIntegrationTests

from retrievers.langchain import (
    BM25Retriever,
    DiscoverRetriever,
    GroupedRetriever,
    HybridRetriever,
    MMRRetriever,
    RecommendRetriever,
)
from tests.conformance import fresh_name

TEXTS = [
    "Cats are small domestic animals that like to sleep",
    "Dogs and cats can live together as pets",
    "A cat chased the mouse around the kitchen",
    "My neighbour's cat sleeps on the warm car roof",
    "Pet cats need fresh water and food every day",
    "The stock market closed higher on Friday",
]


def fill(store: Any) -> Any:
    store.add_texts(TEXTS, [{"source": f"doc-{i}"} for i in range(len(TEXTS))],
                    ids=[str(i) for i in range(len(TEXTS))])
    return store


@pytest.fixture(scope="module")
def qdrant_store(lc_embeddings, sparse_encoder):
    from rag_stores.langchain import QdrantVectorStore

    with QdrantVectorStore(lc_embeddings, "standard_retrievers", retrieval_mode="hybrid",
                           sparse_embedding=sparse_encoder) as store:
        yield fill(store)


@pytest.fixture(scope="module")
def qdrant_edge_store(lc_embeddings, sparse_encoder):
    from rag_stores.langchain import QdrantVectorStore

    with QdrantVectorStore(lc_embeddings, "standard_retrievers", retrieval_mode="hybrid",
                           sparse_embedding=sparse_encoder, engine="edge") as store:
        yield fill(store)


@pytest.fixture(scope="module")
def qdrant_server_store(lc_embeddings, sparse_encoder, qdrant_server):
    from rag_stores.langchain import QdrantVectorStore

    with QdrantVectorStore(lc_embeddings, fresh_name("standard_retrievers"),
                           retrieval_mode="hybrid", sparse_embedding=sparse_encoder,
                           **qdrant_server.connect_kwargs(prefer_grpc=True)) as store:
        yield fill(store)
        store.backend.drop()


@pytest.fixture(scope="module")
def weaviate_store(lc_embeddings, weaviate_server):
    from rag_stores.langchain import WeaviateVectorStore

    # The store opens its own clients: the async ones per event loop (each test has its own).
    with WeaviateVectorStore(lc_embeddings, fresh_name("StandardRetrievers"),
                             url=weaviate_server.url, grpc_port=weaviate_server.grpc_port) as store:
        yield fill(store)
        store.backend.drop()


@pytest.fixture(scope="module", params=["qdrant", "qdrant_edge", "qdrant_server", "weaviate"])
def filled_store(request):
    """A store with TEXTS over the engine of this parameter."""
    return request.getfixturevalue(f"{request.param}_store")


class StoreRetrieverTests(RetrieversIntegrationTests):
    extra: dict[str, Any] = {}

    @pytest.fixture(autouse=True)
    def _store(self, filled_store) -> None:
        self.store = filled_store

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"vectorstore": self.store, "k": 2, **self.extra}

    @property
    def retriever_query_example(self) -> str:
        return "cats as pets"


class TestHybridRetriever(StoreRetrieverTests):
    retriever_constructor = HybridRetriever


class TestBM25Retriever(StoreRetrieverTests):
    retriever_constructor = BM25Retriever


class TestMMRRetriever(StoreRetrieverTests):
    retriever_constructor = MMRRetriever


class TestRecommendRetriever(StoreRetrieverTests):
    retriever_constructor = RecommendRetriever
    extra = {"negative_texts": ["finance"]}


class TestGroupedRetriever(StoreRetrieverTests):
    retriever_constructor = GroupedRetriever
    extra = {"group_by": "source", "search_type": "hybrid"}


class TestDiscoverRetriever(StoreRetrieverTests):
    retriever_constructor = DiscoverRetriever
    extra = {"context_texts": [("animals", "money")]}

    @pytest.fixture(autouse=True, params=["qdrant", "qdrant_edge", "qdrant_server"])
    def _store(self, request) -> None:  # Qdrant only
        self.store = request.getfixturevalue(f"{request.param}_store")
