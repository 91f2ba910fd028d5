"""The signed codec's pieces (djredis.cache.signing), without Redis."""

from __future__ import annotations

import hmac
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from djredis.cache.codec import Codec, UndecodableValue
from djredis.cache.signing import SignedCodec, ValueKeys, derive_key
from djredis.serializers import JSONSerializer, PickleSerializer


def keys(secret: str, fallbacks: tuple[str, ...] = ()) -> ValueKeys:
    return ValueKeys(secret, fallbacks)


@given(st.text(max_size=50), st.binary(max_size=300))
def test_the_tag_is_the_standard_librarys_hmac_sha256(secret: str, message: bytes) -> None:
    assert keys(secret).sign(message) == hmac.digest(derive_key(secret), message, "sha256")


def test_a_signed_value_is_mark_tag_then_the_plain_encoding() -> None:
    signed = SignedCodec(JSONSerializer(), None, signatures=keys("s"))
    plain = Codec(JSONSerializer(), None).encode({"a": 1})
    assert isinstance(plain, bytes)
    assert signed.encode({"a": 1}) == b"\xe0" + keys("s").sign(plain) + plain


def test_derived_key_depends_on_the_secret_and_is_not_the_secret() -> None:
    assert derive_key("a") != derive_key("b")
    assert derive_key("a") == derive_key("a")
    assert len(derive_key("a")) == 32


values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text() | st.integers(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)


@given(values)
def test_signed_values_round_trip_and_read_unsigned(value: Any) -> None:
    signed = SignedCodec(PickleSerializer(), None, signatures=keys("s"))
    encoded = signed.encode(value)
    # Integers are stored as their digits; Redis hands every value back as bytes.
    data = str(encoded).encode() if isinstance(encoded, int) else encoded
    assert signed.decode(data) == value
    # SIGN_VALUES turned off: the value still reads, once its tag verifies.
    assert Codec(PickleSerializer(), None, signatures=keys("s")).decode(data) == value
    assert isinstance(encoded, int) or data[0] == 0xE0


@given(values, st.integers(min_value=0), st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_is_refused(value: Any, where: int, bit: int) -> None:
    signed = SignedCodec(JSONSerializer(), None, signatures=keys("s"))
    data = signed.encode(value)
    if isinstance(data, int):
        return
    forged = bytearray(data)
    forged[where % len(forged)] ^= 1 << bit
    with pytest.raises(UndecodableValue):
        signed.decode(bytes(forged))


def test_fallback_secrets_verify_and_others_do_not() -> None:
    old = SignedCodec(PickleSerializer(), None, signatures=keys("old"))
    new = SignedCodec(PickleSerializer(), None, signatures=keys("new", ("old",)))
    other = SignedCodec(PickleSerializer(), None, signatures=keys("other"))
    data = old.encode("v")
    assert new.decode(data) == "v"  # type: ignore[arg-type]
    with pytest.raises(UndecodableValue, match="signature"):
        other.decode(data)  # type: ignore[arg-type]


def test_compressed_values_are_signed_over_the_compressed_bytes() -> None:
    from djredis.compressors import ZlibCompressor

    signed = SignedCodec(PickleSerializer(), ZlibCompressor(), 0, signatures=keys("s"))
    data = signed.encode("x" * 10_000)
    assert isinstance(data, bytes)
    assert len(data) < 1000
    assert signed.decode(data) == "x" * 10_000


@given(values, st.integers(min_value=0), st.integers(min_value=0, max_value=7))
def test_without_sign_values_a_tampered_signed_value_is_refused_too(
    value: Any, where: int, bit: int
) -> None:
    data = SignedCodec(PickleSerializer(), None, signatures=keys("s")).encode(value)
    if isinstance(data, int):
        return
    forged = bytearray(data)
    forged[where % len(forged)] ^= 1 << bit
    with pytest.raises(UndecodableValue):
        Codec(PickleSerializer(), None, signatures=keys("s")).decode(bytes(forged))


def test_without_keys_a_signed_value_is_undecodable() -> None:
    data = SignedCodec(PickleSerializer(), None, signatures=keys("s")).encode("v")
    with pytest.raises(UndecodableValue, match="signed"):
        Codec(PickleSerializer(), None).decode(data)  # type: ignore[arg-type]


def test_a_verified_value_is_still_read_only_in_an_allowed_format() -> None:
    data = SignedCodec(PickleSerializer(), None, signatures=keys("s")).encode("v")
    json_reader = SignedCodec(JSONSerializer(), None, signatures=keys("s"))
    with pytest.raises(UndecodableValue, match="pickle format"):
        json_reader.decode(data)  # type: ignore[arg-type]
    accepting = SignedCodec(
        JSONSerializer(), None, signatures=keys("s"), accept_serializers=[PickleSerializer()]
    )
    assert accepting.decode(data) == "v"  # type: ignore[arg-type]


@pytest.mark.parametrize("body", [b"1" * 20_000, b"-" + b"7" * 20_000, b"12x" * 7_000])
def test_a_big_signed_body_that_looks_like_an_integer_is_a_miss_not_a_crash(body: bytes) -> None:
    """A verified body of 16 KiB or more reaches the decoder as a memoryview: one that
    starts like an integer must still be read (or refused) as bytes are."""
    signer = keys("s")
    data = b"\xe0" + signer.sign(body) + body
    for codec in (
        SignedCodec(JSONSerializer(), None, signatures=keys("s")),
        Codec(JSONSerializer(), None, signatures=keys("s")),
    ):
        with pytest.raises(UndecodableValue):
            codec.decode(data)
