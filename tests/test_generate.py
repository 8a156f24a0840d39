"""rag_stores.generate: Weaviate's generate API over both backends, both frameworks, any LLM.

Real stores only (Qdrant in memory, the Weaviate server fixture); fake LLMs that echo their
prompt (LangChain's ParrotFakeChatModel, LlamaIndex's MockLLM, a recording LangChain LLM)
so that every prompt can be asserted exactly.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings
from langchain_core.language_models.fake_chat_models import ParrotFakeChatModel
from langchain_core.language_models.llms import LLM
from langchain_core.output_parsers import StrOutputParser
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters
from pydantic import Field, PrivateAttr
from qdrant_client import AsyncQdrantClient, QdrantClient

from embedders.tokens import count_tokens
from rag_stores import langchain as lc
from rag_stores import llama_index as li
from rag_stores.core.ids import to_point_id
from rag_stores.core.query import UnsupportedError
from rag_stores.generate import GenerativeSearch, PromptError, grouped_prompt

# --- data: hand-made 3-dim vectors, ranked a > b > c for the query "pets" ---------------------

DOCS = [
    ("a", "Cats purr softly when they are warm and happy", {"title": "Cats", "year": 2001}),
    ("b", "Dogs bark loudly at the mailman", {"title": "Dogs", "year": 2005, "tags": ["x", "y"]}),
    ("c", "Birds sing at dawn", {"title": "Birds"}),
]
TABLE = {
    DOCS[0][1]: [1.0, 0.0, 0.0],
    DOCS[1][1]: [0.8, 0.6, 0.0],
    DOCS[2][1]: [0.0, 0.0, 1.0],
    "pets": [1.0, 0.1, 0.0],
    "dogs": [0.8, 0.6, 0.0],
    "bark": [0.0, 1.0, 0.0],
    "sky": [0.0, 0.0, 1.0],
}


class TableEmbeddings(Embeddings):
    """LangChain embeddings from a fixed table: exact, known vectors."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [TABLE[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return TABLE[text]


class TableLlamaEmbedding(BaseEmbedding):
    """The same table as a LlamaIndex embedding model."""

    def _get_query_embedding(self, query: str) -> list[float]:
        return TABLE[query]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return TABLE[query]

    def _get_text_embedding(self, text: str) -> list[float]:
        return TABLE[text]


class RecordingLLM(LLM):
    """A LangChain LLM that answers `tag + prompt` and records every prompt."""

    tag: str = ""
    prompts: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "recording"

    def _call(self, prompt: str, stop: Any = None, run_manager: Any = None, **kw: Any) -> str:
        self.prompts.append(prompt)
        return self.tag + prompt

    async def _acall(self, prompt: str, stop: Any = None, run_manager: Any = None,
                     **kw: Any) -> str:
        self.prompts.append(prompt)
        return self.tag + prompt


class AsyncGateLLM(LLM):
    """Counts how many async calls are in flight at once; each yields to the loop a while."""

    _active: int = PrivateAttr(default=0)
    _max: int = PrivateAttr(default=0)

    @property
    def _llm_type(self) -> str:
        return "gate"

    def _call(self, prompt: str, stop: Any = None, run_manager: Any = None, **kw: Any) -> str:
        raise AssertionError("the async path must not call the sync method")

    async def _acall(self, prompt: str, stop: Any = None, run_manager: Any = None,
                     **kw: Any) -> str:
        self._active += 1
        self._max = max(self._max, self._active)
        for _ in range(20):
            await asyncio.sleep(0)
        self._active -= 1
        return prompt


