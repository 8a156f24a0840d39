"""Records as LangChain `Document`s and LlamaIndex `TextNode`s: the one conversion the
stores and the retrievers share (both sit above this module, so neither imports the other)."""

from __future__ import annotations

from typing import Any

from langchain_core.documents import Document
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

from .core.records import Record


def to_document(record: Record) -> Document:
    return Document(page_content=record.text, metadata=record.metadata, id=record.id)


def to_node(record: Record) -> TextNode:
    relationships: dict[Any, Any] = {}
    for key, value in (record.relationships or {}).items():
        rel = NodeRelationship(key)
        relationships[rel] = ([RelatedNodeInfo.from_dict(v) for v in value]
                              if isinstance(value, list) else RelatedNodeInfo.from_dict(value))
    if record.ref_doc_id and NodeRelationship.SOURCE not in relationships:
        relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=record.ref_doc_id)
    return TextNode(id_=record.id, text=record.text, metadata=record.metadata,
                    relationships=relationships, embedding=record.vector)
