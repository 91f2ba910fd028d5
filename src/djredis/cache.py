"""Django cache backend on Redis: ``'BACKEND': 'djredis.cache.RedisCache'``.

The backend normalises keys, versions and timeouts and encodes values; each operation is a
generator of command descriptions (``djredis._commands``), so the same logic serves the
sync API here and the async one. Beyond Django's contract it keeps what django-redis users
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

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from redis.exceptions import ResponseError
from redis.lock import Lock

from ._codec import Codec, UndecodableValue
from ._commands import Batch, Call, Eval, Operation, run_sync
from ._config import parse_connection_settings
from ._connections import ServerGroup
from ._errors import CONNECTION_ERRORS, BurstLogger, ErrorPolicy
from ._scripts import lua
from .client import CacheClient, check_client_class
from .compressors import resolve_compressor
from .serializers import resolve_serializer

__all__ = ["RedisCache"]

logger = logging.getLogger("djredis.cache")

_MISSING = object()
DEFAULT_COMPRESS_MIN_LENGTH = 256
DEFAULT_SCAN_COUNT = 1000
_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "*?[]\\"})


def _glob_escape(text: str) -> str:
    return text.translate(_GLOB_SPECIAL)


def _default_reverse_key(key: str) -> str:
    return key.split(":", 2)[2]


def _setting_name(server: Any, params: Mapping[str, Any]) -> str:
    """Return ``CACHES['alias']`` for error messages (Django does not pass the alias)."""
    for alias, conf in getattr(settings, "CACHES", {}).items():
        if conf.get("LOCATION") == server and conf.get("OPTIONS") == params.get("OPTIONS"):
            return f"CACHES[{alias!r}]"
    return f"CACHES[<alias with LOCATION {server!r}>]"


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
        self._group = ServerGroup(
            parse_connection_settings(server, options, setting=f"{where}['OPTIONS']")
        )
        check_client_class(options.get("CLIENT_CLASS"), f"{where}['OPTIONS']['CLIENT_CLASS']")
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
            self._garbage.log(
                logging.WARNING,
                "djredis: the value at %r on %s cannot be decoded (%s); treated as a miss",
                key,
                self._where,
                exc,
            )
            return miss

    # -- Django's cache API -----------------------------------------------------------------

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        """Return the value at ``key``, or ``default`` when it is missing."""
        key = self.make_and_validate_key(key, version=version)
        return self._run(self._get(key, default), "get", default)

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
        key = self.make_and_validate_key(key, version=version)
        data = self._codec.encode(value)
        return bool(self._run(self._set(key, data, self._ms(timeout), nx, xx), "set", False))

    def _set(self, key: str, data: Any, ms: int | None, nx: bool, xx: bool) -> Operation[bool]:
        if ms == 0:
            # Django: a non-positive timeout means "expire now"; the old value goes too.
            if nx:
                return not (yield Call(("EXISTS", key)))
            return bool((yield Call(("DEL", key)))) or not xx
        args: tuple[Any, ...] = ("SET", key, data)
        if ms is not None:
            args += ("PX", ms)
        if nx:
            args += ("NX",)
        elif xx:
            args += ("XX",)
        return bool((yield Call(args)))

    def add(
        self,
        key: Any,
        value: Any,
        timeout: float | None = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> bool:
        """Store ``value`` only if ``key`` is absent; return whether it was stored."""
        key = self.make_and_validate_key(key, version=version)
        data = self._codec.encode(value)
        return bool(self._run(self._set(key, data, self._ms(timeout), True, False), "add", False))

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
        key = self.make_and_validate_key(key, version=version)
        value = self._run(self._get(key, _MISSING), "get_or_set", _MISSING)
        if value is not _MISSING:
            return value
        if callable(default):
            default = default()
        ms = self._ms(timeout)
        if ms == 0:
            return default
        data = self._codec.encode(default)
        return self._run(self._add_and_get(key, data, ms, default), "get_or_set", default)

    def _add_and_get(self, key: str, data: Any, ms: int | None, default: Any) -> Operation[Any]:
        add: tuple[Any, ...] = ("SET", key, data, "NX")
        if ms is not None:
            add += ("PX", ms)
        _, raw = yield Batch((add, ("GET", key)))
        if raw is None:
            return default
        return self._decode(raw, key, default)

    def touch(
        self,
        key: Any,
        timeout: float | None = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> bool:
        """Give ``key`` a new timeout; return whether the key exists."""
        key = self.make_and_validate_key(key, version=version)
        return bool(self._run(self._touch(key, self._ms(timeout)), "touch", False))

    def _touch(self, key: str, ms: int | None) -> Operation[bool]:
        if ms is None:
            # PERSIST answers 0 for a key without a TTL, so existence is asked separately.
            _, exists = yield Batch((("PERSIST", key), ("EXISTS", key)), transaction=True)
            return bool(exists)
        if ms == 0:
            return bool((yield Call(("DEL", key))))
        return bool((yield Call(("PEXPIRE", key, ms))))

    def delete(self, key: Any, version: int | None = None) -> bool:
        """Delete ``key``; return whether it existed."""
        key = self.make_and_validate_key(key, version=version)
        return bool(self._run(self._call(("DEL", key)), "delete", False))

    def _call(self, args: tuple[Any, ...], write: bool = True) -> Operation[Any]:
        return (yield Call(args, write))

    def has_key(self, key: Any, version: int | None = None) -> bool:
        """Return whether ``key`` exists (and has not expired)."""
        key = self.make_and_validate_key(key, version=version)
        return bool(self._run(self._call(("EXISTS", key), False), "has_key", False))

    def get_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        """Return a dict of the keys that exist, in one MGET."""
        made = {self.make_and_validate_key(key, version=version): key for key in keys}
        if not made:
            return {}
        result: dict[Any, Any] = self._run(self._get_many(made), "get_many", {})
        return result

    def _get_many(self, made: dict[str, Any]) -> Operation[dict[Any, Any]]:
        raws = yield Call(("MGET", *made), False)
        result = {}
        for (full, key), raw in zip(made.items(), raws, strict=True):
            if raw is not None:
                value = self._decode(raw, full, _MISSING)
                if value is not _MISSING:
                    result[key] = value
        return result

    def set_many(
        self,
        data: Mapping[Any, Any],
        timeout: float | None = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> list[Any]:
        """Store every item in one command; return the keys that failed (Django's contract)."""
        if not data:
            return []
        encoded = {
            self.make_and_validate_key(key, version=version): self._codec.encode(value)
            for key, value in data.items()
        }
        stored = self._run(self._set_many(encoded, self._ms(timeout)), "set_many", False)
        return [] if stored else list(data)

    def _set_many(self, encoded: dict[str, Any], ms: int | None) -> Operation[bool]:
        if ms == 0:
            yield Call(("DEL", *encoded))
        elif ms is None:
            yield Call(("MSET", *(item for pair in encoded.items() for item in pair)))
        else:
            yield Eval(lua("set_many"), tuple(encoded), (ms, *encoded.values()))
        return True

    def delete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        """Delete every key in one DEL."""
        made = [self.make_and_validate_key(key, version=version) for key in keys]
        if made:
            self._run(self._call(("DEL", *made)), "delete_many", None)

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Add ``delta`` atomically, keeping the TTL; ``ValueError`` if the key is missing."""
        full = self.make_and_validate_key(key, version=version)
        result: int = self._run(self._incr(full, key, delta), "incr", None)
        return result

    def decr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Subtract ``delta`` atomically, keeping the TTL."""
        return self.incr(key, -delta, version=version)

    def _incr(self, full: str, key: Any, delta: Any) -> Operation[Any]:
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
        if version is None:
            version = self.version
        old = self.make_and_validate_key(key, version=version)
        new = self.make_and_validate_key(key, version=version + delta)
        result: int = self._run(self._rename(old, new, key, version + delta), "incr_version", None)
        return result

    def decr_version(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Move ``key`` to version - ``delta``."""
        return self.incr_version(key, -delta, version)

    def _rename(self, old: str, new: str, key: Any, new_version: int) -> Operation[int]:
        if old == new:
            if not (yield Call(("EXISTS", old))):
                raise ValueError(f"Key '{key}' not found.")
            return new_version
        try:
            yield Call(("RENAME", old, new))
        except ResponseError as exc:
            if "no such key" in str(exc).lower():
                raise ValueError(f"Key '{key}' not found.") from None
            raise
        return new_version

    def clear(self) -> None:
        """Delete this cache's keys (its KEY_PREFIX); FLUSHDB when it has no prefix."""
        pattern = self._prefix_pattern()
        if pattern is None:
            self._run(self._call(("FLUSHDB",)), "clear", None)
        else:
            self._run(self._scan_delete(pattern, DEFAULT_SCAN_COUNT), "clear", 0)

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
        cursor, deleted = 0, 0
        while True:
            cursor, keys = yield Call(("SCAN", cursor, "MATCH", pattern, "COUNT", count))
            if keys:
                deleted += yield Call(("UNLINK", *keys))
            if not int(cursor):
                return deleted

    def close(self, **kwargs: Any) -> None:
        """Keep pooled connections (Django calls this after every request) unless
        ``CLOSE_CONNECTION`` is on."""
        if self._close_connection:
            self._group.disconnect()

    # -- django-redis extras ----------------------------------------------------------------

    def ttl(self, key: Any, version: int | None = None) -> int | None:
        """Return seconds to live: None if the key never expires, 0 if it does not exist."""
        return self._ttl("TTL", key, version)

    def pttl(self, key: Any, version: int | None = None) -> int | None:
        """Return milliseconds to live: None if the key never expires, 0 if it is missing."""
        return self._ttl("PTTL", key, version)

    def _ttl(self, command: str, key: Any, version: int | None) -> int | None:
        full = self.make_and_validate_key(key, version=version)
        left: int | None = self._run(self._call((command, full), False), command.lower(), 0)
        if left is None or left == -2:
            return 0
        return None if left == -1 else left

    def expire(self, key: Any, timeout: float | timedelta, version: int | None = None) -> bool:
        """Set a timeout in seconds (fractions kept, via PEXPIRE); return whether it exists."""
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        return self._expire("PEXPIRE", key, round(seconds * 1000), version)

    def pexpire(self, key: Any, timeout: int | timedelta, version: int | None = None) -> bool:
        """Set a timeout in milliseconds; return whether the key exists."""
        ms = timeout.total_seconds() * 1000 if isinstance(timeout, timedelta) else timeout
        return self._expire("PEXPIRE", key, round(ms), version)

    def expire_at(self, key: Any, when: datetime | float, version: int | None = None) -> bool:
        """Expire at a datetime or Unix timestamp; return whether the key exists."""
        stamp = when.timestamp() if isinstance(when, datetime) else when
        return self._expire("PEXPIREAT", key, round(stamp * 1000), version)

    def pexpire_at(self, key: Any, when: datetime | int, version: int | None = None) -> bool:
        """Expire at a datetime or a Unix timestamp in milliseconds."""
        ms = when.timestamp() * 1000 if isinstance(when, datetime) else when
        return self._expire("PEXPIREAT", key, round(ms), version)

    def _expire(self, command: str, key: Any, value: int, version: int | None) -> bool:
        full = self.make_and_validate_key(key, version=version)
        return bool(self._run(self._call((command, full, value)), command.lower(), False))

    def persist(self, key: Any, version: int | None = None) -> bool:
        """Remove the key's timeout; return whether a timeout was removed (Redis PERSIST)."""
        full = self.make_and_validate_key(key, version=version)
        return bool(self._run(self._call(("PERSIST", full)), "persist", False))

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
        full = self.make_and_validate_key(key, version=version)
        policy = self._policy
        lock_class = _IgnoringLock if policy.ignore else Lock
        lock: Lock = self._group.client(True).lock(
            full,
            timeout=timeout,
            sleep=sleep,
            blocking=blocking,
            blocking_timeout=blocking_timeout,
            thread_local=thread_local,
            lock_class=lock_class,
        )
        if isinstance(lock, _IgnoringLock):
            lock.policy = policy
        return lock

    def _pattern(self, search: str, version: int | None, prefix: str | None = None) -> str:
        pattern: str = self.key_func(
            search,
            _glob_escape(self.key_prefix if prefix is None else prefix),
            _glob_escape(str(self.version if version is None else version)),
        )
        return pattern

    def iter_keys(
        self, search: str, itersize: int | None = None, version: int | None = None
    ) -> Iterator[str]:
        """Yield the cache keys (as the user wrote them) matching a glob, via SCAN."""
        pattern = self._pattern(search, version)
        count = itersize or DEFAULT_SCAN_COUNT
        cursor = 0
        while True:
            cursor, keys = self._run(
                self._call(("SCAN", cursor, "MATCH", pattern, "COUNT", count)), "iter_keys", (0, [])
            )
            for raw in keys:
                yield self._reverse_key(raw.decode() if isinstance(raw, bytes) else raw)
            if not int(cursor):
                return

    def keys(self, search: str, version: int | None = None) -> list[str]:
        """Return every cache key matching a glob (SCAN, never the blocking KEYS)."""
        return list(self.iter_keys(search, version=version))

    def delete_pattern(
        self,
        pattern: str,
        version: int | None = None,
        prefix: str | None = None,
        itersize: int | None = None,
    ) -> int:
        """Delete the keys matching a glob, a SCAN page at a time; return how many."""
        glob = self._pattern(pattern, version, prefix)
        deleted: int = self._run(
            self._scan_delete(glob, itersize or DEFAULT_SCAN_COUNT), "delete_pattern", 0
        )
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
