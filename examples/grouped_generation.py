"""Weaviate's generative search (`single_prompt`, `grouped_task`) over Qdrant and Weaviate.

    python examples/grouped_generation.py [qdrant] [weaviate]

`GenerativeSearch(store, llm)` searches like Weaviate's `collection.generate` and builds
the prompts the way Weaviate does: `single_prompt` once per result with `{property}`
placeholders filled from that result, `grouped_task` once over all results (sent as the
task followed by the results' properties as JSON). Any LangChain or LlamaIndex LLM answers;
without one configured a labelled fake does, and the exact prompts are printed.
"""

from __future__ import annotations

from _common import backends, chat_model, corpus, embeddings, langchain_store, where

from rag_stores.generate import GenerativeSearch


def main() -> None:
    embedding = embeddings()
    llm, real = chat_model()
    texts, metadatas, ids = corpus()
    for backend in backends():
        print(f"\n=== {where(backend)} ===")
        with langchain_store(backend, "GenerateExample", embedding,
                             retrieval_mode="hybrid") as store:
            store.add_texts(texts, metadatas, ids=ids)
            search = GenerativeSearch(store, llm)
            result = search.hybrid(
                "space telescopes", limit=3, filters={"topic": "space"},
                single_prompt="Say in five words what this note is about: {text}",
                grouped_task="Which of these observes in infrared? Answer with its name.",
                grouped_properties=["text", "year"])
            for obj in result.objects:
                print(f"  {obj.id:12} -> {obj.generated}")
            print(f"grouped: {result.generated}")
            if not real:
                print("prompts the fake LLM got (a real one would get the same):")
                for prompt in [*result.prompts.single, result.prompts.grouped]:
                    print(f"  | {prompt}")
            store.backend.drop()


if __name__ == "__main__":
    main()
