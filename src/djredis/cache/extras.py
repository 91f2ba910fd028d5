"""django-redis's extras on the cache object: TTLs, expiry, locks and key scans.

Same names, arguments and results as django-redis (``cache.ttl``, ``cache.lock``,
``cache.iter_keys``, ``cache.delete_pattern``...), each with a native ``a*`` twin, and the
cache's error policy applied: with ``IGNORE_EXCEPTIONS`` a lock is never acquired when Redis
is away, instead of raising.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from redis.asyncio.lock import Lock as AsyncLock
from redis.lock import Lock

from djredis._core.commands import Batch, Call, Operation, Primaries
from djredis._core.errors import CONNECTION_ERRORS, ErrorPolicy
from djredis._io.loops import loop_state
from djredis.cache.base import DEFAULT_SCAN_COUNT, CacheBase, ScanPosition, glob_escape
from djredis.cache.twins import twin

__all__ = ["DjangoRedisExtras"]


class DjangoRedisExtras(CacheBase):
    """django-redis's extras, written on the cache's plumbing."""

    # -- django-redis extras: TTLs ----------------------------------------------------------

    @twin(0)
    def ttl(self, key: Any, version: int | None = None) -> Operation[int | None]:
        """Return seconds to live: None if the key never expires, 0 if it does not exist."""
        return self._op_ttl("TTL", key, version)

    attl = ttl.aio

    @twin(0)
    def pttl(self, key: Any, version: int | None = None) -> Operation[int | None]:
        """Return milliseconds to live: None if the key never expires, 0 if it is missing."""
        return self._op_ttl("PTTL", key, version)

    apttl = pttl.aio

    def _op_ttl(self, command: str, key: Any, version: int | None) -> Operation[int | None]:
        left = yield from self._op_one(command, key, version, write=False)
        if left == -2:
            return 0
        return None if left == -1 else int(left)

    @twin(False)
    def expire(
        self, key: Any, timeout: float | timedelta, version: int | None = None
    ) -> Operation[bool]:
        """Set a timeout in seconds (fractions kept, via PEXPIRE); return whether it exists."""
        return self._op_expire(key, timeout, 1000, version)

    aexpire = expire.aio

    @twin(False)
    def pexpire(
        self, key: Any, timeout: int | timedelta, version: int | None = None
    ) -> Operation[bool]:
        """Set a timeout in milliseconds; return whether the key exists."""
        return self._op_expire(key, timeout, 1, version)

    apexpire = pexpire.aio

    def _op_expire(
        self, key: Any, timeout: Any, unit_ms: int, version: int | None
    ) -> Operation[bool]:
        if timeout is DEFAULT_TIMEOUT:
            # The cache's default timeout, in seconds for pexpire too (django-redis 7.0
            # would read its seconds as milliseconds there).
            timeout, unit_ms = self.default_timeout, 1000
        if timeout is None:  # a default timeout of None: the key never expires
            full = self._key(key, version=version)
            _, exists = yield Batch((("PERSIST", full), ("EXISTS", full)), transaction=True)
            return bool(exists)
        if isinstance(timeout, timedelta):
            ms = timeout.total_seconds() * 1000
        else:
            ms = (float(timeout) if isinstance(timeout, str) else timeout) * unit_ms
        return bool((yield from self._op_one("PEXPIRE", key, version, round(ms))))

    @twin(False)
    def expire_at(
        self, key: Any, when: datetime | float, version: int | None = None
    ) -> Operation[bool]:
        """Expire at a datetime or Unix timestamp; return whether the key exists."""
        return self._op_expire_at(key, when, 1000, version)

    aexpire_at = expire_at.aio

    @twin(False)
    def pexpire_at(
        self, key: Any, when: datetime | int, version: int | None = None
    ) -> Operation[bool]:
        """Expire at a datetime or a Unix timestamp in milliseconds."""
        return self._op_expire_at(key, when, 1, version)

    apexpire_at = pexpire_at.aio

    def _op_expire_at(
        self, key: Any, when: datetime | float, unit_ms: int, version: int | None
    ) -> Operation[bool]:
        ms = when.timestamp() * 1000 if isinstance(when, datetime) else when * unit_ms
        return bool((yield from self._op_one("PEXPIREAT", key, version, round(ms))))

    @twin(False)
    def persist(self, key: Any, version: int | None = None) -> Operation[bool]:
        """Remove the key's timeout; return whether a timeout was removed (Redis PERSIST)."""
        return bool((yield from self._op_one("PERSIST", key, version)))

    apersist = persist.aio

    # -- django-redis extras: locks ---------------------------------------------------------

    def lock(
        self,
        key: Any,
        version: int | None = None,
        timeout: float | None = None,
        sleep: float = 0.1,
        blocking: bool = True,
        blocking_timeout: float | None = None,
        thread_local: bool = True,
    ) -> Lock:
        """Return a redis-py lock on ``key`` (a context manager), held on the primary."""
        full = self._key(key, version=version)
        lock: Lock = self._group.lock_client(full).lock(
            full,
            timeout=timeout,
            sleep=sleep,
            blocking=blocking,
            blocking_timeout=blocking_timeout,
            thread_local=thread_local,
            lock_class=_IgnoringLock if self._policy.ignore else Lock,
        )
        if isinstance(lock, _IgnoringLock):
            lock.policy = self._policy
        return lock

    def alock(
        self,
        key: Any,
        version: int | None = None,
        timeout: float | None = None,
        sleep: float = 0.1,
        blocking: bool = True,
        blocking_timeout: float | None = None,
        thread_local: bool = True,
    ) -> AsyncLock:
        """Return a ``redis.asyncio`` lock on ``key``: ``async with cache.alock("k"):``.

        Call it from a coroutine: the lock uses the running loop's own client.
        """
        full = self._key(key, version=version)
        client = self._group.async_client(True, loop_state())
        lock: AsyncLock = client.lock(
            full,
            timeout=timeout,
            sleep=sleep,
            blocking=blocking,
            blocking_timeout=blocking_timeout,
            thread_local=thread_local,
            lock_class=_AsyncIgnoringLock if self._policy.ignore else AsyncLock,
        )
        if isinstance(lock, _AsyncIgnoringLock):
            lock.policy = self._policy
        return lock

    # -- django-redis extras: key scans -----------------------------------------------------

    def _pattern(self, search: str, version: int | None, prefix: str | None = None) -> str:
        pattern: str = self.key_func(
            f"{{{search}}}" if self._tag_keys else search,
            glob_escape(self.key_prefix if prefix is None else prefix),
            glob_escape(str(self.version if version is None else version)),
        )
        return pattern

    def _op_scan_page(
        self, position: ScanPosition | None, pattern: str, count: int
    ) -> Operation[tuple[ScanPosition | None, list[str]]]:
        """Scan one page; return where to go on (None when every server is done).

        SCAN cursors belong to one server, so a scan walks the primaries one at a time
        (one server, or each primary of a Cluster), never a replica.
        """
        if position is None:
            position = (tuple((yield Primaries())), 0, 0)
        nodes, index, cursor = position
        scan = ("SCAN", cursor, "MATCH", pattern, "COUNT", count)
        next_cursor, raws = yield Call(scan, node=nodes[index])
        keys = [self._user_key(raw.decode() if isinstance(raw, bytes) else raw) for raw in raws]
        if int(next_cursor):
            return (nodes, index, int(next_cursor)), keys
        return ((nodes, index + 1, 0) if index + 1 < len(nodes) else None), keys

    def _user_key(self, full: str) -> str:
        key = self._reverse_key(full)
        if self._tag_keys and key.startswith("{") and key.endswith("}"):
            key = key[1:-1]
        return key

    def iter_keys(
        self, search: str, itersize: int | None = None, version: int | None = None
    ) -> Iterator[str]:
        """Yield the cache keys (as the user wrote them) matching a glob, via SCAN."""
        pattern, count = self._pattern(search, version), itersize or DEFAULT_SCAN_COUNT
        position: ScanPosition | None = None
        while True:
            position, keys = self._run(
                self._op_scan_page(position, pattern, count), "iter_keys", (None, [])
            )
            yield from keys
            if position is None:
                return

    async def aiter_keys(
        self, search: str, itersize: int | None = None, version: int | None = None
    ) -> AsyncIterator[str]:
        """Yield the cache keys matching a glob, via SCAN: ``async for key in ...``."""
        pattern, count = self._pattern(search, version), itersize or DEFAULT_SCAN_COUNT
        position: ScanPosition | None = None
        while True:
            op = self._op_scan_page(position, pattern, count)
            position, keys = await self._arun(op, "iter_keys", (None, []))
            for key in keys:
                yield key
            if position is None:
                return

    def keys(self, search: str, version: int | None = None) -> list[str]:
        """Return every cache key matching a glob (SCAN, never the blocking KEYS)."""
        return list(self.iter_keys(search, version=version))

    async def akeys(self, search: str, version: int | None = None) -> list[str]:
        """Return every cache key matching a glob (SCAN, never the blocking KEYS)."""
        return [key async for key in self.aiter_keys(search, version=version)]

    def delete_pattern(
        self,
        pattern: str,
        version: int | None = None,
        prefix: str | None = None,
        itersize: int | None = None,
    ) -> int:
        """Delete the keys matching a glob, a SCAN page at a time; return how many."""
        op = self._scan_delete(
            self._pattern(pattern, version, prefix), itersize or DEFAULT_SCAN_COUNT
        )
        deleted: int = self._run(op, "delete_pattern", 0)
        return deleted

    async def adelete_pattern(
        self,
        pattern: str,
        version: int | None = None,
        prefix: str | None = None,
        itersize: int | None = None,
    ) -> int:
        """Delete the keys matching a glob, a SCAN page at a time; return how many."""
        op = self._scan_delete(
            self._pattern(pattern, version, prefix), itersize or DEFAULT_SCAN_COUNT
        )
        deleted: int = await self._arun(op, "delete_pattern", 0)
        return deleted


