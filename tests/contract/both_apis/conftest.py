"""The cache's behaviour tests here run twice: against the sync API and against the native
async twins (``make_cache`` and ``cache`` give the chosen API; see tests/_api.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from djredis.cache import RedisCache
from tests._api import API_PARAMS, as_api, shutdown


@pytest.fixture(params=API_PARAMS)
def api(request: pytest.FixtureRequest) -> str:
    """Which API a behaviour test runs against: "sync" or "async"."""
    return str(request.param)


@pytest.fixture
def api_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop per test for the async API, shut down like asyncio.run does."""
    loop = asyncio.new_event_loop()
    yield loop
    shutdown(loop)


@pytest.fixture
def make_cache(
    make_cache: Callable[..., RedisCache], api: str, api_loop: asyncio.AbstractEventLoop
) -> Callable[..., Any]:
    """Override of conftest's ``make_cache``: the same caches, behind the chosen API."""
    return lambda *args, **kwargs: as_api(make_cache(*args, **kwargs), api, api_loop)
