"""The reference site's WebSocket chat (example/reference/consumers.py, routing.py, asgi.py)
on djredis.channels.RedisChannelLayer, against the site's own Redis.

Over HTTP: the chat pages. Over a real WebSocket to uvicorn: the guide's ChatConsumer
behind AuthMiddlewareStack, with the session cookie naming the sender. Through Channels'
WebsocketCommunicator: the site's ``reference.asgi.application`` on the site's settings, in
a process of its own (pytest's settings are not the site's). The browser test is in
test_example_site.py.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests._servers import RedisServer

from ._example import EXAMPLE_DIR, ExampleSite, Visitor
from .test_example_pages import text_of

CHAT_DB = 5  # reference/settings.py: CHANNEL_LAYERS on redis_db(5)


def test_chat_pages_show_the_guides_code_and_settings(site: str) -> None:
    """Show the consumer, the routing, asgi.py and CHANNEL_LAYERS on djredis's layer."""
    reply = Visitor(site).get("/chat/lobby/")
    assert reply.status == 200
    code = text_of(reply.text, "page-code")
    assert "class ChatConsumer(AsyncWebsocketConsumer):" in code
    assert "re_path(r'ws/chat/(?P<room_name>\\w+)/$'" in code
    assert "AuthMiddlewareStack(URLRouter(routing.websocket_urlpatterns))" in code
    settings_code = text_of(reply.text, "settings-code")
    assert "'BACKEND': 'djredis.channels.RedisChannelLayer'" in settings_code
    assert f"/{CHAT_DB}']" in settings_code
    assert "'capacity': 1500" in settings_code
    assert "/ws/chat/lobby/" in reply.text


def test_home_page_links_to_the_chat_rooms(site: str) -> None:
    """List the chat under "Real time" on the home page, and the rooms on /chat/."""
    visitor = Visitor(site)
    assert "<h2>Real time</h2>" in visitor.get("/").text
    rooms = visitor.get("/chat/").text
    for room in ("lobby", "redis", "django"):
        assert f'href="/chat/{room}/"' in rooms


def test_room_form_opens_the_room_or_explains_a_bad_name(site: str) -> None:
    """A valid name redirects to its room; one the routing's \\w+ refuses gets a message."""
    visitor = Visitor(site)
    reply = visitor.get("/chat/?room=team_42", follow=False)
    assert reply.status == 302
    assert reply.headers["location"] == "/chat/team_42/"
    bad = visitor.get("/chat/?room=no+spaces!")
    assert bad.status == 200
    assert "letters, digits and underscores" in bad.text
    assert visitor.get("/chat/no-dashes/").status == 404


async def _receive(socket: ClientConnection) -> dict[str, str]:
    return json.loads(await asyncio.wait_for(socket.recv(), timeout=10))  # type: ignore[no-any-return]


async def _nothing(socket: ClientConnection, seconds: float = 0.5) -> bool:
    try:
        await asyncio.wait_for(socket.recv(), timeout=seconds)
    except asyncio.TimeoutError:  # not the builtin before Python 3.11
        return True
    return False


