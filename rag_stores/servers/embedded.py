"""Embedded Weaviate shared by every process that opens the same data directory.

weaviate-client's embedded mode ties the server to the process that started it: a second
process attaches to it and breaks when the first exits. Here the server belongs to a small
detached *keeper* process instead, one per data directory:

- `attach(data)` (under a file lock in the data directory) registers the calling process in
  `<data>/.rag-stores/clients/<pid>` and returns the ports of the running server, starting a
  keeper (which starts the server) when none runs;
- `Lease.release()` (the backend's `close()`) removes the registration when the process's
  last backend on that directory closes; a process that dies is pruned by the keeper;
- the keeper stops the server and exits once no registered process has been alive for
  `RAG_STORES_EMBEDDED_IDLE` seconds (default 30), under the same lock, so the data
  directory is never opened by two servers and no server outlives its users for long.

The keeper's log and state live in `<data>/.rag-stores/` (a dot name no collection takes).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .process import ServerError, port_is_free

ENV_IDLE = "RAG_STORES_EMBEDDED_IDLE"
DEFAULT_IDLE = 30.0
STATE_DIR = ".rag-stores"


def _home(data: Path) -> Path:
    return data / STATE_DIR


@contextmanager
def _locked(data: Path) -> Iterator[None]:
    _home(data).mkdir(parents=True, exist_ok=True)
    with open(_home(data) / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _state(data: Path) -> dict | None:
    try:
        state = json.loads((_home(data) / "server.json").read_text())
    except (OSError, ValueError):
        return None
    return state if _alive(int(state["keeper"])) else None


@dataclass
class Lease:
    """This process's use of the shared server of one data directory."""

    data: Path
    http_port: int
    grpc_port: int

    def release(self) -> None:
        with _leases_lock:
            _leases[self.data] -= 1
            if _leases[self.data] > 0:
                return
            del _leases[self.data]
        (_home(self.data) / "clients" / str(os.getpid())).unlink(missing_ok=True)


_leases: dict[Path, int] = {}
_leases_lock = threading.Lock()


def attach(data: str | os.PathLike[str], port: int | None = None, grpc_port: int | None = None,
           startup_timeout: float = 120.0) -> Lease:
    """The running shared server of `data` (started when none runs), registered for us."""
    data = Path(data).resolve()
    with _locked(data):
        clients = _home(data) / "clients"
        clients.mkdir(exist_ok=True)
        (clients / str(os.getpid())).touch()
        state = _state(data)
        if state is None:
            state = _start_keeper(data, port, grpc_port, startup_timeout)
    with _leases_lock:
        _leases[data] = _leases.get(data, 0) + 1
    return Lease(data, int(state["http_port"]), int(state["grpc_port"]))


_LAUNCH = """
import os, sys
log = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
null = os.open(os.devnull, os.O_RDONLY)
print(os.posix_spawn(sys.executable, [sys.executable, "-m", "rag_stores.servers.embedded",
                                      *sys.argv[2:]], os.environ, setsid=True, file_actions=[
    (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, log, 1), (os.POSIX_SPAWN_DUP2, log, 2)]))
"""


def _start_keeper(data: Path, port: int | None, grpc_port: int | None,
                  timeout: float) -> dict:
    for name, wanted in (("port", port), ("grpc_port", grpc_port)):
        if wanted is not None and not port_is_free(wanted):
            raise ServerError(f"embedded Weaviate {name} {wanted} is in use by something that is "
                              f"not the shared server of {data}")
    (_home(data) / "server.json").unlink(missing_ok=True)
    arguments = [str(data)] + ([f"--port={port}"] if port else []) + (
        [f"--grpc-port={grpc_port}"] if grpc_port else [])
    # A launcher spawns the keeper in a session of its own and exits at once: the keeper is
    # nobody's child here (no zombie, no Popen left running), and outlives this process.
    launched = subprocess.run([sys.executable, "-c", _LAUNCH, str(_home(data) / "keeper.log"),
                               *arguments], capture_output=True, text=True, check=True)
    keeper = int(launched.stdout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(keeper):
        state = _state(data)
        if state is not None and state["keeper"] == keeper:
            return state
        time.sleep(0.1)
    if _alive(keeper):
        os.kill(keeper, signal.SIGKILL)
    log_text = (_home(data) / "keeper.log").read_text(errors="replace").splitlines()[-20:]
    raise ServerError(f"embedded Weaviate for {data} did not start; keeper log:\n"
                      + "\n".join(log_text))


# --- the keeper process -----------------------------------------------------------------------


def _registered(data: Path) -> int:
    """How many registered processes are alive (dead ones are pruned)."""
    alive = 0
    for entry in (_home(data) / "clients").iterdir():
        if entry.name.isdigit() and _alive(int(entry.name)):
            alive += 1
        else:
            entry.unlink(missing_ok=True)
    return alive


def _keep(data: Path, port: int | None, grpc_port: int | None, idle: float) -> int:
    from .weaviate import WeaviateServer

    server = WeaviateServer(port=port, grpc_port=grpc_port, data_dir=_home(data) / "server",
                            hostname="embedded",
                            env={"PERSISTENCE_DATA_PATH": str(data),
                                 "BACKUP_FILESYSTEM_PATH": str(data / ".backups"),
                                 "LOG_LEVEL": "warning"})
    server.start()
    state = {"keeper": os.getpid(), "server": server.pid, "http_port": server.http_port,
             "grpc_port": server.grpc_port}
    tmp = _home(data) / f"server.json.{os.getpid()}"
    tmp.write_text(json.dumps(state))
    os.replace(tmp, _home(data) / "server.json")
    print(f"keeper {os.getpid()}: Weaviate pid {server.pid} on {server.url}", flush=True)
    idle_since: float | None = None
    try:
        while server.running:
            time.sleep(0.5)
            if _registered(data):
                idle_since = None
                continue
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since < idle:
                continue
            with _locked(data):
                if _registered(data):  # attached while we waited for the lock
                    continue
                (_home(data) / "server.json").unlink(missing_ok=True)
                server.stop()
                print(f"keeper {os.getpid()}: idle for {idle:.0f}s, stopped", flush=True)
                return 0
        print(f"keeper {os.getpid()}: the server exited", flush=True)
        return 1
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="keep the shared embedded Weaviate of a folder")
    parser.add_argument("data")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--grpc-port", type=int, default=None)
    args = parser.parse_args(argv)
    idle = float(os.environ.get(ENV_IDLE, DEFAULT_IDLE))
    return _keep(Path(args.data), args.port, args.grpc_port, idle)


if __name__ == "__main__":
    sys.exit(main())
