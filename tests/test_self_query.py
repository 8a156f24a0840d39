"""LangChain self-query (SelfQueryRetriever + our StructuredQuery translator) and LlamaIndex
auto-retrieval (VectorIndexAutoRetriever) over our stores on both engines, with fake LLMs
that answer with a structured query."""

from __future__ import annotations

import json

import pytest
from langchain_core.documents import Document
from langchain_core.language_models import FakeListLLM
from langchain_core.structured_query import Comparator, Comparison, Operation, Operator

from rag_stores.langchain import QdrantVectorStore, WeaviateVectorStore
from retrievers.self_query import RagStoresTranslator, self_query_retriever
from tests.conformance import fresh_name
from tests.test_conformance import TableEmbeddings

MOVIES = [
    Document(page_content="apple pie", metadata={"year": 1993, "genre": "scifi", "rating": 7.7},
             id="m1"),
    Document(page_content="apple tart", metadata={"year": 2010, "genre": "scifi", "rating": 8.2},
             id="m2"),
    Document(page_content="banana bread", metadata={"year": 2006, "genre": "drama", "rating": 8.6},
             id="m3"),
    Document(page_content="cherry cake", metadata={"year": 2019, "genre": "scifi", "rating": 9.9},
             id="m4"),
]


@pytest.fixture(params=["qdrant", "weaviate"])
def movie_store(request):
    if request.param == "qdrant":
        store = QdrantVectorStore(TableEmbeddings(), fresh_name("movies"))
    else:
        server = request.getfixturevalue("weaviate_server")
        store = WeaviateVectorStore(TableEmbeddings(), fresh_name("Movies"), url=server.url,
                                    grpc_port=server.grpc_port, index="flat")
    store.add_documents(MOVIES)
    yield store
    store.backend.drop()
    store.close()


def _answer(query: str, filter: str, limit: int | None = None) -> str:
    body = {"query": query, "filter": filter, **({"limit": limit} if limit else {})}
    return "```json\n" + json.dumps(body) + "\n```"


def _info():
    from langchain_classic.chains.query_constructor.schema import AttributeInfo

    return [AttributeInfo(name="year", description="release year", type="integer"),
            AttributeInfo(name="genre", description="genre", type="string"),
            AttributeInfo(name="rating", description="rating out of 10", type="float")]


def test_translator_writes_our_filter_language() -> None:
    tree = Operation(operator=Operator.AND, arguments=[
        Comparison(comparator=Comparator.GTE, attribute="year", value=2000),
        Operation(operator=Operator.NOT, arguments=[
            Comparison(comparator=Comparator.EQ, attribute="genre", value="drama")]),
        Comparison(comparator=Comparator.LT, attribute="date",
                   value={"type": "date", "date": "2020-01-01"})])
    assert tree.accept(RagStoresTranslator()) == {"$and": [
        {"year": {"$gte": 2000}}, {"$not": {"genre": {"$eq": "drama"}}},
        {"date": {"$lt": "2020-01-01"}}]}


def test_self_query_retriever_filters_and_limits(movie_store) -> None:
    llm = FakeListLLM(responses=[
        _answer("query apple", 'and(gte("year", 2000), eq("genre", "scifi"))'),
        _answer("cherry cake", 'or(eq("genre", "drama"), gt("rating", 9.5))', limit=1),
        _answer("query apple", "NO_FILTER")])
    retriever = self_query_retriever(llm, movie_store, "dessert recipes as movies", _info(),
                                     enable_limit=True)
    assert [d.id for d in retriever.invoke("scifi after 2000")] == ["m2", "m4"]
    assert [d.id for d in retriever.invoke("one drama or top rated")] == ["m4"]  # limit 1
    assert {d.id for d in retriever.invoke("anything")} == {"m1", "m2", "m3", "m4"}


@pytest.fixture(params=["qdrant", "weaviate"])
def llama_movie_index(request):
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.schema import TextNode

    from rag_stores.llama_index import QdrantVectorStore as LlamaQdrant
    from rag_stores.llama_index import WeaviateVectorStore as LlamaWeaviate

    if request.param == "qdrant":
        store = LlamaQdrant(fresh_name("movies"))
    else:
        server = request.getfixturevalue("weaviate_server")
        store = LlamaWeaviate(fresh_name("Movies"), url=server.url, grpc_port=server.grpc_port,
                              index="flat")
    table = TableEmbeddings()
    nodes = [TextNode(text=d.page_content, id_=d.id, metadata=d.metadata,
                      embedding=table.embed_query(d.page_content)) for d in MOVIES]
    index = VectorStoreIndex(nodes, storage_context=StorageContext.from_defaults(
        vector_store=store), embed_model=_LlamaTable())
    yield index
    store.clear()
    store.close()


class _LlamaTable:
    """TableEmbeddings as a LlamaIndex embed model."""

    def __new__(cls):
        from llama_index.core.embeddings import BaseEmbedding

        table = TableEmbeddings()

        class Table(BaseEmbedding):
            def _get_query_embedding(self, query: str) -> list[float]:
                return table.embed_query(query)

            def _get_text_embedding(self, text: str) -> list[float]:
                return table.embed_query(text)

            async def _aget_query_embedding(self, query: str) -> list[float]:
                return table.embed_query(query)

        return Table()


def _answering_llm(answer: dict):
    from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata

    class Answering(CustomLLM):
        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata()

        def complete(self, prompt: str, formatted: bool = False, **kwargs) -> CompletionResponse:
            return CompletionResponse(text="```json\n" + json.dumps(answer) + "\n```")

        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs):
            yield self.complete(prompt)

    return Answering()


def test_llama_index_auto_retriever_applies_the_llm_filters(llama_movie_index) -> None:
    from llama_index.core.retrievers import VectorIndexAutoRetriever
    from llama_index.core.vector_stores.types import MetadataInfo, VectorStoreInfo

    info = VectorStoreInfo(content_info="desserts", metadata_info=[
        MetadataInfo(name="year", type="int", description="release year"),
        MetadataInfo(name="genre", type="str", description="genre")])
    answer = {"query": "query apple", "filters": [
        {"key": "genre", "value": "scifi", "operator": "=="},
        {"key": "year", "value": 2000, "operator": ">="}], "top_k": 5}
    retriever = VectorIndexAutoRetriever(llama_movie_index, vector_store_info=info,
                                         llm=_answering_llm(answer), similarity_top_k=10)
    assert [n.node.node_id for n in retriever.retrieve("scifi after 2000")] == ["m2", "m4"]
    answer["top_k"] = 1
    assert [n.node.node_id for n in retriever.retrieve("the best one")] == ["m2"]
