"""OPTIONS['NEAR_CACHE'] parsing and the local tier's bounds (no server needed)."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from hypothesis import given, settings
from hypothesis import strategies as st

from djredis.cache.near import lru
from djredis.cache.near.lru import NEVER, LocalTier
from djredis.cache.near.options import NearCacheSettings, parse_near_options

SETTING = "CACHES['default']['OPTIONS']['NEAR_CACHE']"


def test_true_gives_the_defaults_and_false_or_none_turn_it_off() -> None:
    assert parse_near_options(True, SETTING) == NearCacheSettings()
    assert parse_near_options(False, SETTING) is None
    assert parse_near_options(None, SETTING) is None


@given(st.dictionaries(st.text(min_size=1), st.integers(), min_size=1))
def test_unknown_keys_are_named_in_the_error(extra: dict[str, Any]) -> None:
    known = ("MAX_ENTRIES", "MAX_BYTES", "MAX_STALENESS", "KEYS")
    unknown = {k: v for k, v in extra.items() if k not in known}
    if not unknown:
        return
    with pytest.raises(ImproperlyConfigured) as error:
        parse_near_options({**unknown, "MAX_ENTRIES": 5}, SETTING)
    for name in unknown:
        assert repr(name) in str(error.value)
    assert SETTING in str(error.value)


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ({"MAX_ENTRIES": 0}, "MAX_ENTRIES"),
        ({"MAX_ENTRIES": True}, "MAX_ENTRIES"),
        ({"MAX_BYTES": -1}, "MAX_BYTES"),
        ({"MAX_BYTES": 1.5}, "MAX_BYTES"),
        ({"MAX_STALENESS": 0}, "MAX_STALENESS"),
        ({"MAX_STALENESS": float("nan")}, "MAX_STALENESS"),
        ({"MAX_STALENESS": "0.1"}, "MAX_STALENESS"),
        ({"KEYS": "flags:"}, "KEYS"),
        ({"KEYS": [b"flags:"]}, "KEYS"),
        ("yes", "NEAR_CACHE"),
    ],
)
def test_bad_values_name_the_setting(value: Any, named: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=named):
        parse_near_options(value, SETTING)


def test_keys_takes_prefixes_or_a_callable() -> None:
    by_prefix = parse_near_options({"KEYS": ["flags:", "menu"]}, SETTING)
    assert by_prefix is not None
    assert by_prefix.wants("flags:home")
    assert by_prefix.wants("menu:top")
    assert not by_prefix.wants("user:1")
    assert not by_prefix.wants(42)
    by_callable = parse_near_options({"KEYS": lambda key: key == "site"}, SETTING)
    assert by_callable is not None
    assert by_callable.wants("site")
    assert not by_callable.wants("user")


def _store(tier: LocalTier, key: str, raw: bytes, expires_at: float = NEVER) -> bool:
    return tier.fill(key, tier.ticket(key), raw, expires_at)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 300), st.integers(0, 3000)), min_size=1, max_size=400),
    st.integers(1000, 50_000),
    st.integers(1, 100),
)
def test_the_tier_never_counts_more_than_max_bytes_or_max_entries(
    writes: list[tuple[int, int]], max_bytes: int, max_entries: int
) -> None:
    tier = LocalTier(max_entries, max_bytes)
    for key, size in writes:
        _store(tier, f"k{key}", b"x" * size)
        assert tier.size <= max_bytes
        assert len(tier) <= max_entries


@pytest.mark.parametrize("budget", [16 * 1024, 256 * 1024, 4 * 1024 * 1024])
@pytest.mark.parametrize("largest", [1, 50, 700, 5000])
def test_the_memory_really_held_stays_within_max_bytes(budget: int, largest: int) -> None:
    """Measured with tracemalloc: keys, values, the LRU's own structures.

    Only memory allocated by this file (keys, values) and by the tier's module counts:
    threads other tests left running (a Sentinel watcher, a near-cache heartbeat) allocate
    too, and tracemalloc's process-wide total would charge them to the tier.
    """
    gc.collect()
    tracemalloc.start()
    try:
        ours = [
            tracemalloc.Filter(True, __file__),
            tracemalloc.Filter(True, lru.__file__),
        ]
        before = tracemalloc.take_snapshot().filter_traces(ours)
        tier = LocalTier(10**6, budget)
        for i in range(20_000):
            _store(tier, f"prefix:1:key-{i}", bytes(i * 13 % largest))
        after = tracemalloc.take_snapshot().filter_traces(ours)
        held = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    finally:
        tracemalloc.stop()
    assert tier.evictions > 0
    assert held <= budget, held


def test_a_voided_ticket_does_not_store() -> None:
    tier = LocalTier(10, 100_000)
    ticket = tier.ticket("k")
    tier.drop(["k"], counted=True)
    assert not tier.fill("k", ticket, b"old", NEVER)
    assert tier.get("k", 0.0) is None


def test_concurrent_reads_share_a_ticket_and_the_first_reply_fills() -> None:
    """A second miss while a read is in flight must not void the first read's ticket:
    under a steady stream of concurrent misses the key would never be stored."""
    tier = LocalTier(10, 100_000)
    first = tier.ticket("k")
    second = tier.ticket("k")
    assert tier.fill("k", first, b"first", NEVER)
    assert tier.get("k", 0.0) == b"first"
    assert tier.fill("k", second, b"second", NEVER)  # no invalidation since: still valid
    assert tier.get("k", 0.0) == b"second"
    assert tier._tickets == {}  # every holder done: nothing kept


def test_an_invalidation_voids_the_shared_ticket_for_every_holder() -> None:
    tier = LocalTier(10, 100_000)
    first, second = tier.ticket("k"), tier.ticket("k")
    tier.drop(["k"], counted=True)
    third = tier.ticket("k")  # a read begun after the invalidation
    assert not tier.fill("k", first, b"old", NEVER)
    assert not tier.fill("k", second, b"old", NEVER)
    assert tier.get("k", 0.0) is None
    assert tier.fill("k", third, b"new", NEVER)
    assert tier.get("k", 0.0) == b"new"


def test_an_abandoned_ticket_stays_valid_for_the_other_holders() -> None:
    tier = LocalTier(10, 100_000)
    failed, ok = tier.ticket("k"), tier.ticket("k")
    tier.abandon("k", failed)
    assert tier.fill("k", ok, b"v", NEVER)
    tier.abandon("k", failed)  # given back twice by mistake: no effect on a new ticket
    assert tier._tickets == {}


def test_an_expired_entry_is_not_returned() -> None:
    tier = LocalTier(10, 100_000)
    _store(tier, "k", b"v", expires_at=5.0)
    assert tier.get("k", 4.9) == b"v"
    assert tier.get("k", 5.0) is None
    assert len(tier) == 0
    assert tier.size == 0


def test_least_recently_used_goes_first() -> None:
    tier = LocalTier(2, 100_000)
    _store(tier, "a", b"1")
    _store(tier, "b", b"2")
    assert tier.get("a", 0.0) == b"1"
    _store(tier, "c", b"3")
    assert tier.get("b", 0.0) is None
    assert tier.get("a", 0.0) == b"1"
    assert tier.get("c", 0.0) == b"3"
    assert tier.evictions == 1


def test_a_value_larger_than_the_budget_is_not_kept() -> None:
    tier = LocalTier(10, 9000)
    assert not _store(tier, "big", bytes(10000))
    assert len(tier) == 0
    assert tier.size == 0
