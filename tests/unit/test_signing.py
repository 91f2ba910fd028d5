"""The signed codec's pieces (djredis.cache.signing), without Redis."""

from __future__ import annotations

import hmac
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from djredis.cache.codec import Codec, UndecodableValue
from djredis.cache.signing import SignedCodec, derive_key, hmac_sha256
from djredis.serializers import JSONSerializer, PickleSerializer


@given(st.binary(max_size=200), st.binary(max_size=300))
def test_hmac_sha256_equals_the_standard_library(key: bytes, message: bytes) -> None:
    assert hmac_sha256(key)(message) == hmac.digest(key, message, "sha256")
    assert hmac_sha256(key)(memoryview(message)) == hmac.digest(key, message, "sha256")


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
    signed = SignedCodec(PickleSerializer(), None, secret="s", fallbacks=())
    encoded = signed.encode(value)
    # Integers are stored as their digits; Redis hands every value back as bytes.
    data = str(encoded).encode() if isinstance(encoded, int) else encoded
    assert signed.decode(data) == value
    assert Codec(PickleSerializer(), None).decode(data) == value  # SIGN_VALUES turned off
    assert isinstance(encoded, int) or data[0] == 0xE0


@given(values, st.integers(min_value=0), st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_is_refused(value: Any, where: int, bit: int) -> None:
    signed = SignedCodec(JSONSerializer(), None, secret="s", fallbacks=())
    data = signed.encode(value)
    if isinstance(data, int):
        return
    forged = bytearray(data)
    forged[where % len(forged)] ^= 1 << bit
    with pytest.raises(UndecodableValue):
        signed.decode(bytes(forged))


def test_fallback_secrets_verify_and_others_do_not() -> None:
    old = SignedCodec(PickleSerializer(), None, secret="old", fallbacks=())
    new = SignedCodec(PickleSerializer(), None, secret="new", fallbacks=["old"])
    other = SignedCodec(PickleSerializer(), None, secret="other", fallbacks=())
    data = old.encode("v")
    assert new.decode(data) == "v"  # type: ignore[arg-type]
    with pytest.raises(UndecodableValue, match="signature"):
        other.decode(data)  # type: ignore[arg-type]


def test_compressed_values_are_signed_over_the_compressed_bytes() -> None:
    from djredis.compressors import ZlibCompressor

    signed = SignedCodec(PickleSerializer(), ZlibCompressor(), 0, secret="s", fallbacks=())
    data = signed.encode("x" * 10_000)
    assert isinstance(data, bytes)
    assert len(data) < 1000
    assert signed.decode(data) == "x" * 10_000
