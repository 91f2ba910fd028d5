"""The a* methods work on djredis (through Django's defaults until native async lands)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync

from djredis.cache import RedisCache


def test_async_api_round_trips(cache: RedisCache) -> None:
    async def scenario() -> dict[str, Any]:
        await cache.aset("k", {"a": 1}, 30)
        added = await cache.aadd("k", "other")
        await cache.aset_many({"x": 1, "y": 2}, 30)
        await cache.aincr("x", 5)
        got_or_set = await cache.aget_or_set("z", lambda: "computed")
        result = {
            "get": await cache.aget("k"),
            "added": added,
            "many": await cache.aget_many(["x", "y", "missing"]),
            "has": await cache.ahas_key("y"),
            "touched": await cache.atouch("y", 60),
            "got_or_set": got_or_set,
            "version": await cache.aincr_version("z"),
            "deleted": await cache.adelete("k"),
        }
        await cache.adelete_many(["x"])
        result["after_delete_many"] = await cache.aget("x")
        await cache.aclear()
        result["after_clear"] = await cache.aget("y")
        await cache.aclose()
        return result

    assert async_to_sync(scenario)() == {
        "get": {"a": 1},
        "added": False,
        "many": {"x": 6, "y": 2},
        "has": True,
        "touched": True,
        "got_or_set": "computed",
        "version": 2,
        "deleted": True,
        "after_delete_many": None,
        "after_clear": None,
    }
