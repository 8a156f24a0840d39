"""Shared fixtures. Each block belongs to one area; keep them apart."""

from __future__ import annotations

# --- conformance variants ---
import os
from collections.abc import AsyncIterator

import pytest
from qdrant_client import AsyncQdrantClient, QdrantClient

from rag_stores.backends.qdrant import QdrantBackend
from tests.conformance import Variant

VARIANTS = ["qdrant-memory", "qdrant-disk", "qdrant-async", "qdrant-edge", "qdrant-edge-async",
            "qdrant-server", "qdrant-server-grpc",
            "qdrant-server-grpc-async", "qdrant-cluster", "weaviate", "weaviate-async",
            "weaviate-cluster"]


@pytest.fixture(params=VARIANTS)
async def variant(request, tmp_path) -> AsyncIterator[Variant]:
    """One backend variant per run of each conformance test; clients closed after it."""
    name = request.param
    if name == "qdrant-memory":
        client = QdrantClient(":memory:")
        yield Variant(name, False, lambda c: QdrantBackend(c, client=client))
        client.close()
    elif name == "qdrant-disk":
        client = QdrantClient(path=str(tmp_path / "qdrant"))
        yield Variant(name, False, lambda c: QdrantBackend(c, client=client))
        client.close()
    elif name == "qdrant-async":
        aclient = AsyncQdrantClient(":memory:")
        yield Variant(name, True, lambda c: QdrantBackend(c, async_client=aclient))
        await aclient.close()
    elif name.startswith("qdrant-edge"):
        # Qdrant Edge on disk; backends of one process share an open shard (qdrant_edge.py)
        edges: list[QdrantBackend] = []

        def make_edge(c: str) -> QdrantBackend:
            edges.append(QdrantBackend(c, engine="edge", path=str(tmp_path / "edge")))
            return edges[-1]

        yield Variant(name, name.endswith("-async"), make_edge)
        for backend in edges:
            backend.close()
    elif name.startswith("qdrant-server") or name == "qdrant-cluster":
        # The backend opens its own sync and async clients: both share one collection.
        if name == "qdrant-cluster":
            node = request.getfixturevalue("qdrant_cluster").nodes[0]
            # Writes wait for both replicas and reads ask all: every read sees the last write.
            options = {"shard_number": 3, "replication_factor": 2, "write_consistency_factor": 2,
                       "read_consistency": "all"}
        else:
            node, options = request.getfixturevalue("qdrant_server"), {}
        grpc = "grpc" in name
        backends: list[QdrantBackend] = []

        def make(c: str) -> QdrantBackend:  # fresh_name() is unique on the session's server
            backends.append(QdrantBackend(c, **node.connect_kwargs(grpc), **options))
            return backends[-1]

        yield Variant(name, name.endswith("-async"), make)
        for backend in backends:
            if backend.supports_sync and backend.exists():
                backend.drop()
            await backend.aclose()
    else:
        from rag_stores.backends.weaviate import WeaviateBackend

        options: dict = {}
        if name == "weaviate-cluster":  # 3 shards, each on all 3 nodes, read and written at ALL:
            # a search reads one replica, so at QUORUM it can miss a write just acknowledged
            server = request.getfixturevalue("weaviate_cluster").nodes[0]
            options = {"shard_number": 3, "replication_factor": 3, "consistency_level": "ALL"}
        else:
            server = request.getfixturevalue("weaviate_server")  # started only when needed
        wclient = server.connect() if name != "weaviate-async" else None
        waclient = await server.connect_async()
        # flat: exact search, so expected orders never hang on HNSW's approximation
        yield Variant(name, wclient is None, lambda c: WeaviateBackend(
            c, client=wclient, async_client=waclient, index="flat", **options))
        await waclient.close()
        if wclient is not None:
            wclient.close()
# --- end conformance variants ---


# --- embedders fixtures ---
# Seeds the default models folder ($RAG_STORES_MODELS or ~/.cache/rag-stores/models) once per
# session: a hash check when already seeded, a copy from the PyPI packages otherwise.


@pytest.fixture(scope="session")
def seeded_models():
    """The seeded models folder; tiktoken's current cache is seeded too (offline splitters)."""
    from embedders import offline, tokens

    offline.seed()
    tokens.ensure_tiktoken_cache()
    return offline.seed_target()


@pytest.fixture(scope="session")
def dense_encoder(seeded_models):
    """The default DenseEncoder (all-MiniLM-L6-v2, 384 dims), loaded from the seeded folder."""
    from embedders import DenseEncoder

    return DenseEncoder()


