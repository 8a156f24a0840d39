"""Qdrant and Weaviate for LangChain and LlamaIndex."""

# Every store module needs the embedders, whose import lets tiktoken find the seeded encodings.
import embedders  # noqa: F401
