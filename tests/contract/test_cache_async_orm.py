"""``await cache.aset("k", queryset)`` works as on Django's builtin backend: encoding that
needs the database runs in a thread, and only that encoding."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from django.contrib.auth.models import User

from djredis.cache import RedisCache


class Recorder:
    """A value that records the thread it is pickled in."""

    threads: list[int]

    def __init__(self) -> None:
        self.threads = []

    def __reduce__(self) -> Any:
        self.threads.append(threading.get_ident())
        return (str, ("recorded",))


@pytest.fixture
def users(db: None) -> None:
    User.objects.create(username="ann", email="ann@example.com")
    User.objects.create(username="bob", email="bob@example.com")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("users")
def test_aset_of_a_lazy_queryset_evaluates_it_in_a_thread(cache: RedisCache) -> None:
    deferred = User.objects.defer("email").order_by("username")

    async def store_and_read() -> Any:
        assert await cache.aset("qs", deferred) is True
        assert await cache.aadd("added", User.objects.order_by("username")) is True
        await cache.aset_many({"many": User.objects.filter(username="bob")})
        got = await cache.aget_or_set("gos", User.objects.filter(username="ann"))
        return got, await cache.aget_many(["qs", "added", "many"])

    got, read = asyncio.run(store_and_read())
    assert [u.username for u in got] == ["ann"]
    assert [u.username for u in read["qs"]] == ["ann", "bob"]
    assert [u.username for u in read["added"]] == ["ann", "bob"]
    assert [u.username for u in read["many"]] == ["bob"]
    assert read["qs"][0].get_deferred_fields() == {"email"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("users")
def test_model_instance_with_deferred_fields_round_trips(cache: RedisCache) -> None:
    async def go() -> Any:
        instance = await User.objects.defer("email").aget(username="ann")
        await cache.aset("u", instance)
        return await cache.aget("u")

    instance = asyncio.run(go())
    assert instance.username == "ann"
    assert instance.get_deferred_fields() == {"email"}


def test_values_that_need_no_database_are_encoded_once_on_the_loop(cache: RedisCache) -> None:
    value = Recorder()

    async def go() -> tuple[int, Any]:
        await cache.aset("k", value)
        return threading.get_ident(), await cache.aget("k")

    loop_thread, read = asyncio.run(go())
    assert read == "recorded"
    assert value.threads == [loop_thread]


def test_unpicklable_values_still_fail_in_the_loop(cache: RedisCache) -> None:
    async def go() -> None:
        await cache.aset("k", threading.Lock())

    with pytest.raises(TypeError, match="lock"):
        asyncio.run(go())