class ThreadGateLLM(LLM):
    """Sync calls meet at a barrier of `parties` threads: it passes only if that many run at once."""

    parties: int = 3
    _lock: Any = PrivateAttr(default_factory=threading.Lock)
    _barrier: Any = PrivateAttr(default=None)
    _active: int = PrivateAttr(default=0)
    _max: int = PrivateAttr(default=0)

    def model_post_init(self, context: Any) -> None:
        self._barrier = threading.Barrier(self.parties, timeout=60)

    @property
    def _llm_type(self) -> str:
        return "thread-gate"

    def _call(self, prompt: str, stop: Any = None, run_manager: Any = None, **kw: Any) -> str:
        with self._lock:
            self._active += 1
            self._max = max(self._max, self._active)
        self._barrier.wait()  # BrokenBarrierError if fewer than `parties` run concurrently
        time.sleep(0.05)  # stay busy a moment, so that a pool wider than the bound shows
        with self._lock:
            self._active -= 1
        return prompt


def _name(prefix: str = "Gen") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def _nodes() -> list[TextNode]:
    return [TextNode(id_=i, text=t, metadata=m, embedding=TABLE[t]) for i, t, m in DOCS]


# --- stores: both frameworks over both backends -----------------------------------------------

@pytest.fixture
def qdrant_client():
    client = QdrantClient(":memory:")
    yield client
    client.close()


def lc_qdrant(client: QdrantClient, sparse_encoder: Any) -> lc.QdrantVectorStore:
    store = lc.QdrantVectorStore(TableEmbeddings(), _name("gen"), client=client, dim=3,
                                 retrieval_mode="hybrid", sparse_embedding=sparse_encoder)
    store.add_texts([t for _, t, _ in DOCS], [m for _, _, m in DOCS], ids=[i for i, _, _ in DOCS])
    return store


STORE_KINDS = ["lc-qdrant", "llama-qdrant", "lc-weaviate", "llama-weaviate"]


@pytest.fixture(params=STORE_KINDS)
async def searcher(request, sparse_encoder):
    """A GenerativeSearch over the three docs, with an echoing LLM of the store's framework."""
    kind = request.param
    ids, texts, metas = zip(*DOCS, strict=True)
    if kind.endswith("qdrant"):
        client = QdrantClient(":memory:")
        if kind == "lc-qdrant":
            yield GenerativeSearch(lc_qdrant(client, sparse_encoder), ParrotFakeChatModel())
        else:
            lstore = li.QdrantVectorStore(_name("gen"), client=client, enable_hybrid=True,
                                          sparse_encoder=sparse_encoder)
            lstore.add(_nodes())
            yield GenerativeSearch(lstore, MockLLM(), embed_model=TableLlamaEmbedding())
        client.close()
        return
    server = request.getfixturevalue("weaviate_server")
    async_client = await server.connect_async()
    with server.connect() as client:
        name = _name()
        if kind == "lc-weaviate":
            store = lc.WeaviateVectorStore(TableEmbeddings(), name, client=client,
                                           async_client=async_client, dim=3)
            store.add_texts(list(texts), list(metas), ids=list(ids))
            yield GenerativeSearch(store, ParrotFakeChatModel())
        else:
            lstore = li.WeaviateVectorStore(name, client=client, async_client=async_client)
            lstore.add(_nodes())
            yield GenerativeSearch(lstore, MockLLM(), embed_model=TableLlamaEmbedding())
        client.collections.delete(name)
    await async_client.close()


# --- the same prompts on every store ------------------------------------------------------------

def test_single_prompt_per_object(searcher):
    result = searcher.near_text("pets", single_prompt="Describe {title}: {text}", limit=2)
    assert [o.id for o in result.objects] == ["a", "b"]
    expected = [f"Describe {m['title']}: {t}" for _, t, m in DOCS[:2]]
    assert result.prompts.single == expected
    assert [o.generated for o in result.objects] == expected  # the fakes echo their prompt
    assert [o.generative.text for o in result.objects] == expected
    first = result.objects[0]
    assert first.properties == {"text": DOCS[0][1], "title": "Cats", "year": 2001}
    assert first.uuid == uuid.UUID(to_point_id("a"))
    assert first.metadata.distance == pytest.approx(1 - 1 / (1.01 ** 0.5), abs=1e-4)
    assert result.generative is None and result.generated is None