def test_websocket_chat_through_uvicorn_names_the_signed_in_sender(
    example_site: ExampleSite, example_redis: RedisServer
) -> None:
    """A signed-in visitor's message reaches the room with their name; no other room."""
    demo = Visitor(example_site.base)
    demo.log_in()
    cookie = "; ".join(f"{c.name}={c.value}" for c in demo.cookies)
    ws_base = example_site.base.replace("http://", "ws://")
    room, other = f"r{uuid.uuid4().hex[:8]}", f"o{uuid.uuid4().hex[:8]}"

    async def chat() -> None:
        headers = {"Cookie": cookie, "Origin": example_site.base}
        async with (
            connect(f"{ws_base}/ws/chat/{room}/", additional_headers=headers) as signed_in,
            connect(f"{ws_base}/ws/chat/{room}/") as anonymous,
            connect(f"{ws_base}/ws/chat/{other}/") as elsewhere,
        ):
            await signed_in.send(json.dumps({"message": "hello from demo"}))
            expected = {"message": "hello from demo", "sender": "demo"}
            assert await _receive(signed_in) == expected
            assert await _receive(anonymous) == expected
            await anonymous.send(json.dumps({"message": "hi back"}))
            assert await _receive(signed_in) == {"message": "hi back", "sender": ""}
            assert await _nothing(elsewhere)
            # The room is a group of the site's layer, on the chat's database only.
            members = example_redis.client(CHAT_DB).zcard(f"asgi:g:{{chat_{room}}}")
            assert members == 2
            for db in range(CHAT_DB):
                assert not list(example_redis.client(db).scan_iter(match="asgi:*"))

    asyncio.run(chat())
    # The consumers' disconnect() leaves the group (group_discard); the server runs it after
    # the client has closed, so give it a moment.
    group = f"asgi:g:{{chat_{room}}}"
    deadline = time.monotonic() + 10
    while example_redis.client(CHAT_DB).zcard(group) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert example_redis.client(CHAT_DB).zcard(group) == 0


COMMUNICATOR_SCRIPT = r"""
import asyncio, json, sys
import django
django.setup()
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from reference.asgi import application

async def main():
    room = sys.argv[1]
    alice = WebsocketCommunicator(application, f"/ws/chat/{room}/")
    bob = WebsocketCommunicator(application, f"/ws/chat/{room}/")
    other = WebsocketCommunicator(application, f"/ws/chat/{room}_other/")
    for communicator in (alice, bob, other):
        connected, _ = await communicator.connect()
        assert connected
    await alice.send_to(text_data=json.dumps({"message": "via the communicator"}))
    received = [json.loads(await c.receive_from(timeout=10)) for c in (alice, bob)]
    quiet = await other.receive_nothing(timeout=0.5)
    layer = channel_layers["default"]
    for communicator in (alice, bob, other):
        await communicator.disconnect()
    await layer.close_pools()
    print(json.dumps({"received": received, "other_quiet": quiet,
                      "layer": f"{type(layer).__module__}.{type(layer).__name__}"}))

asyncio.run(main())
"""


def test_site_consumer_through_the_communicator_on_the_sites_settings(
    example_site: ExampleSite,
) -> None:
    """Run reference.asgi.application (AuthMiddlewareStack included) in WebsocketCommunicator
    with reference.settings: djredis's layer on the site's Redis carries the room."""
    room = f"c{uuid.uuid4().hex[:8]}"
    result = subprocess.run(
        [sys.executable, "-c", COMMUNICATOR_SCRIPT, room],
        cwd=EXAMPLE_DIR,
        env={**example_site.env, "DJANGO_SETTINGS_MODULE": "reference.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    expected = {"message": "via the communicator", "sender": ""}  # AnonymousUser.username
    assert outcome == {
        "received": [expected, expected],
        "other_quiet": True,
        "layer": "djredis.channels.layer.RedisChannelLayer",
    }


def test_a_malformed_message_closes_only_its_own_socket(example_site: ExampleSite) -> None:
    """The guide's consumer does ``json.loads(text_data)["message"]`` unguarded: garbage
    closes that one socket (uvicorn drops it: 1006, with the traceback in its log; a server
    that sends a close frame says 1011); the room keeps working for everyone else."""
    ws_base = example_site.base.replace("http://", "ws://")
    room = f"m{uuid.uuid4().hex[:8]}"

    async def chat() -> int | None:
        async with (
            connect(f"{ws_base}/ws/chat/{room}/") as sender,
            connect(f"{ws_base}/ws/chat/{room}/") as listener,
        ):
            await sender.send("not json")
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(sender.recv(), timeout=10)
            async with connect(f"{ws_base}/ws/chat/{room}/") as again:
                await again.send(json.dumps({"message": "still open"}))
                assert await _receive(listener) == {"message": "still open", "sender": ""}
            return sender.close_code

    assert asyncio.run(chat()) in (1006, 1011)
