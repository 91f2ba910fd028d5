"""The one driver protocol: how every multi-step thing in djredis is run, sync or async.

A *plan* is a generator. It yields a request (a command, a ``(server, command)`` attempt, "I
need more bytes"...), receives the request's result, or has the request's exception thrown
in when that exception is one the plan handles (``catch``), and finally returns its result.
The plan holds the logic, written once; ``drive`` performs its requests with blocking I/O
and ``adrive`` on the running event loop. Exceptions outside ``catch`` leave the driver
(the plan is closed on the way out, running its ``finally`` blocks).

Operations (``djredis._core.commands``), topology routes and the Cluster's plan
(``djredis._routing``) and the stampede plan (``djredis.cache.stampede``) are plans driven
here, so ``StopIteration`` is caught in this module only (the dedicated connections' reply
readers in ``djredis._io`` are yet to follow). The near-cache's write watch is a step
around the topology's (``djredis.cache.near.writes``), not a plan.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, Literal, TypeVar

__all__ = ["NOT_STARTED", "Plan", "adrive", "drive", "first_request"]

T = TypeVar("T")
Y = TypeVar("Y")

# A plan yields requests of type Y, is sent their results (Any) and returns a T.
Plan = Generator[Y, Any, T]


class _NotStarted:
    """The marker for "the plan has not been advanced to its first request yet"."""

    def __repr__(self) -> str:
        return "NOT_STARTED"


NOT_STARTED: Any = _NotStarted()

_NOTHING: tuple[type[BaseException], ...] = ()


def drive(
    plan: Plan[Y, T],
    step: Callable[[Y], Any],
    catch: tuple[type[BaseException], ...] = _NOTHING,
    first: Y = NOT_STARTED,
) -> T:
    """Run ``plan`` to completion: ``step(request)`` for each request it yields; return its
    result. An exception of a type in ``catch`` raised by ``step`` is thrown into the plan;
    ``first`` is the request of a plan already advanced by the caller."""
    try:
        request = next(plan) if first is NOT_STARTED else first
        while True:
            try:
                reply = step(request)
            except catch as exc:
                request = plan.throw(exc)
            else:
                request = plan.send(reply)
    except StopIteration as stop:
        result: T = stop.value
        return result
    except BaseException:
        plan.close()  # not in a ``finally``: a plan that returned needs no closing
        raise


async def adrive(
    plan: Plan[Y, T],
    step: Callable[[Y], Awaitable[Any]],
    catch: tuple[type[BaseException], ...] = _NOTHING,
    first: Y = NOT_STARTED,
) -> T:
    """The asyncio form of ``drive``: ``await step(request)`` for each request."""
    try:
        request = next(plan) if first is NOT_STARTED else first
        while True:
            try:
                reply = await step(request)
            except catch as exc:
                request = plan.throw(exc)
            else:
                request = plan.send(reply)
    except StopIteration as stop:
        result: T = stop.value
        return result
    except BaseException:
        plan.close()  # not in a ``finally``: a plan that returned needs no closing
        raise


def first_request(plan: Plan[Y, T]) -> tuple[Literal[True], Y] | tuple[Literal[False], T]:
    """Advance ``plan`` to its first request: ``(True, request)``, or ``(False, result)``
    when the plan finished without asking for anything (test ``found[0]``: mypy then knows
    which ``found[1]`` is)."""
    try:
        return True, next(plan)
    except StopIteration as stop:
        return False, stop.value
