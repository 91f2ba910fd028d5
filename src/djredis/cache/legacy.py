"""Rewrite what django-redis stored into djredis's format: a one-off step after the swap.

Cached values need no conversion (django-redis's read as misses and the cache warms up
again), but sets, sorted sets and hashes kept as *data* would lose members: djredis skips
members it cannot decode, and a member added again gets a new encoding. ::

    from djredis.cache.legacy import convert_from_django_redis
    convert_from_django_redis(caches["default"], "leaderboard:*")

Each key is rewritten in one MULTI/EXEC; run it before djredis writes to those keys.
What django-redis stored is read with the cache's own SERIALIZER by default (pickle, as
django-redis's default, only when the cache is configured with pickle), or with the
``loads`` passed in: a cache configured with JSON never unpickles here unless told to.
With pickle it trusts what is stored there as django-redis did, so run it only on data
django-redis wrote. An item that ``loads`` cannot read is left as it is and logged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from djredis._core.commands import Batch, Call, Operation
from djredis.cache.base import CacheBase
from djredis.cache.codec import UndecodableValue
from djredis.cache.extras import DjangoRedisExtras

__all__ = ["convert_from_django_redis"]

Loads = Callable[[bytes], Any]


def convert_from_django_redis(
    cache: Any, pattern: str = "*", *, version: int | None = None, loads: Loads | None = None
) -> dict[str, int]:
    """Re-encode the django-redis values, set/sorted-set members and hash values found at the
    cache keys matching ``pattern``; return how many keys of each kind were rewritten.

    ``loads`` is django-redis's serializer; by default the cache's own SERIALIZER's
    (``pickle.loads`` for pickle, as django-redis's default). Pass ``pickle.loads``
    explicitly to convert pickled data into a cache now configured with JSON; compose with
    a decompress function if django-redis used a COMPRESSOR.
    """
    if not isinstance(cache, DjangoRedisExtras):
        raise TypeError(f"convert_from_django_redis() needs a djredis cache, not {cache!r}")
    read: Loads = cache._codec.serializer.loads if loads is None else loads
    counts = {"string": 0, "set": 0, "zset": 0, "hash": 0}
    for key in cache.iter_keys(pattern, version=version):
        full = cache.make_key(key, version=version)
        kind = cache._run(_op_convert(cache, full, read), "convert_from_django_redis", None)
        if kind is not None:
            counts[kind] += 1
    return counts


def _legacy(cache: CacheBase, full: str, raw: bytes, loads: Loads) -> tuple[bool, Any]:
    """Return (needs rewriting, encoded value) for one stored item."""
    try:
        cache._codec.decode(raw)
    except UndecodableValue:
        pass
    else:
        return False, raw  # already readable (djredis's own, or an integer)
    try:
        value = int(raw)
    except ValueError:
        try:
            value = loads(raw)
        except Exception as exc:  # whatever the serializer raises on foreign bytes
            cache._log_garbage(full, UndecodableValue(f"{type(exc).__name__}: {exc}"))
            return False, raw
    return True, cache._codec.encode(value)


def _op_convert(cache: CacheBase, full: str, loads: Loads) -> Operation[str | None]:
    kind: str = (yield Call(("TYPE", full))).decode()
    calls: list[tuple[Any, ...]] = []
    if kind == "string":
        changed, value = _legacy(cache, full, (yield Call(("GET", full))), loads)
        if changed:
            calls.append(("SET", full, value, "KEEPTTL"))
    elif kind in ("set", "zset"):
        scored = kind == "zset"
        read = ("ZRANGE", full, 0, -1, "WITHSCORES") if scored else ("SMEMBERS", full)
        flat = yield Call(read)
        raws, scores = (flat[::2], flat[1::2]) if scored else (flat, [None] * len(flat))
        old: list[bytes] = []
        new: list[Any] = []
        for raw, score in zip(raws, scores, strict=True):
            changed, encoded = _legacy(cache, full, raw, loads)
            if changed:
                old.append(raw)
                new += (score, encoded) if scored else (encoded,)
        if old:
            calls += [("ZREM" if scored else "SREM", full, *old)]
            calls += [("ZADD" if scored else "SADD", full, *new)]
    elif kind == "hash":
        flat = yield Call(("HGETALL", full))
        pairs: list[Any] = []
        for field, raw in zip(flat[::2], flat[1::2], strict=True):
            changed, encoded = _legacy(cache, full, raw, loads)
            if changed:
                pairs += (field, encoded)
        if pairs:
            calls.append(("HSET", full, *pairs))
    if not calls:
        return None
    yield Batch(tuple(calls), transaction=True)
    return kind
