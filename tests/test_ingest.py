"""The write pipeline's promises (core.ingest), sync and async: bounded writes in flight,
the first write alone, batches sharing an id kept in order, the first error raised with the
others named, nothing written after a failure, and a generator read only as far as needed.
Servers write several batches at once by default (Qdrant 4, Weaviate 4), so these carry
the stores' ordering and failure guarantees."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from rag_stores.backends.qdrant import SERVER_WRITE_PARALLELISM, QdrantBackend
from rag_stores.core.ingest import apipeline, batched, parallelism, pipeline


class Writes:
    """Records what the pipeline writes and how many writes overlap (each one sleeps)."""

    def __init__(self, delay: float = 0.02, fail_on: set[int] | None = None,
                 gate: int = 0, total: int = 0) -> None:
        self.delay, self.fail_on = delay, fail_on or set()
        # gate: a write (after the first) holds on until `gate` writes are active or all
        # `total` have started, so overlap does not depend on the machine's speed (5 s cap)
        self.gate, self.total = gate, total
        self.lock = threading.Lock()
        self.active = self.peak = 0
        self.log: list[tuple[str, list[int]]] = []  # ("start" / "end", batch)
        self.first_alone = True

    def _start(self, batch: list[int]) -> None:
        with self.lock:
            if self.log and self.log[0][0] == "start" and len(self.log) == 1:
                self.first_alone = False  # a second write began before the first ended
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.log.append(("start", batch))

    def _end(self, batch: list[int]) -> None:
        with self.lock:
            self.active -= 1
            self.log.append(("end", batch))
        if batch[0] in self.fail_on:
            raise RuntimeError(f"batch {batch[0]} refused")

    def _held(self, since: float) -> bool:
        with self.lock:
            started = sum(what == "start" for what, _ in self.log)
            return (started > 1 and self.active < self.gate and started < self.total
                    and time.monotonic() - since < 5)

    def write(self, batch: list[int]) -> None:
        self._start(batch)
        since = time.monotonic()
        while self._held(since):
            time.sleep(0.001)
        time.sleep(self.delay)
        self._end(batch)

    async def awrite(self, batch: list[int]) -> None:
        self._start(batch)
        since = time.monotonic()
        while self._held(since):
            await asyncio.sleep(0.001)
        await asyncio.sleep(self.delay)
        self._end(batch)

    def written(self) -> list[list[int]]:
        return [b for what, b in self.log if what == "end" and b[0] not in self.fail_on]


def run(writes: Writes, batches: list[list[int]], mode: str, **kwargs) -> None:
    if mode == "sync":
        pipeline(batches, list, writes.write, **kwargs)
    else:
        asyncio.run(apipeline(batches, list, writes.awrite, **kwargs))


MODES = ["sync", "async"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("parallel", [1, 3])
def test_writes_in_flight_are_bounded_and_the_first_runs_alone(mode, parallel) -> None:
    batches = [[i] for i in range(12)]
    writes = Writes(gate=parallel, total=len(batches))
    run(writes, batches, mode, parallel=parallel)
    assert sorted(writes.written()) == batches
    assert writes.peak == parallel
    assert writes.first_alone
    assert writes.log[:2] == [("start", [0]), ("end", [0])]


@pytest.mark.parametrize("mode", MODES)
def test_batches_sharing_a_key_are_written_in_input_order(mode) -> None:
    # batches 0, 2 and 4 share key 7: each starts only after the previous one ended
    writes = Writes()
    batches = [[0, 7], [1], [2, 7], [3], [4, 7], [5]]
    run(writes, batches, mode, parallel=4, key=lambda item: item)
    sharing = [(what, b[0]) for what, b in writes.log if 7 in b]
    assert sharing == [("start", 0), ("end", 0), ("start", 2), ("end", 2),
                       ("start", 4), ("end", 4)]
    assert sorted(writes.written()) == batches


@pytest.mark.parametrize("mode", MODES)
def test_the_first_error_is_raised_with_the_others_named_and_nothing_follows(mode) -> None:
    writes = Writes(delay=0.05, fail_on={2, 3})
    batches = [[i] for i in range(20)]
    with pytest.raises(RuntimeError, match="batch 2 refused") as info:
        run(writes, batches, mode, parallel=4)
    assert any("batch 3 refused" in note for note in getattr(info.value, "__notes__", []))
    started = [b[0] for what, b in writes.log if what == "start"]
    assert max(started) < 2 + 4 + 2  # the batches in flight or prepared when 2 failed, no more
    assert writes.active == 0  # every write ended before the call returned


@pytest.mark.parametrize("mode", MODES)
def test_a_generator_is_read_only_a_few_batches_ahead(mode) -> None:
    writes = Writes(delay=0.01)
    read = [0]
    ahead: list[int] = []

    def items() -> Iterator[int]:
        for i in range(400):
            read[0] = i
            if i % 10 == 0:
                done = sum(len(b) for b in writes.written())
                ahead.append(i - done)
            yield i

    kwargs = {"parallel": 2}
    if mode == "sync":
        pipeline(batched(items(), 10), list, writes.write, **kwargs)
    else:
        asyncio.run(apipeline(batched(items(), 10), list, writes.awrite, **kwargs))
    assert read[0] == 399 and len(writes.written()) == 40
    assert max(ahead) <= 10 * (2 + 3)  # parallel + 2 batches, and the one being read


def test_parallelism_comes_from_the_call_the_store_or_the_backend() -> None:
    local = QdrantBackend("docs")
    assert parallelism(local) == 1  # local mode: one client under a lock
    assert parallelism(local, None, 3) == 3
    assert parallelism(local, 2, 3) == 2
    with pytest.raises(ValueError, match="parallel must be a positive integer, got 0"):
        parallelism(local, 0)
    remote = QdrantBackend("docs", url="http://127.0.0.1:1")  # never contacted
    assert remote.engine == "server"
    assert parallelism(remote) == SERVER_WRITE_PARALLELISM > 1
