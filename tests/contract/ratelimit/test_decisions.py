"""Decisions on real Redis: exact under concurrency, exact across window edges, one round
trip each, memory bounded, garbage survived; standalone and Cluster."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.http import HttpRequest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from djredis.ratelimit import Rule, parse_rate
from djredis.ratelimit.core import ALGORITHMS
from tests._sessions import sent_commands
from tests._topologies import Topology

ALGORITHM_PARAMS = pytest.mark.parametrize("algorithm", ALGORITHMS)


def _interval_tolerant_expected(algorithm: str, admitted: int, elapsed: float) -> int:
    """50/min admits exactly 50 at once; GCRA adds one hit per 1.2 s that passed."""
    if algorithm == "gcra" and elapsed >= 1.2:
        return min(admitted, 50 + int(elapsed / 1.2) + 1)
    return 50


@ALGORITHM_PARAMS
def test_200_concurrent_threads_against_50_per_minute_admit_exactly_50(
    on_topology: Topology, make_request: Callable[..., HttpRequest], algorithm: str
) -> None:
    rule = Rule(key="ip", rate="50/m", algorithm=algorithm, group="threads")
    rule.check(make_request(ip="198.51.100.1"))  # connects and loads the script
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(lambda _: rule.check(make_request()), range(200)))
    elapsed = time.monotonic() - started
    admitted = sum(1 for r in results if r is not None and r.allowed)
    assert admitted == _interval_tolerant_expected(algorithm, admitted, elapsed)
    assert not any(r is None or r.unavailable for r in results)


@ALGORITHM_PARAMS
def test_200_concurrent_tasks_against_50_per_minute_admit_exactly_50(
    on_topology: Topology, make_request: Callable[..., HttpRequest], algorithm: str
) -> None:
    rule = Rule(key="ip", rate="50/m", algorithm=algorithm, group="tasks")

    async def burst() -> tuple[list[Any], float]:
        await rule.acheck(make_request(ip="198.51.100.1"))
        started = time.monotonic()
        results = await asyncio.gather(*(rule.acheck(make_request()) for _ in range(200)))
        return list(results), time.monotonic() - started

    results, elapsed = asyncio.run(burst())
    admitted = sum(1 for r in results if r is not None and r.allowed)
    assert admitted == _interval_tolerant_expected(algorithm, admitted, elapsed)


@ALGORITHM_PARAMS
def test_a_decision_is_one_command_sent_sync_and_async(
    on_redis: Topology, make_request: Callable[..., HttpRequest], algorithm: str
) -> None:
    rule = Rule(key="ip", rate="5/m", algorithm=algorithm)
    client = on_redis.client()
    rule.check(make_request())  # the pool's connection and the script exist from here on
    with sent_commands(client) as sent:
        for _ in range(8):  # allowed and refused decisions alike
            rule.check(make_request())
    assert sent == ["EVALSHA"] * 8

    async def decide() -> list[str]:
        await rule.acheck(make_request())
        with sent_commands(client) as sent:
            for _ in range(8):
                await rule.acheck(make_request())
        return sent

    assert asyncio.run(decide()) == ["EVALSHA"] * 8


@ALGORITHM_PARAMS
def test_each_decision_touches_one_hash_tagged_key(
    on_redis: Topology, make_request: Callable[..., HttpRequest], algorithm: str
) -> None:
    rule = Rule(key="ip", rate="5/m", algorithm=algorithm, group="tagged")
    rule.check(make_request())
    keys = on_redis.client().keys("*")
    assert len(keys) == 1
    key = keys[0].decode()
    assert key.startswith("rl:{")
    assert key.endswith("}")
    assert key == rule.redis_key("tagged", "203.0.113.9", parse_rate("5/m"))


def test_sliding_keeps_at_most_limit_timestamps_however_many_hits(
    on_redis: Topology, make_request: Callable[..., HttpRequest]
) -> None:
    rule = Rule(key="ip", rate="7/h", group="bounded")
    for _ in range(60):
        rule.check(make_request())
    key = rule.redis_key("bounded", "203.0.113.9", parse_rate("7/h"))
    assert on_redis.client().llen(key) == 7
    assert 3500 * 1000 < on_redis.client().pttl(key) <= 3600 * 1000


def test_gcra_keeps_one_number_and_admits_its_burst(
    on_redis: Topology, make_request: Callable[..., HttpRequest]
) -> None:
    rule = Rule(key="ip", rate="10/m", algorithm="gcra", burst=3, group="bucket")
    now = 1_700_000_000_000_000
    decided = [rule.check(make_request(), _now_us=now) for _ in range(5)]
    assert [r.allowed for r in decided if r] == [True, True, True, False, False]
    assert [r.remaining for r in decided if r] == [2, 1, 0, 0, 0]
    refused = decided[-1]
    assert refused is not None
    assert refused.retry_after == pytest.approx(6.0)
    # one emission interval (6 s) later, exactly one more
    later = [rule.check(make_request(), _now_us=now + 6_000_000) for _ in range(2)]
    assert [r.allowed for r in later if r] == [True, False]
    key = rule.redis_key("bucket", "203.0.113.9", parse_rate("10/m"))
    assert on_redis.client().type(key) == b"string"


def _max_in_any_window(times: list[int], period: int) -> int:
    """The most admitted hits inside any half-open window (t - period, t]."""
    best = 0
    for i, end in enumerate(times):
        best = max(best, sum(1 for t in times[: i + 1] if t > end - period))
    return best


def test_sliding_admits_no_more_than_limit_across_a_window_edge(
    on_redis: Topology, make_request: Callable[..., HttpRequest]
) -> None:
    rule = Rule(key="ip", rate=(5, 10), group="edge")
    base = 1_700_000_000_000_000
    before_edge = [base + 9_900_000 + i for i in range(5)]  # the end of a first "window"
    after_edge = [base + 10_100_000 + i for i in range(5)]  # just after its edge
    admitted = [
        t
        for t in before_edge + after_edge
        if (r := rule.check(make_request(), _now_us=t)) and r.allowed
    ]
    assert admitted == before_edge
    assert _max_in_any_window(admitted, 10_000_000) == 5


@hsettings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    gaps=st.lists(st.integers(min_value=0, max_value=3_000_000), min_size=1, max_size=40),
    limit=st.integers(min_value=1, max_value=6),
)
def test_sliding_matches_the_exact_model_for_any_hit_times(
    on_redis: Topology, make_request: Callable[..., HttpRequest], gaps: list[int], limit: int
) -> None:
    on_redis.flush()
    period = 5_000_000
    rule = Rule(key="ip", rate=(limit, 5), group="model")
    now = 1_700_000_000_000_000
    admitted: list[int] = []
    for gap in gaps:
        now += gap
        result = rule.check(make_request(), _now_us=now)
        expected = sum(1 for t in admitted if t > now - period) < limit
        assert result is not None
        assert result.allowed is expected
        if expected:
            admitted.append(now)
    assert _max_in_any_window(admitted, period) <= limit


def _server_now(client: Any) -> float:
    seconds, micros = client.time()
    return float(seconds) + micros / 1e6


def _wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.002)


@pytest.mark.parametrize(("algorithm", "most_in_one_period"), [("fixed", 8), ("sliding", 4)])
def test_fixed_lets_twice_the_limit_through_around_an_edge_and_sliding_does_not(
    on_redis: Topology,
    make_request: Callable[..., HttpRequest],
    algorithm: str,
    most_in_one_period: int,
) -> None:
    """On the server's clock: 1 hit opens a 1 s window, 3 more just before it closes,
    4 just after. Fixed admits all 8 within well under a second; sliding admits 4."""
    client = on_redis.client()
    rule = Rule(key="ip", rate="4/s", algorithm=algorithm, group="clock")
    key = rule.redis_key("clock", "203.0.113.9", parse_rate("4/s"))
    assert rule.check(make_request()).allowed  # type: ignore[union-attr]
    _wait_until(lambda: 0 < client.pttl(key) < 150 or client.pttl(key) == -2)
    start = _server_now(client)
    late = [rule.check(make_request()) for _ in range(3)]
    _wait_until(lambda: client.pttl(key) < 900 or client.exists(key) == 0)
    if algorithm == "fixed":
        _wait_until(lambda: client.exists(key) == 0)
    early = [rule.check(make_request()) for _ in range(4)]
    span = _server_now(client) - start
    admitted_in_span = sum(1 for r in late + early if r is not None and r.allowed)
    assert span < 1.0
    if algorithm == "fixed":
        assert admitted_in_span + 1 == most_in_one_period  # 2 x the limit within < 1 s
    else:
        assert admitted_in_span + 1 <= most_in_one_period


@pytest.mark.parametrize(
    ("algorithm", "garbage"),
    [
        ("sliding", ("SET", "x")),
        ("sliding", ("RPUSH", "not-a-number")),
        ("fixed", ("RPUSH", "x")),
        ("fixed", ("SET", "not-a-number")),
        ("gcra", ("SET", "not-a-number")),
        ("gcra", ("SADD", "x")),
    ],
)
def test_garbage_at_the_key_is_reset_and_logged_never_a_crash(
    on_redis: Topology,
    make_request: Callable[..., HttpRequest],
    caplog: pytest.LogCaptureFixture,
    algorithm: str,
    garbage: tuple[str, str],
) -> None:
    rule = Rule(key="ip", rate="3/m", algorithm=algorithm, group="garbage")
    key = rule.redis_key("garbage", "203.0.113.9", parse_rate("3/m"))
    command, value = garbage
    on_redis.client().execute_command(command, key, value)
    with caplog.at_level(logging.WARNING, logger="djredis.ratelimit"):
        decided = [rule.check(make_request()) for _ in range(4)]
    assert [r.allowed for r in decided if r] == [True, True, True, False]
    assert "held data it did not write" in caplog.text


def test_cancelled_decisions_never_mix_up_the_replies_of_the_others(
    on_redis: Topology, make_request: Callable[..., HttpRequest]
) -> None:
    rule = Rule(key="ip", rate="50/m", group="cancel")

    async def run() -> tuple[list[Any], list[Any]]:
        await rule.acheck(make_request(ip="198.51.100.1"))
        tasks = [asyncio.ensure_future(rule.acheck(make_request())) for _ in range(120)]
        await asyncio.sleep(0)
        for task in tasks[::3]:
            task.cancel()
        settled = await asyncio.gather(*tasks, return_exceptions=True)
        later = [await rule.acheck(make_request()) for _ in range(5)]
        return [r for r in settled if not isinstance(r, BaseException)], later

    survivors, later = asyncio.run(run())
    admitted = [r for r in survivors if r is not None and r.allowed]
    # each admitted hit saw its own count: a reply handed to the wrong coroutine would repeat one
    assert len({r.remaining for r in admitted}) == len(admitted)
    assert all(0 <= r.remaining < 50 for r in admitted)
    assert not any(r is not None and r.allowed for r in later)
    key = rule.redis_key("cancel", "203.0.113.9", parse_rate("50/m"))
    assert on_redis.client().llen(key) == 50


def test_a_server_clock_stepping_back_never_admits_more_than_the_limit(
    on_redis: Topology, make_request: Callable[..., HttpRequest]
) -> None:
    rule = Rule(key="ip", rate=(3, 10), group="clock-back")
    now = 1_700_000_000_000_000
    forward = [rule.check(make_request(), _now_us=now + i) for i in range(3)]
    back = [rule.check(make_request(), _now_us=now - 60_000_000 + i) for i in range(3)]
    assert [r.allowed for r in forward if r] == [True, True, True]
    assert [r.allowed for r in back if r] == [False, False, False]
