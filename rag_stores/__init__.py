"""Qdrant and Weaviate for LangChain and LlamaIndex."""
