"""CeleryBackend's OPTIONS, system checks, priority mapping and message keys (no worker)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery import Celery
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from kombu import Queue

from djredis.tasks import CeleryBackend
from djredis.tasks.broker import Broker, celery_priority


def make_app(**conf: object) -> Celery:
    app = Celery("djredis-tasks-config", set_as_current=False)
    app.conf.update(conf)
    return app


NO_BROKER = make_app(broker_url=None)
AMQP_BROKER = make_app(broker_url="amqp://guest@localhost//")
REDIS_BROKER = make_app(broker_url="redis://127.0.0.1:1/3")
DECLARED_QUEUES = make_app(
    broker_url="redis://127.0.0.1:1/3", task_queues=[Queue("celery"), Queue("mail")]
)
PREFIXED = make_app(
    broker_url="redis://127.0.0.1:1/3",
    broker_transport_options={"global_keyprefix": "app:", "priority_steps": list(range(10))},
)
HERE = __name__


def backend(app: str, queues: list[str] | None = None, **options: object) -> CeleryBackend:
    params: dict[str, object] = {"OPTIONS": {"APP": f"{HERE}.{app}", **options}}
    if queues is not None:
        params["QUEUES"] = queues
    return CeleryBackend("default", params)


@pytest.fixture(autouse=True)
def _djredis_installed() -> Iterator[None]:
    with override_settings(INSTALLED_APPS=["django.contrib.contenttypes", "djredis"]):
        yield


def check_ids(found: CeleryBackend) -> list[str]:
    return [message.id or "" for message in found.check()]


def test_misspelled_option_is_named() -> None:
    with pytest.raises(ImproperlyConfigured, match="QUEUE_MAPS"):
        backend("REDIS_BROKER", QUEUE_MAPS={})


def test_a_redis_broker_passes_the_checks() -> None:
    assert check_ids(backend("REDIS_BROKER")) == []


@pytest.mark.parametrize(
    ("app", "words"), [("NO_BROKER", "no broker_url"), ("AMQP_BROKER", "needs a Redis broker")]
)
def test_a_missing_or_non_redis_broker_is_an_error(app: str, words: str) -> None:
    messages = backend(app).check()
    assert [m.id for m in messages] == ["djredis.tasks.E001"]
    assert words in messages[0].msg


def test_an_app_path_that_is_not_an_app_is_an_error() -> None:
    messages = backend("HERE").check()
    assert [m.id for m in messages] == ["djredis.tasks.E001"]


def test_a_queue_celery_does_not_declare_is_an_error() -> None:
    found = backend("DECLARED_QUEUES", ["default", "emails", "mail"])
    messages = found.check()
    assert [m.id for m in messages] == ["djredis.tasks.E003"]
    assert "'emails'" in messages[0].msg
    mapped = backend("DECLARED_QUEUES", ["default", "emails"], QUEUE_MAP={"emails": "mail"})
    assert check_ids(mapped) == []


def test_a_queue_map_entry_outside_queues_is_an_error() -> None:
    found = backend("REDIS_BROKER", ["default"], QUEUE_MAP={"emails": "mail"})
    assert check_ids(found) == ["djredis.tasks.E002"]


def test_missing_djredis_app_is_a_warning() -> None:
    with override_settings(INSTALLED_APPS=["django.contrib.contenttypes"]):
        assert check_ids(backend("REDIS_BROKER")) == ["djredis.tasks.W001"]


def test_default_queue_is_celerys_default_queue() -> None:
    found = backend("REDIS_BROKER", ["default", "emails"], QUEUE_MAP={"emails": "mail"})
    assert found.celery_queue("default") == "celery"
    assert found.celery_queue("emails") == "mail"


def test_result_expires_defaults_to_celerys() -> None:
    assert backend("REDIS_BROKER").result_expires == 86400
    assert backend("REDIS_BROKER", RESULT_EXPIRES=60).result_expires == 60
    assert backend("REDIS_BROKER", RESULT_EXPIRES=None).result_expires is None


def test_priority_maps_higher_django_priority_to_earlier_redis_priority() -> None:
    mapped = [celery_priority(p) for p in range(-100, 101)]
    assert mapped[0] == 9  # -100: served last
    assert mapped[100] == 4  # 0: the middle
    assert mapped[-1] == 0  # 100: served first
    assert mapped == sorted(mapped, reverse=True)


def test_queue_keys_follow_kombus_naming() -> None:
    default = Broker(REDIS_BROKER)
    assert default.queue_key("celery", 0) == "celery"
    assert default.queue_key("celery", 4) == "celery\x06\x163"  # steps 0, 3, 6, 9
    assert default.record_key("abc") == "djredis:task:abc"
    prefixed = Broker(PREFIXED)
    assert prefixed.queue_key("celery", 4) == "app:celery\x06\x164"
    assert prefixed.record_key("abc") == "app:djredis:task:abc"
