"""DRF's throttle classes, moved by import path only, behave as DRF documents.

Each test links the line of DRF's throttling guide it holds djredis to
(https://github.com/encode/django-rest-framework/blob/main/docs/api-guide/throttling.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("rest_framework")

from django.contrib.auth.models import AnonymousUser
from rest_framework import viewsets
from rest_framework.decorators import action, api_view, throttle_classes
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.throttling import BaseThrottle as DRFBaseThrottle
from rest_framework.views import APIView

from djredis.ratelimit import drf
from djredis.ratelimit.drf import (
    AnonRateThrottle,
    BaseThrottle,
    RedisRateThrottle,
    ScopedRateThrottle,
    SimpleRateThrottle,
    UserRateThrottle,
)
from tests._topologies import Topology

GUIDE = "https://github.com/encode/django-rest-framework/blob/main/docs/api-guide/throttling.md"
factory = APIRequestFactory()


class User:
    """An authenticated user as DRF's authentication would set it."""

    is_authenticated = True
    is_active = True

    def __init__(self, pk: int) -> None:
        self.pk = pk


def api_view_with(classes: Any, scope: str | None = None) -> Callable[..., Any]:
    attrs: dict[str, Any] = {
        "throttle_classes": classes,
        "permission_classes": (),
        "authentication_classes": (),
        "get": lambda self, request: Response({"ok": True}),
    }
    if scope is not None:
        attrs["throttle_scope"] = scope
    return type("View", (APIView,), attrs).as_view()


def get(view: Callable[..., Any], ip: str = "203.0.113.5", user: Any = None, **meta: Any) -> Any:
    request = factory.get("/", REMOTE_ADDR=ip, **meta)
    if user is not None:
        force_authenticate(request, user=user)
    return view(request)


def codes(view: Callable[..., Any], n: int, **kwargs: Any) -> list[int]:
    return [get(view, **kwargs).status_code for _ in range(n)]


def test_drfs_classes_are_at_one_import_path_and_honour_its_settings(
    on_redis: Topology, settings: Any
) -> None:
    """ "The default throttling policy may be set globally, using the
    `DEFAULT_THROTTLE_CLASSES` and `DEFAULT_THROTTLE_RATES` settings" ("Setting the
    throttling policy"): only the paths change."""
    for cls in (AnonRateThrottle, UserRateThrottle, ScopedRateThrottle, SimpleRateThrottle):
        assert issubclass(cls, DRFBaseThrottle)
    assert BaseThrottle is DRFBaseThrottle
    settings.REST_FRAMEWORK = {
        "DEFAULT_THROTTLE_CLASSES": [
            "djredis.ratelimit.drf.AnonRateThrottle",
            "djredis.ratelimit.drf.UserRateThrottle",
        ],
        "DEFAULT_THROTTLE_RATES": {"anon": "2/day", "user": "3/day"},
    }
    view = api_view_with(api_settings.DEFAULT_THROTTLE_CLASSES)
    assert codes(view, 3) == [200, 200, 429]
    assert codes(view, 4, user=User(7)) == [200, 200, 200, 429]
    assert codes(view, 1, user=User(8)) == [200]


@pytest.mark.parametrize("base", [ScopedRateThrottle, RedisRateThrottle])
def test_a_subclasss_throttle_rates_are_honoured(on_redis: Topology, base: type) -> None:
    """DRF's ``get_rate`` reads ``self.THROTTLE_RATES[self.scope]``; its own tests subclass
    ``ScopedRateThrottle`` with ``THROTTLE_RATES = {'x': '3/min', 'y': '1/min'}``
    (tests/test_throttling.py, ``ScopedRateThrottleTests``)."""
    xy = type("XY", (base,), {"THROTTLE_RATES": {"x": "3/min", "y": "1/min"}})
    assert codes(api_view_with((xy,), "x"), 4) == [200, 200, 200, 429]
    assert codes(api_view_with((xy,), "y"), 2) == [200, 429]
    assert codes(api_view_with((xy,)), 5) == [200] * 5  # no scope: not throttled


