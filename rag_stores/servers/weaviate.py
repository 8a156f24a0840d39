"""A real Weaviate server on any machine with Go: build it once, cache it, run it.

No Weaviate binary ships on PyPI, and Weaviate's embedded mode downloads one from
GitHub. This module builds ``weaviate-server`` from the Go module proxy instead::

    go mod download github.com/weaviate/weaviate@v<version>     # the source, from the proxy
    go build ./cmd/weaviate-server                              # in a copy of it, one change:

the gRPC API and the cluster data API listen on ``127.0.0.1`` instead of every interface
(Weaviate hard-codes ``":<port>"`` for those two listeners and has no setting for it; the
REST API, gossip and RAFT already take the loopback address from their settings), so a
server started here is reachable from this machine only. It runs as a plain child process (tests, ``rag-stores weaviate serve``) or hands
it to ``weaviate.connect_to_embedded`` (the Weaviate backend's default).

Cache layout (``<cache>`` is ``$XDG_CACHE_HOME/rag-stores/weaviate``, by default
``~/.cache/rag-stores/weaviate``)::

    <cache>/v1.38.11-loopback/weaviate-server         the binary built as above
    <cache>/embedded/weaviate-v1.38.11-<sha256("v1.38.11")>
                                                      a hard link (or symlink) to it, named
                                                      the way weaviate-client's embedded mode
                                                      looks for it; pass binary_path=<cache>/embedded

``RAG_STORES_WEAVIATE_BIN`` overrides the cache: naming an existing file, that file
is the server binary (its embedded Go build info must match the version asked for,
when it carries one; a stock build's gRPC port listens on every interface); naming
anything else, it is used as ``<cache>``.

Building needs Go >= 1.26 (for v1.38) and the Go module proxy; the first build
downloads a few hundred modules and takes several minutes on two cores.

Python API: :func:`ensure_binary`, :class:`WeaviateServer`,
:func:`embedded_binary_path`, :func:`ensure_embedded_ready`.
Command line: ``rag-stores weaviate install`` and ``rag-stores weaviate serve``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import mmap
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .process import (
    HOST,
    ServerCluster,
    ServerError,
    ServerProcess,
    free_port,
    free_port_block,
)

if TYPE_CHECKING:
    import weaviate

DEFAULT_VERSION = "1.38.11"
MIN_GO = (1, 26)
GO_MODULE = "github.com/weaviate/weaviate"
BINARY_NAME = "weaviate-server"
ENV_BIN = "RAG_STORES_WEAVIATE_BIN"
ENV_API_KEY = "RAG_STORES_WEAVIATE_API_KEY"
# Modules that need no outside service.
DEFAULT_MODULES = ("generative-dummy", "reranker-dummy", "backup-filesystem")
LOG_FILE = "weaviate.log"

_VERSION_RE = re.compile(r"^v?(\d+\.\d+\.\d+(?:-(?:rc|beta|alpha)\.\d+)?)$")
# A `go install` build records the module version; ours, built in a copy, the -X flag below.
_BUILDINFO_RE = re.compile(rb"\nmod\tgithub\.com/weaviate/weaviate\tv([0-9A-Za-z.\-+]+)\t"
                           rb"|usecases/build\.Version=([0-9A-Za-z.\-+]+)")
# The listeners that hard-code every interface, each rewritten once to loopback.
_LOOPBACK_PATCHES = ("adapters/handlers/grpc/server.go",
                     "adapters/handlers/rest/clusterapi/serve.go",
                     "adapters/handlers/rest/clusterapi/grpc/server.go")
_ANY_INTERFACE, _LOOPBACK = 'fmt.Sprintf(":%d"', f'fmt.Sprintf("{HOST}:%d"'


class WeaviateBinaryError(RuntimeError):
    """The weaviate-server binary is missing and could not be built."""


class WeaviateServerError(ServerError):
    """The server did not start (the message carries the end of its log)."""


# ---------------------------------------------------------------------------
# The binary


def normalize_version(version: str) -> str:
    """'v1.38.11' or '1.38.11' -> '1.38.11'; anything else is refused by name."""
    match = _VERSION_RE.match(version.strip())
    if not match:
        raise ValueError(
            f"invalid Weaviate version {version!r}: expected a release like {DEFAULT_VERSION!r}"
        )
    return match.group(1)


def cache_dir() -> Path:
    """Where built binaries live (see the module docstring)."""
    override = os.environ.get(ENV_BIN)
    if override and not Path(override).expanduser().is_file():
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag-stores" / "weaviate"


def binary_version(path: str | os.PathLike[str]) -> str | None:
    """The Weaviate version recorded in a Go binary's build info, or None if it has none.

    Read from the file itself (Go embeds ``mod <module> <version>``), so no Go is needed.
    """
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        match = _BUILDINFO_RE.search(data)  # type: ignore[call-overload]
        # read before the map closes
        return (match.group(1) or match.group(2)).decode() if match else None


def _built_path(version: str) -> Path:
    return cache_dir() / f"v{version}-loopback" / BINARY_NAME


def _check_version(path: Path, version: str) -> Path:
    found = binary_version(path)
    if found is not None and found != version:
        raise WeaviateBinaryError(
            f"{path} is weaviate-server v{found}, but v{version} was asked for "
            f"(unset {ENV_BIN} or ask for version {found!r})"
        )
    return path


def find_binary(version: str = DEFAULT_VERSION) -> Path | None:
    """The cached binary for ``version`` if there is one; never builds."""
    version = normalize_version(version)
    override = os.environ.get(ENV_BIN)
    if override and Path(override).expanduser().is_file():
        return _check_version(Path(override).expanduser(), version)
    built = _built_path(version)
    return built if built.is_file() else None


def _link(source: Path, target: Path) -> None:
    """Hard link (survives deleting the source), else symlink; replaces ``target`` atomically."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        tmp.symlink_to(source.resolve())
    os.replace(tmp, target)


