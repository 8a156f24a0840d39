"""Embedded Weaviate shared by two real processes (rag_stores.servers.embedded): either may
exit first without the other seeing an error or losing data; one server per folder; the
server stops by itself once idle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from rag_stores.servers.embedded import ENV_IDLE, STATE_DIR

pytestmark = pytest.mark.weaviate

USER = """
import json, sys, time
from rag_stores.backends.weaviate import WeaviateBackend
from rag_stores.core.query import Query
from rag_stores.core.records import Record

path, me, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
backend = WeaviateBackend("Shared", persistence_path=path, index="flat")
backend.ensure_collection(2, False)
backend.upsert([Record(id=f"{me}-{i}", text=me, metadata={}, vector=[1.0, i / 10])
                for i in range(5)])
print("ready", flush=True)
queries, errors = 0, []
end = time.monotonic() + seconds
while time.monotonic() < end:
    try:
        assert len(backend.search(Query(vector=[1.0, 0.0], k=3))) == 3
        queries += 1
    except Exception as exc:
        errors.append(repr(exc)[:300])
    time.sleep(0.1)
print(json.dumps({"queries": queries, "errors": errors, "count": backend.count()}), flush=True)
backend.close()
"""


def _user(path, me: str, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", USER, str(path), me, str(seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, ENV_IDLE: "1"})


def _result(proc: subprocess.Popen[str]) -> dict:
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("first_out", ["a", "b"])
def test_two_processes_share_one_server_and_either_may_leave_first(tmp_path, first_out) -> None:
    seconds = {"a": 3.0, "b": 3.0}
    seconds[{"a": "b", "b": "a"}[first_out]] = 8.0  # the other stays 5 s longer
    a = _user(tmp_path, "a", seconds["a"])
    try:
        assert a.stdout is not None and a.stdout.readline().strip() == "ready"
        b = _user(tmp_path, "b", seconds["b"])
        try:
            results = {"a": _result(a), "b": _result(b)}
        finally:
            if b.poll() is None:
                b.kill()
    finally:
        if a.poll() is None:
            a.kill()
    for me, result in results.items():
        assert result["errors"] == [], (me, result["errors"][:2])
        assert result["queries"] > 10
    last = results[{"a": "b", "b": "a"}[first_out]]
    assert last["count"] == 10  # nothing lost: both processes' records
    home = tmp_path / STATE_DIR
    log = (home / "keeper.log").read_text()
    assert log.count("Weaviate pid") == 1, log  # one server for the folder, never two
    server_pid = int(log.split("Weaviate pid ")[1].split()[0])
    deadline = time.monotonic() + 30
    while "idle for" not in (home / "keeper.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "idle for" in (home / "keeper.log").read_text(), "the server did not stop once idle"
    assert not (home / "server.json").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(server_pid, 0)
