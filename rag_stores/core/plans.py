"""Plan drivers, and the public `Backend` methods, once, over plans.

A backend writes each operation as a plan: a generator that yields requests and receives
their results (no I/O of its own). It supplies how one request runs on its sync client
(`_sync_caller`) and on its async client (`_async_caller`); this class drives the plans, so
every sync method and its async twin share every line of logic.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .filters import Node
from .query import Query
from .records import Group, Hit, Record
from .retry import Retrier, RetryPolicy

Plan = Generator[Any, Any, Any]


@contextmanager
def closed_on_error(backend: Any) -> Iterator[Any]:
    """Close a backend a store opened for itself when the store's own set-up then fails:
    otherwise its client (and an embedded folder's lock) lives until garbage collection."""
    try:
        yield backend
    except BaseException:
        backend.close()
        raise


def _check_batch_size(batch_size: Any) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def drive(plan: Plan, call_one: Callable[[Any], Any],
          translate: Callable[[Exception], Exception] = lambda exc: exc) -> Any:
    """Run a plan: each request it yields goes to `call_one`; the result (or the error,
    through `translate`) goes back into the plan; its return value is the result."""
    try:
        request = next(plan)
        while True:
            try:
                result = call_one(request)
            except Exception as exc:  # handed to the plan, which may handle it
                request = plan.throw(translate(exc))
            else:
                request = plan.send(result)
    except StopIteration as stop:
        return stop.value


async def adrive(plan: Plan, call_one: Callable[[Any], Awaitable[Any]],
                 translate: Callable[[Exception], Exception] = lambda exc: exc) -> Any:
    """`drive` with an async `call_one`."""
    try:
        request = next(plan)
        while True:
            try:
                result = await call_one(request)
            except Exception as exc:
                request = plan.throw(translate(exc))
            else:
                request = plan.send(result)
    except StopIteration as stop:
        return stop.value


class PlanBackend:
    """Base of the engine backends: drivers plus the protocol's public methods."""

    # --- what a backend supplies ----------------------------------------------------
    def _sync_caller(self) -> Callable[[Any], Any]:
        """A function running one request on the sync client."""
        raise NotImplementedError

    async def _async_caller(self) -> Callable[[Any], Awaitable[Any]] | None:
        """A coroutine function running one request on the async client; None runs the
        sync client in a worker thread instead (Qdrant local mode with a sync client)."""
        raise NotImplementedError

    def _translate(self, exc: Exception) -> Exception:
        """The error a plan sees for an engine error (e.g. CollectionNotFoundError)."""
        return exc

    # Transient faults: retried for idempotent requests (core.retry); backends take retry=.
    retry: RetryPolicy = RetryPolicy()

    def _is_transient(self, exc: BaseException) -> bool:
        return False

    def _is_idempotent(self, request: Any) -> bool:
        return True

    def _describe(self, request: Any) -> str:
        """The operation and the server, for errors."""
        return f"{type(self).__name__} request"

    def _retrier(self) -> Retrier:
        return Retrier(self.retry, self._is_transient, self._is_idempotent, self._describe)

    def _exists(self) -> Plan: raise NotImplementedError
    def _ensure(self, dim: int, sparse: bool) -> Plan: raise NotImplementedError
    def _dimension(self) -> Plan: raise NotImplementedError
    def _has_sparse(self) -> Plan: raise NotImplementedError
    def _load_info(self) -> Plan: raise NotImplementedError
    def _drop(self) -> Plan: raise NotImplementedError
    def _count(self, node: Node | Any | None) -> Plan: raise NotImplementedError
    def _upsert(self, records: Sequence[Record]) -> Plan: raise NotImplementedError
    def _delete(self, ids: Sequence[str]) -> Plan: raise NotImplementedError
    def _delete_where(self, node: Node | Any) -> Plan: raise NotImplementedError
    def _get(self, ids: Sequence[str], with_vectors: bool) -> Plan: raise NotImplementedError
    def _scroll(self, node: Node | Any | None, limit: int | None,
                with_vectors: bool) -> Plan: raise NotImplementedError
    def _scroll_page(self, node: Node | Any | None, limit: int, offset: Any,
                     with_vectors: bool) -> Plan:
        """One page of a scroll: (records, the next page's offset or None at the end)."""
        raise NotImplementedError

    def _search(self, query: Query) -> Plan: raise NotImplementedError
    def _search_groups(self, query: Query) -> Plan: raise NotImplementedError

    # --- drivers ----------------------------------------------------------------------
    def _run(self, plan: Plan) -> Any:
        return drive(plan, self._retrier().wrap(self._sync_caller()), self._translate)

    async def _arun(self, plan: Plan) -> Any:
        call_one = await self._async_caller()
        if call_one is None:
            return await asyncio.to_thread(self._run, plan)
        return await adrive(plan, self._retrier().awrap(call_one), self._translate)

    # --- the protocol: sync ---------------------------------------------------------------
    def exists(self) -> bool:
        return bool(self._run(self._exists()))

    def ensure_collection(self, dim: int, sparse: bool) -> None:
        self._run(self._ensure(dim, sparse))

    def dimension(self) -> int | None:
        return self._run(self._dimension())

    def has_sparse(self) -> bool:
        return bool(self._run(self._has_sparse()))

    def info(self) -> Any:
        return self._run(self._load_info())

    def drop(self) -> None:
        self._run(self._drop())

    def count(self, filter: Node | Any | None = None) -> int:
        return int(self._run(self._count(filter)))

    def upsert(self, records: Sequence[Record]) -> None:
        self._run(self._upsert(records))

    def delete(self, ids: Sequence[str]) -> None:
        self._run(self._delete(ids))

    def delete_where(self, filter: Node | Any) -> None:
        self._run(self._delete_where(filter))

    def get(self, ids: Sequence[str], with_vectors: bool = False) -> list[Record]:
        return self._run(self._get(ids, with_vectors))

    def scroll(self, filter: Node | Any | None = None, limit: int | None = None,
               with_vectors: bool = False) -> list[Record]:
        return self._run(self._scroll(filter, limit, with_vectors))

    def iter_records(self, filter: Node | Any | None = None, batch_size: int = 256,
                     with_vectors: bool = True) -> Iterator[Record]:
        """Every record (matching `filter`), read a page of `batch_size` at a time: a stream,
        never a list of the whole collection."""
        _check_batch_size(batch_size)
        offset = None
        while True:
            records, offset = self._run(self._scroll_page(filter, batch_size, offset,
                                                          with_vectors))
            yield from records
            if offset is None:
                return

    def search(self, query: Query) -> list[Hit]:
        return self._run(self._search(query))

    def search_groups(self, query: Query) -> list[Group]:
        return self._run(self._search_groups(query))

    # --- the protocol: async ----------------------------------------------------------------
    async def aexists(self) -> bool:
        return bool(await self._arun(self._exists()))

    async def aensure_collection(self, dim: int, sparse: bool) -> None:
        await self._arun(self._ensure(dim, sparse))

    async def adimension(self) -> int | None:
        return await self._arun(self._dimension())

    async def ahas_sparse(self) -> bool:
        return bool(await self._arun(self._has_sparse()))

    async def ainfo(self) -> Any:
        return await self._arun(self._load_info())

    async def adrop(self) -> None:
        await self._arun(self._drop())

    async def acount(self, filter: Node | Any | None = None) -> int:
        return int(await self._arun(self._count(filter)))

    async def aupsert(self, records: Sequence[Record]) -> None:
        await self._arun(self._upsert(records))

    async def adelete(self, ids: Sequence[str]) -> None:
        await self._arun(self._delete(ids))

    async def adelete_where(self, filter: Node | Any) -> None:
        await self._arun(self._delete_where(filter))

    async def aget(self, ids: Sequence[str], with_vectors: bool = False) -> list[Record]:
        return await self._arun(self._get(ids, with_vectors))

    async def ascroll(self, filter: Node | Any | None = None, limit: int | None = None,
                      with_vectors: bool = False) -> list[Record]:
        return await self._arun(self._scroll(filter, limit, with_vectors))

    async def aiter_records(self, filter: Node | Any | None = None, batch_size: int = 256,
                            with_vectors: bool = True) -> AsyncIterator[Record]:
        _check_batch_size(batch_size)
        offset = None
        while True:
            records, offset = await self._arun(self._scroll_page(filter, batch_size, offset,
                                                                 with_vectors))
            for record in records:
                yield record
            if offset is None:
                return

    async def asearch(self, query: Query) -> list[Hit]:
        return await self._arun(self._search(query))

    async def asearch_groups(self, query: Query) -> list[Group]:
        return await self._arun(self._search_groups(query))
