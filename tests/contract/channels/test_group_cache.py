"""The group's list cache (``<prefix>:g:{group}:lists``) never makes group_send miss a
member or reach a former one, whichever layer changed the membership.

A model (a set of members) is run against two layers on one server: one sends through the
single-script path that builds and reads the cache, the other (``channel_capacity`` set)
through the read-the-members path. Every change of membership from either must be seen by
the next ``group_send`` of both.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from djredis.channels import RedisChannelLayer
from tests._servers import RedisServer

pytestmark = pytest.mark.timeout(300)

PREFIX = "gcache"
PLAIN = ["plain-0", "plain-1"]
LOCAL_PARTS = ["a", "b"]  # two local channels of one process: one list

# (verb, which layer, which channel): add, discard or send from layer 0 (cached path) or
# layer 1 (members path).
steps = st.lists(
    st.tuples(
        st.sampled_from(["add", "discard", "send"]),
        st.integers(0, 1),
        st.integers(0, len(PLAIN) + len(LOCAL_PARTS) - 1),
    ),
    min_size=1,
    max_size=14,
)


async def _scenario(url: str, script: list[tuple[str, int, int]]) -> None:
    cached = RedisChannelLayer(hosts=[url], prefix=PREFIX, capacity=1000)
    spread = RedisChannelLayer(
        hosts=[url], prefix=PREFIX, capacity=1000, channel_capacity={"never-*": 5}
    )
    await cached.flush()
    base = (await cached.new_channel()).split("!")[0] + "!"
    channels = PLAIN + [base + part for part in LOCAL_PARTS]
    members: set[str] = set()
    expected: dict[str, list[int]] = {name: [] for name in channels}
    try:
        for number, (verb, which, index) in enumerate(script):
            layer = (cached, spread)[which]
            channel = channels[index]
            if verb == "add":
                await layer.group_add("room", channel)
                members.add(channel)
            elif verb == "discard":
                await layer.group_discard("room", channel)
                members.discard(channel)
            else:
                await layer.group_send("room", {"type": "m", "n": number})
                for name in members:
                    expected[name].append(number)
        for name in channels:
            await cached.send(name, {"type": "end"})
        for name in channels:
            got: list[Any] = []
            while (message := await asyncio.wait_for(cached.receive(name), 5))["type"] != "end":
                got.append(message["n"])
            assert got == expected[name], (name, script)
    finally:
        await cached.flush()
        await cached.close_pools()
        await spread.close_pools()


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(script=steps)
# A member leaves (or joins) through either layer after the cache was built.
@example([("add", 0, 0), ("send", 0, 0), ("discard", 1, 0), ("send", 0, 0)])
@example([("add", 0, 2), ("add", 0, 3), ("send", 0, 0), ("discard", 0, 3), ("send", 0, 0)])
@example([("add", 1, 0), ("send", 0, 0), ("add", 1, 1), ("send", 0, 0), ("send", 1, 0)])
def test_group_send_reaches_exactly_the_members_after_any_change(
    redis_server: RedisServer, script: list[tuple[str, int, int]]
) -> None:
    asyncio.run(_scenario(redis_server.url(3), script))


def test_the_list_cache_expires_with_its_group(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url(3))

    async def scenario() -> None:
        prefix = f"{PREFIX}-ttl"
        layer = RedisChannelLayer(hosts=[redis_server.url(3)], prefix=prefix, group_expiry=5)
        await layer.flush()
        await layer.group_add("room", "member")
        await layer.group_send("room", {"type": "x"})  # builds the cache
        group, cache = f"{prefix}:g:{{room}}", f"{prefix}:g:{{room}}:lists"
        assert client.exists(cache) == 1
        # The group's TTL is read first: the cache's, read later, can only be smaller if
        # the cache expires no later than the group.
        group_ttl = client.pttl(group)
        assert 0 < client.pttl(cache) <= group_ttl <= 5000
        await layer.group_add("room", "member")  # refreshes the group, not the cache
        group_ttl = client.pttl(group)
        assert client.pttl(cache) <= group_ttl
        await layer.group_add("room", "newcomer")  # a new member voids the cache
        assert client.exists(cache) == 0
        await layer.flush()
        await layer.close_pools()

    asyncio.run(scenario())
    client.close()


def test_a_garbled_list_cache_is_rebuilt_from_the_group(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url(3))

    async def scenario() -> None:
        prefix = f"{PREFIX}-garbled"
        layer = RedisChannelLayer(hosts=[redis_server.url(3)], prefix=prefix)
        await layer.flush()
        await layer.group_add("room", "member")
        await layer.group_send("room", {"type": "first"})  # builds the cache
        cache = f"{prefix}:g:{{room}}:lists"
        client.hset(cache, "member", "garbage")  # written by something else
        await layer.group_send("room", {"type": "second"})
        assert [(await layer.receive("member"))["type"] for _ in range(2)] == ["first", "second"]
        assert client.hget(cache, "member") == b"1|"
        await layer.flush()
        await layer.close_pools()

    asyncio.run(scenario())
    client.close()
