"""Qdrant Edge specifics: one writer per shard (a clear error for a second process), SIGKILL
mid-ingest keeps every acknowledged write, engine options, optimize (API and CLI), moving a
collection Edge -> server -> Edge, async from any event loop. The shared suites (conformance,
filter table, parity, langchain-tests) run on Edge through their own parametrizations."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from qdrant_client import models

from rag_stores.backends.qdrant import QdrantBackend
from rag_stores.cli import main as cli_main
from rag_stores.core.copy import copy_collection
from rag_stores.core.query import Query, StorageLockedError, UnsupportedError
from rag_stores.core.records import Record, SparseVector
from tests.conformance import fresh_name

DIM = 8


def vector(seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(0.0, 1.0) for _ in range(DIM)]


def records(n: int, start: int = 0) -> list[Record]:
    return [Record(id=f"doc-{i}", text=f"text {i}", metadata={"i": i, "even": i % 2 == 0},
                   vector=vector(i),
                   sparse=SparseVector([i % 13, 20], [1.0, 0.5]))
            for i in range(start, start + n)]


def edge(path: Path | None, name: str = "docs", **kwargs) -> QdrantBackend:
    return QdrantBackend(name, engine="edge", path=None if path is None else str(path), **kwargs)


def child(code: str, *args: str) -> subprocess.Popen:
    """A Python child running `code` from the repository root, stdout piped."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args],
                            stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parent.parent)


HOLDER = """
    import sys
    from rag_stores.backends.qdrant import QdrantBackend
    from tests.test_qdrant_edge import DIM, records
    backend = QdrantBackend("docs", engine="edge", path=sys.argv[1])
    backend.ensure_collection(DIM, True)
    backend.upsert(records(10))
    print("ready", flush=True)
    sys.stdin.readline()  # hold the shard until told to stop
    backend.close()
"""


def test_a_second_process_gets_a_clear_lock_error(tmp_path: Path) -> None:
    proc = child(HOLDER, str(tmp_path))
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        other = edge(tmp_path)
        with pytest.raises(StorageLockedError) as caught:
            other.count()
        message = str(caught.value)
        assert str(tmp_path / "docs") in message and f"process {proc.pid}" in message
        other.close()
    finally:
        proc.communicate("stop\n", timeout=30)
    reopened = edge(tmp_path)  # released: it opens again
    assert reopened.count() == 10
    reopened.close()


def test_stores_of_one_process_share_the_shard(tmp_path: Path) -> None:
    first, second = edge(tmp_path), edge(tmp_path)
    first.ensure_collection(DIM, True)
    first.upsert(records(5))
    assert second.count() == 5
    first.close()
    assert second.count() == 5  # still open for the other store
    second.close()


INGEST = """
    import sys
    from rag_stores.backends.qdrant import QdrantBackend
    from tests.test_qdrant_edge import DIM, records
    backend = QdrantBackend("docs", engine="edge", path=sys.argv[1])
    backend.ensure_collection(DIM, True)
    for batch in range(10_000):
        backend.upsert(records(100, start=batch * 100))
        print((batch + 1) * 100, flush=True)  # acknowledged
"""


def test_sigkill_mid_ingest_keeps_every_acknowledged_write(tmp_path: Path) -> None:
    proc = child(INGEST, str(tmp_path))
    assert proc.stdout is not None
    acknowledged = 0
    while acknowledged < 3000:
        line = proc.stdout.readline()
        assert line, "the ingest child died early"
        acknowledged = int(line)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    backend = edge(tmp_path)
    assert backend.count() >= acknowledged
    ids = [f"doc-{i}" for i in range(acknowledged)]
    assert [r.id for r in backend.get(ids)] == ids
    backend.close()


def test_in_memory_edge_is_a_temporary_folder_removed_on_close() -> None:
    backend = edge(None)
    backend.ensure_collection(DIM, False)
    folder = Path(backend.client.path)
    assert (folder / "docs" / "edge_config.json").is_file()
    backend.close()
    assert not folder.exists()


