"""``djredis.exceptions``: one place to import every exception djredis raises, each one
caught by the redis-py (or built-in) class code written for django-redis already catches."""

from __future__ import annotations

import pickle

import pytest
import redis.exceptions

import djredis.exceptions as exceptions

pytestmark = pytest.mark.unit


def test_every_name_is_an_exception_class() -> None:
    for name in exceptions.__all__:
        assert issubclass(getattr(exceptions, name), BaseException), name


@pytest.mark.parametrize(
    ("ours", "caught_by"),
    [
        (exceptions.CommandNotSent, redis.exceptions.ConnectionError),
        (exceptions.MaxClientsReached, redis.exceptions.ConnectionError),
        (exceptions.MaxClientsReached, exceptions.CommandNotSent),
        (exceptions.ProtocolError, redis.exceptions.ConnectionError),
        (exceptions.TopologyError, redis.exceptions.ConnectionError),
        (exceptions.CrossSlotError, ValueError),
        (exceptions.UnserializableValue, TypeError),
        (exceptions.UnserializableValue, pickle.PicklingError),
    ],
)
def test_our_exceptions_are_caught_by_what_code_already_catches(
    ours: type[Exception], caught_by: type[Exception]
) -> None:
    with pytest.raises(caught_by):
        raise ours("x")


def test_the_redis_py_names_are_redis_pys_classes() -> None:
    for name in ("ConnectionError", "TimeoutError", "ResponseError", "RedisError", "LockError"):
        assert getattr(exceptions, name) is getattr(redis.exceptions, name)
