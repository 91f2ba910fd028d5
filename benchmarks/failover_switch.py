"""When do djredis and redis-py's Sentinel client switch to the new primary after a failover?

Run from the project root:
``python -m benchmarks.failover_switch [manual|killed] [seconds] [replicas]`` (``replicas``:
the djredis caches read from replicas, READ_FROM_REPLICAS on).

One Sentinel deployment of the test suite (tests/_topologies.py: a primary, a replica,
three Sentinels, down-after 500 ms) and, side by side in one process, four clients that
each loop every 5 ms doing one primary read of ``flag`` and one write of a key of their own
(``w:<client>:<seq>``), through the loop tests/failover/test_failover_switch.py asserts on
(``tests/_switch.py``):

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

import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from djredis.cache import RedisCache  # noqa: E402
from tests._switch import (  # noqa: E402
    AsyncClient,
    Client,
    fail_over,
    landed_writes,
    redis_py_primary,
    run_clients,
    stop_clients,
    switch_options,
    write_when_named,
)
from tests._topologies import Sentinels  # noqa: E402

STALENESS = 0.1
PREFIX = "b"


def main(kind: str, seconds: float, replicas: bool) -> None:
    sentinels = Sentinels().start()
    try:
        measure(sentinels, kind, seconds, replicas)
    finally:
        sentinels.stop()


def _key(name: str) -> str:
    return f"{PREFIX}:1:w:{name}:{{seq}}"


def measure(sentinels: Sentinels, kind: str, seconds: float, replicas: bool) -> None:
    sentinels.current_primary().client().set(f"{PREFIX}:1:flag", 1)
    sentinels.wait_replicated()
    options = switch_options(sentinels, replicas)
    plain = RedisCache(sentinels.location, {"KEY_PREFIX": PREFIX, "OPTIONS": options})
    near_options = {**options, "NEAR_CACHE": {"MAX_STALENESS": STALENESS}}
    near = RedisCache(sentinels.location, {"KEY_PREFIX": PREFIX, "OPTIONS": near_options})
    rp = redis_py_primary(sentinels)
    clients = [
        Client(
            "redis-py",
            lambda: int(rp.get(f"{PREFIX}:1:flag") or 0),
            lambda seq: rp.set(f"{PREFIX}:1:w:redis-py:{seq}", 1),
            _key("redis-py"),
        ),
        Client(
            "djredis",
            lambda: plain.get("flag"),
            lambda seq: plain.set(f"w:djredis:{seq}", 1),
            _key("djredis"),
        ),
        Client(
            "djredis-near",
            lambda: near.get("flag"),
            lambda seq: near.set(f"w:djredis-near:{seq}", 1),
            _key("djredis-near"),
        ),
        AsyncClient(
            "djredis-async",
            lambda: plain.aget("flag"),
            lambda seq: plain.aset(f"w:djredis-async:{seq}", 1),
            _key("djredis-async"),
        ),
    ]
    stop, threads = run_clients(clients)
    time.sleep(2.0)  # every client warm, the near-cache serving locally
    began = time.monotonic()
    _, new = fail_over(sentinels, kind)
    named: float | None
    accepted: float | None
    try:
        named, accepted = write_when_named(sentinels, new, f"{PREFIX}:1:flag", seconds)
    except TimeoutError:
        named = accepted = None
    time.sleep(max(0.0, began + seconds - time.monotonic()))
    stop_clients(stop, threads)
    rp.close()
    landed = landed_writes(new, PREFIX)
    print(
        f"\n{kind} failover: Sentinel named the new primary at +{named - began:.2f} s, "
        f"flag=2 accepted there at +{accepted - began:.2f} s"
        if named and accepted
        else f"\n{kind} failover: no Sentinel named the new primary within {seconds} s"
    )

    def shown(at: float | None) -> str:
        return "never" if at is None else f"+{at - began:.2f} s"

    print(f"{'client':<16}{'reads new':>11}{'stale':>8}{'writes new':>12}{'lost':>7}{'failed':>8}")
    for client in clients:
        stale = client.stale(accepted, STALENESS) if accepted else 0
        print(
            f"{client.name:<16}{shown(client.reads_switched()):>11}{stale:>8}"
            f"{shown(client.writes_switched(landed, began)):>12}"
            f"{client.lost(landed, began):>7}{client.failed(began):>8}"
        )


if __name__ == "__main__":
    main(
        sys.argv[1] if len(sys.argv) > 1 else "manual",
        float(sys.argv[2]) if len(sys.argv) > 2 else 30.0,
        sys.argv[3:4] == ["replicas"],
    )
