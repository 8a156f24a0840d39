"""Move a collection from Qdrant to Weaviate, vectors included (no re-embedding).

    python examples/qdrant_to_weaviate.py

Both backends speak the same protocol (`rag_stores.core.backend.Backend`), so a move is
`scroll(with_vectors=True)` on one and `upsert` on the other: ids, texts, metadata and
vectors arrive unchanged, and a LangChain store opened on the copy reads the same documents.
Qdrant's BM25 sparse vectors stay behind: Weaviate keeps its own BM25 index of the text.
"""

from __future__ import annotations

import tempfile

from _common import corpus, embeddings, weaviate_options, where

from rag_stores.backends.weaviate import WeaviateBackend
from rag_stores.core.ingest import batched
from rag_stores.langchain import QdrantVectorStore, WeaviateVectorStore
from retrievers.langchain import BM25Retriever


def main() -> None:
    embedding = embeddings()
    texts, metadatas, ids = corpus()
    with tempfile.TemporaryDirectory() as folder:
        # The source: a Qdrant collection on disk, dense + BM25 vectors.
        with QdrantVectorStore(embedding, "notes", path=folder,
                               retrieval_mode="hybrid") as source:
            source.add_texts(texts, metadatas, ids=ids)
            records = source.backend.scroll(with_vectors=True)
            dim = source.backend.dimension()
            print(f"read {len(records)} records ({dim}-dim vectors) from Qdrant on disk")
            query = embedding.embed_query("robots exploring another planet")
            before = [d.id for d in source.similarity_search_by_vector(query, k=3)]

        # The target: a Weaviate collection made from the source's description.
        target = WeaviateBackend("MovedNotes", **weaviate_options())
        try:
            if target.exists():
                target.drop()
            target.ensure_collection(dim, sparse=False)
            for batch in batched(records, 100):
                for record in batch:
                    record.sparse = None
                target.upsert(batch)
            print(f"wrote {target.count()} records to {where('weaviate')}")

            moved = {r.id: r for r in target.scroll(with_vectors=True)}
            same = set(moved) == set(ids) and all(
                moved[r.id].text == r.text and moved[r.id].metadata == r.metadata
                for r in records)
            drift = max(abs(a - b) for r in records
                        for a, b in zip(r.vector or [], moved[r.id].vector or [], strict=True))
            print(f"ids, texts and metadata identical: {same}; largest vector difference: "
                  f"{drift:.1e}")

            store = WeaviateVectorStore.from_existing_collection(
                embedding, "MovedNotes", client=target.client)
            after = [d.id for d in store.similarity_search_by_vector(query, k=3)]
            print(f"nearest to 'robots exploring another planet' on Qdrant:   {before}")
            print(f"nearest to 'robots exploring another planet' on Weaviate: {after}")
            bm25 = BM25Retriever(vectorstore=store, k=1)
            print(f"keyword search now runs on Weaviate's BM25: "
                  f"{[d.id for d in bm25.invoke('sourdough')]}")
            target.drop()
        finally:
            target.close()


if __name__ == "__main__":
    main()
