"""Read the session engine's settings: ``SESSION_REDIS``, the older ``SESSION_REDIS_*``, or
the ``default`` cache.

Where sessions live, in order:

1. ``SESSION_REDIS``, a dict in either style the guides write: django-redis-sessions'
   lowercase keys (``host``, ``port``, ``db``, ``password``, ``prefix``, ``socket_timeout``,
   ``retry_on_timeout``, ``url``, ``unix_domain_socket_path``) or the same names uppercase,
   plus djredis's own: ``location``/``options`` (a cache-style LOCATION and OPTIONS, for
   replicas and every other form the connection layer takes), ``cache`` (reuse a djredis
   cache alias's connection), ``ignore_load_errors`` and ``record_client``.
2. The top-level settings of django-redis-sessions <= 0.5 (``SESSION_REDIS_HOST``,
   ``SESSION_REDIS_UNIX_DOMAIN_SOCKET_PATH``, ...), the same keys spelled as settings.
3. Neither: the server of ``CACHES['default']``, which must then be a djredis cache.

django-redis-sessions' other forms are read too (``djredis.sessions.peer``): the top-level
``SESSION_REDIS_SENTINEL_LIST`` + ``SESSION_REDIS_SENTINEL_MASTER_ALIAS`` (+
``SESSION_REDIS_SENTINEL_PASSWORD``, ``SESSION_REDIS['sentinel_kwargs']``) and
``SESSION_REDIS_CONNECTION_OBJECT``, next to 1. or 2. (which then give the prefix and, for
Sentinel, the data nodes' db and credentials), and ``SESSION_REDIS['pool']``.

A dict that names no server (only ``prefix``, say) also uses the ``default`` cache's server.
Unknown keys, a key given in both cases with different values, and both 1. and 2. at once
raise ``ImproperlyConfigured``. Nothing here connects to Redis.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from djredis._config.component import (
    boolean,
    connection_options,
    option,
    read_component,
    spellings,
)
from djredis._config.options import parse_connection_settings
from djredis._core.errors import BurstLogger
from djredis._routing.base import Topology
from djredis._routing.connect import connect
from djredis.sessions.peer import connection_object_server, pool_server, sentinel_server

__all__ = ["DEFAULT_PREFIX", "SessionSettings", "read_session_settings"]

DEFAULT_PREFIX = "session"

# django-redis-sessions' keys that are redis-py connection arguments of the same name.
_CONNECTION_KEYS = "db password username socket_timeout socket_connect_timeout retry_on_timeout"
# The dict keys that name a server (or reuse a cache's), in the order errors list them.
_SERVER_NAMING = ("url", "host", "port", "unix_domain_socket_path", "location", "cache")
# The top-level settings django-redis-sessions <= 0.5 read (the 2013 guide uses the first).
_LEGACY_PREFIX = "SESSION_REDIS_"
# Top-level settings of later django-redis-sessions, set next to SESSION_REDIS (its
# settings module reads them with getattr(settings, ...)); not dict keys.
_TOP_LEVEL = ("SENTINEL_LIST", "SENTINEL_MASTER_ALIAS", "SENTINEL_PASSWORD", "CONNECTION_OBJECT")
_UNSET = "SESSION_REDIS is not set, so djredis.sessions uses CACHES['default']"


def _prefix(value: Any, *, setting: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or any(c in value for c in "*?[]{}"):
        raise ImproperlyConfigured(
            f"{setting} must be a string without glob characters or braces, got {value!r}."
        )
    return value.rstrip(":")


@dataclass(frozen=True)
class SessionSettings:
    """Where the session engine keeps its data, and how it treats errors."""

    prefix: str = option(default=DEFAULT_PREFIX, parse=_prefix)
    ignore_load_errors: bool = option(default=False, parse=boolean)
    record_client: bool = option(default=False, parse=boolean)
    # Where the sessions live (read in _group below; None: not given).
    url: Any = option()
    host: Any = option()
    port: Any = option()
    unix_domain_socket_path: Any = option()
    location: Any = option()
    cache: Any = option()
    pool: Any = option()
    sentinel_kwargs: Any = option()
    db: Any = option()
    password: Any = option()
    username: Any = option()
    socket_timeout: Any = option()
    socket_connect_timeout: Any = option()
    retry_on_timeout: Any = option()
    options: Mapping[str, Any] = option(factory=dict, parse=connection_options)
    setting: str = field(default="SESSION_REDIS", compare=False)  # where these were read
    # One log line per burst of failed loads / of undecodable sessions, per configuration.
    load_errors: BurstLogger = field(
        default_factory=lambda: BurstLogger(logging.getLogger("djredis.sessions")), compare=False
    )
    garbage: BurstLogger = field(
        default_factory=lambda: BurstLogger(logging.getLogger("djredis.sessions")), compare=False
    )
    group: Topology = field(init=False)
    source: str = field(init=False)  # the setting the server came from, for log lines
    # Redis Cluster: listing and revoking a user's sessions take several steps there, since a
    # session and its user's index hash to different slots (see ``djredis.sessions.index``).
    cluster: bool = field(init=False)

    def __post_init__(self) -> None:
        from djredis._routing.cluster import ClusterGroup

        group, source = _group(self)
        for name, value in (("group", group), ("source", source)):
            object.__setattr__(self, name, value)  # frozen: set once, here
        object.__setattr__(self, "cluster", isinstance(group, ClusterGroup))

    def session_key_prefix(self) -> str:
        """Return what goes before a session key in its Redis key (``"session:"``).

        No hash tag: on Redis Cluster each session hashes to a slot of its own, so sessions
        spread over every shard.
        """
        return f"{self.prefix}:" if self.prefix else ""

    def index_key_prefix(self) -> str:
        """Return what goes before a user id in the user's index key (``"session:user="``).

        No session key can produce it: session keys are only ``[a-z0-9]`` (``=`` never
        appears). One colon only, so a cache whose KEY_PREFIX equals the session prefix
        never matches it with its ``clear()`` pattern (``prefix:*:*``).
        """
        return f"{self.session_key_prefix()}user="


def _legacy_settings() -> dict[str, Any]:
    """Return the SESSION_REDIS_* settings as SESSION_REDIS keys (``HOST`` -> ``host``)."""
    return {
        name.removeprefix(_LEGACY_PREFIX).lower(): getattr(settings, name)
        for name in dir(settings)
        if name.startswith(_LEGACY_PREFIX) and name.removeprefix(_LEGACY_PREFIX) not in _TOP_LEVEL
    }


def _top_level() -> dict[str, Any]:
    """Return the SESSION_REDIS_SENTINEL_* / _CONNECTION_OBJECT settings that are set."""
    return {
        name: value
        for name in _TOP_LEVEL
        if (value := getattr(settings, _LEGACY_PREFIX + name, None)) is not None
    }


def _cache_group(alias: str, setting: str) -> Topology:
    """Return the server group of the djredis cache ``alias`` (its pools are shared)."""
    from django.core.cache import caches
    from django.core.cache.backends.base import InvalidCacheBackendError

    try:
        cache = caches[alias]
    except InvalidCacheBackendError:
        raise ImproperlyConfigured(f"{setting}: there is no CACHES[{alias!r}].") from None
    # Any djredis cache routes through a Topology; sessions share it without importing the
    # cache component (components sit side by side in the layers).
    group = getattr(cache, "_group", None)
    if not isinstance(group, Topology):
        raise ImproperlyConfigured(
            f"{setting}: CACHES[{alias!r}] is {type(cache).__module__}."
            f"{type(cache).__qualname__}, not a djredis cache, so sessions cannot share its "
            "connection. Give SESSION_REDIS a server ({'url': 'redis://host:6379/1'}) or "
            "make that cache 'djredis.cache.RedisCache'."
        )
    return group


def _location(conf: Mapping[str, Any], setting: str) -> Any:
    """Return a LOCATION for the server keys, or None when the dict names no server."""
    given = sorted(k for k in ("url", "unix_domain_socket_path", "location") if conf.get(k))
    if len(given) > 1 or (given and ({"host", "port"} & conf.keys())):
        names = given + sorted({"host", "port"} & conf.keys())
        raise ImproperlyConfigured(
            f"{setting} names the server twice ({', '.join(names)}); keep one of url, "
            "unix_domain_socket_path, location, or host/port."
        )
    if given == ["unix_domain_socket_path"]:
        return os.path.abspath(str(conf["unix_domain_socket_path"]))
    if given:
        return conf[given[0]]
    if "host" in conf or "port" in conf:
        host = str(conf.get("host") or "localhost")
        port = conf.get("port") or 6379
        if isinstance(port, bool) or not isinstance(port, (int, str)) or not str(port).isdigit():
            raise ImproperlyConfigured(f"{setting}['port'] must be a port number, got {port!r}.")
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return None


def _options(conf: Mapping[str, Any], setting: str) -> dict[str, Any]:
    result = dict(conf.get("options") or {})
    for kwarg in _CONNECTION_KEYS.split():
        value = conf.get(kwarg)
        if value is None or (kwarg == "password" and value == ""):
            continue  # the guides write 'PASSWORD': '' for "no password"
        if kwarg in result and result[kwarg] != value:
            raise ImproperlyConfigured(
                f"{setting} sets {kwarg!r} to {value!r} and options[{kwarg!r}] to "
                f"{result[kwarg]!r}; keep one."
            )
        result[kwarg] = value
    return result


def _peer_server(
    top: Mapping[str, Any],
    conf: Mapping[str, Any],
    options: dict[str, Any],
    setting: str,
) -> tuple[Any, dict[str, Any], str]:
    """Return LOCATION, options and the setting's name for SESSION_REDIS_SENTINEL_LIST /
    _CONNECTION_OBJECT, which name the server instead of ``conf``."""
    forms = [f"SESSION_REDIS_{name}" for name in ("SENTINEL_LIST", "CONNECTION_OBJECT")]
    named = [form for form in forms if form.removeprefix(_LEGACY_PREFIX) in top]
    if "SENTINEL_MASTER_ALIAS" in top and forms[0] not in named:
        named.insert(0, forms[0])  # sentinel_server() says what is missing
    given = [f"{setting}[{key!r}]" for key in _SERVER_NAMING if key in conf]
    if len(named) > 1 or given:
        raise ImproperlyConfigured(
            f"{' and '.join(named + given)} all name the sessions' server; keep one "
            f"({named[0]} picks it: remove the others)."
        )
    if named[0] == forms[0]:
        server, extra = sentinel_server(
            top.get("SENTINEL_LIST"),
            top.get("SENTINEL_MASTER_ALIAS"),
            top.get("SENTINEL_PASSWORD"),
            conf.get("sentinel_kwargs"),
        )
    else:
        if options:
            raise ImproperlyConfigured(
                f"SESSION_REDIS_CONNECTION_OBJECT brings its own connection settings; remove "
                f"{', '.join(sorted(options))} from {setting}."
            )
        server, extra = connection_object_server(top["CONNECTION_OBJECT"])
    clash = sorted(extra.keys() & options.keys())
    if clash:
        raise ImproperlyConfigured(
            f"{named[0]} sets {', '.join(clash)}; remove {', '.join(clash)} from "
            f"{setting}['options']."
        )
    return server, {**options, **extra}, named[0]


def read_session_settings() -> SessionSettings:
    """Return the session engine's settings from the project's settings (see the module)."""
    explicit = getattr(settings, "SESSION_REDIS", None)
    legacy = _legacy_settings()
    if explicit is not None and legacy:
        raise ImproperlyConfigured(
            "SESSION_REDIS and the older top-level "
            f"{', '.join(_LEGACY_PREFIX + k.upper() for k in sorted(legacy))} are both set; "
            "keep one (SESSION_REDIS takes the same keys)."
        )
    setting = "SESSION_REDIS" if explicit is not None else "settings.SESSION_REDIS_*"
    return read_component(
        SessionSettings,
        legacy if explicit is None else explicit,
        setting,
        noun="djredis session setting",
        any_case=True,
        where=None if explicit is not None else (lambda key: _LEGACY_PREFIX + key.upper()),
        setting=setting if explicit is not None or legacy else _UNSET,
    )


def _group(own: SessionSettings) -> tuple[Topology, str]:
    """Return the sessions' server group and the setting that named it."""
    setting = own.setting
    keys = spellings(SessionSettings)
    conf = {key: getattr(own, key) for key in keys if getattr(own, key) is not None}
    pool = conf.pop("pool", None)
    if pool is not None:
        for key, value in pool_server(pool, setting).items():
            if key in conf and conf[key] != value:
                raise ImproperlyConfigured(
                    f"{setting}[{key!r}] and {setting}['pool'] disagree ({conf[key]!r} and "
                    f"{value!r}); keep one."
                )
            conf[key] = value
    location = _location(conf, setting)
    options = _options(conf, setting)
    top = _top_level()
    if "sentinel_kwargs" in conf and not {"SENTINEL_LIST", "SENTINEL_MASTER_ALIAS"} & top.keys():
        raise ImproperlyConfigured(
            f"{setting}['sentinel_kwargs'] only applies with SESSION_REDIS_SENTINEL_LIST."
        )
    if top.keys() - {"SENTINEL_PASSWORD"}:
        location, options, setting = _peer_server(top, conf, options, setting)
    elif "SENTINEL_PASSWORD" in top and top["SENTINEL_PASSWORD"] != "":
        raise ImproperlyConfigured(
            "SESSION_REDIS_SENTINEL_PASSWORD only applies with SESSION_REDIS_SENTINEL_LIST."
        )
    alias = conf.get("cache")
    if alias is not None:
        if location is not None or options:
            raise ImproperlyConfigured(
                f"{setting}['cache'] reuses CACHES[{alias!r}]'s connection; remove the "
                "server and connection keys, or remove 'cache'."
            )
        group = _cache_group(str(alias), f"{setting}['cache']")
        source = f"{setting} (CACHES[{alias!r}])"
    elif location is None:
        if options:
            raise ImproperlyConfigured(
                f"{setting} sets connection options ({', '.join(sorted(options))}) but no "
                "server; add 'url' (or host/port, unix_domain_socket_path, location)."
            )
        group = _cache_group("default", setting)
        source = setting if setting == _UNSET else f"{setting} (CACHES['default'])"
    else:
        parsed = parse_connection_settings(location, options, setting=setting)
        group = connect(parsed)
        source = setting
    return group, source
