"""Every connection option is honoured by djredis's own connections or rejected by name.

djredis runs its commands over its own lean connections, and hands redis-py clients built
from the same settings to user code. An option only redis-py would act on makes the two
disagree without a word, so it must either reach ``ServerConfig``'s typed policy (read by
the lean connections) or fail at startup with ``ImproperlyConfigured`` naming it.
"""

from __future__ import annotations

import inspect
import queue
import socket
import ssl
import sys
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from redis._parsers import _HiredisParser, _RESP2Parser
from redis.backoff import ConstantBackoff, ExponentialBackoff, NoBackoff
from redis.connection import BlockingConnectionPool, ConnectionPool, SSLConnection
from redis.exceptions import BusyLoadingError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from djredis._config.options import parse_connection_settings
from djredis._config.server import ServerConfig
from djredis._io import bridge as _connections
from djredis._io.resp import HIREDIS_INSTALLED
from djredis.cache import RedisCache
from djredis.sessions import SessionStore
from tests._servers import RedisServer

SETTING = "CACHES['default']['OPTIONS']"


def config(options: dict[str, Any], location: str = "redis://127.0.0.1:1/0") -> ServerConfig:
    settings = parse_connection_settings(location, options, setting=SETTING)
    primary: ServerConfig = settings.primary  # type: ignore[union-attr]
    return primary


class _Subpool(ConnectionPool):
    pass


# (location, OPTIONS, the name the error must carry, a word of the advice it must give)
def advice_if_known(option: str, advice: str) -> str:
    """The advice djredis gives for ``option``; an older redis-py that does not take the
    option at all rejects it as unknown, which names it too."""
    known = {
        name
        for cls in (*SSLConnection.__mro__, *ConnectionPool.__mro__)
        if "__init__" in vars(cls)
        for name in inspect.signature(vars(cls)["__init__"]).parameters
    }
    return advice if option in known else "unknown connection option"


