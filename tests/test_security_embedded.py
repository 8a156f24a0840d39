"""Issue 25, on real engines: the embedded Weaviate accepts only its owner (an API key kept
private in the folder), the keeper trusts no stale `server.json`, and a store constructor
that fails leaves its Qdrant folder free for the next open."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from rag_stores.backends.qdrant import QdrantBackend
from rag_stores.core.query import Query
from rag_stores.core.records import Record
from rag_stores.servers import free_port
from rag_stores.servers.embedded import KEY_FILE, STATE_DIR

RECORDS = [Record(id=f"r{i}", text=f"text {i}", metadata={"i": i}, vector=[1.0, i / 10])
           for i in range(3)]


def _status(url: str, key: str | None = None) -> int:
    request = urllib.request.Request(url)
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _weaviate(path: Path, **kwargs):
    from rag_stores.backends.weaviate import WeaviateBackend

    return WeaviateBackend("Secure", persistence_path=str(path), index="flat", **kwargs)


SECOND = """
import sys
from rag_stores.backends.weaviate import WeaviateBackend
backend = WeaviateBackend("Secure", persistence_path=sys.argv[1], index="flat")
print(backend.count(), flush=True)
backend.close()
"""


def _server_environ(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(p.decode().split("=", 1) for p in pairs if b"=" in p)


@pytest.mark.weaviate
def test_embedded_weaviate_accepts_only_its_owner(tmp_path: Path) -> None:
    backend = _weaviate(tmp_path)
    try:
        backend.upsert(RECORDS)
        home = tmp_path / STATE_DIR
        key_file = home / KEY_FILE
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        key = key_file.read_text().strip()
        state = json.loads((home / "server.json").read_text())
        base = f"http://127.0.0.1:{state['http_port']}"
        for path in ("/v1/objects", "/v1/schema"):  # anonymous: refused
            assert _status(base + path) == 401, path
        assert _status(base + "/v1/objects", key="not-the-key") == 401
        assert _status(base + "/v1/objects", key=key) == 200  # the key alone suffices
        # the cluster data API (another loopback port) wants its credentials too
        data_port = _server_environ(state["server"])["CLUSTER_DATA_BIND_PORT"]
        assert _status(f"http://127.0.0.1:{data_port}/indices/Secure/shards/x/objects") == 401
        # the key travels in the environment, never on a command line
        for pid in (state["server"], state["keeper"]):
            assert key.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
        assert [h.record.id for h in backend.search(Query(vector=[1.0, 0.0], k=3))] \
            == ["r0", "r1", "r2"]
        second = subprocess.run([sys.executable, "-c", SECOND, str(tmp_path)],
                                capture_output=True, text=True, timeout=180)
        assert second.returncode == 0, second.stderr
        assert second.stdout.strip() == "3"  # another process of the owner reads the key
    finally:
        backend.close()


@pytest.mark.weaviate
def test_api_key_of_an_embedded_store_must_be_the_folders(tmp_path: Path) -> None:
    first = _weaviate(tmp_path)
    try:
        first.upsert(RECORDS)
        key = (tmp_path / STATE_DIR / KEY_FILE).read_text().strip()
        with pytest.raises(ValueError, match="api_key") as caught:
            _weaviate(tmp_path, api_key="something-else")
        assert str(tmp_path / STATE_DIR / KEY_FILE) in str(caught.value)
        assert "something-else" not in str(caught.value)  # never echo a secret
        same = _weaviate(tmp_path, api_key=key)
        assert same.count() == 3
        same.close()
    finally:
        first.close()


@pytest.mark.weaviate
def test_a_stale_server_json_naming_a_live_process_that_is_no_keeper(tmp_path: Path) -> None:
    """server.json left behind, its keeper pid reused by an unrelated process: not trusted."""
    home = tmp_path / STATE_DIR
    home.mkdir(mode=0o700)
    sleeper = subprocess.Popen(["sleep", "600"])
    try:
        bogus = {"keeper": sleeper.pid, "server": sleeper.pid, "http_port": free_port(),
                 "grpc_port": free_port(), "auth": "api_key"}
        (home / "server.json").write_text(json.dumps(bogus))
        backend = _weaviate(tmp_path)
        try:
            backend.upsert(RECORDS)
            assert backend.count() == 3
            state = json.loads((home / "server.json").read_text())
            assert state["keeper"] != sleeper.pid and state["http_port"] != bogus["http_port"]
        finally:
            backend.close()
    finally:
        sleeper.kill()
        sleeper.wait()


# A keeper as older versions ran it: anonymous, server.json without "auth". Its command line
# names the keeper module and the folder, as a real keeper's does.
OLD_KEEPER = """
import json, os, sys
from pathlib import Path
from rag_stores.servers.weaviate import WeaviateServer
data = Path(sys.argv[2])
server = WeaviateServer(data_dir=data / ".rag-stores" / "server", hostname="embedded",
                        env={"PERSISTENCE_DATA_PATH": str(data)}).start()
