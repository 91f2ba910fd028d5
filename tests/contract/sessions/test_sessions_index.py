"""The per-user session index of djredis.sessions: list and revoke a user's sessions.

Logins and logouts go through Django's own ``login()``/``logout()`` (views in
tests/sessions_app); revoking a session must make the next request carrying its cookie
anonymous.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from io import StringIO
from typing import Any

import django
import pytest
import redis
from asgiref.sync import async_to_sync
from django.core.management import CommandError, call_command
from django.test import AsyncClient, Client

from djredis.sessions import (
    SessionStore,
    arevoke_all_sessions,
    arevoke_session,
    auser_sessions,
    revoke_all_sessions,
    revoke_session,
    session_id,
    user_sessions,
)
from tests._sessions import index_key, redis_key

PASSWORD = "correct horse battery staple"


@pytest.fixture
def site(settings: Any, sessions: redis.Redis, db: None) -> redis.Redis:
    """Serve tests/sessions_app with sessions and auth; return the sessions' Redis db."""
    settings.ROOT_URLCONF = "tests.sessions_app.urls"
    settings.MIDDLEWARE = [
        "djredis.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return sessions


@pytest.fixture
def alice(site: redis.Redis) -> Any:
    from django.contrib.auth.models import User

    return User.objects.create_user("alice", password=PASSWORD)


def signed_in(username: str = "alice", agent: str = "test-agent") -> Client:
    client = Client(HTTP_USER_AGENT=agent)
    response = client.post("/sign-in/", {"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.content
    return client


def whoami(client: Client) -> str:
    return client.get("/whoami/").content.decode()


def cookie(client: Client) -> str:
    return str(client.cookies["sessionid"].value)


# -- listing --------------------------------------------------------------------------------


def test_a_login_is_listed_with_its_times(alice: Any) -> None:
    before = time.time()
    client = signed_in()
    (info,) = user_sessions(alice, current_session_key=cookie(client))
    assert info.id == session_id(cookie(client))
    assert info.current is True
    assert before - 1 < info.created.timestamp() <= time.time()
    assert info.last_activity >= info.created
    assert abs(info.expires.timestamp() - (time.time() + 1209600)) < 5
    assert (info.ip, info.user_agent) == (None, None)  # record_client is off


def test_each_login_is_one_entry_and_logout_removes_it_at_once(
    alice: Any, site: redis.Redis
) -> None:
    phone, laptop = signed_in(), signed_in()
    assert {s.id for s in user_sessions(alice)} == {
        session_id(cookie(phone)),
        session_id(cookie(laptop)),
    }
    phone.post("/sign-out/")
    assert [s.id for s in user_sessions(alice.pk)] == [session_id(cookie(laptop))]
    assert site.zrange(index_key(alice.pk), 0, -1) == [cookie(laptop).encode()]


def test_record_client_stores_ip_and_user_agent(alice: Any, settings: Any) -> None:
    settings.SESSION_REDIS = {**settings.SESSION_REDIS, "record_client": True}
    signed_in(agent="Firefox/130")
    (info,) = user_sessions(alice)
    assert (info.ip, info.user_agent) == ("127.0.0.1", "Firefox/130")


def test_expired_entries_are_pruned_lazily(alice: Any, site: redis.Redis) -> None:
    lasting = signed_in()
    store = SessionStore()
    store["_auth_user_id"] = str(alice.pk)
    store.set_expiry(1)
    store.save()
    deadline = time.monotonic() + 5
    while site.exists(redis_key(store.session_key)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert site.zcard(index_key(alice.pk)) == 2  # still there: nothing touched the index
    assert [s.id for s in user_sessions(alice)] == [session_id(cookie(lasting))]
    assert site.zcard(index_key(alice.pk)) == 1


def test_an_evicted_session_is_not_listed(alice: Any, site: redis.Redis) -> None:
    client = signed_in()
    site.delete(redis_key(cookie(client)))  # as maxmemory eviction would
    assert user_sessions(alice) == []
    assert site.exists(index_key(alice.pk)) == 0


def test_the_index_expires_with_the_users_last_session(alice: Any, site: redis.Redis) -> None:
    client = signed_in()
    assert abs(site.pttl(index_key(alice.pk)) - site.pttl(redis_key(cookie(client)))) < 1000


def test_a_session_that_changes_user_leaves_the_first_users_index(alice: Any) -> None:
    store = SessionStore()
    store["_auth_user_id"] = str(alice.pk)
    store.save()
    store["_auth_user_id"] = "999"
    store.save()
    assert user_sessions(alice) == []
    assert [s.id for s in user_sessions(999)] == [session_id(store.session_key)]


def test_anonymous_sessions_are_not_indexed(site: redis.Redis) -> None:
    store = SessionStore()
    store["cart"] = [1]
    store.save()
    assert [key for key in site.scan_iter() if b"user=" in key] == []


# -- revoking -------------------------------------------------------------------------------


def test_revoke_session_logs_out_that_session_only(alice: Any) -> None:
    phone, laptop = signed_in(), signed_in()
    assert revoke_session(alice, session_id(cookie(phone))) is True
    assert whoami(phone) == "anonymous"
    assert whoami(laptop) == "alice"
    assert revoke_session(alice, session_id(cookie(phone))) is False


def test_revoke_all_sessions_logs_out_everywhere(alice: Any) -> None:
    clients = [signed_in() for _ in range(3)]
    assert revoke_all_sessions(alice) == 3
    assert [whoami(c) for c in clients] == ["anonymous"] * 3
    assert user_sessions(alice) == []


def test_revoke_all_sessions_keeps_the_current_one(alice: Any) -> None:
    here, elsewhere = signed_in(), signed_in()
    assert revoke_all_sessions(alice, keep=cookie(here)) == 1
    assert (whoami(here), whoami(elsewhere)) == ("alice", "anonymous")


def test_revoking_never_deletes_another_users_session(alice: Any) -> None:
    from django.contrib.auth.models import User

    User.objects.create_user("bob", password=PASSWORD)
    bob = signed_in("bob")
    signed_in("alice")
    revoke_all_sessions(alice)
    assert whoami(bob) == "bob"


def test_async_api_lists_and_revokes(alice: Any, run: Callable[[Any], Any]) -> None:
    phone, laptop, tablet = signed_in(), signed_in(), signed_in()
    listed = run(auser_sessions(alice.pk, current_session_key=cookie(phone)))
    assert {s.id for s in listed if s.current} == {session_id(cookie(phone))}
    assert len(listed) == 3
    assert run(arevoke_session(alice, session_id(cookie(laptop)))) is True
    assert run(arevoke_all_sessions(alice, keep=cookie(phone))) == 1
    assert [whoami(c) for c in (phone, laptop, tablet)] == ["alice", "anonymous", "anonymous"]


# -- the management command -----------------------------------------------------------------


@pytest.fixture
def command(settings: Any) -> Callable[..., str]:
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "djredis"]

    def call(*args: str) -> str:
        out = StringIO()
        call_command("djredis_sessions", *args, stdout=out)
        return out.getvalue()

    return call


def test_command_lists_and_revokes_a_users_sessions(
    alice: Any, command: Callable[..., str]
) -> None:
    phone, laptop = signed_in(), signed_in()
    listing = command("list", "alice")
    assert session_id(cookie(phone)) in listing
    assert "2 session(s)" in listing
    assert "revoked session" in command("revoke", "alice", session_id(cookie(phone)))
    assert whoami(phone) == "anonymous"
    assert "revoked 1 session(s)" in command("revoke-all", "--id", str(alice.pk))
    assert whoami(laptop) == "anonymous"


def test_command_fails_for_an_unknown_user_or_session(
    alice: Any, command: Callable[..., str]
) -> None:
    with pytest.raises(CommandError, match="no user"):
        command("list", "nobody")
    with pytest.raises(CommandError, match="has no session"):
        command("revoke", "alice", "0000000000000000")


# -- password change ------------------------------------------------------------------------


@pytest.fixture
def revoke_on_password_change(settings: Any) -> None:
    settings.AUTH_PASSWORD_VALIDATORS = [
        {"NAME": "djredis.sessions.RevokeSessionsOnPasswordChange"}
    ]


@pytest.mark.usefixtures("revoke_on_password_change")
def test_password_change_revokes_the_other_sessions_and_keeps_this_one(alice: Any) -> None:
    here, elsewhere = signed_in(), signed_in()
    assert here.post("/change-password/", {"password": "new one"}).status_code == 200
    assert (whoami(here), whoami(elsewhere)) == ("alice", "anonymous")
    assert [s.id for s in user_sessions(alice)] == [session_id(cookie(here))]


@pytest.mark.usefixtures("revoke_on_password_change")
def test_password_set_elsewhere_revokes_every_session(alice: Any) -> None:
    client = signed_in()
    alice.set_password("changed by an admin")
    alice.save()
    assert whoami(client) == "anonymous"
    assert user_sessions(alice) == []


def test_without_the_hook_a_password_change_leaves_sessions_listed(alice: Any) -> None:
    signed_in()
    alice.set_password("changed")
    alice.save()
    assert len(user_sessions(alice)) == 1


# -- 200-way concurrency --------------------------------------------------------------------

USERS = [str(uid) for uid in range(1, 6)]
WORKERS = 200


def expected_index(store_keys: dict[str, list[str]]) -> dict[str, set[str]]:
    return {uid: {session_id(k) for k in keys} for uid, keys in store_keys.items()}


def test_200_concurrent_logins_and_logouts_leave_an_exact_index(sessions: redis.Redis) -> None:
    """Threads log in (create + cycle_key, as login() does) and half log out again."""
    live: dict[str, list[str]] = {uid: [] for uid in USERS}
    lock = threading.Lock()
    start = threading.Barrier(WORKERS)

    def visit(n: int) -> None:
        uid = USERS[n % len(USERS)]
        store = SessionStore()
        store["cart"] = n
        store.save()  # anonymous first visit
        start.wait()
        store.cycle_key()  # login()
        store["_auth_user_id"] = uid
        store.save()
        if n % 2:
            store.flush()  # logout()
        else:
            with lock:
                live[uid].append(store.session_key)

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(visit, range(WORKERS)))
    for uid in USERS:
        assert {s.id for s in user_sessions(uid)} == expected_index(live)[uid]
        assert {m.decode() for m in sessions.zrange(index_key(uid), 0, -1)} == set(live[uid])


def test_200_concurrent_async_logins_and_logouts_leave_an_exact_index(
    sessions: redis.Redis, run: Callable[[Any], Any]
) -> None:
    """The same through the async API: 200 coroutines share one multiplexed connection."""
    live: dict[str, list[str]] = {uid: [] for uid in USERS}

    async def visit(n: int) -> None:
        uid = USERS[n % len(USERS)]
        store = SessionStore()
        store["_auth_user_id"] = uid
        await store.acreate()
        await asyncio.sleep(random.random() / 100)
        if n % 2:
            await store.adelete()
        else:
            store["seen"] = n
            await store.asave()
            live[uid].append(store.session_key)

    async def everyone() -> None:
        await asyncio.gather(*(visit(n) for n in range(WORKERS)))

    run(everyone())
    for uid in USERS:
        listed = run(auser_sessions(uid))
        assert {s.id for s in listed} == expected_index(live)[uid]
        assert {m.decode() for m in sessions.zrange(index_key(uid), 0, -1)} == set(live[uid])


# -- djredis.middleware.SessionMiddleware under ASGI ----------------------------------------


@pytest.mark.skipif(django.VERSION < (5, 0), reason="session.aget()/aset() are Django 5.0's")
def test_djredis_middleware_saves_an_async_views_session_on_the_event_loop(
    settings: Any, sessions: redis.Redis
) -> None:
    settings.ROOT_URLCONF = "tests.sessions_app.urls"
    settings.MIDDLEWARE = ["djredis.middleware.SessionMiddleware"]
    client = AsyncClient()

    async def two_visits() -> list[Any]:
        return [(await client.get("/acounter/")).json() for _ in range(2)]

    assert async_to_sync(two_visits)() == [{"count": 1}, {"count": 2}]
    key = client.cookies["sessionid"].value
    assert sessions.hget(redis_key(key), "d") == b'{"count":2}'