REJECTED = [
    pytest.param(
        "rediss://h", {"ssl_validate_ocsp": True}, "ssl_validate_ocsp", "ssl_ca_certs", id="ocsp"
    ),
    pytest.param(
        "rediss://h",
        {"ssl_validate_ocsp_stapled": True},
        "ssl_validate_ocsp_stapled",
        "ssl_ca_certs",
        id="ocsp-stapled",
    ),
    pytest.param(
        "rediss://h",
        {"ssl_ocsp_context": object()},
        "ssl_ocsp_context",
        "ssl_ca_certs",
        id="ocsp-context",
    ),
    pytest.param(
        "rediss://h",
        {"ssl_ocsp_expected_cert": "MIIB..."},
        "ssl_ocsp_expected_cert",
        "ssl_ca_certs",
        id="ocsp-cert",
    ),
    # redis-py reads the string "False" from a URL as true: OCSP would be on there.
    pytest.param(
        "rediss://h?ssl_validate_ocsp=False", {}, "ssl_validate_ocsp", "ssl_ca_certs", id="ocsp-url"
    ),
    pytest.param(
        "rediss://h",
        {"CONNECTION_POOL_KWARGS": {"ssl_include_verify_flags": [ssl.VERIFY_CRL_CHECK_LEAF]}},
        "ssl_include_verify_flags",
        advice_if_known("ssl_include_verify_flags", "remove it"),
        id="verify-flags",
    ),
    pytest.param(
        "redis://h",
        {"redis_connect_func": lambda connection: None},
        "redis_connect_func",
        "credential_provider",
        id="connect-func",
    ),
    pytest.param("redis://h", {"protocol": 3}, "protocol", "RESP2", id="protocol-3"),
    pytest.param("redis://h", {"protocol": "3"}, "protocol", "RESP2", id="protocol-3-str"),
    pytest.param("redis://h?protocol=3", {}, "protocol", "RESP2", id="protocol-3-url"),
    pytest.param(
        "redis://h",
        {"parser_class": "redis._parsers.resp3._RESP3Parser"},
        "parser_class",
        "RESP2",
        id="resp3-parser",
    ),
    pytest.param(
        "redis://h",
        {"PARSER_CLASS": "json.JSONDecoder"},
        "PARSER_CLASS",
        "_RESP2Parser",
        id="other-parser",
    ),
    pytest.param("redis://h", {"retry": 3}, "retry", "redis.retry.Retry", id="retry-not-a-retry"),
    pytest.param(
        "redis://h",
        {"retry": Retry(NoBackoff(), -1)},
        "retry",
        ">= 0",
        id="retry-forever",
    ),
    pytest.param(
        "redis://h",
        {"retry": Retry(NoBackoff(), 2, supported_errors=(RedisConnectionError, ResponseError))},
        "ResponseError",
        "twice",
        id="retry-response-error",
    ),
    pytest.param(
        "redis://h",
        {"retry_on_error": [RedisTimeoutError, ResponseError]},
        "ResponseError",
        "twice",
        id="retry-on-error",
    ),
    pytest.param(
        "redis://h", {"retry_on_error": [Exception]}, "retry_on_error", "twice", id="any-error"
    ),
    pytest.param(
        "redis://h?retry_on_error=TimeoutError",
        {},
        "retry_on_error",
        "URL",
        id="retry-on-error-url",
    ),
    pytest.param(
        "redis://h",
        {"CONNECTION_POOL_CLASS": _Subpool},
        "CONNECTION_POOL_CLASS",
        "BlockingConnectionPool",
        id="pool-subclass",
    ),
    pytest.param(
        "redis://h",
        {"pool_class": "redis.sentinel.SentinelConnectionPool"},
        "pool_class",
        "BlockingConnectionPool",
        id="pool-other",
    ),
    pytest.param(
        "redis://h",
        {"CONNECTION_POOL_CLASS": ConnectionPool, "pool_class": BlockingConnectionPool},
        "pool_class",
        "keep one",
        id="pool-twice",
    ),
    pytest.param(
        "redis://h",
        {"CONNECTION_POOL_CLASS": BlockingConnectionPool, "queue_class": queue.Queue},
        "queue_class",
        "LifoQueue",
        id="fifo-pool",
    ),
    pytest.param(
        "redis://h",
        {"health_check_interval": -1},
        "health_check_interval",
        "seconds",
        id="negative-health-check",
    ),
    pytest.param(
        "redis://h",
        {"health_check_interval": "30"},
        "health_check_interval",
        "seconds",
        id="health-check-string",
    ),
    pytest.param(
        "redis://h", {"max_connections": 0}, "max_connections", "positive", id="no-connections"
    ),
    pytest.param(
        "redis://h",
        {"socket_type": socket.AF_INET6},
        "socket_type",
        "[::1]",
        id="socket-type",
    ),
    pytest.param(
        "redis://h",
        {"command_packer": object()},
        "command_packer",
        "remove it",
        id="command-packer",
    ),
    pytest.param(
        "redis://h",
        {"maint_notifications_config": object()},
        "maint_notifications_config",
        advice_if_known("maint_notifications_config", "RESP3"),
        id="maint-notifications",
    ),
    pytest.param(
        "redis://h",
        {"CONNECTION_POOL_KWARGS": {"orig_socket_timeout": 3}},
        "orig_socket_timeout",
        advice_if_known("orig_socket_timeout", "remove it"),
        id="redis-py-internal",
    ),
    pytest.param(
        "redis://h",
        {"REDIS_CLIENT_KWARGS": {"decode_responses": True}},
        "decode_responses",
        "OPTIONS",
        id="client-kwargs-ignored-on-a-pool",
    ),
]


@pytest.mark.parametrize(("location", "options", "named", "advice"), REJECTED)
def test_option_the_connections_cannot_honour_is_rejected_in_caches(
    location: str, options: dict[str, Any], named: str, advice: str
) -> None:
    with pytest.raises(ImproperlyConfigured) as info:
        RedisCache(location, {"OPTIONS": options})
    assert named in str(info.value)
    assert advice in str(info.value)


