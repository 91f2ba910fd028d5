"""The system checks and settings that decide what a rule does without a decision from
Redis, and the options django-ratelimit users bring (a DummyCache, rate None or 0)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory, override_settings

from djredis.ratelimit import Rule
from djredis.ratelimit.checks import check_ratelimit_settings

DJREDIS_CACHE = {"BACKEND": "djredis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
DUMMY_CACHE = {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}


def ids(**overrides: Any) -> list[str]:
    settings = {"CACHES": {"default": DJREDIS_CACHE}, **overrides}
    with override_settings(**settings):
        return [message.id for message in check_ratelimit_settings()]  # type: ignore[misc]


def test_failing_closed_is_the_default_and_passes_the_checks() -> None:
    assert ids() == []
    assert ids(RATELIMIT_FAIL_OPEN=False) == []
    assert ids(RATELIMIT_RULES=[{"rate": "5/m", "fail_open": True}]) == []


def test_failing_open_everywhere_is_a_warning() -> None:
    assert ids(RATELIMIT_FAIL_OPEN=True) == ["djredis.ratelimit.W001"]


@pytest.mark.parametrize("value", ["False", "no", None, 2])
def test_a_fail_open_that_is_not_true_or_false_is_e006(value: Any) -> None:
    assert ids(RATELIMIT_FAIL_OPEN=value) == ["djredis.ratelimit.E006"]
    assert ids(RATELIMIT_RULES=[{"rate": "5/m", "fail_open": value or "x"}]) == [
        "djredis.ratelimit.E006"
    ]


def test_a_string_fail_open_setting_is_refused_when_deciding_not_read_as_true() -> None:
    request = RequestFactory().get("/", REMOTE_ADDR="203.0.113.9")
    with (
        override_settings(RATELIMIT_FAIL_OPEN="False"),
        pytest.raises(ImproperlyConfigured, match="RATELIMIT_FAIL_OPEN"),
    ):
        Rule(key="ip", rate="5/m").check(request)


def test_a_dummy_cache_is_a_warning_not_an_error() -> None:
    assert ids(CACHES={"default": DUMMY_CACHE}) == ["djredis.ratelimit.W002"]


def test_rates_none_and_zero_pass_and_unknown_rule_options_do_not() -> None:
    assert ids(RATELIMIT_RULES=[{"rate": None}, {"rate": "0/m"}, {"rate": (0, 60)}]) == []
    assert ids(RATELIMIT_RULES=[{"rate": "5/m", "fail_closed": True}]) == ["djredis.ratelimit.E004"]
