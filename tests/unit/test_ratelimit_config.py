"""Rules refuse bad configuration when built, and the system checks report it by stable ID."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory, override_settings
from hypothesis import given
from hypothesis import strategies as st

from djredis.ratelimit import Rule, ratelimit
from djredis.ratelimit.checks import check_ratelimit_settings
from djredis.ratelimit.keys import key_value, resolve_key
from djredis.ratelimit.middleware import parse_rules

DJREDIS_CACHE = {"BACKEND": "djredis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
factory = RequestFactory()


def ids(**overrides: Any) -> list[str]:
    settings = {"CACHES": {"default": DJREDIS_CACHE}, **overrides}
    with override_settings(**settings):
        return [message.id for message in check_ratelimit_settings()]  # type: ignore[misc]


def test_good_settings_pass_the_checks() -> None:
    rules = [{"path": "^/api/", "rate": "100/m", "key": "ip", "algorithm": "gcra"}]
    assert ids(RATELIMIT_RULES=rules, RATELIMIT_TRUSTED_PROXIES=["10.0.0.0/8"]) == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"RATELIMIT_RULES": [{"rate": "100/fortnight"}]}, "djredis.ratelimit.E001"),
        ({"RATELIMIT_RULES": [{"rate": "100/m", "key": "cookie:x"}]}, "djredis.ratelimit.E002"),
        ({"RATELIMIT_RULES": [{"rate": "100/m", "key": "ipaddr"}]}, "djredis.ratelimit.E002"),
        ({"RATELIMIT_USE_CACHE": "nope"}, "djredis.ratelimit.E003"),
        (
            {"RATELIMIT_RULES": [{"rate": "1/s", "cache": "locmem"}]},
            "djredis.ratelimit.E003",
        ),
        ({"RATELIMIT_RULES": [{"rate": "1/s", "algorithm": "leaky"}]}, "djredis.ratelimit.E004"),
        ({"RATELIMIT_TRUSTED_PROXIES": ["ten.0.0.0/8"]}, "djredis.ratelimit.E005"),
        ({"RATELIMIT_IPV6_MASK": 129}, "djredis.ratelimit.E005"),
    ],
)
def test_each_bad_setting_has_its_stable_check_id(overrides: dict[str, Any], expected: str) -> None:
    caches = {
        "default": DJREDIS_CACHE,
        "locmem": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    assert expected in ids(CACHES=caches, **overrides)


def test_a_non_djredis_default_cache_is_e003() -> None:
    locmem = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert ids(CACHES=locmem) == ["djredis.ratelimit.E003"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": "ip", "rate": "5/fortnight"}, "rate"),
        ({"key": "cookie:x", "rate": "5/m"}, "Unknown rate limit key"),
        ({"key": None, "rate": "5/m"}, "key"),
        ({"key": "ip", "rate": "5/m", "algorithm": "leaky"}, "algorithm"),
        ({"key": "ip", "rate": "5/m", "burst": 0}, "burst"),
        ({"key": "ip", "rate": "5/m", "fail_open": "yes"}, "fail_open"),
        ({"key": "no.such.module.fn", "rate": "5/m"}, "cannot be imported"),
    ],
)
def test_bad_rules_fail_when_built_naming_the_problem(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        Rule(**kwargs)
    with pytest.raises(ImproperlyConfigured, match=message):
        ratelimit(**kwargs)


def test_a_key_of_the_wrong_type_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="int"):
        resolve_key(42)


def test_middleware_rules_name_the_faulty_entry() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"RATELIMIT_RULES\[1\]"):
        parse_rules([{"rate": "1/s"}, {"rate": "1/s", "paht": "^/"}])
    with pytest.raises(ImproperlyConfigured, match=r"RATELIMIT_RULES\[0\]\['path'\]"):
        parse_rules([{"rate": "1/s", "path": "("}])


@given(
    name=st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}", fullmatch=True),
    value=st.text(alphabet=st.characters(codec="latin-1", exclude_categories=["Cc"]), max_size=40),
)
def test_header_keys_read_the_header_django_stores(name: str, value: str) -> None:
    meta = {"HTTP_" + name.replace("-", "_").upper(): value}
    request = factory.get("/", **meta)
    assert key_value(resolve_key(f"header:{name}"), "g", request) == value


@given(param=st.from_regex(r"[a-z_]{1,10}", fullmatch=True), value=st.text(max_size=30))
def test_get_and_post_keys_read_the_parameter(param: str, value: str) -> None:
    assert key_value(resolve_key(f"get:{param}"), "g", factory.get("/", {param: value})) == value
    assert key_value(resolve_key(f"post:{param}"), "g", factory.post("/", {param: value})) == value


def test_callable_and_dotted_path_keys_get_group_and_request() -> None:
    request = factory.get("/")
    assert key_value(resolve_key(lambda group, r: f"{group}!"), "g", request) == "g!"
    dotted = resolve_key("django.utils.encoding.force_str")
    assert callable(dotted)


def test_the_public_names_are_pinned() -> None:
    import djredis.ratelimit

    assert sorted(djredis.ratelimit.__all__) == [
        "ALL",
        "HttpResponseTooManyRequests",
        "Rate",
        "RateLimitMiddleware",
        "RatelimitMiddleware",
        "Ratelimited",
        "Result",
        "Rule",
        "UNSAFE",
        "aget_usage",
        "ais_ratelimited",
        "get_usage",
        "is_ratelimited",
        "parse_rate",
        "ratelimit",
    ]
    assert all(hasattr(djredis.ratelimit, name) for name in djredis.ratelimit.__all__)


def test_user_keys_without_the_authentication_middleware_say_what_to_add() -> None:
    import asyncio

    from djredis.ratelimit.keys import akey_value

    request = factory.get("/")
    for key in ("user", "user_or_ip"):
        with pytest.raises(ImproperlyConfigured, match="AuthenticationMiddleware"):
            key_value(key, "g", request)
        with pytest.raises(ImproperlyConfigured, match="AuthenticationMiddleware"):
            asyncio.run(akey_value(key, "g", request))
