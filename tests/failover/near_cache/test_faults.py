"""The near-cache under faults: its invalidation connection killed, Redis restarted or
frozen, a Sentinel failover. Local entries are never served past ``MAX_STALENESS`` after
the write that replaced them, and the local tier is emptied and refilled after each."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from djredis.cache import RedisCache
from tests._near import STALENESS, caches, listener_ids, wait_for, warm
from tests._servers import RedisServer
from tests._topologies import Sentinels


def test_killing_the_invalidation_connection_never_serves_a_replaced_value(
    pair: tuple[RedisCache, RedisCache], direct: Any
) -> None:
    near, plain = pair
    plain.set("flag", "old")
    warm(near, "flag")
    (killed,) = listener_ids(near)
    flushes = near.near_stats()["flushes"]
    direct.client_kill_filter(_id=killed)
    plain.set("flag", "new")  # its invalidation has nowhere to go
    time.sleep(STALENESS)
    assert near.get("flag") == "new"
    assert near.near_stats()["flushes"] > flushes
    # Tracking comes back on a new connection, and local hits with it.
    warm(near, "flag")
    assert listener_ids(near) != {killed}
    plain.set("flag", "newer")
    wait_for(lambda: near.get("flag") == "newer", 1.0, "the invalidation on the new connection")


def test_a_redis_restart_empties_the_local_tier(
    pair: tuple[RedisCache, RedisCache], server: RedisServer
) -> None:
    near, plain = pair
    plain.set("flag", "before")
    warm(near, "flag")
    server.restart()
    plain.set("flag", "after")
    time.sleep(STALENESS)
    assert near.get("flag") == "after"
    warm(near, "flag")
    assert near.get("flag") == "after"


def test_a_frozen_server_stops_local_hits_within_max_staleness(
    pair: tuple[RedisCache, RedisCache], server: RedisServer
) -> None:
    near, plain = pair
    plain.set("flag", "on")
    warm(near, "flag")
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        frozen = time.monotonic()
        wait_for(lambda: not near.near_stats()["healthy"], 5.0, "the health check to fail")
        # Unhealthy by MAX_STALENESS after the last pong (plus this loaded machine's slack).
        assert time.monotonic() - frozen < STALENESS + 0.5
        assert near.get("flag") is None  # to Redis: a miss (IGNORE_EXCEPTIONS), not "on"
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    warm(near, "flag")


@pytest.mark.slow
def test_a_sentinel_failover_empties_the_local_tier_and_tracks_the_new_primary(
    fresh_sentinels: Sentinels,
) -> None:
    sentinels = fresh_sentinels
    near, plain = caches(sentinels.location, sentinels.options)
    plain.set("flag", "before")
    sentinels.wait_replicated()
    warm(near, "flag")
    before = set(near.near_stats()["servers"])
    victim = sentinels.current_primary()
    victim.kill()
    wait_for(lambda: sentinels.master_address()[1] != victim.port, 30, "the promotion")

    def written() -> bool:
        return bool(plain.set("flag", "after"))

    wait_for(written, 30, "writes through the new primary")
    sentinels.wait_replicated()
    time.sleep(STALENESS)
    assert near.get("flag") == "after"
    wait_for(lambda: set(near.near_stats()["servers"]) != before, 10, "the new read servers")
    warm(near, "flag")
    plain.set("flag", "later")
    wait_for(lambda: near.get("flag") == "later", 2.0, "invalidations from the new primary")


def test_a_forged_message_on_the_invalidation_channel_changes_nothing(
    pair: tuple[RedisCache, RedisCache], direct: Any, caplog: pytest.LogCaptureFixture
) -> None:
    near, plain = pair
    plain.set("flag", "on")
    warm(near, "flag")
    for forged in (b"faults:1:flag", b"", b"\x00garbage"):
        direct.publish("__redis__:invalidate", forged)
    plain.set("flag", "off")  # a real invalidation after the forged ones
    wait_for(lambda: near.get("flag") == "off", 1.0, "the real invalidation")
    warm(near, "flag")
    assert near.near_stats()["healthy"]
    assert "PUBLISHed" in caplog.text


def test_a_user_not_allowed_to_track_gets_correct_reads_from_redis(
    server: RedisServer, direct: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """ACL without CLIENT (no CLIENT ID / TRACKING): the near-cache never turns healthy,
    reads go to Redis and see every write at once; a warning says why."""
    direct.acl_setuser(
        "notrack", enabled=True, passwords=["+pw"], keys=["*"], channels=["*"],
        commands=["+@all", "-client"],
    )  # fmt: skip
    location = f"redis://notrack:pw@127.0.0.1:{server.port}/0"
    near, plain = caches(location)
    try:
        for value in range(20):
            plain.set("flag", value)
            assert near.get("flag") == value
            time.sleep(0.01)
        stats = near.near_stats()
        assert stats["hits"] == 0
        assert not stats["healthy"]
        assert "NOPERM" in caplog.text or "permission" in caplog.text.lower()
    finally:
        direct.acl_deluser("notrack")
