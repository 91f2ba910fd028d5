"""Encode a function's arguments canonically, so equal calls make equal cache keys.

``canonical(value)`` returns bytes that depend only on the value, never on how it was
built: dicts and sets are sorted by the encoding of their items (not their insertion
order, not ``repr``), every item is tagged with its type (``1``, ``1.0``, ``True`` and
``"1"`` differ) and strings are length-prefixed, so no two different values share an
encoding. A saved Django model instance stands for its model and primary key.

Types without a stable, value-based encoding (plain objects, whose ``repr`` holds an
address that the next object may reuse) raise ``TypeError`` naming the type: a wrong
cache hit is worse than no cache. Pass ``key=`` to ``memoize`` for those.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import hashlib
import uuid
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

__all__ = ["canonical", "digest"]


def digest(value: Any) -> str:
    """Return a short hex digest of ``canonical(value)`` (BLAKE2b, 128 bits)."""
    return hashlib.blake2b(canonical(value), digest_size=16).hexdigest()


def canonical(value: Any) -> bytes:
    """Return the canonical encoding of ``value``; TypeError for unsupported types."""
    out: list[bytes] = []
    _encode(value, out)
    return b"".join(out)


def _sized(tag: bytes, data: bytes, out: list[bytes]) -> None:
    out.append(b"%s%d:" % (tag, len(data)))
    out.append(data)


def _text(tag: bytes, text: str, out: list[bytes]) -> None:
    _sized(tag, text.encode("utf-8", "surrogatepass"), out)


def _none(value: Any, out: list[bytes]) -> None:
    out.append(b"N")


def _bool(value: Any, out: list[bytes]) -> None:
    out.append(b"T" if value else b"F")


def _int(value: Any, out: list[bytes]) -> None:
    out.append(b"i%d;" % value)


def _float(value: Any, out: list[bytes]) -> None:
    out.append(b"f" + float.hex(value).encode() + b";")


def _complex(value: Any, out: list[bytes]) -> None:
    out.append(b"c" + float.hex(value.real).encode() + b"," + float.hex(value.imag).encode())
    out.append(b";")


def _str(value: Any, out: list[bytes]) -> None:
    _text(b"s", value, out)


def _bytes(value: Any, out: list[bytes]) -> None:
    _sized(b"b", bytes(value), out)


def _sequence(tag: bytes) -> Callable[[Any, list[bytes]], None]:
    def encode(value: Any, out: list[bytes]) -> None:
        out.append(b"%s%d:" % (tag, len(value)))
        for item in value:
            _encode(item, out)

    return encode


def _set(tag: bytes) -> Callable[[Any, list[bytes]], None]:
    def encode(value: Any, out: list[bytes]) -> None:
        out.append(b"%s%d:" % (tag, len(value)))
        out.extend(sorted(canonical(item) for item in value))

    return encode


def _dict(value: Any, out: list[bytes]) -> None:
    out.append(b"d%d:" % len(value))
    items = sorted((canonical(k), canonical(v)) for k, v in value.items())
    for k, v in items:
        out.append(k)
        out.append(v)


def _textual(tag: bytes) -> Callable[[Any, list[bytes]], None]:
    # Types whose str() is their value: isoformat keeps the tzinfo offset and microseconds.
    def encode(value: Any, out: list[bytes]) -> None:
        _text(tag, value.isoformat() if hasattr(value, "isoformat") else str(value), out)

    return encode


def _timedelta(value: Any, out: list[bytes]) -> None:
    out.append(b"D%d,%d,%d;" % (value.days, value.seconds, value.microseconds))


_EXACT: dict[type[Any], Callable[[Any, list[bytes]], None]] = {
    type(None): _none,
    bool: _bool,
    int: _int,
    float: _float,
    complex: _complex,
    str: _str,
    bytes: _bytes,
    bytearray: _bytes,
    tuple: _sequence(b"t"),
    list: _sequence(b"l"),
    dict: _dict,
    set: _set(b"S"),
    frozenset: _set(b"S"),
    decimal.Decimal: _textual(b"m"),
    datetime.datetime: _textual(b"a"),
    datetime.date: _textual(b"e"),
    datetime.time: _textual(b"h"),
    datetime.timedelta: _timedelta,
    uuid.UUID: _textual(b"u"),
}


def _encode(value: Any, out: list[bytes]) -> None:
    encode = _EXACT.get(type(value))
    if encode is not None:
        encode(value, out)
        return
    _encode_other(value, out)


def _encode_other(value: Any, out: list[bytes]) -> None:
    tp = type(value)
    name = f"{tp.__module__}.{tp.__qualname__}"
    if isinstance(value, enum.Enum):
        _text(b"E", name, out)
        _encode(value.value, out)
        return
    model_key = _model_key(value)
    if model_key is not None:
        _text(b"M", model_key, out)
        _encode(value.pk, out)
        return
    if isinstance(value, PurePath):
        _text(b"p", name, out)
        _text(b"", str(value), out)
        return
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        _text(b"C", name, out)
        _encode(tuple((f.name, getattr(value, f.name)) for f in dataclasses.fields(value)), out)
        return
    for base in (tuple, list, dict, set, frozenset, str, bytes, int, float):
        # Subclasses (a namedtuple, an OrderedDict, a str enum without Enum): the class
        # name, then the value as its base type.
        if isinstance(value, base):
            _text(b"X", name, out)
            _EXACT[base](value, out)
            return
    raise TypeError(
        f"memoize cannot make a cache key from an argument of type {name}: it has no "
        "value-based encoding. Pass key=... to memoize, or pass a value (an id, a string) "
        "instead of the object."
    )


def _model_key(value: Any) -> str | None:
    meta = getattr(type(value), "_meta", None)
    label = getattr(meta, "label_lower", None)
    if label is None or not hasattr(value, "pk"):
        return None
    if value.pk is None:
        raise TypeError(
            f"memoize cannot make a cache key from an unsaved {label} instance (pk is None)."
        )
    return str(label)
