"""langchain-tests' standard VectorStore suite, sync and async, on every Qdrant mode and Weaviate."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests.vectorstores import VectorStoreIntegrationTests
from qdrant_client import AsyncQdrantClient

from rag_stores.langchain import QdrantVectorStore, WeaviateVectorStore
from tests.conformance import fresh_name


class TestQdrantMemory(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self) -> Iterator[VectorStore]:
        with QdrantVectorStore(self.get_embeddings(), "standard") as store:
            yield store


class TestQdrantDisk(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, tmp_path) -> Iterator[VectorStore]:
        with QdrantVectorStore(self.get_embeddings(), "standard", engine="local",
                               path=str(tmp_path)) as store:
            yield store


class TestQdrantEdge(VectorStoreIntegrationTests):
    """Qdrant Edge on disk, the default for path= (the real engine in-process); async
    methods run in a worker thread."""

    @pytest.fixture
    def vectorstore(self, tmp_path) -> Iterator[VectorStore]:
        with QdrantVectorStore(self.get_embeddings(), "standard", path=str(tmp_path)) as store:
            assert store.backend.engine == "edge"
            yield store


class TestQdrantEdgeMemory(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self) -> Iterator[VectorStore]:
        with QdrantVectorStore(self.get_embeddings(), "standard", engine="edge") as store:
            yield store


class TestQdrantAsyncClient(VectorStoreIntegrationTests):
    """A store given only an AsyncQdrantClient: the async half of the suite, natively async."""

    @property
    def has_sync(self) -> bool:
        return False

    @pytest.fixture
    async def vectorstore(self) -> AsyncIterator[VectorStore]:
        client = AsyncQdrantClient(":memory:")
        store = QdrantVectorStore(self.get_embeddings(), "standard", async_client=client)
        yield store
        await client.close()


class TestQdrantServer(VectorStoreIntegrationTests):
    """The real Qdrant server over REST; the store opens its own sync and async clients."""

    prefer_grpc = False

    @pytest.fixture
    async def vectorstore(self, qdrant_server) -> AsyncIterator[VectorStore]:
        store = QdrantVectorStore(self.get_embeddings(), fresh_name("standard"),
                                  **qdrant_server.connect_kwargs(self.prefer_grpc))
        yield store
        store.backend.drop()
        await store.aclose()


class TestQdrantServerGrpc(TestQdrantServer):
    prefer_grpc = True


class TestWeaviate(VectorStoreIntegrationTests):
    """The real Weaviate server, sync and async clients (async really async)."""

    @pytest.fixture
    async def vectorstore(self, weaviate_server) -> AsyncIterator[VectorStore]:
        client = weaviate_server.connect()
        aclient = await weaviate_server.connect_async()
        store = WeaviateVectorStore(self.get_embeddings(), fresh_name("Standard"), client=client,
                                    async_client=aclient)
        yield store
        await aclient.close()
        client.close()
