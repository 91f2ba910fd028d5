"""The rest of what a django-redis 7.0 user calls: ``incr(ignore_key_check=True)``,
``expire(DEFAULT_TIMEOUT)``, ``delete_many``'s count, string timeouts, closing on
``request_finished``; sync and async, on every topology."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import request_finished
from django.test import override_settings

from djredis.cache import RedisCache
from tests._topologies import Topology

pytestmark = pytest.mark.topologies


def test_incr_ignore_key_check_creates_the_key_without_ttl(cache: RedisCache) -> None:
    assert cache.incr("n", 5, ignore_key_check=True) == 5
    assert cache.get("n") == 5
    assert cache.ttl("n") is None  # INCRBY on a missing key, as in django-redis
    assert cache.incr("n", 2, ignore_key_check=True) == 7
    with pytest.raises(ValueError, match="not found"):
        cache.incr("other")


def test_incr_ignore_key_check_keeps_ttl_and_adds_to_non_integers(cache: RedisCache) -> None:
    cache.set("n", 10, 100)
    assert cache.incr("n", ignore_key_check=True) == 11
    assert 90 < cache.ttl("n") <= 100
    cache.set("f", 1.5)
    assert cache.incr("f", 2, ignore_key_check=True) == 3.5
    cache.set("big", 2**63 - 1)
    assert cache.incr("big", 1, ignore_key_check=True) == 2**63


def test_expire_with_default_timeout_uses_the_cache_default(
    make_cache: Callable[..., Any],
) -> None:
    cache = make_cache(TIMEOUT=120)
    cache.set("k", 1, None)
    assert cache.expire("k", DEFAULT_TIMEOUT) is True
    assert 110 < cache.ttl("k") <= 120
    cache.persist("k")
    assert cache.pexpire("k", DEFAULT_TIMEOUT) is True
    assert 110_000 < cache.pttl("k") <= 120_000  # seconds, not read as milliseconds
    assert cache.expire("missing", DEFAULT_TIMEOUT) is False


def test_expire_with_default_timeout_none_makes_the_key_persistent(
    make_cache: Callable[..., Any],
) -> None:
    cache = make_cache(TIMEOUT=None)
    cache.set("k", 1, 50)
    assert cache.expire("k", DEFAULT_TIMEOUT) is True
    assert cache.ttl("k") is None
    assert cache.expire("missing", DEFAULT_TIMEOUT) is False


def test_delete_many_returns_the_count_and_none_for_no_keys(cache: RedisCache) -> None:
    cache.set_many({"a": 1, "b": 2, "c": 3})
    assert cache.delete_many(["a", "b", "missing"]) == 2
    assert cache.delete_many(["a"]) == 0
    assert cache.delete_many([]) is None
    assert cache.get_many(["a", "b", "c"]) == {"c": 3}


def test_string_timeouts_are_seconds(cache: RedisCache) -> None:
    assert cache.set("k", 1, timeout="300") is True
    assert 290 < cache.ttl("k") <= 300
    assert cache.add("a", 1, timeout="60") is True
    assert 50 < cache.ttl("a") <= 60
    assert cache.touch("k", "30") is True
    assert 20 < cache.ttl("k") <= 30
    cache.set_many({"m": 1}, timeout="40")
    assert 30 < cache.ttl("m") <= 40
    assert cache.get_or_set("g", 5, timeout="70") == 5
    assert 60 < cache.ttl("g") <= 70
    assert cache.expire("k", "90") is True
    assert 80 < cache.ttl("k") <= 90
    assert cache.set("gone", 1, timeout="0") is True
    assert cache.has_key("gone") is False


def test_a_timeout_that_is_not_a_number_names_itself(cache: RedisCache) -> None:
    with pytest.raises(ValueError, match="'soon'"):
        cache.set("k", 1, timeout="soon")


@pytest.mark.parametrize(("close", "reconnects"), [(True, 1), (False, 0)])
def test_request_finished_closes_connections_only_with_close_connection(
    topology: Topology, redis_client: Any, close: bool, reconnects: int, django_db_blocker: Any
) -> None:
    """Django sends request_finished after every request and ``close_caches`` calls
    ``close()`` on each cache in use: it drops the connections only with CLOSE_CONNECTION,
    as django-redis does."""
    options = {**topology.options, "CLOSE_CONNECTION": close, "SOCKET_TIMEOUT": 5}
    config = {"BACKEND": "djredis.cache.RedisCache", "LOCATION": topology.location}
    with override_settings(CACHES={"default": {**config, "OPTIONS": options}}):
        cache = caches["default"]
        cache.set("k", 1)
        cache.get("k")  # connected to the server reads go to (a replica, maybe)
        with django_db_blocker.unblock():  # the signal also closes old DB connections
            request_finished.send(sender=None)
        before = topology.connections_received()
        assert cache.get("k") == 1
        assert topology.connections_received() == before + reconnects
        cache.close()


def test_django_redis_close_connection_setting_is_honoured(
    make_cache: Callable[..., Any], topology: Topology
) -> None:
    with override_settings(DJANGO_REDIS_CLOSE_CONNECTION=True):
        closing = make_cache(OPTIONS={"SOCKET_TIMEOUT": 6})
    closing.set("k", 1)
    closing.get("k")
    closing.close()
    before = topology.connections_received()
    closing.get("k")
    assert topology.connections_received() == before + 1
    with override_settings(DJANGO_REDIS_CLOSE_CONNECTION=True):
        kept = make_cache(OPTIONS={"SOCKET_TIMEOUT": 7, "CLOSE_CONNECTION": False})
    kept.set("k", 1)
    kept.get("k")
    kept.close()
    before = topology.connections_received()
    kept.get("k")
    assert topology.connections_received() == before


@pytest.mark.parametrize(("version", "protocol"), [(2, 2), (4, 4), (-1, pickle.HIGHEST_PROTOCOL)])
def test_pickle_version_sets_the_pickle_protocol(
    make_cache: Callable[..., Any], redis_client: Any, version: int, protocol: int
) -> None:
    cache = make_cache(OPTIONS={"PICKLE_VERSION": version})
    cache.set("k", "text")
    raw = redis_client.get(cache.make_key("k"))
    assert raw[1:3] == bytes([0x80, protocol])  # after djredis's one-byte header
    assert cache.get("k") == "text"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"PICKLE_VERSION": 99}, "protocols 0 to"),
        ({"PICKLE_VERSION": "5"}, "must be an int"),
        ({"PICKLE_VERSION": 4, "SERIALIZER": "json"}, "only to the pickle SERIALIZER"),
    ],
)
def test_bad_pickle_version_names_the_option(
    make_cache: Callable[..., Any], options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=rf"PICKLE_VERSION.*{message}"):
        make_cache(OPTIONS=options)