def _go_version(go: str) -> tuple[str, tuple[int, int] | None]:
    out = subprocess.run(
        [go, "env", "GOVERSION"], capture_output=True, text=True, check=False
    ).stdout.strip()
    match = re.match(r"go(\d+)\.(\d+)", out)
    return out or "unknown Go", (int(match.group(1)), int(match.group(2))) if match else None


def _go_missing_message(version: str) -> str:
    need = ".".join(map(str, MIN_GO))
    return (
        f"Go is not on PATH. Building weaviate-server v{version} needs Go >= {need}: "
        f"install it from https://go.dev/dl/ (or your package manager) and run "
        f"`rag-stores weaviate install` again, or set {ENV_BIN} to a prebuilt "
        f"weaviate-server binary."
    )


def _go(go: str, args: list[str], env: Mapping[str, str], cwd: Path | None = None,
        capture: bool = False) -> subprocess.CompletedProcess[str]:
    """Run Go with its progress on our stderr; a failure names the command."""
    result = subprocess.run([go, *args], env=env, cwd=cwd, stdin=subprocess.DEVNULL, text=True,
                            stdout=subprocess.PIPE if capture else 2, check=False)
    if result.returncode != 0:
        raise WeaviateBinaryError(
            f"`go {' '.join(args)}` failed (exit {result.returncode}, {_go_version(go)[0]}; "
            f"v1.38 needs Go >= {'.'.join(map(str, MIN_GO))}); see its output above")
    return result


def _pin_to_loopback(source: Path, version: str) -> None:
    for name in _LOOPBACK_PATCHES:
        path = source / name
        text = path.read_text()
        if text.count(_ANY_INTERFACE) != 1:
            raise WeaviateBinaryError(
                f"weaviate v{version}: {name} no longer has exactly one {_ANY_INTERFACE} "
                f"listener, so the build cannot pin it to {HOST}; use a version this "
                f"rag-stores knows ({DEFAULT_VERSION}) or set {ENV_BIN} to a binary")
        path.chmod(0o644)  # the module cache's files are read-only
        path.write_text(text.replace(_ANY_INTERFACE, _LOOPBACK))


