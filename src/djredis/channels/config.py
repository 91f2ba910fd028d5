"""Read a channel layer's ``CONFIG``: channels_redis's keys as users write them, plus ours.

``hosts`` takes every form channels_redis's core and pub/sub layers take, each entry one
shard (several entries shard channels and groups by consistent hash):

- a URL string: ``redis://``, ``rediss://``, ``unix://``, and djredis's locations
  ``redis+sentinel://host:26379,host2/<service>/<db>`` and ``redis+cluster://host:7000``;
- a ``(host, port)`` tuple or list;
- a dict: ``{"address": url, **redis-py kwargs}``, ``{"host": ..., "port": ..., **kwargs}``,
  or the Sentinel form ``{"sentinels": [(host, port), ...], "master_name": name,
  "sentinel_kwargs": {...}, **kwargs}``.

Every other key is validated here and unknown keys raise ``ImproperlyConfigured``. Nothing
here connects to Redis.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from djredis._config.options import parse_connection_settings
from djredis._config.server import ClusterSettings, Settings
from djredis._routing.base import Topology
from djredis._routing.connect import connect
from djredis.channels.serializers import MessageSerializer, build_serializer

__all__ = ["LayerSettings", "read_layer_config"]

SETTING = "CHANNEL_LAYERS[...]['CONFIG']"
DEFAULT_HOSTS = ("redis://localhost:6379",)
# Redis refuses bulk strings over proto-max-bulk-len (512 MB by default).
DEFAULT_MAX_MESSAGE_SIZE = 512 * 1024 * 1024 - 1024

_ACCEPTED = frozenset(
    {
        "hosts",
        "prefix",
        "expiry",
        "group_expiry",
        "capacity",
        "channel_capacity",
        "symmetric_encryption_keys",
        "serializer_format",
        "random_prefix_length",  # channels_redis: uniqueness in its sorted sets; not needed
        "on_disconnect",  # channels_redis's pub/sub layer
        "on_reconnect",
        "max_message_size",
        "options",
    }
)


@dataclass(frozen=True)
class LayerSettings:
    """A channel layer's validated settings; ``shards`` are built, not connected."""

    shards: tuple[Topology, ...]
    cluster: tuple[bool, ...]  # per shard: is it a Redis Cluster
    prefix: str
    expiry: float
    group_expiry: float
    capacity: int
    channel_capacity: tuple[tuple[re.Pattern[str], int], ...]
    serializer: MessageSerializer
    max_message_size: int
    on_disconnect: Callable[[], Any] | None
    on_reconnect: Callable[[], Any] | None


def _seconds(conf: Mapping[str, Any], key: str, default: float) -> float:
    value = conf.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ImproperlyConfigured(f"{SETTING}[{key!r}] must be a positive number of seconds.")
    return float(value)


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ImproperlyConfigured(f"{where} must be a positive integer, got {value!r}.")
    return value


