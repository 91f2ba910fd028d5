"""The Channels layer spec, as channels_redis's own test suite checks it, on every topology
(standalone; replicas, Sentinel and Cluster marked slow)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from channels.exceptions import ChannelFull, MessageTooLarge

from djredis.channels import RedisChannelLayer

pytestmark = [pytest.mark.topologies, pytest.mark.asyncio, pytest.mark.timeout(60)]

Factory = Callable[..., RedisChannelLayer]


async def test_send_then_receive_returns_the_message(layer: RedisChannelLayer) -> None:
    await layer.send("test-channel-1", {"type": "test.message", "text": "Ahoy-hoy!"})
    assert await layer.receive("test-channel-1") == {"type": "test.message", "text": "Ahoy-hoy!"}


async def test_messages_arrive_in_the_order_sent(layer: RedisChannelLayer) -> None:
    for number in range(10):
        await layer.send("ordered", {"type": "n", "n": number})
    assert [(await layer.receive("ordered"))["n"] for _ in range(10)] == list(range(10))


async def test_send_over_capacity_raises_channel_full(make_layer: Factory) -> None:
    layer = make_layer(capacity=3)
    for number in range(3):
        await layer.send("small", {"type": "n", "n": number})
    with pytest.raises(ChannelFull):
        await layer.send("small", {"type": "n", "n": 3})
    assert (await layer.receive("small"))["n"] == 0
    await layer.send("small", {"type": "n", "n": 4})  # room again


async def test_channel_capacity_patterns_set_the_capacity_by_name(make_layer: Factory) -> None:
    layer = make_layer(capacity=100, channel_capacity={"tiny*": 1, re.compile(r"^two$"): 2})
    await layer.send("tiny-a", {"type": "x"})
    with pytest.raises(ChannelFull):
        await layer.send("tiny-a", {"type": "x"})
    await layer.send("two", {"type": "x"})
    await layer.send("two", {"type": "x"})
    with pytest.raises(ChannelFull):
        await layer.send("two", {"type": "x"})


async def test_process_local_channels_get_their_own_messages(layer: RedisChannelLayer) -> None:
    first, second = await layer.new_channel(), await layer.new_channel()
    assert first != second
    assert first.endswith("!") is False
    assert "!" in first
    await layer.send(first, {"type": "to", "who": "first"})
    await layer.send(second, {"type": "to", "who": "second"})
    await layer.send(first, {"type": "to", "who": "first-again"})
    assert (await layer.receive(second))["who"] == "second"
    assert (await layer.receive(first))["who"] == "first"
    assert (await layer.receive(first))["who"] == "first-again"


async def test_capacity_counts_the_non_local_part(make_layer: Factory) -> None:
    layer = make_layer(capacity=2)
    first, second = await layer.new_channel(), await layer.new_channel()
    await layer.send(first, {"type": "x"})
    await layer.send(second, {"type": "x"})
    with pytest.raises(ChannelFull):
        await layer.send(await layer.new_channel(), {"type": "x"})


@pytest.mark.parametrize("name", ["", "a" * 100, "bad name", "caf\u00e9", "x{y}", 12, None])
async def test_invalid_channel_names_raise_type_error(layer: RedisChannelLayer, name: Any) -> None:
    with pytest.raises(TypeError):
        await layer.send(name, {"type": "x"})
    with pytest.raises(TypeError):
        await layer.receive(name)


@pytest.mark.parametrize("name", ["", "a" * 100, "has!bang", "bad name", 7])
async def test_invalid_group_names_raise_type_error(layer: RedisChannelLayer, name: Any) -> None:
    with pytest.raises(TypeError):
        await layer.group_add(name, "chan")
    with pytest.raises(TypeError):
        await layer.group_send(name, {"type": "x"})


async def test_a_message_that_is_not_a_dict_raises_type_error(layer: RedisChannelLayer) -> None:
    with pytest.raises(TypeError, match="list"):
        await layer.send("chan", ["not", "a", "dict"])  # type: ignore[arg-type]


async def test_a_message_over_max_message_size_raises_message_too_large(
    make_layer: Factory,
) -> None:
    layer = make_layer(max_message_size=1000)
    await layer.send("big", {"type": "x", "data": "a" * 900})
    with pytest.raises(MessageTooLarge):
        await layer.send("big", {"type": "x", "data": "a" * 1000})
    with pytest.raises(MessageTooLarge):
        await layer.group_send("g", {"type": "x", "data": "a" * 1000})


async def test_group_send_reaches_members_and_not_discarded_ones(
    layer: RedisChannelLayer,
) -> None:
    names = [await layer.new_channel() for _ in range(3)] + ["plain-a", "plain-b"]
    for name in names:
        await layer.group_add("room", name)
    await layer.group_discard("room", names[1])
    await layer.group_send("room", {"type": "hello"})
    await layer.send(names[1], {"type": "marker"})
    for name in names:
        expected = "marker" if name == names[1] else "hello"
        assert (await layer.receive(name))["type"] == expected


async def test_group_send_skips_full_channels_without_raising(make_layer: Factory) -> None:
    layer = make_layer(capacity=1)
    full, free = "full-one", await layer.new_channel()
    await layer.send(full, {"type": "first"})
    await layer.group_add("room", full)
    await layer.group_add("room", free)
    await layer.group_send("room", {"type": "group"})  # no ChannelFull
    assert (await layer.receive(full))["type"] == "first"
    assert (await layer.receive(free))["type"] == "group"
    await layer.send(full, {"type": "after"})
    assert (await layer.receive(full))["type"] == "after"


async def test_group_send_to_an_empty_group_is_a_no_op(
    layer: RedisChannelLayer, redis_client: Any
) -> None:
    await layer.group_send("nobody", {"type": "lost"})
    assert list(redis_client.scan_iter("asgi:*")) == []  # nothing written
    channel = await layer.new_channel()
    await layer.group_add("nobody", channel)
    await layer.group_send("nobody", {"type": "kept"})
    assert (await layer.receive(channel))["type"] == "kept"  # the first was kept nowhere


async def test_messages_expire_unread_after_expiry(make_layer: Factory) -> None:
    layer = make_layer(expiry=1)
    await layer.send("short", {"type": "old"})
    await asyncio.sleep(1.2)
    await layer.send("short", {"type": "new"})
    assert (await layer.receive("short"))["type"] == "new"


async def test_expired_messages_do_not_count_against_capacity(
    make_layer: Factory, redis_client: Any
) -> None:
    layer = make_layer(capacity=2, expiry=1)
    await layer.send("lapsed", {"type": "old", "n": 0})
    await layer.send("lapsed", {"type": "old", "n": 1})
    await asyncio.sleep(1.2)
    await layer.send("lapsed", {"type": "new", "n": 2})
    await layer.send("lapsed", {"type": "new", "n": 3})
    with pytest.raises(ChannelFull):
        await layer.send("lapsed", {"type": "new", "n": 4})
    assert redis_client.llen("asgi:c:{lapsed}") == 2
    assert [(await layer.receive("lapsed"))["n"] for _ in range(2)] == [2, 3]


async def test_a_refused_send_leaves_the_channel_as_it_was(
    make_layer: Factory, redis_client: Any
) -> None:
    layer = make_layer(capacity=3, expiry=60)
    for number in range(3):
        await layer.send("brim", {"type": "n", "n": number})
    before = redis_client.lrange("asgi:c:{brim}", 0, -1)
    for _ in range(5):
        with pytest.raises(ChannelFull):
            await layer.send("brim", {"type": "n", "n": 99})
    assert redis_client.lrange("asgi:c:{brim}", 0, -1) == before
    assert [(await layer.receive("brim"))["n"] for _ in range(3)] == [0, 1, 2]


async def test_an_invalid_name_is_refused_on_every_send(layer: RedisChannelLayer) -> None:
    for _ in range(2):  # a refused name is never remembered as a valid one
        with pytest.raises(TypeError):
            await layer.send("bad name", {"type": "x"})
    await layer.send("good-name", {"type": "x"})
    await layer.send("good-name", {"type": "y"})
    assert (await layer.receive("good-name"))["type"] == "x"


@pytest.mark.parametrize("garbage", [b"no bar at all", b"abc|x|y", b"1|x", b"123"])
async def test_garbage_in_a_channel_list_is_dropped_with_a_log_line(
    make_layer: Factory, redis_client: Any, caplog: pytest.LogCaptureFixture, garbage: bytes
) -> None:
    layer = make_layer(capacity=10, expiry=60)
    await layer.group_add("room", "mixed")
    redis_client.rpush("asgi:c:{mixed}", garbage)  # written by something else
    with caplog.at_level(logging.WARNING, logger="djredis.channels"):
        await layer.send("mixed", {"type": "sent"})
        await layer.group_send("room", {"type": "grouped"})
        assert [(await layer.receive("mixed"))["type"] for _ in range(2)] == ["sent", "grouped"]
    assert "undecodable" in caplog.text


async def test_group_membership_expires_group_expiry_after_the_last_group_add(
    make_layer: Factory, redis_client: Any
) -> None:
    layer = make_layer(group_expiry=1)
    await layer.group_add("brief", "member")
    ttl = redis_client.pttl("asgi:g:{brief}")
    assert 0 < ttl <= 1000
    await asyncio.sleep(1.2)
    await layer.group_add("brief", "other")
    await layer.group_send("brief", {"type": "hi"})
    await layer.send("member", {"type": "marker"})
    assert (await layer.receive("member"))["type"] == "marker"
    assert (await layer.receive("other"))["type"] == "hi"


async def test_flush_deletes_the_layers_keys_only(
    layer: RedisChannelLayer, redis_client: Any
) -> None:
    redis_client.set("asgi:other", "kept")
    await layer.send("chan", {"type": "x"})
    await layer.group_add("room", "chan")
    await layer.flush()
    assert redis_client.exists("asgi:c:{chan}", "asgi:g:{room}") == 0
    assert redis_client.get("asgi:other") == b"kept"
    await layer.send("chan", {"type": "after-flush"})
    assert (await layer.receive("chan"))["type"] == "after-flush"


async def test_two_layers_with_different_prefixes_do_not_meet(make_layer: Factory) -> None:
    one, two = make_layer(prefix="one"), make_layer(prefix="two")
    await one.send("chan", {"type": "one"})
    await two.send("chan", {"type": "two"})
    assert (await two.receive("chan"))["type"] == "two"
    assert (await one.receive("chan"))["type"] == "one"


async def test_json_and_encrypted_layers_round_trip(make_layer: Factory) -> None:
    plain = make_layer(serializer_format="json", prefix="j")
    await plain.send("chan", {"type": "x", "n": [1, 2]})
    assert await plain.receive("chan") == {"type": "x", "n": [1, 2]}
    secret = make_layer(symmetric_encryption_keys=["new", "old"], prefix="e")
    older = make_layer(symmetric_encryption_keys=["old"], prefix="e")
    await older.send("chan", {"type": "rotated"})
    assert (await secret.receive("chan"))["type"] == "rotated"


async def test_concurrent_receivers_get_each_message_once(layer: RedisChannelLayer) -> None:
    got: list[int] = []

    async def consume() -> None:
        while len(got) < 10:
            got.append((await layer.receive("shared"))["n"])

    workers = [asyncio.ensure_future(consume()) for _ in range(4)]
    for number in range(10):
        await layer.send("shared", {"type": "n", "n": number})
    while len(got) < 10:
        await asyncio.sleep(0.01)
    for worker in workers:
        worker.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    assert sorted(got) == list(range(10))


async def test_two_layers_share_a_channel_and_deliver_at_most_once(make_layer: Factory) -> None:
    one, two = make_layer(), make_layer()
    for number in range(20):
        await one.send("work", {"type": "n", "n": number})
    received: list[int] = []

    async def drain(layer: RedisChannelLayer) -> None:
        while len(received) < 20:
            received.append((await layer.receive("work"))["n"])

    tasks = [asyncio.ensure_future(drain(one)), asyncio.ensure_future(drain(two))]
    while len(received) < 20:
        await asyncio.sleep(0.01)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert sorted(received) == list(range(20))


async def test_a_thousand_cancelled_receives_lose_no_message(layer: RedisChannelLayer) -> None:
    channel = await layer.new_channel()
    sent, received = 0, []
    for round_ in range(1000):
        task = asyncio.ensure_future(layer.receive(channel))
        if round_ % 10 == 0:
            await layer.send(channel, {"type": "n", "n": sent})
            sent += 1
        for _ in range(round_ % 4):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            received.append((await task)["n"])  # it won the race with the cancel
    while len(received) < sent:
        received.append((await layer.receive(channel))["n"])
    assert received == list(range(sent))


async def test_eight_senders_never_fill_a_channel_past_its_capacity(
    make_layer: Factory, redis_client: Any
) -> None:
    layer = make_layer(capacity=100)
    per_sender, senders = 100, 8
    peak = 0
    done = asyncio.Event()

    async def sender(number: int) -> None:
        for index in range(per_sender):
            while True:
                try:
                    await layer.send("bounded", {"type": "n", "id": f"{number}-{index}"})
                    break
                except ChannelFull:
                    await asyncio.sleep(0.001)

    async def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, await asyncio.to_thread(redis_client.llen, "asgi:c:{bounded}"))
            await asyncio.sleep(0.002)

    watcher = asyncio.ensure_future(watch())
    sending = asyncio.gather(*(sender(n) for n in range(senders)))
    await asyncio.sleep(0.05)  # let the channel fill up first
    received = [(await layer.receive("bounded"))["id"] for _ in range(per_sender * senders)]
    await sending
    done.set()
    await watcher
    assert len(received) == len(set(received)) == per_sender * senders
    assert 0 < peak <= 100


async def test_a_group_send_costs_one_unit_of_a_process_capacity(make_layer: Factory) -> None:
    layer = make_layer(capacity=5)
    members = [await layer.new_channel() for _ in range(20)]
    for member in members:
        await layer.group_add("crowd", member)
    for number in range(5):  # 100 deliveries, 5 elements of the process's list
        await layer.group_send("crowd", {"type": "n", "n": number})
    for member in members:
        assert [(await layer.receive(member))["n"] for _ in range(5)] == list(range(5))
