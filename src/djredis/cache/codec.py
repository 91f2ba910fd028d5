"""Encode cache values into the bytes djredis stores in Redis, and decode them back.

Layout of a stored value:

* An int in [-2**63, 2**63) (exactly ``int``; not bool or a subclass) is stored as its
  ASCII digits with no header, so INCRBY/DECRBY work on it in place.
* Anything else is one header byte followed by the serialized, possibly compressed,
  payload. The header is ``0b110SSCCC``: the top bits ``110`` (0xC0..0xDF) can start
  neither an ASCII integer nor a pickle (0x80), ``SS`` is the serializer's format id
  (1 pickle, 2 json, 3 msgpack, 0 custom) and ``CCC`` the compressor's (0 not compressed,
  1 zlib, 2 gzip, 3 lzma, 4 lz4, 5 zstd, 7 custom).

With ``OPTIONS["SIGN_VALUES"]`` a value is ``0xE0``, a 32-byte HMAC-SHA256, then the
header and payload above (``djredis.cache.signing``); integers stay raw digits.

Because every value names its own format, changing SERIALIZER or COMPRESSOR does not
strand what is already cached: old values still decode with the built-in they name.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from functools import cache
from typing import Any

from djredis.compressors import (
    Compressor,
    GzipCompressor,
    Lz4Compressor,
    LzmaCompressor,
    ZlibCompressor,
    ZstdCompressor,
    decompressor_for,
)
from djredis.serializers import JSONSerializer, MsgPackSerializer, PickleSerializer, Serializer

_HEADER_BASE = 0xC0
# A signed value (djredis.cache.signing): 0xE0, a 32-byte HMAC-SHA256, then a value as above.
_SIGNED_HEAD = 0xE0
_SIGNED_BODY = 33
_CUSTOM_SERIALIZER_ID = 0
_UNCOMPRESSED_ID = 0
_CUSTOM_COMPRESSOR_ID = 7
_SERIALIZER_IDS = frozenset({1, 2, 3})
_COMPRESSOR_IDS = frozenset({1, 2, 3, 4, 5})

# Built-ins known to read from a memoryview. Anything else gets bytes, as a django-redis
# style serializer or compressor expects.
_VIEW_SAFE: frozenset[type[Any]] = frozenset(
    {
        PickleSerializer,
        JSONSerializer,
        MsgPackSerializer,
        ZlibCompressor,
        GzipCompressor,
        LzmaCompressor,
        Lz4Compressor,
        ZstdCompressor,
    }
)

# Below this size slicing off the header (a copy) is cheaper than setting up a memoryview;
# above it the copy dominates, and past ~128 KiB it costs more than unpickling itself.
_VIEW_THRESHOLD = 16 * 1024


class UnserializableValue(TypeError, pickle.PicklingError):
    """A value the serializer cannot encode.

    A ``TypeError`` naming the type, as djredis documents, and a ``pickle.PicklingError``,
    as Django's cache contract expects from ``set()``/``add()`` of an unpicklable value.
    """


class UndecodableValue(Exception):
    """A stored value that this process cannot turn back into a Python object."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Codec:
    """Encode values for Redis with one serializer and optional compressor; decode any."""

    __slots__ = (
        "_compress",
        "_compressor",
        "_compressor_id",
        "_decompress",
        "_dumps",
        "_loads",
        "_min_compress_length",
        "_packed_head",
        "_packed_header",
        "_plain_head",
        "_plain_header",
        "_serializer",
        "_serializer_id",
        "_serializer_name",
    )

    def __init__(
        self,
        serializer: Serializer,
        compressor: Compressor | None,
        min_compress_length: int = 256,
    ) -> None:
        if min_compress_length < 0:
            raise ValueError(f"min_compress_length must be >= 0, not {min_compress_length}")
        self._serializer = serializer
        self._compressor = compressor
        self._min_compress_length = min_compress_length
        self._serializer_name = type(serializer).__name__

        sid = getattr(serializer, "format_id", None)
        self._serializer_id = sid if sid in _SERIALIZER_IDS else _CUSTOM_SERIALIZER_ID
        self._plain_head = _HEADER_BASE | self._serializer_id << 3
        self._plain_header = bytes([self._plain_head])
        self._dumps: Callable[[Any], bytes] = serializer.dumps
        # The default case calls pickle.loads itself, saving a Python frame per get().
        self._loads = pickle.loads if type(serializer) is PickleSerializer else _reader(serializer)

        self._compress: Callable[[bytes], bytes] | None
        self._decompress: Callable[[bytes | memoryview], bytes] | None
        if compressor is None:
            self._compressor_id = _UNCOMPRESSED_ID
            self._compress = self._decompress = None
            # No header byte equals -1, so decode() never takes the compressed branch.
            self._packed_head = -1
            self._packed_header = self._plain_header
        else:
            cid = getattr(compressor, "format_id", None)
            self._compressor_id = cid if cid in _COMPRESSOR_IDS else _CUSTOM_COMPRESSOR_ID
            self._compress = compressor.compress
            self._decompress = _expander(compressor)
            self._packed_head = self._plain_head | self._compressor_id
            self._packed_header = bytes([self._packed_head])

    @property
    def serializer(self) -> Serializer:
        return self._serializer

    @property
    def compressor(self) -> Compressor | None:
        return self._compressor

    @property
    def min_compress_length(self) -> int:
        return self._min_compress_length

    def encode(self, value: Any) -> bytes | int:
        """Return what to store for ``value``: an int as is, else header + payload.

        Raises TypeError naming the value's type when the serializer cannot handle it.
        """
        if type(value) is int and -0x8000000000000000 <= value <= 0x7FFFFFFFFFFFFFFF:
            return value
        try:
            payload = self._dumps(value)
        except Exception as exc:
            raise self._unserializable(value, exc) from exc
        compress = self._compress
        if compress is not None and len(payload) >= self._min_compress_length:
            packed = compress(payload)
            if len(packed) < len(payload):
                return self._packed_header + packed
        return self._plain_header + payload

    def decode(self, data: bytes) -> Any:
        """Return the value ``data`` holds; raise UndecodableValue if it cannot be read."""
        try:
            head = data[0]
        except IndexError:
            raise UndecodableValue("the stored value is empty") from None
        if head == self._plain_head:
            try:
                if len(data) < _VIEW_THRESHOLD:
                    return self._loads(data[1:])
                return self._loads(memoryview(data)[1:])
            except Exception as exc:
                raise self._unreadable(exc) from exc
        if head == self._packed_head:
            try:
                return self._loads(self._decompress(memoryview(data)[1:]))  # type: ignore[misc]
            except Exception as exc:
                raise self._unreadable(exc) from exc
        return self._decode_other(data, head)

    def _decode_other(self, data: bytes, head: int) -> Any:
        # Values this codec did not write: raw integers, or an earlier configuration's.
        if head == 0x2D or 0x30 <= head <= 0x39:  # "-" or a digit
            if data.isdigit() or (head == 0x2D and data[1:].isdigit()):
                try:
                    return int(data)
                except ValueError as exc:  # more digits than int() accepts
                    raise self._unreadable(exc) from exc
            raise UndecodableValue("the stored value starts like an integer but is not one")
        if head == _SIGNED_HEAD and len(data) > _SIGNED_BODY and data[_SIGNED_BODY] != head:
            # Written with SIGN_VALUES; this cache does not check signatures (the option is
            # off here), so it reads the value inside, as it would an unsigned one.
            return self.decode(data[_SIGNED_BODY:])
        if not _HEADER_BASE <= head <= 0xDF:
            raise UndecodableValue(f"the stored value has no djredis header (0x{head:02x})")
        loads = self._loads_for(head >> 3 & 0b11)
        if loads is None:
            raise UndecodableValue(
                f"the stored value's serializer (id {head >> 3 & 0b11}) is not available"
            )
        cid = head & 0b111
        try:
            if cid == _UNCOMPRESSED_ID:
                return loads(memoryview(data)[1:])
            decompress = self._decompress_for(cid)
            if decompress is None:
                raise UndecodableValue(f"the stored value's compressor (id {cid}) is not available")
            return loads(decompress(memoryview(data)[1:]))
        except UndecodableValue:
            raise
        except Exception as exc:
            raise self._unreadable(exc) from exc

    def _loads_for(self, sid: int) -> Callable[[bytes | memoryview], Any] | None:
        # A custom id only means something to the codec configured with that custom class.
        if sid == self._serializer_id:
            return self._loads
        if sid == _CUSTOM_SERIALIZER_ID:
            return None
        return _builtin_loads(sid)

    def _decompress_for(self, cid: int) -> Callable[[bytes | memoryview], bytes] | None:
        if cid == self._compressor_id:
            return self._decompress
        if cid == _CUSTOM_COMPRESSOR_ID:
            return None
        compressor = decompressor_for(cid)
        return None if compressor is None else compressor.decompress

    def _unserializable(self, value: object, exc: Exception) -> UnserializableValue:
        tp = type(value)
        name = (
            tp.__qualname__ if tp.__module__ == "builtins" else f"{tp.__module__}.{tp.__qualname__}"
        )
        reason = str(exc) or type(exc).__name__
        return UnserializableValue(
            f"djredis cannot serialize a value of type {name} with {self._serializer_name}: "
            f"{reason}"
        )

    @staticmethod
    def _unreadable(exc: Exception) -> UndecodableValue:
        return UndecodableValue(f"{type(exc).__name__}: {exc}")

    def __repr__(self) -> str:
        return (
            f"Codec({self._serializer!r}, {self._compressor!r}, "
            f"min_compress_length={self._min_compress_length})"
        )


def _reader(serializer: Serializer) -> Callable[[bytes | memoryview], Any]:
    loads = serializer.loads
    if type(serializer) in _VIEW_SAFE:
        return loads
    return lambda data: loads(bytes(data))


def _expander(compressor: Compressor) -> Callable[[bytes | memoryview], bytes]:
    decompress = compressor.decompress
    if type(compressor) in _VIEW_SAFE:
        return decompress
    return lambda data: decompress(bytes(data))


_BUILTIN_SERIALIZERS: dict[int, type[Any]] = {
    PickleSerializer.format_id: PickleSerializer,
    JSONSerializer.format_id: JSONSerializer,
    MsgPackSerializer.format_id: MsgPackSerializer,
}


@cache
def _builtin_loads(sid: int) -> Callable[[bytes | memoryview], Any] | None:
    # None when msgpack was used to write a value but is not installed here.
    try:
        serializer: Serializer = _BUILTIN_SERIALIZERS[sid]()
    except (KeyError, ImportError):
        return None
    return serializer.loads
