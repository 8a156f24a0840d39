"""Helpers for tests that run the `rag-stores` command, watch processes and wait for stores."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "rag_stores.cli", *args],
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_until(proc: subprocess.Popen[str], marker: str) -> str:
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:  # ends if the command exits early
        lines.append(line)
        if marker in line:
            break
    return "".join(lines)


def gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # a zombie of ours counts as gone
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                return True
        except OSError:
            return True
        time.sleep(0.1)
    return False


def _tcp_sockets(pid: int) -> Iterator[tuple[str, tuple[str, int], tuple[str, int]]]:
    """(state, local address, remote address) of every TCP socket of process `pid`, from /proc
    (state as the kernel writes it: 0A listening, 01 established)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile (the listing's own descriptor, for one)
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])

    def address(text: str, family: socket.AddressFamily) -> tuple[str, int]:
        host, port = text.split(":")
        words = [bytes.fromhex(host[i:i + 8])[::-1] for i in range(0, len(host), 8)]
        return socket.inet_ntop(family, b"".join(words)), int(port, 16)

    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                yield fields[3], address(fields[1], family), address(fields[2], family)


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket process `pid` listens on."""
    return {local for state, local, _ in _tcp_sockets(pid) if state == "0A"}


def open_connections(pid: int, port: int) -> int:
    """How many established TCP connections process `pid` holds to `port`."""
    return sum(state == "01" and remote[1] == port for state, _, remote in _tcp_sockets(pid))


def wait_for_count(store: Any, n: int, timeout: float = 60.0) -> int:
    """The store's count once it is `n` (replicas catching up), or the last count seen."""
    deadline = time.monotonic() + timeout
    count = store.backend.count()
    while count != n and time.monotonic() < deadline:
        time.sleep(0.5)
        count = store.backend.count()
    return count


@contextmanager
def garbling_grpc_peer() -> Iterator[list[str]]:
    """A loopback gRPC server (its port is `calls[0]`) that answers every call with bytes no
    protobuf message parses, as grpcio sees now and then on a loaded machine: the client
    raises INTERNAL "Exception deserializing response!". Each call's method is appended."""
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    calls: list[str] = []

    class Garbling(grpc.GenericRpcHandler):
        def service(self, details: Any) -> Any:
            calls.append(details.method)
            return grpc.unary_unary_rpc_method_handler(lambda request, context: b"\xff\xff")

    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((Garbling(),))
    calls.append(str(server.add_insecure_port("127.0.0.1:0")))
    server.start()
    try:
        yield calls
    finally:
        server.stop(grace=None).wait(5)


@contextmanager
def resetting_grpc_peer() -> Iterator[int]:
    """A loopback HTTP/2 peer (its port) that resets every request's stream with CANCEL, as
    a cluster node does to a write it gives up on mid-way (seen from Weaviate in failover):
    gRPC clients see CANCELLED, "Received RST_STREAM with error code 8"."""
    import h2.config
    import h2.connection
    import h2.events
    from h2.errors import ErrorCodes

    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    conns: list[socket.socket] = []

    def serve(conn: socket.socket) -> None:
        h2conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        h2conn.initiate_connection()
        with conn:
            try:
                conn.sendall(h2conn.data_to_send())
                while not stop.is_set() and (data := conn.recv(65536)):
                    for event in h2conn.receive_data(data):
                        if isinstance(event, h2.events.RequestReceived):
                            h2conn.reset_stream(event.stream_id, ErrorCodes.CANCEL)
                    conn.sendall(h2conn.data_to_send())
            except OSError:
                pass

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conns.append(conn)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        for conn in conns:
            conn.close()