def test_grouped_task_sends_properties_as_json(searcher):
    result = searcher.near_text("pets", grouped_task="Which of these is {title}?", limit=3)
    objects = [{"text": t, **{k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
                              for k, v in m.items()}} for _, t, m in DOCS]
    body = json.dumps(objects, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # the placeholder is filled from the best-ranked object, as Weaviate does
    assert result.prompts.grouped == f"Which of these is Cats?: {body}"
    assert '"tags":"[\\"x\\",\\"y\\"]"' in result.prompts.grouped
    assert result.generated == result.grouped == result.generative.text == result.prompts.grouped
    assert all(o.generative is None for o in result.objects)


def test_grouped_properties_restrict_the_context(searcher):
    result = searcher.bm25("bark", grouped_task="Summarize", grouped_properties=["title"],
                           limit=1)
    assert [o.id for o in result.objects] == ["b"]
    assert result.generated == 'Summarize: [{"title":"Dogs"}]'


def test_hybrid_and_fetch_objects(searcher):
    result = searcher.hybrid("bark", alpha=0.0, single_prompt="{title}", limit=1)
    assert [o.generated for o in result.objects] == ["Dogs"]
    assert result.objects[0].metadata.score is not None
    fetched = searcher.fetch_objects(single_prompt="{{title}} from {{ year }}",
                                     filters=_year_filter(searcher), limit=5)
    assert sorted(o.generated for o in fetched.objects) == ["Cats from 2001", "Dogs from 2005"]


def _year_filter(searcher: GenerativeSearch) -> Any:
    """A filter in the store's own framework: a LangChain dict or LlamaIndex MetadataFilters."""
    if isinstance(searcher.store, lc.BackendVectorStore):
        return {"year": {"$gte": 2000}}
    return MetadataFilters(filters=[MetadataFilter(key="year", value=2000, operator=">=")])


async def test_async_methods_give_the_same_result(searcher):
    sync = searcher.near_text("pets", single_prompt="S {text}", grouped_task="G", limit=2)
    result = await searcher.anear_text("pets", single_prompt="S {text}", grouped_task="G",
                                       limit=2)
    assert result.prompts == sync.prompts
    assert [o.generated for o in result.objects] == [o.generated for o in sync.objects]
    assert result.generated == sync.generated


def test_unknown_placeholder_fails_before_any_llm_call(searcher):
    llm = RecordingLLM()
    with pytest.raises(PromptError, match=r"\{nope\}"):
        searcher.near_text("pets", single_prompt="{text} {nope}", generative_provider=llm)
    # "year" is missing on c only: still an error, naming the object
    with pytest.raises(PromptError, match=r"\{year\}.*'c'"):
        searcher.near_text("pets", single_prompt="{year}", grouped_task="G", limit=3,
                           generative_provider=llm)
    with pytest.raises(PromptError, match=r"\{nope\}"):
        searcher.near_text("pets", single_prompt="{text}", grouped_task="Use {nope}",
                           generative_provider=llm)
    assert llm.prompts == []


# --- Qdrant: budget, providers, concurrency, LCEL, errors ------------------------------------

@pytest.fixture
def lc_store(qdrant_client, sparse_encoder):
    return lc_qdrant(qdrant_client, sparse_encoder)


def _context(doc: tuple[str, str, dict[str, Any]], only: list[str] | None = None
             ) -> dict[str, str]:
    _, text, meta = doc
    props = {"text": text, **meta}
    return {k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
            for k, v in props.items() if only is None or k in only}


def test_token_budget_drops_lowest_ranked_first(lc_store):
    two = grouped_prompt("Sum", [_context(DOCS[0]), _context(DOCS[1])])
    three = grouped_prompt("Sum", [_context(d) for d in DOCS])
    budget = count_tokens(two) + 1
    assert count_tokens(three) > budget
    llm = RecordingLLM()
    gs = GenerativeSearch(lc_store, llm, max_context_tokens=budget)
    result = gs.near_text("pets", grouped_task="Sum", limit=3)
    assert [o.id for o in result.objects] == ["a", "b", "c"]  # all retrieved ...
    assert result.dropped == ["c"]  # ... the lowest-ranked left out of the prompt
    assert result.truncated == []
    assert result.prompts.grouped == two and llm.prompts == [two]


def test_token_budget_truncates_the_longest_value_last(lc_store):
    one = grouped_prompt("Sum", [_context(DOCS[0])])
    budget = count_tokens(one) - 4
    gs = GenerativeSearch(lc_store, RecordingLLM(), max_context_tokens=budget)
    result = gs.near_text("pets", grouped_task="Sum", limit=3)
    assert result.dropped == ["b", "c"] and result.truncated == ["a"]
    prompt = result.prompts.grouped
    assert count_tokens(prompt) <= budget
    (kept,) = json.loads(prompt.removeprefix("Sum: "))
    assert kept["title"] == "Cats" and kept["year"] == "2001"  # short values untouched
    assert DOCS[0][1].startswith(kept["text"]) and len(kept["text"]) < len(DOCS[0][1])


def test_budget_smaller_than_the_task_is_an_error(lc_store):
    llm = RecordingLLM()
    gs = GenerativeSearch(lc_store, llm, max_context_tokens=3)
    with pytest.raises(PromptError, match="max_context_tokens=3"):
        gs.near_text("pets", grouped_task="Summarize all of these documents please", limit=2)
    assert llm.prompts == []


def test_generative_provider_overrides_per_call(lc_store):
    default = RecordingLLM(tag="default:")
    gs = GenerativeSearch(lc_store, default)
    result = gs.near_text("pets", single_prompt="{title}", grouped_task="T",
                          grouped_properties=["title"], limit=2,
                          generative_provider=MockLLM())  # a LlamaIndex LLM for this call
    assert [o.generated for o in result.objects] == ["Cats", "Dogs"]
    assert result.generated == 'T: [{"title":"Cats"},{"title":"Dogs"}]'
    assert default.prompts == []
    other = RecordingLLM(tag="other:")
    result = gs.near_text("pets", single_prompt="{title}", limit=1, generative_provider=other)
    assert result.objects[0].generated == "other:Cats"
    assert gs.near_text("pets", single_prompt="{title}", limit=1).objects[0].generated \
        == "default:Cats"
    assert other.prompts == ["Cats"] and default.prompts == ["Cats"]


def _many(client: QdrantClient, count: int) -> lc.QdrantVectorStore:
    store = lc.QdrantVectorStore(TableEmbeddings(), _name("many"), client=client, dim=3)
    texts = [f"doc {i}" for i in range(count)]
    for i, text in enumerate(texts):
        TABLE.setdefault(text, [1.0, float(i), 0.5])
    store.add_texts(texts, [{"n": i} for i in range(count)])
    return store


async def test_async_single_prompts_run_concurrently_within_the_bound():
    client = AsyncQdrantClient(":memory:")
    try:
        store = lc.QdrantVectorStore(TableEmbeddings(), _name("many"), async_client=client,
                                     dim=3)
        texts = [f"doc {i}" for i in range(9)]
        for i, text in enumerate(texts):
            TABLE.setdefault(text, [1.0, float(i), 0.5])
        await store.aadd_texts(texts, [{"n": i} for i in range(9)])
        llm = AsyncGateLLM()
        gs = GenerativeSearch(store, llm, max_concurrency=3)
        result = await gs.afetch_objects(single_prompt="n={n}", grouped_task="all", limit=9)
        assert sorted(o.generated for o in result.objects) == [f"n={i}" for i in range(9)]
        assert llm._max == 3
        serial = AsyncGateLLM()
        await GenerativeSearch(store, serial, max_concurrency=1).afetch_objects(
            single_prompt="n={n}", limit=9)
        assert serial._max == 1
    finally:
        await client.close()


def test_sync_single_prompts_run_in_threads_within_the_bound(qdrant_client):
    store = _many(qdrant_client, 6)
    llm = ThreadGateLLM(parties=3)
    result = GenerativeSearch(store, llm, max_concurrency=3).fetch_objects(
        single_prompt="n={n}", limit=6)
    assert sorted(o.generated for o in result.objects) == [f"n={i}" for i in range(6)]
    assert llm._max == 3


def test_lcel_composition(lc_store):
    gs = GenerativeSearch(lc_store, ParrotFakeChatModel())
    chain = gs.as_runnable("near_text", grouped_task="Sum", grouped_properties=["title"],
                           limit=2, output="text") | StrOutputParser() | (lambda s: s.upper())
    assert chain.invoke("pets") == 'SUM: [{"TITLE":"CATS"},{"TITLE":"DOGS"}]'
    results = gs.as_runnable("bm25", single_prompt="{title}", limit=1)
    assert results.invoke("bark").objects[0].generated == "Dogs"
    assert results.invoke({"query": "bark", "single_prompt": "{year}"}).objects[0].generated \
        == "2005"
    texts = gs.as_runnable("near_vector", single_prompt="{title}", limit=2, output="texts")
    assert texts.batch([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]) == [["Birds", "Dogs"],
                                                               ["Cats", "Dogs"]]
    with pytest.raises(TypeError):
        gs.as_runnable("hybrid", single_prompt="x", nope=1)


async def test_lcel_async(lc_store):
    chain = GenerativeSearch(lc_store, ParrotFakeChatModel()).as_runnable(
        "hybrid", grouped_task="T", grouped_properties=["title"], limit=1, alpha=1.0,
        output="text")
    assert await chain.ainvoke("pets") == 'T: [{"title":"Cats"}]'


def test_weaviate_options_map_to_the_store(lc_store):
    gs = GenerativeSearch(lc_store, ParrotFakeChatModel())
    # distance / certainty (cosine): c is at distance 1 from "pets"
    far = gs.near_text("pets", single_prompt="{title}", distance=0.5, limit=3)
    assert [o.id for o in far.objects] == ["a", "b"]
    assert [o.id for o in gs.near_text("pets", single_prompt="{title}", certainty=0.75,
                                       limit=3).objects] == ["a", "b"]
    assert [o.id for o in gs.near_text("pets", single_prompt="x", offset=1, limit=1).objects] \
        == ["b"]
    with_vec = gs.near_vector([0, 0, 1], single_prompt="x", limit=1, include_vector=True)
    assert with_vec.objects[0].vector == {lc_store.backend.vector_name: [0.0, 0.0, 1.0]}
    # a list of concepts searches near their mean
    assert gs.near_text(["dogs", "pets"], single_prompt="x", limit=1).objects[0].id == "b"


def test_bad_calls_are_clear_errors(lc_store, qdrant_client):
    gs = GenerativeSearch(lc_store, ParrotFakeChatModel())
    with pytest.raises(ValueError, match="single_prompt=, grouped_task="):
        gs.near_text("pets")
    with pytest.raises(ValueError, match="grouped_properties applies to grouped_task"):
        gs.near_text("pets", single_prompt="x", grouped_properties=["title"])
    with pytest.raises(TypeError, match="LangChain chat model"):
        gs.near_text("pets", single_prompt="x", generative_provider=object())
    with pytest.raises(ValueError, match="no LLM"):
        GenerativeSearch(lc_store).near_text("pets", single_prompt="x")
    with pytest.raises(UnsupportedError, match="QdrantBackend has no server-side generation"):
        gs.near_text("pets", single_prompt="x", server_side=True)
    lstore = li.QdrantVectorStore(_name("gen"), client=qdrant_client)
    lstore.add(_nodes())
    with pytest.raises(ValueError, match="embed_model="):
        GenerativeSearch(lstore, MockLLM()).near_text("pets", single_prompt="x")
    with pytest.raises(ValueError, match="keyword search"):
        GenerativeSearch(lstore, MockLLM()).bm25("bark", single_prompt="x")
    assert GenerativeSearch(lstore, MockLLM()).near_vector(
        [0, 0, 1], single_prompt="{title}", limit=1).objects[0].generated == "Birds"
    with pytest.raises(TypeError, match="BackendVectorStore"):
        GenerativeSearch(object(), MockLLM())


def test_empty_result_calls_no_llm(lc_store):
    llm = RecordingLLM()
    result = GenerativeSearch(lc_store, llm).near_text(
        "pets", single_prompt="{nope}", grouped_task="T", filters={"year": 1900})
    assert result.objects == [] and result.generative.text is None and llm.prompts == []


# --- Weaviate: server-side generation with the generative-dummy module ---------------------------

DUMMY = ("You want me to generate something based on the following prompt: {}. With "
         "settings: . I'm sorry, I'm just a dummy and can't generate anything.")


@pytest.fixture
def weaviate_store(weaviate_client):
    store = lc.WeaviateVectorStore(TableEmbeddings(), _name(), client=weaviate_client, dim=3)
    store.add_texts([t for _, t, _ in DOCS], [m for _, _, m in DOCS], ids=[i for i, _, _ in DOCS])
    yield store
    weaviate_client.collections.delete(store.backend.collection_name)


def _enable_dummy(client: Any, name: str) -> None:
    from weaviate.classes.config import Reconfigure

    # A collection made without a module gets one later (the backend's generative_config=
    # option sets it at creation: test_generative_config_option_enables_server_side).
    client.collections.use(name).config.update(
        generative_config=Reconfigure.Generative.custom("generative-dummy"))


def test_generative_config_option_enables_server_side(weaviate_client):
    from weaviate.classes.config import Configure

    store = lc.WeaviateVectorStore(TableEmbeddings(), _name(), client=weaviate_client, dim=3,
                                   generative_config=Configure.Generative.custom("generative-dummy"))
    store.add_texts([t for _, t, _ in DOCS], [m for _, _, m in DOCS], ids=[i for i, _, _ in DOCS])
    result = GenerativeSearch(store, ParrotFakeChatModel()).near_text(
        "pets", grouped_task="Compare", limit=2, server_side=True)
    assert result.server_side and result.generated.startswith("You want me to generate")
    weaviate_client.collections.delete(store.backend.collection_name)


def test_server_side_needs_a_generative_module(weaviate_store):
    gs = GenerativeSearch(weaviate_store, ParrotFakeChatModel())
    with pytest.raises(UnsupportedError, match="has no generative module"):
        gs.near_text("pets", single_prompt="{text}", server_side=True)


def test_server_side_matches_client_side_prompts(weaviate_store, weaviate_client):
    _enable_dummy(weaviate_client, weaviate_store.backend.collection_name)
    gs = GenerativeSearch(weaviate_store, ParrotFakeChatModel())
    kwargs = {"single_prompt": "Describe {text}", "grouped_task": "Compare",
              "grouped_properties": ["text"], "limit": 2}
    server = gs.near_text("pets", server_side=True, **kwargs)
    local = gs.near_text("pets", **kwargs)
    assert server.server_side and not local.server_side
    assert [o.id for o in server.objects] == [o.id for o in local.objects] == ["a", "b"]
    # generative-dummy echoes the prompt Weaviate built: the same as ours, byte for byte
    assert [o.generated for o in server.objects] == [DUMMY.format(p)
                                                     for p in local.prompts.single]
    assert server.generated == DUMMY.format(local.prompts.grouped)
    assert server.objects[0].properties == local.objects[0].properties
    assert server.objects[0].metadata.distance == pytest.approx(local.objects[0].metadata.distance,
                                                                abs=1e-4)
    assert server.prompts.single == [] and server.prompts.grouped is None
    # weaviate's own parameter objects and a per-call provider, on both sides
    from weaviate.classes.generate import GenerativeConfig, GenerativeParameters

    params = {"single_prompt": GenerativeParameters.single_prompt("Describe {text}"),
              "grouped_task": GenerativeParameters.grouped_task("Compare",
                                                                non_blob_properties=["text"]),
              "limit": 2}
    assert [o.generated for o in gs.near_text("pets", **params).objects] \
        == local.prompts.single
    server = gs.near_text("pets", server_side=True, generative_provider=GenerativeConfig.dummy(),
                          **params)
    assert server.generated == DUMMY.format(local.prompts.grouped)
    with pytest.raises(TypeError, match="weaviate GenerativeConfig"):
        gs.near_text("pets", server_side=True, generative_provider=ParrotFakeChatModel(),
                     **params)
    with pytest.raises(TypeError, match="LangChain chat model"):
        gs.near_text("pets", generative_provider=GenerativeConfig.dummy(), **params)


def test_server_side_maps_metadata_keys(weaviate_store, weaviate_client):
    _enable_dummy(weaviate_client, weaviate_store.backend.collection_name)
    gs = GenerativeSearch(weaviate_store, server_side=True)  # no client-side LLM needed
    result = gs.bm25("bark", single_prompt="{title} ({{year}})", grouped_task="G {title}",
                     grouped_properties=["title"], limit=1)
    assert result.objects[0].generated == DUMMY.format('["Dogs"] ([2005])')
    assert result.generated == DUMMY.format('G ["Dogs"]: [{"md_title__s":"[\\"Dogs\\"]"}]')
    # without grouped_properties: the text and the exact metadata (metadata_json)
    default = gs.fetch_objects(grouped_task="G", filters={"title": "Cats"})
    context = [{"metadata_json": json.dumps(DOCS[0][2]), "text": DOCS[0][1]}]
    assert default.generated == DUMMY.format(grouped_prompt("G", context))
    with pytest.raises(PromptError, match=r"\{nope\} is neither a property"):
        gs.near_text("pets", single_prompt="{text} {nope}")


def test_grouped_json_escapes_like_go(weaviate_store, weaviate_client):
    """Weaviate's JSON (Go) escapes <, > and & and keeps non-ASCII: so do we."""
    text = "Tom & Jerry <3 caf\u00e9 \u2028 \"quoted\""
    TABLE[text] = [0.0, 0.0, -1.0]
    weaviate_store.add_texts([text], [{"title": "<b>"}], ids=["e"])
    _enable_dummy(weaviate_client, weaviate_store.backend.collection_name)
    gs = GenerativeSearch(weaviate_store, ParrotFakeChatModel())
    kwargs = {"grouped_task": "T", "grouped_properties": ["text"], "filters": {"title": "<b>"}}
    local = gs.fetch_objects(**kwargs)
    assert "\\u0026 Jerry \\u003c3 caf\u00e9 \\u2028 \\\"quoted" in local.generated
    assert gs.fetch_objects(server_side=True, **kwargs).generated == DUMMY.format(local.generated)


async def test_weaviate_async_client(weaviate_server):
    async_client = await weaviate_server.connect_async()
    name = _name()
    try:
        with weaviate_server.connect() as client:
            store = lc.WeaviateVectorStore(TableEmbeddings(), name, client=client,
                                           async_client=async_client, dim=3)
            await store.aadd_texts([t for _, t, _ in DOCS], [m for _, _, m in DOCS],
                                   ids=[i for i, _, _ in DOCS])
            _enable_dummy(client, store.backend.collection_name)
            gs = GenerativeSearch(store, ParrotFakeChatModel())
            local = await gs.ahybrid("bark", alpha=0.0, single_prompt="{title}",
                                     grouped_task="T", limit=2)
            assert local.objects[0].generated == "Dogs"
            server = await gs.ahybrid("bark", alpha=0.0, single_prompt="{text}",
                                      grouped_task="T", grouped_properties=["text"], limit=1,
                                      server_side=True)
            assert server.objects[0].generated == DUMMY.format(DOCS[1][1])
            assert server.generated == DUMMY.format(grouped_prompt("T", [{"text": DOCS[1][1]}]))
            client.collections.delete(store.backend.collection_name)
    finally:
        await async_client.close()
