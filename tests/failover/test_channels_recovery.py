"""The channel layer after Redis restarts or freezes mid-stream: the layer object lives on,
its reader reconnects, and nothing Redis still holds is lost or delivered twice."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest

from djredis.channels import RedisChannelLayer
from tests._channels import received_across, send_until_accepted
from tests._servers import RedisServer

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]


async def test_a_consumer_keeps_receiving_across_a_redis_restart(
    server: RedisServer, direct: Any
) -> None:
    events: list[str] = []
    layer = RedisChannelLayer(
        hosts=[server.url()],
        on_disconnect=lambda: events.append("disconnect"),
        on_reconnect=lambda: events.append("reconnect"),
    )

    async def restart(channel: str) -> None:
        await asyncio.to_thread(server.restart)

    received = await received_across(layer, 50, 100, restart, within=10, pause=0.025)
    assert received == list(range(100))
    assert events[:1] == ["disconnect"]
    assert "reconnect" in events
    await layer.close_pools()


async def test_messages_redis_kept_over_a_restart_are_delivered_once(
    server: RedisServer, direct: Any
) -> None:
    layer = RedisChannelLayer(hosts=[server.url()])
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "n", "n": -1})
    assert (await layer.receive(channel))["n"] == -1  # the reader is connected
    for number in range(20):
        await layer.send(channel, {"type": "n", "n": number})
    # Nobody waits, so the reader stopped after its pop; the messages stay in Redis.
    direct.save()
    await asyncio.to_thread(server.restart)
    received = [(await layer.receive(channel))["n"] for _ in range(20)]
    assert received == list(range(20))
    await layer.close_pools()


async def test_a_frozen_server_only_delays_the_reader(server: RedisServer, direct: Any) -> None:
    """A receive waiting while Redis is frozen gets the next message once it thaws.

    The message is sent once the reader has read again: a pop abandoned (timed out) while
    Redis was frozen is still blocked in Redis when it resumes, and may be served a message
    pushed in that instant, before Redis sees the abandoned connection closed (documented
    in docs/channels.md).
    """
    reconnected = asyncio.Event()
    layer = RedisChannelLayer(
        hosts=[server.url()], options={"socket_timeout": 0.5}, on_reconnect=reconnected.set
    )
    await layer.send("frozen", {"type": "n", "n": 0})
    assert (await layer.receive("frozen"))["n"] == 0
    waiting = asyncio.ensure_future(layer.receive("frozen"))
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(1.5)  # past the reader's block + socket timeout
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    await asyncio.wait_for(reconnected.wait(), 20)
    await send_until_accepted(layer, "frozen", {"type": "n", "n": 1}, within=10, pause=0.025)
    assert (await asyncio.wait_for(waiting, 20))["n"] == 1
    await layer.close_pools()
