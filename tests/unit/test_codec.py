"""Prove the stored value format: raw ints, the header byte, compression, and that a codec
reads only the formats its settings allow (its own, and the ones it accepts)."""

from __future__ import annotations

import enum
import pickle
import random
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from djredis.cache import codec as _codec
from djredis.cache.codec import Codec, UndecodableValue
from djredis.compressors import (
    Compressor,
    GzipCompressor,
    Lz4Compressor,
    LzmaCompressor,
    ZlibCompressor,
    ZstdCompressor,
)
from djredis.serializers import JSONSerializer, MsgPackSerializer, PickleSerializer, Serializer

SERIALIZERS: dict[str, type[Any]] = {
    "pickle": PickleSerializer,
    "json": JSONSerializer,
    "msgpack": MsgPackSerializer,
}
COMPRESSORS: dict[str, type[Any] | None] = {
    "none": None,
    "zlib": ZlibCompressor,
    "gzip": GzipCompressor,
    "lzma": LzmaCompressor,
    "lz4": Lz4Compressor,
    "zstd": ZstdCompressor,
}
COMBINATIONS = [(s, c) for s in SERIALIZERS for c in COMPRESSORS]


def make_codec(
    serializer: str,
    compressor: str,
    min_compress_length: int = 256,
    *,
    accept: tuple[str, ...] = (),
) -> Codec:
    """A codec; ``accept`` names the built-in serializers and compressors it also reads."""
    compressor_cls = COMPRESSORS[compressor]
    return Codec(
        SERIALIZERS[serializer](),
        None if compressor_cls is None else compressor_cls(),
        min_compress_length,
        accept_serializers=[SERIALIZERS[name]() for name in accept if name in SERIALIZERS],
        accept_compressors=[COMPRESSORS[n]() for n in accept if COMPRESSORS.get(n) is not None],  # type: ignore[misc]
    )


class Color(enum.IntEnum):
    RED = 1


# Values every serializer handles; each maps to what comes back (JSON turns keys into str).
COMMON_VALUES: dict[str, Any] = {
    "str": "héllo wörld",
    "empty-str": "",
    "dict": {"a": 1, "b": "two", "c": None},
    "list": [1, "two", 3.5, None, True],
    "nested": {"users": [{"id": 1, "tags": ["x", "y"]}, {"id": 2, "tags": []}]},
    "none": None,
    "true": True,
    "false": False,
    "float": 3.141592653589793,
    "negative-float": -0.5,
    "uint64": 2**64 - 1,  # outside the raw-int range, still a 64-bit integer
}
# Values some serializers cannot represent (JSON has no bytes; msgpack caps ints at 64 bits).
EXTRA_VALUES: dict[str, tuple[Any, set[str]]] = {
    "bytes": (b"\x00\xffbinary", {"pickle", "msgpack"}),
    "big-int": (2**100, {"pickle", "json"}),
    "big-negative-int": (-(2**100), {"pickle", "json"}),
    "below-int64": (-(2**63) - 1, {"pickle", "json"}),
    "tuple": ((1, 2), {"pickle"}),
    "set": ({1, 2}, {"pickle"}),
}


def round_trip_cases() -> Iterator[Any]:
    for s, c in COMBINATIONS:
        for name, value in COMMON_VALUES.items():
            yield pytest.param(s, c, value, id=f"{s}-{c}-{name}")
        for name, (value, supported) in EXTRA_VALUES.items():
            if s in supported:
                yield pytest.param(s, c, value, id=f"{s}-{c}-{name}")


def as_redis_returns(encoded: bytes | int) -> bytes:
    """Return what GET gives back for what encode() produced: Redis stores ints as digits."""
    return str(encoded).encode() if isinstance(encoded, int) else encoded


def header(data: bytes | int) -> tuple[int, int]:
    """Return (serializer id, compressor id) from an encoded value's header byte."""
    assert isinstance(data, bytes)
    assert 0xC0 <= data[0] <= 0xDF
    return data[0] >> 3 & 0b11, data[0] & 0b111


@pytest.mark.parametrize(("serializer", "compressor", "value"), list(round_trip_cases()))
def test_round_trip_returns_an_equal_value(serializer: str, compressor: str, value: Any) -> None:
    codec = make_codec(serializer, compressor)
    decoded = codec.decode(as_redis_returns(codec.encode(value)))
    assert decoded == value
    assert type(decoded) is type(value)


