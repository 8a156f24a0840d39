"""LangChain self-query over our stores: one `StructuredQuery` translator for both engines.

LangChain's `SelfQueryRetriever.from_llm` finds a built-in translator by the store's class
(in langchain-community) and has none for ours, so it takes ours explicitly:

    from retrievers.self_query import RagStoresTranslator, self_query_retriever
    retriever = self_query_retriever(llm, store, "movie plots", metadata_field_info)
    # the same as SelfQueryRetriever.from_llm(..., structured_query_translator=RagStoresTranslator())

The translator writes LangChain filter dicts of our filter language
(`rag_stores.core.filters`), so one translator serves Qdrant and Weaviate alike.
"""

from __future__ import annotations

from typing import Any

from langchain_core.structured_query import (
    Comparator,
    Comparison,
    Operation,
    Operator,
    StructuredQuery,
    Visitor,
)

_COMPARATORS = {
    Comparator.EQ: "$eq", Comparator.NE: "$ne", Comparator.GT: "$gt", Comparator.GTE: "$gte",
    Comparator.LT: "$lt", Comparator.LTE: "$lte", Comparator.IN: "$in", Comparator.NIN: "$nin",
    Comparator.CONTAIN: "$contains", Comparator.LIKE: "$like",
}
_OPERATORS = {Operator.AND: "$and", Operator.OR: "$or"}


class RagStoresTranslator(Visitor):
    """StructuredQuery -> a filter dict our LangChain stores take as `filter=`."""

    allowed_comparators = tuple(_COMPARATORS)
    allowed_operators = (Operator.AND, Operator.OR, Operator.NOT)

    def visit_operation(self, operation: Operation) -> dict[str, Any]:
        args = [arg.accept(self) for arg in operation.arguments]
        if operation.operator == Operator.NOT:
            if len(args) != 1:
                raise ValueError(f"NOT takes one argument, got {len(args)}")
            return {"$not": args[0]}
        return {_OPERATORS[operation.operator]: args}

    def visit_comparison(self, comparison: Comparison) -> dict[str, Any]:
        self._validate_func(comparison.comparator)
        value = comparison.value
        if isinstance(value, dict) and value.get("type") == "date":  # LangChain's date form
            value = value["date"]
        return {comparison.attribute: {_COMPARATORS[comparison.comparator]: value}}

    def visit_structured_query(self, structured_query: StructuredQuery
                               ) -> tuple[str, dict[str, Any]]:
        if structured_query.filter is None:
            return structured_query.query, {}
        return structured_query.query, {"filter": structured_query.filter.accept(self)}


def self_query_retriever(llm: Any, vectorstore: Any, document_contents: str,
                         metadata_field_info: Any, **kwargs: Any) -> Any:
    """`SelfQueryRetriever.from_llm` with our translator (needs langchain-classic)."""
    try:
        from langchain_classic.retrievers.self_query.base import SelfQueryRetriever
    except ImportError as exc:
        raise ImportError("self-query needs langchain-classic: pip install langchain-classic"
                          ) from exc
    kwargs.setdefault("structured_query_translator", RagStoresTranslator())
    return SelfQueryRetriever.from_llm(llm, vectorstore, document_contents, metadata_field_info,
                                       **kwargs)
