"""What every djredis cache method stands on: settings, keys, timeouts, values, runners.

``CacheBase`` reads the cache's OPTIONS once, builds the key the way Django does (hash-tagged
in a Cluster), turns Django timeouts into milliseconds, decodes values (garbage is a miss
and a log line), and runs operations: ``_run`` with blocking I/O, ``_arun`` on the event
loop's multiplexed connection. The Django contract (``backend``) and django-redis's extras
(``extras``) are written on top of it.
"""

from __future__ import annotations

import logging
import pickle
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache.backends.base import (
    DEFAULT_TIMEOUT,
    MEMCACHE_MAX_KEY_LENGTH,
    BaseCache,
    default_key_func,
)
from django.core.exceptions import ImproperlyConfigured, SynchronousOnlyOperation
from django.utils.module_loading import import_string

from djredis._config.options import parse_connection_settings
from djredis._config.server import ClusterSettings, SentinelSettings
from djredis._core.commands import Call, Command, Operation, Primaries
from djredis._core.driver import NOT_STARTED, first_request
from djredis._core.errors import BurstLogger, ErrorPolicy
from djredis._routing.base import Executor, run_async, run_sync
from djredis._routing.connect import connect
from djredis.cache.codec import Codec, UndecodableValue, UnserializableValue
from djredis.cache.near.options import parse_near_options
from djredis.cache.near.tier import NearCache, near_cache_for
from djredis.cache.near.writes import WatchedWrites
from djredis.cache.signing import SignedCodec, ValueKeys
from djredis.cache.stats import counters_for
from djredis.client import CacheClient, check_client_class
from djredis.compressors import resolve_accepted_compressors, resolve_compressor
from djredis.serializers import (
    PickleSerializer,
    resolve_accepted_serializers,
    resolve_serializer,
)

__all__ = ["CacheBase", "Runner"]

logger = logging.getLogger("djredis.cache")

T = TypeVar("T")
F = TypeVar("F")
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


def _seconds(timeout: str) -> float:
    try:
        return float(timeout)
    except ValueError:
        raise ValueError(f"timeout must be a number of seconds, not {timeout!r}") from None


@dataclass(frozen=True, slots=True)
class Runner:
    """How a cache's operations reach Redis: its ``executor`` (the topology, behind the
    near-cache's write watch when the cache has one) and an error ``policy``.

    ``CacheBase.runner`` is the cache's own; what djredis builds on a cache (the stampede
    plan) runs its operations through it, or through a copy with another policy.
    """

    executor: Executor
    policy: ErrorPolicy

    def run(self, operation: Operation[T], name: str) -> T | None:
        """Run ``operation`` with blocking I/O (None when the policy ignores an error)."""
        return run_sync(self.executor, operation, self.policy, name, None)

    def arun(self, operation: Operation[T], name: str) -> Awaitable[T | None]:
        """Run ``operation`` on the running loop (None when the policy ignores an error)."""
        return run_async(self.executor, operation, self.policy, name, None)


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