@pytest.mark.parametrize(("serializer", "compressor"), COMBINATIONS)
def test_large_value_is_compressed_and_round_trips(serializer: str, compressor: str) -> None:
    codec = make_codec(serializer, compressor)
    value = {"rows": [{"id": i, "name": f"user {i}", "active": i % 2 == 0} for i in range(500)]}
    encoded = codec.encode(value)
    compressor_cls = COMPRESSORS[compressor]
    expected_cid = 0 if compressor_cls is None else compressor_cls.format_id
    assert header(encoded) == (SERIALIZERS[serializer].format_id, expected_cid)
    assert codec.decode(encoded) == value  # type: ignore[arg-type]


@pytest.mark.parametrize(("serializer", "compressor"), COMBINATIONS)
def test_int_is_stored_raw_so_incr_works(serializer: str, compressor: str) -> None:
    codec = make_codec(serializer, compressor)
    for value in (0, 42, -7, 2**63 - 1, -(2**63)):
        encoded = codec.encode(value)
        assert type(encoded) is int
        assert encoded == value
        # What Redis hands back after SET and INCRBY: the ASCII digits.
        assert codec.decode(as_redis_returns(encoded)) == value


def test_raw_digits_decode_to_int() -> None:
    codec = make_codec("pickle", "none")
    assert codec.decode(b"42") == 42
    assert codec.decode(b"-7") == -7
    assert codec.decode(b"0") == 0
    assert codec.decode(b"-9223372036854775808") == -(2**63)


def test_ints_outside_64_bits_are_serialized_not_raw() -> None:
    codec = make_codec("pickle", "none")
    for value in (2**63, -(2**63) - 1, 2**100):
        encoded = codec.encode(value)
        assert isinstance(encoded, bytes)
        assert codec.decode(encoded) == value


def test_bool_is_serialized_not_stored_raw() -> None:
    codec = make_codec("pickle", "none")
    encoded = codec.encode(True)
    assert isinstance(encoded, bytes)
    assert codec.decode(encoded) is True


def test_int_subclass_is_serialized_and_keeps_its_type() -> None:
    codec = make_codec("pickle", "none")
    encoded = codec.encode(Color.RED)
    assert isinstance(encoded, bytes)
    assert codec.decode(encoded) is Color.RED


def test_header_byte_layout_is_110_serializer_compressor() -> None:
    big = "x" * 1000
    assert make_codec("pickle", "none").encode("a")[0] == 0xC8  # type: ignore[index]
    assert make_codec("json", "none").encode("a")[0] == 0xD0  # type: ignore[index]
    assert make_codec("msgpack", "none").encode("a")[0] == 0xD8  # type: ignore[index]
    assert make_codec("pickle", "zlib").encode(big)[0] == 0xC9  # type: ignore[index]
    assert make_codec("json", "zstd").encode(big)[0] == 0xD5  # type: ignore[index]
    assert make_codec("msgpack", "lz4").encode(big)[0] == 0xDC  # type: ignore[index]


def test_payload_after_header_is_plain_serializer_output() -> None:
    value = {"a": [1, 2]}
    encoded = make_codec("pickle", "none").encode(value)
    assert isinstance(encoded, bytes)
    assert pickle.loads(encoded[1:]) == value


@pytest.mark.parametrize("compressor", [c for c in COMPRESSORS if c != "none"])
def test_value_below_min_compress_length_is_not_compressed(compressor: str) -> None:
    codec = make_codec("pickle", compressor)
    value = "x" * 100  # compressible, but its pickle is shorter than 256 bytes
    assert header(codec.encode(value)) == (1, 0)


@pytest.mark.parametrize("compressor", [c for c in COMPRESSORS if c != "none"])
def test_compression_starts_exactly_at_min_compress_length(compressor: str) -> None:
    value = "y" * 500
    size = len(PickleSerializer().dumps(value))
    compressed_id = COMPRESSORS[compressor].format_id  # type: ignore[union-attr]
    assert header(make_codec("pickle", compressor, size).encode(value)) == (1, compressed_id)
    assert header(make_codec("pickle", compressor, size + 1).encode(value)) == (1, 0)


@pytest.mark.parametrize("compressor", [c for c in COMPRESSORS if c != "none"])
def test_incompressible_value_is_stored_uncompressed(compressor: str) -> None:
    codec = make_codec("pickle", compressor)
    value = random.Random(0).randbytes(4096)
    encoded = codec.encode(value)
    assert header(encoded) == (1, 0)
    assert codec.decode(encoded) == value  # type: ignore[arg-type]


STORED = {"small": {"a": [1, "two", None]}, "large": {"text": "lorem ipsum " * 200}, "int": 7}


