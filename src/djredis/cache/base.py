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

from djredis._config.component import boolean, option, read_component, spellings, whole
from djredis._config.options import parse_connection_settings
from djredis._config.server import ClusterSettings, SentinelSettings
from djredis._core.commands import Call, Command, Operation, Primaries
from djredis._core.driver import NOT_STARTED, first_request
from djredis._core.errors import BurstLogger, ErrorPolicy
from djredis._routing.base import Executor, run_async, run_sync
from djredis._routing.connect import connect
from djredis.cache.codec import Codec, UndecodableValue, UnserializableValue
from djredis.cache.near.options import NearCacheSettings, parse_near_options
from djredis.cache.near.tier import NearCache, near_cache_for
from djredis.cache.near.writes import WatchedWrites
from djredis.cache.signing import SignedCodec, ValueKeys
from djredis.cache.stats import counters_for
from djredis.client import CacheClient, check_client_class
from djredis.compressors import Compressor, resolve_accepted_compressors, resolve_compressor
from djredis.serializers import (
    PickleSerializer,
    Serializer,
    resolve_accepted_serializers,
    resolve_serializer,
)

__all__ = ["CacheBase", "CacheOptions", "Runner"]

logger = logging.getLogger("djredis.cache")

T = TypeVar("T")
F = TypeVar("F")
MISSING = object()
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


# django-redis's global settings DJANGO_REDIS_<name> are the defaults of these OPTIONS;
# its DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS defaults to False, ours to True: an error that
# IGNORE_EXCEPTIONS turns into a miss is logged (once per burst) unless told not to.
_GLOBAL_DEFAULTS = ("IGNORE_EXCEPTIONS", "CLOSE_CONNECTION", "LOG_IGNORED_EXCEPTIONS")


def _pickle_version(value: Any, *, setting: str) -> int:
    """django-redis's ``PICKLE_VERSION`` (-1: the highest protocol)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ImproperlyConfigured(f"{setting} must be an int (-1 for the highest protocol).")
    if not -1 <= value <= pickle.HIGHEST_PROTOCOL:
        raise ImproperlyConfigured(
            f"{setting} = {value}: this Python pickles with protocols 0 to "
            f"{pickle.HIGHEST_PROTOCOL} (or -1 for the highest)."
        )
    return pickle.HIGHEST_PROTOCOL if value == -1 else value


@dataclass(frozen=True)
class CacheOptions:
    """A cache's own OPTIONS, checked and resolved (the other keys are connection options,
    read by ``djredis._config.options``)."""

    client_class: Any = option("CLIENT_CLASS")  # checked with the topology
    serializer: Serializer = option(
        "SERIALIZER", "serializer", factory=PickleSerializer, parse=resolve_serializer
    )
    pickle_version: int | None = option("PICKLE_VERSION", parse=_pickle_version)
    compressor: Compressor | None = option("COMPRESSOR", parse=resolve_compressor)
    compress_min_length: int = option("COMPRESS_MIN_LENGTH", default=256, parse=whole(0))
    accept_serializers: list[Serializer] = option(
        "ACCEPT_SERIALIZERS", factory=list, parse=resolve_accepted_serializers
    )
    accept_compressors: list[Compressor] = option(
        "ACCEPT_COMPRESSORS", factory=list, parse=resolve_accepted_compressors
    )
    sign_values: bool = option("SIGN_VALUES", default=False, parse=boolean)
    ignore_exceptions: bool = option("IGNORE_EXCEPTIONS", default=False, parse=boolean)
    log_ignored_exceptions: bool = option("LOG_IGNORED_EXCEPTIONS", default=True, parse=boolean)
    close_connection: bool = option("CLOSE_CONNECTION", default=False, parse=boolean)
    near_cache: NearCacheSettings | None = option("NEAR_CACHE", parse=parse_near_options)


_OWN = frozenset(key for key in spellings(CacheOptions) if key.isupper())


def read_cache_options(options: Mapping[str, Any], setting: str) -> CacheOptions:
    """Return the cache's own OPTIONS; ``setting`` is ``CACHES[alias]['OPTIONS']``."""
    names = {key: f"DJANGO_REDIS_{key}" for key in _GLOBAL_DEFAULTS}
    given = {key: getattr(settings, name) for key, name in names.items() if hasattr(settings, name)}
    own = read_component(
        CacheOptions, {**given, **options}, setting, noun="djredis option", strict=False
    )
    if own.pickle_version is not None:
        if type(own.serializer) is not PickleSerializer:
            raise ImproperlyConfigured(
                f"{setting}['PICKLE_VERSION'] applies only to the pickle SERIALIZER."
            )
        own.serializer.protocol = own.pickle_version
    return own


class CacheBase(BaseCache):
    """Settings, key building, timeouts, decoding and the runners of a djredis cache."""

    """A Django cache on Redis with exact Django semantics and django-redis's extras."""

    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        super().__init__(params)
        where = _setting_name(server, params)
        self._where = where
        options: dict[str, Any] = dict(params.get("OPTIONS") or {})
        connection = parse_connection_settings(
            server, options, setting=f"{where}['OPTIONS']", component_options=_OWN
        )
        self._group = connect(connection)
        # In Redis Cluster the user key becomes a hash tag ("prefix:1:{key}"), so every
        # version of a key shares one slot and incr_version stays one atomic RENAME
        # (docs/topologies.md).
        self._tag_keys = isinstance(connection, ClusterSettings)
        own = read_cache_options(options, f"{where}['OPTIONS']")
        check_client_class(
            own.client_class,
            f"{where}['OPTIONS']['CLIENT_CLASS']",
            sentinel=isinstance(connection, SentinelSettings),
        )
        # Decoding follows these settings, never the format a stored value names
        # (djredis.cache.codec): ACCEPT_* list what else may be read while migrating.
        self._codec = (SignedCodec if own.sign_values else Codec)(
            own.serializer,
            own.compressor,
            min_compress_length=own.compress_min_length,
            accept_serializers=own.accept_serializers,
            accept_compressors=own.accept_compressors,
            signatures=ValueKeys(),
        )
        self._close_connection = own.close_connection
        # DJANGO_REDIS_LOGGER names the logger, as in django-redis.
        policy_logger = logging.getLogger(
            getattr(settings, "DJANGO_REDIS_LOGGER", None) or logger.name
        )
        self._policy = ErrorPolicy(
            ignore=own.ignore_exceptions,
            logger=policy_logger,
            where=where,
            log_ignored=own.log_ignored_exceptions,
        )
        self._garbage = BurstLogger(logger)
        reverse = params.get("REVERSE_KEY_FUNCTION")
        self._reverse_key: Callable[[str], str] = (
            import_string(reverse) if isinstance(reverse, str) else reverse or _default_reverse_key
        )
        self._client = CacheClient(self._group)
        self._stats = counters_for(where, self.key_prefix)  # djredis.cache.stats
        self._near: NearCache | None = None
        # What operations run through: the topology, behind the near-cache's write watch.
        self._executor: Executor = self._group
        if own.near_cache is not None:
            self._near = near_cache_for(
                connection, own.near_cache, self._tracked(), self._stats.alias
            )
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
