"""djredis.cache.stats.parse_info: Redis INFO text to a dict, keyspace lines to counts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from djredis.cache.stats import _keys_per_db, parse_info

names = st.from_regex(r"[a-z][a-z_]{0,20}", fullmatch=True).filter(lambda n: not n.startswith("db"))
values = st.from_regex(r"[A-Za-z0-9_.\-]{0,20}", fullmatch=True)


@given(
    fields=st.dictionaries(names, values, max_size=20),
    keyspace=st.dictionaries(
        st.integers(0, 15),
        st.tuples(st.integers(0, 10**9), st.integers(0, 10**9), st.integers(0, 10**9)),
        max_size=16,
    ),
)
def test_parse_info_round_trips_fields_and_keyspace(
    fields: dict[str, str], keyspace: dict[int, tuple[int, int, int]]
) -> None:
    lines = ["# Server", *(f"{k}:{v}" for k, v in fields.items()), "", "# Keyspace"]
    lines += [f"db{db}:keys={k},expires={e},avg_ttl={t}" for db, (k, e, t) in keyspace.items()]
    text = "\r\n".join(lines) + "\r\n"

    info = parse_info(text.encode())

    assert {k: v for k, v in info.items() if not k.startswith("db")} == fields
    assert _keys_per_db(info) == {db: k for db, (k, _, _) in sorted(keyspace.items())}
    for db, (keys, expires, avg_ttl) in keyspace.items():
        assert info[f"db{db}"] == {"keys": keys, "expires": expires, "avg_ttl": avg_ttl}


def test_parse_info_keeps_colons_in_values() -> None:
    info = parse_info(b"executable:/usr/bin/redis-server\r\nconfig_file:C:\\redis.conf\r\n")
    assert info == {"executable": "/usr/bin/redis-server", "config_file": "C:\\redis.conf"}
