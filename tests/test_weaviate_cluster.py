"""Weaviate losing a node: a 3-node cluster (3 shards x 3 replicas, QUORUM) SIGKILLed mid-ingest,
and a single server killed mid-batch. The conformance suite runs on a cluster collection
through the `weaviate-cluster` variant (tests/conftest.py)."""

from __future__ import annotations

import re
import signal
import socket
import threading
import time

import pytest
import weaviate
from langchain_core.embeddings import DeterministicFakeEmbedding
from weaviate.classes.init import AdditionalConfig, Timeout

from rag_stores.backends.weaviate import WeaviateWriteError
from rag_stores.core.retry import EngineUnavailableError, RetryPolicy
from rag_stores.langchain import WeaviateVectorStore
from rag_stores.servers.weaviate import WeaviateCluster, WeaviateServer
from tests.conformance import fresh_name
from tests.processes import cli, gone, read_until, resetting_grpc_peer, wait_for_count

pytestmark = pytest.mark.weaviate

N = 5000
EMB = DeterministicFakeEmbedding(size=32)
TEXTS = [f"document number {i}" for i in range(N)]
METADATAS = [{"i": i, "even": i % 2 == 0} for i in range(N)]
IDS = [f"doc-{i}" for i in range(N)]
# Reads during failover are bounded by this policy: at most `deadline` seconds of retries.
FAILOVER = RetryPolicy(attempts=30, initial_delay=0.2, max_delay=2.0, deadline=45.0)
READ_BOUND = 60.0  # seconds a read may take while the cluster notices the lost node


def _store(node: WeaviateServer, **options) -> WeaviateVectorStore:
    # timeout below FAILOVER's deadline: a write stuck on the lost node is sent again (seen:
    # with weaviate-client's 90 s insert timeout, a batch hung past the deadline)
    return WeaviateVectorStore(EMB, "Docs", url=node.url, grpc_port=node.grpc_port,
                               batch_size=100, shard_number=3, replication_factor=3,
                               consistency_level="QUORUM", retry=FAILOVER, timeout=10,
                               index="flat", **options)


def _check_sample(store: WeaviateVectorStore) -> None:
    sample = store.get_by_ids(["doc-0", "doc-2501", "doc-4999"])
    assert [(d.page_content, d.metadata) for d in sample] == [
        ("document number 0", {"i": 0, "even": True}),
        ("document number 2501", {"i": 2501, "even": False}),
        ("document number 4999", {"i": 4999, "even": False})]


def test_node_lost_mid_ingest_converges_and_reads_recover(tmp_path) -> None:
    with WeaviateCluster(3, data_dir=tmp_path / "cluster") as cluster:
        writer_store, reader = _store(cluster.nodes[0]), _store(cluster.nodes[1])
        victim = cluster.nodes[2]
        outcome: list[BaseException | None] = []

        def ingest() -> None:
            try:
                writer_store.add_texts(TEXTS, METADATAS, ids=IDS)
                outcome.append(None)
            # A clear error is allowed, nothing else: retries ran out, or the cluster refused
            # some objects of a batch (named with their ids) while it noticed the lost node.
            except (EngineUnavailableError, WeaviateWriteError) as exc:
                outcome.append(exc)

        writer = threading.Thread(target=ingest)
        writer.start()
        while writer_store.backend.count() < 1000:
            assert writer.is_alive(), "the ingest ended before the node was killed"
            time.sleep(0.05)
        victim.kill()
        killed_at = time.monotonic()
        latencies = []
        while writer.is_alive() or time.monotonic() - killed_at < 5:
            started = time.monotonic()
            hits = reader.similarity_search("document number 7", k=5)  # retried within FAILOVER
            latencies.append(time.monotonic() - started)
            assert len(hits) == 5
            time.sleep(0.1)
        writer.join()
        print(f"\nreads after the kill: {len(latencies)}, slowest {max(latencies):.2f} s, "
              f"ingest {'completed' if outcome[0] is None else 'failed: ' + str(outcome[0])}")
        assert max(latencies) < READ_BOUND
        assert outcome[0] is None or re.search(r"Weaviate data.insert_many|refused \d+ of \d+ "
                                               r"records", str(outcome[0]))
        writer_store.add_texts(TEXTS, METADATAS, ids=IDS)  # re-running converges
        assert wait_for_count(writer_store, N) == N
        _check_sample(writer_store)
        victim.start()  # rejoins: same name, ports and data
        rejoined = _store(victim)
        assert wait_for_count(rejoined, N) == N
        for store in (writer_store, reader, rejoined):
            store.close()


def _client_with_grpc_at(server: WeaviateServer, grpc_port: int,
                         **options) -> weaviate.WeaviateClient:
    """A client of `server` over HTTP whose gRPC (every batch and search) goes to `grpc_port`."""
    return weaviate.connect_to_custom(
        http_host="127.0.0.1", http_port=server.http_port, http_secure=False,
        grpc_host="127.0.0.1", grpc_port=grpc_port, grpc_secure=False, skip_init_checks=True,
        **options)