@pytest.mark.parametrize(("serializer", "compressor"), COMBINATIONS)
def test_values_stay_readable_after_a_settings_change_when_their_formats_are_accepted(
    serializer: str, compressor: str
) -> None:
    writer = make_codec(serializer, compressor)
    stored = [as_redis_returns(writer.encode(v)) for v in STORED.values()]
    for reader_serializer, reader_compressor in COMBINATIONS:
        reader = make_codec(reader_serializer, reader_compressor, accept=(serializer, compressor))
        assert [reader.decode(v) for v in stored] == list(STORED.values())


@pytest.mark.parametrize(("serializer", "compressor"), COMBINATIONS)
def test_a_format_the_settings_do_not_name_is_undecodable(serializer: str, compressor: str) -> None:
    writer = make_codec(serializer, compressor)
    for name, value in STORED.items():
        data = as_redis_returns(writer.encode(value))
        for reader_serializer, reader_compressor in COMBINATIONS:
            reader = make_codec(reader_serializer, reader_compressor)
            same_serializer = reader_serializer == serializer
            # Large values are compressed (when a compressor is set); small ones are not,
            # and an uncompressed value needs only the serializer to match.
            compressed = compressor != "none" and name == "large"
            readable = name == "int" or (
                same_serializer and (not compressed or reader_compressor == compressor)
            )
            if readable:
                assert reader.decode(data) == value
            else:
                with pytest.raises(UndecodableValue, match="settings do not allow"):
                    reader.decode(data)


def test_value_larger_than_view_threshold_round_trips() -> None:
    codec = make_codec("pickle", "none")
    value = "z" * (_codec._VIEW_THRESHOLD * 4)
    encoded = codec.encode(value)
    assert len(encoded) > _codec._VIEW_THRESHOLD  # type: ignore[arg-type]
    assert codec.decode(encoded) == value  # type: ignore[arg-type]


class ReversingSerializer:
    """A custom serializer without a format_id that insists on getting bytes."""

    def dumps(self, obj: Any) -> bytes:
        return repr(obj).encode()[::-1]

    def loads(self, data: bytes | memoryview) -> Any:
        assert type(data) is bytes
        return data[::-1].decode()


class XorCompressor:
    """A custom compressor without a format_id that insists on getting bytes."""

    def compress(self, data: bytes) -> bytes:
        return bytes(b ^ 0x55 for b in zlib.compress(data))

    def decompress(self, data: bytes | memoryview) -> bytes:
        assert type(data) is bytes
        return zlib.decompress(bytes(b ^ 0x55 for b in data))


def test_custom_serializer_writes_id_0_and_only_it_reads_that() -> None:
    custom = Codec(ReversingSerializer(), None)
    encoded = custom.encode("abc")
    assert header(encoded) == (0, 0)
    assert custom.decode(encoded) == "'abc'"  # type: ignore[arg-type]
    with pytest.raises(UndecodableValue, match="serializer"):
        make_codec("pickle", "none").decode(encoded)  # type: ignore[arg-type]


def test_custom_compressor_writes_id_7_and_only_it_reads_that() -> None:
    custom = Codec(PickleSerializer(), XorCompressor())
    value = "compress me " * 100
    encoded = custom.encode(value)
    assert header(encoded) == (1, 7)
    assert custom.decode(encoded) == value  # type: ignore[arg-type]
    with pytest.raises(UndecodableValue, match="compressor"):
        make_codec("pickle", "zlib").decode(encoded)  # type: ignore[arg-type]


def test_custom_codec_reads_builtin_formats_only_when_it_accepts_them() -> None:
    stored = make_codec("msgpack", "zstd").encode({"k": "v" * 1000})
    custom = Codec(ReversingSerializer(), XorCompressor())
    with pytest.raises(UndecodableValue, match="msgpack format"):
        custom.decode(stored)  # type: ignore[arg-type]
    accepting = Codec(
        ReversingSerializer(),
        XorCompressor(),
        accept_serializers=[MsgPackSerializer()],
        accept_compressors=[ZstdCompressor()],
    )
    assert accepting.decode(stored) == {"k": "v" * 1000}  # type: ignore[arg-type]


def test_only_builtins_can_be_accepted() -> None:
    with pytest.raises(ValueError, match="built-in serializer"):
        Codec(PickleSerializer(), None, accept_serializers=[ReversingSerializer()])
    with pytest.raises(ValueError, match="built-in compressor"):
        Codec(PickleSerializer(), None, accept_compressors=[XorCompressor()])


