"""One async client per event loop, for backends that open their own async clients.

An async engine client (httpx pools, gRPC aio channels) belongs to the event loop it was
opened in, while a store is a long-lived object called from whatever loop its user has:
consecutive `asyncio.run()` calls, a notebook's loop, worker threads with loops of their
own. So a backend keeps one client per loop, opened on first use there.

Each client is held by a small async generator started in its loop. That is how a client
gets closed in its own loop when nobody says so: a loop shutting down its async generators
(`asyncio.run`, `asyncio.Runner`, any loop closed the documented way) closes them all, and
a generator dropped while its loop lives is closed there by asyncio's finalizer hook.
A loop closed without that leaves a client that cannot be awaited any more: it is dropped
and garbage-collected at once, which closes its sockets and channels synchronously; their
"unclosed" ResourceWarnings are silenced there, since nothing else could close them.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """Clients by event loop: `open()` makes one (in the loop that needs it), `close(client)`
    closes one (in its loop)."""

    def __init__(self, open: Callable[[], Awaitable[T]],
                 close: Callable[[T], Awaitable[Any]]) -> None:
        self._open, self._close = open, close
        self._lock = threading.Lock()  # loops in several threads share the table
        # loop -> (the generator holding the client, the client); a closed loop's entry goes
        # on the next get() or close(). Keyed by the loop itself: each generator refers to
        # its loop (asyncio's finalizer), so weak keys would never be released anyway.
        self._clients: dict[asyncio.AbstractEventLoop, tuple[AsyncGenerator[T, None], T]] = {}

    def current(self) -> T | None:
        """The running loop's client, if one is open (None outside a loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        with self._lock:
            entry = self._clients.get(loop)
        return None if entry is None else entry[1]

    async def get(self) -> T:
        """The running loop's client, opened on first use in this loop."""
        loop = asyncio.get_running_loop()
        self._drop_dead()
        with self._lock:
            entry = self._clients.get(loop)
        if entry is not None:
            return entry[1]
        holder = self._hold(loop)
        client = await holder.__anext__()
        with self._lock:
            entry = self._clients.setdefault(loop, (holder, client))
        if entry[0] is not holder:  # another task of this loop opened one meanwhile
            await holder.aclose()
        return entry[1]

    async def _hold(self, loop: asyncio.AbstractEventLoop) -> AsyncGenerator[T, None]:
        client = await self._open()
        try:
            yield client
        finally:
            with self._lock:
                if self._clients.get(loop, (None, None))[1] is client:
                    del self._clients[loop]
            await self._close(client)

    async def aclose(self) -> None:
        """Close the running loop's client (the next use in this loop opens a new one)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._clients.pop(loop, None)
        if entry is not None:
            await entry[0].aclose()
        self._drop_dead()

    def close(self) -> None:
        """Let go of every client: those of live loops are closed in their loops (asyncio's
        finalizer hook schedules it there, thread-safely), those of closed loops at once."""
        with self._lock:
            entries, self._clients = self._clients, {}
        _discard(entries)

    def _drop_dead(self) -> None:
        with self._lock:
            dead = {loop: e for loop, e in self._clients.items() if loop.is_closed()}
            for loop in dead:
                del self._clients[loop]
        if dead:
            _discard(dead)


def _discard(entries: dict[Any, Any]) -> None:
    """Drop clients; those whose loop is closed are collected here, without the warnings
    about sockets that only their loop could have closed."""
    dead = any(loop.is_closed() for loop in entries)
    if not dead:
        entries.clear()  # live loops: each generator's finalizer closes its client there
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        entries.clear()
        gc.collect()
