"""The channel layer's CONFIG: channels_redis's keys as users write them, and clear errors."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from hypothesis import given
from hypothesis import strategies as st

from djredis._routing.cluster import ClusterGroup
from djredis._routing.servers import SentinelGroup, ServerGroup
from djredis.channels import RedisChannelLayer
from djredis.channels.config import read_layer_config
from djredis.channels.operations import HashRing, channel_key, group_key
from tests._listener import silent_port

NAMES = st.from_regex(r"\A[a-zA-Z0-9\-_.]{1,99}\Z")


def test_defaults_match_channels_redis() -> None:
    layer = RedisChannelLayer()
    assert (layer.prefix, layer.expiry, layer.group_expiry, layer.capacity) == (
        "asgi",
        60,
        86400,
        100,
    )
    assert layer.extensions == ["groups", "flush"]
    (shard,) = layer.settings.shards
    assert isinstance(shard, ServerGroup)
    assert shard.primary.address == ("localhost", 6379)


@pytest.mark.parametrize(
    ("hosts", "kind"),
    [
        ([("redis.example", 6380)], ServerGroup),
        (["redis://:pw@redis.example:6380/2"], ServerGroup),
        (["rediss://redis.example:6380"], ServerGroup),
        ([{"address": "redis://redis.example:6380", "password": "pw"}], ServerGroup),
        ([{"host": "redis.example", "port": 6380, "db": 1}], ServerGroup),
        ([{"sentinels": [("s1", 26379), ("s2", 26379)], "master_name": "mymaster"}], SentinelGroup),
        (["redis+sentinel://s1:26379,s2:26379/mymaster/0"], SentinelGroup),
        (["redis+cluster://node1:7000,node2:7001"], ClusterGroup),
    ],
)
def test_hosts_take_every_form_channels_redis_takes(hosts: Any, kind: type) -> None:
    (shard,) = read_layer_config({"hosts": hosts}).shards
    assert isinstance(shard, kind)


def test_the_sentinel_dict_passes_sentinel_kwargs_and_the_password() -> None:
    settings = read_layer_config(
        {
            "hosts": [
                {
                    "sentinels": [("s1", 26379)],
                    "master_name": "svc",
                    "sentinel_kwargs": {"password": "sentinel-secret"},
                    "password": "data-secret",
                    "db": 2,
                }
            ]
        }
    )
    (shard,) = settings.shards
    assert isinstance(shard, SentinelGroup)
    assert shard._settings.node.kwargs()["password"] == "data-secret"
    assert shard._settings.sentinels[0].kwargs()["password"] == "sentinel-secret"


def test_several_hosts_are_several_shards() -> None:
    settings = read_layer_config({"hosts": ["redis://a:6379", ("b", 6379), {"address": "c"}]})
    assert len(settings.shards) == 3


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"hostz": []}, "'hostz'"),
        ({"hostz": []}, "did you mean 'hosts'"),
        ({"hosts": "redis://localhost"}, "['hosts']"),
        ({"hosts": [42]}, "['hosts'][0]"),
        ({"hosts": [("a", "port")]}, "['hosts'][0]"),
        ({"hosts": [{"db": 1}]}, "['hosts'][0]"),
        ({"hosts": [{"sentinels": [("s", 1)]}]}, "master_name"),
        ({"expiry": 0}, "['expiry']"),
        ({"group_expiry": "1d"}, "['group_expiry']"),
        ({"capacity": 0}, "['capacity']"),
        ({"capacity": True}, "['capacity']"),
        ({"channel_capacity": {"x*": -1}}, "['channel_capacity']"),
        ({"channel_capacity": [("x", 1)]}, "['channel_capacity']"),
        ({"prefix": "a{b}"}, "['prefix']"),
        ({"prefix": "a*"}, "['prefix']"),
        ({"serializer_format": "pickle"}, "['serializer_format']"),
        ({"symmetric_encryption_keys": "one-key"}, "['symmetric_encryption_keys']"),
        ({"on_disconnect": "not callable"}, "['on_disconnect']"),
        ({"options": {"NOT_AN_OPTION": 1}}, "NOT_AN_OPTION"),
    ],
)
def test_bad_config_raises_improperly_configured_naming_the_key(
    config: dict[str, Any], named: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=re.escape(named)):
        read_layer_config(config)


def test_channels_redis_keys_are_accepted_and_its_callbacks_kept() -> None:
    layer = RedisChannelLayer(random_prefix_length=12, on_disconnect=print, on_reconnect=repr)
    assert (layer.settings.on_disconnect, layer.settings.on_reconnect) == (print, repr)
    # random_prefix_length only made channels_redis's sorted-set members unique: no effect.
    plain = RedisChannelLayer(on_disconnect=print, on_reconnect=repr)
    assert (layer.prefix, layer.expiry, layer.capacity) == (plain.prefix, plain.expiry, 100)


def test_nothing_connects_at_construction() -> None:
    with silent_port() as port:
        RedisChannelLayer(hosts=[("127.0.0.1", port.port)])
        assert not port.dialed()


@given(NAMES)
def test_channel_and_group_keys_hash_by_the_name_alone(name: str) -> None:
    key = channel_key("asgi", name)
    assert key.endswith("{" + name + "}")
    assert key.count("{") == 1
    assert group_key("asgi", name).count("{") == 1


@given(st.integers(min_value=1, max_value=8), st.lists(NAMES, min_size=1, max_size=30))
def test_the_ring_puts_a_name_on_the_same_shard_every_time(shards: int, names: list[str]) -> None:
    ring, again = HashRing(shards), HashRing(shards)
    for name in names:
        assert 0 <= ring.shard(name) < shards
        assert ring.shard(name) == again.shard(name)


@given(st.text(alphabet="abcdefgh.-_", min_size=1, max_size=20))
def test_adding_a_shard_moves_few_names(stem: str) -> None:
    names = [f"{stem}{number}" for number in range(200)]
    before, after = HashRing(4), HashRing(5)
    moved = sum(before.shard(name) != after.shard(name) for name in names)
    assert moved < len(names) // 2  # a modulo ring would move ~80%
