"""Sync code receiving through ``async_to_sync``: each call runs a new event loop, and a
message this process fetched on one loop reaches a receive on any other (standalone;
replicas, Sentinel and Cluster marked slow)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from djredis.channels import RedisChannelLayer

pytestmark = [pytest.mark.topologies, pytest.mark.timeout(60)]


def _receiver(layer: RedisChannelLayer) -> Any:
    async def receive_within(name: str) -> dict[str, Any]:
        message: dict[str, Any] = await asyncio.wait_for(layer.receive(name), 5)
        return message

    return async_to_sync(receive_within)


def test_a_local_message_fetched_on_one_loop_reaches_the_next_loops_receive(
    hosts: list[Any], redis_client: Any
) -> None:
    layer = RedisChannelLayer(hosts=hosts)
    first = async_to_sync(layer.new_channel)()
    second = async_to_sync(layer.new_channel)()
    async_to_sync(layer.send)(first, {"type": "to", "who": "first"})
    async_to_sync(layer.send)(second, {"type": "to", "who": "second"})
    receive = _receiver(layer)
    assert receive(first)["who"] == "first"  # its loop's reader fetched both
    assert receive(second)["who"] == "second"  # a new loop
    async_to_sync(layer.flush)()


def test_a_receive_waiting_on_another_threads_loop_gets_its_message(
    hosts: list[Any], redis_client: Any
) -> None:
    layer = RedisChannelLayer(hosts=hosts)
    first = async_to_sync(layer.new_channel)()
    second = async_to_sync(layer.new_channel)()
    receive = _receiver(layer)
    results: dict[str, Any] = {}

    def wait_for_second() -> None:
        try:
            results["second"] = receive(second)
        except BaseException as exc:  # reported below
            results["second"] = exc

    thread = threading.Thread(target=wait_for_second)
    thread.start()
    for number in range(20):  # whichever loop's reader pops, both receives get theirs
        async_to_sync(layer.send)(first, {"type": "to", "n": number})
    async_to_sync(layer.send)(second, {"type": "to", "who": "second"})
    assert [receive(first)["n"] for _ in range(20)] == list(range(20))
    thread.join(10)
    assert results["second"] == {"type": "to", "who": "second"}
    async_to_sync(layer.flush)()