def _set_pickle_version(serializer: Any, version: Any, where: str) -> None:
    """Apply django-redis's ``OPTIONS['PICKLE_VERSION']`` (-1: the highest protocol)."""
    setting = f"{where}['OPTIONS']['PICKLE_VERSION']"
    if type(serializer) is not PickleSerializer:
        raise ImproperlyConfigured(f"{setting} applies only to the pickle SERIALIZER.")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ImproperlyConfigured(f"{setting} must be an int (-1 for the highest protocol).")
    if not -1 <= version <= pickle.HIGHEST_PROTOCOL:
        raise ImproperlyConfigured(
            f"{setting} = {version}: this Python pickles with protocols 0 to "
            f"{pickle.HIGHEST_PROTOCOL} (or -1 for the highest)."
        )
    serializer.protocol = pickle.HIGHEST_PROTOCOL if version == -1 else version


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
        serializer = resolve_serializer(
            options.get(serializer_name),
            setting=f"{where}['OPTIONS'][{serializer_name!r}]",
        )
        if "PICKLE_VERSION" in options:
            _set_pickle_version(serializer, options["PICKLE_VERSION"], where)
        sign = _bool_option(options, "SIGN_VALUES", False, where)
        # Decoding follows these settings, never the format a stored value names
        # (djredis.cache.codec): ACCEPT_* list what else may be read while migrating.
        self._codec = (SignedCodec if sign else Codec)(
            serializer,
            resolve_compressor(
                options.get("COMPRESSOR"), setting=f"{where}['OPTIONS']['COMPRESSOR']"
            ),
            min_compress_length=min_length,
            accept_serializers=resolve_accepted_serializers(
                options.get("ACCEPT_SERIALIZERS"),
                setting=f"{where}['OPTIONS']['ACCEPT_SERIALIZERS']",
            ),
            accept_compressors=resolve_accepted_compressors(
                options.get("ACCEPT_COMPRESSORS"),
                setting=f"{where}['OPTIONS']['ACCEPT_COMPRESSORS']",
            ),
            signatures=ValueKeys(),
        )
        ignore = _bool_option(
            options,
            "IGNORE_EXCEPTIONS",
            getattr(settings, "DJANGO_REDIS_IGNORE_EXCEPTIONS", False),
            where,
        )
        self._close_connection = _bool_option(
            options,
            "CLOSE_CONNECTION",
            getattr(settings, "DJANGO_REDIS_CLOSE_CONNECTION", False),
            where,
        )
        # django-redis's DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS defaults to False; ours to True:
        # an error that IGNORE_EXCEPTIONS turns into a miss is logged (once per burst) unless
        # the settings say not to. DJANGO_REDIS_LOGGER names the logger, as in django-redis.
        log_ignored = _bool_option(
            options,
            "LOG_IGNORED_EXCEPTIONS",
            getattr(settings, "DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS", True),
            where,
        )
        policy_logger = logging.getLogger(
            getattr(settings, "DJANGO_REDIS_LOGGER", None) or logger.name
        )
        self._policy = ErrorPolicy(
            ignore=ignore, logger=policy_logger, where=where, log_ignored=log_ignored
        )
        self._garbage = BurstLogger(logger)
        reverse = params.get("REVERSE_KEY_FUNCTION")
        self._reverse_key: Callable[[str], str] = (
            import_string(reverse) if isinstance(reverse, str) else reverse or _default_reverse_key
        )
        self._client = CacheClient(self._group)
        self._stats = counters_for(where, self.key_prefix)  # djredis.cache.stats
        near = parse_near_options(options.get("NEAR_CACHE"), f"{where}['OPTIONS']['NEAR_CACHE']")
        self._near: NearCache | None = None
        # What operations run through: the topology, behind the near-cache's write watch.
        self._executor: Executor = self._group
        if near is not None:
            self._near = near_cache_for(connection, near, self._tracked(), self._stats.alias)
            self._executor = WatchedWrites(self._group, self._near)

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def client(self) -> CacheClient:
        """The django-redis-style client: ``cache.client.get_client(write=True)``."""
        return self._client

    @property
    def runner(self) -> Runner:
        """How this cache's operations reach Redis, and its error policy (``Runner``)."""
        return Runner(self._executor, self._policy)

    def _tracked(self) -> str:
        """Return the key prefix the near-cache tracks: KEY_PREFIX, or "" (every key)."""
        sample = self.key_func("k", self.key_prefix, 1)
        return self.key_prefix if self.key_prefix and sample.startswith(self.key_prefix) else ""

    def _run(self, operation: Operation[T], name: str, fallback: F) -> T | F:
        return run_sync(self._executor, operation, self._policy, name, fallback)

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
        # A printable key without a space holds none of the characters memcached refuses
        # (what the regex looks for): two C string scans, cheaper than the regex.
        printable = full.isprintable() and " " not in full
        if len(full) > MEMCACHE_MAX_KEY_LENGTH or (
            not printable and _MEMCACHED_UNSAFE.search(full)
        ):
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
        if isinstance(timeout, str):  # Django's builtin backend takes int(timeout)
            timeout = _seconds(timeout)
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

    def _arun(
        self, operation: Operation[T], name: str, fallback: F, first: Command = NOT_STARTED
    ) -> Awaitable[T | F]:
        """Run ``operation`` on the loop (``first``: its first command, when the caller
        has already advanced it)."""
        return run_async(self._executor, operation, self._policy, name, fallback, first)

    async def _arun_encoding(
        self, make: Callable[[], Operation[T]], name: str, fallback: F
    ) -> T | F:
        """Run an operation that encodes values, on the loop unless encoding needs the
        database: pickling a lazy QuerySet evaluates it, and Django forbids queries in an
        event loop (SynchronousOnlyOperation). Only then is the encoding step (everything
        before the first command, by the operations' convention) redone in a thread, as
        Django's own ``a*`` methods would run all of it; the fast path never leaves the loop.
        """
        operation = make()
        try:
            found = first_request(operation)
        except UnserializableValue as exc:
            if not isinstance(exc.__cause__, SynchronousOnlyOperation):
                raise
            operation = make()
            found = await sync_to_async(first_request)(operation)
        if not found[0]:  # done before its first command
            return found[1]
        return await self._arun(operation, name, fallback, found[1])

    def _op_one(
        self, command: str, key: Any, version: int | None, *args: Any, write: bool = True
    ) -> Operation[Any]:
        """Run ``command key *args`` on one cache key and return the raw reply."""
        return (yield Call((command, self._key(key, version=version), *args), write))

    def _op_count(
        self, command: str, key: Any, version: int | None, *args: Any, write: bool = True
    ) -> Operation[int]:
        """Run ``command key *args``, whose reply is an integer (ZCARD, HDEL...), and return it."""
        count: int = yield Call((command, self._key(key, version=version), *args), write)
        return count

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