@pytest.mark.parametrize(("location", "options", "named", "advice"), REJECTED)
def test_option_the_connections_cannot_honour_is_rejected_in_session_redis(
    settings: Any, location: str, options: dict[str, Any], named: str, advice: str
) -> None:
    settings.SESSION_REDIS = {"location": location, "options": options}
    with pytest.raises(ImproperlyConfigured) as info:
        SessionStore()
    assert named in str(info.value)
    assert "SESSION_REDIS" in str(info.value) or "LOCATION" in str(info.value)


def test_error_names_the_exact_setting_holding_the_option() -> None:
    with pytest.raises(ImproperlyConfigured) as info:
        config({"CONNECTION_POOL_KWARGS": {"ssl_validate_ocsp": True}}, "rediss://h")
    assert f"{SETTING}['CONNECTION_POOL_KWARGS']['ssl_validate_ocsp']" in str(info.value)


def test_ocsp_switched_off_explicitly_is_accepted() -> None:
    assert config({"ssl_validate_ocsp": False}, "rediss://h").kwargs()["ssl_validate_ocsp"] is False


# redis-py reads a URL's query differently from one version to the next (8 parses
# ssl_validate_ocsp and retry_on_error, 5 keeps them as text; its flags take any text as
# true); djredis reads the query itself, so a LOCATION means one thing with every version.
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("retry_on_timeout=false", {"retry_on_timeout": False}),
        ("socket_keepalive=1", {"socket_keepalive": True}),
        ("health_check_interval=2.5", {"health_check_interval": 2.5}),
        ("health_check_interval=3&socket_timeout=2", {"health_check_interval": 3}),
        ("socket_timeout=0.25&socket_connect_timeout=2", {"socket_connect_timeout": 2.0}),
        ("db=4&protocol=2&client_name=web", {"db": 4, "protocol": 2, "client_name": "web"}),
    ],
)
def test_url_query_options_mean_the_same_with_every_redis_py(
    query: str, expected: dict[str, Any]
) -> None:
    kwargs = config({}, f"redis://127.0.0.1:1/0?{query}").kwargs()
    assert {name: kwargs.get(name) for name in expected} == expected


@pytest.mark.parametrize("query", ["retry_on_timeout=maybe", "socket_keepalive=often", "db=x"])
def test_url_query_value_that_is_not_of_its_type_is_rejected(query: str) -> None:
    name = query.split("=", 1)[0]
    with pytest.raises(ImproperlyConfigured, match=rf"LOCATION.*{name}"):
        config({}, f"redis://127.0.0.1:1/0?{query}")


def test_url_query_of_a_multi_host_url_is_read_the_same_way() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"retry_on_error.*URL"):
        parse_connection_settings(
            "redis+cluster://127.0.0.1:7000,127.0.0.1:7001?retry_on_error=TimeoutError",
            {},
            setting=SETTING,
        )
    cluster = parse_connection_settings(
        "redis+cluster://127.0.0.1:7000?retry_on_timeout=off", {}, setting=SETTING
    )
    assert cluster.seeds[0].kwargs()["retry_on_timeout"] is False  # type: ignore[union-attr]


def test_hiredis_parser_without_hiredis_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "hiredis", None)  # what "import hiredis" meets without it
    with pytest.raises(ImproperlyConfigured, match=r"PARSER_CLASS.*djredis\[hiredis\]"):
        config({"PARSER_CLASS": "redis._parsers.hiredis._HiredisParser"})


def test_sentinel_kwargs_are_checked_too() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"SENTINEL_KWARGS.*protocol"):
        parse_connection_settings(
            "redis+sentinel://127.0.0.1:1/mymaster/0",
            {"SENTINEL_KWARGS": {"protocol": 3}},
            setting=SETTING,
        )


