"""The retry policy on its own: which failures are tried again, how often, and what the
caller is told when they stop (the server tests show the same against real servers)."""

from __future__ import annotations

import asyncio
import time

import pytest

from rag_stores.core.retry import EngineUnavailableError, Retrier, RetryPolicy

FAST = RetryPolicy(attempts=4, initial_delay=0.001, max_delay=0.002, deadline=5.0)


class Transient(ConnectionError):
    pass


def retrier(policy: RetryPolicy = FAST, idempotent: bool = True) -> Retrier:
    return Retrier(policy, is_transient=lambda exc: isinstance(exc, Transient),
                   is_idempotent=lambda request: idempotent,
                   describe=lambda request: f"{request} on http://127.0.0.1:1")


class Flaky:
    """Fails with `errors` in turn, then answers; counts its calls."""

    def __init__(self, *errors: Exception, sleep: float = 0.0) -> None:
        self.errors, self.calls, self.sleep = list(errors), 0, sleep

    def __call__(self, request: str) -> str:
        self.calls += 1
        time.sleep(self.sleep)
        if self.errors:
            raise self.errors.pop(0)
        return f"{request} done"

    async def acall(self, request: str) -> str:
        return self(request)


def run(r: Retrier, call: Flaky, face: str) -> str:
    if face == "sync":
        return r.wrap(call)("upsert")
    return asyncio.run(r.awrap(call.acall)("upsert"))


FACES = ["sync", "async"]


@pytest.mark.parametrize("face", FACES)
def test_a_transient_fault_is_tried_again_until_it_passes(face) -> None:
    call = Flaky(Transient("refused"), Transient("refused"))
    assert run(retrier(), call, face) == "upsert done"
    assert call.calls == 3


@pytest.mark.parametrize("face", FACES)
def test_attempts_run_out_with_one_error_naming_the_operation_and_server(face) -> None:
    call = Flaky(*[Transient(f"refused {i}") for i in range(10)])
    with pytest.raises(EngineUnavailableError, match=r"upsert on http://127\.0\.0\.1:1 failed "
                       r"after 4 attempts: Transient: refused 3") as info:
        run(retrier(), call, face)
    assert call.calls == 4
    assert isinstance(info.value.__cause__, Transient)


@pytest.mark.parametrize("face", FACES)
def test_a_request_that_may_not_run_twice_is_tried_once(face) -> None:
    call = Flaky(Transient("reset"))
    with pytest.raises(EngineUnavailableError, match=r"not retried: not idempotent"):
        run(retrier(idempotent=False), call, face)
    assert call.calls == 1


@pytest.mark.parametrize("face", FACES)
def test_other_errors_pass_through_unchanged_and_untried(face) -> None:
    error = ValueError("bad filter")
    call = Flaky(error)
    with pytest.raises(ValueError) as info:
        run(retrier(), call, face)
    assert info.value is error and call.calls == 1


@pytest.mark.parametrize("face", FACES)
def test_a_first_try_slower_than_the_deadline_is_not_repeated(face) -> None:
    policy = RetryPolicy(attempts=4, initial_delay=0.001, deadline=0.05)
    call = Flaky(Transient("timed out"), sleep=0.1)
    with pytest.raises(EngineUnavailableError, match=r"retry deadline of 0\.05 s had passed"):
        run(retrier(policy), call, face)
    assert call.calls == 1


@pytest.mark.parametrize("face", FACES)
def test_retries_off(face) -> None:
    call = Flaky(Transient("refused"))
    with pytest.raises(EngineUnavailableError, match=r"\(retries off\)"):
        run(retrier(RetryPolicy(attempts=1)), call, face)
    assert call.calls == 1
