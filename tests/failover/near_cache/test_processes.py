"""Multi-process correctness of the near-cache on a real Redis: 4 writer processes and 4
reader processes hammer 100 keys for 10 s; no read returns a value the write that replaced
it had finished replacing more than ``MAX_STALENESS`` before the read began. One run is
clean, one kills the readers' invalidation connections (CLIENT KILL) and then restarts
Redis in the middle. The worst staleness seen is printed (``pytest -s``)."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest

from tests._near import reader, worst_staleness, writer
from tests._servers import RedisServer

pytestmark = pytest.mark.slow

STALENESS = 0.1
SECONDS = 10.0
WRITERS = READERS = 4
KEYS = 100


def _kill_invalidation_connections(server: RedisServer) -> int:
    with server.client() as admin:
        killed = 0
        for client in admin.client_list():
            if "P" in client["flags"] or int(client.get("psub", 0)) or int(client["sub"]):
                killed += admin.client_kill_filter(_id=client["id"])
        return killed


@pytest.mark.parametrize("faults", ["none", "kill-and-restart"])
def test_no_read_is_staler_than_max_staleness(
    server: RedisServer, direct: Any, tmp_path: Path, faults: str
) -> None:
    location = server.url()
    options = {
        "SOCKET_TIMEOUT": 0.5,
        "SOCKET_CONNECT_TIMEOUT": 0.5,
        "NEAR_CACHE": {"MAX_STALENESS": STALENESS},
    }
    spawn = multiprocessing.get_context("spawn")
    start = time.monotonic() + 3.0  # the children need a moment to import Django
    until = start + SECONDS
    procs = [
        spawn.Process(
            target=writer,
            args=(location, options, i, WRITERS, KEYS, until, str(tmp_path / f"w{i}.json")),
        )
        for i in range(WRITERS)
    ] + [
        spawn.Process(
            target=reader, args=(location, options, KEYS, until, str(tmp_path / f"r{i}.json"))
        )
        for i in range(READERS)
    ]
    for proc in procs:
        proc.start()
    events: list[str] = []
    if faults != "none":
        time.sleep(max(start + SECONDS * 0.3 - time.monotonic(), 0))
        events.append(f"CLIENT KILL: {_kill_invalidation_connections(server)} connections")
        time.sleep(max(start + SECONDS * 0.6 - time.monotonic(), 0))
        server.restart()
        events.append("restart")
    for proc in procs:
        proc.join(SECONDS + 60)
        assert proc.exitcode == 0
    writes: dict[int, list[tuple[int, float]]] = {}
    for i in range(WRITERS):
        for key, log in json.loads((tmp_path / f"w{i}.json").read_text()).items():
            writes[int(key)] = [(seq, done) for seq, done in log]
    reads: list[tuple[int, float, int]] = []
    hits = 0
    for i in range(READERS):
        found = json.loads((tmp_path / f"r{i}.json").read_text())
        reads.extend((key, started, seq) for key, started, seq in found["reads"])
        hits += found["stats"]["hits"]
    worst, stale = worst_staleness(writes, reads)
    total_writes = sum(len(log) for log in writes.values())
    print(
        f"\nnear-cache, {WRITERS} writers + {READERS} readers, {SECONDS:.0f} s, faults={faults} "
        f"{events}: {total_writes} writes, {len(reads)} reads ({hits} local hits), "
        f"{stale} reads behind a completed write, worst {worst * 1000:.2f} ms "
        f"(bound {STALENESS * 1000:.0f} ms)"
    )
    assert len(reads) > 1000
    assert hits > len(reads) / 2
    assert worst <= STALENESS
