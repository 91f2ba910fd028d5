"""django-redis 7.0's hash methods on the cache: ``cache.hset("h", "field", value)``...

``hset``, ``hdel``, ``hlen``, ``hkeys`` and ``hexists`` take the same arguments and return
the same types as django-redis 7.0 (fields are sent as given and come back as ``str``;
values are encoded like cache values). django-redis 7.0 has no way to read a value back,
so djredis adds ``hget`` and ``hgetall``. Each method has a native ``a*`` twin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis.exceptions import DataError

from djredis._core.commands import Call, Operation
from djredis.cache.base import MISSING
from djredis.cache.members import MemberCodec
from djredis.cache.twins import twin

__all__ = ["RedisHashes"]


def _field(raw: Any) -> Any:
    """Return a field name as ``str``; one that is not UTF-8 (written by another client)
    stays ``bytes``, which ``hdel``/``hget`` accept, instead of failing the whole reply."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw


class RedisHashes(MemberCodec):
    """Redis hashes whose values are cache values."""

    @twin(0)
    def hset(
        self,
        key: Any,
        field: Any = None,
        value: Any = None,
        mapping: Mapping[Any, Any] | None = None,
        version: int | None = None,
    ) -> Operation[int]:
        """Set ``field`` to ``value`` and/or every item of ``mapping``; return how many
        fields are new."""
        full = self._key(key, version=version)
        encode = self._codec.encode
        args: list[Any] = ["HSET", full]
        if field is not None:
            args += (field, encode(value))
        for name, item in (mapping or {}).items():
            args += (name, encode(item))
        if len(args) == 2:
            raise DataError("hset() needs a field and value, or a mapping")
        return int((yield Call(tuple(args))))

    ahset = hset.aio

    @twin(0)
    def hdel(self, key: Any, field: Any, version: int | None = None) -> Operation[int]:
        """Delete ``field``; return 1 if it existed, else 0."""
        return self._op_count("HDEL", key, version, field)

    ahdel = hdel.aio

    @twin(0)
    def hlen(self, key: Any, version: int | None = None) -> Operation[int]:
        """Return the number of fields (0 for a missing key)."""
        return self._op_count("HLEN", key, version, write=False)

    ahlen = hlen.aio

    @twin(False)
    def hexists(self, key: Any, field: Any, version: int | None = None) -> Operation[bool]:
        """Return whether ``field`` exists."""
        return bool((yield from self._op_one("HEXISTS", key, version, field, write=False)))

    ahexists = hexists.aio

    @twin(factory=list)
    def hkeys(self, key: Any, version: int | None = None) -> Operation[list[Any]]:
        """Return the field names, as ``str``."""
        raws = yield from self._op_one("HKEYS", key, version, write=False)
        return [_field(raw) for raw in raws]

    ahkeys = hkeys.aio

    # -- djredis additions: reading values back -------------------------------------------

    def hget(self, key: Any, field: Any, default: Any = None, version: int | None = None) -> Any:
        """Return the value of ``field``, or ``default`` when it is missing."""
        return self._run(self._op_hget(key, field, default, version), "hget", default)

    async def ahget(
        self, key: Any, field: Any, default: Any = None, version: int | None = None
    ) -> Any:
        """Return the value of ``field``, or ``default`` when it is missing."""
        return await self._arun(self._op_hget(key, field, default, version), "hget", default)

    def _op_hget(self, key: Any, field: Any, default: Any, version: int | None) -> Operation[Any]:
        full = self._key(key, version=version)
        raw = yield Call(("HGET", full, field), False)
        return default if raw is None else self._decode(raw, full, default)

    @twin(factory=dict)
    def hgetall(self, key: Any, version: int | None = None) -> Operation[dict[Any, Any]]:
        """Return every field (as ``str``) and its value ({} for a missing key)."""
        full = self._key(key, version=version)
        flat = yield Call(("HGETALL", full), False)
        result = {}
        for i in range(0, len(flat), 2):
            value = self._decode(flat[i + 1], full, MISSING)
            if value is not MISSING:
                result[_field(flat[i])] = value
        return result

    ahgetall = hgetall.aio
