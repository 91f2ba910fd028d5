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

Bytes read from Redis are untrusted, so the format a value names is only a claim:
decoding follows the settings, never the bytes. A codec reads its own serializer's and
compressor's formats, uncompressed values, raw integers, and the built-in formats listed
in ``accept_serializers``/``accept_compressors`` (OPTIONS ``ACCEPT_SERIALIZERS`` and
``ACCEPT_COMPRESSORS``, for migrating from one setting to another); anything else is
``UndecodableValue``, which the cache turns into a miss and a log line. A cache with
``SERIALIZER = "json"`` therefore never unpickles, whatever header a value carries. A
signed header is stripped only after its HMAC verifies.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from djredis.compressors import (
    Compressor,
    GzipCompressor,
    Lz4Compressor,
    LzmaCompressor,
    ZlibCompressor,
    ZstdCompressor,
)
from djredis.serializers import JSONSerializer, MsgPackSerializer, PickleSerializer, Serializer

__all__ = [
    "SIGNED_BODY",
    "SIGNED_HEAD",
    "Codec",
    "SignatureCheck",
    "UndecodableValue",
    "UnserializableValue",
]

_HEADER_BASE = 0xC0
# A signed value (djredis.cache.signing): 0xE0, a 32-byte HMAC-SHA256, then a value as above.
SIGNED_HEAD = 0xE0
SIGNED_BODY = 33  # where the value inside a signed one starts
_CUSTOM_SERIALIZER_ID = 0
_UNCOMPRESSED_ID = 0
_CUSTOM_COMPRESSOR_ID = 7
_SERIALIZER_IDS = frozenset({1, 2, 3})
_COMPRESSOR_IDS = frozenset({1, 2, 3, 4, 5})
# For log lines: what a format id in a header claims the value is.
_SERIALIZER_NAMES = {0: "custom serializer", 1: "pickle", 2: "json", 3: "msgpack"}
_COMPRESSOR_NAMES = {
    **{1: "zlib", 2: "gzip", 3: "lzma", 4: "lz4", 5: "zstd"},
    **{6: "unknown compressor (id 6)", 7: "custom compressor"},
}

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


class SignatureCheck(Protocol):
    """Verifies the signed header of a value (``djredis.cache.signing.ValueKeys``)."""

    def verified(self, data: bytes) -> bytes | memoryview:
        """Return the value inside ``data`` once its HMAC verifies; else raise
        ``UndecodableValue``."""
        ...


class Codec:
    """Encode values for Redis with one serializer and optional compressor; decode the
    formats the settings allow (see the module docstring)."""

    __slots__ = (
        "_compress",
        "_compressor",
        "_compressor_id",
        "_decompress",
        "_dumps",
        "_expanders",
        "_loads",
        "_min_compress_length",
        "_packed_head",
        "_packed_header",
        "_plain_head",
        "_plain_header",
        "_readers",
        "_serializer",
        "_serializer_id",
        "_serializer_name",
        "_signatures",
    )

    def __init__(
        self,
        serializer: Serializer,
        compressor: Compressor | None,
        min_compress_length: int = 256,
        *,
        accept_serializers: Iterable[Serializer] = (),
        accept_compressors: Iterable[Compressor] = (),
        signatures: SignatureCheck | None = None,
    ) -> None:
        """``accept_serializers``/``accept_compressors``: built-ins whose values are read
        too (not written). ``signatures``: checks a signed value's HMAC, so that a cache
        without SIGN_VALUES still reads what it signed before; without it a signed value
        is undecodable."""
        if min_compress_length < 0:
            raise ValueError(f"min_compress_length must be >= 0, not {min_compress_length}")
        self._serializer = serializer
        self._compressor = compressor
        self._min_compress_length = min_compress_length
        self._serializer_name = type(serializer).__name__
        self._signatures = signatures

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

        # The formats decode() reads beyond the two headers it checks first: format id ->
        # function. Only what the settings name; a custom id only means the configured class.
        self._readers: dict[int, Callable[[bytes | memoryview], Any]] = {
            _builtin_id(s, _SERIALIZER_IDS, "serializer"): _reader(s) for s in accept_serializers
        }
        self._readers[self._serializer_id] = self._loads
        self._expanders: dict[int, Callable[[bytes | memoryview], bytes]] = {
            _builtin_id(c, _COMPRESSOR_IDS, "compressor"): _expander(c) for c in accept_compressors
        }
        if self._decompress is not None:
            self._expanders[self._compressor_id] = self._decompress

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
        # Values this codec did not write with its current settings: raw integers, signed
        # values, and the formats the settings accept besides their own.
        if head == 0x2D or 0x30 <= head <= 0x39:  # "-" or a digit
            if isinstance(data, memoryview):  # a big verified signed body: read as bytes
                data = data.tobytes()
            if data.isdigit() or (head == 0x2D and data[1:].isdigit()):
                try:
                    return int(data)
                except ValueError as exc:  # more digits than int() accepts
                    raise self._unreadable(exc) from exc
            raise UndecodableValue("the stored value starts like an integer but is not one")
        if head == SIGNED_HEAD:
            # Written with SIGN_VALUES, which is off here: read only once the tag verifies
            # (a forged header would otherwise smuggle any format past the signature).
            if self._signatures is None:
                raise UndecodableValue("the stored value is signed, and no key checks it here")
            body = self._signatures.verified(data)
            if body[:1] == _SIGNED_MARK:
                raise UndecodableValue("the stored value is signed twice")
            return Codec.decode(self, body)  # type: ignore[arg-type]
        if not _HEADER_BASE <= head <= 0xDF:
            raise UndecodableValue(f"the stored value has no djredis header (0x{head:02x})")
        sid = head >> 3 & 0b11
        loads = self._readers.get(sid)
        if loads is None:
            raise UndecodableValue(
                f"the stored value is in the {_SERIALIZER_NAMES[sid]} format, which the "
                f"settings do not allow here (SERIALIZER is {self._serializer_name}; "
                "ACCEPT_SERIALIZERS lists what else may be read)"
            )
        cid = head & 0b111
        decompress = None
        if cid != _UNCOMPRESSED_ID:
            decompress = self._expanders.get(cid)
            if decompress is None:
                raise UndecodableValue(
                    f"the stored value is compressed in the {_COMPRESSOR_NAMES[cid]} format, "
                    "which the settings do not allow here (COMPRESSOR; ACCEPT_COMPRESSORS "
                    "lists what else may be read)"
                )
        try:
            if decompress is None:
                return loads(memoryview(data)[1:])
            return loads(decompress(memoryview(data)[1:]))
        except Exception as exc:
            raise self._unreadable(exc) from exc

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


def _builtin_id(component: object, ids: frozenset[int], noun: str) -> int:
    # An accepted format must have an id of its own: a custom one's id is shared by every
    # custom class, so accepting it would let one custom class read another's bytes.
    format_id = getattr(component, "format_id", None)
    if format_id not in ids:
        raise ValueError(f"only a built-in {noun} can be accepted besides the configured one")
    return int(format_id)


_SIGNED_MARK = bytes([SIGNED_HEAD])
