"""Message formats: the registry channels_redis documents (``serializer_format`` names a
registered class), and bytes read from Redis decoded only in the layer's own format."""

from __future__ import annotations

import builtins
import json
import logging
import pickle
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import pytest
from django.core.exceptions import ImproperlyConfigured

from djredis.channels import RedisChannelLayer
from djredis.channels.serializers import BaseMessageSerializer, registry

pytestmark = [pytest.mark.timeout(60)]

Factory = Callable[..., RedisChannelLayer]


class ReversedJSON(BaseMessageSerializer):
    """A format of the test's own: JSON, bytes reversed."""

    def as_bytes(self, message: Any) -> bytes:
        return json.dumps(message).encode()[::-1]

    def from_bytes(self, data: bytes) -> Any:
        return json.loads(data[::-1])


class DuckTyped:
    """channels_redis's other form: any class with serialize/deserialize taking its kwargs."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs

    def serialize(self, message: Any) -> bytes:
        return b"duck:" + json.dumps(message).encode()

    def deserialize(self, message: bytes) -> Any:
        if not message.startswith(b"duck:"):
            raise ValueError("not a duck")
        return json.loads(message[5:])


@pytest.fixture
def formats() -> Iterator[None]:
    """Leave the registry as it was."""
    saved = dict(registry._registry)
    yield
    registry._registry.clear()
    registry._registry.update(saved)


def _element(payload: bytes, local_part: str = "") -> bytes:
    deadline = int(time.time() * 1000) + 60_000
    return f"{deadline}|{local_part}|".encode() + payload


@pytest.mark.asyncio
async def test_a_registered_format_is_used_by_serializer_format(
    formats: None, make_layer: Factory, redis_client: Any
) -> None:
    registry.register_serializer("reversed-json", ReversedJSON)
    layer = make_layer(serializer_format="reversed-json")
    await layer.send("custom", {"type": "x", "n": 1})
    (stored,) = redis_client.lrange("asgi:c:{custom}", 0, -1)
    assert stored.split(b"|", 2)[2] == json.dumps({"type": "x", "n": 1}).encode()[::-1]
    assert await layer.receive("custom") == {"type": "x", "n": 1}


@pytest.mark.asyncio
async def test_a_duck_typed_serializer_gets_channels_redis_keyword_arguments(
    formats: None, make_layer: Factory
) -> None:
    registry.register_serializer("duck", DuckTyped)
    layer = make_layer(serializer_format="duck", expiry=30)
    serializer: Any = layer.settings.serializer
    assert serializer.kwargs == {
        "symmetric_encryption_keys": None,
        "random_prefix_length": 0,
        "expiry": 30.0,
    }
    await layer.send("duck", {"type": "quack"})
    assert await layer.receive("duck") == {"type": "quack"}


@pytest.mark.asyncio
async def test_a_registered_format_is_encrypted_by_the_base_class(
    formats: None, make_layer: Factory, redis_client: Any
) -> None:
    registry.register_serializer("reversed-json", ReversedJSON)
    layer = make_layer(serializer_format="reversed-json", symmetric_encryption_keys=["k"])
    await layer.send("secret", {"type": "x", "text": "plain words"})
    (stored,) = redis_client.lrange("asgi:c:{secret}", 0, -1)
    assert b"plain words"[::-1] not in stored
    assert (await layer.receive("secret"))["text"] == "plain words"


def test_an_unregistered_format_is_improperly_configured(hosts: list[Any]) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"serializer_format.*'json'.*'msgpack'"):
        RedisChannelLayer(hosts=hosts, serializer_format="pickle")


@pytest.mark.parametrize("bad", [object, int, "json", None])
def test_registering_a_class_without_the_methods_raises_type_error(formats: None, bad: Any) -> None:
    with pytest.raises(TypeError):
        registry.register_serializer("bad", bad)


class _Exploit:
    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, ("import builtins; builtins.DJREDIS_UNPICKLED = True",))


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("config", "foreign"),
    [
        ({}, pickle.dumps({"type": "x", "boom": _Exploit()})),
        ({"serializer_format": "json"}, pickle.dumps({"type": "x", "boom": _Exploit()})),
        ({"serializer_format": "json"}, msgpack.packb({"type": "msgpack"})),
        ({}, json.dumps({"type": "json"}).encode()),
        ({"symmetric_encryption_keys": ["k"]}, msgpack.packb({"type": "unencrypted"})),
    ],
    ids=["msgpack-pickle", "json-pickle", "json-msgpack", "msgpack-json", "encrypted-plain"],
)
async def test_bytes_in_another_format_are_dropped_never_decoded(
    make_layer: Factory,
    redis_client: Any,
    caplog: pytest.LogCaptureFixture,
    config: dict[str, Any],
    foreign: bytes,
) -> None:
    layer = make_layer(**config)
    redis_client.rpush("asgi:c:{inbox}", _element(foreign))  # written by an attacker
    await layer.send("inbox", {"type": "genuine"})
    with caplog.at_level(logging.WARNING, logger="djredis.channels"):
        assert await layer.receive("inbox") == {"type": "genuine"}
    assert "undecodable" in caplog.text
    assert not hasattr(builtins, "DJREDIS_UNPICKLED")
