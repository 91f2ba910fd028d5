"""Every LOCATION django-redis 7.0 accepts means the same server to djredis.

django-redis hands each LOCATION item (a list, or a string split on ",") to redis-py's
``ConnectionPool.from_url``, i.e. ``redis.connection.parse_url``: the property below builds
such URLs and checks that djredis keeps every argument redis-py's parser finds in them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st
from redis.connection import parse_url

from djredis._config.options import parse_connection_settings

secrets = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=8)
hosts = st.sampled_from(["localhost", "127.0.0.1", "redis.internal", "[::1]"])
queries = st.lists(
    st.sampled_from(
        [
            "socket_timeout=0.5",
            "socket_connect_timeout=2",
            "health_check_interval=3",
            "retry_on_timeout=true",
            "client_name=web",
            "db=3",
        ]
    ),
    unique=True,
    max_size=3,
)


@st.composite
def django_redis_urls(draw: Any) -> str:
    scheme = draw(st.sampled_from(["redis", "rediss", "unix"]))
    user, password = draw(st.one_of(st.none(), secrets)), draw(st.one_of(st.none(), secrets))
    auth = ""
    if user is not None or password is not None:
        auth = f"{quote(user or '', safe='')}:{quote(password or '', safe='')}@"
    query = draw(queries)
    if scheme == "unix":
        where = "/var/run/redis/redis.sock"
    else:
        where = draw(hosts) + draw(st.sampled_from(["", ":6380"]))
        if "db=3" not in query:
            where += draw(st.sampled_from(["", "/0", "/7"]))
    return f"{scheme}://{auth}{where}" + (f"?{'&'.join(query)}" if query else "")


def _kwargs(location: Any) -> dict[str, Any]:
    return parse_connection_settings(location, {}, setting="OPTIONS").primary.kwargs()


@given(url=django_redis_urls())
def test_djredis_keeps_what_redis_py_parses_from_a_django_redis_url(url: str) -> None:
    theirs = {k: v for k, v in parse_url(url).items() if k != "connection_class"}
    ours = _kwargs(url)
    assert {k: ours.get(k) for k in theirs} == theirs


@given(primary=django_redis_urls(), replica=django_redis_urls())
def test_a_comma_separated_location_is_primary_then_replicas(primary: str, replica: str) -> None:
    settings = parse_connection_settings(f"{primary},{replica}", {}, setting="OPTIONS")
    theirs = {k: v for k, v in parse_url(replica).items() if k != "connection_class"}
    replica_kwargs = settings.replicas[0].kwargs()  # type: ignore[union-attr]
    assert {k: replica_kwargs.get(k) for k in theirs} == theirs
