"""Batched writes that embed batch n+1 while batch n is being written."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
R = TypeVar("R")

# Inputs larger than this show a progress bar.
PROGRESS_MIN = 1000


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _progress(total: int | None, show: bool | None) -> Any:
    enabled = show if show is not None else (total or 0) >= PROGRESS_MIN
    return tqdm(total=total, unit="doc", desc="upserting", disable=not enabled)


def pipeline(batches: Iterable[list[T]], prepare: Callable[[list[T]], R],
             write: Callable[[R], None], total: int | None = None,
             progress: bool | None = None) -> None:
    """prepare(batch) (embedding) runs in a worker thread, overlapped with write(previous)."""
    with ThreadPoolExecutor(max_workers=1) as pool, _progress(total, progress) as bar:
        pending = None
        pending_size = 0
        for batch in batches:
            future = pool.submit(prepare, batch)
            if pending is not None:
                write(pending.result())
                bar.update(pending_size)
            pending, pending_size = future, len(batch)
        if pending is not None:
            write(pending.result())
            bar.update(pending_size)


async def apipeline(batches: Iterable[list[T]], prepare: Callable[[list[T]], R],
                    write: Callable[[R], Awaitable[None]], total: int | None = None,
                    progress: bool | None = None) -> None:
    """Async twin of `pipeline`: embedding in a thread, writes awaited on the loop."""
    with _progress(total, progress) as bar:
        pending: asyncio.Future[R] | None = None
        pending_size = 0
        for batch in batches:
            future = asyncio.ensure_future(asyncio.to_thread(prepare, batch))
            if pending is not None:
                await write(await pending)
                bar.update(pending_size)
            pending, pending_size = future, len(batch)
        if pending is not None:
            await write(await pending)
            bar.update(pending_size)
