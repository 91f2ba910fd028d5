"""Django cache backend on Redis: ``'BACKEND': 'djredis.cache.RedisCache'``.

The backend normalises keys, versions and timeouts and encodes values; each operation is a
generator of command descriptions (``djredis._commands``), so the same logic serves the
sync API (redis-py's pooled clients) and the native ``a*`` API (one multiplexed connection
per event loop; never a thread hop). Beyond Django's contract it keeps what django-redis users
rely on: ``ttl``/``pttl``/``expire``/``persist``/``lock``/``iter_keys``/``keys``/
``delete_pattern`` and ``cache.client.get_client()``.

Behaviour worth knowing (README, "Cache"):
- timeouts are sent in milliseconds (``PX``), so 0.5 means 500 ms;
- ``incr``/``decr`` and ``incr_version`` are atomic and keep the key's TTL;
- ``get_many``/``set_many``/``delete_many`` are one command each;
- ``clear()`` deletes only this cache's keys when it has a KEY_PREFIX (SCAN + UNLINK);
  without a prefix it empties the whole database (FLUSHDB), as Django's builtin does.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache.backends.base import (
    DEFAULT_TIMEOUT,
    MEMCACHE_MAX_KEY_LENGTH,
    BaseCache,
    default_key_func,
)
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from redis.asyncio.lock import Lock as AsyncLock
from redis.exceptions import ResponseError
from redis.lock import Lock

from ._codec import Codec, UndecodableValue
from ._commands import Batch, Call, Eval, Operation, Primaries, run_async, run_sync
from ._config import ClusterSettings, SentinelSettings, parse_connection_settings
from ._errors import CONNECTION_ERRORS, BurstLogger, ErrorPolicy
from ._loops import loop_state
from ._scripts import lua
from ._topology import connect
from .client import CacheClient, check_client_class
from .compressors import resolve_compressor
from .serializers import resolve_serializer

__all__ = ["RedisCache"]

logger = logging.getLogger("djredis.cache")

_MISSING = object()
DEFAULT_COMPRESS_MIN_LENGTH = 256
DEFAULT_SCAN_COUNT = 1000
# The characters for which Django's validate_key warns (memcached cannot store them).
_MEMCACHED_UNSAFE = re.compile(r"[\x00-\x20\x7f]")
# "scheme://user:password@" in a URL: what _setting_name hides.
_CREDENTIALS = re.compile(r"(://[^/@:]*:)[^@/]*@")
_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "*?[]\\"})


def _glob_escape(text: str) -> str:
    return text.translate(_GLOB_SPECIAL)


# Where a key scan stands: the primaries to visit, which one, and its SCAN cursor.
_ScanPosition = tuple[tuple[Any, ...], int, int]


def _default_reverse_key(key: str) -> str:
    return key.split(":", 2)[2]


def _setting_name(server: Any, params: Mapping[str, Any]) -> str:
    """Return ``CACHES['alias']`` for error messages (Django does not pass the alias)."""
    for alias, conf in getattr(settings, "CACHES", {}).items():
        if conf.get("LOCATION") == server and conf.get("OPTIONS") == params.get("OPTIONS"):
            return f"CACHES[{alias!r}]"
    # The LOCATION goes into log lines: never with its password.
    shown = _CREDENTIALS.sub(r"\1***@", repr(server))
    return f"CACHES[<alias with LOCATION {shown}>]"


def _bool_option(options: Mapping[str, Any], name: str, default: bool, setting: str) -> bool:
    value = options.get(name, default)
    if not isinstance(value, bool):
        raise ImproperlyConfigured(f"{setting}['OPTIONS'][{name!r}] must be True or False.")
    return value


class RedisCache(BaseCache):
    """A Django cache on Redis with exact Django semantics and django-redis's extras."""

    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        super().__init__(params)
        where = _setting_name(server, params)
        self._where = where
        options: dict[str, Any] = dict(params.get("OPTIONS") or {})
        connection = parse_connection_settings(server, options, setting=f"{where}['OPTIONS']")
        self._group = connect(connection)
        # In Redis Cluster the user key becomes a hash tag ("prefix:1:{key}"), so every
        # version of a key shares one slot and incr_version stays one atomic RENAME
        # (README, "Topologies").
        self._tag_keys = isinstance(connection, ClusterSettings)
        check_client_class(
            options.get("CLIENT_CLASS"),
            f"{where}['OPTIONS']['CLIENT_CLASS']",
            sentinel=isinstance(connection, SentinelSettings),
        )
        if "SERIALIZER" in options and "serializer" in options:
            raise ImproperlyConfigured(
                f"{where}['OPTIONS'] sets both 'SERIALIZER' and 'serializer'; keep one."
            )
        serializer_name = "SERIALIZER" if "SERIALIZER" in options else "serializer"
        min_length = options.get("COMPRESS_MIN_LENGTH", DEFAULT_COMPRESS_MIN_LENGTH)
        if isinstance(min_length, bool) or not isinstance(min_length, int) or min_length < 0:
            raise ImproperlyConfigured(
                f"{where}['OPTIONS']['COMPRESS_MIN_LENGTH'] must be a number of bytes >= 0."
            )
        self._codec = Codec(
            resolve_serializer(
                options.get(serializer_name),
                setting=f"{where}['OPTIONS'][{serializer_name!r}]",
            ),
            resolve_compressor(
                options.get("COMPRESSOR"), setting=f"{where}['OPTIONS']['COMPRESSOR']"
            ),
            min_compress_length=min_length,
        )
        ignore = _bool_option(
            options,
            "IGNORE_EXCEPTIONS",
            getattr(settings, "DJANGO_REDIS_IGNORE_EXCEPTIONS", False),
            where,
        )
        self._close_connection = _bool_option(options, "CLOSE_CONNECTION", False, where)
        self._policy = ErrorPolicy(ignore=ignore, logger=logger, where=where)
        self._garbage = BurstLogger(logger)
        reverse = params.get("REVERSE_KEY_FUNCTION")
        self._reverse_key: Callable[[str], str] = (
            import_string(reverse) if isinstance(reverse, str) else reverse or _default_reverse_key
        )
        self._client = CacheClient(self._group)

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def client(self) -> CacheClient:
        """The django-redis-style client: ``cache.client.get_client(write=True)``."""
        return self._client

    def _run(self, operation: Operation[Any], name: str, fallback: Any) -> Any:
        return run_sync(self._group, operation, self._policy, name, fallback)

    def _key(self, key: Any, version: int | None = None) -> str:
        """Return the Redis key: Django's ``make_and_validate_key`` without its hot-path cost.

        Django's memcached-compatibility warnings (CacheKeyWarning) are kept exactly: the
        full check runs only when a cheap test says the key could trigger one.
        """
        if version is None:
            version = self.version
        if self._tag_keys:
            key = f"{{{key}}}"
        if self.key_func is default_key_func:  # not cached: Django's tests swap key_func
            full = f"{self.key_prefix}:{version}:{key}"
        else:
            full = self.key_func(key, self.key_prefix, version)
        if len(full) > MEMCACHE_MAX_KEY_LENGTH or _MEMCACHED_UNSAFE.search(full):
            self.validate_key(full)
        return full

    def make_key(self, key: Any, version: int | None = None) -> str:
        """Return the full Redis key for ``key`` (``prefix:version:{key}`` in a Cluster)."""
        if self._tag_keys:
            key = f"{{{key}}}"
        return super().make_key(key, version)

    def make_and_validate_key(self, key: Any, version: int | None = None) -> str:
        """Return the full Redis key for ``key``, warning like Django for unsafe keys."""
        return self._key(key, version)

    def _ms(self, timeout: Any) -> int | None:
        """Return the TTL in ms: None = never expires, 0 = expire now (don't store)."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        if timeout is None:
            return None
        if timeout <= 0:
            return 0
        ms: int = max(1, round(timeout * 1000))
        return ms

    def _decode(self, raw: bytes, key: str, miss: Any) -> Any:
        try:
            return self._codec.decode(raw)
        except UndecodableValue as exc:
            self._log_garbage(key, exc)
            return miss

    def _log_garbage(self, key: str, exc: UndecodableValue) -> None:
        self._garbage.log(
            logging.WARNING,
            "djredis: the value at %r on %s cannot be decoded (%s); treated as a miss",
            key,
            self._where,
            exc,
        )

    def _arun(self, operation: Operation[Any], name: str, fallback: Any) -> Awaitable[Any]:
        return run_async(self._group, operation, self._policy, name, fallback)

    # Each operation below is a generator written once (``_op_*``); the sync method runs it
    # with blocking I/O, its ``a*`` twin on the event loop's multiplexed connection.

    # -- get / set / add / get_or_set -------------------------------------------------------

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        """Return the value at ``key``, or ``default`` when it is missing."""
        return self._run(self._op_get(key, default, version), "get", default)

    async def aget(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        """Return the value at ``key``, or ``default`` when it is missing."""
        return await self._arun(self._op_get(key, default, version), "get", default)

    def _op_get(self, key: Any, default: Any, version: int | None) -> Operation[Any]:
        return self._get(self._key(key, version=version), default)

    def _get(self, key: str, default: Any) -> Operation[Any]:
        raw = yield Call(("GET", key), False)
        if raw is None:
            return default
        return self._decode(raw, key, default)

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
        op = self._op_set(key, value, timeout, version, nx, xx)
        return bool(await self._arun(op, "set", False))

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
        op = self._op_set(key, value, timeout, version, True, False)
        return bool(await self._arun(op, "add", False))

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
    ) -> Any:
        """Return the cached value, or store ``default`` (called if callable) and return it.

        On a miss the add and the read-back share one round trip; the value returned is
        whatever won, as in Django when another client added a value meanwhile.
        """
        full = self._key(key, version=version)
        value = self._run(self._get(full, _MISSING), "get_or_set", _MISSING)
        if value is not _MISSING:
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
    ) -> Any:
        """Return the cached value, or store ``default`` (a sync or async callable is
        called) and return it."""
        full = self._key(key, version=version)
        value = await self._arun(self._get(full, _MISSING), "get_or_set", _MISSING)
        if value is not _MISSING:
            return value
        if callable(default):
            default = default()
        if inspect.isawaitable(default):
            default = await default
        return await self._arun(self._add_and_get(full, default, timeout), "get_or_set", default)

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
        op = self._op_one("EXISTS", key, version, write=False)
        return bool(self._run(op, "has_key", False))

    async def ahas_key(self, key: Any, version: int | None = None) -> bool:
        """Return whether ``key`` exists (and has not expired)."""
        op = self._op_one("EXISTS", key, version, write=False)
        return bool(await self._arun(op, "has_key", False))

    def _op_one(
        self, command: str, key: Any, version: int | None, *args: Any, write: bool = True
    ) -> Operation[Any]:
        """Run ``command key *args`` on one cache key and return the raw reply."""
        return (yield Call((command, self._key(key, version=version), *args), write))

    # -- get_many / set_many / delete_many --------------------------------------------------

    def get_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        """Return a dict of the keys that exist, in one MGET."""
        result: dict[Any, Any] = self._run(self._op_get_many(keys, version), "get_many", {})
        return result

    async def aget_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        """Return a dict of the keys that exist, in one MGET."""
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
        stored = await self._arun(self._op_set_many(data, timeout, version), "set_many", False)
        return [] if stored else list(data)

    def _op_set_many(
        self, data: Mapping[Any, Any], timeout: Any, version: int | None
    ) -> Operation[bool]:
        encoded = {
            self._key(key, version=version): self._codec.encode(value)
            for key, value in data.items()
        }
        if not encoded:
            return True
        ms = self._ms(timeout)
        if ms == 0:
            yield Call(("DEL", *encoded))
        elif ms is None:
            yield Call(("MSET", *(item for pair in encoded.items() for item in pair)))
        else:
            yield Eval(lua("set_many"), tuple(encoded), (ms,), per_key=tuple(encoded.values()))
        return True

    def delete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        """Delete every key in one DEL."""
        self._run(self._op_delete_many(keys, version), "delete_many", None)

    async def adelete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        """Delete every key in one DEL."""
        await self._arun(self._op_delete_many(keys, version), "delete_many", None)

    def _op_delete_many(self, keys: Iterable[Any], version: int | None) -> Operation[None]:
        made = [self._key(key, version=version) for key in keys]
        if made:
            yield Call(("DEL", *made))

    # -- incr / decr / versions -------------------------------------------------------------

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Add ``delta`` atomically, keeping the TTL; ``ValueError`` if the key is missing."""
        result: int = self._run(self._op_incr(key, delta, version), "incr", None)
        return result

    async def aincr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Add ``delta`` atomically, keeping the TTL; ``ValueError`` if the key is missing."""
        result: int = await self._arun(self._op_incr(key, delta, version), "incr", None)
        return result

    def decr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Subtract ``delta`` atomically, keeping the TTL."""
        result: int = self._run(self._op_incr(key, -delta, version), "decr", None)
        return result

    async def adecr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Subtract ``delta`` atomically, keeping the TTL."""
        result: int = await self._arun(self._op_incr(key, -delta, version), "decr", None)
        return result

    def _op_incr(self, key: Any, delta: Any, version: int | None) -> Operation[Any]:
        full = self._key(key, version=version)
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
        result: int = self._run(self._op_incr_version(key, delta, version), "incr_version", None)
        return result

    async def aincr_version(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Move ``key`` to version + ``delta`` atomically (RENAME keeps the TTL)."""
        op = self._op_incr_version(key, delta, version)
        result: int = await self._arun(op, "incr_version", None)
        return result

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
            return _glob_escape(self.key_prefix) + "*"
        parts = [part.split(version_mark) for part in sample.split(key_mark)]
        return "*".join("*".join(_glob_escape(p) for p in part) for part in parts)

    def _scan_delete(self, pattern: str, count: int) -> Operation[int]:
        deleted = 0
        for node in (yield Primaries()):  # every primary of a Cluster; else the one server
            cursor = 0
            while True:
                scan = ("SCAN", cursor, "MATCH", pattern, "COUNT", count)
                cursor, keys = yield Call(scan, node=node)
                if keys:
                    deleted += yield Call(("UNLINK", *keys))
                if not int(cursor):
                    break
        return deleted

    def close(self, **kwargs: Any) -> None:
        """Keep pooled connections (Django calls this after every request) unless
        ``CLOSE_CONNECTION`` is on."""
        if self._close_connection:
            self._group.disconnect()

    async def aclose(self, **kwargs: Any) -> None:
        """Keep this loop's connection open unless ``CLOSE_CONNECTION`` is on."""
        if self._close_connection:
            self._group.close_loop(loop_state())

    # -- django-redis extras: TTLs ----------------------------------------------------------

    def ttl(self, key: Any, version: int | None = None) -> int | None:
        """Return seconds to live: None if the key never expires, 0 if it does not exist."""
        return self._run(self._op_ttl("TTL", key, version), "ttl", 0)  # type: ignore[no-any-return]

    async def attl(self, key: Any, version: int | None = None) -> int | None:
        """Return seconds to live: None if the key never expires, 0 if it does not exist."""
        return await self._arun(self._op_ttl("TTL", key, version), "ttl", 0)  # type: ignore[no-any-return]

    def pttl(self, key: Any, version: int | None = None) -> int | None:
        """Return milliseconds to live: None if the key never expires, 0 if it is missing."""
        return self._run(self._op_ttl("PTTL", key, version), "pttl", 0)  # type: ignore[no-any-return]

    async def apttl(self, key: Any, version: int | None = None) -> int | None:
        """Return milliseconds to live: None if the key never expires, 0 if it is missing."""
        return await self._arun(self._op_ttl("PTTL", key, version), "pttl", 0)  # type: ignore[no-any-return]

    def _op_ttl(self, command: str, key: Any, version: int | None) -> Operation[int | None]:
        left = yield from self._op_one(command, key, version, write=False)
        if left == -2:
            return 0
        return None if left == -1 else int(left)

    def expire(self, key: Any, timeout: float | timedelta, version: int | None = None) -> bool:
        """Set a timeout in seconds (fractions kept, via PEXPIRE); return whether it exists."""
        return bool(self._run(self._op_expire(key, timeout, 1000, version), "expire", False))

    async def aexpire(
        self, key: Any, timeout: float | timedelta, version: int | None = None
    ) -> bool:
        """Set a timeout in seconds (fractions kept, via PEXPIRE); return whether it exists."""
        return bool(await self._arun(self._op_expire(key, timeout, 1000, version), "expire", False))

    def pexpire(self, key: Any, timeout: int | timedelta, version: int | None = None) -> bool:
        """Set a timeout in milliseconds; return whether the key exists."""
        return bool(self._run(self._op_expire(key, timeout, 1, version), "pexpire", False))

    async def apexpire(
        self, key: Any, timeout: int | timedelta, version: int | None = None
    ) -> bool:
        """Set a timeout in milliseconds; return whether the key exists."""
        return bool(await self._arun(self._op_expire(key, timeout, 1, version), "pexpire", False))

    def _op_expire(
        self, key: Any, timeout: float | timedelta, unit_ms: int, version: int | None
    ) -> Operation[Any]:
        ms = timeout.total_seconds() * 1000 if isinstance(timeout, timedelta) else timeout * unit_ms
        return (yield from self._op_one("PEXPIRE", key, version, round(ms)))

    def expire_at(self, key: Any, when: datetime | float, version: int | None = None) -> bool:
        """Expire at a datetime or Unix timestamp; return whether the key exists."""
        return bool(self._run(self._op_expire_at(key, when, 1000, version), "expire_at", False))

    async def aexpire_at(
        self, key: Any, when: datetime | float, version: int | None = None
    ) -> bool:
        """Expire at a datetime or Unix timestamp; return whether the key exists."""
        op = self._op_expire_at(key, when, 1000, version)
        return bool(await self._arun(op, "expire_at", False))

    def pexpire_at(self, key: Any, when: datetime | int, version: int | None = None) -> bool:
        """Expire at a datetime or a Unix timestamp in milliseconds."""
        return bool(self._run(self._op_expire_at(key, when, 1, version), "pexpire_at", False))

    async def apexpire_at(self, key: Any, when: datetime | int, version: int | None = None) -> bool:
        """Expire at a datetime or a Unix timestamp in milliseconds."""
        op = self._op_expire_at(key, when, 1, version)
        return bool(await self._arun(op, "pexpire_at", False))

    def _op_expire_at(
        self, key: Any, when: datetime | float, unit_ms: int, version: int | None
    ) -> Operation[Any]:
        ms = when.timestamp() * 1000 if isinstance(when, datetime) else when * unit_ms
        return (yield from self._op_one("PEXPIREAT", key, version, round(ms)))

    def persist(self, key: Any, version: int | None = None) -> bool:
        """Remove the key's timeout; return whether a timeout was removed (Redis PERSIST)."""
        return bool(self._run(self._op_one("PERSIST", key, version), "persist", False))

    async def apersist(self, key: Any, version: int | None = None) -> bool:
        """Remove the key's timeout; return whether a timeout was removed (Redis PERSIST)."""
        return bool(await self._arun(self._op_one("PERSIST", key, version), "persist", False))

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
            _glob_escape(self.key_prefix if prefix is None else prefix),
            _glob_escape(str(self.version if version is None else version)),
        )
        return pattern

    def _op_scan_page(
        self, position: _ScanPosition | None, pattern: str, count: int
    ) -> Operation[tuple[_ScanPosition | None, list[str]]]:
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
        position: _ScanPosition | None = None
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
        position: _ScanPosition | None = None
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
    ) -> bool:
        try:
            return bool(await super().acquire(blocking, blocking_timeout, token))
        except CONNECTION_ERRORS as exc:
            return self.policy.handle(exc, "lock.acquire", False)

    async def release(self) -> None:
        try:
            await super().release()
        except CONNECTION_ERRORS as exc:
            self.policy.handle(exc, "lock.release", None)
