"""Streaming reads (`iter_records`) and `rag-stores migrate` between engine modes: ids, text,
metadata, LlamaIndex fields and vectors move without re-embedding, resumably, verified."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest

from rag_stores.backends.qdrant import QdrantBackend
from rag_stores.core.copy import copy_collection, verify_copy
from rag_stores.core.filters import from_dict
from rag_stores.core.records import Record, SparseVector
from rag_stores.migrate import migrate, open_backend, parse_endpoint
from tests.conformance import fresh_name

N = 300


def _records(n: int = N, sparse: bool = True) -> list[Record]:
    return [Record(id=f"doc-{i}", text=f"text {i}", metadata={"i": i, "tags": ["a", str(i % 3)]},
                   vector=[1.0, i / n, (i % 7) / 7, 0.5], ref_doc_id=f"ref-{i // 10}",
                   relationships={"1": {"node_id": f"ref-{i // 10}"}},
                   sparse=SparseVector([i % 50, 60], [1.0, 0.5]) if sparse else None)
            for i in range(n)]


@pytest.fixture
def qdrant_source(tmp_path):
    """A local-mode folder with N records, and its endpoint (closed: a folder has one user)."""
    backend = QdrantBackend("source", path=str(tmp_path / "q"), engine="local")
    backend.ensure_collection(4, True)
    backend.upsert(_records())
    backend.close()
    return f"qdrant:source?path={tmp_path / 'q'}&engine=local"


def test_endpoints_parse_and_mistakes_are_named(tmp_path) -> None:
    assert parse_endpoint("qdrant:docs?path=./q&prefer_grpc=true&port=6333") == (
        "qdrant", "docs", {"path": "./q", "prefer_grpc": True, "port": 6333})
    assert parse_endpoint("weaviate:Docs") == ("weaviate", "Docs", {})
    with pytest.raises(ValueError, match=r"'chroma:docs' is not ENGINE:COLLECTION"):
        parse_endpoint("chroma:docs")
    with pytest.raises(TypeError, match="'pth'.*did you mean 'path'"):
        open_backend(f"qdrant:docs?pth={tmp_path}")


def test_iter_records_streams_a_page_at_a_time(qdrant_source) -> None:
    backend = open_backend(qdrant_source)
    pages = []
    scroll_page = backend._scroll_page

    def counting(*args, **kwargs):
        pages.append(args)
        return (yield from scroll_page(*args, **kwargs))

    backend._scroll_page = counting  # type: ignore[method-assign]
    first = list(itertools.islice(backend.iter_records(batch_size=50), 60))
    assert len(first) == 60 and len(pages) == 2  # two pages read for 60 records, not six
    backend._scroll_page = scroll_page  # type: ignore[method-assign]
    assert sum(1 for _ in backend.iter_records(batch_size=64)) == N
    evens = list(backend.iter_records(from_dict({"i": {"$in": [0, 2, 4]}}), batch_size=2))
    assert sorted(r.id for r in evens) == ["doc-0", "doc-2", "doc-4"]
    backend.close()


async def test_aiter_records_streams_too(weaviate_server) -> None:
    from rag_stores.backends.weaviate import WeaviateBackend

    backend = WeaviateBackend(fresh_name("Stream"), url=weaviate_server.url,
                              grpc_port=weaviate_server.grpc_port)
    await backend.aensure_collection(4, False)
    await backend.aupsert(_records(sparse=False))
    ids = [r.id async for r in backend.aiter_records(batch_size=64)]
    assert sorted(ids) == sorted(f"doc-{i}" for i in range(N))
    filtered = [r.id async for r in backend.aiter_records(from_dict({"i": {"$lt": 5}}),
                                                           batch_size=2)]
    assert sorted(filtered) == [f"doc-{i}" for i in range(5)]
    await backend.adrop()
    await backend.aclose()


def test_qdrant_to_weaviate_and_back_verified(qdrant_source, weaviate_server, qdrant_server,
                                              tmp_path) -> None:
    source = qdrant_source
    name = fresh_name("Moved")
    weaviate = f"weaviate:{name}?url={weaviate_server.url}&grpc_port={weaviate_server.grpc_port}"
    report = migrate(source, weaviate, batch_size=64, progress=False)
    assert report["written"] == N and report["target_count"] == N and report["problems"] == []
    again = migrate(source, weaviate, batch_size=64, progress=False)  # re-run: nothing to do
    assert again["written"] == 0 and again["problems"] == []
    back = f"qdrant:{fresh_name('back')}?url={qdrant_server.url}"
    report = migrate(weaviate, back, progress=False)
    assert report["written"] == N and report["problems"] == []
    moved = open_backend(back)
    record = moved.get(["doc-7"], with_vectors=True)[0]
    assert (record.text, record.metadata, record.ref_doc_id) == (
        "text 7", {"i": 7, "tags": ["a", "1"]}, "ref-0")
    assert record.sparse is None  # Weaviate stores no sparse vectors: none to carry back
    moved.drop()
    moved.close()
    open_backend(weaviate).drop()


def test_an_interrupted_copy_resumes_and_sparse_vectors_travel(qdrant_source, tmp_path) -> None:
    source = open_backend(qdrant_source)
    target = QdrantBackend("target", path=str(tmp_path / "t"), engine="local")
    upsert, calls = target.upsert, []

    def failing_upsert(records):
        calls.append(len(records))
        if len(calls) == 3:
            raise ConnectionError("the target went away")
        upsert(records)

    target.upsert = failing_upsert  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        copy_collection(source, target, batch_size=50, skip_existing=True)
    assert target.count() == 100
    target.upsert = upsert  # type: ignore[method-assign]
    assert copy_collection(source, target, batch_size=50, skip_existing=True) == N - 100
    assert verify_copy(source, target) == []
    copied = target.get(["doc-3"], with_vectors=True)[0]
    assert copied.sparse == SparseVector([3, 60], [1.0, 0.5])
    target.upsert([Record(id="doc-3", text="changed", metadata={}, vector=[1, 0, 0, 0])])
    assert any("doc-3" in p for p in verify_copy(source, target, sample=N))
    target.close()
    source.close()


def test_langchain_qdrant_collection_migrates_into_ours(tmp_path, weaviate_server) -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_qdrant import QdrantVectorStore as PeerStore

    peer = PeerStore.from_texts(["alpha", "beta"], DeterministicFakeEmbedding(size=8),
                                metadatas=[{"k": 1}, {"k": 2}], ids=[
                                    "6f1d8a52-3f7e-5b5c-9a57-2c1d0e5b7a11",
                                    "6f1d8a52-3f7e-5b5c-9a57-2c1d0e5b7a12"],
                                path=str(tmp_path / "peer"), collection_name="peer")
    peer.client.close()
    name = fresh_name("FromPeer")
    target = f"weaviate:{name}?url={weaviate_server.url}&grpc_port={weaviate_server.grpc_port}"
    report = migrate(f"qdrant:peer?path={tmp_path / 'peer'}&engine=local", target,
                     progress=False)
    assert report["written"] == 2 and report["problems"] == []
    moved = open_backend(target)
    assert sorted((r.text, r.metadata["k"]) for r in moved.scroll()) == [("alpha", 1), ("beta", 2)]
    moved.drop()
    moved.close()


def test_the_command_prints_the_figures_and_never_the_key(qdrant_source, qdrant_auth_server,
                                                          tmp_path) -> None:
    source = qdrant_source
    key = qdrant_auth_server.api_key
    target = f"qdrant:{fresh_name('cli')}?url={qdrant_auth_server.url}&api_key={key}"
    result = subprocess.run([sys.executable, "-m", "rag_stores.cli", "migrate", source, target,
                             "--quiet"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"wrote {N} records" in result.stdout and "verified" in result.stdout
    assert key not in result.stdout + result.stderr
    bad = subprocess.run([sys.executable, "-m", "rag_stores.cli", "migrate", "qdrant:x?path="
                          f"{tmp_path / 'none'}&engine=local", target, "--quiet"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "does not exist" in bad.stderr
