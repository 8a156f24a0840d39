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

Security: the server accepts only its owner. `<data>/.rag-stores/` is mode 0700 and holds
`api_key`, a random key made once per folder (mode 0600, created whole); the keeper hands it
to Weaviate through the environment (never a command line) as the one allowed API key, and
as the password of Weaviate's cluster data API, with anonymous access off. Every process that
opens the folder reads the key there. A `server.json` is trusted only while its keeper pid is
a live keeper of this folder run by this user (a stale file's pid may belong to anyone).
A keeper started by an older rag-stores (anonymous, no "auth" in `server.json`) is used as it
is, with a warning, until it idles out; the next start uses the key.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .process import ServerError, port_is_free

ENV_IDLE = "RAG_STORES_EMBEDDED_IDLE"
DEFAULT_IDLE = 30.0
STATE_DIR = ".rag-stores"
KEY_FILE = "api_key"
KEEPER = "rag_stores.servers.embedded"  # on every keeper's command line (python -m KEEPER)


def _home(data: Path) -> Path:
    return data / STATE_DIR


@contextmanager
def _locked(data: Path) -> Iterator[None]:
    _home(data).mkdir(mode=0o700, parents=True, exist_ok=True)
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


def _is_keeper(pid: int, data: Path) -> bool:
    """`pid` is a keeper of `data` run by this user: a pid from a stale server.json may since
    belong to any process, another user's included, whose ports must not be trusted."""
    try:
        if os.path.isdir("/proc/self"):
            owner = os.stat(f"/proc/{pid}").st_uid
            args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
            return owner == os.getuid() and KEEPER in args and str(data) in args
        ps = subprocess.run(["ps", "-o", "uid=", "-o", "args=", "-p", str(pid)],
                            capture_output=True, text=True, check=True).stdout.split(None, 1)
        return int(ps[0]) == os.getuid() and KEEPER in ps[1] and str(data) in ps[1]
    except (OSError, ValueError, IndexError, subprocess.CalledProcessError):
        return False


def _state(data: Path) -> dict | None:
    try:
        state = json.loads((_home(data) / "server.json").read_text())
        return state if _is_keeper(int(state["keeper"]), data) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def folder_key(data: Path) -> str:
    """The API key of `data`'s server: random, made once in a 0600 file that appears whole
    (written aside, then linked into place, which never replaces a key made meanwhile)."""
    path = _home(data) / KEY_FILE
    if not path.exists():
        os.chmod(_home(data), 0o700)  # state dirs made by older versions were 0755
        tmp = path.with_name(f"{KEY_FILE}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(secrets.token_urlsafe(32))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW)) as f:
        info, key = os.fstat(f.fileno()), f.read().strip()
    if info.st_uid != os.getuid() or info.st_mode & 0o077 or not key:
        raise ServerError(f"the embedded Weaviate key file {path} must be yours, private "
                          "(chmod 600) and not empty: fix it, or delete it while the folder's "
                          "server is stopped and a new key is made")
    return key


@dataclass
class Lease:
    """This process's use of the shared server of one data directory."""

    data: Path
    http_port: int
    grpc_port: int
    api_key: str | None  # None: a keeper of an older version, serving anonymously

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
    """The running shared server of `data` (started when none runs), registered for us,
    with the key to use."""
    data = Path(data).resolve()
    with _locked(data):
        key = folder_key(data)
        clients = _home(data) / "clients"
        clients.mkdir(exist_ok=True)
        (clients / str(os.getpid())).touch()
        state = _state(data)
        if state is None:
            state = _start_keeper(data, port, grpc_port, startup_timeout)
    if state.get("auth") != "api_key":
        warnings.warn(f"the embedded Weaviate of {data} was started by an older rag-stores "
                      "with anonymous access (any local user can reach it); it serves until "
                      "idle, and the next start requires the folder's key", stacklevel=2)
    with _leases_lock:
        _leases[data] = _leases.get(data, 0) + 1
    return Lease(data, int(state["http_port"]), int(state["grpc_port"]),
                 key if state.get("auth") == "api_key" else None)


_LAUNCH = """
import os, sys
log = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
null = os.open(os.devnull, os.O_RDONLY)
print(os.posix_spawn(sys.executable, [sys.executable, "-m", *sys.argv[2:]], os.environ,
                     setsid=True, file_actions=[
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
                               KEEPER, *arguments], capture_output=True, text=True, check=True)
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
                            api_key=folder_key(data), hostname="embedded",
                            env={"PERSISTENCE_DATA_PATH": str(data),
                                 "BACKUP_FILESYSTEM_PATH": str(data / ".backups"),
                                 "LOG_LEVEL": "warning"})
    server.start()
    state = {"keeper": os.getpid(), "server": server.pid, "http_port": server.http_port,
             "grpc_port": server.grpc_port, "auth": "api_key"}
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
