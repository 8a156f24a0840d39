"""A 3-node Qdrant cluster losing a node mid-ingest: the ingest completes or fails clearly,
reads keep answering from the replicas, re-running converges to exactly the source, and the
node rejoins with counts agreeing. The conformance suite runs on a cluster collection
(3 shards x 2 replicas) through the `qdrant-cluster` variant (tests/conftest.py)."""

from __future__ import annotations

import threading
import time

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from rag_stores.core.filters import from_dict
from rag_stores.core.retry import EngineUnavailableError, RetryPolicy
from rag_stores.langchain import QdrantVectorStore
from rag_stores.servers.qdrant import QdrantCluster
from tests.conftest import qdrant_binary_or_skip
from tests.processes import wait_for_count

N = 5000
EMB = DeterministicFakeEmbedding(size=32)
TEXTS = [f"document number {i}" for i in range(N)]
METADATAS = [{"i": i, "even": i % 2 == 0} for i in range(N)]
IDS = [f"doc-{i}" for i in range(N)]
RETRY = RetryPolicy(attempts=6, initial_delay=0.2, max_delay=2.0, deadline=20.0)


@pytest.fixture
def cluster(tmp_path):
    qdrant_binary_or_skip()
    with QdrantCluster(3, data_dir=tmp_path / "cluster") as cluster:
        yield cluster


def _store(cluster: QdrantCluster, node: int = 0) -> QdrantVectorStore:
    return QdrantVectorStore(EMB, "docs", batch_size=100, shard_number=3, replication_factor=2,
                             retry=RETRY, timeout=10, **cluster.nodes[node].connect_kwargs())


def test_node_lost_mid_ingest_converges_and_rejoins(cluster) -> None:
    store = _store(cluster)
    victim = cluster.nodes[2]
    reads: list[int] = []
    errors: list[BaseException] = []
    outcome: list[BaseException | None] = []

    def ingest() -> None:
        try:
            store.add_texts(TEXTS, METADATAS, ids=IDS)
            outcome.append(None)
        except EngineUnavailableError as exc:  # a clear error is allowed; anything else is not
            outcome.append(exc)

    writer = threading.Thread(target=ingest)
    writer.start()
    while store.backend.exists() is False or store.backend.count() < 1000:
        assert writer.is_alive() or outcome, "the ingest ended before the node was killed"
        time.sleep(0.05)
    victim.kill()
    killed_at = time.monotonic()
    # Reads keep answering from the replicas while the node is down.
    reader = _store(cluster, node=1)
    while writer.is_alive() or time.monotonic() - killed_at < 3:
        try:
            reads.append(len(reader.similarity_search("document number 7", k=5)))
        except EngineUnavailableError as exc:
            errors.append(exc)
        time.sleep(0.1)
    writer.join()
    assert not errors, errors[:1]
    assert reads and all(n == 5 for n in reads)
    assert outcome and (outcome[0] is None or "Qdrant upsert" in str(outcome[0]))
    # Re-running the same ingest converges to exactly the source.
    store.add_texts(TEXTS, METADATAS, ids=IDS)
    assert wait_for_count(store, N) == N
    sample = store.get_by_ids(["doc-0", "doc-2501", "doc-4999"])
    assert [(d.page_content, d.metadata) for d in sample] == [
        ("document number 0", {"i": 0, "even": True}),
        ("document number 2501", {"i": 2501, "even": False}),
        ("document number 4999", {"i": 4999, "even": False})]
    # The node rejoins on restart (same storage, ports and peer id) and counts agree.
    victim.start()
    cluster.wait_for_peers()
    rejoined = _store(cluster, node=2)
    assert wait_for_count(rejoined, N) == N
    even = from_dict({"even": True})
    assert store.backend.count(even) == rejoined.backend.count(even) == N // 2
    for s in (store, reader, rejoined):
        s.close()