def _capacities(raw: Any) -> tuple[tuple[re.Pattern[str], int], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(
            f"{SETTING}['channel_capacity'] must map glob patterns or compiled regexes to "
            f"capacities, got {type(raw).__name__}."
        )
    result = []
    for pattern, capacity in raw.items():
        where = f"{SETTING}['channel_capacity'][{pattern!r}]"
        if isinstance(pattern, re.Pattern):
            compiled = pattern
        elif isinstance(pattern, str):
            compiled = re.compile(fnmatch.translate(pattern))
        else:
            raise ImproperlyConfigured(f"{where}: a pattern must be a glob string or a regex.")
        result.append((compiled, _count(capacity, where)))
    return tuple(result)


def _prefix(conf: Mapping[str, Any]) -> str:
    value = conf.get("prefix", "asgi")
    if not isinstance(value, str) or not value or any(c in value for c in "*?[]{}\\"):
        raise ImproperlyConfigured(
            f"{SETTING}['prefix'] must be a non-empty string without glob characters or "
            f"braces, got {value!r}."
        )
    return value


def _callback(conf: Mapping[str, Any], key: str) -> Callable[[], Any] | None:
    value = conf.get(key)
    if value is not None and not callable(value):
        raise ImproperlyConfigured(f"{SETTING}[{key!r}] must be a callable or None.")
    return value


def _host_port(entry: Sequence[Any], where: str) -> str:
    if len(entry) != 2:
        raise ImproperlyConfigured(f"{where} must be a (host, port) pair, got {entry!r}.")
    host, port = entry
    if isinstance(port, bool) or not str(port).isdigit():
        raise ImproperlyConfigured(f"{where}: the port must be a number, got {port!r}.")
    host = str(host)
    return f"redis://[{host}]:{port}" if ":" in host else f"redis://{host}:{port}"


def _host_dict(entry: Mapping[str, Any], where: str, options: Mapping[str, Any]) -> Settings:
    kwargs = dict(entry)
    if "sentinels" in kwargs or "master_name" in kwargs:
        sentinels = kwargs.pop("sentinels", None)
        service = kwargs.pop("master_name", None)
        if not sentinels or not isinstance(service, str) or not service:
            raise ImproperlyConfigured(
                f"{where}: the Sentinel form needs both 'sentinels' (a list of (host, port)) "
                "and 'master_name'."
            )
        db = kwargs.pop("db", 0)
        opts: dict[str, Any] = {**options, **kwargs, "SENTINELS": list(sentinels)}
        if "sentinel_kwargs" in opts:
            opts["SENTINEL_KWARGS"] = opts.pop("sentinel_kwargs") or {}
        return parse_connection_settings(
            f"redis://{service}/{db}", opts, setting=where, component_options=frozenset()
        )
    if "address" in kwargs:
        if "host" in kwargs or "port" in kwargs:
            raise ImproperlyConfigured(f"{where} names the server twice (address and host/port).")
        location = kwargs.pop("address")
    elif "host" in kwargs or "port" in kwargs:
        location = _host_port((kwargs.pop("host", "localhost"), kwargs.pop("port", 6379)), where)
    else:
        raise ImproperlyConfigured(
            f"{where} names no server: give 'address' (a URL), 'host'/'port', or "
            "'sentinels' with 'master_name'."
        )
    return parse_connection_settings(
        str(location), {**options, **kwargs}, setting=where, component_options=frozenset()
    )


def parse_hosts(hosts: Any, options: Mapping[str, Any]) -> list[Settings]:
    """Return one ``Settings`` per shard named in ``hosts``."""
    if hosts is None or (isinstance(hosts, (list, tuple)) and not hosts):
        hosts = DEFAULT_HOSTS
    if isinstance(hosts, (str, bytes)) or not isinstance(hosts, (list, tuple)):
        raise ImproperlyConfigured(
            f"{SETTING}['hosts'] must be a list of Redis servers, even for one "
            f"(['redis://localhost:6379']), got {hosts!r}."
        )
    result = []
    for index, entry in enumerate(hosts):
        where = f"{SETTING}['hosts'][{index}]"
        if isinstance(entry, Mapping):
            result.append(_host_dict(entry, where, options))
        elif isinstance(entry, (tuple, list)):
            result.append(
                parse_connection_settings(
                    _host_port(entry, where),
                    options,
                    setting=where,
                    component_options=frozenset(),
                )
            )
        elif isinstance(entry, str):
            result.append(
                parse_connection_settings(
                    entry, options, setting=where, component_options=frozenset()
                )
            )
        else:
            raise ImproperlyConfigured(
                f"{where} must be a URL, a (host, port) pair or a dict, got {type(entry).__name__}."
            )
    return result


def read_layer_config(config: Mapping[str, Any]) -> LayerSettings:
    """Validate a layer's CONFIG (the keyword arguments Channels passes) and build its
    shards' topologies."""
    unknown = sorted(set(config) - _ACCEPTED)
    if unknown:
        raise ImproperlyConfigured(
            f"{SETTING}: {', '.join(map(repr, unknown))} is not a djredis.channels setting. "
            f"Accepted: {', '.join(sorted(_ACCEPTED))}."
        )
    options = config.get("options") or {}
    if not isinstance(options, Mapping):
        raise ImproperlyConfigured(f"{SETTING}['options'] must be a dict of connection options.")
    expiry = _seconds(config, "expiry", 60)
    parsed = parse_hosts(config.get("hosts"), options)
    max_size = _count(
        config.get("max_message_size", DEFAULT_MAX_MESSAGE_SIZE), f"{SETTING}['max_message_size']"
    )
    return LayerSettings(
        shards=tuple(connect(settings) for settings in parsed),
        cluster=tuple(isinstance(settings, ClusterSettings) for settings in parsed),
        prefix=_prefix(config),
        expiry=expiry,
        group_expiry=_seconds(config, "group_expiry", 86400),
        capacity=_count(config.get("capacity", 100), f"{SETTING}['capacity']"),
        channel_capacity=_capacities(config.get("channel_capacity")),
        serializer=build_serializer(
            config.get("serializer_format", "msgpack"),
            config.get("symmetric_encryption_keys"),
            expiry,
            SETTING,
        ),
        max_message_size=max_size,
        on_disconnect=_callback(config, "on_disconnect"),
        on_reconnect=_callback(config, "on_reconnect"),
    )
