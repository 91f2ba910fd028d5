"""Failover on real servers: kill a Sentinel primary, a Cluster primary, a replica.

Each test starts its own topology (it breaks it) and runs a steady load, one operation
every few milliseconds, through the sync API (a thread) or the async API (a coroutine on its
own event loop), recording every call: when it started, how long it took, and whether it
succeeded. From that it checks what the README promises: writes resume through the promoted
replica, the healthy part never notices, no call takes longer than the configured timeouts,
and with IGNORE_EXCEPTIONS the caller sees misses, never exceptions.

The measured outage windows are printed (``pytest -s``) and quoted in the README; they
follow the shortened failure detection of the test topologies (tests/_topologies.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from djredis.cache import RedisCache
from tests._topologies import (
    DOWN_AFTER_MS,
    NODE_TIMEOUT_MS,
    Cluster,
    Replicated,
    Sentinels,
    started,
)

pytestmark = pytest.mark.slow

SOCKET_TIMEOUT = 0.5
# The longest any one call may take: a timeout on the failed server, then one on the new
# one (djredis retries once when the topology has changed), plus scheduling slack.
CALL_BOUND = 2 * SOCKET_TIMEOUT + 0.5
# Sentinel/Cluster need down-after-milliseconds / cluster-node-timeout to notice, then a
# second or two to elect and promote; allow generously for a loaded CI machine.
RECOVERY_DEADLINE = 20.0
OPTIONS = {
    "IGNORE_EXCEPTIONS": True,
    "SOCKET_TIMEOUT": SOCKET_TIMEOUT,
    "SOCKET_CONNECT_TIMEOUT": SOCKET_TIMEOUT,
}


@dataclass
class Call:
    started: float
    seconds: float
    ok: bool
    error: BaseException | None = None


@dataclass
class Load:
    """Run ``operation(i)`` (sync, or a coroutine function for async) in a loop, recorded."""

    operation: Callable[[int], Any]
    api: str
    calls: list[Call] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Load:
        target = self._run_sync if self.api == "sync" else lambda: asyncio.run(self._run_async())
        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _record(self, started: float, ok: Any, error: BaseException | None = None) -> None:
        self.calls.append(Call(started, time.monotonic() - started, bool(ok), error))

    def _run_sync(self) -> None:
        i = 0
        while not self._stop.is_set():
            started_at = time.monotonic()
            try:
                self._record(started_at, self.operation(i))
            except Exception as exc:
                self._record(started_at, False, exc)
            i += 1
            time.sleep(0.005)

    async def _run_async(self) -> None:
        i = 0
        while not self._stop.is_set():
            started_at = time.monotonic()
            try:
                self._record(started_at, await self.operation(i))
            except Exception as exc:
                self._record(started_at, False, exc)
            i += 1
            await asyncio.sleep(0.005)

    def succeeding_since(self, moment: float, count: int = 20) -> bool:
        """Whether the last ``count`` calls, all started after ``moment``, succeeded."""
        recent = self.calls[-count:]
        return len(recent) == count and all(c.ok and c.started > moment for c in recent)

    def outage(self, since: float) -> float:
        """Seconds from ``since`` to the end of the last failed call (0 if none failed)."""
        failed = [c for c in self.calls if c.started >= since and not c.ok]
        return max((c.started + c.seconds - since for c in failed), default=0.0)

    def failures(self, since: float) -> int:
        return sum(1 for c in self.calls if c.started >= since and not c.ok)

    def errors(self) -> list[BaseException]:
        return [c.error for c in self.calls if c.error is not None]

    def slowest(self) -> float:
        return max(c.seconds for c in self.calls)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)


def setter(cache: RedisCache, api: str, keys: list[str]) -> Callable[[int], Any]:
    if api == "sync":
        return lambda i: cache.set(keys[i % len(keys)], i)
    return lambda i: cache.aset(keys[i % len(keys)], i)


def report(what: str, load: Load, since: float) -> None:
    print(
        f"\n{what}: outage {load.outage(since):.2f} s, {load.failures(since)} failed calls of "
        f"{len(load.calls)}, slowest call {load.slowest() * 1000:.0f} ms"
    )


@pytest.fixture
def fresh_sentinels() -> Iterator[Sentinels]:
    yield from started(Sentinels())


@pytest.fixture
def fresh_cluster() -> Iterator[Cluster]:
    yield from started(Cluster())


@pytest.mark.parametrize("api", ["sync", "async"])
def test_sentinel_writes_resume_through_the_promoted_replica(
    fresh_sentinels: Sentinels, api: str
) -> None:
    sentinels = fresh_sentinels
    cache = RedisCache(
        sentinels.location, {"KEY_PREFIX": "f", "OPTIONS": {**sentinels.options, **OPTIONS}}
    )
    load = Load(setter(cache, api, [f"k{i}" for i in range(50)]), api).start()
    wait_until(lambda: load.succeeding_since(0), 5, "the load to start")
    victim = sentinels.current_primary()
    killed = time.monotonic()
    victim.kill()
    try:
        wait_until(
            lambda: sentinels.master_address()[1] != victim.port, RECOVERY_DEADLINE, "promotion"
        )
        wait_until(lambda: load.succeeding_since(killed), RECOVERY_DEADLINE, "writes to resume")
    finally:
        load.stop()
    report(f"Sentinel primary killed ({api}, down-after {DOWN_AFTER_MS} ms)", load, killed)
    assert load.errors() == []  # IGNORE_EXCEPTIONS: misses, never exceptions
    assert load.slowest() < CALL_BOUND
    assert load.outage(killed) < RECOVERY_DEADLINE
    cache.set("after", "failover")
    assert sentinels.current_primary().client().get(cache.make_key("after")) is not None


def test_sentinel_calls_to_a_hanging_primary_end_at_the_socket_timeout(
    fresh_sentinels: Sentinels,
) -> None:
    """A primary that stops answering (SIGSTOP: a network partition) costs each call at
    most the timeouts, and writes resume once the Sentinels have promoted the replica."""
    sentinels = fresh_sentinels
    cache = RedisCache(
        sentinels.location, {"KEY_PREFIX": "f", "OPTIONS": {**sentinels.options, **OPTIONS}}
    )
    load = Load(setter(cache, "sync", [f"k{i}" for i in range(50)]), "sync").start()
    wait_until(lambda: load.succeeding_since(0), 5, "the load to start")
    victim = sentinels.current_primary()
    assert victim.process is not None
    paused = time.monotonic()
    os.kill(victim.process.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: load.succeeding_since(paused), RECOVERY_DEADLINE, "writes to resume")
    finally:
        load.stop()
        os.kill(victim.process.pid, signal.SIGCONT)
    report("Sentinel primary hanging (sync)", load, paused)
    assert load.errors() == []
    assert load.failures(paused) > 0  # the hang was noticed...
    assert load.slowest() < CALL_BOUND  # ...but no call waited longer than the timeouts


@pytest.mark.parametrize("api", ["sync", "async"])
def test_cluster_primary_killed_its_slots_recover_and_the_others_never_notice(
    fresh_cluster: Cluster, api: str
) -> None:
    cluster = fresh_cluster
    cache = RedisCache(cluster.location, {"KEY_PREFIX": "f", "OPTIONS": OPTIONS})
    victim = cluster.primaries()[0]
    on_victim: list[str] = []
    elsewhere: list[str] = []
    i = 0
    while len(on_victim) < 20 or len(elsewhere) < 20:
        key = f"k{i}"
        node = cluster.node_for(cache.make_key(key))
        (on_victim if node is victim else elsewhere).append(key)
        i += 1
    hit = Load(setter(cache, api, on_victim[:20]), api).start()
    spared = Load(setter(cache, api, elsewhere[:20]), api).start()
    wait_until(lambda: hit.succeeding_since(0) and spared.succeeding_since(0), 5, "the load")
    killed = time.monotonic()
    victim.kill()
    try:
        wait_until(lambda: hit.succeeding_since(killed), RECOVERY_DEADLINE, "its slots to recover")
        time.sleep(0.2)
    finally:
        hit.stop()
        spared.stop()
    report(f"Cluster primary killed ({api}, node-timeout {NODE_TIMEOUT_MS} ms)", hit, killed)
    assert hit.errors() == spared.errors() == []
    assert spared.failures(0) == 0  # other slots: unaffected throughout
    assert hit.slowest() < CALL_BOUND
    assert spared.slowest() < CALL_BOUND
    assert cluster.node_for(cache.make_key(on_victim[0])) is not victim


@pytest.fixture(params=["replicas", "sentinel"])
def fresh_with_replica(request: pytest.FixtureRequest) -> Iterator[Replicated | Sentinels]:
    yield from started(Replicated() if request.param == "replicas" else Sentinels())


@pytest.mark.parametrize("api", ["sync", "async"])
def test_reads_fall_back_to_the_primary_when_the_replica_is_down(
    fresh_with_replica: Replicated | Sentinels, api: str
) -> None:
    topology = fresh_with_replica
    options = {**topology.options, "SOCKET_TIMEOUT": SOCKET_TIMEOUT}
    cache = RedisCache(topology.location, {"KEY_PREFIX": "f", "OPTIONS": options})
    data = {f"k{i}": i for i in range(20)}
    cache.set_many(data)
    topology.wait_replicated()
    topology.replicas()[0].kill()

    async def read_async() -> list[Any]:
        return [await cache.aget_many(list(data)) for _ in range(50)]

    # No IGNORE_EXCEPTIONS: a read that failed would raise here.
    if api == "sync":
        reads = [cache.get_many(list(data)) for _ in range(50)]
    else:
        reads = asyncio.run(read_async())
    assert all(read == data for read in reads)
