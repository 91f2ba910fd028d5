"""Rate limiting on Redis: exact, one atomic round trip per decision, sync and async.

- ``@ratelimit(key="ip", rate="100/m")``: django-ratelimit's decorator (its arguments and
  helpers ``is_ratelimited``/``get_usage``), answering 429 with ``Retry-After`` and the IETF
  ``RateLimit``/``RateLimit-Policy`` fields; native on ``async def`` views;
- ``RateLimitMiddleware``: per-path rules from ``RATELIMIT_RULES``; ``RatelimitMiddleware``:
  django-ratelimit's, answering a raised ``Ratelimited`` with ``RATELIMIT_VIEW``;
- ``Rule``: the decision itself (``check``/``acheck`` → ``Result``);
- ``djredis.ratelimit.drf``: DRF's throttle classes (``AnonRateThrottle``, ...), atomic.

Reference: docs/ratelimit.md.
"""

from __future__ import annotations

from djredis.ratelimit.core import (
    ALL,
    UNSAFE,
    Result,
    Rule,
    aget_usage,
    ais_ratelimited,
    get_usage,
    is_ratelimited,
)
from djredis.ratelimit.decorator import ratelimit
from djredis.ratelimit.middleware import RateLimitMiddleware, RatelimitMiddleware
from djredis.ratelimit.rates import Rate, parse_rate
from djredis.ratelimit.responses import HttpResponseTooManyRequests, Ratelimited

__all__ = [
    "ALL",
    "UNSAFE",
    "HttpResponseTooManyRequests",
    "Rate",
    "RateLimitMiddleware",
    "RatelimitMiddleware",
    "Ratelimited",
    "Result",
    "Rule",
    "aget_usage",
    "ais_ratelimited",
    "get_usage",
    "is_ratelimited",
    "parse_rate",
    "ratelimit",
]