def test_engine_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="engine must be one of"):
        QdrantBackend("docs", engine="rocksdb")
    with pytest.raises(ValueError, match="url="):
        QdrantBackend("docs", engine="edge", url="http://127.0.0.1:6333")
    with pytest.raises(ValueError, match="collection_name"):
        edge(tmp_path, "../escape").exists()
    server_only = edge(tmp_path, shard_number=2)
    with pytest.raises(UnsupportedError, match="shard_number"):
        server_only.ensure_collection(DIM, False)
    server_only.close()
    backend = edge(tmp_path)
    backend.ensure_collection(DIM, False)
    with pytest.raises(ValueError, match="vector"):
        backend.search(Query(vector=[1.0, 2.0]))
    with pytest.raises(ValueError, match="64.bit"):
        backend.upsert([Record(id="big", text="", metadata={"n": 2**70}, vector=[1.0] * DIM)])
    assert backend.engine == "edge" and backend.count() == 0
    backend.close()


def test_collection_names_follow_the_servers_rules(tmp_path: Path) -> None:
    """A name the Qdrant server refuses is a ValueError naming collection_name, the value
    (truncated) and the rule, before anything opens (issue 25: a bare Exception before)."""
    for name in ("x" * 300, "é" * 128, "a:b", "what?", "a\0b", ".."):
        with pytest.raises(ValueError) as caught:
            edge(tmp_path, name)
        message = str(caught.value)
        assert "collection_name" in message and "255 bytes" in message
        assert len(message) < 300
    assert edge(tmp_path, "x" * 255).engine == "edge"  # the limit itself is fine
    with pytest.raises(ValueError, match="collection_name"):
        edge(None).client.create_collection("a|b", models.VectorParams(
            size=DIM, distance=models.Distance.COSINE))  # the client alone checks too


def test_an_existing_shard_under_an_older_looser_name_still_opens(tmp_path: Path) -> None:
    backend = edge(tmp_path, "plain")
    backend.ensure_collection(DIM, True)
    backend.upsert(records(3))
    backend.close()
    os.rename(tmp_path / "plain", tmp_path / "old:name")  # Edge took such names before
    reopened = edge(tmp_path, "old:name")
    assert reopened.count() == 3
    reopened.close()


def test_optimize_builds_the_index_and_search_keeps_its_answers(tmp_path: Path) -> None:
    backend = edge(tmp_path, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=1),
                   hnsw_config=models.HnswConfigDiff(full_scan_threshold=1))
    backend.ensure_collection(DIM, True)
    backend.upsert(records(500))
    query = Query(k=5, vector=vector(-42))
    before = [h.record.id for h in backend.search(query)]
    assert backend.optimize() is True
    assert backend.client.get_collection("docs").indexed_vectors_count > 0
    assert [h.record.id for h in backend.search(query)] == before  # exact below EXACT_BELOW
    backend.close()
    assert cli_main(["qdrant", "optimize", "--path", str(tmp_path), "--collection", "docs"]) == 0
    assert cli_main(["qdrant", "optimize", "--path", str(tmp_path), "--collection", "nope"]) == 1


def test_async_methods_work_from_any_event_loop(tmp_path: Path) -> None:
    backend = edge(tmp_path)
    backend.ensure_collection(DIM, True)
    asyncio.run(backend.aupsert(records(20)))
    assert asyncio.run(backend.acount()) == 20  # a second loop
    seen: list[int] = []
    thread = threading.Thread(target=lambda: seen.append(asyncio.run(backend.acount())))
    thread.start()
    thread.join()
    assert seen == [20]
    backend.close()


def _same_records(a: QdrantBackend, b: QdrantBackend, ids: list[str]) -> None:
    left, right = a.get(ids, with_vectors=True), b.get(ids, with_vectors=True)
    assert [(r.id, r.text, r.metadata, r.sparse) for r in left] == \
        [(r.id, r.text, r.metadata, r.sparse) for r in right]
    for x, y in zip(left, right, strict=True):  # cosine: Edge and servers store unit vectors
        assert unit(x.vector) == pytest.approx(unit(y.vector), abs=1e-6)


def unit(v: list[float] | None) -> list[float]:
    assert v is not None
    norm = sum(x * x for x in v) ** 0.5
    return [x / norm for x in v]


