"""Check that every connection argument is one djredis's connections honour.

Each redis-py keyword argument is either honoured by djredis's own connections (directly,
or through ``ServerConfig``'s typed fields), honoured by the redis-py clients only where
that changes nothing djredis does, or rejected with ``ImproperlyConfigured`` saying what to
do instead. Nothing is silently ignored."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from queue import LifoQueue
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from redis.backoff import AbstractBackoff
from redis.client import Redis
from redis.connection import (
    BlockingConnectionPool,
    ConnectionPool,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from djredis._config.server import TIMEOUT_ERRORS

# Connection arguments redis-py takes but djredis's own connections (the sync pool and the
# multiplexed connection) cannot honour. Accepting them would make the redis-py clients and
# djredis's connections behave differently, silently; so a value that asks for anything
# (not None, False, 0 or empty: redis-py's defaults) is an error saying what to do instead.
_NO_OCSP = (
    "djredis's connections cannot validate certificates with OCSP, and OCSP that is "
    "silently off is worse than none; remove it and verify the server's certificate against "
    "your CA with ssl_ca_certs (or ssl_ca_path/ssl_ca_data) and ssl_cert_reqs='required'"
)


__all__ = ["check_policy"]


_RESP3_ONLY = "it needs RESP3 (protocol=3), and djredis's connections speak RESP2; remove it"


UNSUPPORTED_KWARGS: Mapping[str, str] = {
    "ssl_validate_ocsp": _NO_OCSP,
    "ssl_validate_ocsp_stapled": _NO_OCSP,
    "ssl_ocsp_context": _NO_OCSP,
    "ssl_ocsp_expected_cert": _NO_OCSP,
    "ssl_include_verify_flags": (
        "djredis's TLS connections do not apply extra X.509 verify flags (such as CRL "
        "checks); remove it, or terminate TLS in a proxy that checks them"
    ),
    "ssl_exclude_verify_flags": (
        "djredis's TLS connections keep Python's default X.509 verify flags; remove it"
    ),
    "redis_connect_func": (
        "djredis's connections run their own handshake (AUTH, SELECT, CLIENT SETNAME); "
        "remove it and use username/password or credential_provider, db and client_name"
    ),
    "command_packer": "djredis's connections encode commands themselves; remove it",
    "socket_type": (
        "djredis's connections try every address the host name resolves to; to force IPv4 "
        "or IPv6, put an address of that family in LOCATION (127.0.0.1, [::1])"
    ),
    "event_dispatcher": "djredis's connections dispatch no redis-py events; remove it",
    "maint_notifications_config": _RESP3_ONLY,
    "oss_cluster_maint_notifications_handler": _RESP3_ONLY,
    "cache_factory": f"client-side caching: {_RESP3_ONLY}",
}


# Arguments redis-py's own objects pass to each other (maintenance notifications, HIMPORT
# state); they are not settings, so any value is an error.
REDIS_PY_INTERNAL = frozenset(
    {
        "himport_registry",
        "maint_notifications_pool_handler",
        "maintenance_notification_hash",
        "maintenance_state",
        "orig_host_address",
        "orig_socket_connect_timeout",
        "orig_socket_timeout",
    }
)


_RESP2_ONLY = (
    "djredis's connections speak RESP2, and the redis-py clients from "
    "get_redis_connection() follow them so that every reply has one shape"
)


# redis-py's parser classes, by class name (one class under several import paths in
# redis-py 5..8), and the names redis-py < 5 gave them (still in Django's documentation of
# parser_class) -> the reply reader djredis's connections use; RESP3 -> None (refused).
_PARSERS: Mapping[str, str | None] = {
    "_HiredisParser": "hiredis",
    "_RESP2Parser": "python",
    "_RESP3Parser": None,
}
_PARSER_NAMES: Mapping[str, str] = {
    "redis.connection.HiredisParser": "hiredis",
    "redis.connection.PythonParser": "python",
    "hiredis": "hiredis",  # settings already checked (a Sentinel's, copied from its nodes)
    "python": "python",
}


_POOL_CLASSES = (ConnectionPool, BlockingConnectionPool)


_RESENDABLE_ERRORS = (*TIMEOUT_ERRORS, RedisConnectionError, ConnectionError)


# What redis.Redis still reads from its keyword arguments when it is given a connection
# pool, as djredis builds it; it silently drops every other connection argument.
_POOLED_CLIENT_KWARGS = frozenset({"single_connection_client", "event_dispatcher"})


def check_policy(kwargs: dict[str, Any], where: Callable[[str], str]) -> None:
    """Reject what djredis's connections cannot honour; normalise what they can.

    ``where(name)`` names the setting that holds ``name``. Every argument left in ``kwargs``
    is then honoured by djredis's connections, or concerns only the redis-py clients handed
    to user code (``decode_responses``, ``encoding``, ``lib_name``...).
    """
    for name, value in kwargs.items():
        if name in REDIS_PY_INTERNAL:
            raise ImproperlyConfigured(
                f"{where(name)}: {name!r} is set by redis-py itself, not a setting; remove it."
            )
        if name in UNSUPPORTED_KWARGS and value:
            raise ImproperlyConfigured(f"{where(name)} = {value!r}: {UNSUPPORTED_KWARGS[name]}.")
    protocol = kwargs.get("protocol")
    if protocol not in (None, 2, "2"):
        raise ImproperlyConfigured(
            f"{where('protocol')} = {protocol!r}: {_RESP2_ONLY}; remove it or set 2."
        )
    # redis-py 8 reads None as "negotiate RESP3"; djredis's RESP2 is what it must speak.
    kwargs["protocol"] = 2
    if "parser_class" in kwargs:
        kwargs["parser_class"] = _parser_class(kwargs["parser_class"], where("parser_class"))
    if "retry" in kwargs:
        _check_retry(kwargs["retry"], where("retry"))
    if "retry_on_error" in kwargs:
        _check_resendable(kwargs["retry_on_error"], where("retry_on_error"))
    interval = kwargs.get("health_check_interval", 0)
    if _not_seconds(interval) or interval < 0:
        raise ImproperlyConfigured(
            f"{where('health_check_interval')} must be a number of seconds (0 turns the "
            f"health check off), got {interval!r}."
        )
    limit = kwargs.get("max_connections")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ImproperlyConfigured(
            f"{where('max_connections')} must be a positive whole number or None, got {limit!r}."
        )
    wait = kwargs.get("timeout")
    if wait is not None and (_not_seconds(wait) or wait < 0):
        raise ImproperlyConfigured(
            f"{where('timeout')} (how long BlockingConnectionPool waits for a free "
            f"connection) must be a number of seconds or None, got {wait!r}."
        )
    queue = kwargs.get("queue_class")
    if queue is not None and queue is not LifoQueue:
        raise ImproperlyConfigured(
            f"{where('queue_class')} = {queue!r}: djredis's pool always hands out the most "
            "recently used idle connection, as queue.LifoQueue does; remove it."
        )


def _not_seconds(value: Any) -> bool:
    return (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
    )


def _parser_class(spec: Any, where: str) -> str:
    """Return the reader (``"hiredis"`` or ``"python"``) of the redis-py parser class
    ``spec`` names, if djredis can read replies that way."""
    reader = _PARSER_NAMES.get(spec) if isinstance(spec, str) else None
    if reader is None:
        parser = import_setting(spec, where)
        name = getattr(parser, "__name__", "")
        from_redis_py = str(getattr(parser, "__module__", "")).startswith("redis.")
        if from_redis_py and name in _PARSERS and _PARSERS[name] is None:
            raise ImproperlyConfigured(f"{where} = {spec!r}: {_RESP2_ONLY}; remove it.")
        reader = _PARSERS.get(name) if from_redis_py else None
    if reader is None:
        raise ImproperlyConfigured(
            f"{where} = {spec!r}: djredis's connections read replies either with hiredis "
            "('redis._parsers.hiredis._HiredisParser', the default when hiredis is installed) "
            "or in pure Python ('redis._parsers.resp2._RESP2Parser'); use one of those or "
            "remove it."
        )
    if reader == "hiredis":
        try:
            import hiredis  # noqa: F401
        except ImportError:
            raise ImproperlyConfigured(
                f"{where} = {spec!r} needs hiredis, which is not installed: "
                "pip install 'djredis[hiredis]'."
            ) from None
    return reader


def _check_retry(retry: Any, where: str) -> None:
    if type(retry) is not Retry:
        raise ImproperlyConfigured(
            f"{where} must be a redis.retry.Retry, e.g. Retry(ExponentialBackoff(), 3), got "
            f"{retry!r}."
        )
    retries = retry._retries
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ImproperlyConfigured(
            f"{where} retries {retries!r} times: give a number of retries >= 0 (retrying "
            "forever would make a command wait without bound)."
        )
    if not isinstance(retry._backoff, AbstractBackoff):
        raise ImproperlyConfigured(
            f"{where}'s backoff must be a redis.backoff backoff (ExponentialBackoff, "
            f"NoBackoff...), got {retry._backoff!r}."
        )
    _check_resendable(retry._supported_errors, f"{where}'s supported_errors")


def _check_resendable(errors: Any, where: str) -> None:
    """Reject retrying any error other than connection errors and timeouts."""
    if (
        isinstance(errors, (str, bytes))
        or not isinstance(errors, Iterable)
        or not all(isinstance(error, type) for error in errors)
    ):
        raise ImproperlyConfigured(
            f"{where} must be a list of exception classes (so it cannot be given in a URL), "
            f"got {errors!r}."
        )
    for error in errors:
        if not issubclass(error, _RESENDABLE_ERRORS):
            name = f"{error.__module__}.{error.__qualname__}"
            raise ImproperlyConfigured(
                f"{where} names {name!r}: djredis's connections resend a command only after "
                "a connection error, or a timeout with retry_on_timeout, and only when it "
                "surely did not run or only reads; retrying any other error could apply a "
                f"write twice. Remove {name!r} (list redis.exceptions.TimeoutError to retry "
                "timeouts)."
            )


def resolve_pool_class(options: Mapping[str, Any], kind: str, setting: str) -> type[ConnectionPool]:
    """Return redis-py's ConnectionPool or BlockingConnectionPool, as OPTIONS choose."""
    given = [name for name in ("CONNECTION_POOL_CLASS", "pool_class") if name in options]
    if len(given) == 2 and options[given[0]] != options[given[1]]:
        raise ImproperlyConfigured(
            f"{setting} sets 'CONNECTION_POOL_CLASS' and 'pool_class' to different values; "
            "keep one."
        )
    if not given:
        return ConnectionPool
    where = f"{setting}[{given[0]!r}]"
    spec = options[given[0]]
    if kind == "sentinel" and spec in SENTINEL_POOL_PATHS:
        return ConnectionPool  # django-redis's Sentinel settings name it; we manage it
    pool_class = import_setting(spec, where)
    if pool_class not in _POOL_CLASSES:
        raise ImproperlyConfigured(
            f"{where} = {spec!r}: djredis's own connections use its own pool, which behaves "
            "like redis.ConnectionPool or, bounded by max_connections and timeout, like "
            "redis.BlockingConnectionPool; another class (a subclass too) would change only "
            "the redis-py clients. Use one of those two."
        )
    result: type[ConnectionPool] = pool_class
    return result