@pytest.mark.parametrize("cls", [AnonRateThrottle, ScopedRateThrottle, RedisRateThrottle])
def test_num_proxies_tells_clients_behind_one_proxy_apart(
    on_redis: Topology, settings: Any, cls: type
) -> None:
    """ "If set to non-zero then the client IP will be identified as being the last IP
    address in the `X-Forwarded-For` header, once any application proxy IP addresses have
    first been excluded" ("How clients are identified")."""
    settings.REST_FRAMEWORK = {"NUM_PROXIES": 1, "DEFAULT_THROTTLE_RATES": {"anon": "1/min"}}
    throttle = type("One", (cls,), {"THROTTLE_RATES": {"anon": "1/min"}, "scope": "anon"})
    view = api_view_with((throttle,), "anon")
    proxy = "10.0.0.1"
    first = get(view, ip=proxy, HTTP_X_FORWARDED_FOR="198.51.100.1").status_code
    second = get(view, ip=proxy, HTTP_X_FORWARDED_FOR="198.51.100.2").status_code
    assert [first, second] == [200, 200]
    spoofed = get(view, ip=proxy, HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.1")
    assert spoofed.status_code == 429  # the client's own entries do not change who it is


def test_a_rate_of_none_does_not_throttle(on_redis: Topology, settings: Any) -> None:
    """DRF's defaults are ``{'user': None, 'anon': None}`` and its ``allow_request`` starts
    ``if self.rate is None: return True`` (rest_framework/settings.py, throttling.py)."""
    settings.REST_FRAMEWORK = {"DEFAULT_THROTTLE_RATES": {"user": None, "anon": None}}
    view = api_view_with((AnonRateThrottle, UserRateThrottle, ScopedRateThrottle), "anon")
    assert codes(view, 5) == [200] * 5
    assert codes(view, 5, user=User(3)) == [200] * 5
    assert on_redis.client().dbsize() == 0


def test_wait_and_retry_after_are_drfs(on_redis: Topology) -> None:
    """ "If the `.wait()` method is implemented and the request is throttled, then a
    `Retry-After` header will be included in the response" ("Custom throttles");
    DRF's own tests expect '60' after 3/min (``test_minutes_fields``). Abbreviations
    such as ``hr`` are allowed: "only the first character is relevant"."""
    per_minute = type("M", (UserRateThrottle,), {"rate": "3/min", "scope": "minutes"})
    view = api_view_with((per_minute,))
    responses = [get(view) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert "Retry-After" not in responses[2]
    assert responses[3]["Retry-After"] == "60"
    throttle = per_minute()
    request = factory.get("/", REMOTE_ADDR="203.0.113.5")
    request.user = AnonymousUser()  # type: ignore[attr-defined]
    assert not throttle.allow_request(request, None)
    assert throttle.wait() == pytest.approx(60, abs=1)
    hourly = type("H", (UserRateThrottle,), {"rate": "1/hr", "scope": "hourly"})
    assert [r.status_code for r in (get(api_view_with((hourly,))) for _ in range(2))] == [
        200,
        429,
    ]
    zero = type("Z", (UserRateThrottle,), {"rate": "0/min", "scope": "zero"})
    refused = get(api_view_with((zero,)))
    assert (refused.status_code, refused["Retry-After"]) == (429, "60")


def test_throttle_classes_on_views_viewsets_and_actions(on_redis: Topology) -> None:
    """``throttle_classes`` on an ``APIView``, ``@throttle_classes`` on an ``@api_view``, and
    ``@action(throttle_classes=...)`` which "will override any viewset level class
    settings" ("Setting the throttling policy")."""
    once = type("Once", (UserRateThrottle,), {"rate": "1/min", "scope": "once"})
    twice = type("Twice", (UserRateThrottle,), {"rate": "2/min", "scope": "twice"})

    @api_view(["GET"])
    @throttle_classes([once])
    def function_view(request: Any) -> Response:
        return Response({"ok": True})

    assert codes(function_view, 2) == [200, 429]

    class Things(viewsets.ViewSet):
        throttle_classes = (twice,)
        permission_classes = ()
        authentication_classes = ()

        def list(self, request: Any) -> Response:
            return Response([])

        @action(detail=False, throttle_classes=[once])
        def special(self, request: Any) -> Response:
            return Response({})

    listing = Things.as_view({"get": "list"})
    # What a router does: the action's own options become the view's.
    special = Things.as_view({"get": "special"}, **Things.special.kwargs)
    assert codes(listing, 3, ip="198.51.100.7") == [200, 200, 429]
    assert codes(special, 2, ip="198.51.100.8") == [200, 429]


def test_get_cache_key_decides_what_is_counted(on_redis: Topology) -> None:
    """ "To create a custom throttle, override `BaseThrottle`" — or, as DRF's classes do,
    ``SimpleRateThrottle`` with ``get_cache_key`` (None: "the request should not be
    throttled", throttling.py)."""

    class PerHeader(SimpleRateThrottle):
        rate = "1/min"

        def get_cache_key(self, request: Any, view: Any) -> str | None:
            tenant = request.META.get("HTTP_X_TENANT")
            return None if tenant is None else f"tenant:{tenant}"

    view = api_view_with((PerHeader,))
    assert codes(view, 2, HTTP_X_TENANT="a") == [200, 429]
    assert codes(view, 1, HTTP_X_TENANT="b") == [200]
    assert codes(view, 3) == [200] * 3
    assert drf.SimpleRateThrottle is SimpleRateThrottle
