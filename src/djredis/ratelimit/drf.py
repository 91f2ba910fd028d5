"""A Django REST framework throttle on djredis: exact, atomic, one round trip.

``DEFAULT_THROTTLE_CLASSES = ["djredis.ratelimit.drf.RedisRateThrottle"]`` with DRF's
``DEFAULT_THROTTLE_RATES`` and a ``scope`` on the view (or the class), as DRF's own
``ScopedRateThrottle`` does; unlike DRF's throttles (a read-modify-write of the cache) the
count cannot race. ``key`` (default ``"user_or_ip"``) and ``algorithm`` are class
attributes. DRF sends 429 with ``Retry-After`` from ``wait()``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured

try:
    import rest_framework  # type: ignore[import-untyped]  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by scripts/check_wheel.py
    raise ImportError(
        "djredis.ratelimit.drf needs Django REST framework: pip install 'djredis[drf]'"
    ) from exc

from rest_framework.settings import api_settings  # type: ignore[import-untyped]
from rest_framework.throttling import BaseThrottle  # type: ignore[import-untyped]

from djredis.ratelimit.core import Result, Rule

__all__ = ["RedisRateThrottle"]


class RedisRateThrottle(BaseThrottle):  # type: ignore[misc]
    """Throttle by ``scope`` (the view's ``throttle_scope``, else the class's)."""

    scope: str | None = None
    rate: Any = None
    key: Any = "user_or_ip"
    algorithm = "sliding"
    burst: int | None = None
    fail_open: bool | None = None
    _rules: ClassVar[dict[tuple[str, Any], Rule]] = {}

    def __init__(self) -> None:
        self.result: Result | None = None

    def get_rate(self, scope: str) -> Any:
        """Return this throttle's rate: ``rate`` or ``DEFAULT_THROTTLE_RATES[scope]``."""
        if self.rate is not None:
            return self.rate
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[scope]
        except KeyError:
            raise ImproperlyConfigured(
                f"No rate for throttle scope {scope!r} in DEFAULT_THROTTLE_RATES."
            ) from None

    def _rule(self, scope: str) -> Rule:
        rate = self.get_rate(scope)
        cache_key = (f"{type(self).__module__}.{type(self).__qualname__}:{scope}", rate)
        rule = self._rules.get(cache_key)
        if rule is None:
            rule = Rule(
                key=self.key,
                rate=rate,
                algorithm=self.algorithm,
                group=f"drf:{scope}",
                burst=self.burst,
                fail_open=self.fail_open,
            )
            self._rules[cache_key] = rule
        return rule

    def allow_request(self, request: Any, view: Any) -> bool:
        """Count the request; False when it is over the rate."""
        scope = getattr(view, "throttle_scope", None) or self.scope
        if scope is None:
            return True
        self.result = self._rule(scope).check(request)
        return self.result is None or self.result.allowed

    def wait(self) -> float | None:
        """Seconds until the next request would be allowed (DRF's Retry-After)."""
        return None if self.result is None else self.result.retry_after
