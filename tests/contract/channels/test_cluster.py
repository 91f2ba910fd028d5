"""The channel layer on a real 3-primary Redis Cluster: keys in one slot per script, and
group_send's scripts counted."""

from __future__ import annotations

from typing import Any

import pytest

from djredis._routing.cluster import slot_of
from djredis.channels import RedisChannelLayer
from tests._topologies import Cluster

pytestmark = [pytest.mark.asyncio, pytest.mark.slow, pytest.mark.timeout(120)]


async def test_group_send_runs_one_script_per_slot_among_the_members(
    cluster_topology: Cluster,
) -> None:
    cluster_topology.flush()
    layer = RedisChannelLayer(hosts=[cluster_topology.location])
    plain = [f"worker-{number}" for number in range(6)]
    local = [await layer.new_channel() for _ in range(30)]  # one list, one slot
    for name in plain + local:
        await layer.group_add("room", name)
    slots = {slot_of(f"asgi:c:{{{name}}}") for name in plain} | {
        slot_of(f"asgi:c:{{{local[0].split('!')[0]}!}}")
    }
    before = cluster_topology.commandstats().get("evalsha", 0)
    await layer.group_send("room", {"type": "hello"})
    after = cluster_topology.commandstats().get("evalsha", 0)
    assert after - before == 1 + len(slots)  # the members, then one per slot
    for name in plain + local:
        assert (await layer.receive(name))["type"] == "hello"
    await layer.flush()


async def test_every_key_of_the_layer_carries_a_hash_tag(
    cluster_topology: Cluster,
) -> None:
    cluster_topology.flush()
    layer = RedisChannelLayer(hosts=[cluster_topology.location])
    await layer.send("alpha", {"type": "x"})
    await layer.group_add("beta", "alpha")
    client: Any = cluster_topology.client()
    keys = sorted(k.decode() for k in client.keys("asgi:*", target_nodes="all"))
    client.close()
    assert keys == ["asgi:c:{alpha}", "asgi:g:{beta}"]
    assert (await layer.receive("alpha"))["type"] == "x"
    await layer.flush()
