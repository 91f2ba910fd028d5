"""Signed cache values (``OPTIONS["SIGN_VALUES"] = True``): nothing unsigned is decoded.

With the pickle serializer, whoever can write to Redis can make every process that reads
the cache run code of their choosing. A signed codec puts an HMAC-SHA256 of the encoded
value in front of it::

    0xE0 | 32-byte HMAC-SHA256(key, inner) | inner (the usual header byte + payload)

and refuses, before deserializing anything, a value whose tag does not verify or that
has none: ``UndecodableValue``, which the cache turns into a miss and a (burst-limited)
log line. The key is derived from ``SECRET_KEY`` with Django's ``salted_hmac``; values
signed with a key from ``SECRET_KEY_FALLBACKS`` still verify, so rotating SECRET_KEY does
not empty the cache. The tag is computed with the standard library's ``hmac`` (an
``hmac.HMAC`` keyed once per key, copied per value) and compared with
``hmac.compare_digest`` (constant-time).

A cache without SIGN_VALUES checks a signed value with the same keys before reading it
(``ValueKeys.verified``): turning the option off keeps this site's signed values, and a
forged signed header is a miss there too.

What it does not cover, by design: integers in the signed 64-bit range are stored as raw
digits (so ``incr``/``decr`` stay one atomic command) and are read as ``int`` without a
check; an int is never unpickled. A value signed for one key still verifies under
another key of the same site (the tag does not bind the key, so ``incr_version``'s
RENAME keeps working): whoever writes to Redis can swap this site's own values around,
but cannot make it read a value it did not write. What is inside a verified value is
still read only in the formats the settings allow (``djredis.cache.codec``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.crypto import salted_hmac

from djredis.cache.codec import SIGNED_BODY, SIGNED_HEAD, Codec, UndecodableValue
from djredis.compressors import Compressor
from djredis.serializers import Serializer

__all__ = ["SIGNED_HEAD", "SignedCodec", "ValueKeys", "derive_key"]

_MARK = bytes([SIGNED_HEAD])
_SALT = "djredis.cache.SIGN_VALUES"
# Below this size a slice (a copy) is cheaper than a memoryview (as in the codec).
_VIEW_THRESHOLD = 16 * 1024


def derive_key(secret: str | bytes) -> bytes:
    """Return the value-signing key for ``secret`` (HMAC-SHA256 keyed by Django's
    ``salted_hmac`` derivation, so it differs from every other use of SECRET_KEY)."""
    return salted_hmac(_SALT, "value signing key", secret=secret, algorithm="sha256").digest()


class ValueKeys:
    """The keys that sign values (the first) and verify them (every one).

    Without ``secret``: SECRET_KEY, then SECRET_KEY_FALLBACKS, read when first needed, so
    a cache without SIGN_VALUES does not need a SECRET_KEY until it meets a signed value.
    """

    __slots__ = ("_fallbacks", "_macs", "_secret")

    def __init__(
        self, secret: str | bytes | None = None, fallbacks: Sequence[str | bytes] | None = None
    ) -> None:
        self._secret = secret
        self._fallbacks = fallbacks
        self._macs: tuple[hmac.HMAC, ...] | None = None

    @property
    def macs(self) -> tuple[hmac.HMAC, ...]:
        """One HMAC-SHA256 per key, keyed and never updated: each tag is computed on a
        ``copy()`` (the key is processed once, not per value). ``ImproperlyConfigured``
        when SECRET_KEY is not set."""
        macs = self._macs
        if macs is None:
            secret, fallbacks = self._secret, self._fallbacks
            if secret is None:
                secret = settings.SECRET_KEY  # raises ImproperlyConfigured when empty
                if fallbacks is None:
                    fallbacks = getattr(settings, "SECRET_KEY_FALLBACKS", ())
            macs = self._macs = tuple(
                hmac.new(derive_key(s), digestmod=hashlib.sha256)
                for s in (secret, *(fallbacks or ()))
            )
        return macs

    def sign(self, data: bytes) -> bytes:
        """Return the 32-byte tag of ``data`` under the signing key."""
        return _tag(self.macs[0], data)

    def verified(self, data: bytes) -> bytes | memoryview:
        """Return the value inside the signed ``data`` once its tag verifies under one of
        the keys; raise ``UndecodableValue`` otherwise (before anything is decoded)."""
        if data[:1] != _MARK:
            raise UndecodableValue("the value is not signed")
        try:
            macs = self.macs
        except ImproperlyConfigured:
            raise UndecodableValue("the value is signed, and no SECRET_KEY can check it") from None
        return _verified(macs, data)


def _tag(mac: hmac.HMAC, data: bytes | memoryview) -> bytes:
    tagger = mac.copy()
    tagger.update(data)
    return tagger.digest()


def _verified(macs: tuple[hmac.HMAC, ...], data: bytes) -> bytes | memoryview:
    """Return what follows the 33-byte signed header of ``data`` if its tag is one of
    ``macs``' over it; else raise ``UndecodableValue``."""
    tag = data[1:SIGNED_BODY]
    body: bytes | memoryview = (
        data[SIGNED_BODY:] if len(data) < _VIEW_THRESHOLD else memoryview(data)[SIGNED_BODY:]
    )
    if body:
        for mac in macs:
            tagger = mac.copy()
            tagger.update(body)
            if hmac.compare_digest(tagger.digest(), tag):
                return body
    raise UndecodableValue("the value's signature does not verify")


class SignedCodec(Codec):
    """A ``Codec`` whose values carry an HMAC-SHA256 and are checked before decoding."""

    __slots__ = ("_macs",)

    def __init__(
        self,
        serializer: Serializer,
        compressor: Compressor | None,
        min_compress_length: int = 256,
        *,
        signatures: ValueKeys | None = None,
        accept_serializers: Iterable[Serializer] = (),
        accept_compressors: Iterable[Compressor] = (),
    ) -> None:
        """``signatures``: the keys (default: from SECRET_KEY and SECRET_KEY_FALLBACKS,
        derived here, so that a missing SECRET_KEY fails when the cache is created)."""
        keys = ValueKeys() if signatures is None else signatures
        # Derived now: SIGN_VALUES without a SECRET_KEY is an error when the cache is made.
        self._macs = keys.macs
        super().__init__(
            serializer,
            compressor,
            min_compress_length,
            accept_serializers=accept_serializers,
            accept_compressors=accept_compressors,
            signatures=keys,
        )

    def encode(self, value: Any) -> bytes | int:
        """Return header + payload, signed; an int as is (see the module docstring)."""
        data = super().encode(value)
        if isinstance(data, int):
            return data
        return _MARK + _tag(self._macs[0], data) + data

    def decode(self, data: bytes) -> Any:
        """Return the value ``data`` holds once its signature verifies."""
        head = data[:1]
        if head != _MARK:
            if head.isdigit() or (head == b"-" and data[1:2].isdigit()):
                return super().decode(data)  # a raw integer: never unpickled
            raise UndecodableValue("the value is not signed, and SIGN_VALUES is on")
        return super().decode(_verified(self._macs, data))  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return "Signed" + super().__repr__()
