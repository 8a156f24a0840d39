"""Move a collection from Qdrant to Weaviate, vectors included (no re-embedding).

    python examples/qdrant_to_weaviate.py

The same code as `rag-stores migrate SOURCE TARGET` (rag_stores/migrate.py): both backends
stream records (`iter_records`) and upsert them, so ids, texts, metadata and vectors arrive
unchanged, a re-run skips what is there, and the copy is verified at the end. Qdrant's BM25
sparse vectors stay behind: Weaviate keeps its own BM25 index of the text.
"""

from __future__ import annotations

import tempfile
from urllib.parse import urlencode

from _common import corpus, embeddings, weaviate_options, where

from rag_stores.langchain import QdrantVectorStore, WeaviateVectorStore
from rag_stores.migrate import migrate, open_backend
from retrievers.langchain import BM25Retriever


def main() -> None:
    embedding = embeddings()
    texts, metadatas, ids = corpus()
    query = embedding.embed_query("robots exploring another planet")
    with tempfile.TemporaryDirectory() as folder:
        # The source: a Qdrant collection on disk, dense + BM25 vectors.
        with QdrantVectorStore(embedding, "notes", path=folder,
                               retrieval_mode="hybrid") as source:
            source.add_texts(texts, metadatas, ids=ids)
            before = [d.id for d in source.similarity_search_by_vector(query, k=3)]
        options = weaviate_options()
        target = "weaviate:MovedNotes" + (f"?{urlencode(options)}" if options else "")
        previous = open_backend(target)  # an earlier run's copy: start afresh
        if previous.exists():
            previous.drop()
        previous.close()
        report = migrate(f"qdrant:notes?path={folder}", target, progress=False)
        print(f"moved {report['written']} records from Qdrant on disk to {where('weaviate')} "
              f"in {report['seconds']:.1f}s; verified: {not report['problems']}")
        backend = open_backend(target)
        try:
            store = WeaviateVectorStore.from_existing_collection(
                embedding, "MovedNotes", client=backend.client)
            after = [d.id for d in store.similarity_search_by_vector(query, k=3)]
            print(f"nearest to 'robots exploring another planet' on Qdrant:   {before}")
            print(f"nearest to 'robots exploring another planet' on Weaviate: {after}")
            bm25 = BM25Retriever(vectorstore=store, k=1)
            print(f"keyword search now runs on Weaviate's BM25: "
                  f"{[d.id for d in bm25.invoke('sourdough')]}")
            backend.drop()
        finally:
            backend.close()


if __name__ == "__main__":
    main()
