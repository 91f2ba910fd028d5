"""Turn channel messages into bytes and back: msgpack or JSON, optionally encrypted.

``serializer_format`` is channels_redis's: ``"msgpack"`` (the default) or ``"json"``.
``symmetric_encryption_keys`` (a list; the first encrypts, every one decrypts, so keys can
be rotated) encrypts each message with Fernet, keyed by the SHA-256 of each key as
channels_redis does, so both layers read each other's keys. It needs ``cryptography``
(the ``djredis[channels-encryption]`` extra).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

__all__ = ["MessageSerializer", "build_serializer"]


@dataclass(frozen=True)
class MessageSerializer:
    """Encode and decode one message; ``crypter`` (a MultiFernet) encrypts when set."""

    dumps: Callable[[Any], bytes]
    loads: Callable[[bytes], Any]
    crypter: Any = None
    ttl: int | None = None

    def serialize(self, message: dict[str, Any]) -> bytes:
        """Return ``message`` as bytes."""
        data = self.dumps(message)
        return self.crypter.encrypt(data) if self.crypter is not None else data

    def deserialize(self, data: bytes) -> Any:
        """Return the message ``data`` holds (raises on garbage; the reader logs it)."""
        if self.crypter is not None:
            data = self.crypter.decrypt(data, self.ttl)
        return self.loads(data)


def _json_dumps(message: Any) -> bytes:
    return json.dumps(message).encode("utf-8")


def _formats(setting: str, name: str) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    if name == "json":
        return _json_dumps, json.loads
    if name == "msgpack":
        try:
            import msgpack
        except ImportError:
            raise ImproperlyConfigured(
                f"{setting}['serializer_format'] is 'msgpack' (the default), which needs the "
                "msgpack package: pip install 'djredis[channels]', or use 'json'."
            ) from None
        return msgpack.packb, msgpack.unpackb
    raise ImproperlyConfigured(
        f"{setting}['serializer_format'] must be 'msgpack' or 'json', got {name!r}."
    )


def _crypter(keys: Any, setting: str) -> Any:
    where = f"{setting}['symmetric_encryption_keys']"
    if isinstance(keys, (str, bytes)) or not isinstance(keys, (list, tuple)):
        raise ImproperlyConfigured(f"{where} must be a list of keys (the first one encrypts).")
    try:
        from cryptography.fernet import Fernet, MultiFernet
    except ImportError:
        raise ImproperlyConfigured(
            f"{where} needs the cryptography package: pip install 'djredis[channels-encryption]'."
        ) from None
    fernets = []
    for key in keys:
        if not isinstance(key, (str, bytes)) or not key:
            raise ImproperlyConfigured(f"{where}: every key must be a non-empty str or bytes.")
        raw = key.encode("utf-8") if isinstance(key, str) else key
        fernets.append(Fernet(base64.urlsafe_b64encode(hashlib.sha256(raw).digest())))
    return MultiFernet(fernets)


def build_serializer(name: Any, keys: Any, expiry: float, setting: str) -> MessageSerializer:
    """Return the serializer for ``serializer_format`` and ``symmetric_encryption_keys``."""
    dumps, loads = _formats(setting, name)
    if not keys:
        return MessageSerializer(dumps, loads)
    # A token older than the message could ever live is refused (a replayed ciphertext).
    return MessageSerializer(dumps, loads, _crypter(keys, setting), int(expiry) + 10)
