"""The per-user session index keeps time by the Redis server and costs bounded work per call.

Application servers' clocks drift: one an hour fast or slow must still list every live
session of a user and revoke them all ("log out everywhere"). The clock is skewed in this
process only (``time.time``), which is what an app server with a wrong clock is; Redis keeps
the real time.

A user may have tens of thousands of sessions (an attacker logging in in a loop): a login
must not cost Redis time in proportion to them, and listing and revoking walk the index in
bounded chunks, still exactly right across chunk boundaries and ties of expiry scores.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.utils.crypto import get_random_string

from djredis.sessions import (
    SessionStore,
    arevoke_all_sessions,
    auser_sessions,
    revoke_all_sessions,
    revoke_session,
    session_id,
    user_sessions,
)
from tests._sessions import PREFIX, Sessions, index_key, redis_key, sent_commands

pytestmark = pytest.mark.topologies

HOUR = 3600
COOKIE_AGE = 1800
# The scripts' bounds (lua/session_time.lua): entries read per call, expired ones pruned.
CHUNK = 100
PRUNE = 100


@pytest.fixture
def index(settings: Any, topology: Any, redis_client: Any) -> Any:
    """Sessions on the topology under test (emptied); return a client of its data."""
    settings.SESSION_ENGINE = "djredis.sessions"
    settings.SESSION_COOKIE_AGE = COOKIE_AGE
    settings.SESSION_REDIS = {
        "location": topology.location,
        "options": topology.options,
        "prefix": PREFIX,
    }
    return redis_client


@pytest.fixture
def app_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], Any]:
    """Return ``skewed(seconds)``: a context in which this process's clock is off by that."""
    real_time, real_time_ns = time.time, time.time_ns

    @contextmanager
    def skewed(seconds: float) -> Iterator[None]:
        with monkeypatch.context() as patch:
            patch.setattr(time, "time", lambda: real_time() + seconds)
            patch.setattr(time, "time_ns", lambda: real_time_ns() + int(seconds * 1e9))
            yield

    return skewed


def login(ops: Sessions, uid: str = "7") -> SessionStore:
    store = SessionStore()
    store["_auth_user_id"] = uid
    ops.save(store)
    return store


def listed(uid: str = "7") -> set[str]:
    return {info.id for info in user_sessions(uid)}


def redis_now(client: Any) -> float:
    seconds, micros = client.time()
    return float(seconds) + float(micros) / 1e6


# -- the server's clock ---------------------------------------------------------------------


@pytest.mark.parametrize("skew", [HOUR, -HOUR], ids=["fast", "slow"])
def test_an_app_server_with_a_skewed_clock_sees_and_revokes_every_live_session(
    index: Any, ops: Sessions, app_clock: Callable[[float], Any], skew: int
) -> None:
    """Two app servers, one with a correct clock, one an hour off (SESSION_COOKIE_AGE
    1800): each lists both of the user's sessions, and "log out everywhere" from either
    ends both."""
    right = login(ops)
    with app_clock(skew):
        wrong = login(ops)
        assert listed() == {session_id(right.session_key), session_id(wrong.session_key)}
    assert listed() == {session_id(right.session_key), session_id(wrong.session_key)}
    with app_clock(skew):
        assert revoke_all_sessions("7") == 2
    assert not ops.exists(SessionStore(), right.session_key)
    assert not ops.exists(SessionStore(), wrong.session_key)


@pytest.mark.parametrize("skew", [HOUR, -HOUR], ids=["fast", "slow"])
def test_session_times_are_the_servers_whatever_the_app_clock(
    index: Any, ops: Sessions, app_clock: Callable[[float], Any], skew: int
) -> None:
    with app_clock(skew):
        store = login(ops)
        (info,) = user_sessions("7")
    now = redis_now(index)
    assert now - 5 < info.created.timestamp() <= now
    assert now - 5 < info.last_activity.timestamp() <= now
    assert abs(info.expires.timestamp() - (now + COOKIE_AGE)) < 5
    # The index lives as long as the session (a slow clock once expired it at once).
    assert abs(index.pttl(index_key("7")) - index.pttl(redis_key(store.session_key))) < 1000


def test_a_slow_app_servers_session_is_revoked_by_id_from_a_correct_one(
    index: Any, ops: Sessions, app_clock: Callable[[float], Any]
) -> None:
    with app_clock(-HOUR):
        store = login(ops)
    login(ops)  # a correct server's write prunes what has expired by its clock
    assert revoke_session("7", session_id(store.session_key)) is True
    assert not ops.exists(SessionStore(), store.session_key)


# -- bounded work ---------------------------------------------------------------------------


def add_expired_entries(client: Any, count: int, uid: str = "7") -> None:
    """Put ``count`` entries expired a minute ago in the user's index (sessions long gone)."""
    expired = int((redis_now(client) - 60) * 1000)
    client.zadd(index_key(uid), {get_random_string(32): expired for _ in range(count)})


