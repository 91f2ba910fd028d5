"""Bytes in Redis are untrusted: a cache decodes only the formats its settings name.

Whoever can write to the cache's Redis plants what an attacker would: a pickle whose
``__reduce__`` creates a directory, behind every header djredis knows (pickle, pickle
compressed with each built-in compressor, a forged "signed" header before either). A
cache configured with JSON or msgpack reads each of them, on every path that decodes
stored bytes, as a miss (or that path's documented result) plus a log line, and the
directory is never created. Sync and async APIs; every topology.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from djredis.cache import RedisCache, memoize
from djredis.cache.legacy import convert_from_django_redis
from djredis.compressors import (
    GzipCompressor,
    Lz4Compressor,
    LzmaCompressor,
    ZlibCompressor,
    ZstdCompressor,
)
from tests._api import shutdown
from tests._topologies import Topology

pytestmark = pytest.mark.topologies


class Mkdir:
    """An attacker's pickle: loading it creates the directory ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (self.path,))


def hostile(target: Path) -> dict[str, bytes]:
    """The planted values, by what their header claims."""
    pickled = pickle.dumps(Mkdir(str(target)))
    values = {"pickle": b"\xc8" + pickled}
    for compressor in (
        ZlibCompressor(),
        GzipCompressor(),
        LzmaCompressor(),
        Lz4Compressor(),
        ZstdCompressor(),
    ):
        name = f"pickle+{type(compressor).__name__}"
        values[name] = bytes([0xC8 | compressor.format_id]) + compressor.compress(pickled)
    forged_tag = bytes(32)
    values["forged-signed pickle"] = b"\xe0" + forged_tag + values["pickle"]
    values["forged-signed pickle+zlib"] = b"\xe0" + forged_tag + values["pickle+ZlibCompressor"]
    return values


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Path]:
    """The directory the planted pickles would create; the test fails if it exists."""
    path = tmp_path / "pwned"
    yield path
    assert not path.exists(), "a planted pickle was unpickled"


@pytest.fixture(params=["json", "msgpack"])
def victim(request: pytest.FixtureRequest, make_cache: Callable[..., RedisCache]) -> RedisCache:
    """A cache configured with a serializer that cannot run code."""
    return make_cache(OPTIONS={"SERIALIZER": request.param})


