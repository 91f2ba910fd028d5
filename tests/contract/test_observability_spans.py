"""Spans that must end however their command ends: a Redis Cluster command split over
nodes, interrupted while the nodes have not answered (a cancelled task, a signal's
exception). Read back with the OpenTelemetry SDK's in-memory exporter on a real Cluster."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.trace import StatusCode

from djredis.cache import RedisCache
from tests._observed import Traced
from tests._topologies import Topology


class Interrupted(Exception):
    """What a signal handler raises: a request timeout of the gunicorn/uwsgi kind."""


@pytest.fixture
def frozen(topology: Topology) -> Iterator[Callable[[], None]]:
    """Freeze every Cluster primary (SIGSTOP) when called; thawed afterwards."""
    stopped: list[int] = []

    def freeze() -> None:
        for node in topology.primaries():
            os.kill(node.process.pid, signal.SIGSTOP)
            stopped.append(node.process.pid)

    yield freeze
    for pid in stopped:
        os.kill(pid, signal.SIGCONT)


def _interrupt(signum: int, frame: Any) -> None:
    raise Interrupted("the request took too long")


@pytest.mark.slow
@pytest.mark.parametrize("topology", ["cluster"], indirect=True)
@pytest.mark.parametrize("api", ["sync", "async"])
def test_every_node_span_ends_when_a_split_command_is_interrupted_mid_send(
    api: str,
    traced: Traced,
    make_cache: Callable[..., RedisCache],
    frozen: Callable[[], None],
) -> None:
    cache = make_cache(KEY_PREFIX="leak", OPTIONS={"socket_timeout": 30})
    keys = [f"key-{n}" for n in range(30)]  # their hash slots cover all three nodes
    cache.set_many(dict.fromkeys(keys, 1), 30)

    async def interrupted_async() -> None:
        assert len(await cache.aget_many(keys)) == 30  # connected on this loop
        traced.exporter.clear()
        frozen()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(cache.aget_many(keys), 0.3)

    if api == "sync":
        assert len(cache.get_many(keys)) == 30
        traced.exporter.clear()
        frozen()
        previous = signal.signal(signal.SIGALRM, _interrupt)
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        try:
            with pytest.raises(Interrupted):
                cache.get_many(keys)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    else:
        asyncio.run(interrupted_async())

    nodes = traced.named("MGET") + traced.named("BATCH MGET")
    assert len(nodes) == 3, [span.name for span in traced.spans()]
    assert len({span.attributes["server.port"] for span in nodes}) == 3
    for span in nodes:
        assert span.status.status_code == StatusCode.ERROR
        expected = "CancelledError" if api == "async" else "Interrupted"
        assert span.attributes["error.type"].endswith(expected)
    (operation,) = traced.named("cache.get_many")
    assert all(traced.parent_of(span) == operation for span in nodes)
