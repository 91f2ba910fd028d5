"""``sscan(match=...)`` filters decoded members with Redis' own glob rules: a property test
comparing ``redis_glob`` with Redis' MATCH on the same strings."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from djredis.cache.members import redis_glob
from tests._servers import RedisServer

# The characters Redis' glob gives a meaning to, and a few plain ones.
GLOB_TEXT = st.text(alphabet="ab-^]\\[*?", max_size=8)
STRINGS = st.lists(st.text(alphabet="ab-^]\\[*?", max_size=6), min_size=1, max_size=12)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(pattern=GLOB_TEXT, strings=STRINGS)
@example(pattern="**", strings=["", "a"])
@example(pattern="*", strings=["", "a"])
@example(pattern="[]", strings=["", "a", "]"])
@example(pattern="[^]", strings=["", "a", "]", "ab"])
@example(pattern="[a-]", strings=["a", "-", "]", "^", "b"])
@example(pattern="a\\", strings=["a\\", "a"])
@example(pattern="[b-a]*", strings=["a", "b", "ba", "c"])
def test_redis_glob_matches_what_redis_matches(
    pattern: str, strings: list[str], redis_server: RedisServer
) -> None:
    client: Any = redis_server.client()
    try:
        client.delete("glob")
        client.sadd("glob", *strings)
        _, matched = client.sscan("glob", 0, match=pattern, count=1000)
    finally:
        client.close()
    by_redis = {raw.decode() for raw in matched}
    compiled = redis_glob(pattern)
    ours = {s for s in set(strings) if compiled.fullmatch(s)}
    assert ours == by_redis, f"pattern {pattern!r}: djredis {ours}, Redis {by_redis}"
