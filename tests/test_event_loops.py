"""A store works from any event loop: consecutive `asyncio.run()` calls, a long-lived
(notebook-style) loop, a worker thread with its own loop, two loops at once.

Real engines: the Weaviate server, a Qdrant server started here (REST and gRPC) and Qdrant
local mode, each through the LangChain and the LlamaIndex store. The stores open their own
connections, so each loop gets its own async client (rag_stores.core.loops). Hand-made
vectors and exact search (Weaviate flat, Qdrant exact=True): expected orders are exact.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import warnings
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery

from rag_stores import langchain as lc
from rag_stores import llama_index as li
from tests.conformance import fresh_name
from tests.test_conformance import FRUIT, TABLE, TableEmbeddings

KINDS = ["weaviate", "qdrant-server", "qdrant-server-grpc", "qdrant-local"]
FACES = ["langchain", "llama_index"]
# query text -> the ids expected first, in order
EXPECTED = {"query apple": ["apple pie", "apple tart"], "dates": ["dates"],
            "banana bread": ["banana bread"], "cherry cake": ["cherry cake"]}


@pytest.fixture(scope="module")
def qdrant_node() -> Iterator[Any]:
    """A real Qdrant server for this module."""
    from rag_stores.servers.qdrant import QdrantBinaryError, QdrantServer, find_binary

    try:
        find_binary()
    except QdrantBinaryError as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI needs the Qdrant server binary: {exc}")
        pytest.skip(f"no Qdrant server binary: {exc}")
    with QdrantServer() as server:
        yield server


@pytest.fixture(params=[(k, f) for k in KINDS for f in FACES], ids=lambda p: "-".join(p))
def store(request) -> Iterator[Any]:
    """An empty store that opens its own connections, over one engine, through one face."""
    kind, face = request.param
    options: dict[str, Any] = {}
    if kind == "weaviate":
        server = request.getfixturevalue("weaviate_server")
        options = {"url": server.url, "grpc_port": server.grpc_port, "index": "flat"}
    elif kind.startswith("qdrant-server"):
        node = request.getfixturevalue("qdrant_node")
        options = {**node.connect_kwargs(prefer_grpc=kind.endswith("grpc")), "exact": True}
    name = fresh_name("Loops")
    engine = "Weaviate" if kind == "weaviate" else "Qdrant"
    if face == "langchain":
        made = getattr(lc, f"{engine}VectorStore")(TableEmbeddings(), name, **options)
    else:
        made = getattr(li, f"{engine}VectorStore")(name, **options)
    yield made
    if kind != "qdrant-local":  # an in-memory collection goes with its client
        made.backend.drop()
    made.close()


async def add(store: Any, texts: list[str]) -> None:
    if isinstance(store, lc.BackendVectorStore):
        await store.aadd_texts(texts, ids=texts)
    else:
        await store.async_add([TextNode(id_=t, text=t, embedding=TABLE[t]) for t in texts])


async def search(store: Any, text: str) -> list[str]:
    k = len(EXPECTED[text])
    if isinstance(store, lc.BackendVectorStore):
        return [d.id for d in await store.asimilarity_search(text, k=k)]
    result = await store.aquery(VectorStoreQuery(query_embedding=TABLE[text], similarity_top_k=k))
    return list(result.ids or [])


async def search_all(store: Any) -> dict[str, list[str]]:
    return {text: await search(store, text) for text in EXPECTED}


def clients_open(store: Any) -> int:
    """Async clients the store's backend holds, one per loop (none in Qdrant local mode)."""
    return len(store.backend._aclients._clients)


def current_client(store: Any) -> Any:
    return store.backend._aclients.current()


def is_closed(client: Any) -> bool:
    if hasattr(client, "is_connected"):  # WeaviateAsyncClient
        return not client.is_connected()
    return bool(client._client.closed)  # AsyncQdrantClient


def own_clients(store: Any) -> bool:
    """Whether the backend opens async clients (servers), not one sync client (local mode)."""
    return getattr(store.backend, "_connect", True) is not None


def test_consecutive_asyncio_runs(store) -> None:
    async def add_and_keep_client(texts: list[str]) -> Any:
        await add(store, texts)
        return current_client(store)

    first = asyncio.run(add_and_keep_client(FRUIT[:3]))
    assert asyncio.run(search(store, "query apple")) == EXPECTED["query apple"]
    second = asyncio.run(add_and_keep_client(FRUIT[3:]))
    assert asyncio.run(search_all(store)) == EXPECTED
    if own_clients(store):
        # one client per loop, each closed when asyncio.run shut its loop down
        assert first is not None and second is not None and first is not second
        assert is_closed(first) and is_closed(second)
    assert clients_open(store) == 0


def test_long_lived_loop_beside_other_loops(store) -> None:
    """A notebook's loop keeps its client while other loops come and go."""
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever)
    runner.start()

    def in_long_loop(coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)

    async def get_client() -> Any:
        return current_client(store)

    try:
        in_long_loop(add(store, FRUIT))
        kept = in_long_loop(get_client())
        assert asyncio.run(search_all(store)) == EXPECTED  # another loop, meanwhile
        found: list[Any] = []
        worker = threading.Thread(target=lambda: found.append(asyncio.run(search_all(store))))
        worker.start()
        worker.join()
        assert found == [EXPECTED]  # a worker thread with a loop of its own
        assert in_long_loop(search_all(store)) == EXPECTED
        assert in_long_loop(get_client()) is kept  # the long-lived loop kept its client
        assert clients_open(store) == (1 if own_clients(store) else 0)
        if own_clients(store):
            store.close()  # from another thread: the client is closed in its own loop
            in_long_loop(asyncio.sleep(0.2))
            assert is_closed(kept) and clients_open(store) == 0
            assert in_long_loop(search_all(store)) == EXPECTED  # and a new one opens
        in_long_loop(store.aclose())
        assert clients_open(store) == 0
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join()
        loop.close()


def test_two_loops_in_two_threads_at_once(store) -> None:
    asyncio.run(add(store, FRUIT))
    both = threading.Barrier(2, timeout=60)
    results: dict[int, Any] = {}

    async def work(i: int) -> None:
        await asyncio.to_thread(both.wait)  # both loops are running
        found = [await search_all(store) for _ in range(5)]
        await asyncio.to_thread(both.wait)  # both loops have opened their clients
        open_now, client = clients_open(store), current_client(store)
        await asyncio.to_thread(both.wait)  # neither loop ends before both looked
        results[i] = (found, open_now, client)

    threads = [threading.Thread(target=asyncio.run, args=(work(i),)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [results[i][0] for i in range(2)] == [[EXPECTED] * 5] * 2
    if own_clients(store):
        assert results[0][1] == results[1][1] == 2  # one client per loop, at the same time
        assert results[0][2] is not results[1][2]
        assert is_closed(results[0][2]) and is_closed(results[1][2])
    assert clients_open(store) == 0


def test_a_loop_closed_by_hand_leaves_nothing_behind(store) -> None:
    """A loop closed without shutting down its async generators cannot close its client: the
    store drops it (no "unclosed" ResourceWarning) and goes on in the next loop."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(add(store, FRUIT))
        finally:
            loop.close()
        assert clients_open(store) == (1 if own_clients(store) else 0)
        assert asyncio.run(search_all(store)) == EXPECTED
        assert clients_open(store) == 0
        loop = asyncio.new_event_loop()
        loop.run_until_complete(search(store, "dates"))
        loop.close()
        store.close()  # drops that one too
        assert clients_open(store) == 0
        del loop
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