def _build(version: str) -> Path:
    go = shutil.which("go")
    if go is None:
        raise WeaviateBinaryError(_go_missing_message(version))
    goversion, parsed = _go_version(go)
    target = _built_path(version)
    staging = target.parent / f".build-{os.getpid()}"
    staging.mkdir(parents=True, exist_ok=True)
    note = f"rag-stores: building weaviate-server v{version} with {goversion} into {target.parent}"
    if parsed is not None and parsed < MIN_GO:
        note += f" (Go >= {'.'.join(map(str, MIN_GO))} needed; Go may fetch a newer toolchain)"
    print(note + "; the first build downloads Go modules and takes several minutes", file=sys.stderr)
    sys.stderr.flush()
    env = dict(os.environ)
    try:
        module = json.loads(_go(go, ["mod", "download", "-json", f"{GO_MODULE}@v{version}"],
                                env, capture=True).stdout)
        source = staging / "src"
        shutil.copytree(module["Dir"], source)
        for folder, _, _ in os.walk(source):  # the module cache's folders are read-only, so
            os.chmod(folder, 0o755)           # without this the copy could not be removed
        _pin_to_loopback(source, version)
        built = staging / BINARY_NAME
        _go(go, ["build", "-ldflags", f"-X {GO_MODULE}/usecases/build.Version={version}",
                 "-o", str(built), "./cmd/weaviate-server"], env, cwd=source)
        os.replace(built, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def ensure_binary(version: str = DEFAULT_VERSION) -> Path:
    """The path of ``weaviate-server`` v``version``, building it with Go if needed.

    Returns at once when already built; concurrent callers wait for one build (file lock).
    """
    version = normalize_version(version)
    found = find_binary(version)
    if found is not None:
        return found
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = find_binary(version)
        return found if found is not None else _build(version)


# ---------------------------------------------------------------------------
# Embedded mode (weaviate.connect_to_embedded)


def embedded_binary_path() -> Path:
    """The ``binary_path`` directory to give ``weaviate.connect_to_embedded``."""
    return cache_dir() / "embedded"


def embedded_binary_name(version: str) -> str:
    """The file name weaviate-client's embedded mode looks for before downloading."""
    tag = "v" + normalize_version(version)
    return f"weaviate-{tag}-{hashlib.sha256(tag.encode()).hexdigest()}"


def default_embedded_dir() -> Path:
    """Embedded data lives under ``$XDG_DATA_HOME/rag-stores/weaviate`` (~/.local/share/...)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "rag-stores" / "weaviate"


def ensure_embedded_ready(
    version: str = DEFAULT_VERSION,
    persistence_data_path: str | os.PathLike[str] | None = None,
    modules: Iterable[str] = DEFAULT_MODULES,
    log_level: str = "error",
) -> dict[str, Any]:
    """Keyword arguments that make ``weaviate.connect_to_embedded`` run our binary offline.

    Builds the binary if needed and links it where the client looks, so the client never
    downloads. ``persistence_data_path`` defaults to :func:`default_embedded_dir`; backups go
    to its ``.backups`` folder (a dot name no collection can take). The embedded server logs
    to our stdout, hence the quiet ``log_level``. Add ``port`` / ``grpc_port`` to run more
    than one instance.
    """
    version = normalize_version(version)
    binary = ensure_binary(version)
    entry = embedded_binary_path() / embedded_binary_name(version)
    if not entry.is_file() or not os.path.samefile(entry, binary):
        entry.parent.mkdir(parents=True, exist_ok=True)
        _link(binary, entry)
    data = Path(persistence_data_path) if persistence_data_path else default_embedded_dir()
    # The client takes a random gossip port and assumes the next three are free; a taken
    # one keeps the server from starting (the client then waits 30 s). Use a checked block.
    internal = free_port_block(4)
    env = {
        "CLUSTER_GOSSIP_BIND_PORT": str(internal),
        "CLUSTER_DATA_BIND_PORT": str(internal + 1),
        "RAFT_PORT": str(internal + 2),
        "RAFT_INTERNAL_RPC_PORT": str(internal + 3),
        "DEFAULT_VECTORIZER_MODULE": "none",
        "ENABLE_MODULES": ",".join(modules),
        "BACKUP_FILESYSTEM_PATH": str(data / ".backups"),
        "DISABLE_TELEMETRY": "true",
        "GO_PROFILING_DISABLE": "true",  # else every instance binds :6060
        "CLUSTER_BIND_ADDR": HOST,
        # The client names the node after its port, so data written on one port would not
        # start on another (RAFT knows the old name); a fixed name lets the port change.
        "CLUSTER_HOSTNAME": "embedded",
        "RAFT_JOIN": "embedded",  # the local node's RAFT port is filled in by the server
        "RAFT_TIMEOUTS_MULTIPLIER": "1",  # one local voter: elect at once (default 5 adds ~6 s)
        "LIMIT_RESOURCES": "true",
        "LOG_LEVEL": log_level,
    }
    return {
        "version": version,
        "binary_path": str(embedded_binary_path()),
        "persistence_data_path": str(data),
        "environment_variables": env,
    }


# ---------------------------------------------------------------------------
# Running a server (servers.process supervises it)


class WeaviateServer(ServerProcess):
    """One Weaviate server process on loopback, for tests, notebooks and `rag-stores weaviate serve`.

    Ports default to free ones, data to a temporary directory (deleted on stop), access
    to anonymous; with ``api_key`` only that key is accepted. The server log goes to
    ``<data_dir>/weaviate.log``. Use as a context manager or call start()/stop().
    HTTP and the cluster ports bind to 127.0.0.1, but Weaviate binds gRPC on every
    interface (hard-coded): on a shared network, set ``api_key``.
    """

    engine = "Weaviate"
    binary_name = BINARY_NAME
    log_name = LOG_FILE

    def __init__(
        self,
        port: int | None = None,
        grpc_port: int | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        api_key: str | None = None,
        modules: Iterable[str] = DEFAULT_MODULES,
        version: str = DEFAULT_VERSION,
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 120.0,
        *,
        hostname: str = "node1",
        internal_port: int | None = None,
        raft_join: str | None = None,
        cluster_join: str | None = None,
    ) -> None:
        if api_key is not None and not api_key.strip():
            raise ValueError("api_key must be a non-empty string (or None for anonymous access)")
        super().__init__(data_dir, env, startup_timeout)
        self.version = normalize_version(version)
        self.http_port = port
        self.grpc_port = grpc_port
        self.api_key = api_key
        self.modules = tuple(modules)
        # Cluster identity, kept across restarts (RAFT knows a node by name and address):
        # internal_port .. +3 are gossip, data, RAFT and RAFT RPC.
        self.hostname = hostname
        self.internal_port = internal_port
        self.raft_join = raft_join
        self.cluster_join = cluster_join

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    def _choose_ports(self) -> None:
        self.http_port = self.http_port or free_port()
        self.grpc_port = self.grpc_port or free_port()
        self.internal_port = self.internal_port or free_port_block(4)

    def _ports(self) -> dict[str, int]:
        internal = int(self.internal_port or 0)
        return {"HTTP": int(self.http_port or 0), "gRPC": int(self.grpc_port or 0),
                "gossip": internal, "cluster data": internal + 1, "RAFT": internal + 2,
                "RAFT RPC": internal + 3}

    @property
    def raft_address(self) -> str:
        assert self.internal_port is not None, "ports are chosen on start"
        return f"{self.hostname}:{self.internal_port + 2}"

    def _command(self) -> list[str]:
        return [str(ensure_binary(self.version)), "--host", HOST, "--port", str(self.http_port),
                "--scheme", "http", "--read-timeout=600s", "--write-timeout=600s"]

    def _ready_url(self) -> str:
        return f"{self.url}/v1/.well-known/ready"

    def _environment(self) -> dict[str, str]:
        assert self.data_dir is not None and self.internal_port is not None
        gossip = self.internal_port
        raft = gossip + 2
        hostname = self.hostname
        env = {
            "PERSISTENCE_DATA_PATH": str(self.data_dir / "data"),
            "BACKUP_FILESYSTEM_PATH": str(self.data_dir / "backups"),
            "DEFAULT_VECTORIZER_MODULE": "none",
            "ENABLE_MODULES": ",".join(self.modules),
            "GRPC_PORT": str(self.grpc_port),
            "CLUSTER_HOSTNAME": hostname,
            "CLUSTER_IN_LOCALHOST": "true",
            "CLUSTER_BIND_ADDR": HOST,
            "CLUSTER_GOSSIP_BIND_PORT": str(gossip),
            "CLUSTER_DATA_BIND_PORT": str(gossip + 1),
            "RAFT_PORT": str(raft),
            "RAFT_INTERNAL_RPC_PORT": str(raft + 1),
            "CLUSTER_ADVERTISE_ADDR": HOST,
            "RAFT_JOIN": self.raft_join or f"{hostname}:{raft}",
            "RAFT_BOOTSTRAP_EXPECT": str(len((self.raft_join or hostname).split(","))),
            "LOG_LEVEL": "info",
            "DISABLE_TELEMETRY": "true",
            "GO_PROFILING_DISABLE": "true",
            "LIMIT_RESOURCES": "true",
            "QUERY_DEFAULTS_LIMIT": "25",
        }
        if self.raft_join is None:
            env["RAFT_TIMEOUTS_MULTIPLIER"] = "1"  # one local voter: elect at once (5 adds ~6 s)
        if self.cluster_join is not None:
            env["CLUSTER_JOIN"] = self.cluster_join
        if self.api_key is None:
            env["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED"] = "true"
        else:
            # Through the environment only (a command line is readable by every local user).
            # The key's user needs no authorization settings: without RBAC or an admin list,
            # Weaviate 1.38 lets every authenticated user do everything. The cluster data API
            # (its own loopback port, which serves objects) asks for the key as well.
            env.update(
                AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED="false",
                AUTHENTICATION_APIKEY_ENABLED="true",
                AUTHENTICATION_APIKEY_ALLOWED_KEYS=self.api_key,
                AUTHENTICATION_APIKEY_USERS="rag-stores",
                CLUSTER_BASIC_AUTH_USERNAME="rag-stores",
                CLUSTER_BASIC_AUTH_PASSWORD=self.api_key,
            )
        return env

    def launch(self) -> None:
        """Build the binary if needed and start the process."""
        ensure_binary(self.version)
        try:
            super().launch()
        except ServerError as exc:
            raise WeaviateServerError(str(exc)) from None

    def wait_ready(self) -> None:
        try:
            super().wait_ready()
        except ServerError as exc:
            raise WeaviateServerError(str(exc)) from None

    def start(self) -> WeaviateServer:
        super().start()
        return self

    def __enter__(self) -> WeaviateServer:
        return self.start()

    # -- clients

    def _connect_kwargs(self) -> dict[str, Any]:
        from weaviate.classes.init import Auth

        if not self.running:
            raise WeaviateServerError("the server is not running: call start() first")
        auth = Auth.api_key(self.api_key) if self.api_key is not None else None
        return {"host": HOST, "port": self.http_port, "grpc_port": self.grpc_port,
                "auth_credentials": auth}

    def connect(self, **kwargs: Any) -> weaviate.WeaviateClient:
        """A connected sync client (with the API key if set); the caller closes it."""
        import weaviate

        return weaviate.connect_to_local(**{**self._connect_kwargs(), **kwargs})

    async def connect_async(self, **kwargs: Any) -> weaviate.WeaviateAsyncClient:
        """A connected async client (with the API key if set); the caller closes it."""
        import weaviate

        client = weaviate.use_async_with_local(**{**self._connect_kwargs(), **kwargs})
        await client.connect()
        return client

    def connection_help(self) -> str:
        """A Python snippet that connects to this server (the key by variable, never inline)."""
        lines = ["import weaviate"]
        auth = ""
        if self.api_key is not None:
            lines[:0] = ["import os"]
            lines.append("from weaviate.classes.init import Auth")
            auth = f", auth_credentials=Auth.api_key(os.environ[{ENV_API_KEY!r}])"
        lines.append(
            f"client = weaviate.connect_to_local(host={HOST!r}, port={self.http_port}, "
            f"grpc_port={self.grpc_port}{auth})"
        )
        return "\n".join(lines)


class WeaviateCluster(ServerCluster):
    """`nodes` Weaviate servers forming one cluster on loopback (gossip joins node 1, RAFT
    bootstraps with every node as a voter); `start()` returns when every node is ready."""

    def __init__(self, nodes: int = 3, api_key: str | None = None,
                 data_dir: str | os.PathLike[str] | None = None, version: str = DEFAULT_VERSION,
                 modules: Iterable[str] = DEFAULT_MODULES, startup_timeout: float = 120.0) -> None:
        if not isinstance(nodes, int) or isinstance(nodes, bool) or nodes < 1:
            raise ValueError(f"nodes must be a positive integer, got {nodes!r}")
        root = Path(data_dir) if data_dir is not None else None
        internal = [free_port_block(4) for _ in range(nodes)]
        raft_join = ",".join(f"node{i + 1}:{port + 2}" for i, port in enumerate(internal))
        self.nodes: list[WeaviateServer] = [WeaviateServer(  # type: ignore[assignment]
            data_dir=root / f"node{i + 1}" if root is not None else None, api_key=api_key,
            version=version, modules=modules, startup_timeout=startup_timeout,
            hostname=f"node{i + 1}", internal_port=port, raft_join=raft_join,
            cluster_join=f"{HOST}:{internal[0]}" if i else None)
            for i, port in enumerate(internal)]
