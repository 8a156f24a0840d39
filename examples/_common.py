"""What the examples share: a small corpus, where Weaviate is, and which LLM answers.

Not an example itself. Every example runs offline: embeddings come from the seeded
all-MiniLM-L6-v2 (`rag-stores models seed`), Qdrant runs embedded in memory, Weaviate runs
embedded (this project's server binary, `rag-stores weaviate install`) unless
RAG_STORES_WEAVIATE_URL names a server (gRPC port: RAG_STORES_WEAVIATE_GRPC_PORT, default
50051). The LLM: an OpenAI-compatible endpoint (OPENAI_BASE_URL / OPENAI_API_KEY), else the
local model of the local-llm extra, else (or with RAG_STORES_LLM=none) a fake chat model from
langchain-core, and the examples say so.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from embedders.tokens import ensure_tiktoken_cache

WEAVIATE_URL_ENV = "RAG_STORES_WEAVIATE_URL"
WEAVIATE_GRPC_ENV = "RAG_STORES_WEAVIATE_GRPC_PORT"
BACKENDS = ("qdrant", "weaviate")

# Short notes on three subjects; some say nearly the same thing (MMR shows that).
CORPUS: list[tuple[str, str, dict[str, Any]]] = [
    ("apollo-11", "Apollo 11 landed the first humans on the Moon in July 1969.",
     {"topic": "space", "year": 1969}),
    ("apollo-11-b", "In 1969 the Apollo 11 crew became the first people to walk on the Moon.",
     {"topic": "space", "year": 1969}),
    ("apollo-11-c", "Neil Armstrong and Buzz Aldrin walked on the lunar surface during Apollo 11.",
     {"topic": "space", "year": 1969}),
    ("voyager-1", "Voyager 1, launched in 1977, is the most distant human-made object.",
     {"topic": "space", "year": 1977}),
    ("hubble", "The Hubble Space Telescope has observed distant galaxies from orbit since 1990.",
     {"topic": "space", "year": 1990}),
    ("iss", "The International Space Station has been continuously crewed since November 2000.",
     {"topic": "space", "year": 2000}),
    ("jwst", "The James Webb Space Telescope observes the early universe in infrared light.",
     {"topic": "space", "year": 2021}),
    ("mars-rover", "The Perseverance rover collects rock samples in Jezero crater on Mars.",
     {"topic": "space", "year": 2021}),
    ("hnsw", "HNSW is a graph index that finds approximate nearest neighbours quickly.",
     {"topic": "databases", "year": 2016}),
    ("bm25", "BM25 ranks documents by how often the query words occur in them, "
             "discounting very common words.", {"topic": "databases", "year": 1994}),
    ("qdrant", "Qdrant is a vector database written in Rust with payload filtering.",
     {"topic": "databases", "year": 2021}),
    ("weaviate", "Weaviate is a vector database written in Go with a built-in BM25 index.",
     {"topic": "databases", "year": 2019}),
    ("postgres", "PostgreSQL is a relational database; the pgvector extension adds vectors.",
     {"topic": "databases", "year": 1996}),
    ("sqlite", "SQLite is an embedded SQL database engine stored in a single file.",
     {"topic": "databases", "year": 2000}),
    ("err-4041", "Error code ERR-4041 means the collection was created with another vector size.",
     {"topic": "databases", "year": 2024}),
    ("err-5003", "Error code ERR-5003 means the server ran out of memory while indexing.",
     {"topic": "databases", "year": 2024}),
    ("err-2210", "Error code ERR-2210 means the API key was rejected by the server.",
     {"topic": "databases", "year": 2024}),
    ("sourdough", "Sourdough bread rises with wild yeast and lactic acid bacteria.",
     {"topic": "cooking", "year": 2020}),
    ("risotto", "Risotto is rice cooked slowly in broth until it becomes creamy.",
     {"topic": "cooking", "year": 2018}),
    ("espresso", "Espresso is coffee brewed by forcing hot water through fine grounds.",
     {"topic": "cooking", "year": 2015}),
    ("pesto", "Pesto is a sauce of basil, garlic, pine nuts, olive oil and cheese.",
     {"topic": "cooking", "year": 2017}),
    ("tempering", "Tempering chocolate means heating and cooling it so that it sets glossy.",
     {"topic": "cooking", "year": 2019}),
]


def corpus() -> tuple[list[str], list[dict[str, Any]], list[str]]:
    """(texts, metadatas, ids) of the corpus."""
    return [t for _, t, _ in CORPUS], [m for _, _, m in CORPUS], [i for i, _, _ in CORPUS]


def backends() -> list[str]:
    """The backends named on the command line (default: both)."""
    chosen = sys.argv[1:] or list(BACKENDS)
    unknown = [b for b in chosen if b not in BACKENDS]
    if unknown:
        sys.exit(f"unknown backend(s) {unknown}; choose from {BACKENDS}")
    return chosen


def embeddings() -> Any:
    """LangChain embeddings: all-MiniLM-L6-v2 via FastEmbed, from the seeded folder."""
    from embedders.langchain import FastEmbedEmbeddings

    ensure_tiktoken_cache()  # LlamaIndex's splitters load tiktoken; no download needed
    return FastEmbedEmbeddings()


def weaviate_options() -> dict[str, Any]:
    """Connection options for a Weaviate store: a server from the environment, else embedded."""
    url = os.environ.get(WEAVIATE_URL_ENV)
    if not url:
        return {}  # embedded Weaviate (data under ~/.local/share/rag-stores/weaviate)
    return {"url": url, "grpc_port": int(os.environ.get(WEAVIATE_GRPC_ENV, "50051"))}


def langchain_store(backend: str, name: str, embedding: Any, *, keywords: bool = False,
                    **options: Any) -> Any:
    """A fresh LangChain store (an existing collection of that name is dropped first).

    keywords=True: Qdrant also stores BM25 sparse vectors (for BM25 and hybrid searches)
    while the store's own searches stay dense; Weaviate always has its BM25 index.
    """
    from embedders.langchain import FastEmbedSparse
    from rag_stores.langchain import QdrantVectorStore, WeaviateVectorStore

    if backend == "qdrant":
        if keywords:
            options["sparse_embedding"] = FastEmbedSparse()
        store = QdrantVectorStore(embedding, name, **options)
    else:
        store = WeaviateVectorStore(embedding, name, **weaviate_options(), **options)
    if store.backend.exists():
        store.backend.drop()
    return store


def where(backend: str) -> str:
    if backend == "qdrant":
        return "Qdrant (embedded, in memory)"
    url = os.environ.get(WEAVIATE_URL_ENV)
    return f"Weaviate at {url}" if url else "Weaviate (embedded)"


FAKE_ANSWER = "[fake LLM: no real LLM is configured, so this is a canned reply]"


def chat_model() -> tuple[Any, bool]:
    """(LangChain chat model, is it real). A configured or local LLM, else a labelled fake."""
    from langchain_core.language_models import FakeListChatModel

    from rag_stores.app import choose_llm

    llm, why = choose_llm()
    print(f"LLM: {why}")
    if llm is None:
        print("     using langchain-core's FakeListChatModel instead: its replies are canned")
        return FakeListChatModel(responses=[FAKE_ANSWER]), False
    return llm, True


def llama_index_llm() -> tuple[Any, bool]:
    """A LlamaIndex LLM: the chat model above behind LlamaIndex's LLM interface, else MockLLM
    (which answers with the prompt it got, so the example still shows what would be sent)."""
    from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata
    from llama_index.core.llms.callbacks import llm_completion_callback
    from llama_index.core.llms.mock import MockLLM

    from rag_stores.app import choose_llm

    chat, why = choose_llm()
    print(f"LLM: {why}")
    if chat is None:
        print("     using LlamaIndex's MockLLM instead: it answers with the prompt it got")
        return MockLLM(), False

    class LangChainChat(CustomLLM):
        """Any LangChain chat model as a LlamaIndex LLM (completion style)."""

        chat_model: Any = None

        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(context_window=2048, num_output=256, model_name="langchain")

        @llm_completion_callback()
        def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
            return CompletionResponse(text=str(self.chat_model.invoke(prompt).content))

        @llm_completion_callback()
        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
            yield self.complete(prompt)

    return LangChainChat(chat_model=chat), True