@pytest.fixture(params=["sync", "async"])
def call(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """``call(cache, "get", *args)``: the sync method, or its ``a*`` twin on one loop."""
    loop = asyncio.new_event_loop()

    def run(cache: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        if request.param == "sync":
            return getattr(cache, name)(*args, **kwargs)
        return loop.run_until_complete(getattr(cache, "a" + name)(*args, **kwargs))

    run.api = request.param  # type: ignore[attr-defined]
    run.loop = loop  # type: ignore[attr-defined]
    yield run
    shutdown(loop)


def planted(
    topology: Topology, redis_client: Any, plant: Callable[[bytes], None], target: Path
) -> Iterator[tuple[str, bytes]]:
    """Plant each hostile value with ``plant`` (raw redis-py) and yield it."""
    for name, data in hostile(target).items():
        topology.flush()
        plant(data)
        topology.wait_replicated()  # the cache may read from a replica
        yield name, data


def unwrapped(cache: Any) -> RedisCache:
    """The cache itself, for APIs that take one (``ReadYourWrites`` wraps it on replicas;
    these tests wait for replication themselves)."""
    return getattr(cache, "_cache", cache)  # type: ignore[no-any-return]


def assert_logged(caplog: pytest.LogCaptureFixture) -> None:
    # The log line is burst-limited: one for the whole series of planted values.
    assert "cannot be decoded" in caplog.text


# Cache reads of one key: method, arguments, the documented result for garbage there.
STRING_READS = {
    "get": ("get", ("k", "miss"), {}, "miss"),
    "get_many": ("get_many", (["k"],), {}, {}),
    "get_or_set": ("get_or_set", ("k", "fresh"), {}, "fresh"),
    "get_or_set-stampede": ("get_or_set", ("k", lambda: "fresh"), {"stampede": True}, "fresh"),
}


@pytest.mark.parametrize("read", STRING_READS.values(), ids=STRING_READS.keys())
def test_string_reads_treat_a_planted_pickle_as_a_miss(
    victim: RedisCache,
    redis_client: Any,
    topology: Topology,
    call: Callable[..., Any],
    target: Path,
    caplog: pytest.LogCaptureFixture,
    read: tuple[str, tuple[Any, ...], dict[str, Any], Any],
) -> None:
    method, args, kwargs, expected = read
    caplog.set_level(logging.WARNING, logger="djredis.cache")
    full = victim.make_key("k")
    plant = lambda data: redis_client.set(full, data)  # noqa: E731
    for name, _ in planted(topology, redis_client, plant, target):
        assert call(victim, method, *args, **kwargs) == expected, name
        assert not target.exists(), name
    assert_logged(caplog)


def test_incr_on_a_planted_pickle_raises_value_error(
    victim: RedisCache,
    redis_client: Any,
    topology: Topology,
    call: Callable[..., Any],
    target: Path,
) -> None:
    full = victim.make_key("k")
    plant = lambda data: redis_client.set(full, data)  # noqa: E731
    for name, _ in planted(topology, redis_client, plant, target):
        with pytest.raises(ValueError, match="cannot decode"):
            call(victim, "incr", "k")
        assert not target.exists(), name


@pytest.mark.parametrize("stampede", [True, False], ids=["stampede", "no-stampede"])
def test_memoize_recomputes_over_a_planted_pickle(
    victim: RedisCache,
    redis_client: Any,
    topology: Topology,
    call: Callable[..., Any],
    target: Path,
    caplog: pytest.LogCaptureFixture,
    stampede: bool,
) -> None:
    @memoize(cache=unwrapped(victim), key="user:{n}", stampede=stampede)
    def double(n: int) -> int:
        return n * 2

    @memoize(cache=unwrapped(victim), key="user:{n}", stampede=stampede)
    async def adouble(n: int) -> int:
        return n * 2

    full = victim.make_key(double.cache_key(21))
    caplog.set_level(logging.WARNING, logger="djredis.cache")
    plant = lambda data: redis_client.set(full, data)  # noqa: E731
    for name, _ in planted(topology, redis_client, plant, target):
        if call.api == "sync":  # type: ignore[attr-defined]
            assert double(21) == 42, name
        else:
            assert call.loop.run_until_complete(adouble(21)) == 42, name  # type: ignore[attr-defined]
        assert not target.exists(), name
    assert_logged(caplog)


# Reads of set, hash and sorted-set members: how to plant the member, and the documented
# result (an undecodable member is left out, or None where one member is asked for).
MEMBER_READS = {
    "smembers": ("sadd", "smembers", (), set()),
    "srandmember": ("sadd", "srandmember", (), None),
    "srandmember-count": ("sadd", "srandmember", (2,), []),
    "spop": ("sadd", "spop", (), None),
    "sscan": ("sadd", "sscan", (), set()),
    "hget": ("hset", "hget", ("f", "miss"), "miss"),
    "hgetall": ("hset", "hgetall", (), {}),
    "zrange": ("zadd", "zrange", (0, -1), []),
    "zrange-withscores": ("zadd", "zrange", (0, -1, False, True), []),
    "zpopmin": ("zadd", "zpopmin", (), None),
}


def _member_planter(redis_client: Any, kind: str, full: str) -> Callable[[bytes], None]:
    if kind == "sadd":
        return lambda data: redis_client.sadd(full, data)
    if kind == "hset":
        return lambda data: redis_client.hset(full, "f", data)
    return lambda data: redis_client.zadd(full, {data: 1.0})


@pytest.mark.parametrize("read", MEMBER_READS.values(), ids=MEMBER_READS.keys())
def test_member_reads_leave_out_a_planted_pickle(
    victim: RedisCache,
    redis_client: Any,
    topology: Topology,
    call: Callable[..., Any],
    target: Path,
    caplog: pytest.LogCaptureFixture,
    read: tuple[str, str, tuple[Any, ...], Any],
) -> None:
    kind, method, args, expected = read
    caplog.set_level(logging.WARNING, logger="djredis.cache")
    plant = _member_planter(redis_client, kind, victim.make_key("s"))
    for name, _ in planted(topology, redis_client, plant, target):
        result = call(victim, method, "s", *args)
        if method == "sscan":
            result = result[1] if isinstance(result, tuple) else result
        assert result == expected, name
        assert not target.exists(), name
    assert_logged(caplog)


def test_a_planted_pickle_is_read_where_pickle_is_accepted_for_migration(
    make_cache: Callable[..., RedisCache], redis_client: Any, topology: Topology, target: Path
) -> None:
    """The other side of the rule: ACCEPT_SERIALIZERS is the one way to read pickles on
    a JSON cache (and then they do run: the option is for data this site wrote)."""
    cache = make_cache(OPTIONS={"SERIALIZER": "json", "ACCEPT_SERIALIZERS": ["pickle"]})
    cache_reader = make_cache(OPTIONS={"SERIALIZER": "json"})
    redis_client.set(cache.make_key("k"), b"\xc8" + pickle.dumps("from pickle"))
    topology.wait_replicated()
    assert cache.get("k") == "from pickle"
    assert cache_reader.get("k", "miss") == "miss"


def test_converting_django_redis_data_reads_it_with_the_caches_own_serializer(
    make_cache: Callable[..., RedisCache],
    redis_client: Any,
    topology: Topology,
    target: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """convert_from_django_redis on a JSON cache never unpickles unless told to: a pickle
    found there (django-redis's format has no header) is left as it is, and logged."""
    cache = make_cache(OPTIONS={"SERIALIZER": "json"})
    hostile_pickle = pickle.dumps(Mkdir(str(target)))
    redis_client.set(cache.make_key("legacy:value"), hostile_pickle)
    redis_client.sadd(cache.make_key("legacy:set"), hostile_pickle, b'"kept"')
    redis_client.set(cache.make_key("legacy:json"), b'{"a": 1}')
    topology.wait_replicated()
    with caplog.at_level(logging.WARNING, logger="djredis.cache"):
        counts = convert_from_django_redis(unwrapped(cache), "legacy:*")
    assert not target.exists()
    assert "cannot be decoded" in caplog.text
    assert counts == {"string": 1, "set": 1, "zset": 0, "hash": 0}
    topology.wait_replicated()
    assert cache.get("legacy:json") == {"a": 1}
    assert cache.smembers("legacy:set") == {"kept"}
    assert redis_client.get(cache.make_key("legacy:value")) == hostile_pickle  # untouched


def test_converting_pickled_data_into_a_json_cache_takes_an_explicit_loads(
    make_cache: Callable[..., RedisCache], redis_client: Any, topology: Topology
) -> None:
    cache = make_cache(OPTIONS={"SERIALIZER": "json"})
    redis_client.set(cache.make_key("legacy:value"), pickle.dumps({"a": [1, 2]}))
    topology.wait_replicated()
    converted = convert_from_django_redis(unwrapped(cache), "legacy:*", loads=pickle.loads)
    assert converted["string"] == 1
    topology.wait_replicated()
    assert cache.get("legacy:value") == {"a": [1, 2]}


@pytest.mark.parametrize("serializer", ["pickle", "json"])
def test_a_forged_signed_header_is_never_stripped_unchecked(
    make_cache: Callable[..., RedisCache],
    redis_client: Any,
    topology: Topology,
    target: Path,
    serializer: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without SIGN_VALUES a signed-looking value is read only once its HMAC verifies
    (this site's signed values stay readable after turning the option off)."""
    signer = make_cache(KEY_PREFIX="p", OPTIONS={"SIGN_VALUES": True, "SERIALIZER": serializer})
    plain = make_cache(KEY_PREFIX="p", OPTIONS={"SERIALIZER": serializer})
    signer.set("mine", {"a": 1})
    inner = b"\xc8" + pickle.dumps(Mkdir(str(target)))
    redis_client.set(plain.make_key("forged"), b"\xe0" + bytes(32) + inner)
    topology.wait_replicated()
    with caplog.at_level(logging.WARNING, logger="djredis.cache"):
        assert plain.get("forged", "miss") == "miss"
    assert "signature does not verify" in caplog.text
    assert plain.get("mine") == {"a": 1}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ACCEPT_SERIALIZERS": ["pikle"]}, r"\['ACCEPT_SERIALIZERS'\]: 'pikle' .* 'pickle'"),
        ({"ACCEPT_SERIALIZERS": "pickle"}, r"\['ACCEPT_SERIALIZERS'\] = 'pickle' must be a list"),
        ({"ACCEPT_COMPRESSORS": ["snappy"]}, r"\['ACCEPT_COMPRESSORS'\]: 'snappy' is not"),
        ({"ACCEPT_SERIALIZER": ["pickle"]}, r"'ACCEPT_SERIALIZER'\] is not a djredis option"),
    ],
)
def test_accept_options_are_validated(
    make_cache: Callable[..., RedisCache], options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        make_cache(OPTIONS=options)
