"""langchain-tests' standard VectorStore suite, sync and async, on every Qdrant mode."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests.vectorstores import VectorStoreIntegrationTests
from qdrant_client import AsyncQdrantClient

from rag_stores.langchain import QdrantVectorStore


class TestQdrantMemory(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self) -> Iterator[VectorStore]:
        with QdrantVectorStore(self.get_embeddings(), "standard") as store:
            yield store


class TestQdrantDisk(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, tmp_path) -> Iterator[VectorStore]:
        with QdrantVectorStore(self.get_embeddings(), "standard", path=str(tmp_path)) as store:
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
