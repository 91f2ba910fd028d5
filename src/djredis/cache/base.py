"""What every djredis cache method stands on: settings, keys, timeouts, values, runners.

``CacheBase`` reads the cache's OPTIONS once, builds the key the way Django does (hash-tagged
in a Cluster), turns Django timeouts into milliseconds, decodes values (garbage is a miss
and a log line), and runs operations: ``_run`` with blocking I/O, ``_arun`` on the event
loop's multiplexed connection. The Django contract (``backend``) and django-redis's extras
(``extras``) are written on top of it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
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

from djredis._config.options import parse_connection_settings
from djredis._config.server import ClusterSettings, SentinelSettings
from djredis._core.commands import Call, Operation, Primaries
from djredis._core.errors import BurstLogger, ErrorPolicy
from djredis._routing.base import run_async, run_sync
from djredis._routing.connect import connect
from djredis.cache.codec import Codec, UndecodableValue
from djredis.cache.stats import counters_for
from djredis.client import CacheClient, check_client_class
from djredis.compressors import resolve_compressor
from djredis.serializers import resolve_serializer

__all__ = ["CacheBase"]

logger = logging.getLogger("djredis.cache")

MISSING = object()
DEFAULT_COMPRESS_MIN_LENGTH = 256
DEFAULT_SCAN_COUNT = 1000
# The characters for which Django's validate_key warns (memcached cannot store them).
_MEMCACHED_UNSAFE = re.compile(r"[\x00-\x20\x7f]")
# "scheme://user:password@" in a URL: what _setting_name hides.
_CREDENTIALS = re.compile(r"(://[^/@:]*:)[^@/]*@")
_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "*?[]\\"})


def glob_escape(text: str) -> str:
    return text.translate(_GLOB_SPECIAL)


# Where a key scan stands: the primaries to visit, which one, and its SCAN cursor.
ScanPosition = tuple[tuple[Any, ...], int, int]


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


class CacheBase(BaseCache):
    """Settings, key building, timeouts, decoding and the runners of a djredis cache."""

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
        # (docs/topologies.md).
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
        self._stats = counters_for(where, self.key_prefix)  # djredis.cache.stats

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

    def _op_one(
        self, command: str, key: Any, version: int | None, *args: Any, write: bool = True
    ) -> Operation[Any]:
        """Run ``command key *args`` on one cache key and return the raw reply."""
        return (yield Call((command, self._key(key, version=version), *args), write))

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
