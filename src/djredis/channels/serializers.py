"""Turn channel messages into bytes and back; the registry of message formats.

``serializer_format`` names a format in ``registry``, as with channels_redis: ``"msgpack"``
(the default) and ``"json"`` are built in, and a project adds its own the way channels_redis
documents it::

    from djredis.channels.serializers import BaseMessageSerializer, registry

    class CBORSerializer(BaseMessageSerializer):
        def as_bytes(self, message):
            return cbor2.dumps(message)

        def from_bytes(self, data):
            return cbor2.loads(data)

    registry.register_serializer("cbor", CBORSerializer)

A registered class is either a ``BaseMessageSerializer`` subclass (``as_bytes``/``from_bytes``;
encryption is done around them) or any class with ``serialize``/``deserialize`` methods that
accepts the keyword arguments ``symmetric_encryption_keys``, ``random_prefix_length`` and
``expiry`` (channels_redis's contract, so a class written for channels_redis registers here
unchanged).

A layer decodes only its own format: the bytes it reads from Redis go to the one
serializer ``serializer_format`` named, never to another format (nothing here unpickles), and
with ``symmetric_encryption_keys`` set, bytes that are not a token of one of the keys are
refused before any decoding. Whatever a serializer raises on bad bytes, the reader drops the
message with a log line.

``symmetric_encryption_keys`` (a list; the first encrypts, every one decrypts, so keys can be
rotated) encrypts each message with Fernet, keyed by the SHA-256 of each key as channels_redis
does, so both layers read each other's keys. It needs ``cryptography`` (the
``djredis[channels-encryption]`` extra).
"""

from __future__ import annotations

import abc
import base64
import hashlib
import json
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "BaseMessageSerializer",
    "JSONSerializer",
    "MessageSerializer",
    "MsgPackSerializer",
    "SerializerDoesNotExist",
    "SerializersRegistry",
    "build_serializer",
    "registry",
]


class MessageSerializer(Protocol):
    """What the layer needs of a serializer."""

    def serialize(self, message: Any) -> bytes: ...

    def deserialize(self, message: bytes) -> Any: ...


class SerializerDoesNotExist(KeyError):
    """No serializer is registered for the format asked for."""


class BaseMessageSerializer(abc.ABC):
    """A format's ``as_bytes``/``from_bytes``, with the layer's encryption around them."""

    def __init__(
        self,
        symmetric_encryption_keys: Any = None,
        random_prefix_length: int = 0,
        expiry: float | None = None,
    ) -> None:
        # Accepted for channels_redis's signature; djredis's lists need no random prefix.
        self.random_prefix_length = random_prefix_length
        self.expiry = expiry
        self.crypter = _crypter(symmetric_encryption_keys) if symmetric_encryption_keys else None

    @abc.abstractmethod
    def as_bytes(self, message: Any) -> bytes:
        """Return ``message`` in this format."""

    @abc.abstractmethod
    def from_bytes(self, data: bytes) -> Any:
        """Return the message ``data`` holds; raise on anything else."""

    def serialize(self, message: Any) -> bytes:
        """Return ``message`` as bytes (encrypted when keys are set)."""
        data = self.as_bytes(message)
        return self.crypter.encrypt(data) if self.crypter is not None else data

    def deserialize(self, message: bytes) -> Any:
        """Return the message ``message`` holds; raises on garbage (the reader logs it)."""
        if self.crypter is not None:
            # A token older than a message could ever live is refused (a replayed ciphertext).
            ttl = None if self.expiry is None else int(self.expiry) + 10
            message = self.crypter.decrypt(message, ttl)
        return self.from_bytes(message)


class JSONSerializer(BaseMessageSerializer):
    """UTF-8 JSON."""

    def as_bytes(self, message: Any) -> bytes:
        return json.dumps(message).encode("utf-8")

    def from_bytes(self, data: bytes) -> Any:
        return json.loads(data)


class MsgPackSerializer(BaseMessageSerializer):
    """msgpack (the default): no extension type is turned into anything but ``ExtType``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        try:
            import msgpack
        except ImportError:
            raise ImproperlyConfigured(
                "serializer_format 'msgpack' (the default) needs the msgpack package: "
                "pip install 'djredis[channels]', or use 'json'."
            ) from None
        super().__init__(*args, **kwargs)
        self._packb = msgpack.packb
        self._unpackb = msgpack.unpackb

    def as_bytes(self, message: Any) -> bytes:
        data: bytes = self._packb(message)
        return data

    def from_bytes(self, data: bytes) -> Any:
        return self._unpackb(data)


class SerializersRegistry:
    """Formats by name, as ``channels_redis.serializers.SerializersRegistry``."""

    def __init__(self) -> None:
        self._registry: dict[str, type] = {}

    def register_serializer(self, format: str, serializer_class: type) -> None:
        """Register (or replace) the class that serializes ``format``."""
        if not isinstance(format, str) or not format:
            raise TypeError(f"A serializer format is a non-empty string, got {format!r}.")
        if not isinstance(serializer_class, type) or not (
            issubclass(serializer_class, BaseMessageSerializer)
            or (
                callable(getattr(serializer_class, "serialize", None))
                and callable(getattr(serializer_class, "deserialize", None))
            )
        ):
            raise TypeError(
                "serializer_class must be a BaseMessageSerializer subclass or a class with "
                f"serialize and deserialize methods, got {serializer_class!r}."
            )
        self._registry[format] = serializer_class

    def formats(self) -> list[str]:
        """Return the registered formats' names."""
        return sorted(self._registry)

    def get_serializer(self, format: str, *args: Any, **kwargs: Any) -> Any:
        """Return a new serializer for ``format``, built with ``args`` and ``kwargs``."""
        try:
            serializer_class = self._registry[format]
        except (KeyError, TypeError):
            raise SerializerDoesNotExist(format) from None
        return serializer_class(*args, **kwargs)


registry = SerializersRegistry()
registry.register_serializer("json", JSONSerializer)
registry.register_serializer("msgpack", MsgPackSerializer)


def _crypter(keys: Any) -> Any:
    where = "symmetric_encryption_keys"
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
    """Return the registered serializer for ``serializer_format``, with
    ``symmetric_encryption_keys``; a bad setting raises ``ImproperlyConfigured`` naming it."""
    if keys is not None and (isinstance(keys, (str, bytes)) or not isinstance(keys, (list, tuple))):
        raise ImproperlyConfigured(
            f"{setting}['symmetric_encryption_keys'] must be a list of keys (the first one "
            "encrypts)."
        )
    try:
        serializer: MessageSerializer = registry.get_serializer(
            name, symmetric_encryption_keys=keys or None, random_prefix_length=0, expiry=expiry
        )
    except SerializerDoesNotExist:
        raise ImproperlyConfigured(
            f"{setting}['serializer_format'] must be a registered format "
            f"({', '.join(map(repr, registry.formats()))}; add one with "
            f"djredis.channels.serializers.registry.register_serializer), got {name!r}."
        ) from None
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(f"{setting}: {exc}") from None
    return serializer
