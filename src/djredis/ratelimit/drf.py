"""Django REST framework's throttle classes, counted atomically on Redis.

``AnonRateThrottle``, ``UserRateThrottle``, ``ScopedRateThrottle`` and their base
``SimpleRateThrottle`` keep DRF's names, attributes and settings (``rate``, ``scope``,
``THROTTLE_RATES``, ``DEFAULT_THROTTLE_RATES``, ``NUM_PROXIES``, ``get_cache_key``,
``parse_rate``, ``wait``), so moving is a change of path in ``DEFAULT_THROTTLE_CLASSES``
or ``throttle_classes``. What differs is the count: DRF reads the request history from the
cache, edits it and writes it back, which its documentation warns can race; here the same
sliding window (refused requests are not counted) is one script on Redis's clock.

``RedisRateThrottle`` (a scope per view, keyed by ``user_or_ip``) is the earlier djredis
throttle, kept.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

try:
    import rest_framework  # type: ignore[import-untyped]  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by scripts/check_wheel.py
    raise ImportError(
        "djredis.ratelimit.drf needs Django REST framework: pip install 'djredis[drf]'"
    ) from exc

from rest_framework.settings import api_settings  # type: ignore[import-untyped]
from rest_framework.throttling import BaseThrottle  # type: ignore[import-untyped]

from djredis.ratelimit.client_ip import client_ip
from djredis.ratelimit.conf import conf
from djredis.ratelimit.core import Result, Rule
from djredis.ratelimit.keys import key_value, resolve_key
from djredis.ratelimit.rates import parse_rate

__all__ = [
    "AnonRateThrottle",
    "BaseThrottle",
    "RedisRateThrottle",
    "ScopedRateThrottle",
    "SimpleRateThrottle",
    "UserRateThrottle",
]

_DRF_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_rules: dict[tuple[Any, ...], Rule] = {}


class _DefaultRates:
    """``THROTTLE_RATES`` unless a subclass sets its own: DRF's ``DEFAULT_THROTTLE_RATES``,
    read when used (DRF reads it once at import, which ``override_settings`` cannot reach)."""

    def __get__(self, instance: Any, owner: Any) -> Any:
        return api_settings.DEFAULT_THROTTLE_RATES


def _rule(algorithm: str, burst: int | None, fail_open: bool | None, cache: Any) -> Rule:
    """One ``Rule`` per configuration: DRF builds its throttles anew for every request."""
    try:
        ident: tuple[Any, ...] = (algorithm, burst, fail_open, cache)
        hash(ident)
    except TypeError:
        ident = (algorithm, burst, fail_open, id(cache))
    rule = _rules.get(ident)
    if rule is None:
        rule = _rules[ident] = Rule(
            key=None, rate=None, algorithm=algorithm, burst=burst, fail_open=fail_open, cache=cache
        )
    return rule


class SimpleRateThrottle(BaseThrottle):  # type: ignore[misc]
    """DRF's ``SimpleRateThrottle``: subclasses say what to count in ``get_cache_key``.

    ``cache``: None for ``RATELIMIT_USE_CACHE``, else a djredis cache alias or cache object
    (DRF's ``cache = caches["alternate"]``). ``algorithm``, ``burst`` and ``fail_open`` are
    djredis's rule options. ``timer`` is not used: Redis's clock decides.
    """

    cache: Any = None
    cache_format = "throttle_%(scope)s_%(ident)s"
    scope: str | None = None
    THROTTLE_RATES: Any = _DefaultRates()
    algorithm = "sliding"
    burst: int | None = None
    fail_open: bool | None = None

    def __init__(self) -> None:
        if not getattr(self, "rate", None):
            self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        self.result: Result | None = None

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        """What to count the request under; None: do not throttle it. Must be overridden."""
        raise NotImplementedError(".get_cache_key() must be overridden")

    def get_rate(self) -> Any:
        """The rate of ``scope`` in ``THROTTLE_RATES`` (``None`` means no throttling)."""
        if not getattr(self, "scope", None):
            raise ImproperlyConfigured(
                f"You must set either `.scope` or `.rate` for '{type(self).__name__}' throttle"
            )
        try:
            return self.THROTTLE_RATES[self.scope]
        except KeyError:
            raise ImproperlyConfigured(
                f"No default throttle rate set for '{self.scope}' scope"
            ) from None

    def parse_rate(self, rate: Any) -> tuple[int | None, float | None]:
        """Return ``(number of requests, seconds)``; ``(None, None)`` for no rate.

        DRF's grammar (only the period's first letter counts: ``"100/min"``, ``"5/hr"``),
        and djredis's where DRF's has no answer (``"10/5s"``, a ``(count, seconds)`` tuple).
        """
        if rate is None:
            return (None, None)
        if isinstance(rate, str) and "/" in rate:
            num, period = rate.split("/", 1)
            unit = _DRF_UNITS.get(period[:1])
            if unit is not None and num.strip().isdigit():
                return (int(num), unit)
        parsed = parse_rate(rate)
        return (parsed.count, parsed.seconds)

    def get_ident(self, request: Any) -> str:
        """The client: DRF's ``NUM_PROXIES`` when set, else djredis's client address.

        With ``NUM_PROXIES`` unset, DRF counts by the whole ``X-Forwarded-For``, which any
        client writes; djredis counts by ``REMOTE_ADDR`` unless ``RATELIMIT_TRUSTED_PROXIES``
        says which hops are yours (docs/ratelimit.md, "Client IP").
        """
        if api_settings.NUM_PROXIES is not None:
            ident: str = super().get_ident(request)
            return ident
        return client_ip(request)

    def allow_request(self, request: Any, view: Any) -> bool:
        """Count the request; False when it is over the rate."""
        self.result = None
        if self.rate is None or not conf().enable:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        rate = parse_rate((self.num_requests, self.duration))
        rule = _rule(self.algorithm, self.burst, self.fail_open, self.cache)
        self.result = rule.decide(str(self.key), "drf", rate)
        return self.result is None or self.result.allowed

    def wait(self) -> float | None:
        """Seconds until a request would be allowed again (DRF sends it as ``Retry-After``)."""
        if self.result is None or self.result.allowed:
            return None
        return self.result.retry_after


class AnonRateThrottle(SimpleRateThrottle):
    """Throttle anonymous requests by client address (scope ``"anon"``)."""

    scope = "anon"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if request.user and request.user.is_authenticated:
            return None  # only anonymous requests are throttled
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class UserRateThrottle(SimpleRateThrottle):
    """Throttle by user id, or by client address when anonymous (scope ``"user"``)."""

    scope = "user"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if request.user and request.user.is_authenticated:
            ident = request.user.pk
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class ScopedRateThrottle(SimpleRateThrottle):
    """Throttle views by their ``throttle_scope``, per user or client address."""

    scope_attr = "throttle_scope"

    def __init__(self) -> None:
        # The rate depends on the view: it is found in allow_request.
        self.result = None

    def allow_request(self, request: Any, view: Any) -> bool:
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            self.result = None
            return True  # a view without a scope is not throttled
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if request.user and request.user.is_authenticated:
            ident = request.user.pk
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class RedisRateThrottle(ScopedRateThrottle):
    """Throttle by the view's ``throttle_scope`` (else the class's ``scope``) and ``key``.

    ``key``: a djredis rule key (``"user_or_ip"`` by default, ``"ip"``, ``"header:x"``, a
    callable ``key(group, request)``); ``rate``: fixed here instead of from the settings.
    """

    key: Any = "user_or_ip"
    rate: Any = None

    def allow_request(self, request: Any, view: Any) -> bool:
        self.scope = getattr(view, self.scope_attr, None) or type(self).scope
        if not self.scope:
            self.result = None
            return True
        self.rate = type(self).rate if type(self).rate is not None else self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return SimpleRateThrottle.allow_request(self, request, view)

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        key = resolve_key(self.key)
        anonymous = not (request.user and request.user.is_authenticated)
        if key == "ip" or (key == "user_or_ip" and anonymous):
            value = self.get_ident(request)
        else:
            value = key_value(key, f"drf:{self.scope}", request)
        return f"drf:{self.scope}:{value}"