def test_client_kwargs_of_a_sentinel_service_are_rejected() -> None:
    with pytest.raises(ImproperlyConfigured, match="REDIS_CLIENT_KWARGS"):
        parse_connection_settings(
            "redis+sentinel://127.0.0.1:1/mymaster/0",
            {"REDIS_CLIENT_KWARGS": {"single_connection_client": True}},
            setting=SETTING,
        )


# -- honoured: the typed policy the connections read ------------------------------------------


def test_without_retry_settings_one_immediate_retry_and_no_timeout_retries() -> None:
    server = config({})
    assert (server.retries, server.backoff, server.retry_on_timeout) == (1, None, False)


def test_retry_sets_the_number_of_resends_and_the_backoff() -> None:
    backoff = ExponentialBackoff(cap=0.5, base=0.01)
    server = config({"retry": Retry(backoff, 3, supported_errors=(RedisConnectionError,))})
    assert (server.retries, server.backoff, server.retry_on_timeout) == (3, backoff, False)


def test_retry_without_backoff_sleeps_not() -> None:
    assert config({"retry": Retry(NoBackoff(), 2)}).backoff is None
    backoff = config({"retry": Retry(ConstantBackoff(0.1), 2)}).backoff
    assert isinstance(backoff, ConstantBackoff)
    assert backoff.compute(1) == 0.1


def test_retry_that_retries_timeouts_turns_on_retry_on_timeout() -> None:
    # redis-py's Retry retries timeouts unless supported_errors says otherwise.
    assert config({"retry": Retry(NoBackoff(), 2)}).retry_on_timeout is True


def test_retry_of_zero_sends_once() -> None:
    assert config({"retry": Retry(NoBackoff(), 0)}).retries == 0


@pytest.mark.parametrize(
    ("errors", "retry_on_timeout"),
    [
        ([RedisTimeoutError], True),
        ([socket.timeout], True),
        ([TimeoutError], True),
        ([RedisConnectionError], False),
        ([ConnectionResetError, BusyLoadingError], False),
        ([], False),
    ],
)
def test_retry_on_error_with_a_timeout_class_turns_on_retry_on_timeout(
    errors: list[type[Exception]], retry_on_timeout: bool
) -> None:
    server = config({"retry_on_error": errors})
    assert server.retry_on_timeout is retry_on_timeout
    assert server.retries == 1


@pytest.mark.parametrize("options", [{"RETRY_ON_TIMEOUT": True}, {"retry_on_timeout": True}])
def test_retry_on_timeout_in_either_spelling(options: dict[str, Any]) -> None:
    assert config(options).retry_on_timeout is True


@pytest.mark.parametrize(
    ("options", "location", "seconds"),
    [
        ({}, "redis://h", 0.0),
        ({"health_check_interval": 0}, "redis://h", 0.0),
        ({"health_check_interval": 2.5}, "redis://h", 2.5),
        ({"CONNECTION_POOL_KWARGS": {"health_check_interval": 30}}, "redis://h", 30.0),
        ({}, "redis://h?health_check_interval=15", 15.0),
    ],
)
def test_health_check_interval_in_seconds(
    options: dict[str, Any], location: str, seconds: float
) -> None:
    interval = config(options, location).health_check_interval
    assert isinstance(interval, float)
    assert interval == seconds


# Without hiredis these are rejected instead (see the test of the hiredis-missing error).
NEEDS_HIREDIS = pytest.mark.skipif(not HIREDIS_INSTALLED, reason="hiredis is not installed")


