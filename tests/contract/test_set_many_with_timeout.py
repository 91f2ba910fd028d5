"""``set_many`` with a timeout: one transaction in which the values never pass through Lua.

The values go in one MSET and a script gives every key its TTL, in one MULTI/EXEC: as
atomic as a script setting each key with ``SET ... PX``, for about a quarter less server
work (issue 19's ``set_many`` target). The commands sent, on every topology, are checked by
``tests/contract/both_apis/test_cache_contract.py::test_set_many_with_timeout_is_one_round_trip``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from djredis.cache import RedisCache

VALUES = {f"item:{i}": {"id": i, "name": "x" * i} for i in range(100)}


def set_many(cache: RedisCache, api: str, timeout: float) -> list[Any]:
    if api == "sync":
        return cache.set_many(VALUES, timeout)
    return asyncio.run(cache.aset_many(VALUES, timeout))


@pytest.mark.parametrize("api", ["sync", "async"])
def test_set_many_with_a_timeout_replaces_values_and_ttls_of_existing_keys(
    cache: RedisCache, redis_client: Any, api: str
) -> None:
    cache.set("item:1", "old", None)  # no TTL yet
    cache.set("item:2", "old", 5)
    set_many(cache, api, 300)
    assert cache.get("item:1") == VALUES["item:1"]
    assert cache.get("item:2") == VALUES["item:2"]
    for key in ("item:1", "item:2"):
        assert 295_000 < redis_client.pttl(cache.make_key(key)) <= 300_000
