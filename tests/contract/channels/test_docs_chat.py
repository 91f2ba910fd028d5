"""docs/channels.md's tutorial, as the page writes it: its ``mysite/asgi.py``,
``chat/routing.py``, ``chat/consumers.py`` and ``chat/tests.py`` are read from the page
(word for word), written as a project and driven with Channels' communicators against a
real Redis: two clients chatting in one room (one logged in), the Origin check, the
runworker-style ``SyncConsumer`` reached through ``layer.send``, and the page's own tests."""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from channels.worker import Worker
from django.contrib.auth.models import User
from django.test import Client

from djredis.channels import RedisChannelLayer
from tests._servers import RedisServer

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60), pytest.mark.django_db(transaction=True)]

PAGE = Path(__file__).resolve().parents[3] / "docs" / "channels.md"
ORIGIN = [(b"origin", b"http://testserver")]
MODULES = ("mysite", "chat")


def doc_files() -> dict[str, str]:
    """Return the page's Python code blocks whose first line names a file (``# x/y.py``)."""
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    files = {}
    for block in blocks:
        first = block.split("\n", 1)[0]
        named = re.fullmatch(r"# ((?:mysite|chat)/\w+\.py)(?: .*)?", first)
        if named:
            files[named.group(1)] = block
    return files


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ModuleType]]:
    """The tutorial's project written to a temporary directory and imported."""
    root = tmp_path_factory.mktemp("tutorial")
    files = doc_files()
    for package in MODULES:
        (root / package).mkdir()
        (root / package / "__init__.py").write_text("")
    for name in ("mysite/asgi.py", "chat/routing.py", "chat/consumers.py", "chat/tests.py"):
        (root / name).write_text(files[name])
    sys.path.insert(0, str(root))
    try:
        yield {
            name: importlib.import_module(name)
            for name in ("mysite.asgi", "chat.consumers", "chat.tests")
        }
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n.split(".")[0] in MODULES]:
            del sys.modules[name]


@pytest_asyncio.fixture
async def layer(settings: Any, redis_server: RedisServer) -> AsyncIterator[RedisChannelLayer]:
    """The page's CHANNEL_LAYERS, its ``hosts`` pointed at the test server."""
    config: dict[str, Any] = {}
    exec(doc_files()["mysite/settings.py"], config)
    layers = config["CHANNEL_LAYERS"]
    layers["default"]["CONFIG"]["hosts"] = [("127.0.0.1", redis_server.port)]
    settings.CHANNEL_LAYERS = layers
    layer = get_channel_layer()
    await layer.flush()
    yield layer
    await layer.flush()


async def test_the_pages_settings_name_this_layer_and_the_asgi_application() -> None:
    config: dict[str, Any] = {}
    exec(doc_files()["mysite/settings.py"], config)
    assert config["CHANNEL_LAYERS"]["default"]["BACKEND"] == "djredis.channels.RedisChannelLayer"
    assert config["ASGI_APPLICATION"] == "mysite.asgi.application"
    assert config["INSTALLED_APPS"][0] == "daphne"
    assert {"channels", "chat"} <= set(config["INSTALLED_APPS"])


async def test_two_clients_in_one_room_see_each_others_messages(
    project: dict[str, ModuleType], layer: RedisChannelLayer
) -> None:
    application = project["mysite.asgi"].application
    assert isinstance(layer, RedisChannelLayer)
    user = await sync_to_async(User.objects.create_user)("alice", password="x")
    browser = Client()
    await sync_to_async(browser.force_login)(user)
    cookie = f"sessionid={browser.cookies['sessionid'].value}".encode()
    alice = WebsocketCommunicator(
        application, "/ws/chat/lobby/", headers=[*ORIGIN, (b"cookie", cookie)]
    )
    bob = WebsocketCommunicator(application, "/ws/chat/lobby/", headers=ORIGIN)
    elsewhere = WebsocketCommunicator(application, "/ws/chat/kitchen/", headers=ORIGIN)
    for client in (alice, bob, elsewhere):
        assert (await client.connect())[0]
    await alice.send_to(text_data=json.dumps({"message": "hello"}))
    await bob.send_to(text_data=json.dumps({"message": "hi alice"}))
    for client in (alice, bob):
        assert [json.loads(await client.receive_from()) for _ in range(2)] == [
            {"message": "hello", "user": "alice"},
            {"message": "hi alice", "user": "anonymous"},
        ]
    assert await elsewhere.receive_nothing()
    await bob.disconnect()  # leaves the group: alice alone gets the next one
    await alice.send_to(text_data=json.dumps({"message": "bye"}))
    assert json.loads(await alice.receive_from())["message"] == "bye"
    for client in (alice, elsewhere):
        await client.disconnect()


async def test_a_socket_without_an_allowed_origin_is_refused(
    project: dict[str, ModuleType], layer: RedisChannelLayer
) -> None:
    application = project["mysite.asgi"].application
    for headers in ([], [(b"origin", b"http://evil.example")]):
        client = WebsocketCommunicator(application, "/ws/chat/lobby/", headers=headers)
        assert not (await client.connect())[0]


# channels.worker.Worker hands SyncConsumer a functools.partial of its async send, which
# asgiref warns about (a warning under runworker, an error under this suite's filters).
@pytest.mark.filterwarnings("ignore:async_to_sync was passed a non-async-marked callable")
async def test_runworker_posts_what_layer_send_gave_it_into_the_room(
    project: dict[str, ModuleType], layer: RedisChannelLayer
) -> None:
    """``manage.py runworker room-notices`` is a ``channels.worker.Worker`` on the page's
    application; the page's sending snippet reaches it through the layer."""
    application = project["mysite.asgi"].application
    first = WebsocketCommunicator(application, "/ws/chat/lobby/", headers=ORIGIN)
    second = WebsocketCommunicator(application, "/ws/chat/lobby/", headers=ORIGIN)
    for client in (first, second):
        assert (await client.connect())[0]
    # Sent before any worker runs: the notices wait in Redis for it.
    for text in ("Back in 5 minutes", "We are back"):
        await layer.send("room-notices", {"type": "room.notice", "room": "lobby", "text": text})
    worker = asyncio.ensure_future(Worker(application, ["room-notices"], layer).arun())
    try:
        for client in (first, second):
            got = [json.loads(await client.receive_from(timeout=5)) for _ in range(2)]
            assert got == [
                {"message": "Back in 5 minutes", "user": "notice"},
                {"message": "We are back", "user": "notice"},
            ]
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    for client in (first, second):
        await client.disconnect()


@pytest.mark.parametrize(
    "name",
    ["test_two_clients_in_a_room_see_each_other", "test_the_worker_posts_a_notice_into_the_room"],
)
async def test_the_pages_own_tests_pass(
    project: dict[str, ModuleType], layer: RedisChannelLayer, name: str
) -> None:
    await getattr(project["chat.tests"], name)(layer)