def test_subclass_of_builtin_serializer_keeps_its_format_id() -> None:
    class OldPickle(PickleSerializer):
        pass

    encoded = Codec(OldPickle(protocol=2), None).encode("x")
    assert header(encoded) == (1, 0)
    assert make_codec("pickle", "none").decode(encoded) == "x"  # type: ignore[arg-type]
    assert make_codec("json", "none", accept=("pickle",)).decode(encoded) == "x"  # type: ignore[arg-type]


def truncated_zlib() -> bytes:
    encoded = make_codec("pickle", "zlib").encode("a fairly compressible value " * 50)
    assert isinstance(encoded, bytes)
    assert header(encoded) == (1, 1)
    return encoded[: len(encoded) // 2]


def truncated_pickle() -> bytes:
    encoded = make_codec("pickle", "none").encode({"a": list(range(100))})
    assert isinstance(encoded, bytes)
    return encoded[:20]


GARBAGE = {
    "foreign-pickle": b"\x80garbage",
    "plain-text": b"hello",
    "pickle-zlib-header-then-junk": b"\xc9" + b"not zlib at all",
    "unknown-compressor-id-6": bytes([0xC0 | 1 << 3 | 6]) + pickle.dumps("x"),
    "custom-serializer-id-0": b"\xc0" + pickle.dumps("x"),
    "custom-compressor-id-7": b"\xcf" + pickle.dumps("x"),
    "truncated-zlib": truncated_zlib(),
    "truncated-pickle": truncated_pickle(),
    "header-only": b"\xc8",
    "empty": b"",
    "lone-minus": b"-",
    "plus-sign": b"+5",
    "digits-then-space": b"12 ",
    "leading-space": b" 12",
    "digits-with-underscore": b"1_000",
    "too-many-digits": b"9" * 5000,
    "byte-above-header-range": b"\xe0abc",
}


@pytest.mark.parametrize("data", GARBAGE.values(), ids=GARBAGE.keys())
@pytest.mark.parametrize(("serializer", "compressor"), [("pickle", "none"), ("json", "lz4")])
def test_garbage_raises_undecodable_value(serializer: str, compressor: str, data: bytes) -> None:
    with pytest.raises(UndecodableValue) as caught:
        make_codec(serializer, compressor).decode(data)
    assert caught.value.reason


def test_undecodable_value_chains_the_original_error() -> None:
    with pytest.raises(UndecodableValue) as caught:
        make_codec("pickle", "none").decode(truncated_pickle())
    assert caught.value.__cause__ is not None


def make_local_object() -> object:
    class Local:
        pass

    return Local()


class Unpicklable:
    def __reduce__(self) -> Any:
        raise pickle.PicklingError("refuses to be pickled")


UNSERIALIZABLE = [
    pytest.param("pickle", lambda: None, "function", id="pickle-lambda"),
    pytest.param(
        "pickle",
        make_local_object(),
        "tests.unit.test_codec.make_local_object.<locals>.Local",
        id="local",
    ),
    pytest.param("pickle", Unpicklable(), "tests.unit.test_codec.Unpicklable", id="pickling-error"),
    pytest.param("json", {1, 2}, "set", id="json-set"),
    pytest.param("json", b"bytes", "bytes", id="json-bytes"),
    pytest.param("msgpack", object(), "object", id="msgpack-object"),
    pytest.param("msgpack", 2**100, "int", id="msgpack-big-int"),
]


@pytest.mark.parametrize(("serializer", "value", "type_name"), UNSERIALIZABLE)
def test_unserializable_value_raises_type_error_naming_the_type(
    serializer: str, value: Any, type_name: str
) -> None:
    codec = make_codec(serializer, "zlib")
    with pytest.raises(TypeError, match="djredis cannot serialize") as caught:
        codec.encode(value)
    message = str(caught.value)
    assert f"a value of type {type_name}" in message
    assert SERIALIZERS[serializer].__name__ in message
    assert caught.value.__cause__ is not None


def test_circular_structure_under_json_raises_type_error() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(TypeError, match="of type list"):
        make_codec("json", "none").encode(loop)


def test_codec_exposes_its_configuration() -> None:
    serializer: Serializer = JSONSerializer()
    compressor: Compressor = ZstdCompressor()
    codec = Codec(serializer, compressor, min_compress_length=10)
    assert codec.serializer is serializer
    assert codec.compressor is compressor
    assert codec.min_compress_length == 10


def test_negative_min_compress_length_is_rejected() -> None:
    with pytest.raises(ValueError, match="min_compress_length"):
        Codec(PickleSerializer(), None, -1)
