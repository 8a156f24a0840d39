"""A real Qdrant server, or a local Qdrant cluster, on loopback.

The binary comes from `binary=` (`--binary`), `RAG_STORES_QDRANT_BIN`, or `qdrant` on PATH;
the project does not download one. Tested with Qdrant 1.18.3 (qdrant-client 1.20 warns
about the minor-version gap: clients opened by `connect()` pass `check_compatibility=False`).

Command line: `rag-stores qdrant serve` and `rag-stores qdrant cluster --nodes 3`; for
embedded Qdrant Edge folders, `rag-stores qdrant optimize` (build the HNSW index; moving a
collection to or from a server is `rag-stores migrate`).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .process import (
    HOST,
    ServerCluster,
    ServerError,
    ServerProcess,
    free_port,
)

ENV_BIN = "RAG_STORES_QDRANT_BIN"
ENV_API_KEY = "RAG_STORES_QDRANT_API_KEY"
TESTED_VERSIONS = ("1.18.3",)


class QdrantBinaryError(ServerError):
    """No Qdrant server binary was found."""


def find_binary(binary: str | os.PathLike[str] | None = None) -> Path:
    """The Qdrant server binary: `binary`, else $RAG_STORES_QDRANT_BIN, else `qdrant` on PATH."""
    for source, candidate in (("binary=", binary), (ENV_BIN, os.environ.get(ENV_BIN))):
        if candidate:
            path = Path(candidate).expanduser()
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise QdrantBinaryError(f"{source} names {str(path)!r}, which is not an "
                                        "executable file")
            return path.resolve()
    found = shutil.which("qdrant")
    if found is None:
        raise QdrantBinaryError(
            "no Qdrant server binary: pass --binary PATH (binary=) or set "
            f"{ENV_BIN}=/path/to/qdrant, or put `qdrant` on PATH. Binaries come from Qdrant's "
            "release archives (qdrant-x86_64-unknown-linux-gnu.tar.gz and others, on its "
            "GitHub releases page), from the qdrant/qdrant Docker image (/qdrant/qdrant), or "
            "from building its source with cargo. Tested: " + ", ".join(TESTED_VERSIONS))
    return Path(found).resolve()


class QdrantServer(ServerProcess):
    """One Qdrant server process (one node of a cluster when `p2p_port` or `bootstrap`)."""

    engine = "Qdrant"
    binary_name = "qdrant"
    log_name = "qdrant.log"

    def __init__(self, port: int | None = None, grpc_port: int | None = None,
                 data_dir: str | os.PathLike[str] | None = None, api_key: str | None = None,
                 binary: str | os.PathLike[str] | None = None, *, cluster: bool = False,
                 p2p_port: int | None = None, bootstrap: str | None = None,
                 env: Mapping[str, str] | None = None, startup_timeout: float = 60.0) -> None:
        if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
            raise ValueError("api_key must be a non-empty string (or None for anonymous access)")
        super().__init__(data_dir, env, startup_timeout)
        self.binary = find_binary(binary)
        self.http_port, self.grpc_port = port, grpc_port
        self._api_key = api_key
        self.cluster = cluster or bootstrap is not None
        self.p2p_port, self.bootstrap = p2p_port, bootstrap

    @property
    def api_key(self) -> str | None:
        return self._api_key

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    @property
    def p2p_uri(self) -> str:
        return f"http://{HOST}:{self.p2p_port}"

    def _choose_ports(self) -> None:
        self.http_port = self.http_port or free_port()
        self.grpc_port = self.grpc_port or free_port()
        if self.cluster:
            self.p2p_port = self.p2p_port or free_port()

    def _ports(self) -> dict[str, int]:
        ports = {"HTTP": self.http_port, "gRPC": self.grpc_port}
        if self.cluster:
            ports["p2p"] = self.p2p_port
        return {name: int(port) for name, port in ports.items() if port is not None}

    def _command(self) -> list[str]:
        command = [str(self.binary)]
        if self.cluster:
            command += ["--uri", self.p2p_uri]
            if self.bootstrap:
                command += ["--bootstrap", self.bootstrap]
        return command

    def _environment(self) -> dict[str, str]:
        assert self.data_dir is not None
        env = {
            "QDRANT__STORAGE__STORAGE_PATH": str(self.data_dir / "storage"),
            "QDRANT__STORAGE__SNAPSHOTS_PATH": str(self.data_dir / "snapshots"),
            "QDRANT__SERVICE__HOST": HOST,
            "QDRANT__SERVICE__HTTP_PORT": str(self.http_port),
            "QDRANT__SERVICE__GRPC_PORT": str(self.grpc_port),
            "QDRANT__TELEMETRY_DISABLED": "true",
            "QDRANT__LOG_LEVEL": "INFO",
        }
        if self._api_key is not None:
            env["QDRANT__SERVICE__API_KEY"] = self._api_key
        if self.cluster:
            env.update(QDRANT__CLUSTER__ENABLED="true", QDRANT__CLUSTER__P2P__PORT=str(self.p2p_port))
        return env

    def _ready_url(self) -> str:
        return f"{self.url}/readyz"

    def get(self, path: str) -> Any:
        """GET a JSON endpoint of the server's REST API (with the API key)."""
        request = urllib.request.Request(f"{self.url}{path}")
        if self._api_key is not None:
            request.add_header("api-key", self._api_key)
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    def connect_kwargs(self, prefer_grpc: bool = False) -> dict[str, Any]:
        """Keyword arguments for QdrantClient / AsyncQdrantClient / our stores."""
        if not self.running:
            raise ServerError("the Qdrant server is not running: call start() first")
        return {"url": self.url, "grpc_port": self.grpc_port, "prefer_grpc": prefer_grpc,
                "api_key": self._api_key, "check_compatibility": False}

    def connect(self, prefer_grpc: bool = False, **kwargs: Any) -> Any:
        """A sync QdrantClient for this server; the caller closes it."""
        from qdrant_client import QdrantClient

        return QdrantClient(**{**self.connect_kwargs(prefer_grpc), **kwargs})

    def connect_async(self, prefer_grpc: bool = False, **kwargs: Any) -> Any:
        """An AsyncQdrantClient for this server; the caller closes it."""
        from qdrant_client import AsyncQdrantClient

        return AsyncQdrantClient(**{**self.connect_kwargs(prefer_grpc), **kwargs})

    def connection_help(self) -> str:
        """A Python snippet that connects to this server (the key by variable, never inline)."""
        key = f", api_key=os.environ[{ENV_API_KEY!r}]" if self._api_key is not None else ""
        head = "import os\n" if self._api_key is not None else ""
        return (f"{head}from qdrant_client import QdrantClient\n"
                f"client = QdrantClient(url={self.url!r}, grpc_port={self.grpc_port}{key}, "
                "check_compatibility=False)")


