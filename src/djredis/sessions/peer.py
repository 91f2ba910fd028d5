"""django-redis-sessions' other ways of naming the server, as a djredis LOCATION + options.

Its README documents, besides the ``SESSION_REDIS`` dict:

- ``SESSION_REDIS_SENTINEL_LIST = [(host, port), ...]`` with
  ``SESSION_REDIS_SENTINEL_MASTER_ALIAS = 'sentinel-master'`` (and, in its settings module,
  ``SESSION_REDIS_SENTINEL_PASSWORD`` and ``SESSION_REDIS['sentinel_kwargs']``): sessions
  go to the primary the Sentinels name, followed across failovers.
- ``SESSION_REDIS['pool']``, a list of servers to split sessions over by key. djredis does
  not split sessions over independent servers (Redis Cluster does that, with failover and
  resharding), so a pool of one server is that server, and a longer pool is refused with
  the settings to write instead.
- ``SESSION_REDIS_CONNECTION_OBJECT``, a ready redis-py client. djredis talks to Redis with
  connections of its own, so it reads the server and credentials from the object's pool
  (host, port or socket path, db, username, password, TLS files, timeouts; a Sentinel pool's
  service and Sentinels) and never uses the object itself.

Everything here turns into a LOCATION and options that the shared connection layer then
validates, as for any other component.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from redis.client import Redis
from redis.connection import ConnectionPool, SSLConnection, UnixDomainSocketConnection
from redis.sentinel import SentinelConnectionPool

__all__ = ["POOL_ENTRY_KEYS", "connection_object_server", "pool_server", "sentinel_server"]

# What an entry of SESSION_REDIS['pool'] may hold (README, "Redis Pool").
POOL_ENTRY_KEYS = frozenset(
    {"host", "port", "db", "password", "username", "unix_domain_socket_path", "url", "weight"}
)
# The connection arguments of a redis-py pool that say where and as whom to connect; the
# rest (decoding, retries, health checks) belong to that client, not to djredis's.
_OBJECT_KWARGS = frozenset(
    {
        "db",
        "username",
        "password",
        "socket_timeout",
        "socket_connect_timeout",
        "ssl_keyfile",
        "ssl_certfile",
        "ssl_cert_reqs",
        "ssl_ca_certs",
        "ssl_ca_path",
        "ssl_check_hostname",
    }
)
_OBJECT = "SESSION_REDIS_CONNECTION_OBJECT"


def sentinel_server(
    sentinels: Any, alias: Any, password: Any, sentinel_kwargs: Any
) -> tuple[str, dict[str, Any]]:
    """Return the LOCATION and options for SESSION_REDIS_SENTINEL_LIST/_MASTER_ALIAS."""
    if alias is None:
        raise ImproperlyConfigured(
            "SESSION_REDIS_SENTINEL_LIST is set without SESSION_REDIS_SENTINEL_MASTER_ALIAS; "
            "add the name the Sentinels monitor the primary under "
            "(SESSION_REDIS_SENTINEL_MASTER_ALIAS = 'mymaster')."
        )
    if sentinels is None:
        raise ImproperlyConfigured(
            "SESSION_REDIS_SENTINEL_MASTER_ALIAS is set without SESSION_REDIS_SENTINEL_LIST; "
            "add the Sentinels: SESSION_REDIS_SENTINEL_LIST = [('sentinel1', 26379), ...]."
        )
    if not isinstance(alias, str) or not alias or "/" in alias or "@" in alias:
        raise ImproperlyConfigured(
            f"SESSION_REDIS_SENTINEL_MASTER_ALIAS must be a service name, got {alias!r}."
        )
    own: dict[str, Any] = {}
    if sentinel_kwargs is not None:
        if not isinstance(sentinel_kwargs, Mapping):
            raise ImproperlyConfigured("SESSION_REDIS['sentinel_kwargs'] must be a dict.")
        own = dict(sentinel_kwargs)
    if password:  # its default, '', means "the Sentinels have no password"
        if own.get("password", password) != password:
            raise ImproperlyConfigured(
                "SESSION_REDIS_SENTINEL_PASSWORD and SESSION_REDIS['sentinel_kwargs']"
                "['password'] differ; keep one."
            )
        own["password"] = password
    options: dict[str, Any] = {"SENTINELS": sentinels}
    if own:
        options["SENTINEL_KWARGS"] = own
    return f"redis://{alias}", options


def pool_server(pool: Any, setting: str) -> dict[str, Any]:
    """Return the server keys of a SESSION_REDIS['pool'] of one server (else raise)."""
    where = f"{setting}['pool']"
    if isinstance(pool, (str, bytes)) or not isinstance(pool, (list, tuple)) or not pool:
        raise ImproperlyConfigured(f"{where} must be a list of servers (dicts), got {pool!r}.")
    entries = []
    for entry in pool:
        if not isinstance(entry, Mapping):
            raise ImproperlyConfigured(f"{where}: {entry!r} is not a dict.")
        unknown = sorted(str(k) for k in entry if str(k).lower() not in POOL_ENTRY_KEYS)
        if unknown:
            raise ImproperlyConfigured(
                f"{where}: {', '.join(unknown)} not accepted in an entry; accepted: "
                f"{', '.join(sorted(POOL_ENTRY_KEYS))}."
            )
        # The README's entries spell "not this one" as None ('url': None).
        entries.append(
            {
                str(k).lower(): v
                for k, v in entry.items()
                if v is not None and str(k).lower() != "weight"
            }
        )
    if len(entries) > 1:
        locations = ", ".join(_describe(entry) for entry in entries)
        raise ImproperlyConfigured(
            f"{where} lists {len(entries)} servers ({locations}): djredis does not split "
            "sessions over independent servers by key (with django-redis-sessions, changing "
            "that list loses sessions). Run them as a Redis Cluster, which spreads sessions "
            "over its shards with failover: SESSION_REDIS = {'location': "
            "'redis+cluster://host1:6379,host2:6379', 'prefix': ...}; or keep one server: "
            "SESSION_REDIS = {'host': ..., 'port': ..., 'db': ...}."
        )
    return entries[0]


def _describe(entry: Mapping[str, Any]) -> str:
    if entry.get("url"):
        return str(entry["url"])
    if entry.get("unix_domain_socket_path"):
        return str(entry["unix_domain_socket_path"])
    return f"{entry.get('host', 'localhost')}:{entry.get('port', 6379)}"


def connection_object_server(obj: Any) -> tuple[Any, dict[str, Any]]:
    """Return the LOCATION and options read from SESSION_REDIS_CONNECTION_OBJECT."""
    pool = obj.connection_pool if isinstance(obj, Redis) else obj
    if not isinstance(pool, ConnectionPool):
        raise ImproperlyConfigured(
            f"{_OBJECT} must be a redis.Redis client (or its ConnectionPool), got "
            f"{type(obj).__module__}.{type(obj).__qualname__}. djredis opens connections of "
            "its own: name the server instead, e.g. SESSION_REDIS = {'url': "
            "'redis://host:6379/0'} (for Redis Cluster: {'location': "
            "'redis+cluster://host:6379'})."
        )
    kwargs = dict(pool.connection_kwargs)
    if kwargs.get("credential_provider") is not None:
        raise ImproperlyConfigured(
            f"{_OBJECT} authenticates with a credential_provider, which djredis cannot "
            "copy; write SESSION_REDIS = {'url': ..., 'options': {'credential_provider': "
            "...}} instead."
        )
    options = {k: v for k, v in kwargs.items() if k in _OBJECT_KWARGS and v is not None}
    if isinstance(pool, SentinelConnectionPool):
        return _sentinel_object(pool, options)
    if issubclass(pool.connection_class, UnixDomainSocketConnection):
        return str(kwargs["path"]), _without_ssl(options)
    host, port = str(kwargs.get("host", "localhost")), int(kwargs.get("port", 6379))
    scheme = "rediss" if issubclass(pool.connection_class, SSLConnection) else "redis"
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"{scheme}://{netloc}", options if scheme == "rediss" else _without_ssl(options)


def _without_ssl(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if not k.startswith("ssl_")}


def _sentinel_object(
    pool: SentinelConnectionPool, options: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """Return the Sentinel settings of a redis-py ``Sentinel(...).master_for()`` client."""
    if not pool.is_master:
        raise ImproperlyConfigured(
            f"{_OBJECT} is a Sentinel replica client (slave_for); sessions are written, so "
            "give the primary's: Sentinel(...).master_for(service), or write "
            "SESSION_REDIS_SENTINEL_LIST and SESSION_REDIS_SENTINEL_MASTER_ALIAS."
        )
    sentinels = []
    sentinel_kwargs: dict[str, Any] = {}
    for sentinel in pool.sentinel_manager.sentinels:
        given = sentinel.connection_pool.connection_kwargs
        sentinels.append((str(given.get("host", "localhost")), int(given.get("port", 26379))))
        sentinel_kwargs = {
            k: v
            for k, v in given.items()
            if k in ("username", "password", "socket_timeout") and v is not None
        }
    tls = issubclass(pool.connection_class, SSLConnection)
    result = {**(options if tls else _without_ssl(options)), "SENTINELS": sentinels}
    if sentinel_kwargs:
        result["SENTINEL_KWARGS"] = sentinel_kwargs
    return f"{'rediss' if tls else 'redis'}://{pool.service_name}", result
