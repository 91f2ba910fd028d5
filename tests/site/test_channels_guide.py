"""The guide's WebSocket chat on djredis.channels.RedisChannelLayer, through Channels' own
test communicator: the guide's consumer unchanged, a JSON consumer and a sync consumer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from channels.layers import channel_layers
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from tests._servers import RedisServer
from tests.channels_app.routing import websocket_urlpatterns

# Channels' consumers close stale database connections around every message
# (channels.db.aclose_old_connections); once an earlier test has opened one, that needs DB access.
pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60), pytest.mark.django_db(transaction=True)]


class _User:
    username = "alice"


@pytest.fixture(autouse=True)
def chat_layer(settings: Any, redis_server: RedisServer) -> Iterator[None]:
    """The guide's CHANNEL_LAYERS with the BACKEND swapped for djredis's."""
    client = redis_server.client()
    client.flushdb()
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "djredis.channels.RedisChannelLayer",
            "CONFIG": {
                "hosts": [("127.0.0.1", redis_server.port)],
                "capacity": 1500,
                "expiry": 10,
            },
        },
    }
    yield
    client.close()


def _communicator(path: str, user: Any) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    communicator.scope["user"] = user
    return communicator


async def test_the_guides_chat_consumer_broadcasts_to_the_room() -> None:
    alice = _communicator("/ws/chat/lobby/", _User())
    bob = _communicator("/ws/chat/lobby/", AnonymousUser())
    elsewhere = _communicator("/ws/chat/other/", AnonymousUser())
    for communicator in (alice, bob, elsewhere):
        connected, _ = await communicator.connect()
        assert connected
    await alice.send_to(text_data=json.dumps({"message": "hello"}))
    for communicator in (alice, bob):
        assert json.loads(await communicator.receive_from()) == {
            "message": "hello",
            "sender": "alice",
        }
    assert await elsewhere.receive_nothing()
    await bob.disconnect()
    await alice.send_to(text_data=json.dumps({"message": "still here?"}))
    assert json.loads(await alice.receive_from())["message"] == "still here?"
    layer = channel_layers["default"]
    assert type(layer).__module__ == "djredis.channels.layer"
    for communicator in (alice, elsewhere):
        await communicator.disconnect()
    await layer.close_pools()


async def test_a_json_consumer_using_async_to_sync_chats() -> None:
    first = _communicator("/ws/json/room/", AnonymousUser())
    second = _communicator("/ws/json/room/", AnonymousUser())
    assert (await first.connect())[0]
    assert (await second.connect())[0]
    await first.send_json_to({"message": "hi"})
    assert await first.receive_json_from() == {"message": "hi"}
    assert await second.receive_json_from() == {"message": "hi"}
    await first.disconnect()
    await second.disconnect()
    await channel_layers["default"].close_pools()


async def test_a_sync_consumer_sends_to_its_own_channel() -> None:
    echo = _communicator("/ws/echo/", AnonymousUser())
    assert (await echo.connect())[0]
    for text in ("one", "two", "three"):
        await echo.send_to(text_data=text)
        assert await echo.receive_from() == text
    await echo.disconnect()
    await channel_layers["default"].close_pools()
