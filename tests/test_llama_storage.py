"""Our LlamaIndex stores as LlamaIndex storage: index, retrievers, query engine, pipeline."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode

from tests.conformance import Variant, fresh_name

DOCS = [
    Document(text="Qdrant is a vector database written in Rust.", doc_id="qdrant",
             metadata={"topic": "db"}),
    Document(text="Weaviate is a vector database written in Go.", doc_id="weaviate",
             metadata={"topic": "db"}),
    Document(text="Bananas are yellow fruit rich in potassium.", doc_id="banana",
             metadata={"topic": "food"}),
]


class WordEmbedding(BaseEmbedding):
    """A bag-of-words embedding over a tiny vocabulary: deterministic and meaningful."""

    vocabulary: tuple[str, ...] = ("qdrant", "weaviate", "rust", "go", "banana", "fruit",
                                   "vector", "database", "yellow")

    def _vec(self, text: str) -> list[float]:
        words = text.lower().replace(".", " ").replace("?", " ").split()
        vec = [float(sum(w.startswith(v) for w in words)) for v in self.vocabulary]
        return vec if any(vec) else [0.01] * len(self.vocabulary)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vec(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vec(text)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vec(query)


@pytest.fixture
def index(variant: Variant) -> VectorStoreIndex:
    if variant.is_async:
        pytest.skip("VectorStoreIndex.from_documents writes through the sync API")
    store = variant.llama_store(fresh_name(), enable_hybrid=True)
    context = StorageContext.from_defaults(vector_store=store)
    return VectorStoreIndex.from_documents(DOCS, storage_context=context,
                                           embed_model=WordEmbedding())


def test_index_retrievers_in_every_mode(index: VectorStoreIndex) -> None:
    for mode in ("default", "sparse", "hybrid", "text_search", "mmr"):
        retriever = index.as_retriever(similarity_top_k=1, vector_store_query_mode=mode)
        (hit,) = retriever.retrieve("banana fruit")
        assert hit.node.ref_doc_id == "banana", mode
        assert hit.node.metadata == {"topic": "food"}


async def test_async_retrieval_matches_sync(index: VectorStoreIndex) -> None:
    # no tie in the top 2 (weaviate 3 words, qdrant 1, banana 0): a cluster merges tied
    # shards' hits in any order
    retriever = index.as_retriever(similarity_top_k=2)
    sync = [n.node.ref_doc_id for n in retriever.retrieve("weaviate go database")]
    asynchronous = [n.node.ref_doc_id for n in await retriever.aretrieve("weaviate go database")]
    assert sync == asynchronous == ["weaviate", "qdrant"]


def test_query_engine_answers_from_retrieved_nodes(index: VectorStoreIndex) -> None:
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=1)
    response = engine.query("what is qdrant written in rust?")
    assert [n.node.ref_doc_id for n in response.source_nodes] == ["qdrant"]


def test_delete_ref_doc_removes_the_document(index: VectorStoreIndex) -> None:
    index.delete_ref_doc("qdrant")
    retriever = index.as_retriever(similarity_top_k=5)
    assert "qdrant" not in {n.node.ref_doc_id for n in retriever.retrieve("qdrant rust")}


def test_metadata_filters_through_the_retriever(index: VectorStoreIndex) -> None:
    from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters

    retriever = index.as_retriever(similarity_top_k=5, filters=MetadataFilters(
        filters=[MetadataFilter(key="topic", value="db")]))
    assert {n.node.ref_doc_id for n in retriever.retrieve("banana")} == {"qdrant", "weaviate"}


async def test_ingestion_pipeline_writes_into_the_store(variant: Variant) -> None:
    store = variant.llama_store(fresh_name())
    pipeline = IngestionPipeline(transformations=[SentenceSplitter(chunk_size=64, chunk_overlap=0),
                                                  WordEmbedding()], vector_store=store)
    if variant.is_async:
        nodes = await pipeline.arun(documents=DOCS)
    else:
        nodes = pipeline.run(documents=DOCS)
    stored = await variant.call(store, "get_nodes", [n.node_id for n in nodes])
    assert sorted(n.ref_doc_id or "" for n in stored) == ["banana", "qdrant", "weaviate"]
    result = await variant.call(store, "query", VectorStoreQuery(
        query_embedding=WordEmbedding().get_query_embedding("banana"), similarity_top_k=1,
        mode=VectorStoreQueryMode.DEFAULT))
    assert result.nodes[0].ref_doc_id == "banana"


def test_on_disk_index_reopens_in_a_new_process(tmp_path) -> None:
    from rag_stores.llama_index import QdrantVectorStore

    store = QdrantVectorStore("persisted", path=str(tmp_path))
    VectorStoreIndex.from_documents(DOCS, storage_context=StorageContext.from_defaults(
        vector_store=store), embed_model=WordEmbedding())
    store.close()  # releases the folder lock
    script = textwrap.dedent(f"""
        from llama_index.core import VectorStoreIndex
        from rag_stores.llama_index import QdrantVectorStore
        from tests.test_llama_storage import WordEmbedding
        store = QdrantVectorStore("persisted", path={str(tmp_path)!r})
        index = VectorStoreIndex.from_vector_store(store, embed_model=WordEmbedding())
        print(index.as_retriever(similarity_top_k=1).retrieve("banana")[0].node.ref_doc_id)
        store.close()
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "banana"
    # ... and in this process again, after the other one closed it.
    again = QdrantVectorStore("persisted", path=str(tmp_path))
    assert again.backend.count() == 3
    again.close()
