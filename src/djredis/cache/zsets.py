"""django-redis 7.0's sorted-set methods on the cache: ``cache.zadd("board", {"ann": 3})``...

Same names, arguments and results as django-redis 7.0 (scores as ``float``, or through
``score_cast_func``; ``(member, score)`` tuples with ``withscores``; ``zpopmax()`` a tuple
or ``None``, ``zpopmax(count=n)`` a list), each with a native ``a*`` twin. Members are
encoded like cache values; scores are sent as given, so ``"-inf"`` and ``"(1"`` work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from redis.exceptions import DataError

from djredis._core.commands import Call, Operation
from djredis.cache.members import MemberCodec
from djredis.cache.twins import twin

__all__ = ["RedisSortedSets"]

Cast = Callable[[Any], Any]


def _caster(cast: Cast) -> Cast:
    """Return ``cast`` for RESP2 score bytes; like redis-py, retry through float
    (``int(b"1e+20")`` fails)."""
    if cast is float:
        return cast

    def safe(raw: Any) -> Any:
        try:
            return cast(raw)
        except (ValueError, TypeError):
            return cast(float(raw))

    return safe


class RedisSortedSets(MemberCodec):
    """Redis sorted sets whose members are cache values."""

    def zadd(
        self,
        key: Any,
        mapping: Mapping[Any, float],
        nx: bool = False,
        xx: bool = False,
        ch: bool = False,
        incr: bool = False,
        gt: bool = False,
        lt: bool = False,
        version: int | None = None,
    ) -> Any:
        """Add members with scores; return how many were added (changed, with ``ch``), or
        with ``incr`` the new score (None when ``nx``/``xx`` prevented it)."""
        op = self._op_zadd(key, mapping, nx, xx, ch, incr, gt, lt, version)
        return self._run(op, "zadd", None if incr else 0)

    async def azadd(
        self,
        key: Any,
        mapping: Mapping[Any, float],
        nx: bool = False,
        xx: bool = False,
        ch: bool = False,
        incr: bool = False,
        gt: bool = False,
        lt: bool = False,
        version: int | None = None,
    ) -> Any:
        """Add members with scores (see ``zadd``)."""
        op = self._op_zadd(key, mapping, nx, xx, ch, incr, gt, lt, version)
        return await self._arun(op, "zadd", None if incr else 0)

    def _op_zadd(
        self,
        key: Any,
        mapping: Mapping[Any, float],
        nx: bool,
        xx: bool,
        ch: bool,
        incr: bool,
        gt: bool,
        lt: bool,
        version: int | None,
    ) -> Operation[Any]:
        # The same argument checks (and DataError) as redis-py, which django-redis calls.
        if not mapping:
            raise DataError("zadd() needs at least one member/score pair")
        if nx and xx:
            raise DataError("zadd() takes either nx or xx, not both")
        if gt and lt:
            raise DataError("zadd() takes either gt or lt, not both")
        if nx and (gt or lt):
            raise DataError("zadd() takes only one of nx, gt and lt")
        if incr and len(mapping) != 1:
            raise DataError("zadd(incr=True) takes exactly one member/score pair")
        full = self._key(key, version=version)
        args: list[Any] = ["ZADD", full]
        for flag, word in ((nx, "NX"), (xx, "XX"), (gt, "GT"), (lt, "LT"), (ch, "CH")):
            if flag:
                args.append(word)
        if incr:
            args.append("INCR")
        encode = self._codec.encode
        for member, score in mapping.items():
            args += (score, encode(member))
        reply = yield Call(tuple(args))
        if incr:
            return None if reply is None else float(reply)
        return int(reply)

    @twin(0)
    def zcard(self, key: Any, version: int | None = None) -> Operation[int]:
        """Return the number of members (0 for a missing key)."""
        return self._op_count("ZCARD", key, version, write=False)

    azcard = zcard.aio

    @twin(0)
    def zcount(
        self, key: Any, min: float | str, max: float | str, version: int | None = None
    ) -> Operation[int]:
        """Return how many members score between ``min`` and ``max`` (inclusive; "(" excludes)."""
        return self._op_count("ZCOUNT", key, version, min, max, write=False)

    azcount = zcount.aio

    @twin(0)
    def zremrangebyscore(
        self, key: Any, min: float | str, max: float | str, version: int | None = None
    ) -> Operation[int]:
        """Remove the members scoring between ``min`` and ``max``; return how many."""
        return self._op_count("ZREMRANGEBYSCORE", key, version, min, max)

    azremrangebyscore = zremrangebyscore.aio

    @twin(None)
    def zincrby(
        self, key: Any, amount: float, value: Any, version: int | None = None
    ) -> Operation[float | None]:
        """Add ``amount`` to the member's score (0 if absent); return the new score (None
        when IGNORE_EXCEPTIONS turned an unavailable Redis into a no-op)."""
        return self._op_member_score("ZINCRBY", key, value, version, amount)

    azincrby = zincrby.aio

    @twin(None)
    def zscore(self, key: Any, value: Any, version: int | None = None) -> Operation[float | None]:
        """Return the member's score, or None."""
        return self._op_member_score("ZSCORE", key, value, version)

    azscore = zscore.aio

    def _op_member_score(
        self, command: str, key: Any, member: Any, version: int | None, amount: Any = None
    ) -> Operation[float | None]:
        full = self._key(key, version=version)
        encoded = self._codec.encode(member)
        if amount is None:
            reply = yield Call((command, full, encoded), False)
        else:
            reply = yield Call((command, full, amount, encoded))
        return None if reply is None else float(reply)

    @twin(None)
    def zrank(
        self, key: Any, value: Any, withscore: bool = False, version: int | None = None
    ) -> Operation[Any]:
        """Return the member's rank, lowest score first (``[rank, score]`` with
        ``withscore``, Redis >= 7.2), or None."""
        full = self._key(key, version=version)
        args: tuple[Any, ...] = ("ZRANK", full, self._codec.encode(value))
        reply = yield Call((*args, "WITHSCORE") if withscore else args, False)
        if reply is None or not withscore:
            return reply
        return [int(reply[0]), float(reply[1])]

    azrank = zrank.aio

    @twin(0)
    def zrem(self, key: Any, *values: Any, version: int | None = None) -> Operation[int]:
        """Remove members; return how many were there."""
        encode = self._codec.encode
        return self._op_count("ZREM", key, version, *[encode(v) for v in values])

    azrem = zrem.aio

    def zpopmax(self, key: Any, count: int | None = None, version: int | None = None) -> Any:
        """Remove and return the highest-scoring ``(member, score)`` (None if empty), or a
        list of ``count`` of them."""
        fallback: Any = None if count is None else []
        return self._run(self._op_pop("ZPOPMAX", key, count, version), "zpopmax", fallback)

    async def azpopmax(self, key: Any, count: int | None = None, version: int | None = None) -> Any:
        """Remove and return the highest-scoring ``(member, score)`` (see ``zpopmax``)."""
        fallback: Any = None if count is None else []
        return await self._arun(self._op_pop("ZPOPMAX", key, count, version), "zpopmax", fallback)

    def zpopmin(self, key: Any, count: int | None = None, version: int | None = None) -> Any:
        """Remove and return the lowest-scoring ``(member, score)`` (None if empty), or a
        list of ``count`` of them."""
        fallback: Any = None if count is None else []
        return self._run(self._op_pop("ZPOPMIN", key, count, version), "zpopmin", fallback)

    async def azpopmin(self, key: Any, count: int | None = None, version: int | None = None) -> Any:
        """Remove and return the lowest-scoring ``(member, score)`` (see ``zpopmin``)."""
        fallback: Any = None if count is None else []
        return await self._arun(self._op_pop("ZPOPMIN", key, count, version), "zpopmin", fallback)

    def _op_pop(
        self, command: str, key: Any, count: int | None, version: int | None
    ) -> Operation[Any]:
        full = self._key(key, version=version)
        args: tuple[Any, ...] = (command, full) if count is None else (command, full, count)
        pairs = self._scored((yield Call(args)), full)
        if count is None:
            return pairs[0] if pairs else None
        return pairs

    @twin(factory=list)
    def zrange(
        self,
        key: Any,
        start: int,
        end: int,
        desc: bool = False,
        withscores: bool = False,
        score_cast_func: Cast = float,
        version: int | None = None,
    ) -> Operation[list[Any]]:
        """Return members by rank, lowest first (``desc``: highest first)."""
        command = "ZREVRANGE" if desc else "ZRANGE"
        return self._op_range(command, key, (start, end), withscores, score_cast_func, version)

    azrange = zrange.aio

    @twin(factory=list)
    def zrevrange(
        self,
        key: Any,
        start: int,
        end: int,
        withscores: bool = False,
        score_cast_func: Cast = float,
        version: int | None = None,
    ) -> Operation[list[Any]]:
        """Return members by rank, highest first."""
        return self._op_range("ZREVRANGE", key, (start, end), withscores, score_cast_func, version)

    azrevrange = zrevrange.aio

    @twin(factory=list)
    def zrangebyscore(
        self,
        key: Any,
        min: float | str,
        max: float | str,
        start: int | None = None,
        num: int | None = None,
        withscores: bool = False,
        score_cast_func: Cast = float,
        version: int | None = None,
    ) -> Operation[list[Any]]:
        """Return members scoring between ``min`` and ``max``, lowest first; ``start``
        and ``num`` page through them."""
        bounds = _paged((min, max), start, num)
        return self._op_range("ZRANGEBYSCORE", key, bounds, withscores, score_cast_func, version)

    azrangebyscore = zrangebyscore.aio

    @twin(factory=list)
    def zrevrangebyscore(
        self,
        key: Any,
        max: float | str,
        min: float | str,
        start: int | None = None,
        num: int | None = None,
        withscores: bool = False,
        score_cast_func: Cast = float,
        version: int | None = None,
    ) -> Operation[list[Any]]:
        """Return members scoring between ``max`` and ``min``, highest first; ``start``
        and ``num`` page through them."""
        bounds = _paged((max, min), start, num)
        return self._op_range("ZREVRANGEBYSCORE", key, bounds, withscores, score_cast_func, version)

    azrevrangebyscore = zrevrangebyscore.aio

    def _op_range(
        self,
        command: str,
        key: Any,
        bounds: tuple[Any, ...],
        withscores: bool,
        cast: Cast,
        version: int | None,
    ) -> Operation[list[Any]]:
        full = self._key(key, version=version)
        args: tuple[Any, ...] = (command, full, *bounds)
        if withscores:
            return self._scored((yield Call((*args, "WITHSCORES"), False)), full, _caster(cast))
        return self._members((yield Call(args, False)), full)


def _paged(bounds: tuple[Any, Any], start: int | None, num: int | None) -> tuple[Any, ...]:
    if (start is None) != (num is None):
        raise DataError("start and num must both be given, or neither")
    return bounds if start is None else (*bounds, "LIMIT", start, num)