class QdrantCluster(ServerCluster):
    """`nodes` Qdrant servers forming one cluster on loopback: node 1 bootstraps, the
    others join it; `start()` returns once every node is ready and sees all peers."""

    sequential = True  # a joining node needs the bootstrap node up

    def __init__(self, nodes: int = 3, api_key: str | None = None,
                 binary: str | os.PathLike[str] | None = None,
                 data_dir: str | os.PathLike[str] | None = None,
                 startup_timeout: float = 60.0) -> None:
        if not isinstance(nodes, int) or isinstance(nodes, bool) or nodes < 1:
            raise ValueError(f"nodes must be a positive integer, got {nodes!r}")
        self.startup_timeout = startup_timeout
        root = Path(data_dir) if data_dir is not None else None
        self.nodes: list[QdrantServer] = []  # type: ignore[assignment]
        for i in range(nodes):
            node_dir = root / f"node{i + 1}" if root is not None else None
            first = self.nodes[0] if self.nodes else None
            self.nodes.append(QdrantServer(
                data_dir=node_dir, api_key=api_key, binary=binary, cluster=True,
                p2p_port=free_port(), startup_timeout=startup_timeout,
                bootstrap=first.p2p_uri if first is not None else None))

    def _wait_formed(self) -> None:
        self.wait_for_peers()

    def wait_for_peers(self, timeout: float | None = None) -> None:
        """Wait until every running node sees every node as a peer."""
        deadline = time.monotonic() + (timeout or self.startup_timeout)
        while True:
            seen = [len(node.get("/cluster")["result"].get("peers", {}))
                    for node in self.nodes if node.running]
            if all(count == len(self.nodes) for count in seen):
                return
            if time.monotonic() > deadline:
                raise ServerError(f"Qdrant cluster did not form: nodes see {seen} peers of "
                                  f"{len(self.nodes)}")
            time.sleep(0.2)
