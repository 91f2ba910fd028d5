"""Measure when clients switch to the new primary after a Sentinel failover.

Shared by tests/failover/test_failover_switch.py (which asserts on it) and
benchmarks/failover_switch.py (which prints it). Side by side in one process, each
``Client`` loops every 5 ms: one read of ``flag``, one write of a key of its own
(``<prefix>:1:w:<name>:<seq>``). ``fail_over()`` starts the failover; ``write_when_named()``
writes ``flag = 2`` on the new primary as soon as a Sentinel names it. Afterwards the
client's log says when its reads and writes switched for good, what it lost, and what it
read stale.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from redis.sentinel import Sentinel

from tests._topologies import PASSWORD, SENTINEL_PASSWORD, SERVICE, USERNAME, Node, Sentinels

PAUSE = 0.005  # between two steps of a client's loop


def switch_options(sentinels: Sentinels, read_from_replicas: bool = False) -> dict[str, Any]:
    """The OPTIONS of a djredis cache on ``sentinels`` that fails fast and ignores errors."""
    return {
        **sentinels.options,
        "READ_FROM_REPLICAS": read_from_replicas,
        "SOCKET_TIMEOUT": 0.5,
        "SOCKET_CONNECT_TIMEOUT": 0.5,
        "IGNORE_EXCEPTIONS": True,
    }


def redis_py_primary(sentinels: Sentinels) -> Any:
    """redis-py's own client of the primary: ``Sentinel(...).master_for(service)``."""
    return Sentinel(
        [("127.0.0.1", port) for port in sentinels.sentinel_ports],
        sentinel_kwargs={"password": SENTINEL_PASSWORD},
        username=USERNAME,
        password=PASSWORD,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
    ).master_for(SERVICE)


class Client:
    """One client's loop and log: (read at, value) and (write at, seq, succeeded)."""

    def __init__(
        self, name: str, read: Callable[[], Any], write: Callable[[int], Any], key: str
    ) -> None:
        """``key`` is the Redis key of write ``seq`` with ``{seq}`` in it."""
        self.name, self.read, self.write, self.key = name, read, write, key
        self.reads: list[tuple[float, Any]] = []
        self.writes: list[tuple[float, int, bool]] = []

    def _step(self, seq: int, value: Any, ok: Any, read_at: float, write_at: float) -> None:
        self.reads.append((read_at, value))
        self.writes.append((write_at, seq, bool(ok)))

    def run(self, stop: threading.Event) -> None:
        seq = 0
        while not stop.is_set():
            seq += 1
            read_at = time.monotonic()
            try:
                value = self.read()
            except Exception:
                value = "error"
            write_at = time.monotonic()
            try:
                ok = self.write(seq)
            except Exception:
                ok = False
            self._step(seq, value, ok, read_at, write_at)
            time.sleep(PAUSE)

    def reads_switched(self) -> float | None:
        """When the reads started returning the new value (2) for good."""
        for i, (at, _) in enumerate(self.reads):
            if all(value == 2 for _, value in self.reads[i:]):
                return at
        return None

    def _landed(self, landed: set[str], since: float) -> list[tuple[float, bool]]:
        return [
            (at, self.key.format(seq=seq) in landed)
            for at, seq, done in self.writes
            if done and at > since
        ]

    def writes_switched(self, landed: set[str], since: float = 0.0) -> float | None:
        """When the successful writes started landing on the new primary for good."""
        ok = self._landed(landed, since)
        for i, (at, _) in enumerate(ok):
            if all(hit for _, hit in ok[i:]):
                return at
        return None

    def lost(self, landed: set[str], since: float) -> int:
        """Writes that succeeded but are not on the new primary."""
        return sum(1 for _, hit in self._landed(landed, since) if not hit)

    def failed(self, since: float) -> int:
        """Writes that raised or returned false."""
        return sum(1 for at, _, ok in self.writes if not ok and at > since)

    def stale(self, accepted: float, staleness: float) -> int:
        """Reads started more than ``staleness`` after ``accepted`` that returned the old 1."""
        return sum(1 for at, value in self.reads if at > accepted + staleness and value == 1)


class AsyncClient(Client):
    """A ``Client`` whose ``read``/``write`` return awaitables, on an event loop of its own."""

    def run(self, stop: threading.Event) -> None:
        async def loop() -> None:
            seq = 0
            while not stop.is_set():
                seq += 1
                read_at = time.monotonic()
                try:
                    value = await self.read()
                except Exception:
                    value = "error"
                write_at = time.monotonic()
                try:
                    ok = await self.write(seq)
                except Exception:
                    ok = False
                self._step(seq, value, ok, read_at, write_at)
                await asyncio.sleep(PAUSE)

        asyncio.run(loop())


def fail_over(sentinels: Sentinels, kind: str) -> tuple[Node, Node]:
    """Start a ``manual`` (SENTINEL FAILOVER) or ``killed`` (SIGKILL) failover; return
    (old primary, new primary)."""
    old = sentinels.current_primary()
    new = next(node for node in sentinels.servers if node is not old)
    if kind == "manual":
        with sentinels.sentinel_client(sentinels.sentinel_ports[0]) as admin:
            admin.execute_command("SENTINEL", "FAILOVER", SERVICE)
    else:
        old.kill()
    return old, new


def write_when_named(
    sentinels: Sentinels, new: Node, key: str, timeout: float
) -> tuple[float, float]:
    """Write ``key = 2`` on ``new`` once a Sentinel names it; return (when named, when the
    write was accepted). Raise TimeoutError when no Sentinel names it within ``timeout``."""
    admins = [sentinels.sentinel_client(port) for port in sentinels.sentinel_ports]
    deadline = time.monotonic() + timeout
    named = None
    try:
        while time.monotonic() < deadline:
            for admin in admins:
                try:
                    _, port = admin.sentinel_get_master_addr_by_name(SERVICE)
                    if int(port) == new.port:
                        named = named or time.monotonic()
                        with new.client() as client:
                            client.set(key, 2)
                        return named, time.monotonic()
                except redis.exceptions.RedisError:
                    continue
            time.sleep(0.002)
    finally:
        for admin in admins:
            admin.close()
    raise TimeoutError(f"no Sentinel named the new primary within {timeout} s")


def run_clients(clients: list[Client]) -> tuple[threading.Event, list[threading.Thread]]:
    """Start each client's loop in a thread; set the event to stop them."""
    stop = threading.Event()
    threads = [threading.Thread(target=c.run, args=(stop,), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    return stop, threads


def stop_clients(stop: threading.Event, threads: list[threading.Thread]) -> None:
    stop.set()
    for thread in threads:
        thread.join(30)


def landed_writes(new: Node, prefix: str) -> set[str]:
    """The client write keys found on the new primary."""
    with new.client() as client:
        return {key.decode() for key in client.scan_iter(f"{prefix}:1:w:*", count=1000)}
