"""One retry policy for transient engine faults, applied by the plan drivers to every request.

Servers restart, cluster nodes die and come back, load balancers answer 502/503/504 while
they do: such faults pass in seconds, and a request that may safely run twice is worth
sending again. A backend says which of its requests are idempotent (upsert by id, delete by
id, reads) and which errors are transient (connection refused or reset, gRPC UNAVAILABLE /
DEADLINE_EXCEEDED, HTTP 502/503/504); `tenacity` does the waiting, with exponential backoff
and jitter. When attempts run out (or a non-idempotent request meets a transient fault) the
caller gets one `EngineUnavailableError` naming the operation and the server.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from tenacity import (
    AsyncRetrying,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)


def is_transient_rpc(exc: BaseException | None) -> bool:
    """A gRPC failure worth another try: the server unreachable or too slow (UNAVAILABLE,
    DEADLINE_EXCEEDED), the request's stream reset by the server (CANCELLED by an
    RST_STREAM, as a cluster node coordinating a write across a lost node does), or the
    answer lost in the client (INTERNAL "Exception deserializing response!": grpcio failed to
    decode a valid reply, once in some thousands of calls on a loaded machine)."""
    import grpc  # both engines' clients depend on it

    if not isinstance(exc, grpc.RpcError) or not callable(getattr(exc, "code", None)):
        return False
    code = exc.code()
    details = str(exc.details() if callable(getattr(exc, "details", None)) else "")
    return code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) or (
        code == grpc.StatusCode.CANCELLED and "RST_STREAM" in details) or (
        code == grpc.StatusCode.INTERNAL and "Exception deserializing response" in details)


class EngineUnavailableError(ConnectionError):
    """The engine could not be reached (or kept failing) within the retry policy."""


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries in all, waits from `initial_delay` doubling up to `max_delay`, and no
    retry once `deadline` seconds have passed since the first try. `RetryPolicy(attempts=1)`
    turns retries off."""

    attempts: int = 5
    initial_delay: float = 0.2
    max_delay: float = 4.0
    deadline: float = 30.0

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or self.attempts < 1:
            raise ValueError(f"retry attempts must be an integer >= 1, got {self.attempts!r}")
        for name in ("initial_delay", "max_delay", "deadline"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value < 0:
                raise ValueError(f"retry {name} must be a number >= 0 seconds, got {value!r}")

    def _options(self, retry_on: Callable[[BaseException], bool],
                 deadline: float) -> dict[str, Any]:
        return {"stop": stop_after_attempt(self.attempts) | stop_after_delay(deadline),
                "wait": wait_exponential_jitter(multiplier=self.initial_delay, max=self.max_delay,
                                                jitter=self.initial_delay),
                "retry": retry_if_exception(retry_on), "reraise": True}


def as_policy(retry: RetryPolicy | int | None) -> RetryPolicy:
    """`retry=` as users give it: a policy, a number of attempts, or None (the default)."""
    if retry is None:
        return RetryPolicy()
    if isinstance(retry, RetryPolicy):
        return retry
    if isinstance(retry, int) and not isinstance(retry, bool):
        return RetryPolicy(attempts=retry)
    raise TypeError(f"retry must be a RetryPolicy, a number of attempts or None, got {retry!r}")


@dataclass(frozen=True)
class Retrier:
    """What a backend tells the drivers: its policy, and how to judge requests and errors."""

    policy: RetryPolicy
    is_transient: Callable[[BaseException], bool]
    is_idempotent: Callable[[Any], bool]
    describe: Callable[[Any], str]

    def _give_up(self, request: Any, exc: Exception, tries: int) -> Exception:
        if not self.is_transient(exc):
            return exc
        if tries > 1:
            how = f"after {tries} attempts"
        elif not self.is_idempotent(request):
            how = "(not retried: not idempotent)"
        elif self.policy.attempts > 1:
            how = f"(not retried: the retry deadline of {self.policy.deadline:g} s had passed)"
        else:
            how = "(retries off)"
        return EngineUnavailableError(f"{self.describe(request)} failed {how}: "
                                      f"{type(exc).__name__}: {exc}")

    def _fail(self, request: Any, exc: Exception, tries: int) -> NoReturn:
        error = self._give_up(request, exc, tries)
        if error is exc:
            raise exc
        raise error from exc

    def wrap(self, call_one: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def call(request: Any) -> Any:
            started = time.monotonic()
            try:  # the first try runs bare: tenacity costs ~30 us a call, most calls succeed
                return call_one(request)
            except Exception as exc:
                if not self._retryable(request, exc):
                    self._fail(request, exc, 1)
                first = exc
            retrying = Retrying(**self._options(request, time.monotonic() - started))
            try:
                return retrying(_replaying(first, call_one), request)
            except Exception as exc:
                self._fail(request, exc, retrying.statistics.get("attempt_number", 1))
        return call

    def awrap(self, call_one: Callable[[Any], Awaitable[Any]]) -> Callable[[Any], Awaitable[Any]]:
        async def call(request: Any) -> Any:
            started = time.monotonic()
            try:
                return await call_one(request)
            except Exception as exc:
                if not self._retryable(request, exc):
                    self._fail(request, exc, 1)
                first = exc
            retrying = AsyncRetrying(**self._options(request, time.monotonic() - started))
            try:
                return await retrying(_areplaying(first, call_one), request)
            except Exception as exc:
                self._fail(request, exc, retrying.statistics.get("attempt_number", 1))
        return call

    def _retryable(self, request: Any, exc: BaseException) -> bool:
        return (self.policy.attempts > 1 and isinstance(exc, Exception)
                and self.is_transient(exc) and self.is_idempotent(request))

    def _options(self, request: Any, spent: float) -> dict[str, Any]:
        """Tenacity's options for the tries after a first one that took `spent` seconds."""
        return self.policy._options(lambda exc: self._retryable(request, exc),
                                    deadline=max(0.0, self.policy.deadline - spent))


def _replaying(first: Exception, call_one: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`call_one`, whose first call raises the error the bare first try already met."""
    pending = [first]

    def attempt(request: Any) -> Any:
        if pending:
            raise pending.pop()
        return call_one(request)
    return attempt


def _areplaying(first: Exception,
                call_one: Callable[[Any], Awaitable[Any]]) -> Callable[[Any], Awaitable[Any]]:
    pending = [first]

    async def attempt(request: Any) -> Any:
        if pending:
            raise pending.pop()
        return await call_one(request)
    return attempt
