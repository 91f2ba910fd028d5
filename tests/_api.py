"""Run the same behaviour tests against the sync API and the native async API.

``as_api(cache, "async")`` returns an object with the sync method names whose calls run
the ``a*`` twin on one event loop (kept for the whole test, so the multiplexed connection
is reused the way a server process reuses it). Tests written against ``cache.get(...)``
then exercise ``await cache.aget(...)`` unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

from djredis.cache import RedisCache

API_PARAMS = ["sync", "async"]
# Methods that do no I/O, so they have no async twin.
SYNC_ONLY = frozenset({"make_key", "make_and_validate_key", "validate_key", "get_backend_timeout"})


def run_api(api: str, sync: Callable[[], Any], coroutine: Callable[[], Any]) -> Any:
    """Call ``sync()`` for the sync API, or run ``coroutine()`` on a new loop for async."""
    return sync() if api == "sync" else asyncio.run(coroutine())


class AsyncLockAdapter:
    """A sync face for ``cache.alock()``: acquire/release/with run on the test's loop."""

    def __init__(self, api: AsyncAPI, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self._api = api

        async def make() -> Any:
            return api.cache.alock(*args, **kwargs)

        self._lock = api.run(make())

    def acquire(self, blocking: bool | None = None, **kwargs: Any) -> bool:
        return bool(self._api.run(self._lock.acquire(blocking=blocking, **kwargs)))

    def release(self) -> None:
        self._api.run(self._lock.release())

    def __enter__(self) -> AsyncLockAdapter:
        self._api.run(self._lock.__aenter__())
        return self

    def __exit__(self, *exc: object) -> None:
        self._api.run(self._lock.__aexit__(*exc))


class AsyncAPI:
    """The cache's async twins behind the sync names (``get`` runs ``aget``)."""

    def __init__(self, cache: RedisCache, loop: asyncio.AbstractEventLoop) -> None:
        self.cache = cache
        self.loop = loop

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    def lock(self, *args: Any, **kwargs: Any) -> AsyncLockAdapter:
        return AsyncLockAdapter(self, args, kwargs)

    def iter_keys(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        async def collect() -> list[str]:
            return [key async for key in self.cache.aiter_keys(*args, **kwargs)]

        return iter(self.run(collect()))

    def sscan_iter(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        async def collect() -> list[Any]:
            return [member async for member in self.cache.asscan_iter(*args, **kwargs)]

        return iter(self.run(collect()))

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.cache, name)
        if name in SYNC_ONLY or name.startswith("_") or not callable(attribute):
            return attribute  # make_key, client, key_prefix, ...
        twin = getattr(self.cache, f"a{name}", None)
        if twin is None:
            # Never the sync method in its place: the test would pass without async.
            raise AttributeError(f"{type(self.cache).__name__} has no async twin a{name}()")
        return lambda *args, **kwargs: self.run(twin(*args, **kwargs))


def shutdown(loop: asyncio.AbstractEventLoop) -> None:
    """Close a test loop the way asyncio.run does (async generators first)."""
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


def as_api(cache: RedisCache, api: str, loop: asyncio.AbstractEventLoop) -> Any:
    """Return ``cache`` itself for "sync", or its async twins behind sync names."""
    return cache if api == "sync" else AsyncAPI(cache, loop)
