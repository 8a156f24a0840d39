"""One supervisor for every engine server this project starts (Qdrant, Weaviate).

Free ports, the log file, readiness, shutdown, and the rule that a server never outlives
the Python process that started it live here once; `servers.qdrant` and
`servers.weaviate` only say which binary runs with which environment.

A server is started in its own session (Ctrl-C reaches Python, which stops the server in
order) with a watcher beside it: when the Python process that started the server dies, even
by SIGKILL, the watcher SIGKILLs the server, so no server outlives its owner (a kernel
parent-death signal would follow the starting *thread*, which may end before the process).
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any

HOST = "127.0.0.1"


class ServerError(RuntimeError):
    """A server did not start or stopped unexpectedly (the message carries its log's end)."""


# --- ports ------------------------------------------------------------------------------


# Servers take ports below the kernel's ephemeral range: a port from that range can be handed
# to some process's outgoing connection while its server is down (a restart on the same
# ports), and the server then cannot bind it again (Weaviate even reports ready without
# its cluster data port, and every count(*) then times out).
_PORT_FLOOR = 20000


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[:2]
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default; other systems: 49152-65535, also above


# Ports handed out lately by this process: a server binds its ports only once it runs, so a
# port chosen for it still looks free while its other ports are chosen (seen: a Weaviate's
# gRPC port drawn again inside its own raft block). The latest few hundred cover any start.
_handed_out: deque[int] = deque(maxlen=512)
_handing_out = threading.Lock()


def _hand_out(ports: range) -> bool:
    """Takes `ports` if none was handed out lately and all are free now."""
    with _handing_out:
        if any(p in _handed_out for p in ports) or not all(map(port_is_free, ports)):
            return False
        _handed_out.extend(ports)
        return True


def free_port() -> int:
    """A TCP port free on loopback right now, outside the ephemeral range when possible, and
    not handed out lately by this process."""
    low, high = _ephemeral_range()
    candidates = range(_PORT_FLOOR, low) if low - _PORT_FLOOR >= 1000 else range(high + 1, 65536)
    rng = random.SystemRandom()  # concurrent processes must not walk the same sequence
    for _ in range(200 if len(candidates) >= 1000 else 0):
        port = rng.choice(candidates)
        if _hand_out(range(port, port + 1)):
            return port
    for _ in range(200):  # no room outside the ephemeral range: let the kernel pick
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if _hand_out(range(port, port + 1)):
            return port
    raise ServerError("no free TCP port found on loopback")


def port_is_free(port: int) -> bool:
    """Nothing listens on `port` (connections in TIME_WAIT, as after a restart, do not count:
    servers bind with SO_REUSEADDR too)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _accepts(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=2).close()
    except OSError:
        return False
    return True


def free_port_block(size: int) -> int:
    """A port p with p .. p + size - 1 all free (engines that derive ports from one)."""
    for _ in range(200):
        port = free_port()
        if port + size <= 65536 and _hand_out(range(port + 1, port + size)):
            return port
    raise ServerError(f"no {size} consecutive free TCP ports found on loopback")


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


# --- parent-death watch -----------------------------------------------------------------

# A small watcher process per server: it polls whether the Python process that started the
# server is still its parent, and SIGKILLs the server when it is not (that process died,
# even by SIGKILL); it exits by itself when the server has exited.
_WATCHER = """
import os, signal, sys, time
# The starter's pid, not getppid(): on a loaded machine the starter may die before this runs.
server, parent = int(sys.argv[1]), int(sys.argv[2])
while True:
    time.sleep(0.2)
    try:
        os.kill(server, 0)
    except ProcessLookupError:
        break
    if os.getppid() != parent:
        os.kill(server, signal.SIGKILL)
        break
"""


def _watch(pid: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", _WATCHER, str(pid), str(os.getpid())],
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, start_new_session=True)


# --- one server process -----------------------------------------------------------------


class ServerProcess:
    """One engine server on loopback: subclasses give the command, environment and ports.

    Data lives in `data_dir` (default: a temporary directory, deleted by `stop()`); the
    server runs with that directory as its working directory and logs to `log_path`.
    `kill()` SIGKILLs it and keeps the data, so `start()` brings it back on the same data
    and ports (fault tests, restarts).
    """

    engine = "server"
    binary_name = "server"
    log_name = "server.log"

    def __init__(self, data_dir: str | os.PathLike[str] | None = None,
                 env: Mapping[str, str] | None = None, startup_timeout: float = 120.0) -> None:
        self.extra_env = dict(env or {})
        self.startup_timeout = startup_timeout
        self._given_dir = Path(data_dir) if data_dir is not None else None
        self.data_dir: Path | None = self._given_dir
        self._temp_dir = False  # data_dir is a temporary directory of ours, still there
        self.process: subprocess.Popen[bytes] | None = None
        self._watcher: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # -- what a subclass supplies
    def _choose_ports(self) -> None:
        """Fill in unset ports (called before every start)."""

    def _ports(self) -> dict[str, int]:
        """The ports this server listens on, by name, checked free before it starts."""
        return {}

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _environment(self) -> dict[str, str]:
        raise NotImplementedError

    def _ready_url(self) -> str:
        raise NotImplementedError

    # -- state
    @property
    def log_path(self) -> Path:
        if self.data_dir is None:
            raise ServerError(f"the {self.engine} server has not been started")
        return self.data_dir / self.log_name

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    # -- lifecycle
    def start(self) -> ServerProcess:
        """Start the process and wait until its readiness URL answers 200."""
        self.launch()
        self.wait_ready()
        return self

    def launch(self) -> None:
        """Start the process without waiting (cluster nodes that are ready only together)."""
        if self.running:
            raise ServerError(f"the {self.engine} server is already running (pid {self.pid})")
        if self._given_dir is None and not self._temp_dir:  # first start, or after stop()
            self.data_dir = Path(tempfile.mkdtemp(prefix=f"rag-stores-{self.engine.lower()}-"))
            self._temp_dir = True
        assert self.data_dir is not None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._choose_ports()
        for name, port in self._ports().items():
            if not port_is_free(port):
                raise ServerError(f"{self.engine} {name} port {port} is already in use")
        command, env = self._command(), {**os.environ, **self._environment(), **self.extra_env}
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            command, env=env, cwd=self.data_dir, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True)
        self._watcher = _watch(self.process.pid)
        atexit.register(self.stop)

    def wait_ready(self) -> None:
        """Wait until the readiness URL answers 200; a server that fails is stopped."""
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        """Ready = the readiness URL answers 200 and every port of `_ports()` accepts
        connections (Weaviate answers ready even when a listener of its failed to bind)."""
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = self.process.poll()
            if code is not None:
                raise ServerError(f"{self.engine} exited with code {code} while starting; "
                                  f"its log ends with:\n{tail(self.log_path)}")
            silent = self._silent_ports()
            if not silent:
                return
            if time.monotonic() > deadline:
                raise ServerError(f"{self.engine} was not ready after "
                                  f"{self.startup_timeout:.0f}s ({silent}); its log ends "
                                  f"with:\n{tail(self.log_path)}")
            time.sleep(0.1)

    def _silent_ports(self) -> str:
        """What is not ready yet, or '' when the server is ready."""
        try:
            with urllib.request.urlopen(self._ready_url(), timeout=2) as response:
                if response.status != 200:
                    return f"{self._ready_url()} answered {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            return f"{self._ready_url()} did not answer 200: {exc}"
        silent = [f"{name} port {port}" for name, port in self._ports().items()
                  if not _accepts(port)]
        return f"nothing listens on its {', '.join(silent)}" if silent else ""

    def kill(self) -> None:
        """SIGKILL the server (a crash); data, ports and log stay for `start()`."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
        self._close_log()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`; a temporary data directory is deleted."""
        atexit.unregister(self.stop)
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._close_log()
        if self._temp_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self._temp_dir = False

    def _close_log(self) -> None:
        """After the server exited: its watcher ends within a poll, and the log closes."""
        if self._watcher is not None:
            try:
                self._watcher.wait(5)
            except subprocess.TimeoutExpired:
                self._watcher.kill()
                self._watcher.wait()
            self._watcher = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:  # never the API key
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<{type(self).__name__} {state}>"


class ServerCluster:
    """Servers of one engine forming a cluster on loopback; subclasses make the nodes and
    may wait for the cluster to form."""

    nodes: list[ServerProcess]
    sequential = False  # start a node only once the one before it is ready

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]  # type: ignore[attr-defined]

    def start(self) -> ServerCluster:
        try:
            for node in self.nodes:
                node.launch()
                if self.sequential:
                    node.wait_ready()
            for node in self.nodes:
                node.wait_ready()
            self._wait_formed()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_formed(self) -> None:
        """Return once the nodes see each other (readiness may come before)."""

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()

    def __enter__(self) -> ServerCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- the command line: run servers until Ctrl-C -----------------------------------------


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


def serve_until_stopped(servers: Sequence[ServerProcess], announce: Callable[[], str],
                        start: Callable[[], Any] | None = None) -> int:
    """Start `servers` (or call `start`), print `announce()`, wait for Ctrl-C / SIGTERM or
    for a server to exit, and stop them all in order. The exit code for the CLI."""
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if start is not None:
            start()
        else:
            for server in servers:
                server.start()
        print(announce(), flush=True)
        while True:
            for server in servers:
                if server.process is not None and server.process.poll() is not None:
                    print(f"rag-stores: {server.engine} (pid {server.pid}) exited with code "
                          f"{server.process.returncode}; last lines of its log:\n"
                          f"{tail(server.log_path)}", file=sys.stderr)
                    return 1
            time.sleep(0.5)
    except _Stop:
        names = sorted({server.binary_name for server in servers})
        print(f"rag-stores: stopping {', '.join(names)}", file=sys.stderr, flush=True)
        return 0
    except (ServerError, OSError, ValueError) as exc:
        print(f"rag-stores: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig in previous:  # a second Ctrl-C must not interrupt the orderly stop
            signal.signal(sig, signal.SIG_IGN)
        for server in reversed(servers):
            server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