def test_move_edge_to_the_server_and_back(tmp_path: Path, qdrant_server) -> None:
    """The laptop-to-cluster path: Edge -> a real server -> Edge, through the backends'
    paged scroll with vectors and upserts (and `rag-stores migrate`, as the README shows)."""
    source = edge(tmp_path / "laptop")
    source.ensure_collection(DIM, True)
    source.upsert(records(600))
    server = QdrantBackend(fresh_name("moved"), **qdrant_server.connect_kwargs())
    back = edge(tmp_path / "back")
    try:
        assert copy_collection(source, server, batch_size=128) == 600
        assert copy_collection(server, back) == 600
        ids = [f"doc-{i}" for i in range(0, 600, 7)]
        _same_records(source, server, ids)
        _same_records(source, back, ids)
        query = Query(k=5, vector=vector(-3))
        assert [h.record.id for h in back.search(query)] == \
            [h.record.id for h in source.search(query)]
        back.close()
        name = server.collection_name
        assert cli_main(["migrate", "--quiet", f"qdrant:{name}?url={qdrant_server.url}",
                         f"qdrant:{name}?path={tmp_path / 'cli'}"]) == 0
        copied = edge(tmp_path / "cli", server.collection_name)
        assert copied.count() == 600
        copied.close()
    finally:
        server.drop()
        server.close()
        source.close()
        back.close()


def test_edge_is_the_default_on_disk_and_local_mode_folders_keep_local_mode(tmp_path: Path) -> None:
    new = QdrantBackend("docs", path=str(tmp_path / "new"))
    assert new.engine == "edge"
    new.close()
    assert QdrantBackend("docs").engine == "local"  # in memory: local mode (README)
    old = QdrantBackend("docs", engine="local", path=str(tmp_path / "old"))
    old.ensure_collection(DIM, True)
    old.upsert(records(30))
    old.close()
    reopened = QdrantBackend("docs", path=str(tmp_path / "old"))
    assert reopened.engine == "local" and reopened.count() == 30
    moved = edge(tmp_path / "moved")
    assert copy_collection(reopened, moved) == 30  # how to move it (README)
    _same_records(reopened, moved, [f"doc-{i}" for i in range(30)])
    reopened.close()
    moved.close()


def test_a_first_filter_on_a_field_indexes_it_and_the_index_is_remembered(tmp_path: Path) -> None:
    """Issue 29: filtered search on the embedded default needs no declared payload index.
    The index is typed from the filter, recorded in the collection metadata (a reopened store
    and the other face skip it), and results equal local mode's on the same records."""
    from rag_stores.backends.qdrant import AUTO_INDEXES
    from rag_stores.core.filters import from_dict

    rng = random.Random(7)
    records = [Record(id=str(i), text=f"t{i}", vector=[rng.random() for _ in range(DIM)],
                      metadata={"year": 1990 + i % 30, "genre": ["a", "b", "c"][i % 3],
                                "seen": i % 2 == 0, "when": f"20{10 + i % 15}-01-01T00:00:00Z"})
               for i in range(300)]
    local = QdrantBackend("c", location=":memory:")
    edge = QdrantBackend("c", engine="edge", path=str(tmp_path))
    flt = from_dict({"$and": [{"year": {"$gte": 2000}}, {"genre": {"$in": ["a", "b"]}},
                              {"seen": True}, {"when": {"$lt": "2020-01-01T00:00:00Z"}}]})
    query = Query(vector=[0.5] * DIM, k=10, filter=flt)
    for backend in (local, edge):
        backend.ensure_collection(DIM, False)
        backend.upsert(records)
    assert AUTO_INDEXES not in edge.collection_metadata()
    want = [(h.record.id, round(h.score, 3)) for h in local.search(query)]
    assert len(want) == 10
    assert [(h.record.id, round(h.score, 3)) for h in edge.search(query)] == want
    assert edge.collection_metadata()[AUTO_INDEXES] == {
        "metadata.year": "float", "metadata.genre": "keyword", "metadata.seen": "bool",
        "metadata.when": "datetime"}
    assert edge.count(flt) == local.count(flt)
    edge.close()
    reopened = QdrantBackend("c", engine="edge", path=str(tmp_path))
    assert [(h.record.id, round(h.score, 3)) for h in reopened.search(query)] == want
    assert reopened._info is not None and "metadata.genre" in reopened._info.auto_indexed
    reopened.close()
    local.close()