class _IgnoringLock(Lock):
    """A lock whose Redis errors follow IGNORE_EXCEPTIONS: never "acquired" when Redis is
    away, and a failed release is logged instead of raised."""

    policy: ErrorPolicy

    def acquire(
        self,
        sleep: float | None = None,
        blocking: bool | None = None,
        blocking_timeout: float | None = None,
        token: str | None = None,
    ) -> bool:
        try:
            return bool(super().acquire(sleep, blocking, blocking_timeout, token))
        except CONNECTION_ERRORS as exc:
            return self.policy.handle(exc, "lock.acquire", False)

    def release(self) -> None:
        try:
            super().release()
        except CONNECTION_ERRORS as exc:
            self.policy.handle(exc, "lock.release", None)


class _AsyncIgnoringLock(AsyncLock):
    """The asyncio twin of ``_IgnoringLock``."""

    policy: ErrorPolicy

    async def acquire(
        self,
        blocking: bool | None = None,
        blocking_timeout: float | None = None,
        token: str | bytes | None = None,
        *,
        sleep: float | None = None,
    ) -> bool:
        # redis-py >= 8.2 takes ``sleep`` (the poll interval) per call; older ones do not.
        per_call = {} if sleep is None else {"sleep": sleep}
        try:
            return bool(await super().acquire(blocking, blocking_timeout, token, **per_call))
        except CONNECTION_ERRORS as exc:
            return self.policy.handle(exc, "lock.acquire", False)

    async def release(self) -> None:
        try:
            await super().release()
        except CONNECTION_ERRORS as exc:
            self.policy.handle(exc, "lock.release", None)
