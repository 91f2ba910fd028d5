"""Turn Python values into bytes and back for storage in Redis.

Three built-in serializers (pickle, JSON, msgpack) each carry a ``format_id`` that the
codec writes into every stored value; a cache reads only the formats its settings allow
(SERIALIZER, and ACCEPT_SERIALIZERS while migrating: ``resolve_accepted_serializers``).
``resolve_serializer`` accepts every spelling a user may bring along: short names, our
dotted paths, django-redis's and Django's class paths, custom classes and instances, and
reports anything else as ``ImproperlyConfigured``.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, ClassVar, Protocol

from djredis._config.resolve import Kind, resolve_accepted, resolve_component

__all__ = [
    "JSONSerializer",
    "MsgPackSerializer",
    "PickleSerializer",
    "Serializer",
    "resolve_accepted_serializers",
    "resolve_serializer",
]


class Serializer(Protocol):
    """What the cache needs from a serializer: bytes out, the same value back in."""

    def dumps(self, obj: Any) -> bytes: ...

    def loads(self, data: bytes | memoryview) -> Any: ...


class PickleSerializer:
    """Serialize with pickle; any picklable value round-trips exactly."""

    format_id: ClassVar[int] = 1

    def __init__(self, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        self.protocol = protocol

    def dumps(self, obj: Any) -> bytes:
        return pickle.dumps(obj, self.protocol)

    def loads(self, data: bytes | memoryview) -> Any:
        return pickle.loads(data)

    def __repr__(self) -> str:
        return f"PickleSerializer(protocol={self.protocol})"


# The stdlib encoder's output starts with this (JSON allows leading whitespace). It runs
# without orjson, or for what orjson refused, typically integers beyond 64 bits, which
# orjson would later read back as floats without complaint; the mark sends loads() to the
# stdlib parser, which keeps them exact.
_STDLIB_MARK = b" "
_SPACE = _STDLIB_MARK[0]


class JSONSerializer:
    """Serialize to JSON with orjson when it is installed, else with the stdlib.

    Both paths write standard JSON (no NaN or Infinity), so either can read the other's
    output. As always with JSON, tuples come back as lists and non-string keys as strings.
    """

    format_id: ClassVar[int] = 2

    def __init__(self) -> None:
        self._orjson_dumps: Callable[[Any], bytes] | None = None
        self._orjson_loads: Callable[[bytes | memoryview], Any] | None = None
        try:
            import orjson
        except ImportError:
            return
        self._orjson_dumps = partial(orjson.dumps, option=orjson.OPT_NON_STR_KEYS)
        self._orjson_loads = orjson.loads

    def dumps(self, obj: Any) -> bytes:
        if self._orjson_dumps is not None:
            try:
                return self._orjson_dumps(obj)
            except TypeError:
                # orjson.JSONEncodeError subclasses TypeError. The stdlib may still manage
                # (integers beyond 64 bits, nesting deeper than orjson's limit); if it
                # cannot, its own error is the one the caller sees.
                pass
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return _STDLIB_MARK + text.encode()

    def loads(self, data: bytes | memoryview) -> Any:
        if self._orjson_loads is not None and not (data and data[0] == _SPACE):
            return self._orjson_loads(data)
        return json.loads(bytes(data))

    def __repr__(self) -> str:
        engine = "stdlib" if self._orjson_dumps is None else "orjson"
        return f"JSONSerializer(<{engine}>)"


class MsgPackSerializer:
    """Serialize with msgpack (``pip install 'djredis[msgpack]'``).

    Compact and fast; bytes and str stay distinct, tuples come back as lists, and integers
    must fit in 64 bits.
    """

    format_id: ClassVar[int] = 3

    def __init__(self) -> None:
        import msgpack

        self._packb: Callable[..., bytes] = msgpack.packb
        self._unpackb: Callable[..., Any] = msgpack.unpackb

    def dumps(self, obj: Any) -> bytes:
        return self._packb(obj, use_bin_type=True)

    def loads(self, data: bytes | memoryview) -> Any:
        return self._unpackb(data, raw=False, strict_map_key=False)

    def __repr__(self) -> str:
        return "MsgPackSerializer()"


_SHORT_NAMES: Mapping[str, type[Any] | None] = {
    "pickle": PickleSerializer,
    "json": JSONSerializer,
    "msgpack": MsgPackSerializer,
}

# Paths users copy from django-redis or Django settings. They map to our classes without
# importing django_redis: it need not be installed, and values must carry our format ids.
_KNOWN_PATHS: Mapping[str, type[Any] | None] = {
    "djredis.serializers.PickleSerializer": PickleSerializer,
    "djredis.serializers.JSONSerializer": JSONSerializer,
    "djredis.serializers.MsgPackSerializer": MsgPackSerializer,
    "django_redis.serializers.pickle.PickleSerializer": PickleSerializer,
    "django_redis.serializers.json.JSONSerializer": JSONSerializer,
    "django_redis.serializers.msgpack.MSGPackSerializer": MsgPackSerializer,
    "django.core.cache.backends.redis.RedisSerializer": PickleSerializer,
}

_KIND = Kind(
    noun="serializer",
    methods=("dumps", "loads"),
    short_names=_SHORT_NAMES,
    paths=_KNOWN_PATHS,
    extras={MsgPackSerializer: "msgpack"},
    accepted=(
        "'pickle', 'json', 'msgpack', or the dotted path, class or instance of an object "
        "with dumps() and loads() methods"
    ),
)


def resolve_serializer(spec: object, *, setting: str) -> Serializer:
    """Return the serializer ``spec`` names; ``None`` means pickle.

    ``setting`` says where ``spec`` came from, e.g.
    ``"CACHES['default']['OPTIONS']['SERIALIZER']"``; errors quote it.
    """
    if spec is None:
        return PickleSerializer()
    serializer: Serializer = resolve_component(spec, setting=setting, kind=_KIND)
    return serializer


def resolve_accepted_serializers(spec: object, *, setting: str) -> list[Serializer]:
    """Return the built-in serializers ``spec`` names: a list of "pickle", "json",
    "msgpack" (OPTIONS ``ACCEPT_SERIALIZERS``; ``None`` is the empty list).

    Only built-ins: each has a format id of its own, so accepting one reads exactly the
    values it wrote. ``setting`` names the option for error messages.
    """
    accepted: list[Serializer] = resolve_accepted(spec, setting=setting, kind=_KIND)
    return accepted
