"""LangChain's indexing API (`langchain_core.indexing.index`) with a SQL record manager (a
SQLite file) and the in-memory one, and LlamaIndex docstore pipelines
(`IngestionPipeline(docstore=...)`, `refresh_ref_docs`), on both engines: after every
re-run the store holds exactly what the source holds."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document
from langchain_core.indexing import InMemoryRecordManager, index

from rag_stores.langchain import QdrantVectorStore, WeaviateVectorStore
from tests.conformance import fresh_name
from tests.test_conformance import TableEmbeddings


@pytest.fixture(params=["qdrant", "weaviate"])
def store(request):
    if request.param == "qdrant":
        store = QdrantVectorStore(TableEmbeddings(), fresh_name("indexing"))
    else:
        server = request.getfixturevalue("weaviate_server")
        store = WeaviateVectorStore(TableEmbeddings(), fresh_name("Indexing"), url=server.url,
                                    grpc_port=server.grpc_port)
    yield store
    store.backend.drop()
    store.close()


@pytest.fixture(params=["sql", "memory"])
def record_manager(request, tmp_path):
    if request.param == "memory":
        manager = InMemoryRecordManager("test")
    else:
        from langchain_classic.indexes import SQLRecordManager

        manager = SQLRecordManager("test", db_url=f"sqlite:///{tmp_path / 'records.db'}")
    manager.create_schema()
    return manager


def _doc(text: str, source: str) -> Document:
    return Document(page_content=text, metadata={"source": source})


def _contents(store) -> list[tuple[str, str]]:
    return sorted((r.text, r.metadata["source"]) for r in store.backend.scroll())


@pytest.mark.parametrize("cleanup", [None, "incremental", "full"])
def test_index_keeps_the_store_in_sync_with_the_source(store, record_manager, cleanup) -> None:
    first = [_doc("apple pie", "a.txt"), _doc("apple tart", "a.txt"), _doc("banana bread", "b.txt")]
    result = index(first, record_manager, store, cleanup=cleanup, source_id_key="source")
    assert (result["num_added"], result["num_skipped"], result["num_deleted"]) == (3, 0, 0)
    again = index(first, record_manager, store, cleanup=cleanup, source_id_key="source")
    assert (again["num_added"], again["num_skipped"], again["num_deleted"]) == (0, 3, 0)
    # a.txt edited (one chunk changed), b.txt unchanged
    edited = [_doc("apple pie", "a.txt"), _doc("cherry cake", "a.txt"), _doc("banana bread", "b.txt")]
    result = index(edited, record_manager, store, cleanup=cleanup, source_id_key="source")
    assert (result["num_added"], result["num_skipped"]) == (1, 2)
    assert result["num_deleted"] == (0 if cleanup is None else 1)
    if cleanup is None:  # without cleanup the stale chunk stays, as LangChain documents
        assert _contents(store) == sorted([("apple pie", "a.txt"), ("apple tart", "a.txt"),
                                           ("banana bread", "b.txt"), ("cherry cake", "a.txt")])
        return
    assert _contents(store) == sorted([("apple pie", "a.txt"), ("banana bread", "b.txt"),
                                       ("cherry cake", "a.txt")])
    # b.txt removed from the source: only a full cleanup sees a source that is gone
    result = index([_doc("apple pie", "a.txt"), _doc("cherry cake", "a.txt")], record_manager,
                   store, cleanup=cleanup, source_id_key="source")
    assert result["num_deleted"] == (1 if cleanup == "full" else 0)
    expected = [("apple pie", "a.txt"), ("cherry cake", "a.txt")]
    if cleanup == "incremental":
        expected.append(("banana bread", "b.txt"))
    assert _contents(store) == sorted(expected)


async def test_aindex_keeps_the_store_in_sync(store) -> None:
    from langchain_core.indexing import aindex

    manager = InMemoryRecordManager("async")
    await manager.acreate_schema()
    docs = [_doc("apple pie", "a.txt"), _doc("banana bread", "b.txt")]
    result = await aindex(docs, manager, store, cleanup="full", source_id_key="source")
    assert result["num_added"] == 2
    result = await aindex(docs[:1], manager, store, cleanup="full", source_id_key="source")
    assert (result["num_skipped"], result["num_deleted"]) == (1, 1)
    assert _contents(store) == [("apple pie", "a.txt")]


@pytest.fixture(params=["qdrant", "weaviate"])
def llama_store(request):
    from rag_stores.llama_index import QdrantVectorStore as LlamaQdrant
    from rag_stores.llama_index import WeaviateVectorStore as LlamaWeaviate

    if request.param == "qdrant":
        store = LlamaQdrant(fresh_name("pipeline"))
    else:
        server = request.getfixturevalue("weaviate_server")
        store = LlamaWeaviate(fresh_name("Pipeline"), url=server.url, grpc_port=server.grpc_port)
    yield store
    store.clear()
    store.close()


def _llama_contents(store) -> list[tuple[str, str]]:
    return sorted((r.text, r.ref_doc_id or "") for r in store.backend.scroll())


def _pipeline(store, strategy):
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.storage.docstore import SimpleDocumentStore

    from tests.test_llama_storage import WordEmbedding

    return IngestionPipeline(transformations=[SentenceSplitter(chunk_size=64, chunk_overlap=0),
                                              WordEmbedding()],
                             docstore=SimpleDocumentStore(), vector_store=store,
                             docstore_strategy=strategy)


@pytest.mark.parametrize("strategy", ["upserts", "duplicates_only", "upserts_and_delete"])
def test_docstore_pipeline_keeps_the_store_in_sync(llama_store, strategy, seeded_models) -> None:
    from llama_index.core import Document as LlamaDocument
    from llama_index.core.ingestion import DocstoreStrategy

    pipeline = _pipeline(llama_store, DocstoreStrategy(strategy))
    docs = [LlamaDocument(text="apple pie recipe", doc_id="a"),
            LlamaDocument(text="banana bread recipe", doc_id="b")]
    assert len(pipeline.run(documents=docs)) == 2
    assert pipeline.run(documents=docs) == []  # unchanged: nothing embedded or written again
    assert _llama_contents(llama_store) == [("apple pie recipe", "a"), ("banana bread recipe", "b")]
    changed = [LlamaDocument(text="apple tart recipe", doc_id="a")]  # a changed, b removed
    pipeline.run(documents=changed)
    expected = {
        "upserts": [("apple tart recipe", "a"), ("banana bread recipe", "b")],
        # duplicates_only skips exact duplicates only: a's new text is added beside the old
        "duplicates_only": [("apple pie recipe", "a"), ("apple tart recipe", "a"),
                            ("banana bread recipe", "b")],
        "upserts_and_delete": [("apple tart recipe", "a")],
    }[strategy]
    assert _llama_contents(llama_store) == expected


def test_refresh_ref_docs_updates_changed_documents(llama_store, seeded_models) -> None:
    from llama_index.core import Document as LlamaDocument
    from llama_index.core import StorageContext, VectorStoreIndex

    from tests.test_llama_storage import WordEmbedding

    index = VectorStoreIndex.from_documents(
        [LlamaDocument(text="apple pie", doc_id="a"), LlamaDocument(text="banana bread", doc_id="b")],
        storage_context=StorageContext.from_defaults(vector_store=llama_store),
        embed_model=WordEmbedding(), store_nodes_override=True)
    refreshed = index.refresh_ref_docs([LlamaDocument(text="apple tart", doc_id="a"),
                                        LlamaDocument(text="banana bread", doc_id="b")])
    assert refreshed == [True, False]
    assert _llama_contents(llama_store) == [("apple tart", "a"), ("banana bread", "b")]