@pytest.mark.parametrize(
    ("spec", "reader", "parser"),
    [
        pytest.param(
            "redis._parsers.hiredis._HiredisParser", "hiredis", _HiredisParser, marks=NEEDS_HIREDIS
        ),
        pytest.param(
            "redis._parsers._HiredisParser", "hiredis", _HiredisParser, marks=NEEDS_HIREDIS
        ),
        pytest.param(
            "redis.connection._HiredisParser", "hiredis", _HiredisParser, marks=NEEDS_HIREDIS
        ),
        pytest.param(
            "redis.connection.HiredisParser", "hiredis", _HiredisParser, marks=NEEDS_HIREDIS
        ),
        pytest.param(_HiredisParser, "hiredis", _HiredisParser, marks=NEEDS_HIREDIS),
        ("redis._parsers.resp2._RESP2Parser", "python", _RESP2Parser),
        ("redis.connection._RESP2Parser", "python", _RESP2Parser),
        ("redis.connection.PythonParser", "python", _RESP2Parser),  # Django's documentation
        (_RESP2Parser, "python", _RESP2Parser),
    ],
)
@pytest.mark.parametrize("name", ["PARSER_CLASS", "parser_class"])
def test_parser_class_chooses_the_reader(name: str, spec: Any, reader: str, parser: type) -> None:
    server = config({name: spec})
    assert server.reader == reader
    # The redis-py clients handed to user code read replies the same way.
    assert _connections.get_pool(server).connection_kwargs["parser_class"] is parser


def test_without_parser_class_the_reader_is_the_default() -> None:
    assert config({}).reader is None


@pytest.mark.parametrize(
    ("options", "location"),
    [
        ({}, "redis://h"),
        ({"protocol": 2}, "redis://h"),
        ({"protocol": None}, "redis://h"),
        ({}, "redis://h?protocol=2"),
    ],
)
def test_protocol_is_resp2_for_the_redis_py_clients_too(
    options: dict[str, Any], location: str
) -> None:
    assert config(options, location).kwargs()["protocol"] == 2


@pytest.mark.parametrize(
    ("spec", "pool_class", "max_connections"),
    [
        (None, ConnectionPool, 2**31 - 1),
        ("redis.ConnectionPool", ConnectionPool, 2**31 - 1),
        ("redis.connection.BlockingConnectionPool", BlockingConnectionPool, 50),
        (BlockingConnectionPool, BlockingConnectionPool, 50),
    ],
)
def test_pool_class_is_one_the_lean_pool_imitates(
    spec: Any, pool_class: type, max_connections: int
) -> None:
    server = config({} if spec is None else {"CONNECTION_POOL_CLASS": spec})
    assert server.pool_class is pool_class
    # The same cap as redis-py's pool, so both stacks block (or fail) at the same point.
    assert server.kwargs()["max_connections"] == max_connections


def test_options_only_redis_py_acts_on_reach_its_clients() -> None:
    server = config({"decode_responses": True, "client_name": "web", "lib_name": "app"})
    pool = _connections.get_pool(server)
    assert pool.connection_kwargs["decode_responses"] is True
    assert pool.connection_kwargs["lib_name"] == "app"


def test_honoured_options_reach_the_redis_py_clients_and_the_cache_works(
    redis_server: RedisServer,
) -> None:
    retry = Retry(ExponentialBackoff(cap=0.05, base=0.01), 2)
    cache = RedisCache(
        redis_server.url(3),
        {
            "OPTIONS": {
                "retry": retry,
                "retry_on_error": [RedisTimeoutError],
                "PARSER_CLASS": "redis.connection.PythonParser",
                "health_check_interval": 5,
                "CONNECTION_POOL_CLASS": "redis.BlockingConnectionPool",
                "MAX_CONNECTIONS": 4,
            }
        },
    )
    cache.set("k", {"v": 1})
    assert cache.get("k") == {"v": 1}
    client = cache.client.get_client()
    assert client.ping() is True
    connection = client.connection_pool.get_connection()
    try:
        assert connection.retry._retries == 2
        assert isinstance(connection._parser, _RESP2Parser)
        assert connection.health_check_interval == 5
        assert connection.protocol == 2
    finally:
        client.connection_pool.release(connection)
    assert isinstance(client.connection_pool, BlockingConnectionPool)
    assert client.connection_pool.max_connections == 4