def checked_client_kwargs(options: Mapping[str, Any], kind: str, setting: str) -> dict[str, Any]:
    """Return OPTIONS['REDIS_CLIENT_KWARGS'], rejecting what the client would not apply."""
    where = f"{setting}['REDIS_CLIENT_KWARGS']"
    given = options.get("REDIS_CLIENT_KWARGS") or {}
    if not isinstance(given, Mapping):
        raise ImproperlyConfigured(f"{where} must be a dict.")
    if given and kind == "sentinel":
        raise ImproperlyConfigured(
            f"{where}: the clients of a Sentinel-managed service are built by redis-py's "
            "Sentinel, which does not take them; remove it (connection options go in OPTIONS)."
        )
    if kind != "cluster":
        # redis.Redis given a connection pool (as djredis builds it) drops these silently.
        ignored = sorted((set(given) & init_parameters(Redis)) - _POOLED_CLIENT_KWARGS)
        if ignored:
            raise ImproperlyConfigured(
                f"{where}: {', '.join(map(repr, ignored))} would be ignored, because redis-py "
                "clients built on a connection pool take connection settings from the pool; "
                "put them in OPTIONS instead."
            )
    return dict(given)


# django-redis's SentinelClient names its pool class; djredis manages Sentinel pools itself.
SENTINEL_POOL_PATHS = frozenset(
    {"django_redis.pool.SentinelConnectionPool", "redis.sentinel.SentinelConnectionPool"}
)


_init_parameter_cache: dict[type, frozenset[str]] = {}


def init_parameters(cls: type) -> frozenset[str]:
    """Return the keyword arguments a class's ``__init__`` accepts along its MRO."""
    known = _init_parameter_cache.get(cls)
    if known is not None:
        return known
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        names.update(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    names.discard("self")
    result = _init_parameter_cache[cls] = frozenset(names)
    return result


def import_setting(value: Any, setting: str) -> Any:
    if isinstance(value, str):
        try:
            return import_string(value)
        except ImportError as exc:
            raise ImproperlyConfigured(f"{setting} = {value!r} cannot be imported: {exc}") from exc
    return value


def option_bool(options: Mapping[str, Any], name: str, setting: str) -> bool | None:
    value = options.get(name)
    if value is not None and not isinstance(value, bool):
        raise ImproperlyConfigured(f"{setting}[{name!r}] must be True or False, got {value!r}.")
    return value


def check_timeout(kwargs: dict[str, Any], name: str, setting: str) -> None:
    value = kwargs.get(name)
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ImproperlyConfigured(
            f"{setting}: {name} must be a positive number of seconds or None, got {value!r}."
        )
