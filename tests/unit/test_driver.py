"""The one driver protocol: plans run the same way with ``drive`` and ``adrive``."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

import pytest

from djredis._core.driver import adrive, drive, first_request

pytestmark = pytest.mark.unit


def _plan(log: list[str]) -> Generator[int, Any, str]:
    try:
        total = yield 1
        try:
            total += yield -1  # the step raises ValueError for negatives
        except ValueError as exc:
            log.append(f"caught {exc}")
            total += yield 2
        return f"total {total}"
    finally:
        log.append("closed")


def _step(request: int) -> int:
    if request < 0:
        raise ValueError("negative")
    return request * 10


async def _astep(request: int) -> int:
    await asyncio.sleep(0)
    return _step(request)


def test_sync_and_async_drivers_give_the_same_result_and_throw_caught_errors_in() -> None:
    sync_log: list[str] = []
    async_log: list[str] = []
    assert drive(_plan(sync_log), _step, (ValueError,)) == "total 30"
    assert asyncio.run(adrive(_plan(async_log), _astep, (ValueError,))) == "total 30"
    assert sync_log == async_log == ["caught negative", "closed"]


def test_an_uncaught_error_leaves_the_driver_and_closes_the_plan() -> None:
    log: list[str] = []
    with pytest.raises(ValueError, match="negative"):
        drive(_plan(log), _step)
    assert log == ["closed"]
    log.clear()
    with pytest.raises(ValueError, match="negative"):
        asyncio.run(adrive(_plan(log), _astep))
    assert log == ["closed"]


def test_a_plan_already_advanced_continues_from_its_first_request() -> None:
    log: list[str] = []
    plan = _plan(log)
    started, request = first_request(plan)
    assert (started, request) == (True, 1)
    assert isinstance(request, int)
    assert drive(plan, _step, (ValueError,), first=request) == "total 30"


def test_a_plan_that_asks_nothing_returns_its_result_at_once() -> None:
    def plan() -> Generator[int, Any, str]:
        return "nothing asked"
        yield 0  # pragma: no cover - makes this a generator

    assert first_request(plan()) == (False, "nothing asked")
    assert drive(plan(), _step) == "nothing asked"
