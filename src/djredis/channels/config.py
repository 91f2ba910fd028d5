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
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from djredis._config.component import connection_options, option, read_component, whole
from djredis._config.options import parse_connection_settings
from djredis._config.server import ClusterSettings, Settings
from djredis._routing.base import Topology
from djredis._routing.connect import connect
from djredis.channels.serializers import MessageSerializer, build_serializer

__all__ = ["ChannelLayerSettings", "read_layer_config"]

SETTING = "CHANNEL_LAYERS[...]['CONFIG']"
DEFAULT_HOSTS = ("redis://localhost:6379",)
# Redis refuses bulk strings over proto-max-bulk-len (512 MB by default).
DEFAULT_MAX_MESSAGE_SIZE = 512 * 1024 * 1024 - 1024


def _seconds(value: Any, *, setting: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ImproperlyConfigured(f"{setting} must be a positive number of seconds.")
    return float(value)


_count = whole(1)


def _capacities(raw: Any, *, setting: str) -> tuple[tuple[re.Pattern[str], int], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(
            f"{setting} must map glob patterns or compiled regexes to capacities, got "
            f"{type(raw).__name__}."
        )
    result = []
    for pattern, capacity in raw.items():
        where = f"{setting}[{pattern!r}]"
        if isinstance(pattern, re.Pattern):
            compiled = pattern
        elif isinstance(pattern, str):
            compiled = re.compile(fnmatch.translate(pattern))
        else:
            raise ImproperlyConfigured(f"{where}: a pattern must be a glob string or a regex.")
        result.append((compiled, _count(capacity, setting=where)))
    return tuple(result)


def _prefix(value: Any, *, setting: str) -> str:
    if not isinstance(value, str) or not value or any(c in value for c in "*?[]{}\\"):
        raise ImproperlyConfigured(
            f"{setting} must be a non-empty string without glob characters or braces, "
            f"got {value!r}."
        )
    return value


def _callback(value: Any, *, setting: str) -> Callable[[], Any] | None:
    if value is not None and not callable(value):
        raise ImproperlyConfigured(f"{setting} must be a callable or None.")
    callback: Callable[[], Any] | None = value
    return callback


@dataclass(frozen=True)
class ChannelLayerSettings:
    """A channel layer's CONFIG, validated; ``shards`` are built from ``hosts``, not
    connected."""

    hosts: Any = option()  # read by parse_hosts, with ``options``
    options: Mapping[str, Any] = option(factory=dict, parse=connection_options)
    prefix: str = option(default="asgi", parse=_prefix)
    expiry: float = option(default=60.0, parse=_seconds)
    group_expiry: float = option(default=86400.0, parse=_seconds)
    capacity: int = option(default=100, parse=_count)
    channel_capacity: tuple[tuple[re.Pattern[str], int], ...] = option(
        default=(), parse=_capacities
    )
    symmetric_encryption_keys: Any = option()
    serializer_format: Any = option(default="msgpack")
    max_message_size: int = option(default=DEFAULT_MAX_MESSAGE_SIZE, parse=_count)
    on_disconnect: Callable[[], Any] | None = option(parse=_callback)
    on_reconnect: Callable[[], Any] | None = option(parse=_callback)
    random_prefix_length: Any = option()  # channels_redis's; not needed here
    shards: tuple[Topology, ...] = field(init=False)
    cluster: tuple[bool, ...] = field(init=False)  # per shard: is it a Redis Cluster
    serializer: MessageSerializer = field(init=False)

    def __post_init__(self) -> None:
        parsed = parse_hosts(self.hosts, self.options)
        derived = {
            "shards": tuple(connect(settings) for settings in parsed),
            "cluster": tuple(isinstance(settings, ClusterSettings) for settings in parsed),
            "serializer": build_serializer(
                self.serializer_format, self.symmetric_encryption_keys, self.expiry, SETTING
            ),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)  # frozen: set once, here


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
        return parse_connection_settings(f"redis://{service}/{db}", opts, setting=where)
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
    return parse_connection_settings(str(location), {**options, **kwargs}, setting=where)


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
            continue
        if isinstance(entry, (tuple, list)):
            entry = _host_port(entry, where)
        elif not isinstance(entry, str):
            raise ImproperlyConfigured(
                f"{where} must be a URL, a (host, port) pair or a dict, got {type(entry).__name__}."
            )
        settings = parse_connection_settings(entry, options, setting=where)
        result.append(settings)
    return result


def read_layer_config(config: Mapping[str, Any]) -> ChannelLayerSettings:
    """Validate a layer's CONFIG (the keyword arguments Channels passes) and build its
    shards' topologies."""
    return read_component(ChannelLayerSettings, config, SETTING, noun="djredis.channels setting")
