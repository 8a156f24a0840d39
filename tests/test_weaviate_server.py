"""The real Weaviate server: build cache, server process, API keys, embedded mode, CLI."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import weaviate
import weaviate.embedded
from weaviate.classes.config import Configure, DataType, Property
from weaviate.classes.query import MetadataQuery
from weaviate.exceptions import UnexpectedStatusCodeError

from rag_stores.servers import weaviate as ws
from tests.processes import listening_addresses

pytestmark = pytest.mark.weaviate

MODULES = {"generative-dummy", "reranker-dummy", "backup-filesystem"}


def _name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """argv and environment for running the `rag-stores` command in a subprocess."""
    return [sys.executable, "-m", "rag_stores.cli", *args], {**os.environ, **(env or {})}


# -- the server ---------------------------------------------------------------------------


def test_every_listener_is_on_loopback_and_outside_the_ephemeral_range(weaviate_server) -> None:
    ports = weaviate_server._ports()
    assert listening_addresses(weaviate_server.pid) == {(ws.HOST, p) for p in ports.values()}
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert all(port < low for port in ports.values()), ports


def test_roundtrip_with_own_vectors(weaviate_client) -> None:
    name = _name("Server")
    col = weaviate_client.collections.create(
        name, vector_config=Configure.Vectors.self_provided(),
        properties=[Property(name="text", data_type=DataType.TEXT)])
    try:
        hello = col.data.insert({"text": "hello"}, vector=[1.0, 0.0, 0.0])
        col.data.insert({"text": "other"}, vector=[0.0, 1.0, 0.0])
        res = col.query.near_vector([0.9, 0.1, 0.0], limit=1,
                                    return_metadata=MetadataQuery(distance=True))
        assert [o.uuid for o in res.objects] == [hello]
        assert res.objects[0].properties["text"] == "hello"
        assert res.objects[0].metadata.distance is not None
        assert res.objects[0].metadata.distance < 0.1
    finally:
        weaviate_client.collections.delete(name)


async def test_async_client(weaviate_async_client) -> None:
    name = _name("Async")
    col = await weaviate_async_client.collections.create(
        name, vector_config=Configure.Vectors.self_provided())
    try:
        first = await col.data.insert({"text": "a"}, vector=[0.0, 1.0])
        await col.data.insert({"text": "b"}, vector=[1.0, 0.0])
        res = await col.query.near_vector([0.1, 0.9], limit=1)
        assert [o.uuid for o in res.objects] == [first]
    finally:
        await weaviate_async_client.collections.delete(name)


def test_server_settings(weaviate_server, weaviate_client) -> None:
    meta = weaviate_client.get_meta()
    assert meta["version"] == ws.DEFAULT_VERSION
    assert MODULES <= set(meta["modules"])
    assert weaviate_server.url == f"http://127.0.0.1:{weaviate_server.http_port}"
    assert weaviate_server.running
    # The server logs to its data dir, not to the test output.
    assert "Serving weaviate" in weaviate_server.log_path.read_text()


def test_api_key_is_enforced(weaviate_auth_server) -> None:
    server = weaviate_auth_server
    where = {"host": ws.HOST, "port": server.http_port, "grpc_port": server.grpc_port}
    with pytest.raises(UnexpectedStatusCodeError, match="invalid api key") as wrong:
        weaviate.connect_to_local(**where, auth_credentials="not-" + server.api_key)
    assert wrong.value.status_code == 401
    with pytest.raises(UnexpectedStatusCodeError, match="anonymous access not enabled"):
        weaviate.connect_to_local(**where)
    with server.connect() as client:
        name = _name("Auth")
        client.collections.create(name, vector_config=Configure.Vectors.self_provided())
        assert client.collections.exists(name)
        client.collections.delete(name)


def test_death_at_start_is_reported_with_the_log() -> None:
    server = ws.WeaviateServer(env={"QUERY_MAXIMUM_RESULTS": "not-a-number"})
    with pytest.raises(ws.WeaviateServerError, match="exited with code") as err:
        server.start()
    assert "QUERY_MAXIMUM_RESULTS" in str(err.value)  # the log tail names the cause
    assert server.process is None
    assert server.data_dir is not None and not server.data_dir.exists()  # temp dir removed


def test_busy_port_is_named() -> None:
    with socket.socket() as sock:
        sock.bind((ws.HOST, 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ws.WeaviateServerError, match=f"HTTP port {port} is already in use"):
            ws.WeaviateServer(port=port).start()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="invalid Weaviate version 'latest'"):
        ws.WeaviateServer(version="latest")
    with pytest.raises(ValueError, match="api_key"):
        ws.WeaviateServer(api_key=" ")
    assert ws.normalize_version("v1.38.11") == "1.38.11"


# -- the binary ---------------------------------------------------------------------------


def test_ensure_binary_returns_at_once_when_built(monkeypatch) -> None:
    path = ws.ensure_binary()

    def no_build(*args, **kwargs):
        raise AssertionError("ensure_binary tried to build or run Go")

    monkeypatch.setattr(ws, "_build", no_build)
    monkeypatch.setattr(ws.subprocess, "run", no_build)
    assert ws.ensure_binary() == path
    assert ws.ensure_binary("v" + ws.DEFAULT_VERSION) == path
    assert os.access(path, os.X_OK)
    assert ws.binary_version(path) == ws.DEFAULT_VERSION


def test_no_go_gives_a_clear_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(ws.ENV_BIN, str(tmp_path / "cache"))
    monkeypatch.setattr(ws.shutil, "which", lambda name: None)
    with pytest.raises(ws.WeaviateBinaryError, match=r"Go is not on PATH.*needs Go >= 1\.26"):
        ws.ensure_binary()


def test_the_build_pins_each_listener_to_loopback_or_stops(tmp_path) -> None:
    listen = 'lis, err := net.Listen("tcp", fmt.Sprintf("{}:%d", port))'

    def write_source(changed: str | None = None) -> None:
        for name in ws._LOOPBACK_PATCHES:
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text("addr := net.JoinHostPort(host, port)"  # a later source
                                         if name == changed else listen.format(""))

    write_source()
    ws._pin_to_loopback(tmp_path, "1.38.11")
    assert {(tmp_path / name).read_text() for name in ws._LOOPBACK_PATCHES} == {
        listen.format("127.0.0.1")}
    write_source(changed=ws._LOOPBACK_PATCHES[1])
    with pytest.raises(ws.WeaviateBinaryError, match=r"weaviate v9\.0\.0: adapters/handlers/rest"
                                                     r"/clusterapi/serve\.go no longer has"):
        ws._pin_to_loopback(tmp_path, "9.0.0")


def test_install_command_without_go(tmp_path) -> None:
    cache = tmp_path / "cache"
    argv, env = _cli("weaviate", "install", env={"PATH": "", ws.ENV_BIN: str(cache)})
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "Go is not on PATH" in result.stderr
    assert "Go >= 1.26" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(cache.rglob(ws.BINARY_NAME))


# -- embedded mode ------------------------------------------------------------------------


def test_connect_to_embedded_runs_our_binary_offline(monkeypatch, tmp_path) -> None:
    def no_download(*args, **kwargs):
        raise AssertionError(f"embedded mode tried to download {args}")

    monkeypatch.setattr(weaviate.embedded.urllib.request, "urlretrieve", no_download)
    kwargs = ws.ensure_embedded_ready(persistence_data_path=tmp_path / "db")
    entry = Path(kwargs["binary_path"], ws.embedded_binary_name(ws.DEFAULT_VERSION))
    assert entry.samefile(ws.ensure_binary())
    name = _name("Embedded")

    client = weaviate.connect_to_embedded(**kwargs, port=ws.free_port(), grpc_port=ws.free_port())
    try:
        embedded = client._connection.embedded_db.process
        assert {host for host, _ in listening_addresses(embedded.pid)} == {ws.HOST}
        meta = client.get_meta()
        assert meta["version"] == ws.DEFAULT_VERSION
        assert MODULES <= set(meta["modules"])
        col = client.collections.create(
            name, vector_config=Configure.Vectors.self_provided(),
            generative_config=Configure.Generative.custom("generative-dummy"))
        col.data.insert({"text": "hello"}, vector=[1.0, 0.0])
        res = col.generate.near_vector([1.0, 0.0], limit=1, single_prompt="Repeat {text}")
        assert "hello" in (res.objects[0].generated or "")
    finally:
        client.close()
    assert (tmp_path / "db" / "schema.db").is_file()

    # The data opens again on other ports (the node name does not follow the port).
    client = weaviate.connect_to_embedded(**kwargs, port=ws.free_port(), grpc_port=ws.free_port())
    try:
        assert client.collections.get(name).query.fetch_objects().objects[0].properties == {
            "text": "hello"}
    finally:
        client.close()


# -- rag-stores weaviate serve ------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_stops_cleanly_on_signal(sig) -> None:
    http, grpc = ws.free_port(), ws.free_port()
    argv, env = _cli("weaviate", "serve", "--port", str(http), "--grpc-port", str(grpc),
                     env={"PYTHONUNBUFFERED": "1"})
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    server_pid = None
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # ends if serve exits early
            lines.append(line)
            if "connect_to_local" in line:
                break
        out = "".join(lines)
        snippet = out[out.index("import weaviate"):].strip()
        assert f"port={http}, grpc_port={grpc}" in snippet
        server_pid = int(re.search(r"pid (\d+)", out).group(1))  # type: ignore[union-attr]
        data_dir = Path(re.search(r"data: (\S+) \(temporary\)", out).group(1))  # type: ignore[union-attr]
        assert data_dir.is_dir()

        namespace: dict = {}
        exec(snippet, namespace)  # the printed snippet connects
        with namespace["client"] as client:
            assert client.is_ready()

        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
            if server_pid is not None:
                os.kill(server_pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert "stopping weaviate-server" in err
    with pytest.raises(ProcessLookupError):
        os.kill(server_pid, 0)  # the server was stopped and reaped, not orphaned
    assert not data_dir.exists()
