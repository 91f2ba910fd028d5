"""django-redis 7.0's set methods on the cache: ``cache.sadd("s", 1, "a")``, ``cache.smembers``...

Same names, arguments and results as django-redis (a Python ``set`` of decoded members from
``smembers``/``sdiff``/``sinter``/``sunion``/``spop(count=n)``, a list from
``srandmember(count=n)``), each with a native ``a*`` twin. Keys are the cache's keys
(KEY_PREFIX, VERSION, KEY_FUNCTION, ``version=``); members are encoded like cache values.
In Redis Cluster the multi-key methods need their keys in one hash slot (a common
``{tag}`` at the start of the keys) and raise ``CrossSlotError`` naming them otherwise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from djredis._core.commands import Call, Operation
from djredis.cache.members import MemberCodec, redis_glob
from djredis.cache.twins import twin

__all__ = ["RedisSets"]

SetReply = set[Any]


class RedisSets(MemberCodec):
    """Redis sets whose members are cache values."""

    @twin(0)
    def sadd(self, key: Any, *values: Any, version: int | None = None) -> Operation[int]:
        """Add members; return how many were new."""
        return self._op_with_members("SADD", key, values, version)

    asadd = sadd.aio

    @twin(0)
    def srem(self, key: Any, *members: Any, version: int | None = None) -> Operation[int]:
        """Remove members; return how many were there."""
        return self._op_with_members("SREM", key, members, version)

    asrem = srem.aio

    def _op_with_members(
        self, command: str, key: Any, members: tuple[Any, ...], version: int | None
    ) -> Operation[int]:
        full = self._key(key, version=version)
        encode = self._codec.encode
        return int((yield Call((command, full, *[encode(m) for m in members]))))

    @twin(0)
    def scard(self, key: Any, version: int | None = None) -> Operation[int]:
        """Return the number of members (0 for a missing key)."""
        return self._op_count("SCARD", key, version, write=False)

    ascard = scard.aio

    @twin(False)
    def sismember(self, key: Any, member: Any, version: int | None = None) -> Operation[bool]:
        """Return whether ``member`` is in the set."""
        full = self._key(key, version=version)
        return bool((yield Call(("SISMEMBER", full, self._codec.encode(member)), False)))

    asismember = sismember.aio

    def smismember(self, key: Any, *members: Any, version: int | None = None) -> list[bool]:
        """Return, for each member, whether it is in the set (Redis >= 6.2)."""
        op = self._op_mismember(key, members, version)
        return self._run(op, "smismember", [False] * len(members))

    async def asmismember(self, key: Any, *members: Any, version: int | None = None) -> list[bool]:
        """Return, for each member, whether it is in the set (Redis >= 6.2)."""
        op = self._op_mismember(key, members, version)
        return await self._arun(op, "smismember", [False] * len(members))

    def _op_mismember(
        self, key: Any, members: tuple[Any, ...], version: int | None
    ) -> Operation[list[bool]]:
        full = self._key(key, version=version)
        encode = self._codec.encode
        replies = yield Call(("SMISMEMBER", full, *[encode(m) for m in members]), False)
        return [bool(reply) for reply in replies]

    @twin(factory=set)
    def smembers(self, key: Any, version: int | None = None) -> Operation[SetReply]:
        """Return every member, as a Python set (empty for a missing key)."""
        return self._op_set_reply("SMEMBERS", [(key, version)])

    asmembers = smembers.aio

    @twin(factory=set)
    def sdiff(self, *keys: Any, version: int | None = None) -> Operation[SetReply]:
        """Return the members of the first set that are in none of the others."""
        return self._op_set_reply("SDIFF", [(k, version) for k in keys])

    asdiff = sdiff.aio

    @twin(factory=set)
    def sinter(self, *keys: Any, version: int | None = None) -> Operation[SetReply]:
        """Return the members common to every set."""
        return self._op_set_reply("SINTER", [(k, version) for k in keys])

    asinter = sinter.aio

    @twin(factory=set)
    def sunion(self, *keys: Any, version: int | None = None) -> Operation[SetReply]:
        """Return the members of any of the sets."""
        return self._op_set_reply("SUNION", [(k, version) for k in keys])

    asunion = sunion.aio

    def _op_set_reply(
        self, command: str, keys: list[tuple[Any, int | None]]
    ) -> Operation[SetReply]:
        fulls = self._keys(command.lower(), keys)
        raws = yield Call((command, *fulls), False)
        return set(self._members(raws, fulls[0] if fulls else command))

    @twin(0)
    def sdiffstore(
        self,
        dest: Any,
        *keys: Any,
        version_dest: int | None = None,
        version_keys: int | None = None,
        version: int | None = None,
    ) -> Operation[int]:
        """Store the difference of ``keys`` at ``dest``; return its size.

        As in django-redis, ``version_dest``/``version_keys`` version each side; djredis
        also takes ``version=`` for both.
        """
        return self._op_store("SDIFFSTORE", dest, keys, version, version_dest, version_keys)

    asdiffstore = sdiffstore.aio

    @twin(0)
    def sinterstore(self, dest: Any, *keys: Any, version: int | None = None) -> Operation[int]:
        """Store the intersection of ``keys`` at ``dest``; return its size."""
        return self._op_store("SINTERSTORE", dest, keys, version)

    asinterstore = sinterstore.aio

    @twin(0)
    def sunionstore(
        self, destination: Any, *keys: Any, version: int | None = None
    ) -> Operation[int]:
        """Store the union of ``keys`` at ``destination``; return its size."""
        return self._op_store("SUNIONSTORE", destination, keys, version)

    asunionstore = sunionstore.aio

    def _op_store(
        self,
        command: str,
        dest: Any,
        keys: tuple[Any, ...],
        version: int | None,
        version_dest: int | None = None,
        version_keys: int | None = None,
    ) -> Operation[int]:
        dest_version = version if version_dest is None else version_dest
        keys_version = version if version_keys is None else version_keys
        pairs = [(dest, dest_version), *((k, keys_version) for k in keys)]
        return int((yield Call((command, *self._keys(command.lower(), pairs)))))

    @twin(False)
    def smove(
        self, source: Any, destination: Any, member: Any, version: int | None = None
    ) -> Operation[bool]:
        """Move ``member`` from ``source`` to ``destination``; return whether it moved.

        ``version`` applies to both keys (django-redis 7.0 versions only ``source``).
        """
        keys = self._keys("smove", [(source, version), (destination, version)])
        return bool((yield Call(("SMOVE", *keys, self._codec.encode(member)))))

    asmove = smove.aio

    def spop(self, key: Any, count: int | None = None, version: int | None = None) -> Any:
        """Remove and return a random member (None if empty), or a set of ``count``."""
        fallback: Any = None if count is None else set()
        return self._run(self._op_random("SPOP", key, count, version), "spop", fallback)

    async def aspop(self, key: Any, count: int | None = None, version: int | None = None) -> Any:
        """Remove and return a random member (None if empty), or a set of ``count``."""
        fallback: Any = None if count is None else set()
        return await self._arun(self._op_random("SPOP", key, count, version), "spop", fallback)

    def srandmember(self, key: Any, count: int | None = None, version: int | None = None) -> Any:
        """Return a random member (None if empty), or a list of ``count`` (negative: may
        repeat)."""
        fallback: Any = None if count is None else []
        op = self._op_random("SRANDMEMBER", key, count, version)
        return self._run(op, "srandmember", fallback)

    async def asrandmember(
        self, key: Any, count: int | None = None, version: int | None = None
    ) -> Any:
        """Return a random member (None if empty), or a list of ``count``."""
        fallback: Any = None if count is None else []
        op = self._op_random("SRANDMEMBER", key, count, version)
        return await self._arun(op, "srandmember", fallback)

    def _op_random(
        self, command: str, key: Any, count: int | None, version: int | None
    ) -> Operation[Any]:
        full = self._key(key, version=version)
        if count is None:
            raw = yield Call((command, full), command == "SPOP")
            return None if raw is None else self._member(raw, full)
        raws = yield Call((command, full, count), command == "SPOP")
        members = self._members(raws, full)
        return set(members) if command == "SPOP" else members

    def sscan(
        self, key: Any, match: str | None = None, count: int | None = 10, version: int | None = None
    ) -> SetReply:
        """Return the members of one SSCAN page (a small set fits in one), as django-redis.

        ``match`` is a Redis glob applied to ``str`` members after decoding (so it works
        with every serializer and compressor); other members never match a pattern.
        """
        op = self._op_sscan_page(key, 0, match, count, version)
        return set(self._run(op, "sscan", (0, []))[1])

    async def asscan(
        self, key: Any, match: str | None = None, count: int | None = 10, version: int | None = None
    ) -> SetReply:
        """Return the members of one SSCAN page, as django-redis."""
        op = self._op_sscan_page(key, 0, match, count, version)
        return set((await self._arun(op, "sscan", (0, [])))[1])

    def sscan_iter(
        self, key: Any, match: str | None = None, count: int | None = 10, version: int | None = None
    ) -> Iterator[Any]:
        """Yield every member (possibly twice, as SSCAN may), a page per round trip."""
        cursor = 0
        while True:
            op = self._op_sscan_page(key, cursor, match, count, version)
            cursor, members = self._run(op, "sscan_iter", (0, []))
            yield from members
            if not cursor:
                return

    async def asscan_iter(
        self, key: Any, match: str | None = None, count: int | None = 10, version: int | None = None
    ) -> AsyncIterator[Any]:
        """Yield every member, a page per round trip: ``async for m in cache.asscan_iter(k)``."""
        cursor = 0
        while True:
            op = self._op_sscan_page(key, cursor, match, count, version)
            cursor, members = await self._arun(op, "sscan_iter", (0, []))
            for member in members:
                yield member
            if not cursor:
                return

    def _op_sscan_page(
        self, key: Any, cursor: int, match: str | None, count: int | None, version: int | None
    ) -> Operation[tuple[int, list[Any]]]:
        full = self._key(key, version=version)
        args: tuple[Any, ...] = ("SSCAN", full, cursor)
        if count is not None:
            args += ("COUNT", count)
        next_cursor, raws = yield Call(args, False)
        members = self._members(raws, full)
        if match and match != "*":  # "*" filters nothing, as SCAN's MATCH "*"
            matches = redis_glob(match).fullmatch
            members = [m for m in members if isinstance(m, str) and matches(m)]
        return int(next_cursor), members
