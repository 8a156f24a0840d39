"""Dense, BM25 and hybrid search side by side, on Qdrant and on Weaviate.

    python examples/hybrid_search.py [qdrant] [weaviate]

Dense search understands paraphrases but misses exact tokens such as error codes; BM25 is
the reverse. Hybrid search fuses both inside the engine (Qdrant: prefetch + RRF over a
dense and a BM25 sparse vector; Weaviate: its own hybrid query over its BM25 index), and
`alpha` weighs the dense side (1 = dense only, 0 = keywords only).
"""

from __future__ import annotations

from _common import backends, corpus, embeddings, langchain_store, where

from retrievers.langchain import BM25Retriever, HybridRetriever

# A rare exact word (BM25 returns just the documents holding it) and a paraphrase that
# shares no word with its answer (BM25 finds nothing; dense and hybrid find espresso).
QUERIES = ["Jezero", "a caffeinated beverage"]


def main() -> None:
    embedding = embeddings()
    texts, metadatas, ids = corpus()
    for backend in backends():
        print(f"\n=== {where(backend)} ===")
        # keywords=True: Qdrant stores a BM25 sparse vector beside the dense one.
        with langchain_store(backend, "HybridExample", embedding, keywords=True) as store:
            store.add_texts(texts, metadatas, ids=ids)
            searches = {
                "dense": store.as_retriever(search_kwargs={"k": 3}),
                "bm25": BM25Retriever(vectorstore=store, k=3),
                "hybrid a=0.5": HybridRetriever(vectorstore=store, k=3, alpha=0.5),
                "hybrid a=0.2": HybridRetriever(vectorstore=store, k=3, alpha=0.2),
            }
            for query in QUERIES:
                print(f"\nquery: {query!r}")
                for name, retriever in searches.items():
                    found = [d.id for d in retriever.invoke(query)]
                    print(f"  {name:13} {', '.join(found) or '(nothing)'}")
            store.backend.drop()


if __name__ == "__main__":
    main()
