"""The cache reads that consult the local tier first: get, get_many, has_key (+ a*).

A local hit costs a key build, a dict lookup under a lock and a decode: no generator, no
runner, no I/O, the same path for the sync and async APIs. A miss reads the value and its
``PTTL`` in one round trip (so a local entry never outlives the key's TTL in Redis) and
stores the reply only if the read's ticket survived (``lru``: no stale fill).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from djredis._core.commands import Batch, Call, Operation
from djredis.cache.base import CacheBase
from djredis.cache.codec import UndecodableValue
from djredis.cache.near.tier import NearCache

__all__ = ["NearCacheReads"]


class NearCacheReads(CacheBase):
    """Reads through the near-cache; the backend calls these only when it is on."""

    def near_stats(self) -> dict[str, Any] | None:
        """Return the near-cache's counters (hits, misses, evictions, invalidations, bytes,
        entries, healthy...), or None when ``OPTIONS['NEAR_CACHE']`` is off."""
        return None if self._near is None else self._near.stats()

    # -- get --------------------------------------------------------------------------------

    def _near_get(self, near: NearCache, key: Any, default: Any, version: int | None) -> Any:
        full = self._key(key, version=version)
        if near.options.keys is not None and not near.options.wants(key):
            return self._run(self._near_plain_get(full, default), "get", default)
        raw = near.lookup(full)
        if raw is not None:
            return self._decode(raw, full, default)
        return self._run(self._near_read(near, full, default), "get", default)

    async def _anear_get(self, near: NearCache, key: Any, default: Any, version: int | None) -> Any:
        full = self._key(key, version=version)
        if near.options.keys is not None and not near.options.wants(key):
            return await self._arun(self._near_plain_get(full, default), "get", default)
        raw = near.lookup(full)
        if raw is not None:
            return self._decode(raw, full, default)
        return await self._arun(self._near_read(near, full, default), "get", default)

    def _near_plain_get(self, full: str, default: Any) -> Operation[Any]:
        raw = yield Call(("GET", full), False)
        return default if raw is None else self._decode(raw, full, default)

    def _near_read(self, near: NearCache, full: str, default: Any) -> Operation[Any]:
        ticket = near.ticket(full)
        started = time.monotonic()
        try:
            raw, pttl = yield Batch((("GET", full), ("PTTL", full)), False)
        except BaseException:
            near.abandon(full, ticket)
            raise
        if raw is None:
            near.abandon(full, ticket)
            return default
        try:
            value = self._codec.decode(raw)
        except UndecodableValue as exc:
            near.abandon(full, ticket)
            self._log_garbage(full, exc)
            return default
        near.fill(full, ticket, raw, pttl, started)
        return value

    # -- get_many ---------------------------------------------------------------------------

    def _near_get_many(
        self, near: NearCache, keys: Iterable[Any], version: int | None
    ) -> dict[Any, Any]:
        made, found, missing = self._near_split(near, keys, version)
        if missing:
            found.update(self._run(self._near_read_many(near, missing), "get_many", {}))
        return {key: found[key] for key in made.values() if key in found}

    async def _anear_get_many(
        self, near: NearCache, keys: Iterable[Any], version: int | None
    ) -> dict[Any, Any]:
        made, found, missing = self._near_split(near, keys, version)
        if missing:
            found.update(await self._arun(self._near_read_many(near, missing), "get_many", {}))
        return {key: found[key] for key in made.values() if key in found}

    def _near_split(
        self, near: NearCache, keys: Iterable[Any], version: int | None
    ) -> tuple[dict[str, Any], dict[Any, Any], dict[str, Any]]:
        """Return (full key -> key, the local hits decoded, the keys to read from Redis)."""
        made = {self._key(key, version=version): key for key in keys}
        found: dict[Any, Any] = {}
        missing: dict[str, Any] = {}
        for full, key in made.items():
            raw = near.lookup(full) if near.options.wants(key) else None
            if raw is None:
                missing[full] = key
                continue
            value = self._decode(raw, full, missing)
            if value is missing:
                continue
            found[key] = value
        return made, found, missing

    def _near_read_many(
        self, near: NearCache, missing: dict[str, Any]
    ) -> Operation[dict[Any, Any]]:
        # One round trip: every key's GET, and the PTTL of those the local tier keeps (a
        # local entry must not outlive the key). Not MGET: in a Cluster a pipeline's
        # commands are routed one by one, and an MGET across slots would be refused.
        wanted = {full for full, key in missing.items() if near.options.wants(key)}
        tickets = {full: near.ticket(full) for full in wanted}
        started = time.monotonic()
        calls: list[tuple[str, str]] = []
        for full in missing:
            calls.append(("GET", full))
            if full in tickets:
                calls.append(("PTTL", full))
        try:
            replies = iter((yield Batch(tuple(calls), False)))
        except BaseException:
            for full, given in tickets.items():
                near.abandon(full, given)
            raise
        found: dict[Any, Any] = {}
        for full, key in missing.items():
            ticket = tickets.get(full)
            raw = next(replies)
            pttl = next(replies) if ticket is not None else None
            if raw is not None:
                try:
                    found[key] = self._codec.decode(raw)
                except UndecodableValue as exc:
                    self._log_garbage(full, exc)
                    raw = None
            if ticket is not None:
                if raw is None:
                    near.abandon(full, ticket)
                else:
                    near.fill(full, ticket, raw, pttl, started)
        return found

    # -- has_key ----------------------------------------------------------------------------

    def _near_has_key(self, near: NearCache, key: Any, version: int | None) -> bool:
        full = self._key(key, version=version)
        if near.options.wants(key) and near.lookup(full) is not None:
            return True
        return bool(self._run(self._near_exists(full), "has_key", False))

    async def _anear_has_key(self, near: NearCache, key: Any, version: int | None) -> bool:
        full = self._key(key, version=version)
        if near.options.wants(key) and near.lookup(full) is not None:
            return True
        return bool(await self._arun(self._near_exists(full), "has_key", False))

    def _near_exists(self, full: str) -> Operation[bool]:
        return bool((yield Call(("EXISTS", full), False)))
