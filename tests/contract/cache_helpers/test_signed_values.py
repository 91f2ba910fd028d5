"""``OPTIONS["SIGN_VALUES"]``: values carry an HMAC; a forged or unsigned one is never
unpickled, only a miss and a log line. On a real Redis, through the sync and async APIs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured

from djredis.cache import RedisCache, memoize

from ._forged import FORGED


def get(cache: RedisCache, key: str, api: str) -> Any:
    return cache.get(key) if api == "sync" else asyncio.run(cache.aget(key))


def test_values_round_trip_signed(signed: RedisCache, redis_client: redis.Redis, api: str) -> None:
    values = {
        "s": "text",
        "d": {"a": [1, 2.5, None]},
        "n": None,
        "b": b"\x00\xff",
        "big": "x" * 70_000,
    }
    for key, value in values.items():
        if api == "sync":
            signed.set(key, value)
        else:
            asyncio.run(signed.aset(key, value))
    for key, value in values.items():
        assert get(signed, key, api) == value
        raw = redis_client.get(signed.make_key(key))
        assert raw is not None
        assert raw[0] == 0xE0
    assert signed.get_many(list(values)) == values


def test_forged_pickle_is_never_unpickled(
    signed: RedisCache,
    redis_client: redis.Redis,
    api: str,
    caplog: pytest.LogCaptureFixture,
    unpickled: list[str],
) -> None:
    redis_client.set(signed.make_key("k"), FORGED)

    with caplog.at_level(logging.WARNING, logger="djredis.cache"):
        assert get(signed, "k", api) is None
    assert unpickled == []
    assert "not signed" in caplog.text
    assert signed.get_many(["k"]) == {}
    assert unpickled == []


def test_unsigned_cache_would_run_the_forged_pickle(
    make_cache: Callable[..., RedisCache], redis_client: redis.Redis, unpickled: list[str]
) -> None:
    """The threat, shown: without SIGN_VALUES the same bytes execute code."""
    plain = make_cache()
    redis_client.set(plain.make_key("k"), FORGED)

    assert plain.get("k") == "pwned"
    assert unpickled == ["pwned"]


@pytest.mark.parametrize("where", [0, 1, 20, 40, -1])
def test_any_tampered_byte_is_a_miss(
    signed: RedisCache, redis_client: redis.Redis, where: int, caplog: pytest.LogCaptureFixture
) -> None:
    signed.set("k", {"role": "user"})
    full = signed.make_key("k")
    raw = bytearray(redis_client.get(full) or b"")
    raw[where] ^= 0x01
    redis_client.set(full, bytes(raw))

    with caplog.at_level(logging.WARNING, logger="djredis.cache"):
        assert signed.get("k", "miss") == "miss"
    assert "cannot be decoded" in caplog.text


def test_forged_value_with_a_valid_looking_signature_header_is_a_miss(
    signed: RedisCache, redis_client: redis.Redis, unpickled: list[str]
) -> None:
    redis_client.set(signed.make_key("k"), b"\xe0" + b"\x00" * 32 + FORGED)

    assert signed.get("k") is None
    assert unpickled == []


def test_value_signed_with_another_secret_is_a_miss(
    make_cache: Callable[..., RedisCache], settings: Any
) -> None:
    settings.SECRET_KEY = "another-site"
    other = make_cache(OPTIONS={"SIGN_VALUES": True})
    other.set("k", "theirs")
    settings.SECRET_KEY = "this-site"
    mine = make_cache(OPTIONS={"SIGN_VALUES": True})

    assert mine.get("k") is None


def test_secret_key_fallbacks_verify_old_values_during_rotation(
    make_cache: Callable[..., RedisCache], settings: Any
) -> None:
    settings.SECRET_KEY = "old-secret"
    before = make_cache(OPTIONS={"SIGN_VALUES": True})
    before.set("k", "written before the rotation")
    settings.SECRET_KEY = "new-secret"
    settings.SECRET_KEY_FALLBACKS = ["old-secret"]
    after = make_cache(OPTIONS={"SIGN_VALUES": True})

    assert after.get("k") == "written before the rotation"
    after.set("k2", "written after")
    settings.SECRET_KEY_FALLBACKS = []
    rotated = make_cache(OPTIONS={"SIGN_VALUES": True})
    assert rotated.get("k2") == "written after"
    assert rotated.get("k") is None  # the old secret is gone: so are its values


def test_integers_stay_raw_so_incr_is_atomic(
    signed: RedisCache, redis_client: redis.Redis, api: str
) -> None:
    signed.set("n", 41)
    assert redis_client.get(signed.make_key("n")) == b"41"
    assert signed.incr("n") == 42
    assert get(signed, "n", api) == 42
    signed.set("f", 1.5)
    assert signed.incr("f") == 2.5  # not an int: decoded, added, written back signed
    assert (redis_client.get(signed.make_key("f")) or b"")[0] == 0xE0


def test_bursts_of_bad_values_log_once(
    signed: RedisCache, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    for i in range(20):
        redis_client.set(signed.make_key(f"k{i}"), FORGED)
    with caplog.at_level(logging.WARNING, logger="djredis.cache"):
        for i in range(20):
            assert signed.get(f"k{i}") is None
    assert len([r for r in caplog.records if "cannot be decoded" in r.getMessage()]) == 1


def test_unsigned_cache_reads_signed_values(
    signed: RedisCache, make_cache: Callable[..., RedisCache]
) -> None:
    """Turning SIGN_VALUES off does not strand what is cached."""
    signed.set("k", ["v"])

    assert make_cache().get("k") == ["v"]


@pytest.mark.parametrize("sign", [True, False])
def test_chains_of_signed_headers_are_a_miss_not_a_crash(
    make_cache: Callable[..., RedisCache], redis_client: redis.Redis, sign: bool
) -> None:
    cache = make_cache(OPTIONS={"SIGN_VALUES": sign})
    redis_client.set(cache.make_key("k"), b"\xe0" * 100_000)

    assert cache.get("k", "miss") == "miss"


def test_get_or_set_and_memoize_on_a_signed_cache(signed: RedisCache) -> None:
    assert signed.get_or_set("k", lambda: {"x": 1}, stampede=True) == {"x": 1}

    @memoize(cache=signed)
    def f(n: int) -> list[int]:
        return [n]

    assert f(2) == f(2) == [2]


def test_sign_values_must_be_a_bool(make_cache: Callable[..., RedisCache]) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"\['SIGN_VALUES'\] must be True or False"):
        make_cache(OPTIONS={"SIGN_VALUES": "yes"})
