"""When do djredis and redis-py's Sentinel client switch to the new primary after a failover?

Run from the project root:
``python -m benchmarks.failover_switch [manual|killed] [seconds] [replicas]`` (``replicas``:
the djredis caches read from replicas, READ_FROM_REPLICAS on).

One Sentinel deployment of the test suite (tests/_topologies.py: a primary, a replica,
three Sentinels, down-after 500 ms) and, side by side in one process, four clients that
each loop every 5 ms doing one primary read of ``flag`` and one write of a key of their own
(``w:<client>:<seq>``):

- ``redis-py``: ``Sentinel(...).master_for(service)``;
- ``djredis``: a plain ``RedisCache`` (READ_FROM_REPLICAS off: reads go to the primary);
- ``djredis near``: the same with ``NEAR_CACHE`` (MAX_STALENESS 100 ms);
- ``djredis async``: the plain cache's ``aget``/``aset`` on an event loop of its own.

Then the primary fails over: ``SENTINEL FAILOVER`` (the old primary stays alive and is
demoted later) or SIGKILL. A separate writer polls every Sentinel and, as soon as one
names the new primary, writes ``flag = 2`` there directly (``accepted`` below: when that
write's reply came). Reported per client, in seconds after the failover began:

- ``reads new``: the first read from which on every read returned 2 (the new primary's
  value); ``stale``: reads started more than 100 ms after ``accepted`` that returned the
  old value;
- ``writes new``: the first write that landed on the new primary (found there after the
  run) from which on every successful write did; ``lost``: writes that succeeded but are
  not on the new primary (they went to the old one and were discarded by its resync).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.sentinel import Sentinel

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from djredis.cache import RedisCache  # noqa: E402
from tests._topologies import PASSWORD, SENTINEL_PASSWORD, SERVICE, USERNAME, Sentinels  # noqa: E402

STALENESS = 0.1
PREFIX = "b"


@dataclass
class Log:
    """What one client saw: (started, value read) and (started, seq written, ok)."""

    name: str
    reads: list[tuple[float, Any]] = field(default_factory=list)
    writes: list[tuple[float, int, bool]] = field(default_factory=list)


def run_sync(log: Log, read: Any, write: Any, stop: threading.Event) -> None:
    seq = 0
    while not stop.is_set():
        seq += 1
        started = time.monotonic()
        try:
            value = read()
        except Exception:
            value = "error"
        log.reads.append((started, value))
        started = time.monotonic()
        try:
            ok = bool(write(seq))
        except Exception:
            ok = False
        log.writes.append((started, seq, ok))
        time.sleep(0.005)


def run_async(log: Log, cache: RedisCache, stop: threading.Event) -> None:
    async def loop() -> None:
        seq = 0
        while not stop.is_set():
            seq += 1
            started = time.monotonic()
            try:
                value = await cache.aget("flag")
            except Exception:
                value = "error"
            log.reads.append((started, value))
            started = time.monotonic()
            try:
                ok = bool(await cache.aset(f"w:{log.name}:{seq}", 1))
            except Exception:
                ok = False
            log.writes.append((started, seq, ok))
            await asyncio.sleep(0.005)

    asyncio.run(loop())


def as_int(value: Any) -> Any:
    if isinstance(value, bytes):
        return int(value)
    return value


def main(kind: str, seconds: float, replicas: bool) -> None:
    sentinels = Sentinels().start()
    try:
        measure(sentinels, kind, seconds, replicas)
    finally:
        sentinels.stop()


def measure(sentinels: Sentinels, kind: str, seconds: float, replicas: bool) -> None:
    old = sentinels.current_primary()
    new = next(node for node in sentinels.servers if node is not old)
    old.client().set(f"{PREFIX}:1:flag", 1)
    sentinels.wait_replicated()
    options = {
        **sentinels.options,
        "READ_FROM_REPLICAS": replicas,
        "SOCKET_TIMEOUT": 0.5,
        "SOCKET_CONNECT_TIMEOUT": 0.5,
        "IGNORE_EXCEPTIONS": True,
    }
    plain = RedisCache(sentinels.location, {"KEY_PREFIX": PREFIX, "OPTIONS": options})
    near = RedisCache(
        sentinels.location,
        {
            "KEY_PREFIX": PREFIX,
            "OPTIONS": {**options, "NEAR_CACHE": {"MAX_STALENESS": STALENESS}},
        },
    )
    rp = Sentinel(
        [("127.0.0.1", port) for port in sentinels.sentinel_ports],
        sentinel_kwargs={"password": SENTINEL_PASSWORD},
        username=USERNAME,
        password=PASSWORD,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
    ).master_for(SERVICE)
    stop = threading.Event()
    logs = {name: Log(name) for name in ("redis-py", "djredis", "djredis-near", "djredis-async")}
    threads = [
        threading.Thread(
            target=run_sync,
            args=(
                logs["redis-py"],
                lambda: as_int(rp.get(f"{PREFIX}:1:flag")),
                lambda seq: rp.set(f"{PREFIX}:1:w:redis-py:{seq}", 1),
                stop,
            ),
        ),
        threading.Thread(
            target=run_sync,
            args=(
                logs["djredis"],
                lambda: plain.get("flag"),
                lambda seq: plain.set(f"w:djredis:{seq}", 1),
                stop,
            ),
        ),
        threading.Thread(
            target=run_sync,
            args=(
                logs["djredis-near"],
                lambda: near.get("flag"),
                lambda seq: near.set(f"w:djredis-near:{seq}", 1),
                stop,
            ),
        ),
        threading.Thread(target=run_async, args=(logs["djredis-async"], plain, stop)),
    ]
    for thread in threads:
        thread.start()
    time.sleep(2.0)  # every client warm, the near-cache serving locally
    began = time.monotonic()
    if kind == "manual":
        sentinels.sentinel_client(sentinels.sentinel_ports[0]).execute_command(
            "SENTINEL", "FAILOVER", SERVICE
        )
    else:
        old.kill()
    named = accepted = None
    admins = {port: sentinels.sentinel_client(port) for port in sentinels.sentinel_ports}
    while accepted is None and time.monotonic() - began < seconds:
        for admin in admins.values():
            try:
                _, port = admin.sentinel_get_master_addr_by_name(SERVICE)
            except redis.exceptions.ConnectionError:
                continue
            if int(port) == new.port:
                named = named or time.monotonic()
                try:
                    new.client().set(f"{PREFIX}:1:flag", 2)
                except redis.exceptions.RedisError:
                    break
                accepted = time.monotonic()
                break
        time.sleep(0.002)
    time.sleep(max(0.0, began + seconds - time.monotonic()))
    stop.set()
    for thread in threads:
        thread.join(30)
    on_new = {key.decode() for key in new.client().scan_iter(f"{PREFIX}:1:w:*", count=1000)}
    print(
        f"\n{kind} failover: Sentinel named the new primary at +{named - began:.2f} s, "
        f"flag=2 accepted there at +{accepted - began:.2f} s"
        if named and accepted
        else f"\n{kind} failover: no Sentinel named the new primary within {seconds} s"
    )
    print(f"{'client':<16}{'reads new':>11}{'stale':>8}{'writes new':>12}{'lost':>7}{'failed':>8}")
    for log in logs.values():
        reads_new = next(
            (
                started - began
                for i, (started, _) in enumerate(log.reads)
                if all(v == 2 for _, v in log.reads[i:])
            ),
            None,
        )
        stale = sum(
            1
            for started, value in log.reads
            if accepted and started > accepted + STALENESS and value == 1
        )
        landed = [
            (started, f"{PREFIX}:1:w:{log.name}:{seq}" in on_new)
            for started, seq, ok in log.writes
            if ok and started > began
        ]
        writes_new = next(
            (s - began for i, (s, _) in enumerate(landed) if all(hit for _, hit in landed[i:])),
            None,
        )
        lost = sum(1 for _, hit in landed if not hit)
        failed = sum(1 for started, _, ok in log.writes if not ok and started > began)

        def shown(value: float | None) -> str:
            return "never" if value is None else f"+{value:.2f} s"

        print(
            f"{log.name:<16}{shown(reads_new):>11}{stale:>8}{shown(writes_new):>12}"
            f"{lost:>7}{failed:>8}"
        )


if __name__ == "__main__":
    main(
        sys.argv[1] if len(sys.argv) > 1 else "manual",
        float(sys.argv[2]) if len(sys.argv) > 2 else 30.0,
        sys.argv[3:4] == ["replicas"],
    )
