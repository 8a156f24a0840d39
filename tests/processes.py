"""Helpers for tests that run the `rag-stores` command, watch processes and wait for stores."""

from __future__ import annotations

import os
import subprocess
import sys
import time
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


def wait_for_count(store: Any, n: int, timeout: float = 60.0) -> int:
    """The store's count once it is `n` (replicas catching up), or the last count seen."""
    deadline = time.monotonic() + timeout
    count = store.backend.count()
    while count != n and time.monotonic() < deadline:
        time.sleep(0.5)
        count = store.backend.count()
    return count
