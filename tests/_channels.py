"""Helpers for the channel layer's failover tests: a consumer kept receiving while Redis
is broken under it, and sends retried while Redis is away."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError

from djredis.channels import RedisChannelLayer


async def send_until_accepted(
    layer: RedisChannelLayer, channel: str, message: Any, within: float, pause: float
) -> None:
    """Send, retrying every ``pause`` s for ``within`` s while the server is away (a failed
    send surely did not enqueue: the connection was refused before the script was written,
    or the server restarted)."""
    deadline = time.monotonic() + within
    while True:
        try:
            await layer.send(channel, message)
            return
        except (RedisConnectionError, OSError):
            if time.monotonic() > deadline:
                raise AssertionError("sends never resumed") from None
            await asyncio.sleep(pause)


async def received_across(
    layer: RedisChannelLayer,
    before: int,
    total: int,
    fault: Callable[[str], Awaitable[None]],
    within: float,
    pause: float,
) -> list[int]:
    """Consume a new channel while sending ``before`` numbered messages, ``fault(channel)``,
    then the rest up to ``total`` (retried as in ``send_until_accepted``); return the numbers
    received once every message arrived or ``within`` s passed after the last send."""
    channel = await layer.new_channel()
    received: list[int] = []

    async def consume() -> None:
        while True:
            received.append((await layer.receive(channel))["n"])

    consumer = asyncio.ensure_future(consume())
    for number in range(before):
        await layer.send(channel, {"type": "n", "n": number})
    while len(received) < before:
        await asyncio.sleep(0.01)
    await fault(channel)
    for number in range(before, total):
        await send_until_accepted(layer, channel, {"type": "n", "n": number}, within, pause)
    deadline = time.monotonic() + within
    while len(received) < total and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    consumer.cancel()
    await asyncio.gather(consumer, return_exceptions=True)
    return received


def layer_hosts(topology: Any) -> list[dict[str, Any]]:
    """The ``hosts`` CONFIG naming a test topology (of a primary and its replica, the
    primary)."""
    location = topology.location
    if isinstance(location, list):
        location = location[0]
    return [{"address": location, **topology.options}]