def test_a_login_prunes_a_bounded_share_of_an_expired_backlog(index: Any, ops: Sessions) -> None:
    """Each indexed write removes at most PRUNE expired entries: its cost does not grow
    with the backlog, which still drains (one entry added, PRUNE removed)."""
    live = login(ops)
    add_expired_entries(index, 3 * PRUNE)
    login(ops)
    assert index.zcard(index_key("7")) == 2 + 2 * PRUNE
    assert len(user_sessions("7")) == 2
    for _ in range(2):
        login(ops)
    assert index.zcard(index_key("7")) == 4  # drained
    assert session_id(live.session_key) in listed()


def many_logins(ops: Sessions, count: int, uid: str = "7") -> list[SessionStore]:
    return [login(ops, uid) for _ in range(count)]


def test_listing_walks_the_index_in_chunks_and_lists_each_live_session_once(
    index: Any, ops: Sessions, topology: Any
) -> None:
    stores = many_logins(ops, 2 * CHUNK + 50)
    add_expired_entries(index, 3 * PRUNE)
    with sent_commands(*(topology.admin(n) for n in topology.primaries())) as sent:
        infos = user_sessions("7", current_session_key=stores[0].session_key)
    assert sorted(info.id for info in infos) == sorted(session_id(s.session_key) for s in stores)
    assert [info.expires for info in infos] == sorted(info.expires for info in infos)
    assert [info.current for info in infos].count(True) == 1
    assert sent.count("EVALSHA") >= 3  # one call per chunk, never one call over them all


def test_sessions_sharing_one_expiry_score_across_a_chunk_boundary_are_all_listed(
    index: Any, ops: Sessions
) -> None:
    """Chunks end on a score: entries tied with the last score (logins in the same
    millisecond) are never split, skipped or listed twice, however many there are."""
    stores = many_logins(ops, 2 * CHUNK + 30)
    keys = [s.session_key for s in stores]
    expiry = int((redis_now(index) + COOKIE_AGE) * 1000)
    # 60 before the tie, CHUNK + 20 tied (straddling the first boundary), the rest after.
    index.zadd(index_key("7"), {k: expiry - 1000 + i for i, k in enumerate(keys[:60])})
    index.zadd(index_key("7"), dict.fromkeys(keys[60 : 60 + CHUNK + 20], expiry))
    index.zadd(index_key("7"), {k: expiry + 1 + i for i, k in enumerate(keys[60 + CHUNK + 20 :])})
    ids = [info.id for info in user_sessions("7")]
    assert sorted(ids) == sorted(session_id(k) for k in keys)
    assert revoke_all_sessions("7", keep=keys[0]) == len(keys) - 1
    assert listed() == {session_id(keys[0])}


def test_revoke_all_gets_every_live_session_of_a_large_index(
    index: Any, ops: Sessions, run: Callable[[Any], Any]
) -> None:
    stores = many_logins(ops, 2 * CHUNK + 50)
    other = login(ops, uid="8")
    add_expired_entries(index, 3 * PRUNE)
    if ops.api == "sync":
        revoked = revoke_all_sessions("7", keep=stores[-1].session_key)
    else:
        revoked = run(arevoke_all_sessions("7", keep=stores[-1].session_key))
    assert revoked == len(stores) - 1
    assert [s.session_key for s in stores if ops.exists(SessionStore(), s.session_key)] == [
        stores[-1].session_key
    ]
    assert ops.exists(SessionStore(), other.session_key)
    assert {info.id for info in run(auser_sessions("7"))} == {session_id(stores[-1].session_key)}


def test_revoke_session_finds_an_id_beyond_the_first_chunk(index: Any, ops: Sessions) -> None:
    stores = many_logins(ops, CHUNK + 30)
    last = stores[-1]
    latest = int((redis_now(index) + COOKIE_AGE + 60) * 1000)
    index.zadd(index_key("7"), {last.session_key: latest})  # the last entry: second chunk
    assert revoke_session("7", session_id(last.session_key)) is True
    assert not ops.exists(SessionStore(), last.session_key)
    assert len(user_sessions("7")) == CHUNK + 29


# -- untrusted index contents ---------------------------------------------------------------


@pytest.mark.parametrize("score", ["+inf", "1e300"])
def test_an_index_entry_with_an_impossible_time_is_left_out_of_the_list(
    index: Any, ops: Sessions, score: str, caplog: pytest.LogCaptureFixture
) -> None:
    """No djredis write scores an entry so; a hand-edited index must not fail the list."""
    odd, fine = login(ops), login(ops)
    index.zadd(index_key("7"), {odd.session_key: float(score)}, xx=True)
    assert listed() == {session_id(fine.session_key)}
    assert "unreadable times" in caplog.text
    assert revoke_all_sessions("7") == 2
