"""Delivery guarantees beyond the spec's wording, on every topology (standalone; replicas,
Sentinel and Cluster marked slow): nothing Redis accepted is lost, stranded in a process's
memory or taken away from the receive it was meant for."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from redis.cluster import RedisCluster

from djredis.channels import RedisChannelLayer

pytestmark = [pytest.mark.topologies, pytest.mark.asyncio, pytest.mark.timeout(60)]

Factory = Callable[..., RedisChannelLayer]


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until ``condition()`` holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition never held")
        await asyncio.sleep(0.01)


async def blocked_readers(redis_client: Any) -> int:
    """Return how many clients are blocked in a pop, on every data node."""
    if isinstance(redis_client, RedisCluster):
        info = await asyncio.to_thread(redis_client.info, "clients", target_nodes="all")
    else:
        info = await asyncio.to_thread(redis_client.info, "clients")
    nodes = info.values() if "blocked_clients" not in info else [info]
    return sum(int(node.get("blocked_clients", 0)) for node in nodes if isinstance(node, dict))


# -- a plain channel's backlog stays in Redis -------------------------------------------------


async def test_a_plain_channels_backlog_stays_in_redis_until_each_receive(
    make_layer: Factory, redis_client: Any
) -> None:
    worker = make_layer()
    for number in range(20):
        await worker.send("tasks", {"type": "n", "n": number})
    assert (await worker.receive("tasks"))["n"] == 0
    for _ in range(5):  # the worker's reader had every chance to pop more
        await asyncio.sleep(0.01)
    assert redis_client.llen("asgi:c:{tasks}") == 19


async def test_competing_workers_share_the_backlog_a_finished_worker_left(
    make_layer: Factory,
) -> None:
    first, second = make_layer(), make_layer()  # two worker processes
    for number in range(10):
        await first.send("tasks", {"type": "n", "n": number})
    assert (await first.receive("tasks"))["n"] == 0
    await first.close_pools()  # the first worker exits after one message
    got = [(await asyncio.wait_for(second.receive("tasks"), 5))["n"] for _ in range(9)]
    assert got == list(range(1, 10))


async def test_workers_take_turns_on_one_backlog(make_layer: Factory) -> None:
    first, second = make_layer(), make_layer()
    for number in range(6):
        await first.send("tasks", {"type": "n", "n": number})
    taken = []
    for worker in (first, second, first, second, first, second):
        taken.append((await asyncio.wait_for(worker.receive("tasks"), 5))["n"])
    assert taken == list(range(6))


async def test_a_message_popped_for_a_cancelled_receive_goes_back_to_redis(
    make_layer: Factory, redis_client: Any
) -> None:
    layer, other = make_layer(), make_layer()
    waiting = asyncio.ensure_future(layer.receive("jobs"))
    deadline = time.monotonic() + 5
    while await blocked_readers(redis_client) < 1:  # its pop is waiting in Redis
        assert time.monotonic() < deadline, "the reader never blocked"
        await asyncio.sleep(0.01)
    waiting.cancel()
    await layer.send("jobs", {"type": "job", "n": 1})  # popped for nobody
    await until(lambda: redis_client.llen("asgi:c:{jobs}") == 1)
    assert (await asyncio.wait_for(other.receive("jobs"), 5))["n"] == 1
    await layer.send("jobs", {"type": "job", "n": 2})
    assert (await asyncio.wait_for(layer.receive("jobs"), 5))["n"] == 2


# -- a plain channel's fast path (LPOP on the loop's multiplexed connection) ------------------


async def test_a_plain_receive_with_a_backlog_pops_one_message_without_the_blocking_reader(
    make_layer: Factory, redis_client: Any
) -> None:
    layer = make_layer()
    for number in range(5):
        await layer.send("work", {"type": "n", "n": number})
    got = [(await layer.receive("work"))["n"] for _ in range(3)]
    assert got == [0, 1, 2]
    assert redis_client.llen("asgi:c:{work}") == 2  # one message per receive, no more
    reader = layer._readers[asyncio.get_running_loop()]["work"]
    assert (reader.fast_pops, reader.pops) == (3, 0)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("competing", [False, True], ids=["one-consumer", "competing"])
async def test_plain_receives_cancelled_at_random_points_lose_nothing(
    make_layer: Factory, redis_client: Any, seed: int, competing: bool
) -> None:
    """A receive cancelled before, while or after its LPOP is written, or after the reply
    came: the message goes to the next receive or back to the head of the list. One
    consumer gets every message in order; receives competing on one loop get every
    message once (which of two concurrent receives gets which is not an order)."""
    chance = random.Random(seed)
    layer = make_layer(capacity=1000)
    total = 300
    for number in range(total):
        await layer.send("backlog", {"type": "n", "n": number})
    received: list[int] = []
    while len(received) < total - 2:  # a receive never waits for a message never sent
        receives = [asyncio.ensure_future(layer.receive("backlog"))]
        if competing and chance.random() < 0.3:  # a second receive on the same loop
            receives.append(asyncio.ensure_future(layer.receive("backlog")))
        for _ in range(chance.randrange(6)):
            await asyncio.sleep(0)
        if chance.random() < 0.2:
            await asyncio.sleep(chance.random() / 1000)
        receives[0].cancel()
        for task in receives:
            with contextlib.suppress(asyncio.CancelledError):
                received.append((await asyncio.wait_for(task, 5))["n"])
    while len(received) < total:
        received.append((await asyncio.wait_for(layer.receive("backlog"), 5))["n"])
    assert (sorted(received) if competing else received) == list(range(total))
    await until(lambda: redis_client.llen("asgi:c:{backlog}") == 0)


async def test_an_event_loop_ending_after_a_cancelled_plain_receive_strands_nothing(
    make_layer: Factory, redis_client: Any
) -> None:
    """``asyncio.run`` (or ``async_to_sync``) ending right after a receive was cancelled
    with its LPOP written: the reply is awaited and the message given back first."""
    layer = make_layer(capacity=1000)
    total, loops = 150, 60
    for number in range(total):
        await layer.send("short", {"type": "n", "n": number})
    received: list[int] = []

    async def receive_then_cancel_one(turns: int) -> None:
        received.append((await layer.receive("short"))["n"])  # the fast path is ready
        task = asyncio.ensure_future(layer.receive("short"))
        for _ in range(turns):  # 0: cancelled with its LPOP written, its reply not read
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            received.append((await task)["n"])

    for turns in [0, 1, 2] * (loops // 3):  # each asyncio.run is a new loop that ends at once
        thread = threading.Thread(target=asyncio.run, args=(receive_then_cancel_one(turns),))
        thread.start()
        await asyncio.to_thread(thread.join)
    left = redis_client.llen("asgi:c:{short}")
    assert len(received) + left == total
    rest = [(await layer.receive("short"))["n"] for _ in range(left)]
    assert sorted(received + rest) == list(range(total))


async def test_the_fast_path_resumes_after_an_error_reply(
    make_layer: Factory, redis_client: Any
) -> None:
    layer = make_layer()
    await layer.send("work", {"type": "n", "n": 0})
    assert (await layer.receive("work"))["n"] == 0
    reader = layer._readers[asyncio.get_running_loop()]["work"]
    redis_client.set("asgi:c:{work}", "not a list")  # LPOP and BLMPOP answer WRONGTYPE
    waiting = asyncio.ensure_future(layer.receive("work"))
    await asyncio.sleep(0.2)
    redis_client.delete("asgi:c:{work}")
    await layer.send("work", {"type": "n", "n": 1})
    assert (await asyncio.wait_for(waiting, 5))["n"] == 1  # the blocking reader's
    await until(lambda: not reader._reading())
    for number in range(2, 5):
        await layer.send("work", {"type": "n", "n": number})
    before = reader.fast_pops
    assert [(await layer.receive("work"))["n"] for _ in range(3)] == [2, 3, 4]
    assert reader.fast_pops - before == 3


# -- process-local mailboxes ------------------------------------------------------------------


@pytest.mark.parametrize("plain", [False, True], ids=["process-local", "plain"])
async def test_a_message_popped_as_the_readers_stop_reaches_the_next_receive(
    make_layer: Factory, redis_client: Any, plain: bool
) -> None:
    """Redis popped a message for a reader whose loop is stuck (its reply unread), then the
    loop's readers are stopped (``close_pools``): the pop is unblocked and its reply taken
    instead of being dropped with the connection; the next receive, on another loop, gets
    it (a process-local one from the process's mailboxes, a plain one from Redis)."""
    layer = make_layer()
    channel = "jobs" if plain else await layer.new_channel()
    blocked, sent = threading.Event(), threading.Event()

    async def wait_then_stop() -> None:
        waiting = asyncio.ensure_future(layer.receive(channel))
        deadline = time.monotonic() + 5
        while await blocked_readers(redis_client) < 1:
            assert time.monotonic() < deadline, "the reader never blocked"
            await asyncio.sleep(0.01)
        blocked.set()
        sent.wait(5)
        time.sleep(0.2)  # the loop is stuck: Redis pops for it, the reply waits unread
        waiting.cancel()
        await layer.close_pools()

    thread = threading.Thread(target=asyncio.run, args=(wait_then_stop(),))
    thread.start()
    await asyncio.to_thread(blocked.wait, 5)
    await layer.send(channel, {"type": "x", "n": 1})
    sent.set()
    await asyncio.to_thread(thread.join)
    assert (await asyncio.wait_for(layer.receive(channel), 5))["n"] == 1


@pytest.mark.parametrize("expiry", [2, pytest.param(5, marks=pytest.mark.slow)])
async def test_a_message_for_a_channel_unread_for_expiry_survives_the_sweep(
    make_layer: Factory, expiry: int
) -> None:
    layer = make_layer(expiry=expiry)
    slow, busy = await layer.new_channel(), await layer.new_channel()
    ticks: list[Any] = []

    async def consume() -> None:  # keeps the process's reader popping (and sweeping)
        while True:
            ticks.append(await layer.receive(busy))

    async def tick() -> None:
        count = len(ticks)
        await layer.send(busy, {"type": "tick"})
        await until(lambda: len(ticks) > count)

    consumer = asyncio.ensure_future(consume())
    try:
        await layer.send(slow, {"type": "stale"})  # fetched, never read: it expires
        await tick()
        await asyncio.sleep(expiry - 0.3)
        await layer.send(slow, {"type": "fresh"})  # fetched into the same mailbox
        await tick()
        await asyncio.sleep(1.1)  # the slow channel is now unread for > expiry; the
        await tick()  # reader sweeps at most once a second: this pop sweeps
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
    assert (await asyncio.wait_for(layer.receive(slow), 2))["type"] == "fresh"


async def test_the_sweep_drops_expired_messages_and_their_empty_mailboxes(
    make_layer: Factory,
) -> None:
    layer = make_layer(expiry=1)
    gone, busy = await layer.new_channel(), await layer.new_channel()
    await layer.send(gone, {"type": "never-read"})
    await layer.send(busy, {"type": "tick"})
    assert (await layer.receive(busy))["type"] == "tick"  # the reader fetched both
    inbox = layer._inboxes[layer.non_local_name(gone)]
    assert gone in inbox.mailboxes
    await asyncio.sleep(1.2)
    waiting = asyncio.ensure_future(layer.receive(busy))
    await layer.send(busy, {"type": "tick"})
    assert (await asyncio.wait_for(waiting, 5))["type"] == "tick"
    assert gone not in inbox.mailboxes


# -- groups -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [{}, {"channel_capacity": {"never-*": 5}}],
    ids=["one-script", "script-per-list"],
)
async def test_a_member_whose_messages_expired_unread_stays_in_its_groups(
    make_layer: Factory, redis_client: Any, extra: dict[str, Any]
) -> None:
    layer = make_layer(expiry=1, **extra)
    slow_client = await layer.new_channel()
    members = [slow_client, "slow-worker", "alive"]
    for group in ("room", "lobby"):
        for member in members:
            await layer.group_add(group, member)
    await layer.group_send("room", {"type": "one"})
    assert (await layer.receive("alive"))["type"] == "one"
    await asyncio.sleep(1.2)  # the slow members' message expired unread
    await layer.group_send("room", {"type": "two"})
    await layer.group_send("lobby", {"type": "three"})
    for group in ("room", "lobby"):
        for member in members:
            assert redis_client.zscore(f"asgi:g:{{{group}}}", member) is not None
    for member in members:
        assert [(await layer.receive(member))["type"] for _ in range(2)] == ["two", "three"]


# -- names ------------------------------------------------------------------------------------


async def test_receive_on_another_layers_process_local_channel_fails_at_once(
    make_layer: Factory,
) -> None:
    layer, other = make_layer(), make_layer()
    for foreign in (await other.new_channel(), "not-our-prefix!x"):
        with pytest.raises(AssertionError, match="client prefix"):
            await asyncio.wait_for(layer.receive(foreign), 2)
    own = await layer.new_channel("websocket")
    await other.send(own, {"type": "x"})
    assert (await asyncio.wait_for(layer.receive(own), 5))["type"] == "x"
