"""Switching from the official integrations: open the collections they wrote, in place.

    pip install langchain-qdrant langchain-weaviate   # the peers (already in the dev extra)
    python examples/switch_from_peers.py [qdrant] [weaviate]

Each part writes the corpus with the official package, then changes only the import line
(`from langchain_qdrant import QdrantVectorStore` -> `from rag_stores.langchain import
QdrantVectorStore`, the same for langchain-weaviate) and runs the same calls on the same
collection: the data is read in the layout the peer wrote, and what this library adds there
the peer reads back.
"""

from __future__ import annotations

import os

from _common import backends, corpus, embeddings, weaviate_options, where

QUESTION = "Which telescope looks at the early universe?"


def qdrant(embedding: object) -> None:
    import langchain_qdrant

    import rag_stores.langchain

    texts, metadatas, _ = corpus()
    # As the peer's docs write it: embedded Qdrant in memory (a URL works the same).
    peer = langchain_qdrant.QdrantVectorStore.from_texts(
        texts, embedding, metadatas=metadatas, location=":memory:", collection_name="notes")
    client = peer.client
    print("written by langchain-qdrant:", client.count("notes").count, "points")

    # The one line that changes: the class comes from rag_stores.langchain.
    ours = rag_stores.langchain.QdrantVectorStore(client, "notes", embedding)
    hit = ours.similarity_search(QUESTION, k=1)[0]
    print("read by rag-stores:", hit.page_content, hit.metadata["year"])
    ours.add_texts(["The Chandra observatory sees the universe in X-rays."], [{"topic": "space"}])
    back = peer.similarity_search("X-ray observatory", k=1)[0]
    print("added by rag-stores, read by langchain-qdrant:", back.page_content)


def weaviate(embedding: object) -> None:
    import langchain_weaviate
    import weaviate as weaviate_client

    import rag_stores.langchain

    options = weaviate_options()
    if options:  # a server from the environment
        host_port = options["url"].split("//", 1)[1]
        host, port = host_port.rsplit(":", 1)
        client = weaviate_client.connect_to_local(host=host, port=int(port),
                                                  grpc_port=options["grpc_port"])
    else:  # the embedded Weaviate this library starts, reached through one of its stores
        keeper = rag_stores.langchain.WeaviateVectorStore(embedding, "Notes")
        client = keeper.client
    texts, metadatas, _ = corpus()
    if client.collections.exists("PeerNotes"):
        client.collections.delete("PeerNotes")
    peer = langchain_weaviate.WeaviateVectorStore(client, "PeerNotes", "text", embedding)
    peer.add_texts(texts, metadatas)
    print("written by langchain-weaviate:",
          len(client.collections.get("PeerNotes").query.fetch_objects(limit=100).objects),
          "objects")

    ours = rag_stores.langchain.WeaviateVectorStore(client, "PeerNotes", "text", embedding)
    hit = ours.similarity_search(QUESTION, k=1)[0]
    # langchain-weaviate let Weaviate type "year" as a number: it reads back as 2021.0 there too
    print("read by rag-stores:", hit.page_content, hit.metadata["year"])
    ours.add_texts(["The Chandra observatory sees the universe in X-rays."], [{"topic": "space"}])
    back = peer.similarity_search("X-ray observatory", k=1)[0]
    print("added by rag-stores, read by langchain-weaviate:", back.page_content)
    if options:
        client.close()


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    embedding = embeddings()
    for backend in backends():
        print(f"\n=== {where(backend)} ===")
        (qdrant if backend == "qdrant" else weaviate)(embedding)


if __name__ == "__main__":
    main()