@pytest.fixture(scope="session")
def sparse_encoder(seeded_models):
    """The default SparseEncoder (FastEmbed BM25, English), loaded from the seeded folder."""
    from embedders import SparseEncoder

    return SparseEncoder()


@pytest.fixture(scope="session")
def lc_embeddings(dense_encoder):
    """LangChain FastEmbedEmbeddings sharing the session's dense model."""
    from embedders.langchain import FastEmbedEmbeddings

    return FastEmbedEmbeddings(encoder=dense_encoder)


@pytest.fixture(scope="session")
def llama_embed_model(dense_encoder):
    """LlamaIndex FastEmbedEmbedding sharing the session's dense model."""
    from embedders.llama_index import FastEmbedEmbedding

    return FastEmbedEmbedding(encoder=dense_encoder)


# --- end embedders fixtures ---


# --- embedded weaviate: no keeper outlives the test run ---
# A shared embedded server (rag_stores.servers.embedded) stops once idle; tests make that
# quick, and the session waits for the keepers it started (ending stragglers, bounded).
os.environ.setdefault("RAG_STORES_EMBEDDED_IDLE", "2")


def _keepers() -> set[int]:
    import psutil

    found = set()
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "rag_stores.servers.embedded" in cmdline:
            found.add(proc.info["pid"])
    return found


@pytest.fixture(scope="session", autouse=True)
def _no_keeper_left_behind():
    import signal
    import time

    before = _keepers()
    yield
    deadline = time.monotonic() + 30
    while (left := _keepers() - before) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in left:  # its server dies with it (servers.process watcher)
        os.kill(pid, signal.SIGKILL)


# --- end embedded weaviate ---


# --- weaviate fixtures ---
# Real Weaviate server processes (rag_stores.weaviate_server), started on first use and
# stopped at the end of the session; ensure_binary() builds the server on a clean machine.
# Tests share the servers: give every collection a unique name.


@pytest.fixture(scope="session")
def weaviate_server():
    """One anonymous Weaviate server for the session."""
    from rag_stores.servers.weaviate import WeaviateServer, ensure_binary

    ensure_binary()
    with WeaviateServer() as server:
        yield server


@pytest.fixture(scope="session")
def weaviate_auth_server():
    """A second server that accepts only the API key in its `api_key` attribute."""
    from rag_stores.servers.weaviate import WeaviateServer, ensure_binary

    ensure_binary()
    with WeaviateServer(api_key="rag-stores-test-key") as server:
        yield server


@pytest.fixture(scope="session")
def weaviate_cluster():
    """Three Weaviate nodes in one cluster on loopback."""
    from rag_stores.servers.weaviate import WeaviateCluster, ensure_binary

    ensure_binary()
    with WeaviateCluster(3) as cluster:
        yield cluster


@pytest.fixture
def weaviate_client(weaviate_server):
    """A sync client to the anonymous server, closed after the test."""
    with weaviate_server.connect() as client:
        yield client


@pytest.fixture
async def weaviate_async_client(weaviate_server):
    """An async client to the anonymous server, closed after the test."""
    client = await weaviate_server.connect_async()
    try:
        yield client
    finally:
        await client.close()


# --- end weaviate fixtures ---


# --- qdrant server fixtures ---
# The real Qdrant server (rag_stores.servers.qdrant) from $RAG_STORES_QDRANT_BIN or PATH.
# Without a binary the server tests are skipped, saying why; in CI (CI=true) that is a failure.


def qdrant_binary_or_skip() -> None:
    import os

    from rag_stores.servers.qdrant import QdrantBinaryError, find_binary

    try:
        find_binary()
    except QdrantBinaryError as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI needs the Qdrant server binary: {exc}")
        pytest.skip(f"no Qdrant server binary: {exc}")


@pytest.fixture(scope="session")
def qdrant_server():
    """One anonymous Qdrant server for the session."""
    from rag_stores.servers.qdrant import QdrantServer

    qdrant_binary_or_skip()
    with QdrantServer() as server:
        yield server


@pytest.fixture(scope="session")
def qdrant_auth_server():
    """A Qdrant server that accepts only the API key in its `api_key` attribute."""
    from rag_stores.servers.qdrant import QdrantServer

    qdrant_binary_or_skip()
    with QdrantServer(api_key="rag-stores-qdrant-test-key") as server:
        yield server


@pytest.fixture(scope="session")
def qdrant_cluster():
    """Three Qdrant nodes in one cluster on loopback."""
    from rag_stores.servers.qdrant import QdrantCluster

    qdrant_binary_or_skip()
    with QdrantCluster(3) as cluster:
        yield cluster


# --- end qdrant server fixtures ---
