"""Engine servers and clusters this project starts on loopback (tests, CLI, notebooks).

`process` holds what both engines share (ports, logs, readiness, shutdown, the
parent-death watch); `qdrant` and `weaviate` hold what differs.
"""

from .process import HOST, ServerError, ServerProcess, free_port, free_port_block

__all__ = ["HOST", "ServerError", "ServerProcess", "free_port", "free_port_block"]
