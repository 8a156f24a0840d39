"""MMR and recommend, on Qdrant and on Weaviate.

    python examples/mmr_and_recommend.py [qdrant] [weaviate]

- MMR (maximal marginal relevance) trades relevance for variety: the corpus holds three
  notes saying nearly the same thing about Apollo 11, and plain similarity returns all
  three; MMR keeps one and fills the rest with other relevant notes. Qdrant runs MMR
  server-side; Weaviate fetches candidates with their vectors and selects client-side.
- Recommend finds records like some examples and unlike others, given by id (no query
  text needed): Qdrant's recommend API, computed the same way for Weaviate.
"""

from __future__ import annotations

from _common import backends, corpus, embeddings, langchain_store, where

from retrievers.langchain import MMRRetriever, RecommendRetriever


def main() -> None:
    embedding = embeddings()
    texts, metadatas, ids = corpus()
    query = "the first Moon landing"
    for backend in backends():
        print(f"\n=== {where(backend)} ===")
        with langchain_store(backend, "MmrExample", embedding) as store:
            store.add_texts(texts, metadatas, ids=ids)
            print(f"query: {query!r}")
            similar = store.similarity_search(query, k=4)
            print(f"  similarity         {[d.id for d in similar]}")
            for lambda_mult in (0.6, 0.4):
                mmr = MMRRetriever(vectorstore=store, k=4, fetch_k=6, lambda_mult=lambda_mult)
                print(f"  mmr lambda={lambda_mult:<4}    {[d.id for d in mmr.invoke(query)]}")
            # The store's own LangChain method does the same:
            same = store.max_marginal_relevance_search(query, k=4, fetch_k=6, lambda_mult=0.4)
            print(f"  (max_marginal_relevance_search: {[d.id for d in same]})")

            print("recommend: like 'qdrant', unlike 'postgres' (ids, no query text)")
            like = RecommendRetriever(vectorstore=store, k=3, positive=["qdrant"],
                                      negative=["postgres"], use_query=False)
            print(f"  average_vector     {[d.id for d in like.invoke('')]}")
            best = like.invoke("", strategy="best_score")
            print(f"  best_score         {[d.id for d in best]}")
            print("recommend: the query text as a positive example, plus 'voyager-1'")
            both = RecommendRetriever(vectorstore=store, k=3, positive=["voyager-1"])
            print(f"  'telescopes'       {[d.id for d in both.invoke('telescopes')]}")
            store.backend.drop()


if __name__ == "__main__":
    main()
