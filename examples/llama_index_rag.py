"""LlamaIndex over Qdrant and over Weaviate: StorageContext, VectorStoreIndex, query engine.

    python examples/llama_index_rag.py            # both backends
    python examples/llama_index_rag.py qdrant     # one

Documents are split into nodes by LlamaIndex, embedded with FastEmbed, stored in our vector
store; the query engine retrieves and asks the LLM (MockLLM, which echoes its prompt, when
no LLM is configured). A metadata filter narrows the second query.
"""

from __future__ import annotations

from _common import CORPUS, backends, embeddings, llama_index_llm, weaviate_options, where
from llama_index.core import Document, Settings, StorageContext, VectorStoreIndex
from llama_index.core.vector_stores import FilterOperator, MetadataFilter, MetadataFilters

from embedders.llama_index import FastEmbedEmbedding
from rag_stores.llama_index import QdrantVectorStore, WeaviateVectorStore


def make_store(backend: str):
    if backend == "qdrant":
        store = QdrantVectorStore("llama_example")
    else:
        store = WeaviateVectorStore("LlamaExample", **weaviate_options())
    if store.backend.exists():
        store.backend.drop()
    return store


def main() -> None:
    embeddings()  # makes sure tiktoken (LlamaIndex's splitter) works offline
    Settings.embed_model = FastEmbedEmbedding()
    llm, real = llama_index_llm()
    Settings.llm = llm
    documents = [Document(text=text, id_=doc_id, metadata=meta) for doc_id, text, meta in CORPUS]
    for backend in backends():
        print(f"\n=== {where(backend)} ===")
        vector_store = make_store(backend)
        try:
            storage = StorageContext.from_defaults(vector_store=vector_store)
            index = VectorStoreIndex.from_documents(documents, storage_context=storage)
            print(f"indexed {len(documents)} documents as "
                  f"{vector_store.backend.count()} nodes")

            engine = index.as_query_engine(similarity_top_k=2)
            response = engine.query("Which telescope looks at the early universe?")
            print("sources:", [(n.node.ref_doc_id, round(n.score or 0, 3))
                               for n in response.source_nodes])
            print("answer:" if real else "answer (MockLLM: the prompt it got):")
            print("  " + str(response).strip().replace("\n", "\n  "))

            cooking = MetadataFilters(filters=[
                MetadataFilter(key="topic", value="cooking", operator=FilterOperator.EQ)])
            retriever = index.as_retriever(similarity_top_k=2, filters=cooking)
            hits = retriever.retrieve("something hot to drink")
            print("filtered to topic=cooking:", [h.node.ref_doc_id for h in hits])
            vector_store.backend.drop()
        finally:
            vector_store.close()


if __name__ == "__main__":
    main()