(data / ".rag-stores" / "server.json").write_text(json.dumps(
    {"keeper": os.getpid(), "server": server.pid, "http_port": server.http_port,
     "grpc_port": server.grpc_port}))
print("ready", flush=True)
sys.stdin.readline()
server.stop()
"""


@pytest.mark.weaviate
def test_a_folder_served_anonymously_by_an_older_keeper_keeps_working(tmp_path: Path) -> None:
    (tmp_path / STATE_DIR).mkdir()
    old = subprocess.Popen([sys.executable, "-c", OLD_KEEPER, "rag_stores.servers.embedded",
                            str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           text=True)
    try:
        assert old.stdout is not None and old.stdout.readline().strip() == "ready"
        with pytest.warns(UserWarning, match="anonymous"):
            backend = _weaviate(tmp_path)
        try:
            backend.upsert(RECORDS)
            assert backend.count() == 3
        finally:
            backend.close()
    finally:
        old.communicate("stop\n", timeout=60)
    # once that keeper is gone, the next start runs with the folder's key
    (tmp_path / STATE_DIR / "server.json").unlink()
    backend = _weaviate(tmp_path)
    try:
        assert backend.count() == 3
        state = json.loads((tmp_path / STATE_DIR / "server.json").read_text())
        assert state.get("auth") == "api_key"
        assert _status(f"http://127.0.0.1:{state['http_port']}/v1/objects") == 401
    finally:
        backend.close()


# --- Qdrant: a constructor that fails leaves the folder free ----------------------------------

HOLD = """
import sys
from rag_stores.backends.qdrant import QdrantBackend
backend = QdrantBackend("ok", engine=sys.argv[2], path=sys.argv[1])
backend.ensure_collection(2, False)
print(backend.count(), flush=True)
backend.close()
"""


@pytest.mark.parametrize("engine", ["local", "edge"])
@pytest.mark.parametrize("name", ["a/b", "x" * 300, "a\0b", "what?", ".."])
def test_a_refused_collection_name_leaves_the_folder_free(tmp_path: Path, engine: str,
                                                           name: str) -> None:
    with pytest.raises(ValueError, match="collection_name") as caught:
        QdrantBackend(name, engine=engine, path=str(tmp_path))
    assert len(str(caught.value)) < 400  # the value is shown truncated
    reopened = QdrantBackend("ok", engine=engine, path=str(tmp_path))  # right after: free
    reopened.ensure_collection(2, False)
    reopened.close()
    other = subprocess.run([sys.executable, "-c", HOLD, str(tmp_path), engine],
                           capture_output=True, text=True, timeout=120)
    assert other.returncode == 0, other.stderr


@pytest.mark.parametrize("engine", ["local", "edge"])
@pytest.mark.parametrize("name", ["bad/name", "x" * 300])
def test_a_failed_langchain_store_leaves_the_folder_free(tmp_path: Path, engine: str,
                                                         name: str) -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding

    from rag_stores.langchain import QdrantVectorStore

    embedding = DeterministicFakeEmbedding(size=4)
    with pytest.raises(ValueError) as caught:
        QdrantVectorStore(embedding, name, engine=engine, path=str(tmp_path))
    store = QdrantVectorStore(embedding, "good", engine=engine, path=str(tmp_path))  # not locked
    store.add_texts(["hello"])
    assert store.backend.count() == 1
    store.backend.close()
    assert "collection_name" in str(caught.value)


def test_names_of_existing_local_mode_collections_stay_open(tmp_path: Path) -> None:
    """The server's character rules are for new names: a collection an older qdrant-client
    made under such a name still opens (only what cannot be a folder name is refused)."""
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(tmp_path))
    client.create_collection("plain", models.VectorParams(size=2, distance=models.Distance.COSINE))
    client.close()
    os.rename(tmp_path / "collection" / "plain", tmp_path / "collection" / "old:name")
    meta = json.loads((tmp_path / "meta.json").read_text())
    meta["collections"]["old:name"] = meta["collections"].pop("plain")
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    backend = QdrantBackend("old:name", engine="local", path=str(tmp_path))
    assert backend.exists() and backend.count() == 0
    backend.close()
