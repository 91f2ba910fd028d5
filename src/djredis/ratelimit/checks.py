"""System checks for rate limiting, with stable IDs (``manage.py check``).

- ``djredis.ratelimit.E001``: a rate that does not parse;
- ``djredis.ratelimit.E002``: an unknown key type;
- ``djredis.ratelimit.E003``: a cache alias that is missing or not a djredis cache;
- ``djredis.ratelimit.E004``: an unknown algorithm, or another malformed rule;
- ``djredis.ratelimit.E005``: ``RATELIMIT_TRUSTED_PROXIES`` or an IP mask is malformed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from djredis.ratelimit.client_ip import trusted_proxies_setting
from djredis.ratelimit.core import ALGORITHMS
from djredis.ratelimit.keys import resolve_key
from djredis.ratelimit.rates import parse_rate

__all__ = ["check_ratelimit_settings"]


def _cache_error(alias: Any, setting: str) -> Error | None:
    caches: Mapping[str, Any] = getattr(settings, "CACHES", {})
    if not isinstance(alias, str) or alias not in caches:
        return Error(
            f"{setting} = {alias!r}, but CACHES has no cache of that name.",
            hint="Name a djredis cache alias from CACHES.",
            id="djredis.ratelimit.E003",
        )
    backend = caches[alias].get("BACKEND", "")
    try:
        cls = import_string(backend) if isinstance(backend, str) else backend
    except ImportError:
        cls = None
    if not isinstance(getattr(cls, "topology", None), property):
        return Error(
            f"{setting} = {alias!r} is a {backend!r} cache; rate limiting needs "
            "'djredis.cache.RedisCache'.",
            id="djredis.ratelimit.E003",
        )
    return None


def _rule_errors(index: int, spec: Any) -> list[CheckMessage]:
    where = f"RATELIMIT_RULES[{index}]"
    if not isinstance(spec, Mapping):
        return [Error(f"{where} must be a dict.", id="djredis.ratelimit.E004")]
    errors: list[CheckMessage] = []
    rate = spec.get("rate")
    if not callable(rate) and not (isinstance(rate, str) and "/" not in rate and "." in rate):
        try:
            parse_rate(rate)
        except (TypeError, ValueError) as exc:
            errors.append(Error(f"{where}['rate']: {exc}", id="djredis.ratelimit.E001"))
    try:
        resolve_key(spec.get("key", "ip"))
    except (ImproperlyConfigured, TypeError) as exc:
        errors.append(Error(f"{where}['key']: {exc}", id="djredis.ratelimit.E002"))
    if spec.get("algorithm", "sliding") not in ALGORITHMS:
        errors.append(
            Error(
                f"{where}['algorithm'] = {spec.get('algorithm')!r}; use one of {ALGORITHMS}.",
                id="djredis.ratelimit.E004",
            )
        )
    if spec.get("cache") is not None:
        error = _cache_error(spec["cache"], f"{where}['cache']")
        if error is not None:
            errors.append(error)
    return errors


@register("djredis")
def check_ratelimit_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Check the RATELIMIT_* settings."""
    errors: list[CheckMessage] = []
    error = _cache_error(getattr(settings, "RATELIMIT_USE_CACHE", "default"), "RATELIMIT_USE_CACHE")
    if error is not None:
        errors.append(error)
    rules = getattr(settings, "RATELIMIT_RULES", None) or []
    if not isinstance(rules, list | tuple):
        errors.append(
            Error("RATELIMIT_RULES must be a list of dicts.", id="djredis.ratelimit.E004")
        )
        rules = []
    for index, spec in enumerate(rules):
        errors.extend(_rule_errors(index, spec))
    try:
        trusted_proxies_setting()
    except ImproperlyConfigured as exc:
        errors.append(Error(str(exc), id="djredis.ratelimit.E005"))
    for setting, bits in (("RATELIMIT_IPV4_MASK", 32), ("RATELIMIT_IPV6_MASK", 128)):
        value = getattr(settings, setting, None)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= bits
        ):
            errors.append(
                Error(
                    f"{setting} must be a prefix length from 0 to {bits}.",
                    id="djredis.ratelimit.E005",
                )
            )
    return errors
