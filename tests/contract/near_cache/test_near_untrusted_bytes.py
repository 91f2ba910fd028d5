"""The near-cache decodes what it reads from Redis with the same rule as the cache: a
value in a format the settings do not name (a planted pickle on a JSON cache) is a miss,
is not kept locally, and never runs."""

from __future__ import annotations

import asyncio
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from djredis.cache import RedisCache
from tests._near import NEAR
from tests._topologies import Topology

pytestmark = pytest.mark.topologies


class Mkdir:
    """An attacker's pickle: loading it creates the directory ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (self.path,))


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
def test_a_planted_pickle_is_a_miss_and_is_not_kept_locally(
    make_cache: Callable[..., RedisCache],
    redis_client: Any,
    topology: Topology,
    tmp_path: Path,
    serializer: str,
) -> None:
    near = make_cache(KEY_PREFIX="near", OPTIONS={**NEAR, "SERIALIZER": serializer})
    target = tmp_path / "pwned"
    pickled = pickle.dumps(Mkdir(str(target)))
    forged_signed = b"\xe0" + bytes(32) + b"\xc8" + pickled
    for data in (b"\xc8" + pickled, forged_signed):
        redis_client.set(near.make_key("k"), data)
        topology.wait_replicated()
        for _ in range(2):  # the second read would be a local hit had it been kept
            assert near.get("k", "miss") == "miss"
            assert asyncio.run(near.aget("k", "miss")) == "miss"
            assert near.get_many(["k"]) == {}
        assert not target.exists()
    stats = near.near_stats()
    assert stats is not None
    assert stats["entries"] == 0
