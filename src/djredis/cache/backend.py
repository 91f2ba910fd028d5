"""Django cache backend on Redis: ``'BACKEND': 'djredis.cache.RedisCache'``.

The backend normalises keys, versions and timeouts and encodes values; each operation is a
generator of command descriptions (``djredis._core.commands``), so the same logic serves the
sync API (the lean blocking pool) and the native ``a*`` API (one multiplexed connection
per event loop; never a thread hop). Beyond Django's contract it keeps what django-redis users
rely on: ``ttl``/``pttl``/``expire``/``persist``/``lock``/``iter_keys``/``keys``/
``delete_pattern`` and ``cache.client.get_client()``, and django-redis 7.0's sets, hashes
and sorted sets (``sets.py``, ``hashes.py``, ``zsets.py``).

Behaviour worth knowing (docs/cache.md):
- timeouts are sent in milliseconds (``PX``), so 0.5 means 500 ms;
- ``incr``/``decr`` and ``incr_version`` are atomic and keep the key's TTL;
- ``get_many``/``set_many``/``delete_many`` are one round trip each;
- ``clear()`` deletes only this cache's keys when it has a KEY_PREFIX (SCAN + UNLINK);
  without a prefix it empties the whole database (FLUSHDB), as Django's builtin does.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from django.core.cache.backends.base import (
    DEFAULT_TIMEOUT,
)
from redis.exceptions import ResponseError

from djredis._core.commands import Batch, Call, Eval, Operation, Primaries
from djredis._core.scripts import lua
from djredis._io.loops import loop_state
from djredis._routing.base import Topology
from djredis.cache.base import DEFAULT_SCAN_COUNT, MISSING, glob_escape
from djredis.cache.codec import UndecodableValue
from djredis.cache.extras import DjangoRedisExtras
from djredis.cache.hashes import RedisHashes
from djredis.cache.near.reads import NearCacheReads
from djredis.cache.sets import RedisSets
from djredis.cache.stampede import Plan, Stampede, drive_async, drive_sync, plan, resolve
from djredis.cache.zsets import RedisSortedSets

__all__ = ["RedisCache"]


class RedisCache(NearCacheReads, DjangoRedisExtras, RedisSets, RedisHashes, RedisSortedSets):
    """A Django cache on Redis with exact Django semantics and django-redis's extras."""

    # Each operation below is a generator written once (``_op_*``); the sync method runs it
    # with blocking I/O, its ``a*`` twin on the event loop's multiplexed connection.

    # -- get / set / add / get_or_set -------------------------------------------------------

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        """Return the value at ``key``, or ``default`` when it is missing."""
        if self._near is not None:
            value = self._near_get(self._near, key, MISSING, version)
            self._stats.record(value is not MISSING, value is MISSING)  # djredis.cache.stats
            return default if value is MISSING else value
        return self._run(self._op_get(key, default, version), "get", default)

    async def aget(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        """Return the value at ``key``, or ``default`` when it is missing."""
        if self._near is not None:
            value = await self._anear_get(self._near, key, MISSING, version)
            self._stats.record(value is not MISSING, value is MISSING)
            return default if value is MISSING else value
        return await self._arun(self._op_get(key, default, version), "get", default)

    def _op_get(self, key: Any, default: Any, version: int | None) -> Operation[Any]:
        return self._get(self._key(key, version=version), default)

    def _get(self, key: str, default: Any) -> Operation[Any]:
        raw = yield Call(("GET", key), False)
        if raw is None:
            self._stats.record(0, 1)
            return default
        value = self._decode(raw, key, MISSING)
        if value is MISSING:  # garbage in Redis: a miss (logged by _decode)
            self._stats.record(0, 1)
            return default
        self._stats.record(1, 0)
        return value

    def set(  # type: ignore[override]
        self,
        key: Any,
        value: Any,
        timeout: float | None = DEFAULT_TIMEOUT,
        version: int | None = None,
        nx: bool = False,
        xx: bool = False,
    ) -> bool:
        """Store ``value``; with ``nx``/``xx`` (django-redis) only if absent/present."""
        return bool(self._run(self._op_set(key, value, timeout, version, nx, xx), "set", False))

    async def aset(  # type: ignore[override]
        self,
        key: Any,
        value: Any,
        timeout: float | None = DEFAULT_TIMEOUT,
        version: int | None = None,
        nx: bool = False,
        xx: bool = False,
    ) -> bool:
        """Store ``value``; with ``nx``/``xx`` (django-redis) only if absent/present."""
        op = partial(self._op_set, key, value, timeout, version, nx, xx)
        return bool(await self._arun_encoding(op, "set", False))

    def add(
        self,
        key: Any,
        value: Any,
        timeout: float | None = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> bool:
        """Store ``value`` only if ``key`` is absent; return whether it was stored."""
        return bool(
            self._run(self._op_set(key, value, timeout, version, True, False), "add", False)
        )

    async def aadd(
        self,
        key: Any,
        value: Any,
        timeout: float | None = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> bool:
        """Store ``value`` only if ``key`` is absent; return whether it was stored."""
        op = partial(self._op_set, key, value, timeout, version, True, False)
        return bool(await self._arun_encoding(op, "add", False))

    def _op_set(
        self, key: Any, value: Any, timeout: Any, version: int | None, nx: bool, xx: bool
    ) -> Operation[bool]:
        full = self._key(key, version=version)
        data = self._codec.encode(value)  # a TypeError here happens before any I/O
        ms = self._ms(timeout)
        if ms == 0:
            # Django: a non-positive timeout means "expire now"; the old value goes too.
            if nx:
                return not (yield Call(("EXISTS", full)))
            return bool((yield Call(("DEL", full)))) or not xx
        args: tuple[Any, ...] = ("SET", full, data)
        if ms is not None:
            args += ("PX", ms)
        if nx:
            args += ("NX",)
        elif xx:
            args += ("XX",)
        return bool((yield Call(args)))

    def get_or_set(
        self,
        key: Any,
        default: Any,
        timeout: float | None = DEFAULT_TIMEOUT,
        version: int | None = None,
        *,
        stampede: bool | Stampede = False,
    ) -> Any:
        """Return the cached value, or store ``default`` (called if callable) and return it.

        On a miss the add and the read-back share one round trip; the value returned is
        whatever won, as in Django when another client added a value meanwhile. With
        ``stampede=True`` one caller computes a missing value, the others wait for it."""
        full = self._key(key, version=version)
        if stampede and callable(default):
            return drive_sync(self, self._stampede(full, timeout, stampede), default, "get_or_set")
        value = self._run(self._get(full, MISSING), "get_or_set", MISSING)
        if value is not MISSING:
            return value
        if callable(default):
            default = default()
        return self._run(self._add_and_get(full, default, timeout), "get_or_set", default)

    async def aget_or_set(
        self,
        key: Any,
        default: Any,
        timeout: float | None = DEFAULT_TIMEOUT,
        version: int | None = None,
        *,
        stampede: bool | Stampede = False,
    ) -> Any:
        """Return the cached value, or store ``default`` (a sync or async callable is
        called) and return it; ``stampede=True`` as in ``get_or_set``."""
        full = self._key(key, version=version)
        if stampede and callable(default):
            guarded = self._stampede(full, timeout, stampede)
            return await drive_async(self, guarded, default, "get_or_set")
        value = await self._arun(self._get(full, MISSING), "get_or_set", MISSING)
        if value is not MISSING:
            return value
        if callable(default):
            default = default()
        if inspect.isawaitable(default):
            default = await default
        op = partial(self._add_and_get, full, default, timeout)
        return await self._arun_encoding(op, "get_or_set", default)

    def _stampede(self, full: str, timeout: Any, stampede: bool | Stampede) -> Plan:
        return plan(
            self, full, timeout, resolve(stampede), fail_open=self._policy.ignore, name="get_or_set"
        )

    def _add_and_get(self, key: str, default: Any, timeout: Any) -> Operation[Any]:
        data = self._codec.encode(default)
        ms = self._ms(timeout)
        if ms == 0:
            return default
        add: tuple[Any, ...] = ("SET", key, data, "NX")
        if ms is not None:
            add += ("PX", ms)
        _, raw = yield Batch((add, ("GET", key)))
        if raw is None:
            return default
        return self._decode(raw, key, default)

    # -- touch / delete / has_key -----------------------------------------------------------

    def touch(
        self, key: Any, timeout: float | None = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        """Give ``key`` a new timeout; return whether the key exists."""
        return bool(self._run(self._op_touch(key, timeout, version), "touch", False))

    async def atouch(
        self, key: Any, timeout: float | None = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        """Give ``key`` a new timeout; return whether the key exists."""
        return bool(await self._arun(self._op_touch(key, timeout, version), "touch", False))

    def _op_touch(self, key: Any, timeout: Any, version: int | None) -> Operation[bool]:
        full = self._key(key, version=version)
        ms = self._ms(timeout)
        if ms is None:
            # PERSIST answers 0 for a key without a TTL, so existence is asked separately.
            _, exists = yield Batch((("PERSIST", full), ("EXISTS", full)), transaction=True)
            return bool(exists)
        if ms == 0:
            return bool((yield Call(("DEL", full))))
        return bool((yield Call(("PEXPIRE", full, ms))))

    def delete(self, key: Any, version: int | None = None) -> bool:
        """Delete ``key``; return whether it existed."""
        return bool(self._run(self._op_one("DEL", key, version), "delete", False))

    async def adelete(self, key: Any, version: int | None = None) -> bool:
        """Delete ``key``; return whether it existed."""
        return bool(await self._arun(self._op_one("DEL", key, version), "delete", False))

    def has_key(self, key: Any, version: int | None = None) -> bool:
        """Return whether ``key`` exists (and has not expired)."""
        if self._near is not None:
            return self._near_has_key(self._near, key, version)
        op = self._op_one("EXISTS", key, version, write=False)
        return bool(self._run(op, "has_key", False))

    async def ahas_key(self, key: Any, version: int | None = None) -> bool:
        """Return whether ``key`` exists (and has not expired)."""
        if self._near is not None:
            return await self._anear_has_key(self._near, key, version)
        op = self._op_one("EXISTS", key, version, write=False)
        return bool(await self._arun(op, "has_key", False))

    # -- get_many / set_many / delete_many --------------------------------------------------

    def get_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        """Return a dict of the keys that exist, in one MGET."""
        if self._near is not None:
            keys = list(keys)
            found = self._near_get_many(self._near, keys, version)
            self._stats.record(len(found), len(set(keys)) - len(found))
            return found
        result: dict[Any, Any] = self._run(self._op_get_many(keys, version), "get_many", {})
        return result

    async def aget_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        """Return a dict of the keys that exist, in one MGET."""
        if self._near is not None:
            keys = list(keys)
            found = await self._anear_get_many(self._near, keys, version)
            self._stats.record(len(found), len(set(keys)) - len(found))
            return found
        result: dict[Any, Any] = await self._arun(self._op_get_many(keys, version), "get_many", {})
        return result

    def _op_get_many(self, keys: Iterable[Any], version: int | None) -> Operation[dict[Any, Any]]:
        made = {self._key(key, version=version): key for key in keys}
        if not made:
            return {}
        raws = yield Call(("MGET", *made), False)
        result = {}
        decode = self._codec.decode
        for (full, key), raw in zip(made.items(), raws, strict=True):
            if raw is not None:
                try:
                    result[key] = decode(raw)
                except UndecodableValue as exc:
                    self._log_garbage(full, exc)
        self._stats.record(len(result), len(made) - len(result))
        return result

    def set_many(
        self,
        data: Mapping[Any, Any],
        timeout: float | None = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> list[Any]:
        """Store every item in one command; return the keys that failed (Django's contract)."""
        return (
            []
            if self._run(self._op_set_many(data, timeout, version), "set_many", False)
            else list(data)
        )

    async def aset_many(
        self,
        data: Mapping[Any, Any],
        timeout: float | None = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> list[Any]:
        """Store every item in one command; return the keys that failed (Django's contract)."""
        op = partial(self._op_set_many, data, timeout, version)
        stored = await self._arun_encoding(op, "set_many", False)
        return [] if stored else list(data)

    def _op_set_many(
        self, data: Mapping[Any, Any], timeout: Any, version: int | None
    ) -> Operation[bool]:
        make_key, encode = self._key, self._codec.encode
        encoded = {make_key(key, version): encode(value) for key, value in data.items()}
        if not encoded:
            return True
        ms = self._ms(timeout)
        mset = ("MSET", *(item for pair in encoded.items() for item in pair))
        if ms == 0:
            yield Call(("DEL", *encoded))
        elif ms is None:
            yield Call(mset)
        elif self._tag_keys:  # Cluster: the keys span slots; one script call per slot
            yield Eval(lua("set_many"), tuple(encoded), (ms,), per_key=tuple(encoded.values()))
        else:  # one MULTI/EXEC: MSET, then a script giving each key its TTL (expire_many.lua)
            expire = ("EVAL", lua("expire_many").source, len(encoded), *encoded, ms)
            yield Batch((mset, expire), transaction=True)
        return True

    def delete_many(self, keys: Iterable[Any], version: int | None = None) -> int | None:  # type: ignore[override]
        """Delete every key in one DEL; return how many existed (django-redis), or None
        for no keys (Django)."""
        return self._run(self._op_delete_many(keys, version), "delete_many", None)

    async def adelete_many(  # type: ignore[override]
        self, keys: Iterable[Any], version: int | None = None
    ) -> int | None:
        """Delete every key in one DEL; return how many existed, or None for no keys."""
        return await self._arun(self._op_delete_many(keys, version), "delete_many", None)

    def _op_delete_many(self, keys: Iterable[Any], version: int | None) -> Operation[int | None]:
        made = [self._key(key, version=version) for key in keys]
        return int((yield Call(("DEL", *made)))) if made else None

    # -- incr / decr / versions -------------------------------------------------------------

    def incr(
        self, key: Any, delta: int = 1, version: int | None = None, ignore_key_check: bool = False
    ) -> int:
        """Add ``delta`` atomically, keeping the TTL; ``ValueError`` if the key is missing,
        unless ``ignore_key_check`` (django-redis): then a missing key starts at ``delta``."""
        op = self._op_incr(key, delta, version, ignore_key_check)
        # With IGNORE_EXCEPTIONS an unavailable Redis gives None, as in django-redis
        # (docs/cache.md), though Django's signature says int: so do decr and incr_version.
        return self._run(op, "incr", None)  # type: ignore[return-value]

    async def aincr(
        self, key: Any, delta: int = 1, version: int | None = None, ignore_key_check: bool = False
    ) -> int:
        """Add ``delta`` atomically (see ``incr``)."""
        op = self._op_incr(key, delta, version, ignore_key_check)
        pending = self._arun(op, "incr", None)  # bound first: typed by its arguments
        return await pending  # type: ignore[return-value]

    def decr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Subtract ``delta`` atomically, keeping the TTL."""
        return self._run(self._op_incr(key, -delta, version), "decr", None)  # type: ignore[return-value]

    async def adecr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Subtract ``delta`` atomically, keeping the TTL."""
        op = self._op_incr(key, -delta, version)
        pending = self._arun(op, "decr", None)
        return await pending  # type: ignore[return-value]

    def _op_incr(
        self, key: Any, delta: Any, version: int | None, create: bool = False
    ) -> Operation[Any]:
        full = self._key(key, version=version)
        if create:  # INCRBY creates a missing key without a TTL, as in django-redis
            try:
                return int((yield Call(("INCRBY", full, delta))))
            except ResponseError as exc:
                if "WRONGTYPE" in str(exc):
                    raise
        reply = yield Eval(lua("incr"), (full,), (delta,))
        while isinstance(reply, list):
            # Not a raw integer (a float, an int beyond 64 bits, or not a number at all):
            # add in Python like Django does, and write back only if nobody changed it.
            raw = reply[0]
            try:
                current = self._codec.decode(raw)
            except UndecodableValue:
                raise ValueError(f"Key '{key}' holds a value djredis cannot decode.") from None
            new = current + delta  # TypeError for non-numbers, as in Django
            if (yield Eval(lua("cas_set"), (full,), (raw, self._codec.encode(new)))):
                return new
            reply = yield Eval(lua("incr"), (full,), (delta,))
        if reply is None:
            raise ValueError(f"Key '{key}' not found.")
        return int(reply)

    def incr_version(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Move ``key`` to version + ``delta`` atomically (RENAME keeps the TTL)."""
        op = self._op_incr_version(key, delta, version)
        return self._run(op, "incr_version", None)  # type: ignore[return-value]

    async def aincr_version(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Move ``key`` to version + ``delta`` atomically (RENAME keeps the TTL)."""
        op = self._op_incr_version(key, delta, version)
        pending = self._arun(op, "incr_version", None)
        return await pending  # type: ignore[return-value]

    def decr_version(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Move ``key`` to version - ``delta``."""
        return self.incr_version(key, -delta, version)

    async def adecr_version(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Move ``key`` to version - ``delta``."""
        return await self.aincr_version(key, -delta, version)

    def _op_incr_version(self, key: Any, delta: int, version: int | None) -> Operation[int]:
        if version is None:
            version = self.version
        old = self._key(key, version=version)
        new = self._key(key, version=version + delta)
        if old == new:
            if not (yield Call(("EXISTS", old))):
                raise ValueError(f"Key '{key}' not found.")
            return version + delta
        try:
            yield Call(("RENAME", old, new))
        except ResponseError as exc:
            if "no such key" in str(exc).lower():
                raise ValueError(f"Key '{key}' not found.") from None
            raise
        return version + delta

    # -- clear / close ----------------------------------------------------------------------

    def clear(self) -> None:
        """Delete this cache's keys (its KEY_PREFIX); FLUSHDB when it has no prefix."""
        self._run(self._op_clear(), "clear", None)

    async def aclear(self) -> None:
        """Delete this cache's keys (its KEY_PREFIX); FLUSHDB when it has no prefix."""
        await self._arun(self._op_clear(), "clear", None)

    def _op_clear(self) -> Operation[None]:
        pattern = self._prefix_pattern()
        if pattern is None:
            for node in (yield Primaries()):
                yield Call(("FLUSHDB",), node=node)
        else:
            yield from self._scan_delete(pattern, DEFAULT_SCAN_COUNT)

    def _prefix_pattern(self) -> str | None:
        """Return a SCAN pattern matching every key this cache can make, or None."""
        if not self.key_prefix:
            return None
        key_mark, version_mark = "\x00key\x00", "\x00version\x00"
        sample = self.key_func(key_mark, self.key_prefix, version_mark)
        if key_mark not in sample or not sample.startswith(self.key_prefix):
            return glob_escape(self.key_prefix) + "*"
        parts = [part.split(version_mark) for part in sample.split(key_mark)]
        return "*".join("*".join(glob_escape(p) for p in part) for part in parts)

    @property
    def topology(self) -> Topology:
        """The topology this cache's commands go through (djredis.ratelimit uses it)."""
        return self._group

    def close(self, **kwargs: Any) -> None:
        """Keep pooled connections (Django calls this after every request) unless
        ``CLOSE_CONNECTION`` is on."""
        if self._close_connection:
            self._group.disconnect()

    async def aclose(self, **kwargs: Any) -> None:
        """Keep this loop's connection open unless ``CLOSE_CONNECTION`` is on."""
        if self._close_connection:
            self._group.close_loop(loop_state())
