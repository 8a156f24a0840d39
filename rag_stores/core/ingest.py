"""Batched writes: embedding of batch n+1 overlapped with writing batch n, and a bounded
number of writes in flight.

One pipeline serves both framework faces and both engines, sync (`pipeline`: threads) and
async (`apipeline`: tasks on the caller's loop):

- `prepare(batch)` (embedding) runs in one worker thread, batch after batch, in order;
- up to `parallel` `write(prepared)` calls run at once, once the first write has succeeded
  (it runs alone: it meets a missing collection or a schema change first). A batch that
  shares a key (an id) with a batch still being written waits until that write has ended,
  so re-adding an id keeps its last version, as serial writes would;
- nothing is read ahead beyond what is being prepared and written: a generator of any length
  is ingested in bounded memory (about `parallel + 2` batches at a time; with `window`,
  the window being prepared, the one waiting, and `parallel` batches);
- with `window=n`, consecutive batches are prepared together, at least n items at a time,
  and written batch by batch: an encoder that sorts texts by length (embedders) then sorts
  a window wider than one write. `prepare` must then return one result per item, in order;
- the first error (in input order) is raised once every write in flight has ended, with the
  later ones named on it (never silently dropped); no batch after a failure is written, and
  nothing runs in the background after the call returns.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import Any, Generic, TypeVar

from tqdm.auto import tqdm

from embedders.encoders import SORT_WINDOW

T = TypeVar("T")
R = TypeVar("R")
F = TypeVar("F")

# Inputs larger than this show a progress bar.
PROGRESS_MIN = 1000
# Writes in flight when neither the caller nor the backend says otherwise. A backend whose
# writes may overlap says how many with a `write_parallelism` attribute (Weaviate 4, a
# Qdrant server 4, embedded Qdrant 1; measured: README, Benchmarks).
PARALLEL = 1
# Items the stores prepare (embed) together: the window an encoder sorts by length to cut
# padding.
EMBED_WINDOW = SORT_WINDOW


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _progress(total: int | None, show: bool | None) -> Any:
    enabled = show if show is not None else (total or 0) >= PROGRESS_MIN
    return tqdm(total=total, unit="doc", desc="upserting", disable=not enabled)


def check_parallel(parallel: int) -> int:
    if not isinstance(parallel, int) or isinstance(parallel, bool) or parallel < 1:
        raise ValueError(f"parallel must be a positive integer, got {parallel!r}")
    return parallel


def check_batch_size(batch_size: int) -> int:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    return batch_size


def parallelism(backend: Any, *requested: int | None) -> int:
    """Writes in flight: the first of `requested` given (a call's `parallel=`, then the
    store's), else the backend's `write_parallelism`, else `PARALLEL`."""
    for value in (*requested, getattr(backend, "write_parallelism", None)):
        if value is not None:
            return check_parallel(value)
    return PARALLEL


@dataclass
class _Write(Generic[F]):
    """A write in flight: its future (or task), the keys of its batch, its size."""

    future: F
    keys: frozenset[Hashable]
    size: int

    def blocks(self, keys: frozenset[Hashable]) -> bool:
        return not self.keys.isdisjoint(keys)


def _keys(batch: list[Any], key: Callable[[Any], Hashable] | None) -> frozenset[Hashable]:
    return frozenset(map(key, batch)) if key is not None else frozenset()


def _windows(batches: Iterable[list[T]], window: int) -> Iterator[list[list[T]]]:
    """Consecutive batches grouped until a group holds `window` items (0: one batch each)."""
    group: list[list[T]] = []
    items = 0
    for batch in batches:
        group.append(batch)
        items += len(batch)
        if items >= window:
            yield group
            group, items = [], 0
    if group:
        yield group


def _together(prepare: Callable[[list[T]], R]) -> Callable[[list[list[T]]], list[R]]:
    """prepare over a group of batches at once, its result split back batch by batch."""
    def run(group: list[list[T]]) -> list[R]:
        if len(group) == 1:
            return [prepare(group[0])]
        prepared: Any = prepare([item for batch in group for item in batch])
        out, start = [], 0
        for batch in group:
            out.append(prepared[start:start + len(batch)])
            start += len(batch)
        return out
    return run


def _raise_first(errors: list[BaseException]) -> None:
    """Raise the first error; the others are named on it."""
    if not errors:
        return
    first = errors[0]
    if len(errors) > 1 and hasattr(first, "add_note"):  # Python >= 3.11
        first.add_note(f"{len(errors) - 1} more error(s) in the same ingestion: "
                       + "; ".join(f"{type(e).__name__}: {e}" for e in errors[1:]))
    raise first


def pipeline(batches: Iterable[list[T]], prepare: Callable[[list[T]], R],
             write: Callable[[R], None], total: int | None = None,
             progress: bool | None = None, *, parallel: int = PARALLEL,
             key: Callable[[T], Hashable] | None = None, window: int = 0) -> None:
    """prepare(batch) in a worker thread, overlapped with up to `parallel` write(prepared)
    calls in writer threads. `key(item)` (an id) orders writes that share a key; without
    it, batches are taken to be independent. `window`: see the module's docstring."""
    check_parallel(parallel)
    errors: list[BaseException] = []
    written = [0]  # batches written
    in_flight: deque[_Write[Future[None]]] = deque()
    with ThreadPoolExecutor(1, thread_name_prefix="prepare") as preparer, \
            ThreadPoolExecutor(parallel, thread_name_prefix="write") as writers, \
            _progress(total, progress) as bar:

        def finish_oldest() -> None:
            done = in_flight.popleft()
            exc = done.future.exception()  # waits for it
            if exc is not None:
                errors.append(exc)
            else:
                written[0] += 1
                bar.update(done.size)

        def submit(prepared: R, keys: frozenset[Hashable], size: int) -> None:
            while in_flight and (len(in_flight) >= (parallel if written[0] else 1)
                                 or any(w.blocks(keys) for w in in_flight)):
                finish_oldest()
            while in_flight and in_flight[0].future.done():
                finish_oldest()  # a failure stops the input as soon as it is seen
            if not errors:
                in_flight.append(_Write(writers.submit(write, prepared), keys, size))

        def submit_all(ready: tuple[Future[list[R]], list[tuple[frozenset[Hashable], int]]]
                       ) -> None:
            for prepared, (keys, size) in zip(ready[0].result(), ready[1], strict=True):
                if not errors:
                    submit(prepared, keys, size)

        try:
            pending: tuple[Future[list[R]], list[tuple[frozenset[Hashable], int]]] | None = None
            for group in _windows(batches, window):
                future = preparer.submit(_together(prepare), group)
                if pending is not None:
                    submit_all(pending)
                pending = (future, [(_keys(b, key), len(b)) for b in group])
                if errors:
                    break
            if pending is not None and not errors:
                submit_all(pending)
        except Exception as exc:  # the input or a preparation: after the writes in flight
            while in_flight:
                finish_oldest()
            errors.append(exc)
        finally:
            while in_flight:  # every write in flight ends before this call does
                finish_oldest()
    _raise_first(errors)


async def apipeline(batches: Iterable[list[T]], prepare: Callable[[list[T]], R],
                    write: Callable[[R], Awaitable[None]], total: int | None = None,
                    progress: bool | None = None, *, parallel: int = PARALLEL,
                    key: Callable[[T], Hashable] | None = None, window: int = 0) -> None:
    """Async twin of `pipeline`: preparation in a worker thread, up to `parallel` writes as
    tasks on the running loop. Cancelling the call cancels the writes in flight."""
    check_parallel(parallel)
    errors: list[BaseException] = []
    written = [0]
    in_flight: deque[_Write[asyncio.Future[None]]] = deque()
    with _progress(total, progress) as bar:

        async def finish_oldest() -> None:
            done = in_flight[0]
            await asyncio.wait([done.future])
            in_flight.popleft()
            if done.future.cancelled():
                return
            exc = done.future.exception()
            if exc is not None:
                errors.append(exc)
            else:
                written[0] += 1
                bar.update(done.size)

        async def submit(prepared: R, keys: frozenset[Hashable], size: int) -> None:
            while in_flight and (len(in_flight) >= (parallel if written[0] else 1)
                                 or any(w.blocks(keys) for w in in_flight)):
                await finish_oldest()
            while in_flight and in_flight[0].future.done():
                await finish_oldest()
            if not errors:
                in_flight.append(_Write(asyncio.ensure_future(write(prepared)), keys, size))

        async def submit_all(ready: tuple[asyncio.Future[list[R]],
                                          list[tuple[frozenset[Hashable], int]]]) -> None:
            for prepared, (keys, size) in zip(await ready[0], ready[1], strict=True):
                if not errors:
                    await submit(prepared, keys, size)

        pending: tuple[asyncio.Future[list[R]], list[tuple[frozenset[Hashable], int]]] | None = None
        try:
            for group in _windows(batches, window):
                future = asyncio.ensure_future(asyncio.to_thread(_together(prepare), group))
                if pending is not None:
                    ready, pending = pending, None
                    await submit_all(ready)
                pending = (future, [(_keys(b, key), len(b)) for b in group])
                if errors:
                    break
            if pending is not None and not errors:
                ready, pending = pending, None
                await submit_all(ready)
            while in_flight:
                await finish_oldest()
        except Exception as exc:
            while in_flight:
                await finish_oldest()
            errors.append(exc)
        except BaseException:  # cancelled: the writes in flight are cancelled too
            for w in in_flight:
                w.future.cancel()
            while in_flight:
                await asyncio.wait([in_flight.popleft().future])
            raise
        finally:
            if pending is not None:  # a preparation nobody waits for any more
                pending[0].add_done_callback(_quiet)
    _raise_first(errors)


def _quiet(future: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned future's error (no 'exception was never retrieved' warning)."""
    if not future.cancelled():
        future.exception()
