"""A session cookie names that session's own record and nothing else.

The attack: ``sessionid=user=4242`` sent to a view that flushes the session without reading
it used to delete user 4242's index (``<prefix>:user=4242``), after which "log out
everywhere" and the password-change hook revoked nothing. A key outside Django's
session-key alphabet (``[a-z0-9]``, 8 to 40 characters) is now a missing session, decided
without a command to Redis: the tests count what clients send with MONITOR.
"""

from __future__ import annotations

import asyncio
import http.client
import threading
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import django
import pytest
import redis
from asgiref.sync import async_to_sync
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
from django.test import AsyncClient, Client

from djredis.sessions import SessionStore, revoke_all_sessions, user_sessions
from tests._sessions import Sessions, index_key, sent_commands

USER = "4242"
ATTACK = f"user={USER}"

FORGED = [
    pytest.param(ATTACK, id="index-key"),
    pytest.param("user=4242abcdef", id="index-key-long"),
    pytest.param("ABCDEFGHIJKLMNOP", id="uppercase"),
    pytest.param("abcdefgh:ijklmnop", id="colon"),
    pytest.param("abcdefgh{x}ijklm", id="hash-tag"),
    pytest.param("abcdefgh*", id="glob"),
    pytest.param("abcdefghijklmnop\n", id="newline"),
    pytest.param("abcdéfghijklmnop", id="non-ascii"),
    pytest.param("abc1234", id="too-short"),
    pytest.param("a" * 41, id="too-long"),
]

MIDDLEWARES = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "djredis.middleware.SessionMiddleware",
]

# The async test views flush the session natively: session.aflush() is Django 5.0's.
ASYNC_SESSION_API = pytest.mark.skipif(
    django.VERSION < (5, 0), reason="the async views use session.aflush(), Django 5.0's"
)


@pytest.fixture
def victim(sessions: redis.Redis) -> str:
    """Store a logged-in session of user 4242; return its key."""
    store = SessionStore()
    store["_auth_user_id"] = USER
    store.save()
    assert sessions.exists(index_key(USER))
    assert store.session_key is not None
    return store.session_key


@pytest.fixture(params=MIDDLEWARES)
def site(request: pytest.FixtureRequest, settings: Any, sessions: redis.Redis) -> None:
    settings.ROOT_URLCONF = "tests.sessions_app.urls"
    settings.MIDDLEWARE = [request.param]
    settings.ALLOWED_HOSTS = ["*"]


def assert_index_intact(sessions: redis.Redis, victim: str) -> None:
    """The victim's index still lists their session, and revoking it still works."""
    assert sessions.zrange(index_key(USER), 0, -1) == [victim.encode()]
    assert len(user_sessions(USER)) == 1
    assert revoke_all_sessions(USER) == 1
    assert not SessionStore().exists(victim)


# -- the attack, through the test clients ---------------------------------------------------


@pytest.mark.usefixtures("site")
def test_forged_cookie_does_not_delete_a_users_index_sync(
    sessions: redis.Redis, victim: str
) -> None:
    client = Client()
    client.cookies["sessionid"] = ATTACK
    assert client.get("/logout/").status_code == 302
    assert_index_intact(sessions, victim)


@ASYNC_SESSION_API
@pytest.mark.usefixtures("site")
def test_forged_cookie_does_not_delete_a_users_index_async(
    sessions: redis.Redis, victim: str
) -> None:
    client = AsyncClient()
    client.cookies["sessionid"] = ATTACK

    async def flush() -> int:
        response = await client.get("/alogout/")
        return int(response.status_code)

    assert async_to_sync(flush)() == 200
    assert_index_intact(sessions, victim)


# -- the attack, through a real request path ------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def wsgi_server(site: None) -> Iterator[WSGIServer]:
    """Serve the site over HTTP on 127.0.0.1, as a WSGI server does."""
    server = make_server("127.0.0.1", 0, WSGIHandler(), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_forged_cookie_over_http_does_not_delete_a_users_index(
    wsgi_server: WSGIServer, sessions: redis.Redis, victim: str
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", wsgi_server.server_address[1], timeout=10)
    try:
        conn.request("GET", "/logout/", headers={"Cookie": f"sessionid={ATTACK}"})
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    assert response.status == 302
    assert_index_intact(sessions, victim)


@ASYNC_SESSION_API
@pytest.mark.usefixtures("site")
def test_forged_cookie_over_asgi_does_not_delete_a_users_index(
    sessions: redis.Redis, victim: str, run: Callable[[Any], Any]
) -> None:
    """A raw ASGI request, as an ASGI server hands it to Django."""
    app = ASGIHandler()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/alogout/",
        "raw_path": b"/alogout/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"cookie", f"sessionid={ATTACK}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    messages: list[dict[str, Any]] = []

    async def serve() -> None:
        requested = False
        done = asyncio.Event()

        async def receive() -> dict[str, Any]:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await done.wait()  # the client stays connected until the response is sent
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            messages.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                done.set()

        await asyncio.wait_for(app(scope, receive, send), 10)

    run(serve())
    assert messages[0]["status"] == 200
    assert_index_intact(sessions, victim)


# -- forged keys cost no command ------------------------------------------------------------


@pytest.fixture
def warm(ops: Sessions, sessions: redis.Redis) -> None:
    """Open the connections (their handshake is not what is counted)."""
    store = SessionStore()
    ops.save(store)
    ops.delete(store)


@pytest.mark.usefixtures("warm")
def test_a_valid_missing_key_costs_one_hget(ops: Sessions, sessions: redis.Redis) -> None:
    """The counter sees what the engine sends, so the zero counts below mean something."""
    with sent_commands(sessions) as sent:
        assert ops.load(SessionStore("a" * 32)) == {}
    assert sent == ["HGET"]


@pytest.mark.usefixtures("warm")
@pytest.mark.parametrize("key", FORGED)
def test_a_forged_key_is_a_missing_session_without_a_command(
    ops: Sessions, sessions: redis.Redis, key: str
) -> None:
    with sent_commands(sessions) as sent:
        store = SessionStore(key)
        assert store.session_key is None
        assert ops.load(store) == {}
        assert ops.exists(store, key) is False
        ops.delete(store, key)
        ops.delete(store)
        store.flush()
        assert store.session_key is None
    assert sent == []


def test_django_generated_keys_are_valid(sessions: redis.Redis) -> None:
    store = SessionStore()
    store.save()
    key = store.session_key
    assert key is not None
    assert len(key) == 32
    assert SessionStore(key).session_key == key
    assert SessionStore(key.upper()).session_key is None
