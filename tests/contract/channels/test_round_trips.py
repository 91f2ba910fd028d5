"""Round trips, counted as the commands clients send through a proxy (standalone)."""

from __future__ import annotations

import asyncio

import pytest

from djredis.channels import RedisChannelLayer
from tests._proxy import FaultyProxy

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


def _commands(proxy: FaultyProxy) -> dict[str, int]:
    names = ("EVALSHA", "EVAL", "BLMPOP", "LPOP", "ZREM", "TIME", "SCRIPT", "ZRANGE")
    return {name: proxy.count(name.encode()) for name in names}


async def test_send_is_one_evalsha(proxy: FaultyProxy) -> None:
    layer = RedisChannelLayer(hosts=[proxy.location()])
    await layer.send("warm", {"type": "x"})  # loads the script once
    before = _commands(proxy)
    for _ in range(10):
        await layer.send("chan", {"type": "x"})
    after = _commands(proxy)
    assert after["EVALSHA"] - before["EVALSHA"] == 10
    assert after["EVAL"] == before["EVAL"]
    assert after["ZRANGE"] == before["ZRANGE"]
    await layer.flush()


async def test_send_and_receive_cost_two_round_trips(proxy: FaultyProxy) -> None:
    layer = RedisChannelLayer(hosts=[proxy.location()])
    await layer.send("ping", {"type": "warm"})
    assert (await layer.receive("ping"))["type"] == "warm"
    before = _commands(proxy)
    for number in range(20):
        await layer.send("ping", {"type": "n", "n": number})
        assert (await layer.receive("ping"))["n"] == number
    await asyncio.sleep(0.05)  # a BLMPOP would be written by now
    after = _commands(proxy)
    sent = {name: after[name] - before[name] for name in after}
    assert sent["EVALSHA"] == 20
    # The message is in the list when receive is called: one LPOP on the multiplexed
    # connection takes it, and the blocking reader never runs.
    assert sent["LPOP"] == 20
    assert sent["BLMPOP"] == 0
    assert sent["TIME"] == 0
    await layer.close_pools()


async def test_a_receive_on_an_empty_plain_channel_waits_in_one_blmpop(
    proxy: FaultyProxy,
) -> None:
    layer = RedisChannelLayer(hosts=[proxy.location()])
    await layer.send("idle", {"type": "warm"})
    assert (await layer.receive("idle"))["type"] == "warm"
    before = _commands(proxy)
    waiting = asyncio.ensure_future(layer.receive("idle"))
    await asyncio.sleep(0.05)
    await layer.send("idle", {"type": "late"})
    assert (await asyncio.wait_for(waiting, 5))["type"] == "late"
    after = _commands(proxy)
    sent = {name: after[name] - before[name] for name in after}
    assert (sent["LPOP"], sent["BLMPOP"]) == (1, 1)  # found nothing, then waited
    await layer.close_pools()


async def test_group_send_is_one_script_whatever_the_group_size(proxy: FaultyProxy) -> None:
    layer = RedisChannelLayer(hosts=[proxy.location()])
    for number in range(100):
        await layer.group_add("big", f"member-{number}")
    await layer.group_send("big", {"type": "warm"})
    before = _commands(proxy)
    await layer.group_send("big", {"type": "x"})
    after = _commands(proxy)
    assert after["EVALSHA"] - before["EVALSHA"] == 1
    assert sum(after.values()) - sum(before.values()) == 1
    await layer.flush()


async def test_process_local_consumers_share_one_reader_connection(
    proxy: FaultyProxy,
) -> None:
    layer = RedisChannelLayer(hosts=[proxy.location()])
    channels = [await layer.new_channel() for _ in range(50)]
    tasks = [asyncio.ensure_future(layer.receive(name)) for name in channels]
    for name in channels:
        await layer.send(name, {"type": "x", "to": name})
    results = await asyncio.gather(*tasks)
    assert [r["to"] for r in results] == channels
    readers = layer._readers[asyncio.get_running_loop()]
    assert len(readers) == 1
    assert proxy.count(b"TIME") == 1  # one dedicated connection was opened
    await layer.close_pools()