def test_a_timed_out_batch_is_retried_then_named(weaviate_server) -> None:
    """A gRPC deadline (weaviate-client raises it as WeaviateBatchError "Deadline Exceeded")
    is transient: the batch is sent again within the policy, then one clear error. The gRPC
    port here accepts connections and never answers, as a node stuck in failover does."""
    silent = socket.create_server(("127.0.0.1", 0))
    try:
        client = _client_with_grpc_at(
            weaviate_server, silent.getsockname()[1],
            additional_config=AdditionalConfig(timeout=Timeout(query=1, insert=1)))
        store = WeaviateVectorStore(EMB, fresh_name("Stuck"), client=client, index="flat",
                                    retry=RetryPolicy(attempts=3, initial_delay=0.05,
                                                      deadline=20))
        started = time.monotonic()
        with pytest.raises(EngineUnavailableError, match=r"Weaviate data.insert_many of 2 "
                                                         r"objects .* after 3 attempts.*Deadline"):
            store.add_texts(["a", "b"], ids=["1", "2"])
        assert time.monotonic() - started < 20
        client.close()
    finally:
        silent.close()


def test_a_batch_whose_stream_the_server_resets_is_retried_then_named(weaviate_server) -> None:
    """weaviate-client raises a reset stream as WeaviateBatchError "Received RST_STREAM with
    error code 8" (seen when a node was lost mid-ingest): transient, sent again, then named."""
    with resetting_grpc_peer() as grpc_port:
        client = _client_with_grpc_at(weaviate_server, grpc_port)
        store = WeaviateVectorStore(EMB, fresh_name("Reset"), client=client, index="flat",
                                    retry=RetryPolicy(attempts=3, initial_delay=0.05))
        with pytest.raises(EngineUnavailableError, match=r"insert_many of 1 objects .* after 3 "
                                                         r"attempts.*RST_STREAM"):
            store.add_texts(["a"], ids=["1"])
        client.close()


def test_timeout_is_checked_and_reaches_the_client(weaviate_server) -> None:
    with pytest.raises(ValueError, match=r"timeout must be a positive number.*got -1"):
        WeaviateVectorStore(EMB, "Docs", url=weaviate_server.url, timeout=-1)
    with weaviate.connect_to_local(port=weaviate_server.http_port,
                                   grpc_port=weaviate_server.grpc_port) as client:
        with pytest.raises(ValueError, match="timeout= sets the clients this backend opens"):
            WeaviateVectorStore(EMB, "Docs", client=client, timeout=5)
    store = WeaviateVectorStore(EMB, "Docs", url=weaviate_server.url,
                                grpc_port=weaviate_server.grpc_port, timeout=7)
    timeout = store.backend.client._connection.timeout_config
    assert (timeout.query, timeout.insert) == (7, 7)
    store.close()


def test_single_server_killed_mid_batch_keeps_what_it_acknowledged(tmp_path) -> None:
    server = WeaviateServer(data_dir=tmp_path / "weaviate")
    with server:
        store = WeaviateVectorStore(EMB, "Docs", url=server.url, grpc_port=server.grpc_port,
                                    batch_size=100, retry=RetryPolicy(attempts=2, initial_delay=0.1,
                                                                      deadline=10))
        acknowledged: list[str] = []
        upsert = store.backend.upsert

        def counting_upsert(records):
            upsert(records)
            acknowledged.extend(r.id for r in records)
            if len(acknowledged) >= 1000 and server.running:
                server.kill()

        store.backend.upsert = counting_upsert  # type: ignore[method-assign]
        with pytest.raises(EngineUnavailableError, match=r"Weaviate data.insert_many of \d+ "
                           rf"objects on collection 'Docs' at {re.escape(server.url)}"):
            store.add_texts(TEXTS, METADATAS, ids=IDS)
        server.start()  # the same data directory and ports
        store.backend.upsert = upsert  # type: ignore[method-assign]
        assert len(store.get_by_ids(acknowledged)) == len(acknowledged) >= 1000
        store.add_texts(TEXTS, METADATAS, ids=IDS)
        assert store.backend.count() == N
        _check_sample(store)
        store.close()


def test_cluster_command_prints_the_urls_and_stops_every_node() -> None:
    proc = cli("weaviate", "cluster", "--nodes", "3")
    try:
        out = read_until(proc, "urls:")
        urls = out.split("urls:")[1].split()
        pids = [int(p) for p in re.findall(r"pid (\d+)", out)]
        assert len(urls) == 3 and len(pids) == 3, out
        with weaviate.connect_to_local(host="127.0.0.1", port=int(urls[2].rsplit(":", 1)[1]),
                                       grpc_port=int(re.findall(r"gRPC port (\d+)", out)[2])
                                       ) as client:
            assert [n.status for n in client.cluster.nodes()] == ["HEALTHY"] * 3
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert all(gone(pid) for pid in pids)
